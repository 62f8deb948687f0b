// The link header on serial radios (docs/mesh.md, radio section). A LoRa modem
// broadcasts every frame, so the link itself says who sent it and, for a frame meant for
// one neighbour, whom it is for: one byte of version and flags, the sender's 4-byte link
// address, and the receiver's when unicast.
export const LINK_ADDRESS_BYTES = 4;
const VERSION = 0x10;
const UNICAST = 0x01;
export const LINK_HEADER_MAX = 1 + 2 * LINK_ADDRESS_BYTES;

const ADDRESS = /^[0-9a-f]{8}$/;

export function isLinkAddress(text: string): boolean {
  return ADDRESS.test(text);
}

/** A link address from the first bytes of the node id (hex), so a box keeps it across restarts. */
export function linkAddressOf(nodeId: Uint8Array): string {
  return Buffer.from(nodeId.subarray(0, LINK_ADDRESS_BYTES)).toString('hex');
}

export function encodeLinkFrame(from: string, to: string | undefined, data: Uint8Array): Uint8Array {
  const header = to === undefined ? 1 + LINK_ADDRESS_BYTES : LINK_HEADER_MAX;
  const out = new Uint8Array(header + data.length);
  out[0] = VERSION | (to === undefined ? 0 : UNICAST);
  out.set(Buffer.from(from, 'hex'), 1);
  if (to !== undefined) out.set(Buffer.from(to, 'hex'), 1 + LINK_ADDRESS_BYTES);
  out.set(data, header);
  return out;
}

export interface LinkFrame { from: string; to?: string; data: Uint8Array }

/** undefined for a frame of another version or too short to hold its header. */
export function decodeLinkFrame(bytes: Uint8Array): LinkFrame | undefined {
  if (bytes.length < 1 + LINK_ADDRESS_BYTES || (bytes[0]! & 0xf0) !== VERSION || (bytes[0]! & 0x0e) !== 0) return undefined;
  const unicast = (bytes[0]! & UNICAST) !== 0;
  const header = unicast ? LINK_HEADER_MAX : 1 + LINK_ADDRESS_BYTES;
  if (bytes.length < header) return undefined;
  const hex = (at: number) => Buffer.from(bytes.subarray(at, at + LINK_ADDRESS_BYTES)).toString('hex');
  return { from: hex(1), ...(unicast ? { to: hex(1 + LINK_ADDRESS_BYTES) } : {}), data: bytes.slice(header) };
}
