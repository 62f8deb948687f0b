// Drain rate of the uplink: 100,000 queued signed readings forwarded to Mosquitto
// (broker-ack mode, default window), against bare mqtt.js QoS 1 publishes of the same
// payload size to the same broker, in one run.
// Usage: npm run bench:drain [-- --count N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { openBox } from '../agent/box.ts';
import { validateConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { createUplink } from '../agent/uplink/uplink.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';

const { values } = parseArgs({ options: { count: { type: 'string' }, window: { type: 'string' } } });
const count = Number(values.count ?? 100_000);
const state = mkdtempSync(join(tmpdir(), 'iop-drain-'));
const broker = await startMosquitto();
try {
  const config = validateConfig({ stateDir: state, uplink: { broker: broker.url, ack: 'broker', ...(values.window ? { window: Number(values.window) } : {}) }, store: { maxMessages: count * 2 } }, 'bench');
  const box = await openBox(config, silentLogger);
  process.stdout.write(`queueing ${count} signed readings... `);
  let now = Date.now() - count * 1000;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const pack = (await box.sampler.tick((now += 1000), { all: true }))!;
    size = (await box.record(pack)).bytes.length;
  }
  console.log(`done (${size} B each)`);

  // Reference: bare mqtt.js, QoS 1, same payload size, all published at once.
  const payload = Buffer.alloc(size, 0xa5);
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  const bareStart = process.hrtime.bigint();
  await Promise.all(Array.from({ length: count }, () => client.publishAsync('bench/bare', payload, { qos: 1 })));
  const bareS = Number(process.hrtime.bigint() - bareStart) / 1e9;
  await client.endAsync();

  // The agent's uplink: from the journal, in order, pruned on PUBACK.
  const uplink = createUplink({ config: { ...config.uplink, broker: broker.url }, stateDir: state, box, version: 'bench', log: silentLogger });
  const drainStart = process.hrtime.bigint();
  uplink.start();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (uplink.forwarder.ackedSeq >= count - 1) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  const drainS = Number(process.hrtime.bigint() - drainStart) / 1e9;
  await uplink.stop();
  const left = box.journal.count();
  await box.close();

  const bareRate = count / bareS;
  const drainRate = count / drainS;
  console.log(`bare mqtt.js QoS 1 publishes      ${Math.round(bareRate).toString().padStart(8)} msg/s  (${bareS.toFixed(2)} s)`);
  console.log(`iop-agent uplink drain (window ${config.uplink.window}) ${Math.round(drainRate).toString().padStart(8)} readings/s  (${drainS.toFixed(2)} s, ${left} left in the queue)`);
  console.log(`ratio: ${(drainRate / bareRate).toFixed(2)}x bare mqtt.js (goal >= 0.5x) ${drainRate / bareRate >= 0.5 ? 'MET' : 'NOT MET'}`);
} finally {
  await broker.stop();
  rmSync(state, { recursive: true, force: true });
}
