// Mesh links over IP: UDP multicast to reach every neighbour on an interface (WiFi ad
// hoc/802.11s, Ethernet, a veth pair), UDP unicast to reach one. One receiving socket
// serves every interface; a frame belongs to the link whose subnet holds its source.
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { emptyLinkStats, type Link, type LinkStats, type ReceivedFrame } from './link.ts';

export interface UdpLinkOptions {
  /** network interface, e.g. wlan0, eth0, veth1 */
  interface: string;
  port: number;
  /** IPv4 multicast group for frames to every neighbour */
  group: string;
}

/** Frames stay under the IPv6 minimum MTU less headers: no IP fragmentation on any path. */
export const UDP_MTU = 1200;

interface InterfaceAddress { address: string; network: number; mask: number }

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export function interfaceAddress(name: string): InterfaceAddress {
  const entries = networkInterfaces()[name];
  if (!entries) throw new Error(`network interface '${name}' does not exist (known: ${Object.keys(networkInterfaces()).join(', ')})`);
  const v4 = entries.find((e) => e.family === 'IPv4');
  if (!v4) throw new Error(`network interface '${name}' has no IPv4 address`);
  const mask = ipv4ToInt(v4.netmask);
  return { address: v4.address, network: ipv4ToInt(v4.address) & mask, mask };
}

class UdpLink implements Link {
  readonly name: string;
  readonly mtu = UDP_MTU;
  readonly overhears = false;
  readonly address: string;
  readonly stats: LinkStats = emptyLinkStats();
  readonly subnet: InterfaceAddress;
  private readonly sender: Socket;
  private readonly options: UdpLinkOptions;
  private handler: ((frame: ReceivedFrame) => void) | undefined;
  private closed = false;
  private readonly onClose: () => void;

  constructor(options: UdpLinkOptions, subnet: InterfaceAddress, sender: Socket, onClose: () => void) {
    this.options = options;
    this.name = `udp:${options.interface}`;
    this.address = subnet.address;
    this.subnet = subnet;
    this.sender = sender;
    this.onClose = onClose;
  }

  airtimeMs(): number {
    return 0;
  }

  budgetMs(): number {
    return Infinity;
  }

  send(data: Uint8Array, to?: string): void {
    if (this.closed) return;
    if (data.length > this.mtu) throw new Error(`frame of ${data.length} bytes exceeds the ${this.name} MTU of ${this.mtu}`);
    this.stats.txFrames++;
    this.stats.txBytes += data.length;
    // A send error (interface down, no route) is a lost frame, as on a radio: the mesh copes.
    this.sender.send(data, this.options.port, to ?? this.options.group, () => {});
  }

  onReceive(handler: (frame: ReceivedFrame) => void): void {
    this.handler = handler;
  }

  deliver(data: Uint8Array, from: string): void {
    if (this.closed) return;
    this.stats.rxFrames++;
    this.stats.rxBytes += data.length;
    this.handler?.({ data, from });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sender.close();
    this.onClose();
  }
}

/** Opens one link per interface; they share a receiving socket on `port`. */
export async function openUdpLinks(options: UdpLinkOptions[]): Promise<Link[]> {
  if (options.length === 0) return [];
  const port = options[0]!.port;
  if (options.some((o) => o.port !== port)) throw new Error('every UDP mesh link must use the same port');
  const subnets = options.map((o) => interfaceAddress(o.interface));
  const receiver = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    receiver.once('error', reject);
    receiver.bind(port, () => {
      receiver.off('error', reject);
      resolve();
    });
  });
  let open = options.length;
  const links: UdpLink[] = [];
  try {
    for (const [i, o] of options.entries()) {
      receiver.addMembership(o.group, subnets[i]!.address);
      const sender = createSocket({ type: 'udp4' });
      await new Promise<void>((resolve, reject) => {
        sender.once('error', reject);
        sender.bind(0, subnets[i]!.address, () => {
          sender.off('error', reject);
          resolve();
        });
      });
      sender.setMulticastInterface(subnets[i]!.address);
      sender.setMulticastTTL(1);
      sender.setMulticastLoopback(false);
      sender.on('error', () => {});
      links.push(new UdpLink(o, subnets[i]!, sender, () => {
        if (--open === 0) receiver.close();
      }));
    }
  } catch (err) {
    for (const l of links) l.close();
    receiver.close();
    throw err;
  }
  const own = new Set(subnets.map((s) => s.address));
  receiver.on('message', (data, rinfo) => {
    if (own.has(rinfo.address)) return;
    const source = ipv4ToInt(rinfo.address);
    const link = links.find((l) => (source & l.subnet.mask) === l.subnet.network);
    link?.deliver(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), rinfo.address);
  });
  receiver.on('error', () => {});
  return links;
}
