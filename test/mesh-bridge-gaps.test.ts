// A reading lost on its way through the mesh: the gateway (and the simulator's, which
// receipts as it does) names the runs it holds above the gap; the relay bridge holds such
// a receipt like any other (telling gaps early, and the origins' resends on them, cost
// a congested mesh more than they recovered), so the origin frees what is held and sends
// the missing reading again at its receipt timeout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { UplinkBridge, type RelayClient, type RelaySession } from '../agent/mesh/bridge.ts';
import { holdSeq } from '../agent/mesh/sim-boxes.ts';
import { signedTraffic } from '../agent/mesh/sim-traffic.ts';
import { meshNodeId } from '../agent/mesh/setup.ts';
import { verifyReceipt } from '../agent/codec/receipt.ts';
import { deviceTopic } from '../agent/uplink/topics.ts';
import { silentLogger } from '../agent/log.ts';
import { nodeIdHex } from '../mesh/packet.ts';
import type { MeshNode } from '../mesh/node.ts';
import { runMesh } from '../mesh/simulation.ts';
import { shippedBoxes } from '../agent/mesh/sim-boxes.ts';

const HOLD_MS = 900_000;

test('the simulated gateway keeps held runs as the real one: joined when a gap fills, a repeat changes nothing', () => {
  const runs: { first: number; last: number }[] = [];
  for (const seq of [0, 1, 3, 4, 7, 3, 6]) holdSeq(runs, seq);
  assert.equal(runs, [{ first: 0, last: 1 }, { first: 3, last: 4 }, { first: 6, last: 7 }]);
  holdSeq(runs, 5);
  assert.equal(runs, [{ first: 0, last: 1 }, { first: 3, last: 7 }]);
  holdSeq(runs, 2);
  assert.equal(runs, [{ first: 0, last: 7 }]);
});

/** A bridge on an uplink box, its MQTT session and mesh node faked: what it sends back to origins is recorded. */
function bridgeRig() {
  const clock = new VirtualClock();
  const traffic = signedTraffic(3, 300);
  const sent: number[] = [];
  const node = { send: (_dest: Uint8Array, _type: string, payload: Uint8Array) => void sent.push(verifyReceipt(payload).highest) } as unknown as MeshNode;
  const client: RelayClient = {
    subscribe: () => undefined,
    unsubscribe: () => undefined,
    publish: (_topic, _payload, _options, callback) => void clock.setTimeout(() => callback(), 20),
  };
  let onMessage: (topic: string, payload: Buffer) => void = () => {};
  const session: RelaySession = {
    current: client,
    on: (event: string, listener: unknown) => {
      if (event === 'message') onMessage = listener as typeof onMessage;
    },
  } as RelaySession;
  const bridge = new UplinkBridge(node, session, silentLogger, HOLD_MS, clock);
  const origin = meshNodeId(traffic.identity(1).publicKey);
  const device = traffic.identity(1).id;
  return {
    clock, sent, bridge,
    relay(seq: number) {
      bridge.onReading({ type: 'reading', origin, originHex: nodeIdHex(origin), payload: traffic.reading(1, seq), compressed: true } as never);
      clock.runUntil(clock.now() + 1000);
    },
    receipt(runs: { first: number; last: number }[]) {
      onMessage(deviceTopic(device, 'ack'), Buffer.from(traffic.receiptOf(1, runs)));
    },
  };
}

test('a receipt naming a run above a missing reading is held like any other; one behind a reading published a while ago goes at once', () => {
  const rig = bridgeRig();
  rig.relay(0);
  rig.receipt([{ first: 0, last: 0 }]);
  assert.equal(rig.sent, [0], 'the first receipt goes at once');
  rig.relay(1);
  rig.receipt([{ first: 0, last: 1 }]);
  rig.clock.runUntil(rig.clock.now() + 300_000);
  // seq 2 was lost on its way; 3 arrived
  rig.relay(3);
  rig.receipt([{ first: 0, last: 1 }, { first: 3, last: 3 }]);
  rig.clock.runUntil(rig.clock.now() + 60_000);
  assert.equal(rig.sent, [0], 'the receipt showing seq 2 missing is held');
  rig.clock.runUntil(HOLD_MS + 10_000);
  assert.equal(rig.sent, [0, 3], 'it goes when the hold is over, naming the runs held');
  // the origin sends seq 2 again at its receipt timeout: it fills the gap, it is no repeat
  rig.relay(2);
  assert.is(rig.bridge.counters.again, 0);
  rig.receipt([{ first: 0, last: 3 }]);
  rig.relay(4);
  rig.relay(5);
  rig.clock.runUntil(rig.clock.now() + 3000);
  rig.receipt([{ first: 0, last: 4 }]);
  assert.equal(rig.sent, [0, 3, 4], 'a receipt behind seq 5, published seconds ago, goes at once');
});

test('in the simulator nothing goes again on gap receipts or drop notices: only at the receipt timeout', () => {
  const r = runMesh({ nodes: 50, topology: 'random', seed: 1, seconds: 3600, boxes: shippedBoxes({ seed: 1, intervalS: 300 }) });
  const boxes = r.boxTotals;
  assert.is(boxes.resentGap, 0, JSON.stringify(boxes));
  assert.is(boxes.resent, boxes.resentTimeout);
  // of those, the ones the gateway held already (their receipt was lost, or late)
  assert.type(boxes.resentTimeout_held, 'number');
  assert.ok(boxes.resentTimeout_held! <= boxes.resentTimeout!, JSON.stringify(boxes));
  assert.is(r.totals.drop_notices.sent, 0);
  assert.ok(r.figures.delivery_ratio >= 0.99, `delivery ${r.figures.delivery_ratio}`);
});

test.run();
