/**
 * Resolution cost on real containers: cold (first sight of a container) and
 * warm lookups, the enrichment stage's throughput with 100 containers
 * running, the cgroup tree scan, and the tracker's memory per container.
 *
 *   cd packages/enrich && npm run bench        (root, containerd running)
 *   BENCH_CONTAINERS=100 BENCH_RECORDS=1000000 to change the sizes.
 */
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { buildImage, cgroupIdOf, ctrUnavailableReason, importImage } from '../../../tools/oci-image/ctr.js';
import { CgroupResolver, ContainerTracker, EnrichmentStage, type Resolution } from '../src/index.js';

const run = promisify(execFile);
const N = Number(process.env.BENCH_CONTAINERS ?? 100);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const BATCH = 256;
const ns = `stella-enrich-bench-${process.pid}`;

const gc = (globalThis as { gc?: () => void }).gc;
function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function main(): Promise<void> {
  const why = ctrUnavailableReason();
  if (why) {
    console.log(`enrich bench skipped: ${why}`);
    return;
  }
  const image = buildImage();
  importImage(image, ns);
  const ids = Array.from({ length: N }, (_, i) => `bench-${i}`);
  console.log(`starting ${N} containers (ctr, runc) in namespace ${ns}…`);
  const t0 = performance.now();
  await pool(N, 4, (i) => run('ctr', ['-n', ns, 'run', '-d', image.ref, ids[i]!, '/bin/sleep', '3600']));
  console.log(`  started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const tasks = spawnSync('ctr', ['-n', ns, 'task', 'ls'], { encoding: 'utf8' }).stdout;
    const pids = new Map<string, number>();
    for (const line of tasks.split('\n').slice(1)) {
      const [id, pid] = line.split(/\s+/);
      if (id && pid) pids.set(id, Number(pid));
    }
    const targets = ids.map((id) => {
      const pid = pids.get(id)!;
      return { id, pid, cgroupId: cgroupIdOf(pid) };
    });

    // Cold: first sight of each container (no listing at start): /proc + stat + containerd Get (+ image, once).
    const cold = await ContainerTracker.create({
      docker: false,
      podman: false,
      crio: false,
      watch: false,
      prepopulate: false,
    });
    const coldMs: number[] = [];
    // Warm the image digest cache and gRPC channel on one container, so the heap delta is per-container state.
    await cold.resolveDetailed(targets[0]!.cgroupId, targets[0]!.pid);
    const firstMs = await (async () => {
      const c2 = await ContainerTracker.create({
        docker: false,
        podman: false,
        crio: false,
        watch: false,
        prepopulate: false,
      });
      const s = performance.now();
      await c2.resolveDetailed(targets[0]!.cgroupId, targets[0]!.pid);
      const ms = performance.now() - s;
      c2.close();
      return ms;
    })();
    const h0 = heap();
    for (const t of targets) {
      const s = performance.now();
      const r = await cold.resolveDetailed(t.cgroupId, t.pid);
      coldMs.push(performance.now() - s);
      if (r.status !== 'resolved' || r.container.id !== t.id)
        throw new Error(`cold resolve of ${t.id} gave ${JSON.stringify(r)}`);
    }
    const perContainer = (heap() - h0) / N;
    cold.close();

    // Start-up listing.
    const s1 = performance.now();
    const tracker = await ContainerTracker.create({
      docker: false,
      podman: false,
      crio: false,
      watch: false,
    });
    const listMs = performance.now() - s1;
    for (const t of targets)
      if (tracker.lookup(t.cgroupId, t.pid)?.id !== t.id) throw new Error(`warm miss ${t.id}`);

    // Warm: synchronous cached lookups by cgroup id.
    const WARM = 1_000_000;
    let hits = 0;
    const s2 = performance.now();
    for (let i = 0; i < WARM; i++) if (tracker.lookup(targets[i % N]!.cgroupId) !== undefined) hits++;
    const warmNs = ((performance.now() - s2) * 1e6) / WARM;
    if (hits !== WARM) throw new Error('warm lookups missed');

    // Throughput: the stage over batches of BATCH records spread over N containers.
    const batches: { cgroupId: bigint; pid: number; seq: number }[][] = [];
    for (let b = 0; b < RECORDS / BATCH; b++) {
      batches.push(
        Array.from({ length: BATCH }, (_, j) => {
          const t = targets[(b * BATCH + j) % N]!;
          return { cgroupId: t.cgroupId, pid: t.pid, seq: b * BATCH + j };
        }),
      );
    }
    const stage = new EnrichmentStage(tracker);
    let n = 0;
    let resolved = 0;
    const s3 = performance.now();
    for await (const out of stage.run(
      (async function* () {
        yield* batches;
      })(),
    )) {
      n += out.length;
      for (const r of out) if ((r.enrichment as Resolution).status === 'resolved') resolved++;
    }
    const stageS = (performance.now() - s3) / 1000;
    if (resolved !== n) throw new Error(`stage: ${n - resolved} records not resolved`);

    // Cgroup tree scan (lookup of an id with no pid and no cache).
    const cg = new CgroupResolver({ scanIntervalMs: 0 });
    const s4 = performance.now();
    await cg.resolve(targets[0]!.cgroupId);
    const scanMs = performance.now() - s4;
    tracker.close();

    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    console.log(`machine: ${cpu}, ${cpus().length} cores, Node ${process.version}`);
    console.log(`containers running: ${N} (ctr + runc), one image`);
    console.log(
      `cold resolve (first sight, containerd gRPC): median ${pct(coldMs, 50).toFixed(2)} ms, p99 ${pct(coldMs, 99).toFixed(2)} ms, first of a fresh tracker (new channel, image not yet seen) ${firstMs.toFixed(2)} ms`,
    );
    console.log(`start-up listing of ${N} containers: ${listMs.toFixed(0)} ms`);
    console.log(`warm lookup (sync, cached): ${warmNs.toFixed(0)} ns/op`);
    console.log(`stage throughput: ${(n / stageS).toFixed(0)} records/s (${n} records, batches of ${BATCH})`);
    console.log(`cgroup v2 tree scan: ${scanMs.toFixed(1)} ms (${cg.cacheSize} cgroups)`);
    console.log(
      `tracker cache heap per container (container + cgroup entries): ${gc ? `${(perContainer / 1024).toFixed(2)} KiB` : 'n/a (run with --expose-gc)'}`,
    );
  } finally {
    await pool(N, 4, (i) =>
      run('ctr', ['-n', ns, 'task', 'kill', '-s', 'SIGKILL', ids[i]!]).catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 500));
    await pool(N, 4, async (i) => {
      await run('ctr', ['-n', ns, 'task', 'rm', '-f', ids[i]!]).catch(() => undefined);
      await run('ctr', ['-n', ns, 'container', 'rm', ids[i]!]).catch(() => undefined);
    });
    spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
    rmSync(dirname(image.tar), { recursive: true, force: true });
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      spawnSync('sleep', ['0.2']);
    }
  }
}

await main();
