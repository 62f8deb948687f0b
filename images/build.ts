// npm run build: bundles the agent with esbuild and makes Node single-executable
// applications for linux-x64 and linux-arm64 from the official node binaries on the
// npm registry (the same version as the pinned runtime), plus the consumer
// verification library as one ESM file. Output in dist/.
//
// Usage: node images/build.ts [--target linux-x64|linux-arm64 ...] [--out DIR] [--no-strip]
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { fetchNodeBinary, TARGETS, type Target } from './node-binaries.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { target: { type: 'string', multiple: true }, out: { type: 'string' }, 'no-strip': { type: 'boolean' } } });
const dist = resolve(values.out ?? join(root, 'dist'));
const targets = (values.target ?? Object.keys(TARGETS)) as Target[];
for (const target of targets) if (!(target in TARGETS)) throw new Error(`unknown target ${target}; known: ${Object.keys(TARGETS).join(', ')}`);

if (process.version !== `v${TARGETS['linux-x64'].version}`) {
  // A SEA blob only runs in the exact node version that made it.
  throw new Error(`build with node ${TARGETS['linux-x64'].version} (npm run build uses the pinned one); this is ${process.version}`);
}

/**
 * The serial bindings find their addon through node-gyp-build; in the executable they
 * get it from the shipped layout instead (images/shims/serialport-bindings.ts). mqtt.js's
 * browser timers are the runtime's (images/shims/worker-timers.ts).
 */
const shippedAddons: Plugin = {
  name: 'shipped-addons',
  setup(b) {
    b.onResolve({ filter: /^worker-timers$/ }, () => ({ path: join(root, 'images', 'shims', 'worker-timers.ts') }));
    b.onResolve({ filter: /^node-gyp-build$/ }, (args) => (/@serialport[\\/]bindings-cpp/.test(args.importer)
      ? { path: join(root, 'images', 'shims', 'serialport-bindings.ts') }
      : { errors: [{ text: `${args.importer} loads a native addon through node-gyp-build: give it a shim in images/shims` }] }));
  },
};

/**
 * Modules a box never loads while it runs, bundled apart and carried as assets of the
 * executable (images/shims/apart-bundles.ts says why): `tools`, the gateway, chain and
 * tool commands and the data-job logic with h3-js (loaded when a job arrives); `status`,
 * the status page (loaded when one is configured). In the box's bundle a dynamic import
 * of one of them resolves to its namespace in its bundle, compiled on first use.
 */
const APART: Record<string, Record<string, string>> = {
  tools: Object.fromEntries(
    ['gateway', 'chain', 'proof', 'rewards', 'job', 'sim', 'demo', 'verify'].map((c) => [c, join('agent', 'commands', `${c}.ts`)])
      .concat([['jobAnswer', join('agent', 'contribution', 'job-answer.ts')]]),
  ),
  status: { statusPage: join('agent', 'status', 'service.ts') },
  // `metrics`: the Prometheus endpoint with prom-client, loaded when metrics are asked for.
  metrics: Object.fromEntries([['start', 'start'], ['agentMetrics', 'agent-metrics'], ['handler', 'handler']].map(([key, file]) => [key, join('agent', 'metrics', `${file}.ts`)])),
  // `mqtt`: the transports mqtt.connect() requires on its first call, which the agent
  // makes only for ws:// and wss:// (agent/uplink/transport.ts): WebSocket and SOCKS
  // with their libraries, about 130 KB of script a box on mqtt:// never runs.
  mqtt: Object.fromEntries(['ws', 'tcp', 'tls'].map((t) => [t, join('node_modules', 'mqtt', 'build', 'lib', 'connect', `${t}.js`)])),
};
/**
 * ws loads the client's modules (tls, https) and permessage-deflate's (zlib) as it
 * starts; the status page serves WebSockets only, uncompressed: in its bundle they load
 * on first use, which never comes (about 2 MB less resident with the page open).
 */
const wsClientModulesLazy: Plugin = {
  name: 'ws-client-modules-lazy',
  setup(b) {
    b.onResolve({ filter: /^(tls|https|zlib)$/ }, (args) => (/[\\/]node_modules[\\/]ws[\\/]/.test(args.importer) ? { path: args.path, namespace: 'lazy-builtin' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      contents: `let m; module.exports = new Proxy({}, { get: (_, key) => (m ??= require(${JSON.stringify(`node:${args.path}`)}))[key] });`,
      loader: 'js',
    }));
  },
};
const apartBundle = (name: string) => join(dist, `iop-agent-${name}.cjs`);
const bundlesApart: Plugin = {
  name: 'bundles-apart',
  setup(b) {
    const byPath = new Map(Object.entries(APART).flatMap(([bundle, modules]) => Object.entries(modules).map(([key, path]) => [join(root, path), `${bundle}/${key}`] as const)));
    b.onResolve({ filter: /^\./ }, (args) => {
      const key = args.kind === 'dynamic-import' ? byPath.get(join(dirname(args.importer), args.path)) : undefined;
      return key ? { path: key, namespace: 'module-apart' } : undefined;
    });
    b.onResolve({ filter: /^\.\/(ws|tcp|tls)$/ }, (args) => (/mqtt[\\/]build[\\/]lib[\\/]connect[\\/]index\.js$/.test(args.importer)
      ? { path: `mqtt/${args.path.slice(2)}`, namespace: 'module-apart' }
      : undefined));
    b.onLoad({ filter: /.*/, namespace: 'module-apart' }, (args) => {
      const [bundle, key] = args.path.split('/') as [string, string];
      return {
        contents: `module.exports = require(${JSON.stringify(join(root, 'images', 'shims', 'apart-bundles.ts'))}).loadBundle(${JSON.stringify(bundle)})[${JSON.stringify(key)}];`,
        loader: 'js',
        resolveDir: root,
      };
    });
  },
};

/** Native addons per target: <name>.node in the layout drivers/native/addons.ts reads. */
const ADDONS: Record<Target, Record<string, string>> = {
  'linux-x64': { serialport: 'node_modules/@serialport/bindings-cpp/prebuilds/linux-x64/@serialport+bindings-cpp.glibc.node' },
  'linux-arm64': { serialport: 'node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64/@serialport+bindings-cpp.armv8.glibc.node' },
};

/**
 * What the executable starts node with. A box idles most of its life: young-generation
 * semi-spaces of 1 MiB instead of up to 16 MiB keep the resident size down; scavenges
 * are cheap at a reading a second. V8's interpreter only (--max-opt=0: no Sparkplug,
 * Maglev or TurboFan; their code pages in the executable are never touched and their
 * compilations never allocate; the arm64 box measured 1.4 MB less than with Sparkplug
 * kept, x64 about the same) and V8's size-over-speed choices; an old generation that
 * starts at 4 MB and grows when needed (the limit is unchanged), about 2 MB less. The
 * garbage collector on the main thread only: no concurrent marking and sweeping on
 * worker threads, each with its own malloc arena, about 1.5 MB less resident on x64 and
 * steadier. Measured with the agent sampling and publishing (the emulated box test,
 * bench/footprint.ts); signing is native (OpenSSL) and stays about a millisecond.
 * --jitless saved 0.3 MB more but takes WebAssembly away (fetch's HTTP parser needs it).
 */
const EXEC_ARGV = ['--max-semi-space-size=1', '--max-opt=0', '--optimize-for-size', '--initial-heap-size=4', '--single-threaded-gc'];

/**
 * The command that runs the target's node on this machine (which then makes the SEA blob
 * with a code cache of the target's V8), or undefined when none can: the host's own node
 * for its architecture (the same version, checked above), the target's under qemu-user
 * with Debian's cross libraries (libc6-arm64-cross, libstdc++6-arm64-cross) otherwise.
 */
function codeCacheGenerator(target: Target, base: string): string[] | undefined {
  if (target === `linux-${process.arch}`) return [process.execPath];
  const sysroot = '/usr/aarch64-linux-gnu';
  if (target === 'linux-arm64' && commandExists('qemu-aarch64-static') && existsSync(join(sysroot, 'lib', 'libstdc++.so.6'))) {
    return ['qemu-aarch64-static', '-L', sysroot, base];
  }
  return undefined;
}

mkdirSync(dist, { recursive: true });
const bundle = join(dist, 'iop-agent.cjs');
/** How both bundles of the executable are built. */
const executableBundle: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node26',
  minify: true,
  legalComments: 'none',
  // cbor-x's native string extractor is optional; in a single executable it is absent
  // and cbor-x falls back to JavaScript. aedes is the demo's embedded broker, a dev
  // dependency: a box has a real broker.
  external: ['cbor-extract', 'aedes'],
  // mqtt.js and bl carry readable-stream, a copy of Node's streams for browsers: the
  // runtime's own (loaded anyway, by node:net) serves them; 80 KB less script to hold.
  alias: { 'readable-stream': 'node:stream' },
  logLevel: 'warning',
};
await build({ ...executableBundle, entryPoints: [join(root, 'agent', 'cli.ts')], outfile: bundle, plugins: [shippedAddons, bundlesApart] });
for (const [name, modules] of Object.entries(APART)) {
  await build({
    ...executableBundle,
    stdin: { contents: Object.entries(modules).map(([key, path]) => `export * as ${key} from './${path}';`).join('\n'), resolveDir: root, loader: 'ts' },
    outfile: apartBundle(name),
    plugins: name === 'status' ? [shippedAddons, wsClientModulesLazy] : [shippedAddons],
  });
}

await build({
  entryPoints: [join(root, 'agent', 'codec', 'index.ts')],
  outfile: join(dist, 'iop-verify.mjs'),
  bundle: true,
  platform: 'neutral',
  format: 'esm',
  target: 'es2022',
  minify: true,
  mainFields: ['module', 'main'],
  conditions: ['browser', 'import'],
  logLevel: 'warning',
});

for (const target of targets) {
  const base = await fetchNodeBinary(target, join(root, '.cache'));
  const output = join(dist, `iop-agent-${target}`);
  const executable = join(dist, `.node-${target}`);
  copyFileSync(base, executable);
  chmodSync(executable, 0o755);
  if (!values['no-strip']) strip(executable, TARGETS[target].strip);
  const config = join(dist, `.sea-${target}.json`);
  // V8's code cache (the main script's compiled bytecode) spares the box that compile at
  // every start. It must come from the target's own node, with the flags it will run
  // under (V8 rejects a cache made under other flags): natively, or under qemu-user.
  const generator = codeCacheGenerator(target, base);
  if (!generator) console.warn(`${target}: no way to run its node here (qemu-aarch64-static and /usr/aarch64-linux-gnu): built without a code cache`);
  writeFileSync(config, JSON.stringify({
    main: bundle,
    output,
    executable,
    disableExperimentalSEAWarning: true,
    assets: Object.fromEntries(Object.keys(APART).map((name) => [`${name}.cjs`, apartBundle(name)])),
    useCodeCache: generator !== undefined,
    // A snapshot would hold the evaluated bundle, opened files and all; not used.
    useSnapshot: false,
    execArgv: EXEC_ARGV,
  }, null, 2));
  rmSync(output, { force: true });
  const [command, ...prefix] = generator ?? [process.execPath];
  execFileSync(command!, [...prefix, ...(generator ? EXEC_ARGV : []), '--build-sea', config], { stdio: 'inherit' });
  rewriteByCopy(output);
  rmSync(executable);
  rmSync(config);
  const addons = join(`${output}.d`, 'addons');
  rmSync(`${output}.d`, { recursive: true, force: true });
  mkdirSync(addons, { recursive: true });
  for (const [name, file] of Object.entries(ADDONS[target])) copyFileSync(join(root, file), join(addons, `${name}.node`));
  // Addons this project builds itself (onoff's epoll: `npm run build:addons`) ship too.
  const built = join(root, 'build', 'addons', target);
  if (existsSync(built)) for (const file of readdirSync(built).filter((f) => f.endsWith('.node'))) copyFileSync(join(built, file), join(addons, file));
  console.log(`built ${output} (${(statSync(output).size / 1e6).toFixed(1)} MB) and ${readdirSync(addons).join(', ')} in ${addons}`);
}

/**
 * --build-sea writes the executable in one large write; on Linux 6.x with ext4 large
 * folios the kernel then keeps it as huge pages and maps them whole (FilePmdMapped),
 * which made every run resident for ~35 MB more of the binary than it touches. A plain
 * copy, as an image build or installer makes, does not.
 */
function rewriteByCopy(file: string): void {
  const copy = `${file}.copy`;
  copyFileSync(file, copy);
  chmodSync(copy, 0o755);
  renameSync(copy, file);
}

function strip(file: string, tool: string): void {
  if (!existsSync(tool) && !commandExists(tool)) {
    console.warn(`${tool} not found: ${file} stays unstripped (apt-get install binutils-aarch64-linux-gnu)`);
    return;
  }
  execFileSync(tool, ['--strip-all', file]);
}

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

