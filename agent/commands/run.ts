import { sensorStatus } from '../sensor-status.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { openBox } from '../box.ts';
import { errorMessage } from '../errors.ts';
import { VERSION } from '../version.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { createUplink, type Uplink } from '../uplink/uplink.ts';
import { configFromFlags } from './options.ts';
import type { Server } from 'node:net';
import { startControlSocket } from '../control-socket.ts';
import type { MeshService } from '../mesh/service.ts';
import type { ConsoleService } from '../console/service.ts';
import { readConsoleSettings } from '../console/settings.ts';
import { applyWifiSettings } from '../console/wifi-setting.ts';

/** Exit code after `restart` on the console: the supervisor (systemd Restart=) starts the agent again. */
export const RESTART_EXIT_CODE = 75;

export const runCommand: Command = {
  name: 'run',
  summary: 'run the agent: sample, sign, store and forward readings until stopped',
  usage: 'iop-agent run [--config FILE] [--state-dir DIR] [--interval MS] [--broker URL]',
  help: `      --interval MS     sampling period (overrides sampling.intervalMs)
      --broker URL      MQTT broker: mqtt://, mqtts://, ws://, wss:// (overrides uplink.broker)
${CONFIG_HELP}
Without a broker the readings wait in the store until one is configured, or, with
mesh.enabled, go through the mesh to a box that has an uplink.`,
  options: { ...CONFIG_OPTIONS, interval: { type: 'string' }, broker: { type: 'string' } },
  async run(context) {
    const { config, origin } = configFromFlags(context);
    // A broker set on the console applies unless --broker says otherwise.
    const settings = readConsoleSettings(config.stateDir);
    if (settings.broker && context.values.broker === undefined) config.uplink.broker = settings.broker;
    // The owner's remote set-interval, unless --interval says otherwise.
    if (settings.intervalMs && context.values.interval === undefined) config.sampling.intervalMs = settings.intervalMs;
    // WiFi setup from the console's `set wifi`, over the UDP mesh links of the config file.
    config.mesh = applyWifiSettings(config.mesh, settings.wifi ?? {});
    // The mesh and the console (serial bindings, pairing's secp256k1) load only when
    // configured: a box without them keeps that code out of its memory.
    const consoleModule = config.console ? await import('../console/service.ts') : undefined;
    const consoleLog = consoleModule?.consoleLogger(context.log);
    const log = consoleLog?.log ?? context.log;
    if (!config.mesh.enabled && Object.values(settings.wifi ?? {}).some(Boolean)) {
      log.warn(`console-settings.json sets WiFi up for the mesh, but the configuration does not enable the mesh: interfaces left alone`);
    }
    const box = await openBox(config, log);
    const broker = config.uplink.broker;
    let uplink: Uplink | undefined;
    try {
      uplink = broker ? createUplink({ config: { ...config.uplink, broker }, stateDir: config.stateDir, box, version: VERSION, log }) : undefined;
    } catch (err) {
      await box.close();
      throw err;
    }
    log.info(`device ${box.identity.id}: ${box.sensors.length} sensors every ${config.sampling.intervalMs} ms; ` +
      `state dir ${config.stateDir}; config from ${origin}; ${box.journal.count()} readings queued; ` +
      `uplink ${broker ? `${broker} (${config.uplink.ack === 'gateway' ? 'gateway receipts' : 'broker acks'})` : 'none'}`);
    let mesh: MeshService | undefined;
    let control: Server | undefined;
    let fieldConsole: ConsoleService | undefined;
    let restart = false;
    const stopped = new Promise<void>((resolve) => {
      context.signal.addEventListener('abort', () => resolve(), { once: true });
      if (consoleModule && consoleLog) {
        fieldConsole = consoleModule.startConsole({ config: config.console!, stateDir: config.stateDir, box, broker, gatewayKeys: config.uplink.gatewayKeys, meshEnabled: config.mesh.enabled, uplink: () => uplink, mesh: () => mesh, log, ring: consoleLog.ring,
          restart: () => { restart = true; resolve(); } });
      }
    });
    try {
      if (config.mesh.enabled) mesh = await (await import('../mesh/service.ts')).startMesh({ config: config.mesh, uplinkConfig: config.uplink, stateDir: config.stateDir, box, uplink, log });
      control = await startControlSocket(config.stateDir, {
        mesh: () => mesh?.status() ?? { enabled: false },
        status: () => ({ device: box.identity.id, queue: box.journal.stats(), uplink: uplink?.session.connected ?? false, ...sensorStatus(box) }),
      });
    } catch (err) {
      await fieldConsole?.stop();
      await mesh?.stop();
      await box.close();
      throw err;
    }
    const storeErrors = new RateLimitedLog(log);
    box.sampler.start(async (pack) => {
      try {
        fieldConsole?.onPack(pack);
        const message = await box.record(pack);
        log.debug(`stored seq ${message.seq} (${message.bytes.length} bytes, ${pack.records.length} records)`);
        uplink?.notify();
        if (!uplink) mesh?.notify();
      } catch (err) {
        // A full or failing disk loses this reading, not the agent: it keeps sampling and
        // stores again as soon as it can. Nothing already stored is touched.
        storeErrors.error(`reading not stored: ${errorMessage(err)}`);
      }
    });
    uplink?.start();
    mesh?.start();
    await stopped;
    log.info(restart ? 'restarting (asked on the console)' : 'stopping');
    await fieldConsole?.stop();
    await box.sampler.stop();
    control?.close();
    await mesh?.stop();
    await uplink?.stop();
    await box.close();
    return restart ? RESTART_EXIT_CODE : 0;
  },
};
