/**
 * Example: embedding `collect()` from @stellaops/signals in another service.
 *
 * Runs one command in a cgroup v2 directory of its own, traces exactly that
 * cgroup (the filter runs in the kernel, so the rest of the machine costs
 * nothing and cannot mix in), and returns the command's records with the
 * final collector_status that says how complete they are.
 *
 * Needs root (CAP_BPF, CAP_PERFMON; CAP_SYS_ADMIN for the TLS uprobes), a
 * kernel with BTF (5.17+), and a cgroup v2 hierarchy at /sys/fs/cgroup or
 * /sys/fs/cgroup/unified.
 *
 * Run: npx tsx examples/embed-collect/collect-workload.ts -- sh -c 'cat /etc/hostname'
 *      (prints the records as canonical NDJSON on stdout, a summary on stderr)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type CollectOptions,
  type CollectorStatusRecord,
  collect,
  type EvidenceRecord,
  encodeRecord,
  validateRecord,
} from '@stellaops/signals';

/** What one traced command did, and how complete the record of it is. */
export interface WorkloadEvidence {
  /** Pid of the command (the root of its process tree). */
  pid: number;
  /** The command's exit code (null when a signal ended it). */
  exitCode: number | null;
  /** cgroup v2 id the collection was limited to. */
  cgroupId: bigint;
  /** Every record of the collection, in stream order (seq without gaps). */
  records: EvidenceRecord[];
  /** The last record: the final collector_status (window, attach types, exact counters). */
  final: CollectorStatusRecord;
  /** Records that fail schema v1 validation: always empty unless the collector has a bug. */
  invalid: Array<{ seq: string; type: string; problems: string[] }>;
}

/** Options of {@link collectWorkload}: the collect() options, minus the cgroup filter it sets itself. */
export interface WorkloadOptions {
  collect?: Omit<CollectOptions, 'filters'> & {
    filters?: Omit<NonNullable<CollectOptions['filters']>, 'cgroupIds'>;
  };
  /** How long to keep draining after the command exited, ms (default 300). */
  settleMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cgroup v2 mount: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid). */
function cgroupRoot(): string {
  for (const p of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    try {
      if (statSync(join(p, 'cgroup.procs')).isFile() && statSync(join(p, 'cgroup.controllers')).isFile())
        return p;
    } catch {
      // not a v2 mount
    }
  }
  throw new Error('no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified');
}

/**
 * Run `command args…` in a new cgroup and collect what it does.
 * Resolves after the command exited and the collection closed (its final
 * collector_status is the last record). Rejects with the loader's BpfError
 * (code PRIVILEGE, with a hint) when not privileged, and with a plain Error
 * when no cgroup v2 hierarchy exists.
 */
export async function collectWorkload(
  command: string,
  args: readonly string[],
  options: WorkloadOptions = {},
): Promise<WorkloadEvidence> {
  const dir = join(cgroupRoot(), `stella-example-${process.pid}-${Date.now()}`);
  mkdirSync(dir);
  try {
    // A cgroup v2 id is the inode number of its directory.
    const cgroupId = statSync(dir, { bigint: true }).ino;
    const c = collect({
      ...options.collect,
      filters: { ...options.collect?.filters, cgroupIds: [cgroupId] },
    });
    try {
      await c.ready;
    } catch (e) {
      await c.close();
      throw e;
    }
    const records: EvidenceRecord[] = [];
    const consumer = (async () => {
      for await (const r of c) records.push(r);
    })();

    // The shell moves itself into the cgroup, then becomes the command: the
    // command's exec and everything after it happen inside the cgroup.
    const child = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, command, ...args],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    await sleep(options.settleMs ?? 300);
    await c.close();
    await consumer;

    const final = records.at(-1);
    if (final?.type !== 'collector_status' || final.final !== true) {
      throw new Error('the collection ended without its final collector_status');
    }
    const invalid = records
      .map((r) => ({ seq: r.seq, type: r.type, problems: validateRecord(r).map((i) => JSON.stringify(i)) }))
      .filter((x) => x.problems.length > 0);
    return { pid: child.pid ?? -1, exitCode, cgroupId, records, final, invalid };
  } finally {
    try {
      rmdirSync(dir); // empty once the command and its children exited
    } catch {
      // a child still lives in it: leave it for the operator rather than fail
    }
  }
}

/** Records in the stream per record type (collector_status excluded). */
export function countByType(records: readonly EvidenceRecord[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const r of records) {
    if (r.type !== 'collector_status') out.set(r.type, (out.get(r.type) ?? 0n) + 1n);
  }
  return out;
}

/** The record type each probe counter emits (file_open_lsm also emits file_open records). */
const PROBE_TYPE: Record<string, string> = {
  exec: 'process_exec',
  exit: 'process_exit',
  file_open_lsm: 'file_open',
};

/** `emitted` of a collector_status summed per record type: equal to {@link countByType} for a whole stream. */
export function emittedByType(status: CollectorStatusRecord): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const p of status.probes) {
    const type = PROBE_TYPE[p.name] ?? p.name;
    out.set(type, (out.get(type) ?? 0n) + BigInt(p.emitted));
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const at = argv.indexOf('--');
  const cmd = at === -1 ? argv : argv.slice(at + 1);
  if (cmd.length === 0) {
    process.stderr.write('usage: collect-workload.ts -- COMMAND [ARGS...]\n');
    return 2;
  }
  const ev = await collectWorkload(cmd[0]!, cmd.slice(1));
  for (const r of ev.records) {
    if (!ev.invalid.some((x) => x.seq === r.seq)) process.stdout.write(encodeRecord(r));
  }
  const probes = ev.final.probes.map(
    (p) =>
      `${p.name}: ${p.attached ? p.attach_type : `not attached (${p.reason ?? '?'})`}, emitted ${p.emitted}, lost ${p.lost}`,
  );
  process.stderr.write(
    `pid ${ev.pid} exited ${ev.exitCode}; ${ev.records.length} records in cgroup ${ev.cgroupId}\n` +
      `${probes.join('\n')}\n` +
      (ev.invalid.length ? `INVALID records (collector bug): ${JSON.stringify(ev.invalid)}\n` : ''),
  );
  return ev.invalid.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: Error & { hint?: string }) => {
      process.stderr.write(`collect-workload: ${e.message}\n${e.hint ? `  hint: ${e.hint}\n` : ''}`);
      process.exitCode = 3;
    },
  );
}
