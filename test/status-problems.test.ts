// The status page's problem banner: each problem named, with what to do, and nothing on a
// healthy box.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findProblems } from '../agent/status/problems.ts';
import type { StatusState } from '../agent/status/state.ts';

const NOW = 10_000_000;

function healthy(): Omit<StatusState, 'problems'> {
  return {
    box: { device: 'd', owner: null, version: '0', startedAtMs: NOW - 3_600_000, time: { quality: 'ntp', jumps: 0 }, disk: { usedBytes: 1, totalBytes: 10, percent: 10 } },
    sensors: [{ name: 'temp', kind: 'simulated', ok: true, failures: 0, values: [] }],
    queue: { waiting: 3, oldestStoredMs: NOW, dropped: 0, head: 2, lastReceiptSeq: null, lastReceiptAtMs: null },
    uplink: { broker: 'mqtt://broker', connected: true, connectedSinceMs: NOW - 1000, mqttVersion: '5', errorsLastHour: 0, viaMesh: null, downSinceMs: null },
    mesh: null,
  };
}
const ids = (state: Omit<StatusState, 'problems'>, noUplinkAlertS = 600) => findProblems(state, { nowMs: NOW, noUplinkAlertS }).map((p) => p.id);

test('a healthy box has no problem', () => {
  assert.equal(ids(healthy()), []);
});

test('no uplink: a problem only once it has lasted longer than the threshold, and not while the mesh carries readings', () => {
  const state = healthy();
  state.uplink = { ...state.uplink, connected: false, connectedSinceMs: null, downSinceMs: NOW - 599_000 };
  assert.equal(ids(state), []);
  state.uplink.downSinceMs = NOW - 601_000;
  assert.equal(ids(state), ['uplink']);
  const problem = findProblems(state, { nowMs: NOW, noUplinkAlertS: 600 })[0]!;
  assert.match(problem.text, /No uplink for 10 min/);
  assert.match(problem.action, /mqtt:\/\/broker/);
  state.uplink.viaMesh = 'abcdef';
  assert.equal(ids(state), []);
});

test('a failing sensor, an exhausted duty-cycle budget, a full disk and an unsynchronised clock are each named', () => {
  const state = healthy();
  state.sensors = [{ name: 'temp', kind: 'sht3x', ok: false, failures: 3, error: 'no answer (crc)', values: [] }];
  state.mesh = {
    node: 'a', uplinkVia: null, neighbours: [], routes: [], counters: { forwarded: 0, delivered: 0, dropped: 0, rejected: 0, heldForBudget: 0 },
    links: [{ name: 'kiss:/dev/ttyUSB0', txFrames: 1, rxFrames: 1, txBytes: 1, rxBytes: 1, airtimeLastHourMs: 36_000, allowanceMs: 36_000, budgetLeftMs: 0 }],
  };
  state.box.disk = { usedBytes: 95, totalBytes: 100, percent: 95 };
  state.box.time = { quality: 'none', jumps: 0 };
  assert.equal(ids(state), ['sensor:temp', 'budget:kiss:/dev/ttyUSB0', 'disk', 'clock']);
  for (const p of findProblems(state, { nowMs: NOW, noUplinkAlertS: 600 })) assert.ok(p.action.length > 10, `${p.id} says what to do`);
});

test.run();
