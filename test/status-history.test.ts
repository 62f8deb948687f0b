// The charts' last hour: one point per 10 s bucket (the latest), nothing older than an
// hour, and the packed form the page's first state carries gives the points back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BUCKET_MS, History, HISTORY_MS } from '../agent/status/history.ts';

test('readings ten times a second keep one point per bucket, and an hour at most', () => {
  const history = new History();
  const start = 1_800_000_000_000;
  let now = start;
  for (; now < start + 2 * HISTORY_MS; now += 100) history.onPack({ time: now / 1000, records: [{ n: 'temp', u: 'Cel', v: (now - start) / 1000 }, { n: 'label', vs: 'x' }] }, now);
  const series = history.series.get('temp')!;
  assert.is(series.unit, 'Cel');
  assert.ok(series.points.length <= HISTORY_MS / BUCKET_MS + 1, `${series.points.length} points`);
  assert.ok(series.points[0]![0] >= now - 100 - HISTORY_MS, 'nothing older than an hour');
  const last = series.points[series.points.length - 1]!;
  assert.equal(last, [now - 100, (now - 100 - start) / 1000], 'the latest value of the last bucket');
  // Kept in a ring that wrapped many times: still oldest first, one bucket apart.
  assert.ok(series.points.every(([atMs], i, all) => i === 0 || atMs - all[i - 1]![0] === BUCKET_MS), 'one point a bucket, in order');
  assert.not.ok(history.series.has('label'), 'only numbers are charted');
});

test('the packed form gives back every point (times to 100 ms, values to 6 digits)', () => {
  const history = new History();
  const t = 1_800_000_000_000;
  const values = [20.123456789, 21, -3.5, 101325];
  values.forEach((v, i) => history.onPack({ time: (t + i * BUCKET_MS + 37) / 1000, records: [{ n: 'q', u: 'Pa', v }] }, t + i * BUCKET_MS));
  const packed = JSON.parse(JSON.stringify(history)).q as { unit: string; t0: number; dt: number[]; v: number[] };
  let tick = packed.t0;
  const points = packed.v.map((v, i) => [(tick += packed.dt[i]!) * 100, v]);
  assert.equal(points, values.map((v, i) => [t + i * BUCKET_MS, Number(v.toPrecision(6))]));
  assert.is(packed.unit, 'Pa');
});

test.run();
