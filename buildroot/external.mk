include $(sort $(wildcard $(BR2_EXTERNAL_IOP_AGENT_PATH)/package/*/*.mk))
