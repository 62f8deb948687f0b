// kill -9 of the agent 20 times at random moments while it samples at 10 Hz and
// forwards: the consumer ends with every seq exactly once, an unbroken chain, and
// every message verified.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { runCli } from './helpers/cli.ts';
import { testDeployment, boxConfig, gatewayKey, queued, readings, sleep, start, until } from './helpers/system.ts';

const { dir, broker, running } = testDeployment(test);

test('20 kill -9 at random moments while sampling at 10 Hz: every seq exactly once, chain unbroken, all verified', async () => {
  const gwDir = join(dir.path, 'gw');
  const key = await gatewayKey(gwDir);
  const boxDir = join(dir.path, 'box');
  const boxId = JSON.parse((await runCli(['id', '--json', '--state-dir', boxDir])).stdout.toString()).id;
  const gateway = start(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any']);
  const subscriber = start(['subscribe', '--broker', broker.url, '--json', '--device', boxId]);
  running.push(gateway, subscriber);
  await until('gateway and subscriber connected', () => /connected/.test(gateway.stderr()) && /connected/.test(subscriber.stderr()), 10_000);
  const config = boxConfig(dir.path, 'box', { gatewayKeys: [key] });

  let killed = 0;
  for (let round = 0; round < 20; round++) {
    const box = start(['run', '--config', config, '--broker', broker.url, '--log-level', 'debug']);
    await until('box sampling', () => /stored seq/.test(box.stderr()), 15_000, 20);
    await sleep(Math.random() * 1200);
    const result = await box.stop('SIGKILL');
    if (result.signal === 'SIGKILL') killed++;
  }
  assert.ok(killed >= 18, `${killed} of 20 kills landed while running`);

  // Restart for good and let the queue drain.
  const last = start(['run', '--config', config, '--broker', broker.url, '--log-level', 'debug']);
  running.push(last);
  // Stop it only once it samples: a SIGTERM before its handlers are installed (a
  // loaded machine can take that long to start) ends it by the signal, not by exit 0.
  await until('box sampling again', () => /stored seq/.test(last.stderr()), 15_000, 20);
  await sleep(500);
  const stopped = await last.stop();
  assert.is(stopped.code, 0, stopped.stderr);
  await until('queue drained', async () => {
    const box = start(['run', '--config', config, '--broker', broker.url, '--interval', '86400000']);
    await sleep(2500);
    await box.stop();
    return (await queued(boxDir)) === 0;
  }, 60_000, 0);

  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(join(boxDir, 'store.db'));
  const head = (db.prepare('SELECT seq FROM chain_head').get() as { seq: number }).seq;
  db.close();
  await until('subscriber has everything', () => readings(subscriber).length >= head + 1, 10_000);
  const seen = readings(subscriber);
  assert.equal(seen.map((r) => r.seq), Array.from({ length: head + 1 }, (_, i) => i), 'every seq exactly once');
  seen.forEach((r, i) => {
    assert.is(r.valid, true);
    assert.is(r.chain, i === 0 ? 'start' : 'ok');
  });
  const summary = await subscriber.stop('SIGINT');
  const counts = JSON.parse(/summary (\{.*\})/.exec(summary.stderr)![1]!);
  assert.equal(counts.rejected, {}, 'nothing the box sent was rejected');
  assert.ok(head > 100, `${head + 1} readings`);
  const stats = JSON.parse((await gateway.stop()).stdout.toString());
  assert.is(stats.accepted, head + 1);
});

test.run();
