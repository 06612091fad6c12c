/**
 * Shared by the short-lived container tests (short-lived-*.kernel.test.ts,
 * one file per runtime so CI runs them side by side).
 *
 * Short-lived containers (issue 12): containers that live ~5 ms (one failed
 * open and exit), 50 ms, 0.2 s and 1 s, run and removed by each runtime
 * (`ctr run --rm`, `docker run --rm`, `podman run --rm`, CRI with the
 * container removed right after it exits), one after another and in a burst.
 * Each opens a marker path of its own; the real probes (with cgroup_mkdir)
 * feed the tracker and the enrichment stage as collect() does. Every marker
 * record must name its container with the image digests the runtime itself
 * reports, never go out as `host`; a host process writing files beside them
 * must never be attributed to a container.
 *
 * The matrix is small for CI; STELLA_SHORT_LIVED_PER_CELL (containers per
 * runtime and lifetime, default 3) and STELLA_SHORT_LIVED_BURST (default 10)
 * make it bigger. docs/probe-reference.md ("Short-lived containers") has the
 * numbers measured.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  ContainerTracker,
  type ContainerTrackerOptions,
  type Enriched,
  EnrichmentStage,
} from '@stellaops/enrich';
import { openProbeSet, type ProbeEvent } from '@stellaops/probes';
import { afterAll, beforeAll, expect } from 'vitest';
import { type BuiltImage, buildImage, importImage } from '../../../tools/oci-image/ctr.js';
import { waitFor } from './helpers.js';

/** Containers per runtime and lifetime (STELLA_SHORT_LIVED_PER_CELL, default 3). */
export const PER_CELL = Number(process.env.STELLA_SHORT_LIVED_PER_CELL ?? 3);
/** Containers started at once after the sequential ones (STELLA_SHORT_LIVED_BURST, default 10). */
export const BURST = Number(process.env.STELLA_SHORT_LIVED_BURST ?? 10);
/** Seconds each container sleeps after its marker open; 0 is the marker open alone (~5 ms). */
export const LIFETIMES = [0, 0.05, 0.2, 1];
const MARK = '/stella-mark-';
/** Unique per test process: container ids, namespaces and paths carry it. */
export const run = `${process.pid}-${Date.now().toString(36)}`;

/** What the gates name. */
export const what = 'short-lived container attribution (probes + enrich)';

/** What a container must be attributed to. */
export interface Expected {
  readonly id: string;
  readonly runtime: string;
  readonly imageManifestDigest: string | undefined;
  readonly imageConfigDigest: string;
}

/** The records of one harness: marker records by tag, the host loop's records. */
export class Harness {
  tracker!: ContainerTracker;
  probes!: ReturnType<typeof openProbeSet>;
  pump!: Promise<void>;
  readonly marks = new Map<string, Enriched<ProbeEvent>[]>();
  readonly host: Enriched<ProbeEvent>[] = [];
  readonly expected = new Map<string, Expected>();
  readonly hostDir = join(tmpdir(), `stella-short-host-${run}-${Math.random().toString(36).slice(2)}`);
  #loop: ChildProcess | undefined;

  async start(options: ContainerTrackerOptions): Promise<void> {
    mkdirSync(this.hostDir, { recursive: true });
    this.tracker = await ContainerTracker.create(options);
    this.probes = openProbeSet({
      probes: ['file_open', 'exec', 'cgroup_mkdir'],
      onCgroupMkdir: (e) => this.tracker.learnCgroup(e.id, e.path),
    });
    const stage = new EnrichmentStage(this.tracker);
    this.pump = (async () => {
      for await (const batch of stage.run(this.probes)) {
        for (const e of batch) {
          if (e.kind !== 'file_open') continue;
          const p = e.path.toString();
          if (p.startsWith(MARK)) {
            const tag = p.slice(MARK.length);
            const list = this.marks.get(tag) ?? [];
            list.push(e);
            this.marks.set(tag, list);
          } else if (p.startsWith(this.hostDir)) this.host.push(e);
        }
      }
    })();
    // Host processes beside the containers: a shell writing a new file every few ms.
    this.#loop = spawn(
      'sh',
      ['-c', `i=0; while :; do i=$((i+1)); echo x > "${this.hostDir}/f$i"; sleep 0.005; done`],
      { stdio: 'ignore' },
    );
  }

  /** Wait until the marker record of every started container is through the stage. */
  async settle(): Promise<void> {
    for (const tag of this.expected.keys()) {
      await waitFor(`the marker record of ${tag}`, () => (this.marks.has(tag) ? true : undefined), 30_000);
    }
  }

  /** Attributed (right id and digests), unknown (with a reason), host, wrong, per the expectations. */
  tally(): { total: number; attributed: number; unknown: string[]; host: string[]; wrong: string[] } {
    const out = {
      total: 0,
      attributed: 0,
      unknown: [] as string[],
      host: [] as string[],
      wrong: [] as string[],
    };
    for (const [tag, exp] of this.expected) {
      for (const e of this.marks.get(tag) ?? []) {
        out.total++;
        const r = e.enrichment;
        if (r.status === 'host') out.host.push(`${tag}: ${r.cgroupPath}`);
        else if (r.status === 'unknown') out.unknown.push(`${tag}: ${r.reason}`);
        else if (
          r.container.id === exp.id &&
          r.container.runtime === exp.runtime &&
          r.container.imageConfigDigest === exp.imageConfigDigest &&
          r.container.imageManifestDigest === exp.imageManifestDigest
        )
          out.attributed++;
        else out.wrong.push(`${tag}: ${JSON.stringify(r.container)}`);
      }
    }
    return out;
  }

  /** The host loop's records that were attributed to a container. */
  hostAttributed(): string[] {
    return this.host
      .filter((e) => e.enrichment.status === 'resolved')
      .map((e) => `pid ${e.pid} ${e.comm.toString()} ${JSON.stringify(e.enrichment)}`);
  }

  async stop(): Promise<void> {
    this.#loop?.kill('SIGKILL');
    await this.probes?.close();
    await this.pump?.catch(() => undefined);
    this.tracker?.close();
    rmSync(this.hostDir, { recursive: true, force: true });
  }
}

/** Run a command to its end; rejects with its stderr on failure. */
export function runAsync(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.slice(-500)}`)),
    );
  });
}

/** The command each container runs: its marker open, then its lifetime. */
export function script(tag: string, seconds: number): string[] {
  const open = `cat ${MARK}${tag} 2>/dev/null`;
  return ['/bin/sh', '-c', seconds === 0 ? `${open}; exit 0` : `${open}; exec sleep ${seconds}`];
}

/** The matrix: PER_CELL sequential containers per lifetime, then a burst of BURST at once. */
export async function matrix(
  start: (tag: string, seconds: number) => Promise<void>,
  h: Harness,
): Promise<void> {
  let n = 0;
  for (const s of LIFETIMES) {
    for (let i = 0; i < PER_CELL; i++) await start(`${run}-s${n++}`, s);
  }
  await Promise.all(
    Array.from({ length: BURST }, (_, i) => start(`${run}-b${n++}`, LIFETIMES[i % LIFETIMES.length]!)),
  );
  await h.settle();
}

/** Print the cell's numbers and assert the targets. */
export function report(name: string, h: Harness): void {
  const t = h.tally();
  console.log(
    `${name}: ${t.attributed}/${t.total} attributed (${PER_CELL} per lifetime x ${LIFETIMES.length} + burst ${BURST}); unknown ${t.unknown.length}, host ${t.host.length}, wrong ${t.wrong.length}; host-loop records ${h.host.length}, attributed to a container ${h.hostAttributed().length}`,
  );
  expect(t.host, 'container records written as host').toEqual([]);
  expect(t.wrong, 'container records attributed to the wrong container or digests').toEqual([]);
  expect(t.total).toBeGreaterThanOrEqual(h.expected.size);
  expect(t.attributed / t.total, `unknown: ${t.unknown.slice(0, 5).join('; ')}`).toBeGreaterThanOrEqual(0.99);
  expect(h.host.length, 'the host loop wrote files').toBeGreaterThan(0);
  expect(h.hostAttributed(), 'host records attributed to a container').toEqual([]);
}

/** Build the test image (busybox, tools/oci-image); the caller removes `dirname(image.tar)`. */
export function testImage(): BuiltImage {
  return buildImage();
}

/**
 * For a file of ctr tests: the test image imported into containerd
 * namespace `ns` before its tests; after them the harness stops and the
 * image, its archive and the namespace are removed. Returns the image getter.
 */
export function useCtrImage(ns: string, h: Harness): () => BuiltImage {
  let image: BuiltImage | undefined;
  beforeAll(() => {
    image = testImage();
    importImage(image, ns);
  }, 120_000);
  afterAll(async () => {
    await h.stop();
    if (image) {
      spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
      rmSync(dirname(image.tar), { recursive: true, force: true });
    }
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      spawnSync('sleep', ['0.2']);
    }
  }, 60_000);
  return () => {
    if (image === undefined) throw new Error('the ctr test image is made in beforeAll');
    return image;
  };
}
