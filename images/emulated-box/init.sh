#!/bin/sh
# /init of the emulated arm64 box: a BusyBox system that starts the agent the way a
# Buildroot image does (/etc/init.d/S95iop-agent, as its own user), its state on a
# virtio disk that survives power cuts. Kernel command line parameters (passed to
# init as environment variables):
#   iop_broker=URL      the agent's broker (host services are forwarded to 10.0.2.100)
#   iop_interval=MS     sampling interval
#   iop_config=BASE64   the agent's /etc/iop-agent/config.yaml, base64-encoded
#   iop_mesh_key=HEX    the mesh key, written to /etc/iop-agent/mesh.key (readable by
#                       the agent's group only) for a config whose mesh.keyFile names it
#   iop_hold=1          do not start the agent at boot: the host starts it through the
#                       control channel (agent start) once its own side is ready
#   iop_gpio_export=1   export the gpio-sim lines to sysfs for the gpio group (what the
#                       Buildroot tree's udev rule does on a real box); leave it out for
#                       the character-device path, where exported lines are busy
# Lines on the console starting with "iop-box:" are the rig's protocol.

/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ln -s /run /var/run

while read -r module; do
	insmod "/lib/modules/$module" || echo "iop-box: insmod $module failed"
done < /lib/modules/load-order
mount -t configfs configfs /sys/kernel/config 2>/dev/null

# GPIO lines on a real kernel: one gpio-sim chip of 8 lines (when the image has the
# module), as character device and sysfs, its input levels set by the host through
# the control channel.
if [ -d /sys/kernel/config/gpio-sim ]; then
	sim=/sys/kernel/config/gpio-sim/iop
	mkdir "$sim" "$sim/bank0"
	echo 8 > "$sim/bank0/num_lines"
	echo iop-sim > "$sim/bank0/label" 2>/dev/null
	echo 1 > "$sim/live"
	chip=$(cat "$sim/bank0/chip_name")
	echo "iop-box: gpio-sim /dev/$chip sysfs base $(cat /sys/devices/platform/gpio-sim.*/gpio/gpiochip*/base 2>/dev/null | head -1)"
fi
# sysfs GPIO for the gpio group, as the Buildroot tree's udev rule does on a real box.
chgrp gpio /sys/class/gpio/export /sys/class/gpio/unexport 2>/dev/null
chmod g+w /sys/class/gpio/export /sys/class/gpio/unexport 2>/dev/null
# Exports the gpio-sim lines to sysfs for the gpio group; fails on a line another
# user holds (gpiomon of an agent on the character-device path).
gpio_export() {
	base=$(cat /sys/devices/platform/gpio-sim.*/gpio/gpiochip*/base 2>/dev/null | head -1)
	for line in 0 1 2 3 4 5 6 7; do
		gpio=$((base + line))
		echo "$gpio" > /sys/class/gpio/export || return 1
		chgrp gpio "/sys/class/gpio/gpio$gpio/direction" "/sys/class/gpio/gpio$gpio/edge" \
			"/sys/class/gpio/gpio$gpio/value" "/sys/class/gpio/gpio$gpio/active_low"
		chmod g+w "/sys/class/gpio/gpio$gpio/direction" "/sys/class/gpio/gpio$gpio/edge" \
			"/sys/class/gpio/gpio$gpio/value" "/sys/class/gpio/gpio$gpio/active_low"
	done
}
[ "$iop_gpio_export" = 1 ] && gpio_export

hostname iop-box
ip link set lo up
ip link set eth0 up
# Only the emulated LAN: no default route, so nothing can leave for the outside.
ip addr add 10.0.2.15/24 dev eth0

# The data disk: /var/lib holds the agent's state (device key, journal).
if mount -t ext4 -o data=ordered /dev/vda /var/lib; then
	echo "iop-box: data disk mounted"
else
	echo "iop-box: no data disk; state is lost at power-off"
fi

# Serial ports and GPIO chips belong to the groups the agent's user is in.
for tty in /dev/ttyS*; do chgrp dialout "$tty"; chmod 0660 "$tty"; done
for chip in /dev/gpiochip*; do [ -e "$chip" ] && chgrp gpio "$chip" && chmod 0660 "$chip"; done

[ -n "$iop_config" ] && echo "$iop_config" | base64 -d > /etc/iop-agent/config.yaml
if [ -n "$iop_mesh_key" ]; then
	echo "$iop_mesh_key" > /etc/iop-agent/mesh.key
	chgrp iop-agent /etc/iop-agent/mesh.key
	chmod 0640 /etc/iop-agent/mesh.key
fi
args=""
[ -n "$iop_broker" ] && args="$args --broker $iop_broker"
[ -n "$iop_interval" ] && args="$args --interval $iop_interval"
echo "IOP_AGENT_ARGS=\"$args\"" > /etc/default/iop-agent

# The agent's log on the console, for the host, line by line as it is written: the log
# is a FIFO (a file followed with tail -F would show each line up to a second late).
# The reader opens it again after each writer (the init script, the agent) closes it.
mkfifo -m 0640 /var/log/iop-agent.log
while true; do
	while read -r line || [ -n "$line" ]; do echo "iop-agent: $line"; done < /var/log/iop-agent.log
done &
if [ "$iop_hold" = 1 ]; then
	echo "iop-box: agent held"
else
	/etc/init.d/S95iop-agent start
	echo "iop-box: agent started"
fi

# The control channel (first virtconsole): one command a line, one reply line each.
if [ -e /dev/hvc0 ]; then
	while true; do
		# No echo, no line-ending translation: the host reads exactly the replies.
		{ stty raw -echo 2>/dev/null
		echo "iop-box: control ready" > /dev/console
		while read -r command argument value; do
			case "$command" in
				pull)
					# pull <line> <up|down>: the input level of gpio-sim line <line>
					if echo "pull-$value" > "$(echo /sys/devices/platform/gpio-sim.*/gpiochip*/sim_gpio"$argument"/pull)" 2>/dev/null; then
						echo "ok"
					else
						echo "error pull $argument $value"
					fi;;
				level)
					# level <line>: what the kernel reads on gpio-sim line <line>, through sysfs
					base=$(cat /sys/devices/platform/gpio-sim.*/gpio/gpiochip*/base 2>/dev/null | head -1)
					gpio=$((base + argument))
					[ -d "/sys/class/gpio/gpio$gpio" ] || echo "$gpio" > /sys/class/gpio/export
					echo "level $(cat "/sys/class/gpio/gpio$gpio/value" 2>&1)";;
				rss)
					# rss: the agent's resident set in kB: total, anonymous, file-backed, shared memory
					pid=$(cat /var/run/iop-agent.pid 2>/dev/null)
					echo "rss $(awk '/^(VmRSS|RssAnon|RssFile|RssShmem)/ {printf "%s ", $2}' "/proc/$pid/status" 2>/dev/null)";;
				smaps)
					# smaps: the agent's resident kB by mapping (file and permissions, or [anon]), largest first
					pid=$(cat /var/run/iop-agent.pid 2>/dev/null)
					echo "smaps $(awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) " " $2 } /^Rss:/ { rss[name] += $2 } END { for (n in rss) if (rss[n] >= 64) print rss[n], n }' "/proc/$pid/smaps" 2>/dev/null | sort -rn | head -12 | tr '\n' ';')";;
				agent-user)
					pid=$(cat /var/run/iop-agent.pid 2>/dev/null)
					echo "agent-user $(stat -c %U "/proc/$pid" 2>/dev/null)";;
				stat)
					# stat <path>: mode, owner and group
					echo "stat $(stat -c '%a %U %G' "$argument" 2>&1)";;
				read-serial)
					# read-serial <ttyS0|ttyS1> [word]: the next line arriving on that UART
					# within 10 s (with a word: the next line holding it, so that the tail
					# of a line already under way when the port opened is passed over)
					stty -F "/dev/$argument" raw -echo 115200 2>/dev/null
					if [ -n "$value" ]; then
						echo "read-serial $(timeout 10 grep -m 1 -o -e "$value.*" "/dev/$argument" 2>&1 | tr -d '\r')"
					else
						echo "read-serial $(timeout 10 head -n 1 "/dev/$argument" 2>&1 | tr -d '\r')"
					fi;;
				sync)
					sync; echo "ok";;
				gpio-export)
					# gpio-export: what iop_gpio_export=1 does at boot, now
					if gpio_export 2>/dev/null; then echo "ok"; else echo "error gpio-export"; fi;;
				agent)
					# agent stop | agent start [BASE64]: the init script's stop (it waits for
					# the agent's exit) or start, with a new config.yaml when given one
					[ -n "$value" ] && echo "$value" | base64 -d > /etc/iop-agent/config.yaml
					if /etc/init.d/S95iop-agent "$argument" > /dev/null 2>&1; then echo "ok"; else echo "error agent $argument"; fi;;
				*)
					echo "error unknown command $command";;
			esac
		done; } < /dev/hvc0 > /dev/hvc0
	done &
fi

echo "iop-box: ready"
while true; do sleep 3600; done
