// How a running box's mesh takes on contribution (agent/mesh/service.ts): every link
// wrapped so beacon frames reach the beaconer and not the router, the LoRa radios of
// mesh.links as beacon radios, and once the router and the bridge exist, a BoxContribution
// over them. Nothing when the key cannot sign without I/O (beacons are signed on the spot).
import { realClock } from '../../drivers/clock.ts';
import type { Link } from '../../drivers/link.ts';
import type { MeshNode } from '../../mesh/node.ts';
import type { Box } from '../box.ts';
import type { MeshConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { RelayClient, UplinkBridge } from '../mesh/bridge.ts';
import { BeaconLink } from './beacon-link.ts';
import type { BeaconRadio } from './beaconer.ts';
import { BoxContribution } from './box-contribution.ts';

/** A typical LoRa antenna's gain, added to the configured transmit power for the beacon's EIRP. */
const ANTENNA_GAIN_DBI = 3;

export function contributionOnBox(options: { config: MeshConfig; links: Link[]; box: Box; log: Logger }) {
  const links = options.links.map((l) => new BeaconLink(l));
  const radios: BeaconRadio[] = options.config.links.flatMap((l, i) => (l.type === 'udp' ? [] : [{ link: links[i]!, region: l.radio.region, frequencyHz: l.radio.frequencyHz, eirpDbm: l.radio.txPowerDbm + ANTENNA_GAIN_DBI }]));
  const signSync = options.box.key.signSync?.bind(options.box.key);
  const wiring = {
    links: links as Link[],
    part: undefined as BoxContribution | undefined,
    attach(node: MeshNode, bridge: UplinkBridge | undefined, client: () => RelayClient | undefined): void {
      if (!signSync) {
        options.log.info('contribution off: the device key cannot sign without I/O');
        return;
      }
      const part = new BoxContribution({
        identity: options.box.identity, signSync, node, radios, client, clock: realClock, random: Math.random,
        nowS: () => Date.now() / 1000, periodS: options.config.beaconPeriodS, log: options.log,
      });
      if (bridge) bridge.onRelayed = (device, seq, reading) => part.relayed(device, seq, reading);
      wiring.part = part;
    },
  };
  return wiring;
}
