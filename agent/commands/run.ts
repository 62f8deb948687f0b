import { sensorStatus } from '../sensor-status.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption, type Command } from '../command.ts';
import { openBox, type Box } from '../box.ts';
import { errorMessage } from '../errors.ts';
import { VERSION } from '../version.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { createUplink, type Uplink } from '../uplink/uplink.ts';
import { answerJobs } from '../contribution/job-answers.ts';
import { configFromFlags } from './options.ts';
import type { Server } from 'node:net';
import { startControlSocket } from '../control-socket.ts';
import type { MeshService } from '../mesh/service.ts';
import type { ConsoleService } from '../console/service.ts';
import { readConsoleSettings } from '../console/settings.ts';
import { applyWifiSettings } from '../console/wifi-setting.ts';
import type { MetricsListener } from '../metrics/start.ts';
import { parseListenAddress } from '../metrics/listen-address.ts';
import { createServiceNotifier } from '../systemd/notify.ts';
import { agentStatusLine } from '../systemd/status-line.ts';
import type { StatusPage } from '../status/service.ts';
import type { Route } from '../status/server.ts';

/** Exit code after `restart` on the console: the supervisor (systemd Restart=) starts the agent again. */
export const RESTART_EXIT_CODE = 75;

export const runCommand: Command = {
  name: 'run',
  summary: 'run the agent: sample, sign, store and forward readings until stopped',
  usage: 'iop-agent run [--config FILE] [--state-dir DIR] [--interval MS] [--broker URL] [--metrics ADDR] [--status ADDR]',
  help: `      --interval MS     sampling period (overrides sampling.intervalMs)
      --broker URL      MQTT broker: mqtt://, mqtts://, ws://, wss:// (overrides uplink.broker)
      --metrics ADDR    Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (overrides metrics.listen)
      --status ADDR     the status page at http://ADDR/, e.g. 127.0.0.1:8080 (overrides status.listen)
${CONFIG_HELP}
Without a broker the readings wait in the store until one is configured, or, with
mesh.enabled, go through the mesh to a box that has an uplink.`,
  options: { ...CONFIG_OPTIONS, interval: { type: 'string' }, broker: { type: 'string' }, metrics: { type: 'string' }, status: { type: 'string' } },
  async run(context) {
    const { config, origin } = configFromFlags(context);
    const metricsFlag = stringOption(context, 'metrics');
    const metricsListen = metricsFlag ?? config.metrics?.listen;
    const metricsAddress = metricsListen === undefined ? undefined : parseListenAddress(metricsListen, metricsFlag !== undefined ? '--metrics' : 'metrics.listen');
    const statusFlag = stringOption(context, 'status');
    const statusListen = statusFlag ?? config.status?.listen;
    const statusAddress = statusListen === undefined ? undefined : parseListenAddress(statusListen, statusFlag !== undefined ? '--status' : 'status.listen');
    // Metrics asked on the status page's address are served by the page's server.
    const metricsOnStatusPage = metricsAddress !== undefined && metricsAddress.host === statusAddress?.host && metricsAddress.port === statusAddress.port;
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
    // systemd (Type=notify): taken from the environment before any child process starts
    // (they must not notify); watchdog pings from this loop from now on, READY=1 once sampling.
    let box: Box | undefined;
    let uplink: Uplink | undefined;
    const notifier = createServiceNotifier({ log, describe: () => (box ? agentStatusLine(box, uplink) : 'starting') });
    try {
      box = await openBox(config, log);
    } catch (err) {
      notifier.close();
      throw err;
    }
    const broker = config.uplink.broker;
    try {
      uplink = broker ? createUplink({ config: { ...config.uplink, broker }, stateDir: config.stateDir, box, version: VERSION, log }) : undefined;
    } catch (err) {
      notifier.close();
      await box.close();
      throw err;
    }
    if (uplink) answerJobs(uplink.session, { device: box.identity.id, sensors: box.sensors.map((s, i) => ({ name: s.name, kind: s.kind, intervalMs: config.sensors[i]?.intervalMs ?? config.sampling.intervalMs })), log, sampler: box.sampler });
    log.info(`device ${box.identity.id}: ${box.sensors.length} sensors every ${config.sampling.intervalMs} ms; ` +
      `state dir ${config.stateDir}; config from ${origin}; ${box.journal.count()} readings queued; ` +
      `uplink ${broker ? `${broker} (${config.uplink.ack === 'gateway' ? 'gateway receipts' : 'broker acks'})` : 'none'}`);
    let mesh: MeshService | undefined;
    let control: Server | undefined;
    let metrics: MetricsListener | undefined;
    /** Readings the loop below stored, and those the store refused (metrics). */
    const recorded = { stored: 0, failed: 0 };
    let fieldConsole: ConsoleService | undefined;
    let statusPage: StatusPage | undefined;
    /** Routes served next to the status page, behind its auth (/metrics). */
    const statusRoutes = new Map<string, Route>();
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
      const metricsSources = { box, uplink: () => uplink, mesh: config.mesh.enabled ? () => mesh : undefined, recorded };
      if (metricsAddress && !metricsOnStatusPage) {
        // prom-client is loaded only when metrics are asked for.
        const { startMetricsListener } = await import('../metrics/start.ts');
        metrics = await startMetricsListener({ address: metricsAddress, log, sources: metricsSources });
      }
      if (statusAddress) {
        if (metricsOnStatusPage) {
          const [{ createAgentMetrics }, { metricsHandler, METRICS_PATH }] = await Promise.all([import('../metrics/agent-metrics.ts'), import('../metrics/handler.ts')]);
          statusRoutes.set(METRICS_PATH, metricsHandler(createAgentMetrics(metricsSources), log.child('metrics')));
        }
        // Loaded only when configured: the page, its assets and ws cost a box memory.
        const { startStatusPage } = await import('../status/service.ts');
        statusPage = await startStatusPage({ address: statusAddress, password: config.status?.password, noUplinkAlertS: config.status?.noUplinkAlertS,
          box, broker, uplink, mesh: () => mesh, stateDir: config.stateDir, log, extraRoutes: statusRoutes });
      }
    } catch (err) {
      notifier.close();
      await metrics?.close();
      control?.close();
      await fieldConsole?.stop();
      await mesh?.stop();
      await box.close();
      throw err;
    }
    const storeErrors = new RateLimitedLog(log);
    box.sampler.start(async (pack) => {
      try {
        fieldConsole?.onPack(pack);
        statusPage?.onPack(pack);
        const message = await box.record(pack);
        recorded.stored++;
        log.debug(`stored seq ${message.seq} (${message.bytes.length} bytes, ${pack.records.length} records)`);
        uplink?.notify();
        if (!uplink) mesh?.notify();
      } catch (err) {
        // A full or failing disk loses this reading, not the agent: it keeps sampling and
        // stores again as soon as it can. Nothing already stored is touched.
        recorded.failed++;
        storeErrors.error(`reading not stored: ${errorMessage(err)}`);
      }
    });
    uplink?.start();
    mesh?.start();
    notifier.ready(agentStatusLine(box, uplink));
    await stopped;
    const why = restart ? 'restarting (asked on the console)' : 'stopping';
    log.info(why);
    notifier.stopping(why);
    await metrics?.close();
    await fieldConsole?.stop();
    await statusPage?.stop();
    await box.sampler.stop();
    control?.close();
    await mesh?.stop();
    await uplink?.stop();
    await box.close();
    await notifier.flush();
    return restart ? RESTART_EXIT_CODE : 0;
  },
};
