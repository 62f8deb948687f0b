// The MQTT topic map (docs/protocol.md, "MQTT"). Publishing goes through these
// functions only, so no code path can publish to a wildcard topic.
export const TOPIC_ROOT = 'iop/v1';

export type TopicKind = 'data' | 'status' | 'ack' | 'verified';

const DEVICE_ID = /^[a-z2-7]{2,128}$/;

export function deviceTopic(device: string, kind: TopicKind): string {
  if (!DEVICE_ID.test(device)) throw new Error(`'${device}' is not a device id usable in a topic`);
  return `${TOPIC_ROOT}/${device}/${kind}`;
}

/** Subscription filter for one kind of message of every device, or of one. */
export function topicFilter(kind: TopicKind, device?: string): string {
  return device ? deviceTopic(device, kind) : `${TOPIC_ROOT}/+/${kind}`;
}

export interface TopicTarget { device: string; kind: TopicKind }

/** The device and kind a topic names, or undefined for a topic outside the map. */
export function parseTopic(topic: string): TopicTarget | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) return undefined;
  const [, , device, kind] = parts as [string, string, string, string];
  if (!DEVICE_ID.test(device) || !['data', 'status', 'ack', 'verified'].includes(kind)) return undefined;
  return { device, kind: kind as TopicKind };
}
