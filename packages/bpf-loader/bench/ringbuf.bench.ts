/**
 * Ring buffer throughput into JS: a BPF program floods a ring (bpf_loop of
 * `burst` 32-byte records per getppid() of a workload process) while the
 * reader drains it; prints records/s delivered to JS, with drops.
 *
 *   npm run bench -w @stellaops/bpf-loader
 *   BENCH_CALLS=20000 BENCH_BURST=512 BENCH_RING_MB=16 BENCH_LATENCY_MS=10 npm run bench -w @stellaops/bpf-loader
 *
 * Needs root (CAP_BPF, CAP_PERFMON) and the fixtures (npm run build:native).
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BpfObject } from '../src/index.js';

const fixtures = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
const env = (k: string, d: number) => Number(process.env[k] ?? d);
const CALLS = env('BENCH_CALLS', 20_000);
const BURST = env('BENCH_BURST', 512);
const RING_MB = env('BENCH_RING_MB', 16);
const LATENCY = env('BENCH_LATENCY_MS', 10);
const MAX_BATCH = env('BENCH_MAX_BATCH', 8192);

interface Result {
  mode: string;
  records: number;
  dropped: bigint;
  seconds: number;
  batches: number;
  checksum: bigint;
}

async function run(noWakeup: boolean): Promise<Result> {
  const child = spawn(`${fixtures}build/target`, ['getppid', String(CALLS)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await once(child.stdout, 'data');
  const o = BpfObject.open(`${fixtures}build/flood.bpf.o`);
  try {
    o.setGlobal('target_pid', child.pid!);
    o.setGlobal('burst', BURST);
    o.setGlobal('no_wakeup', noWakeup ? 1 : 0);
    o.resizeMap('flood', RING_MB * 1024 * 1024);
    o.load();
    const reader = o.ringBuffer('flood', {
      latencyMs: LATENCY,
      maxBatchRecords: MAX_BATCH,
      highWaterMark: 64,
    });
    o.attach('flood_sys_enter');
    const exited = once(child, 'exit');
    const total = CALLS * BURST;
    let records = 0;
    let checksum = 0n;
    let done = false;
    void exited.then(() => {
      done = true;
    });
    const counters = o.map('counters');
    const sum = (i: number) =>
      counters
        .perCpuValues(counters.lookup(Buffer.from([i, 0, 0, 0]))!)
        .reduce((a, b) => a + b.readBigUInt64LE(0), 0n);
    const start = process.hrtime.bigint();
    child.stdin!.end('go\n');
    let last = start;
    for (;;) {
      const b = await Promise.race([
        reader.read(),
        new Promise<'idle'>((r) => setTimeout(() => r('idle'), 100)),
      ]);
      if (b === 'idle') {
        if (done && BigInt(records) + sum(1) >= BigInt(total)) break;
        continue;
      }
      if (b === null) break;
      // Touch every record the way a decoder would.
      for (let i = 0; i < b.count; i++) checksum += b.data.readBigUInt64LE(b.offsets[i]! + 8);
      records += b.count;
      last = process.hrtime.bigint();
      if (done && BigInt(records) + sum(1) >= BigInt(total)) break;
    }
    const seconds = Number(last - start) / 1e9;
    const stats = reader.stats;
    reader.close();
    return {
      mode: noWakeup ? 'BPF_RB_NO_WAKEUP + timer drain' : 'default wakeups',
      records,
      dropped: sum(1),
      seconds,
      batches: stats.batches,
      checksum,
    };
  } finally {
    o.close();
    if (child.exitCode === null) child.kill();
  }
}

let cpu = cpus()[0]?.model ?? 'unknown cpu';
try {
  cpu = `${cpu}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores`;
} catch {
  /* keep the model only */
}
console.log(
  `ringbuf bench: ${CALLS} x ${BURST} records of 32 B, ring ${RING_MB} MiB, latency ${LATENCY} ms, batch <= ${MAX_BATCH}`,
);
console.log(
  `node ${process.version}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${cpu}`,
);
for (const noWakeup of [true, false]) {
  const r = await run(noWakeup);
  const rate = r.records / r.seconds;
  console.log(
    `${r.mode.padEnd(32)} ${(rate / 1e6).toFixed(2)} M records/s into JS (${((rate * 32) / 1e6).toFixed(0)} MB/s payload), ` +
      `${r.records} received, ${r.dropped} dropped, ${r.batches} batches (avg ${(r.records / Math.max(1, r.batches)).toFixed(0)}), ${r.seconds.toFixed(3)} s`,
  );
}
