/**
 * The network and TLS storms of packages/probes' net bench, measured through
 * the product: `node packages/cli/bin/stella.js signals start` with its
 * default probes (file_open, exec, tcp_state, libc connect/accept, TLS
 * handshake and I/O), every record encoded, chunked and signed. Needs root,
 * gcc, libssl-dev, openssl and a built CLI (`npx nx run @stellaops/cli:build`).
 *
 *   flock /tmp/bench.lock npm run bench:cli-net -w @stellaops/signals   (same as: npx tsx packages/signals/bench/cli-net.bench.ts)
 *   BENCH_ROUNDS=5 BENCH_CONNECTS=5000 BENCH_TLS=500 BENCH_MODES=untraced,dedup,every ...
 *
 * Each round runs every mode in order: untraced, then one collector per
 * traced mode (dedup on, the default; dedup off) that sees a connect storm
 * (connect + RST close against a server that accepts and closes) and then a
 * TLS storm (full TLS 1.3 sessions with SNI, a request and the response,
 * against `openssl s_server -www`). Per run it prints each storm's ops/s and
 * ratio to the same round's untraced run, the TLS storm's own CPU per
 * session against the untraced one (client and server: a uprobe trap is
 * charged to the process that hits it, and CPU moves less with other load
 * than ops/s), the records of each network type in the chain, the final
 * status's lost count over all probes and whether every probe balances,
 * the collector's peak RSS and CPU, and `verify-chain`. Then the medians.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { buildNetStorm, makeLocalhostCert, startNetPeers } from '../../probes/bench/net-storm.js';
import {
  benchDir,
  cpuS,
  loadAverage,
  mem,
  mib,
  readChainTypes,
  requireRootAndCli,
  sleep,
  startStella,
  verifyChain,
} from './cli-support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 4000);
const TLS_OPS = Number(process.env.BENCH_TLS ?? 300);
const MODES = (process.env.BENCH_MODES ?? 'untraced,dedup,every').split(',');
const NET_TYPES = ['net_connect', 'net_accept', 'tcp_state', 'tls_handshake', 'tls_io'];

requireRootAndCli('cli-net');

const { work, key, pub } = benchDir('cli-net', 0);
const storm = buildNetStorm(work);
// Its own directory: benchDir's signing key is work/key.pem too.
const tlsDir = join(work, 'tls');
mkdirSync(tlsDir);
const { cert, key: tlsKey } = makeLocalhostCert(tlsDir);
const peers = await startNetPeers(storm, cert, tlsKey);

/** Run the storm program; its stdout's numbers. */
function run(args: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const c = spawn(storm, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (b) => {
      out += b;
    });
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`storm ${args[0]} exited ${code}`));
      resolve(out.trim().split(' ').map(Number));
    });
  });
}

/** utime + stime of a process in ns (USER_HZ 100). */
function procCpuNs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 1e7;
}

interface Storms {
  connectOps: number;
  tlsOps: number;
  /** Client + server CPU per TLS session, µs. */
  tlsCpuUs: number;
}

async function storms(): Promise<Storms> {
  const [cns] = await run(['connect', String(peers.port), String(CONNECTS)]);
  const server0 = procCpuNs(peers.tls.pid!);
  const [tns, clientCpu] = await run(['tls', String(peers.tlsPort), String(TLS_OPS), cert]);
  const serverCpu = procCpuNs(peers.tls.pid!) - server0;
  return {
    connectOps: CONNECTS / (cns! / 1e9),
    tlsOps: TLS_OPS / (tns! / 1e9),
    tlsCpuUs: (clientCpu! + serverCpu) / TLS_OPS / 1000,
  };
}

interface Row extends Storms {
  mode: string;
  types: Map<string, number>;
  lost: number;
  balanced: boolean;
  peakRssMiB: number;
  cpuCores: number;
  verified: string;
}

async function traced(mode: string, round: number): Promise<Row> {
  const dir = join(work, `ev-${round}-${mode}`);
  const stella = await startStella(dir, key, [`dedup.enabled=${mode === 'dedup'}`], true);
  const { pid } = stella;
  await sleep(2000);
  let hwm = 0;
  const sampler = setInterval(() => {
    hwm = Math.max(hwm, mem(pid).hwm);
  }, 100);
  const c0 = cpuS(pid);
  const t0 = performance.now();
  const s = await storms();
  const cpuCores = (cpuS(pid) - c0) / ((performance.now() - t0) / 1000);
  hwm = Math.max(hwm, mem(pid).hwm);
  stella.child.kill('SIGTERM');
  const code = await stella.exited;
  clearInterval(sampler);
  if (code !== 0) throw new Error(`stella exited ${code}: ${stella.log().slice(-2000)}`);
  const chain = readChainTypes(dir);
  const verified = verifyChain(dir, pub);
  rmSync(dir, { recursive: true, force: true });
  let lost = 0;
  for (const p of chain.probes.values()) lost += p.lost;
  return {
    mode,
    ...s,
    types: chain.types,
    lost,
    balanced: chain.balanced,
    peakRssMiB: mib(hwm),
    cpuCores,
    verified,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

console.log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}; ` +
    `${CONNECTS} connects and ${TLS_OPS} TLS sessions per storm, ${ROUNDS} round(s); load average ${loadAverage()}`,
);
console.log(
  `| round | mode | connect ops/s | ratio | TLS sessions/s | ratio | TLS CPU ratio | ${NET_TYPES.join(' / ')} in chain | lost (all probes) | balanced | peak RSS | collector CPU (cores) | verify-chain |`,
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
const ratios = new Map<string, { connect: number[]; tls: number[]; tlsCpu: number[] }>();
try {
  for (let round = 1; round <= ROUNDS; round++) {
    let base: Storms | undefined;
    for (const mode of MODES) {
      if (mode === 'untraced') {
        base = await storms();
        console.log(
          `| ${round} | untraced | ${base.connectOps.toFixed(0)} | 1.00x | ${base.tlsOps.toFixed(0)} | 1.00x | 1.00x (${base.tlsCpuUs.toFixed(0)} µs) | - | - | - | - | - | - |`,
        );
        continue;
      }
      const r = await traced(mode, round);
      const rc = base ? r.connectOps / base.connectOps : Number.NaN;
      const rt = base ? r.tlsOps / base.tlsOps : Number.NaN;
      const rcpu = base ? base.tlsCpuUs / r.tlsCpuUs : Number.NaN;
      const agg = ratios.get(mode) ?? { connect: [], tls: [], tlsCpu: [] };
      agg.connect.push(rc);
      agg.tls.push(rt);
      agg.tlsCpu.push(rcpu);
      ratios.set(mode, agg);
      console.log(
        `| ${round} | ${mode === 'dedup' ? 'dedup on' : 'every event'} | ${r.connectOps.toFixed(0)} | ${rc.toFixed(2)}x | ${r.tlsOps.toFixed(0)} | ${rt.toFixed(2)}x | ${rcpu.toFixed(2)}x (${r.tlsCpuUs.toFixed(0)} µs) | ${NET_TYPES.map((t) => r.types.get(t) ?? 0).join(' / ')} | ${r.lost} | ${r.balanced ? 'yes' : 'NO'} | ${r.peakRssMiB.toFixed(0)} MiB | ${r.cpuCores.toFixed(2)} | ${r.verified} |`,
      );
    }
  }
  console.log('\n| mode | connect ratio (median) | TLS ratio (median) | TLS CPU ratio (median) |');
  console.log('|---|---|---|---|');
  for (const [mode, a] of ratios) {
    console.log(
      `| ${mode === 'dedup' ? 'dedup on' : 'every event'} | ${median(a.connect).toFixed(2)}x | ${median(a.tls).toFixed(2)}x | ${median(a.tlsCpu).toFixed(2)}x |`,
    );
  }
  console.log(`load average after: ${loadAverage()}`);
} finally {
  for (const c of peers.children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
