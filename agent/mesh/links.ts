// Opens the links of mesh.links: UDP links (bringing WiFi up first where `wifi:` says
// so) and serial LoRa radios (KISS/RNode, REYAX). A radio whose port is missing at start
// is not an error: its link stays down and the driver keeps trying the path.
import { realClock } from '../../drivers/clock.ts';
import type { Link } from '../../drivers/link.ts';
import { KissLink } from '../../drivers/radio/kiss-link.ts';
import { linkAddressOf } from '../../drivers/radio/link-frame.ts';
import { ReyaxLink } from '../../drivers/radio/reyax-link.ts';
import { openUdpLinks } from '../../drivers/udp-link.ts';
import { setUpWifi, type CommandRunner } from '../../drivers/wifi.ts';
import { encodePacket, type NodeId } from '../../mesh/packet.ts';
import type { MeshConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';

export async function openMeshLinks(config: MeshConfig, nodeId: NodeId, log: Logger, run?: CommandRunner): Promise<Link[]> {
  const udp = config.links.flatMap((l) => (l.type === 'udp' ? [l] : []));
  for (const l of udp) {
    if (!l.wifi) continue;
    await setUpWifi(l.interface, l.wifi, run);
    log.info(`${l.interface}: joined ${l.wifi.mode === '80211s' ? '802.11s mesh' : 'IBSS'} '${l.wifi.meshId}' on channel ${l.wifi.channel}`);
  }
  const udpLinks = await openUdpLinks(udp.map((l) => ({ interface: l.interface, port: l.port, group: l.group })));
  const address = linkAddressOf(nodeId);
  const radioLog = log.child('radio');
  const dutyWindowMs = testDutyWindowMs(radioLog);
  const links: Link[] = [];
  let nextUdp = 0;
  for (const l of config.links) {
    switch (l.type) {
      case 'udp': links.push(udpLinks[nextUdp++]!); break;
      case 'kiss': links.push(new KissLink({ path: l.path, baud: l.baud, radio: l.radio, maxFrameBytes: l.maxFrameBytes, address, clock: realClock, log: radioLog, dutyWindowMs })); break;
      case 'reyax': links.push(new ReyaxLink({ path: l.path, baud: l.baud, radio: l.radio, networkId: l.networkId, address, clock: realClock, log: radioLog, dutyWindowMs })); break;
    }
  }
  return links;
}

/**
 * IOP_AGENT_DUTY_WINDOW_MS shortens the duty-cycle ledger's rolling hour so tests see a
 * radio at its limit within seconds. Never for a box in the field: the rule is per hour.
 */
function testDutyWindowMs(log: Logger): number | undefined {
  const value = Number(process.env.IOP_AGENT_DUTY_WINDOW_MS);
  if (!process.env.IOP_AGENT_DUTY_WINDOW_MS || !Number.isInteger(value) || value < 1000) return undefined;
  log.warn(`duty-cycle window shortened to ${value} ms by IOP_AGENT_DUTY_WINDOW_MS (for tests; not the regional rule)`);
  return value;
}

/** Starts the radios' serial ports (UDP links need no start). */
export function startLinks(links: Link[]): void {
  for (const l of links) if (l instanceof KissLink || l instanceof ReyaxLink) l.start();
}

/**
 * The largest fragment whose data packet, with every header at its widest, fits every
 * link: the mesh's fragmentation follows the smallest MTU (a REYAX modem's 171 bytes).
 */
export function fittingFragmentBytes(configured: number, links: Link[]): number {
  const mtu = Math.min(...links.map((l) => l.mtu));
  const widest = (payload: number) => encodePacket({
    kind: 'data', sender: new Uint8Array(6), epoch: 0xffffffff, counter: 0xffffffff, origin: new Uint8Array(6), dest: new Uint8Array(6),
    msgId: 0xffffffff, index: 255, count: 255, hopLimit: 64, type: 'ctxmiss', payload: new Uint8Array(payload),
  }, new Uint8Array(32)).length;
  let bytes = configured;
  while (bytes > 16 && widest(bytes) > mtu) bytes--;
  return bytes;
}
