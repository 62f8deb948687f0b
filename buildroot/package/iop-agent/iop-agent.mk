################################################################################
#
# iop-agent
#
################################################################################

IOP_AGENT_VERSION = 0.1.0
IOP_AGENT_LICENSE = MIT

ifeq ($(BR2_aarch64),y)
IOP_AGENT_ARCH = arm64
else
IOP_AGENT_ARCH = x64
endif

IOP_AGENT_DIST_DIR = $(call qstrip,$(BR2_PACKAGE_IOP_AGENT_DIST_DIR))
ifneq ($(IOP_AGENT_DIST_DIR),)
IOP_AGENT_SITE = $(IOP_AGENT_DIST_DIR)
IOP_AGENT_SITE_METHOD = local
else
IOP_AGENT_SITE = $(call qstrip,$(BR2_PACKAGE_IOP_AGENT_RELEASE_SITE))
IOP_AGENT_SOURCE = iop-agent-$(IOP_AGENT_VERSION)-linux-$(IOP_AGENT_ARCH).tar.gz
endif

IOP_AGENT_EXECUTABLE = iop-agent-linux-$(IOP_AGENT_ARCH)

# Buildroot strips every executable file of the target; stripping a Node
# single executable cuts off its application blob (a note outside any
# segment) and it crashes. So it is installed without the execute bit,
# which the strip step skips, and gets 0755 from IOP_AGENT_PERMISSIONS
# when the root filesystem is made.
define IOP_AGENT_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0644 $(@D)/$(IOP_AGENT_EXECUTABLE) \
		$(TARGET_DIR)/usr/bin/iop-agent
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/usr/lib/iop-agent/addons
	for addon in $(@D)/$(IOP_AGENT_EXECUTABLE).d/addons/*.node; do \
		[ -e "$$addon" ] || continue; \
		$(INSTALL) -m 0644 "$$addon" \
			$(TARGET_DIR)/usr/lib/iop-agent/addons/ || exit 1; \
	done
	$(INSTALL) -D -m 0644 $(IOP_AGENT_PKGDIR)/config.yaml \
		$(TARGET_DIR)/etc/iop-agent/config.yaml
	$(INSTALL) -D -m 0644 $(IOP_AGENT_PKGDIR)/60-iop-agent.rules \
		$(TARGET_DIR)/usr/lib/udev/rules.d/60-iop-agent.rules
endef

define IOP_AGENT_PERMISSIONS
	/usr/bin/iop-agent f 755 0 0 - - - - -
endef

define IOP_AGENT_USERS
	iop-agent -1 iop-agent -1 * /var/lib/iop-agent - dialout,gpio iop-agent daemon
endef

define IOP_AGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(IOP_AGENT_PKGDIR)/S95iop-agent \
		$(TARGET_DIR)/etc/init.d/S95iop-agent
endef

define IOP_AGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(IOP_AGENT_PKGDIR)/iop-agent.service \
		$(TARGET_DIR)/usr/lib/systemd/system/iop-agent.service
endef

$(eval $(generic-package))
