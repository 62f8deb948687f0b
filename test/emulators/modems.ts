// Emulated LoRa modems for the tests, each a state machine between a host line (the
// agent's serial port) and the air (a channel): a plain KISS TNC, an RNode, and a REYAX
// AT modem. Each keeps a log of what it put on air with its own airtime computation, so
// tests check the agent's duty cycle against what the "radio" saw.
import { encodeKiss, KissDeframer } from '../../drivers/serial/kiss.ts';
import { RNODE, DETECT_REQUEST, DETECT_RESPONSE, RSSI_OFFSET } from '../../drivers/serial/rnode.ts';
import { LineSplitter, REYAX_BANDWIDTHS, REYAX_OVERHEAD_BYTES, reyaxErrorName } from '../../drivers/serial/reyax.ts';
import { loraAirtimeMs, profileOf } from '../../drivers/radio/lora-airtime.ts';

export interface AirSettings { spreadingFactor: number; bandwidthHz: number; codingRate: number; preambleSymbols?: number }

export interface Transmission { at: number; bytes: number; airtimeMs: number }

export interface Modem {
  readonly kind: string;
  /** frames this modem put on air */
  readonly airLog: Transmission[];
  /** bytes from the host */
  fromHost(bytes: Uint8Array): void;
  /** a frame heard on air */
  fromAir(data: Uint8Array, rssi: number, snr: number): void;
  /** wiring: to the host line and to the channel */
  toHost: (bytes: Uint8Array) => void;
  toAir: (data: Uint8Array) => void;
  /** commands it did not understand or refused, for assertions */
  readonly refused: string[];
}

abstract class BaseModem implements Modem {
  abstract readonly kind: string;
  readonly airLog: Transmission[] = [];
  readonly refused: string[] = [];
  toHost: (bytes: Uint8Array) => void = () => {};
  toAir: (data: Uint8Array) => void = () => {};
  protected settings: AirSettings | undefined;

  constructor(settings?: AirSettings) {
    this.settings = settings;
  }

  abstract fromHost(bytes: Uint8Array): void;
  abstract fromAir(data: Uint8Array, rssi: number, snr: number): void;

  protected transmit(data: Uint8Array, bytesOnAir = data.length): void {
    const s = this.settings;
    if (!s) {
      this.refused.push('transmit before configuration');
      return;
    }
    this.airLog.push({ at: performance.now(), bytes: bytesOnAir, airtimeMs: loraAirtimeMs(bytesOnAir, profileOf(s)) });
    this.toAir(data);
  }
}

/** A plain KISS TNC: data frames on port 0 go on air; any other command is noted as refused. */
export class KissTnc extends BaseModem {
  readonly kind = 'tnc';
  private readonly deframer = new KissDeframer(600);

  fromHost(bytes: Uint8Array): void {
    for (const f of this.deframer.push(bytes)) {
      if (f.command === 0x00) this.transmit(f.data);
      else this.refused.push(`command 0x${f.command.toString(16)}`);
    }
  }

  fromAir(data: Uint8Array): void {
    this.toHost(encodeKiss(0x00, data));
  }
}

/** An RNode: answers DETECT and the firmware request, echoes valid settings, rejects bad ones with CMD_ERROR. */
export class RNodeModem extends BaseModem {
  readonly kind = 'rnode';
  private readonly deframer = new KissDeframer(600);
  private radio: Partial<{ frequency: number; bandwidth: number; txpower: number; sf: number; cr: number; on: boolean }> = {};

  constructor() {
    super();
  }

  fromHost(bytes: Uint8Array): void {
    for (const f of this.deframer.push(bytes)) this.command(f.command, f.data);
  }

  fromAir(data: Uint8Array, rssi: number, snr: number): void {
    if (!this.radio.on) return;
    this.toHost(encodeKiss(RNODE.STAT_RSSI, Uint8Array.of(Math.max(0, Math.min(255, rssi + RSSI_OFFSET)))));
    this.toHost(encodeKiss(RNODE.STAT_SNR, Uint8Array.of((Math.round(snr * 4) + 256) & 0xff)));
    this.toHost(encodeKiss(0x00, data));
  }

  private command(command: number, data: Uint8Array): void {
    const u32 = data.length === 4 ? ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0 : -1;
    const reject = (what: string) => {
      this.refused.push(what);
      this.toHost(encodeKiss(RNODE.ERROR, Uint8Array.of(0x02)));
    };
    switch (command) {
      case 0x00:
        if (this.radio.on) this.transmit(data);
        else this.refused.push('data while the radio is off');
        return;
      case RNODE.DETECT:
        if (data[0] === DETECT_REQUEST) this.toHost(encodeKiss(RNODE.DETECT, Uint8Array.of(DETECT_RESPONSE)));
        return;
      case RNODE.FW_VERSION: this.toHost(encodeKiss(RNODE.FW_VERSION, Uint8Array.of(1, 74))); return;
      case RNODE.FREQUENCY:
        if (u32 < 137_000_000 || u32 > 1_020_000_000) return reject(`frequency ${u32}`);
        this.radio.frequency = u32;
        break;
      case RNODE.BANDWIDTH:
        if (u32 < 7800 || u32 > 1_625_000) return reject(`bandwidth ${u32}`);
        this.radio.bandwidth = u32;
        break;
      case RNODE.TXPOWER: this.radio.txpower = data[0]!; break;
      case RNODE.SF:
        if (data[0]! < 5 || data[0]! > 12) return reject(`sf ${data[0]}`);
        this.radio.sf = data[0]!;
        break;
      case RNODE.CR:
        if (data[0]! < 5 || data[0]! > 8) return reject(`cr ${data[0]}`);
        this.radio.cr = data[0]!;
        break;
      case RNODE.RADIO_STATE:
        this.radio.on = data[0] === 0x01;
        break;
      default:
        return reject(`command 0x${command.toString(16)}`);
    }
    const { bandwidth, sf, cr } = this.radio;
    if (bandwidth && sf && cr) this.settings = { bandwidthHz: bandwidth, spreadingFactor: sf, codingRate: cr };
    this.toHost(encodeKiss(command, data));
  }
}

export interface ReyaxBehaviour {
  /** delay before +OK after AT+SEND (a slow modem) */
  okDelayMs?: number;
  /** stop answering anything */
  silent?: boolean;
  /** answer AT+SEND with this +ERR code instead of sending */
  sendError?: number;
}

/** A REYAX RYLR998: the AT state machine, +ERR cases, +RCV lines. */
export class ReyaxModem extends BaseModem {
  readonly kind = 'reyax';
  readonly behaviour: ReyaxBehaviour;
  readonly commands: string[] = [];
  private readonly splitter = new LineSplitter(400);
  private address = 0;
  private networkId = 18;
  private ready = true;
  private sending = false;

  constructor(behaviour: ReyaxBehaviour = {}) {
    super();
    this.behaviour = behaviour;
  }

  get network(): number {
    return this.networkId;
  }

  /** A reset the modem does by itself (power glitch): +READY, then it takes commands again. */
  spontaneousReset(): void {
    this.reply('+READY');
  }

  garbage(text: string): void {
    this.toHost(new TextEncoder().encode(text));
  }

  fromHost(bytes: Uint8Array): void {
    for (const line of this.splitter.push(bytes)) this.command(line);
  }

  fromAir(data: Uint8Array, rssi: number, snr: number): void {
    const text = new TextDecoder().decode(data);
    this.reply(`+RCV=${this.address},${text.length},${text},${rssi},${snr}`);
  }

  private reply(line: string, delayMs = 0): void {
    if (this.behaviour.silent) return;
    const send = () => this.toHost(new TextEncoder().encode(`${line}\r\n`));
    if (delayMs) setTimeout(send, delayMs);
    else send();
  }

  private error(code: number, what: string): void {
    this.refused.push(`${what}: ${reyaxErrorName(code)}`);
    this.reply(`+ERR=${code}`);
  }

  private command(line: string): void {
    this.commands.push(line.startsWith('AT+SEND=') ? 'AT+SEND' : line);
    if (!line.startsWith('AT')) return this.error(2, line);
    const [name, value = ''] = line.slice(2).split('=', 2) as [string, string?];
    const full = line.indexOf('=') >= 0 ? line.slice(line.indexOf('=') + 1) : value;
    switch (name) {
      case '': return this.reply('+OK');
      case '+RESET':
        this.ready = false;
        this.reply('+OK');
        setTimeout(() => {
          this.ready = true;
          this.reply('+READY');
        }, 30);
        return;
      case '+ADDRESS': this.address = Number(full); return this.reply('+OK');
      case '+NETWORKID': this.networkId = Number(full); return this.reply('+OK');
      case '+BAND': return /^\d{9}$/.test(full) ? this.reply('+OK') : this.error(4, line);
      case '+CRFOP': return this.reply('+OK');
      case '+PARAMETER': {
        const [sf, bw, cr, preamble] = full.split(',').map(Number) as [number, number, number, number];
        const bandwidthHz = Number(Object.entries(REYAX_BANDWIDTHS).find(([, code]) => code === bw)?.[0]);
        if (!(sf >= 5 && sf <= 12) || !bandwidthHz || !(cr >= 1 && cr <= 4)) return this.error(4, line);
        if (this.networkId !== 18 && preamble !== 12) return this.error(18, line);
        this.settings = { spreadingFactor: sf, bandwidthHz, codingRate: cr + 4, preambleSymbols: preamble };
        return this.reply('+OK');
      }
      case '+SEND': {
        if (!this.ready) return this.error(17, 'send during reset');
        const m = /^(\d+),(\d+),(.*)$/.exec(full);
        if (!m) return this.error(4, line);
        const data = m[3]!;
        if (Number(m[2]) > 240) return this.error(13, 'send');
        if (Number(m[2]) !== data.length) return this.error(5, 'send');
        if (this.behaviour.sendError) return this.error(this.behaviour.sendError, 'send');
        if (this.sending) this.refused.push('AT+SEND before the previous +OK');
        this.sending = true;
        setTimeout(() => (this.sending = false), this.behaviour.okDelayMs ?? 0);
        this.transmit(new TextEncoder().encode(data), data.length + REYAX_OVERHEAD_BYTES);
        return this.reply('+OK', this.behaviour.okDelayMs ?? 0);
      }
      default: return this.error(4, line);
    }
  }
}

/**
 * Frames in an emulator's air log that put the radio over `allowanceMs` of airtime in the
 * `windowMs` before them, by the emulator's own clock.
 */
export function framesOverBudget(log: Transmission[], allowanceMs: number, windowMs: number): number {
  let over = 0;
  let start = 0;
  let sum = 0;
  for (const t of log) {
    sum += t.airtimeMs;
    while (log[start]!.at <= t.at - windowMs) sum -= log[start++]!.airtimeMs;
    if (sum > allowanceMs + 1e-6) over++;
  }
  return over;
}
