// Five boxes in a line on emulated KISS radios (test/emulators: RNodes and plain TNCs on
// socat ptys through the simulated LoRa medium, SF5/250 kHz), the first with Mosquitto
// and the gateway. Measures how long the far box's readings take to reach the gateway
// against a reference from the same run: the sum of the airtimes of the frames one
// reading needs on its four hops (data frame and its hop ack, each hop), plus the
// mesh's hop-ack waits. Also checks every radio's airtime log against its duty cycle.
// Usage: node bench/radio-line.ts [--quick] [--readings N]
import { connectAsync } from 'mqtt';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { subBandOf, type SubBand } from '../drivers/radio/duty-cycle.ts';
import { LINK_HEADER_MAX } from '../drivers/radio/link-frame.ts';
import { loraAirtimeMs, profileOf } from '../drivers/radio/lora-airtime.ts';
import { Channel } from '../test/emulators/channel.ts';
import { framesOverBudget, KissTnc, RNodeModem } from '../test/emulators/modems.ts';
import { runCli, tempDir } from '../test/helpers/cli.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { kissLink, RADIO_TEST_TIMERS, radioBoxConfig, TEST_RADIO } from '../test/helpers/radio-mesh.ts';
import { deviceId, gatewayKey, start, until, type Running } from '../test/helpers/system.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, readings: { type: 'string' } } });
const count = Number(values.readings ?? (values.quick ? 4 : 20));
// Sparse enough that readings do not queue behind each other on four half-duplex hops.
const intervalMs = 8000;
const HOPS = 4;
/** the ack packet and the data packet's header, as the mesh encodes them (docs/mesh.md) */
const ACK_BYTES = 26;
const DATA_HEADER_BYTES = 59;

/** This machine's seconds since boot, as the agent reads them for untrusted time. */
const uptimeS = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

const dir = tempDir('iop-bench-radio-');
const running: Running[] = [];
const channel = new Channel({ profile: profileOf(TEST_RADIO) });
const broker = await startMosquitto();
try {
  const paths = Array.from({ length: 5 }, (_, i) => join(dir.path, `radio${i}`));
  for (let i = 0; i < 5; i++) await channel.add(paths[i]!, i * 800, () => (i % 2 === 0 ? new RNodeModem() : new KissTnc(TEST_RADIO)));
  channel.connect();
  const gatewayDir = join(dir.path, 'gw');
  const key = await gatewayKey(gatewayDir);
  const far = join(dir.path, 'box4');
  const device = await deviceId(far);
  running.push(start(['gateway', '--broker', broker.url, '--state-dir', gatewayDir, '--allow-any']));
  const arrivals: { seq: number; latencyMs: number }[] = [];
  const client = await connectAsync(broker.url);
  client.on('message', (_t, payload) => {
    const r = JSON.parse(payload.toString()) as { seq: number; records: { t?: number; up?: number }[] };
    const made = r.records[0]!;
    // A box whose clock is not trusted stamps uptime only (docs/protocol.md, Time); the boxes
    // run on this machine, so its own uptime dates them just as well.
    const latencyMs = made.t !== undefined ? Date.now() - made.t * 1000 : (uptimeS() - made.up!) * 1000;
    arrivals.push({ seq: r.seq, latencyMs });
  });
  await client.subscribeAsync(`iop/v1/${device}/verified`, { qos: 1 });
  for (let i = 0; i < 5; i++) {
    running.push(start(['run', '--config', radioBoxConfig(dir.path, `box${i}`, [kissLink(paths[i]!)], { gatewayKey: key, ...(i === 0 ? { broker: broker.url } : {}), ...(i === 4 ? { intervalMs } : {}) })]));
  }
  // Readings made before the routes settle wait for them; measure the ones after.
  await until('the first reading at the gateway', () => arrivals.length > 0, 120_000);
  const first = arrivals.at(-1)!.seq;
  await until(`${count} more readings`, () => arrivals.filter((a) => a.seq > first + 1).length >= count, count * intervalMs * 4 + 60_000);
  const measured = arrivals.filter((a) => a.seq > first + 1).map((a) => a.latencyMs).sort((a, b) => a - b);
  const median = measured[Math.floor(measured.length / 2)]!;

  // One reading's size as box 4 makes them (its config, a scratch state dir).
  const scratch = join(dir.path, 'size.cbor');
  await runCli(['sample', '--count', '4', '--out', scratch, '--config', join(dir.path, 'box4.json'), '--state-dir', join(dir.path, 'size-state')]);
  const readingBytes = Math.round(statSync(scratch).size / 4);
  const profile = profileOf(TEST_RADIO);
  // The mesh splits a reading into fragments of 180 bytes (mesh.fragmentBytes), one frame each.
  const fragments = Math.ceil(readingBytes / 180);
  const dataAirtime = Array.from({ length: fragments }, (_, i) => loraAirtimeMs(Math.min(180, readingBytes - i * 180) + DATA_HEADER_BYTES + LINK_HEADER_MAX, profile)).reduce((a, b) => a + b, 0);
  const ackAirtime = fragments * loraAirtimeMs(ACK_BYTES + LINK_HEADER_MAX, profile);
  const ackWait = fragments * (300 + 3 * (dataAirtime / fragments) + loraAirtimeMs(40, profile));
  // Each hop: the data frame on air, the hop's ack (overheard forward or explicit ack) back.
  const reference = HOPS * (dataAirtime + ackAirtime);
  const band = subBandOf('EU868', TEST_RADIO.frequencyHz, TEST_RADIO.bandwidthHz) as SubBand;
  const overBudget = [0, 1, 2, 3, 4].map((i) => framesOverBudget(channel.airLog(i), band.dutyCycle! * 3_600_000, 3_600_000)).reduce((a, b) => a + b, 0);
  console.log(`radio-line: ${measured.length} readings of box 4 (${readingBytes} B each) over ${HOPS} hops (SF${TEST_RADIO.spreadingFactor}/${TEST_RADIO.bandwidthHz / 1000} kHz)`);
  console.log(`  median latency            ${median.toFixed(0)} ms (reading made to gateway verified)`);
  console.log(`  sum of airtimes           ${reference.toFixed(0)} ms (${HOPS} x (${dataAirtime.toFixed(1)} ms data in ${fragments} frames + ${ackAirtime.toFixed(1)} ms acks))`);
  console.log(`  plus hop-ack waits        ${(reference + HOPS * ackWait).toFixed(0)} ms (ack timeouts ${ackWait.toFixed(0)} ms a hop, if every frame waited once)`);
  console.log(`  ratio median / airtimes   ${(median / reference).toFixed(2)}  (goal: within 1.5x of airtimes plus hop-ack waits: ${(median / (reference + HOPS * ackWait)).toFixed(2)})`);
  console.log(`  frames over budget        ${overBudget} (every radio's air log against its ${band.dutyCycle! * 100} % rolling hour)`);
  console.log(`  timers                    ${JSON.stringify(RADIO_TEST_TIMERS)}`);
  await client.endAsync();
} finally {
  for (const r of running) await r.stop('SIGKILL');
  await channel.close();
  await broker.stop();
  dir.remove();
}

