/**
 * The analysis: evidence records of one image matched to its inventory,
 * per package observed / not_observed / unknown, with the window that
 * conditions every "not_observed".
 */
import type { CollectorStatusRecord, EvidenceRecord, ProcessRecord } from '@stellaops/ndjson';
import { getOrAdd } from './collections.js';
import { ReachabilityError } from './errors.js';
import { chainRecords, givenRecords, type SourcedRecord, verifiedChain } from './evidence.js';
import { isSharedObject } from './fsview.js';
import { Matcher, type Owner } from './match.js';
import { normalizePath } from './paths.js';
import type {
  Access,
  AnalyzeOptions,
  EvidencePointer,
  EvidenceSummary,
  FileObservation,
  ObservationWindow,
  PackageEvidence,
  PackageReport,
  ReachabilityReport,
  UnownedPath,
} from './types.js';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const ACCESS_ORDER: Access[] = ['executed', 'loaded', 'opened'];
const MAX_UNOWNED = 1000;
const MAX_UNATTRIBUTED_CONTAINERS = 100;
/** Kernel filesystems, not the image's files. */
const NOT_IMAGE = /^\/(?:proc|sys|dev)(?:\/|$)/;
/** O_ACCMODE bits of open(2) flags; 0 is O_RDONLY. */
const O_ACCMODE = 3;

interface FileAcc {
  path: string;
  access: Set<Access>;
  matchedBy: Set<'path' | 'digest'>;
  count: bigint;
  first: bigint;
  last: bigint;
  evidence: EvidencePointer[];
}

interface Run {
  host: string;
  start: bigint;
  status: CollectorStatusRecord;
}

function validate(o: AnalyzeOptions): void {
  if (typeof o?.imageDigest !== 'string' || !DIGEST_RE.test(o.imageDigest)) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      `imageDigest must be the image manifest digest, "sha256:" and 64 lowercase hex digits; got ${JSON.stringify(o?.imageDigest)}`,
      { hint: 'the records carry it as container.image_manifest_digest; `ctr images ls` shows it' },
    );
  }
  if (!o.inventory || !Array.isArray(o.inventory.packages)) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      'inventory must be an Inventory ({ source, packages: [...] })',
      {
        hint: 'build one with parseSbom, inventoryFromImage or inventoryFromRootfs',
      },
    );
  }
  if ((o.records === undefined) === (o.chainDir === undefined)) {
    throw new ReachabilityError('INVALID_OPTION', 'give exactly one evidence source: records or chainDir');
  }
  if (o.chainDir !== undefined && (!Array.isArray(o.publicKeys) || o.publicKeys.length === 0)) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      `chainDir ${o.chainDir} needs publicKeys: the chain is verified before it is used`,
      {
        hint: 'pass the collector public key PEM(s)',
      },
    );
  }
}

/** The absolute image paths a process record names, with how it touched them. */
function pathsOf(r: ProcessRecord): { access: Access; paths: string[]; digest?: string } | undefined {
  const abs = (v: unknown) => (typeof v === 'string' && v.startsWith('/') ? [normalizePath(v)] : []);
  if (r.type === 'process_exec') {
    if (r.ret !== undefined && r.ret < 0) return undefined;
    const paths = [
      ...abs(r.filename),
      ...(r.exe_path_truncated ? [] : abs(r.exe_path)),
      ...abs(r.container_path),
    ];
    return { access: 'executed', paths, ...(r.exe_digest ? { digest: r.exe_digest } : {}) };
  }
  if (r.type === 'file_open') {
    if (r.ret < 0) return undefined;
    const own = r.path_resolution !== 'unresolved' && !r.path_truncated ? abs(r.path) : [];
    const paths = [...own, ...abs(r.container_path)];
    const readOnly = (r.flags & O_ACCMODE) === 0;
    const lib = r.file_digest !== undefined || paths.some((p) => isSharedObject(p));
    return {
      access: readOnly && lib ? 'loaded' : 'opened',
      paths,
      ...(r.file_digest ? { digest: r.file_digest } : {}),
    };
  }
  return undefined;
}

/** The window from the collector's status records: per run (host, start), its latest status. */
function windowOf(
  runs: Map<string, Run>,
  first: bigint | undefined,
  last: bigint | undefined,
): Omit<ObservationWindow, 'unattributed_records' | 'unattributed_containers'> {
  if (runs.size === 0) {
    return {
      start_wall_ns: first?.toString() ?? null,
      end_wall_ns: last?.toString() ?? null,
      source: first === undefined ? 'none' : 'records',
      probes: [],
      lost: '0',
      final_status: false,
      runs: [],
    };
  }
  let start: bigint | undefined;
  let end: bigint | undefined;
  let lost = 0n;
  const probes = new Map<
    string,
    { attached: boolean; types: Set<string>; seen: bigint; emitted: bigint; lost: bigint }
  >();
  const list = [...runs.values()].sort((a, b) =>
    a.start < b.start ? -1 : a.start > b.start ? 1 : a.host.localeCompare(b.host),
  );
  for (const run of list) {
    const s = run.status;
    const ws = BigInt(s.window_start_wall_ns);
    const we = BigInt(s.window_end_wall_ns);
    if (start === undefined || ws < start) start = ws;
    if (end === undefined || we > end) end = we;
    for (const p of s.probes) {
      const acc = getOrAdd(probes, p.name, () => ({
        attached: true,
        types: new Set<string>(),
        seen: 0n,
        emitted: 0n,
        lost: 0n,
      }));
      acc.attached &&= p.attached;
      acc.types.add(p.attach_type);
      acc.seen += BigInt(p.seen);
      acc.emitted += BigInt(p.emitted);
      acc.lost += BigInt(p.lost);
      lost += BigInt(p.lost);
    }
  }
  return {
    start_wall_ns: (start as bigint).toString(),
    end_wall_ns: (end as bigint).toString(),
    source: 'collector_status',
    probes: [...probes.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, a]) => ({
        name,
        attached: a.attached,
        attach_types: [...a.types].sort(),
        seen: a.seen.toString(),
        emitted: a.emitted.toString(),
        lost: a.lost.toString(),
      })),
    lost: lost.toString(),
    final_status: list.some((r) => r.status.final === true),
    runs: list.map((r) => ({
      host_id: r.host,
      start_wall_ns: r.status.window_start_wall_ns,
      end_wall_ns: r.status.window_end_wall_ns,
      final: r.status.final === true,
    })),
  };
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);

/** A record's container, as the evidence carries it. */
type RecordContainer = NonNullable<ProcessRecord['container']>;

/**
 * True when the collector could not tie the record's container to an image:
 * its status is not "resolved", or it has no image manifest digest.
 */
function isUnattributed(c: RecordContainer): boolean {
  return !c.image_manifest_digest || (c.status !== undefined && c.status !== 'resolved');
}

/**
 * False for a record of no cgroup: cgroup_id 0 (interrupt or softirq
 * context, e.g. tcp_state), or neither a container id nor a cgroup path.
 * Such a record is the host's, not a container's.
 */
function inContainer(r: ProcessRecord): boolean {
  const c = r.container;
  return r.cgroup_id !== '0' && (Boolean(c?.id) || typeof c?.cgroup_path === 'string');
}

interface ContainerAcc {
  id?: string;
  cgroupPath?: string;
  status: string;
  records: bigint;
  first: bigint;
  last: bigint;
}

function noteUnattributed(m: Map<string, ContainerAcc>, c: RecordContainer, wall: bigint): void {
  const cgroupPath = typeof c.cgroup_path === 'string' ? c.cgroup_path : undefined;
  const acc = getOrAdd(m, `${c.id ?? ''}\0${c.id ? '' : (cgroupPath ?? '')}`, () => ({
    ...(c.id ? { id: c.id } : {}),
    ...(cgroupPath !== undefined ? { cgroupPath } : {}),
    status: c.status ?? 'resolved',
    records: 0n,
    first: wall,
    last: wall,
  }));
  acc.records++;
  acc.first = min(acc.first, wall);
  acc.last = max(acc.last, wall);
}

function unattributedOf(
  m: Map<string, ContainerAcc>,
): Pick<ObservationWindow, 'unattributed_records' | 'unattributed_containers'> {
  let records = 0n;
  for (const c of m.values()) records += c.records;
  const list = [...m.values()]
    .sort(
      (a, b) =>
        (a.records > b.records ? -1 : a.records < b.records ? 1 : 0) ||
        cmp(a.id ?? '', b.id ?? '') ||
        cmp(a.cgroupPath ?? '', b.cgroupPath ?? ''),
    )
    .slice(0, MAX_UNATTRIBUTED_CONTAINERS);
  return {
    unattributed_records: records.toString(),
    unattributed_containers: list.map((c) => ({
      ...(c.id !== undefined ? { id: c.id } : {}),
      ...(c.cgroupPath !== undefined ? { cgroup_path: c.cgroupPath } : {}),
      status: c.status,
      records: c.records.toString(),
      first_seen_wall_ns: c.first.toString(),
      last_seen_wall_ns: c.last.toString(),
    })),
  };
}

type Owners = Map<string, { owner: Owner; by: Set<'path' | 'digest'> }>;

/** The package files a record's paths and digest name, in the image's view. */
function ownersOf(matcher: Matcher, touched: { paths: string[]; digest?: string }): Owners {
  const owners: Owners = new Map();
  const note = (list: Owner[], by: 'path' | 'digest') => {
    for (const owner of list) {
      const k = `${owner.pkg}\0${owner.path}`;
      const e = owners.get(k);
      if (e) e.by.add(by);
      else owners.set(k, { owner, by: new Set([by]) });
    }
  };
  for (const p of touched.paths) note(matcher.byPath(p), 'path');
  if (touched.digest) note(matcher.byDigest(touched.digest), 'digest');
  return owners;
}

/** Per package, what a set of records (the image's, or the unattributed ones) did to its files. */
class Touches {
  readonly #files = new Map<number, Map<string, FileAcc>>();
  readonly #counts = new Map<number, Record<Access, bigint>>();
  constructor(readonly maxPointers: number) {}

  add(owners: Owners, access: Access, wall: bigint, pointer: EvidencePointer): void {
    // Package counts are records: one record naming two files of a package (a symlink and its target) counts once.
    for (const pkg of new Set([...owners.values()].map((x) => x.owner.pkg))) {
      getOrAdd(this.#counts, pkg, () => ({ executed: 0n, loaded: 0n, opened: 0n }))[access]++;
    }
    for (const { owner, by } of owners.values()) {
      const files = getOrAdd(this.#files, owner.pkg, () => new Map<string, FileAcc>());
      const f = getOrAdd(files, owner.path, () => ({
        path: owner.path,
        access: new Set<Access>(),
        matchedBy: new Set<'path' | 'digest'>(),
        count: 0n,
        first: wall,
        last: wall,
        evidence: [],
      }));
      f.access.add(access);
      for (const b of by) f.matchedBy.add(b);
      f.count++;
      f.first = min(f.first, wall);
      f.last = max(f.last, wall);
      if (f.evidence.length < this.maxPointers) f.evidence.push(pointer);
    }
  }

  /** What the records did to package `pkg`'s files; undefined when they touched none. */
  evidenceOf(pkg: number): PackageEvidence | undefined {
    const files = this.#files.get(pkg);
    if (!files || files.size === 0) return undefined;
    const counts = this.#counts.get(pkg) ?? { executed: 0n, loaded: 0n, opened: 0n };
    let first: bigint | undefined;
    let last: bigint | undefined;
    const out: FileObservation[] = [];
    for (const f of [...files.values()].sort((a, b) => cmp(a.path, b.path))) {
      first = first === undefined ? f.first : min(first, f.first);
      last = last === undefined ? f.last : max(last, f.last);
      out.push({
        path: f.path,
        access: ACCESS_ORDER.filter((a) => f.access.has(a)),
        matched_by: (['path', 'digest'] as const).filter((m) => f.matchedBy.has(m)),
        count: f.count.toString(),
        first_seen_wall_ns: f.first.toString(),
        last_seen_wall_ns: f.last.toString(),
        evidence: f.evidence,
      });
    }
    return {
      counts: {
        executed: counts.executed.toString(),
        loaded: counts.loaded.toString(),
        opened: counts.opened.toString(),
      },
      first_seen_wall_ns: (first as bigint).toString(),
      last_seen_wall_ns: (last as bigint).toString(),
      files: out,
    };
  }
}

/**
 * Match the evidence of one image against its inventory. Only process
 * records whose `container.image_manifest_digest` is `imageDigest` count;
 * records of the container runtime's own set-up (`runtime_setup`) and failed
 * execs and opens do not. A chain directory is verified first with
 * `publicKeys` and refused unless every check passes.
 *
 * Per package: `observed` when a record executed, loaded (read-only open of a
 * shared object) or opened one of its files, by path in the image's view or
 * by SHA-256; `unknown` when the inventory lists no file for it (reason
 * `no_files`), or when none of the image's records but a record of a
 * container not tied to any image (`container.status` not "resolved", or no
 * image digest) touched one of its files, matched the same way (reason
 * `unattributed_records`, with pointers to those records); else
 * `not_observed`. The window counts, per container, the unattributed records
 * that could have made a package observed (successful execs and opens naming
 * a path or digest); host records (cgroup 0, or neither container id nor
 * cgroup path), exits and network records are not counted.
 * @throws ReachabilityError INVALID_OPTION, CHAIN_UNVERIFIED, IO_ERROR
 */
export async function analyze(o: AnalyzeOptions): Promise<ReachabilityReport> {
  validate(o);
  const maxPointers = o.maxEvidencePerFile ?? 5;
  const matcher = new Matcher(o.inventory, o.symlinks);
  const chain =
    o.chainDir !== undefined
      ? verifiedChain(o.chainDir, o.publicKeys as string[], o.trustedRoot, o.requireEnd === true)
      : undefined;
  const source: Iterable<SourcedRecord> | AsyncIterable<SourcedRecord> = chain
    ? chainRecords(chain)
    : givenRecords(o.records as Iterable<EvidenceRecord>);

  const image = new Touches(maxPointers);
  const others = new Touches(maxPointers);
  const unowned = new Map<string, { access: Set<Access>; count: bigint }>();
  const unattributed = new Map<string, ContainerAcc>();
  const runs = new Map<string, Run>();
  const containers = new Set<string>();
  let total = 0n;
  let imageRecords = 0n;
  let setup = 0n;
  let first: bigint | undefined;
  let last: bigint | undefined;

  for await (const { record: r, chunk } of source) {
    total++;
    const wall = BigInt(r.wall_ns);
    first = first === undefined ? wall : min(first, wall);
    last = last === undefined ? wall : max(last, wall);
    if (r.type === 'collector_status') {
      const key = `${r.host_id}\0${r.window_start_wall_ns}`;
      const prev = runs.get(key);
      if (!prev || BigInt(r.window_end_wall_ns) >= BigInt(prev.status.window_end_wall_ns)) {
        runs.set(key, { host: r.host_id, start: BigInt(r.window_start_wall_ns), status: r });
      }
      continue;
    }
    const c = r.container;
    if (c === undefined) continue;
    const mine = c.image_manifest_digest === o.imageDigest;
    // Not tied to any image: it may have been this image's (attribution failed under load, say).
    if (!mine && !isUnattributed(c)) continue;
    if ('runtime_setup' in r && r.runtime_setup === true) {
      if (mine) setup++;
      continue;
    }
    const pointer: EvidencePointer = { ...(chunk ? { chunk } : {}), seq: r.seq, type: r.type };
    const touched = pathsOf(r);
    if (mine) {
      imageRecords++;
      if (c.id) containers.add(c.id);
    } else if (touched && inContainer(r) && (touched.paths.length > 0 || touched.digest)) {
      // Only a record that could have made a package observed weakens "not observed".
      noteUnattributed(unattributed, c, wall);
    } else continue;
    if (!touched) continue;
    const owners = ownersOf(matcher, touched);
    if (owners.size > 0) (mine ? image : others).add(owners, touched.access, wall, pointer);
    else if (mine) {
      const p = touched.paths[0];
      if (p !== undefined && !NOT_IMAGE.test(p)) {
        const real = matcher.real(p);
        const u = unowned.get(real) ?? { access: new Set<Access>(), count: 0n };
        u.access.add(touched.access);
        u.count++;
        unowned.set(real, u);
      }
    }
  }

  const packages: PackageReport[] = o.inventory.packages.map((p, i) => {
    const base = {
      ref: p.ref,
      name: p.name,
      ...(p.version !== undefined ? { version: p.version } : {}),
      ...(p.purl !== undefined ? { purl: p.purl } : {}),
      ecosystem: p.ecosystem,
      file_count: p.files.length,
    };
    const observed = image.evidenceOf(i);
    if (observed) return { ...base, status: 'observed' as const, observed };
    const known = p.files.length > 0 || (p.directories?.length ?? 0) > 0;
    if (!known) return { ...base, status: 'unknown' as const, reason: 'no_files' as const };
    const other = others.evidenceOf(i);
    if (other) {
      return {
        ...base,
        status: 'unknown' as const,
        reason: 'unattributed_records' as const,
        unattributed: other,
      };
    }
    return { ...base, status: 'not_observed' as const };
  });
  packages.sort((a, b) => cmp(a.name, b.name) || cmp(a.version ?? '', b.version ?? '') || cmp(a.ref, b.ref));
  const evidence: EvidenceSummary = {
    kind: chain ? 'chain' : 'records',
    ...(chain ? { chunks: chain.chunks, key_hints: chain.keyHints } : {}),
    records: total.toString(),
    image_records: imageRecords.toString(),
    runtime_setup_records: setup.toString(),
    containers: [...containers].sort(),
  };
  return {
    report_version: 1,
    image: { manifest_digest: o.imageDigest },
    inventory: { source: o.inventory.source, packages: o.inventory.packages.length },
    evidence,
    window: { ...windowOf(runs, first, last), ...unattributedOf(unattributed) },
    summary: {
      observed: packages.filter((p) => p.status === 'observed').length,
      not_observed: packages.filter((p) => p.status === 'not_observed').length,
      unknown: packages.filter((p) => p.status === 'unknown').length,
      unattributed: packages.filter((p) => p.reason === 'unattributed_records').length,
    },
    packages,
    unowned_paths: unownedList(unowned),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function unownedList(m: Map<string, { access: Set<Access>; count: bigint }>): UnownedPath[] {
  return [...m.entries()]
    .sort(([pa, a], [pb, b]) => (a.count > b.count ? -1 : a.count < b.count ? 1 : cmp(pa, pb)))
    .slice(0, MAX_UNOWNED)
    .map(([path, u]) => ({
      path,
      access: ACCESS_ORDER.filter((a) => u.access.has(a)),
      count: u.count.toString(),
    }));
}
