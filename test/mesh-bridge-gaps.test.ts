// A reading lost on its way through the mesh is recovered at the next reading's receipt:
// the gateway (and the simulator's, which receipts as it does) names the runs it holds
// above a gap, the relay bridge passes such a receipt to the origin at once instead of
// holding it 15 minutes, and the origin's forwarder sends the missing reading again.
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
import { simulate } from '../mesh/simulation.ts';
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

test('a receipt naming a run above a missing reading goes to the origin soon, unless the gap closes; the same gap again only after a while', () => {
  const rig = bridgeRig();
  rig.relay(0);
  rig.receipt([{ first: 0, last: 0 }]);
  assert.equal(rig.sent, [0], 'the first receipt goes at once');
  rig.relay(1);
  rig.receipt([{ first: 0, last: 1 }]);
  assert.equal(rig.sent, [0], 'an ordinary receipt is held');
  rig.clock.runUntil(rig.clock.now() + 300_000);
  // seq 3 overtook seq 2, which comes a few seconds later: nothing to tell
  rig.relay(3);
  rig.receipt([{ first: 0, last: 1 }, { first: 3, last: 3 }]);
  rig.relay(2);
  rig.receipt([{ first: 0, last: 3 }]);
  rig.clock.runUntil(rig.clock.now() + 60_000);
  assert.equal(rig.sent, [0], 'a gap that closed within the wait is not told');
  rig.clock.runUntil(rig.clock.now() + 240_000);
  // seq 4 was lost on its way; 5 arrived
  rig.relay(5);
  rig.receipt([{ first: 0, last: 3 }, { first: 5, last: 5 }]);
  rig.clock.runUntil(rig.clock.now() + 16_000);
  assert.equal(rig.sent, [0, 5], 'the receipt showing seq 4 missing goes within seconds, not after the hold');
  assert.is(rig.bridge.counters.gaps, 2);
  rig.relay(6);
  rig.receipt([{ first: 0, last: 3 }, { first: 5, last: 6 }]);
  rig.clock.runUntil(rig.clock.now() + 16_000);
  assert.equal(rig.sent, [0, 5], 'the same gap a few seconds later: the resend may be on its way');
  rig.clock.runUntil(rig.clock.now() + 300_000);
  rig.relay(7);
  rig.receipt([{ first: 0, last: 3 }, { first: 5, last: 7 }]);
  rig.clock.runUntil(rig.clock.now() + 16_000);
  assert.equal(rig.sent, [0, 5, 7], 'the gap still there minutes later is told again');
});

test('in the simulator a reading lost on the mesh is sent again on a gap receipt, not only at the receipt timeout', () => {
  const r = simulate({ nodes: 50, topology: 'random', seed: 1, seconds: 1800, boxes: shippedBoxes({ seed: 1, intervalS: 300 }) });
  const boxes = r.box_totals;
  assert.ok(boxes.bridge_gaps! > 0 && boxes.resentGap! > 0, JSON.stringify(boxes));
});

test.run();
