// A box held at its duty-cycle limit: two `iop-agent run` boxes on emulated radios, the
// ledger's window shortened (IOP_AGENT_DUTY_WINDOW_MS, a test knob) so the limit bites
// within seconds. The far box has more readings than its budget lets through at once:
// its link holds frames (counted), the emulator's own airtime log shows no frame over
// budget, and every reading still reaches the gateway.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { subBandOf, type SubBand } from '../drivers/radio/duty-cycle.ts';
import { framesOverBudget, KissTnc, RNodeModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { runCli } from './helpers/cli.ts';
import { kissLink, meshStatus, radioBoxConfig, radioDeployment, TEST_RADIO } from './helpers/radio-mesh.ts';
import { deviceId, queuedSeqs, until } from './helpers/system.ts';

const { dir, broker, launch, channel: newChannel, uplink } = radioDeployment(test);
const WINDOW_MS = 5000;

if (!haveSocat()) {
  console.log('radio-budget: skipped, needs socat and mosquitto');
} else {
  test('held at its duty-cycle limit a box sends no frame over budget (the emulator\'s log), and its readings drain', async () => {
    const channel = newChannel();
    const paths = [join(dir.path, 'radio0'), join(dir.path, 'radio1')];
    await channel.add(paths[0]!, 0, () => new RNodeModem());
    await channel.add(paths[1]!, 500, () => new KissTnc(TEST_RADIO));
    channel.connect();
    const far = join(dir.path, 'box1');
    const device = await deviceId(far);
    const up = await uplink('budget', device);
    const key = up.key;
    assert.is((await runCli(['sample', '--count', '12', '--out', '/dev/null', '--state-dir', far])).code, 0);
    const env = { env: { IOP_AGENT_DUTY_WINDOW_MS: String(WINDOW_MS) } };
    launch(['run', '--config', radioBoxConfig(dir.path, 'box0', [kissLink(paths[0]!)], { gatewayKey: key, broker: broker.url })], env);
    const box = launch(['run', '--config', radioBoxConfig(dir.path, 'box1', [kissLink(paths[1]!)], { gatewayKey: key })], env);
    await until('the shortened window logged', () => /duty-cycle window shortened to 5000 ms/.test(box.stderr()), 20_000);
    await until('every reading at the gateway', () => new Set(up.gatewayChain().map((r) => r.seq)).size >= 12, 150_000);
    await until('box 1 drained', async () => (await queuedSeqs(far)).length === 0, 60_000);
    const status = await meshStatus(far);
    const band = subBandOf(TEST_RADIO.region, TEST_RADIO.frequencyHz, TEST_RADIO.bandwidthHz) as SubBand;
    // The emulator stamps a frame when this process reads it from the pty, some ms after
    // the agent's ledger counted it (more on a loaded machine): a window 500 ms shorter
    // keeps that jitter from counting as an excess. Without the budget the first burst
    // alone (12 readings at once) would be over it.
    const log = channel.airLog(1);
    assert.is(framesOverBudget(log, band.dutyCycle! * WINDOW_MS, WINDOW_MS - 500), 0, 'no frame over budget in the emulator\'s airtime log');
    const link = status.links[0];
    // The mesh waits for budget before it hands a data frame to the link; the link itself
    // holds what still does not fit (control and acks). Either way the box was at its limit.
    const held = (link.errors.heldForBudget ?? 0) + status.counters.heldForBudget;
    assert.ok(held > 0, `the box was held at its limit: link ${JSON.stringify(link.errors)}, mesh heldForBudget ${status.counters.heldForBudget}`);
    assert.is(link.allowanceMs, WINDOW_MS / 10);
    const total = log.reduce((s, t) => s + t.airtimeMs, 0);
    const spanS = (log.at(-1)!.at - log[0]!.at) / 1000;
    console.log(`radio-budget: ${log.length} frames, ${total.toFixed(0)} ms on air over ${spanS.toFixed(1)} s (allowance ${WINDOW_MS / 10} ms per ${WINDOW_MS / 1000} s), held ${held} times (link ${link.errors.heldForBudget ?? 0}, mesh ${status.counters.heldForBudget})`);
  });
}

test.run();
