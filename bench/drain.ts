// Drain rate of the uplink: 100,000 queued signed readings forwarded to Mosquitto
// (broker-ack mode, default window), against bare mqtt.js QoS 1 publishes of the same
// payload size to the same broker, in one run. The queue is made once and copied for
// each round; bare and agent rounds alternate so that a load change on a shared
// machine hits both alike, and the median of the rounds is reported.
// Usage: npm run bench:drain [-- --count N --rounds R --window W] [--quick]   (--quick: 1,000 readings, one round, for CI)
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { openBox } from '../agent/box.ts';
import { validateConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { createUplink } from '../agent/uplink/uplink.ts';
import { startMosquitto } from '../harness/mosquitto.ts';

const { values } = parseArgs({ options: { count: { type: 'string' }, rounds: { type: 'string' }, window: { type: 'string' }, quick: { type: 'boolean' } } });
const count = Number(values.count ?? (values.quick ? 1_000 : 100_000));
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
const work = mkdtempSync(join(tmpdir(), 'iop-drain-'));
const queued = join(work, 'queued');
const broker = await startMosquitto();
const configFor = (stateDir: string) => validateConfig({
  stateDir,
  uplink: { broker: broker.url, ack: 'broker', ...(values.window ? { window: Number(values.window) } : {}) },
  store: { maxMessages: count * 2 },
}, 'bench');

async function queueReadings(): Promise<number> {
  const box = await openBox(configFor(queued), silentLogger);
  let now = Date.now() - count * 1000;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const pack = (await box.sampler.tick((now += 1000), { all: true }))!;
    size = (await box.record(pack)).bytes.length;
  }
  await box.close();
  return size;
}

/** Bare mqtt.js, QoS 1: as many publishes in flight as MQTT's 16-bit packet ids allow, less some room. */
async function bareSeconds(size: number): Promise<number> {
  const payload = Buffer.alloc(size, 0xa5);
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  const start = process.hrtime.bigint();
  let sent = 0;
  await Promise.all(Array.from({ length: Math.min(20_000, count) }, async () => {
    while (sent < count) {
      sent++;
      await client.publishAsync('bench/bare', payload, { qos: 1 });
    }
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await client.endAsync();
  return seconds;
}

/** The agent's uplink on a copy of the queue: from the journal, in order, pruned on PUBACK. */
async function drainSeconds(round: number): Promise<{ seconds: number; left: number; window: number }> {
  const stateDir = join(work, `round-${round}`);
  cpSync(queued, stateDir, { recursive: true });
  const config = configFor(stateDir);
  const box = await openBox(config, silentLogger);
  const uplink = createUplink({ config: { ...config.uplink, broker: broker.url }, stateDir, box, version: 'bench', log: silentLogger });
  const start = process.hrtime.bigint();
  uplink.start();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (uplink.forwarder.ackedSeq >= count - 1) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await uplink.stop();
  const left = box.journal.count();
  await box.close();
  rmSync(stateDir, { recursive: true, force: true });
  return { seconds, left, window: config.uplink.window };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
try {
  process.stdout.write(`queueing ${count} signed readings... `);
  const size = await queueReadings();
  console.log(`done (${size} B each)`);
  const bareRates: number[] = [];
  const drainRates: number[] = [];
  let window = 0;
  for (let round = 1; round <= rounds; round++) {
    const bare = count / await bareSeconds(size);
    const drain = await drainSeconds(round);
    window = drain.window;
    if (drain.left !== 0) throw new Error(`round ${round}: ${drain.left} readings left in the queue after the drain`);
    bareRates.push(bare);
    drainRates.push(count / drain.seconds);
    console.log(`round ${round}: bare ${Math.round(bare)} msg/s, agent ${Math.round(count / drain.seconds)} readings/s (${(count / drain.seconds / bare).toFixed(2)}x)`);
  }
  const bareRate = median(bareRates);
  const drainRate = median(drainRates);
  console.log(`bare mqtt.js QoS 1 publishes           ${Math.round(bareRate).toString().padStart(8)} msg/s (median of ${rounds})`);
  console.log(`iop-agent uplink drain (window ${window}) ${Math.round(drainRate).toString().padStart(8)} readings/s (median of ${rounds}, queue empty after each)`);
  console.log(`ratio: ${(drainRate / bareRate).toFixed(2)}x bare mqtt.js (goal >= 0.5x) ${drainRate / bareRate >= 0.5 ? 'MET' : 'NOT MET'}`);
} finally {
  await broker.stop();
  rmSync(work, { recursive: true, force: true });
}
