// The configuration schema: one source for validation, defaults and the TypeScript type.
import * as z from 'zod';
import { SIMULATED_QUANTITIES } from '../../sensors/simulated.ts';
import { IIO_CHANNELS } from '../../sensors/iio.ts';
import { DEFAULT_STATE_DIR } from '../state-dir.ts';
import { REGIONS, subBandOf } from '../../drivers/radio/duty-cycle.ts';
import { REYAX_BANDWIDTHS } from '../../drivers/serial/reyax.ts';
import { channelFrequencyMHz } from '../../drivers/wifi.ts';

const LORA_BANDWIDTHS = [7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000];

export const CONFIG_VERSION = 1;

const SENSOR_NAME = /^[A-Za-z0-9][-_A-Za-z0-9]*$/;
const BROKER_URL = /^(mqtts?|wss?):\/\/[^\s/]+/;

const interval = z.number({ error: 'expected a number of milliseconds' })
  .int({ error: 'expected a whole number of milliseconds' })
  .min(10, { error: 'expected at least 10 ms' })
  .max(86_400_000, { error: 'expected at most one day (86400000 ms)' });

const simulatedSensor = z.strictObject({
  type: z.literal('simulated'),
  name: z.string().regex(SENSOR_NAME, { error: 'expected letters, digits, - and _, starting with a letter or digit' }),
  quantity: z.enum(SIMULATED_QUANTITIES),
  intervalMs: interval.optional(),
  seed: z.number().int().nonnegative().optional(),
  failureRate: z.number().min(0).max(1).optional(),
});

// Hardware sensors (docs/hardware.md). Every sensor takes `name` and optional `intervalMs`.
const sensorName = simulatedSensor.shape.name;
const devicePath = z.string().regex(/^\/dev\/[-_.A-Za-z0-9/]+$/, { error: 'expected a device path such as /dev/ttyAMA0' });
const sensorBaud = z.number().int().refine((b) => [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200].includes(b), { error: 'expected a standard baud rate (1200..115200)' });
const gpioChip = z.string().regex(/^[-_.:A-Za-z0-9]+$/, { error: 'expected a chip label or gpiochipN' });
const gpioLine = z.number().int().min(0).max(1023);
const bias = z.enum(['pull-up', 'pull-down', 'disable', 'as-is']);
const SENSOR_UNIT = /^[A-Za-z0-9%/.]{1,16}$/;

const hardwareSensors = [
  z.strictObject({
    type: z.literal('ds18b20'), name: sensorName, intervalMs: interval.optional(),
    id: z.string().regex(/^28-[0-9a-f]{12}$/, { error: 'expected a DS18B20 id: 28- and 12 hex digits' }).optional(),
  }),
  z.strictObject({
    type: z.literal('iio'), name: sensorName, intervalMs: interval.optional(),
    device: z.string().regex(/^[-_.:A-Za-z0-9]+$/, { error: 'expected an IIO device name (bme280) or iio:deviceN' }),
    channels: z.array(z.enum(IIO_CHANNELS)).min(1).refine((c) => new Set(c).size === c.length, { error: 'duplicate channel' }),
  }),
  z.strictObject({
    type: z.literal('pms5003'), name: sensorName, intervalMs: interval.optional(),
    path: devicePath, baud: sensorBaud.optional(), mode: z.enum(['active', 'passive']).optional(),
  }),
  z.strictObject({ type: z.literal('sds011'), name: sensorName, intervalMs: interval.optional(), path: devicePath, baud: sensorBaud.optional() }),
  z.strictObject({ type: z.literal('gps'), name: sensorName, intervalMs: interval.optional(), path: devicePath, baud: sensorBaud.optional() }),
  z.strictObject({
    type: z.literal('pulse'), name: sensorName, intervalMs: interval.optional(),
    chip: gpioChip, line: gpioLine, bias: bias.optional(),
    edge: z.enum(['rising', 'falling', 'both']).default('falling'),
    debounceMs: z.number().min(0).max(10_000).default(10),
    factor: z.number().positive().default(1),
    unit: z.string().regex(SENSOR_UNIT, { error: 'expected a SenML unit such as mm or m3' }).default('count'),
    maxHz: z.number().positive().max(100_000).default(100),
    stuckMs: z.number().int().min(1000).default(60_000),
  }),
  z.strictObject({
    type: z.literal('gpio-input'), name: sensorName, intervalMs: interval.optional(),
    chip: gpioChip, line: gpioLine, bias: bias.optional(), activeLow: z.boolean().optional(),
  }),
] as const;

const sensor = z.discriminatedUnion('type', [simulatedSensor, ...hardwareSensors]);

const hardwareSchema = z.strictObject({
  /** Root under which sys/bus/w1, sys/bus/iio and sys/class/gpio are read; tests point it at a fixture tree. */
  sysfsRoot: z.string().min(1).default('/'),
  /** auto: sysfs GPIO with onoff where the kernel has it, else the character device through libgpiod's tools. */
  gpio: z.enum(['auto', 'sysfs', 'chardev']).default('auto'),
});

export const DEFAULT_SENSORS: z.output<typeof sensor>[] = SIMULATED_QUANTITIES.map((quantity) => ({
  type: 'simulated' as const,
  name: quantity,
  quantity,
}));

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

const uplinkSchema = z.strictObject({
  broker: z.string().regex(BROKER_URL, { error: 'expected a broker URL: mqtt://, mqtts://, ws:// or wss:// and a host' }).nullable().default(null),
  clientId: z.string().min(1).max(64).optional(),
  username: z.string().optional(),
  /** File holding the password, so the config itself can be world-readable. */
  passwordFile: z.string().optional(),
  tls: z.strictObject({
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    /** Name to check the broker certificate against, when it differs from the URL's host. */
    servername: z.string().optional(),
  }).default({}),
  /** gateway: delete a reading on a gateway receipt; broker: on the broker's PUBACK (no gateway). */
  ack: z.enum(['gateway', 'broker']).default('gateway'),
  /**
   * Public keys (hex) of gateways whose receipts count; empty: trust the first gateway seen
   * and pin it (not on a mesh box, where any box holding the mesh key could sign the first).
   */
  gatewayKeys: z.array(z.string().regex(HEX_KEY, { error: 'expected 64 hex digits (an Ed25519 public key)' })).default([]),
  ackTimeoutMs: z.number().int().min(100).max(3_600_000).default(20_000),
  /** Readings published and not yet acknowledged by the broker, at most. */
  window: z.number().int().min(1).max(10_000).default(2048),
  keepaliveS: z.number().int().min(5).max(3600).default(30),
  reconnectMinMs: z.number().int().min(10).default(1000),
  reconnectMaxMs: z.number().int().min(10).default(60_000),
});

const IFACE = /^[A-Za-z0-9][-_.A-Za-z0-9@]{0,14}$/;
const IPV4_MULTICAST = /^(22[4-9]|23\d)\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** A network interface name, as `mesh.links[].interface` and the console's `set wifi` take it. */
export const interfaceName = z.string().regex(IFACE, { error: 'expected a network interface name, e.g. wlan0' });

/** WiFi mesh setup of a UDP link's interface (also stored by the console's `set wifi`). */
export const wifiSchema = z.strictObject({
  /** 80211s: an 802.11s mesh point; ibss: ad hoc */
  mode: z.enum(['80211s', 'ibss']),
  meshId: z.string().min(1).max(32, { error: 'expected at most 32 characters (an SSID)' }),
  channel: z.number().int().refine((c) => channelFrequencyMHz(c) !== undefined, { error: 'expected a WiFi channel: 1 to 14, or a 5 GHz channel 32 to 177' }),
});

const SERIAL_PATH = /^\/dev\/\S+$|^\/\S+$/;
const serialPath = z.string().regex(SERIAL_PATH, { error: 'expected the absolute path of a serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...' });
const radioBaud = z.number().int().refine((b) => [9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600].includes(b), { error: 'expected a standard baud rate (9600 to 921600)' }).default(115200);

/** A LoRa radio's settings; the channel must lie inside one sub-band of its region. */
const radioSchema = z.strictObject({
  region: z.enum(REGIONS),
  frequencyHz: z.number().int().min(137_000_000).max(1_020_000_000),
  bandwidthHz: z.number().int().refine((b) => LORA_BANDWIDTHS.includes(b), { error: `expected a LoRa bandwidth in Hz: ${LORA_BANDWIDTHS.join(', ')}` }),
  spreadingFactor: z.number().int().min(5).max(12),
  /** the denominator: 5..8 for 4/5..4/8 */
  codingRate: z.number().int().min(5).max(8),
  txPowerDbm: z.number().int().min(-9).max(22),
}).superRefine((radio, ctx) => {
  const band = subBandOf(radio.region, radio.frequencyHz, radio.bandwidthHz);
  if (band instanceof Error) ctx.addIssue({ code: 'custom', path: ['frequencyHz'], message: band.message });
});

export const udpLinkSchema = z.strictObject({
  type: z.literal('udp'),
  interface: interfaceName,
  port: z.number().int().min(1).max(65535).default(4791),
  group: z.string().regex(IPV4_MULTICAST, { error: 'expected an IPv4 multicast address (224.0.0.0 to 239.255.255.255)' }).default('239.255.73.80'),
  /** brings the interface up in this mode first; absent: the interface is left alone */
  wifi: wifiSchema.optional(),
});

const meshLink = z.discriminatedUnion('type', [udpLinkSchema, z.strictObject({
  type: z.literal('kiss'),
  path: serialPath,
  baud: radioBaud,
  radio: radioSchema,
  /** largest KISS data frame the TNC takes */
  maxFrameBytes: z.number().int().min(64).max(1024).default(255),
}), z.strictObject({
  type: z.literal('reyax'),
  path: serialPath,
  baud: radioBaud,
  radio: radioSchema.refine((r) => r.bandwidthHz in REYAX_BANDWIDTHS, { error: 'a REYAX modem takes 7.8 to 500 kHz in its steps', path: ['bandwidthHz'] }),
  /** the modem's network id: boxes of one mesh share it (3 to 15, or 18, the default) */
  networkId: z.number().int().refine((n) => n === 18 || (n >= 3 && n <= 15), { error: 'expected 3 to 15, or 18' }).default(18),
})]);

const meshSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** File holding the mesh key: 64 hex digits shared by the boxes of one mesh (openssl rand -hex 32). */
  keyFile: z.string().optional(),
  links: z.array(meshLink).default([]),
  /** uplink: a route to this box only while its MQTT uplink is up; always: also as a plain node */
  announce: z.enum(['uplink', 'always']).default('uplink'),
  /** readings in flight through the mesh at once */
  window: z.number().int().min(1).max(64).default(4),
  /**
   * An uplink box holds a relayed origin's receipt this long, so that one receipt covers
   * the readings that follow (sent at once for a duplicate, a gap or a first reading).
   * Alike on every box of a mesh: origins wait this long plus ackTimeoutMs for receipts.
   */
  receiptHoldMs: z.number().int().min(0).max(3_600_000).default(60_000),
  /** beyond the hold, how long an origin waits for a receipt before sending again */
  ackTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
  /**
   * A box without an uplink of its own sends its signed status through the mesh this often
   * (and when it changes); its uplink box marks it offline after three missed.
   */
  statusEveryMs: z.number().int().min(1000).max(86_400_000).default(300_000),
  /** a box beacons once per this period on its LoRa radios, and witnesses others' (docs/rewards.md); 0: never */
  beaconPeriodS: z.number().int().min(0).max(7 * 86_400).default(21_600),
  hopLimit: z.number().int().min(1).max(64).default(16),
  fragmentBytes: z.number().int().min(32).max(1100).default(180),
  timers: z.strictObject({
    helloMinMs: z.number().int().min(10).optional(),
    helloMaxMs: z.number().int().min(10).optional(),
    updateMinMs: z.number().int().min(10).optional(),
    updateMaxMs: z.number().int().min(10).optional(),
    ackTimeoutMs: z.number().int().min(10).optional(),
    helloMissesDown: z.number().int().min(1).max(16).optional(),
  }).default({}),
});

/** A restricted line console served by the agent itself on a tty; absent: no console. */
const consoleSchema = z.strictObject({
  tty: z.string().regex(/^\/\S+$/, { error: 'expected an absolute device path, e.g. /dev/ttyGS0' }),
  baud: z.number().int().min(300).max(4_000_000).default(115_200),
});

/** `host:port` (IPv6 in brackets) of a local HTTP endpoint; port 0 picks a free one. */
export const LISTEN_ADDRESS = /^(\[[0-9A-Fa-f:.]+\]|[-.A-Za-z0-9]+):(\d{1,5})$/;
const listenAddress = z.string().regex(LISTEN_ADDRESS, { error: 'expected host:port, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6)' })
  .refine((a) => Number(LISTEN_ADDRESS.exec(a)?.[2] ?? 0) <= 65_535, { error: 'expected a port from 0 to 65535' });

/** The local status page (agent/status); absent: off. */
const statusSchema = z.strictObject({
  /** 127.0.0.1:8080 serves this box only, 0.0.0.0:8080 the LAN (then set a password) */
  listen: listenAddress,
  /** File holding the password of HTTP basic auth (any user name); absent: no auth. */
  password: z.string().min(1).optional(),
  /** The page shows "no uplink" once neither MQTT nor a mesh route to an uplink has been up this long. */
  noUplinkAlertS: z.number().int().min(1).max(86_400).default(600),
});

export const configSchema = z.strictObject({
  version: z.literal(CONFIG_VERSION, { error: `expected ${CONFIG_VERSION} (the only config version so far)` }).default(CONFIG_VERSION),
  stateDir: z.string().min(1, { error: 'expected a directory path' }).default(DEFAULT_STATE_DIR),
  sampling: z.strictObject({
    intervalMs: interval.default(10_000),
    /** SenML base name put before every record name; empty keeps packs small. */
    baseName: z.string().max(64).optional(),
  }).default({ intervalMs: 10_000 }),
  sensors: z.array(sensor).min(1, { error: 'expected at least one sensor' }).default(DEFAULT_SENSORS)
    .superRefine((sensors, ctx) => {
      const seen = new Set<string>();
      sensors.forEach((s, index) => {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate sensor name '${s.name}'` });
        seen.add(s.name);
      });
    }),
  hardware: hardwareSchema.default(hardwareSchema.parse({})),
  uplink: uplinkSchema.default(uplinkSchema.parse({})),
  store: z.strictObject({
    /** Queue bound; past it the oldest unacknowledged readings are dropped (counted in status). */
    maxMessages: z.number().int().min(100, { error: 'expected at least 100' }).default(1_000_000),
  }).default({ maxMessages: 1_000_000 }),
  mesh: meshSchema.default(meshSchema.parse({})),
  console: consoleSchema.optional(),
  /** Prometheus metrics over HTTP (GET /metrics); absent: off. */
  metrics: z.strictObject({ listen: listenAddress }).optional(),
  status: statusSchema.optional(),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  }).default({ level: 'info' }),
}).superRefine((config, ctx) => {
  const { tls } = config.uplink;
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['uplink', 'tls', tls.cert === undefined ? 'cert' : 'key'], message: 'a client certificate needs both cert and key' });
  }
  if (config.uplink.reconnectMaxMs < config.uplink.reconnectMinMs) {
    ctx.addIssue({ code: 'custom', path: ['uplink', 'reconnectMaxMs'], message: 'expected at least uplink.reconnectMinMs' });
  }
  if (config.mesh.enabled && config.mesh.keyFile === undefined) {
    ctx.addIssue({ code: 'custom', path: ['mesh', 'keyFile'], message: 'a mesh needs a key file (64 hex digits, e.g. from openssl rand -hex 32)' });
  }
  if (config.mesh.enabled && config.uplink.ack === 'broker') {
    // Through the mesh the broker's PUBACK reaches only the uplink box: the origin would
    // delete readings the mesh may still lose.
    ctx.addIssue({ code: 'custom', path: ['uplink', 'ack'], message: 'a mesh box deletes readings only on gateway receipts: expected gateway (and a gateway running)' });
  }
  if (config.mesh.enabled && config.uplink.gatewayKeys.length === 0) {
    // Receipts reach a mesh box through its neighbours: trusting the first signer would let
    // any box holding the mesh key sign receipts for readings it relayed, and delete them.
    ctx.addIssue({ code: 'custom', path: ['uplink', 'gatewayKeys'],
      message: "a mesh box trusts only the gateways listed here: expected at least one key ('iop-agent id --state-dir <gateway state dir>' prints it)" });
  }
  if (config.mesh.enabled && config.mesh.links.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['mesh', 'links'], message: 'a mesh needs at least one link' });
  }
  config.sensors.forEach((s, index) => {
    if (s.intervalMs !== undefined && s.intervalMs < config.sampling.intervalMs) {
      ctx.addIssue({ code: 'custom', path: ['sensors', index, 'intervalMs'],
        message: `expected at least sampling.intervalMs (${config.sampling.intervalMs}): a sensor is read at most once a tick` });
    }
  });
});

export type Config = z.output<typeof configSchema>;
export type SensorConfig = Config['sensors'][number];
export type HardwareConfig = Config['hardware'];
export type UplinkConfig = Config['uplink'];
export type MeshConfig = Config['mesh'];
export type StatusConfig = NonNullable<Config['status']>;
export type MeshLinkConfig = MeshConfig['links'][number];
export type WifiConfig = z.output<typeof wifiSchema>;
export type ConsoleConfig = NonNullable<Config['console']>;
