// The serial radio links against emulated modems on pseudo-terminals (socat): a plain
// KISS TNC, an RNode, REYAX AT modems; frames across the simulated medium, unplug and
// replug, the duty cycle checked against the emulators' own airtime logs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { realClock } from '../drivers/clock.ts';
import type { ReceivedFrame } from '../drivers/link.ts';
import { KissLink } from '../drivers/radio/kiss-link.ts';
import type { RadioLink, RadioSettings } from '../drivers/radio/radio-link.ts';
import { ReyaxLink } from '../drivers/radio/reyax-link.ts';
import { Channel } from './emulators/channel.ts';
import { framesOverBudget, KissTnc, ReyaxModem, RNodeModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { tempDir } from './helpers/cli.ts';
import { until } from './helpers/system.ts';

const RADIO: RadioSettings = { region: 'EU868', frequencyHz: 869_525_000, bandwidthHz: 125_000, spreadingFactor: 7, codingRate: 5, txPowerDbm: 14 };
const dir = tempDir('iop-serial-');
const channels: Channel[] = [];
const links: RadioLink[] = [];
test.after(async () => {
  for (const l of links) l.close();
  for (const c of channels) await c.close();
  dir.remove();
});

function logger() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), debug: () => {} } };
}

function kiss(path: string, address: string, extra: Partial<ConstructorParameters<typeof KissLink>[0]> = {}) {
  const { lines, log } = logger();
  const link = new KissLink({ path, baud: 115200, radio: RADIO, address, clock: realClock, log, probeMs: 300, reopenMinMs: 200, ...extra });
  links.push(link);
  const heard: ReceivedFrame[] = [];
  link.onReceive((f) => heard.push(f));
  link.start();
  return { link, lines, heard };
}

function reyax(path: string, address: string, extra: Partial<ConstructorParameters<typeof ReyaxLink>[0]> = {}) {
  const { lines, log } = logger();
  const link = new ReyaxLink({ path, baud: 115200, radio: RADIO, networkId: 5, address, clock: realClock, log, reopenMinMs: 200, replyTimeoutMs: 400, ...extra });
  links.push(link);
  const heard: ReceivedFrame[] = [];
  link.onReceive((f) => heard.push(f));
  link.start();
  return { link, lines, heard };
}

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no end within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

if (!haveSocat()) {
  console.log('serial-radios: skipped, needs socat (apt-get install socat)');
} else {
  test('a plain TNC gets the probe and then data frames only; an RNode is detected, configured and reports RSSI/SNR', () => within(30_000, 'tnc/rnode', (async () => {
    const channel = new Channel();
    channels.push(channel);
    const tnc = await channel.add(join(dir.path, 'tnc'), 0, () => new KissTnc(RADIO));
    const rnode = await channel.add(join(dir.path, 'rnode'), 500, () => new RNodeModem());
    channel.connect();
    const a = kiss(join(dir.path, 'tnc'), '0000000a');
    const b = kiss(join(dir.path, 'rnode'), '0000000b');
    await until('both links up', () => a.link.isUp && b.link.isUp, 10_000);
    assert.is(a.link.kind, 'tnc');
    assert.is(b.link.kind, 'rnode');
    assert.match(b.lines.join('\n'), /RNode firmware 1\.74/);
    assert.match(b.lines.join('\n'), /RNode configured: 869525000 Hz, 125 kHz, SF7, 4\/5, 14 dBm/);
    a.link.send(bytes(200, 0xc0));
    b.link.send(bytes(20, 0xdb), '0000000a');
    await until('frames across', () => a.heard.length === 1 && b.heard.length === 1, 5000);
    assert.equal([...b.heard[0]!.data], [...bytes(200, 0xc0)]);
    assert.is(b.heard[0]!.from, '0000000a');
    assert.ok(b.heard[0]!.rssi !== undefined && b.heard[0]!.snr !== undefined, 'RNode passes RSSI and SNR');
    assert.is(a.heard[0]!.to, '0000000a');
    assert.equal(channel.modem(tnc).refused, ['command 0x8'], 'the TNC saw the probe and nothing else but data');
    assert.equal(channel.modem(rnode).refused, []);
    assert.is(a.link.stats.txFrames, 1);
    assert.ok(Math.abs(channel.airLog(tnc)[0]!.airtimeMs - a.link.stats.airtimeMs) < 0.001, 'the link computes the airtime the radio spends');
  })()));

  test('an RNode that rejects a setting leaves the link down with a log line naming it', () => within(20_000, 'rnode reject', (async () => {
    const channel = new Channel();
    channels.push(channel);
    await channel.add(join(dir.path, 'rnode-bad'), 0, () => new RNodeModem());
    const a = kiss(join(dir.path, 'rnode-bad'), '0000000c', { radio: { ...RADIO, spreadingFactor: 13 } });
    await until('a rejection logged', () => /error 0x2 while setting sf/.test(a.lines.join('\n')), 10_000);
    assert.is(a.link.isUp, false);
    assert.is(a.link.errors.configFailures, 1);
  })()));

  test('REYAX: configured by AT commands, frames both ways with RSSI/SNR, +ERR named and counted, garbage skipped, a slow +OK respected', () => within(40_000, 'reyax', (async () => {
    const channel = new Channel();
    channels.push(channel);
    const slow = { okDelayMs: 300 } as { okDelayMs: number; sendError?: number };
    const m0 = await channel.add(join(dir.path, 'rylr0'), 0, () => new ReyaxModem(slow));
    await channel.add(join(dir.path, 'rylr1'), 500, () => new ReyaxModem());
    channel.connect();
    const a = reyax(join(dir.path, 'rylr0'), '000000a0', { replyTimeoutMs: 1000 });
    const b = reyax(join(dir.path, 'rylr1'), '000000b0');
    await until('both modems configured', () => a.link.isUp && b.link.isUp, 10_000);
    const modem = channel.modem(m0) as ReyaxModem;
    assert.equal(modem.commands.slice(0, 6), ['AT+RESET', 'AT+ADDRESS=1', 'AT+NETWORKID=5', 'AT+BAND=869525000', 'AT+PARAMETER=7,7,1,12', 'AT+CRFOP=14']);
    assert.is(a.link.mtu, 171);
    for (let i = 0; i < 3; i++) a.link.send(bytes(a.link.mtu, i));
    await until('three frames at b', () => b.heard.length === 3, 10_000);
    assert.equal(b.heard.map((f) => f.data[0]), [0, 1, 2]);
    assert.ok(b.heard[0]!.rssi !== undefined);
    assert.equal(modem.refused, [], 'one AT+SEND at a time');
    modem.garbage('\x00\xff\xfejunk\r\nnoise without a plus\r\n+RCV=1,99,short\r\n');
    slow.sendError = 10;
    a.link.send(bytes(10));
    await until('the error counted', () => a.link.errors.modemError_TX_TIMEOUT === 1, 5000);
    slow.sendError = undefined;
    b.link.send(bytes(5, 9));
    await until('a still hears', () => a.heard.length === 1, 5000);
    assert.ok((a.link.errors.rxGarbageLine ?? 0) >= 2, JSON.stringify(a.link.errors));
  })()));

  test('REYAX: a modem that resets by itself is configured again; one that stops answering is reset', () => within(40_000, 'reyax reset', (async () => {
    const channel = new Channel();
    channels.push(channel);
    const behaviour = { silent: false };
    const m = await channel.add(join(dir.path, 'rylr2'), 0, () => new ReyaxModem(behaviour));
    const a = reyax(join(dir.path, 'rylr2'), '000000c0');
    await until('configured', () => a.link.isUp, 10_000);
    const modem = channel.modem(m) as ReyaxModem;
    modem.spontaneousReset();
    await until('configured again', () => modem.commands.filter((c) => c === 'AT+RESET').length === 2 && a.link.isUp, 10_000);
    assert.is(a.link.errors.modemResets, 1);
    behaviour.silent = true;
    a.link.send(bytes(10));
    a.link.send(bytes(10));
    await until('the silent modem reset', () => /stopped answering; resetting/.test(a.lines.join('\n')), 10_000);
    assert.is(a.link.isUp, false);
    behaviour.silent = false;
    await until('up again after the retry', () => a.link.isUp, 15_000);
  })()));

  test('unplugging the radio takes the link down with a log line; plugged back, the same path reopens and frames flow', () => within(40_000, 'replug', (async () => {
    const channel = new Channel();
    channels.push(channel);
    const r0 = await channel.add(join(dir.path, 'usb0'), 0, () => new RNodeModem());
    await channel.add(join(dir.path, 'usb1'), 500, () => new KissTnc(RADIO));
    channel.connect();
    const a = kiss(join(dir.path, 'usb0'), '000000d0');
    const b = kiss(join(dir.path, 'usb1'), '000000d1');
    await until('up', () => a.link.isUp && b.link.isUp, 10_000);
    await channel.unplug(r0);
    await until('down', () => !a.link.isUp, 5000);
    assert.match(a.lines.join('\n'), /link down/);
    a.link.send(bytes(10));
    assert.is(a.link.errors.droppedLinkDown, 1);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await channel.plug(r0);
    await until('up again', () => a.link.isUp, 15_000);
    assert.is(a.link.kind, 'rnode', 'the fresh RNode is configured again');
    a.link.send(bytes(10, 3));
    await until('heard after the replug', () => b.heard.length === 1, 5000);
    assert.ok(a.link.line.counters.opens >= 2);
  })()));

  test('held at its duty-cycle limit a link puts no frame on air over budget (the emulator\'s log), and the held frames drain', () => within(60_000, 'budget', (async () => {
    const channel = new Channel();
    channels.push(channel);
    const windowMs = 6000;
    const r = await channel.add(join(dir.path, 'duty'), 0, () => new KissTnc(RADIO));
    const a = kiss(join(dir.path, 'duty'), '000000e0', { dutyWindowMs: windowMs });
    await until('up', () => a.link.isUp, 10_000);
    const allowance = a.link.duty.allowanceMs;
    const perFrame = a.link.airtimeMs(100);
    assert.is(allowance, 600, '10 % of the window');
    for (let i = 0; i < 10; i++) a.link.send(bytes(100, i));
    assert.ok(a.link.budgetMs() < perFrame, 'queued frames count against the budget reported to the mesh');
    await until('all ten on air', () => channel.airLog(r).length === 10, 40_000);
    // The emulator stamps a frame a few ms after the link's ledger did: a window 100 ms
    // shorter keeps that jitter from counting as an excess.
    assert.is(framesOverBudget(channel.airLog(r), allowance, windowMs - 100), 0, 'no frame over budget in the emulator\'s log');
    assert.ok((a.link.errors.heldForBudget ?? 0) >= 2, JSON.stringify(a.link.errors));
    assert.is(a.link.report().airtimeLastHourMs as number > 0, true);
  })()));
}

test.run();
