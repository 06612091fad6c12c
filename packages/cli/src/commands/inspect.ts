import { createPublicKey } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChainReport, verifyChain } from '@stellaops/evidence-chain';
import {
  bytesFromField,
  type CollectorStatusRecord,
  type ContainerInfo,
  decodeStream,
  type EvidenceRecord,
  type FileOpenRecord,
  type ProcessExecRecord,
} from '@stellaops/ndjson';
import type { CommandSpec, Parsed } from '../args.js';
import { type EffectiveConfig, loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import {
  formatImageRef,
  type ImageQuery,
  parseImageQuery,
  parseImageRef,
  refMatches,
} from './inspect-query.js';
import { publicKeyPath } from './keygen.js';
import { CONFIG_FILE_OPTION, configFileInputs, configFlags } from './shared.js';
import { readKeys } from './verify.js';

export const inspectSpec: CommandSpec = {
  name: 'inspect',
  summary:
    'Summarise the verified evidence for one image (files, binaries, endpoints, TLS names, gaps), or list the images it saw.',
  usage:
    'stella signals inspect IMAGE | --list-images [--target DIR] [--config FILE] [--key PUBLIC.pem]... [--json]',
  options: {
    target: {
      type: 'string',
      short: 't',
      value: 'DIR',
      help: 'evidence directory (signals.output_directory)',
    },
    config: CONFIG_FILE_OPTION,
    key: {
      type: 'string',
      multiple: true,
      value: 'PEM',
      help: 'trusted public key; default: the public key beside signals.signing.key_path',
    },
    'list-images': {
      type: 'boolean',
      help: 'list every image the verified evidence saw: reference, digests, runtimes, containers, records',
    },
    json: { type: 'boolean', help: 'machine-readable output' },
  },
  positionals: ['image?'],
  examples: [
    'stella signals inspect --list-images --target /var/lib/stellaops/evidence',
    'stella signals inspect sha256:3f1c...e9 --target /var/lib/stellaops/evidence',
    'stella signals inspect 3f1c9a --target /var/lib/stellaops/evidence   # a unique digest prefix',
    'stella signals inspect docker.io/library/nginx:1.25 --key /etc/stellaops/signals-key.pub.pem --json',
  ],
  exitCodes: [
    '0  evidence found and summarised (or listed)',
    '1  no verified evidence matches the image, or a chunk failed verification (it is named, and left out of the summary)',
    '2  bad image argument (also a digest prefix that matches more than one digest), flags, config or key',
  ],
};

/** A container as the evidence names it. */
export interface ContainerSeen {
  id: string;
  runtime?: string;
  imageRef?: string;
  k8s?: Record<string, string>;
}

/** A file an image's processes opened, as a path in the container. */
export interface FileSeen {
  /** The path in the container (the record's `container_path` when it has one). */
  path: string;
  /** The path as opened, when the record's `container_path` differs from it. */
  openedAs?: string;
  opens: number;
  failed: number;
}

/** A binary an image's processes executed, once per command line. */
export interface ExecSeen {
  /** The path execve was given. */
  filename: string;
  /** The file the kernel ran, from the process's root, when it differs from `filename` (busybox behind /proc/self/exe, a script's interpreter). */
  exePath?: string;
  /** Content digest of that file, when the collector read one: match it to a package in the image's SBOM. */
  exeDigest?: string;
  argv: string[];
  count: number;
}

/** One image identity: what a container's records name it by. */
export interface ImageIdentity {
  imageRef?: string;
  manifestDigest?: string;
  configDigest?: string;
}

/** What the evidence says one image did. */
export interface ImageSummary {
  /** The IMAGE argument as given. */
  query: string;
  /** The full digest matched (a digest or digest-prefix query). */
  digest?: string;
  /** The reference matched, normalised (a reference query). */
  imageRef?: string;
  matchedAs: Array<'manifest' | 'config' | 'ref'>;
  /** The distinct identities (reference, digests) of the matched containers. */
  images: ImageIdentity[];
  containers: ContainerSeen[];
  /**
   * Containers the query did not match only because their runtime gave no
   * manifest digest (docker for an image it loaded or built): their config
   * digest or reference is the matched image's. Not in the counts.
   */
  withoutManifestDigest: Array<ContainerSeen & { configDigest?: string; records: number }>;
  /**
   * Other containers in the evidence with no manifest digest but a config
   * digest or reference, and nothing linking them to the matched image: a
   * manifest digest cannot match them (absent for a query that matched as
   * config digest or by reference).
   */
  othersWithoutManifestDigest: { containers: number; runtimes: string[] };
  window: { first: string | null; last: string | null };
  files: FileSeen[];
  executables: ExecSeen[];
  endpoints: Array<{ kind: string; address: string; count: number }>;
  tlsServerNames: Array<{ sni: string; count: number }>;
  /** The image's own records (runtime set-up records are counted apart). */
  records: number;
  /**
   * What the container runtime did in the container's cgroup while setting
   * it up, before the image's entrypoint ran (runc init, its rootfs mounts):
   * host paths, not the image's behaviour, so kept out of the lists above.
   */
  runtimeSetup: {
    records: number;
    files: FileSeen[];
    executables: ExecSeen[];
  };
  completeness: Completeness;
}

/** How much of the evidence was read, and what it says about its own gaps. */
export interface Completeness {
  chainOk: boolean;
  chainClosed: boolean;
  chunksVerified: number;
  chunksFailed: string[];
  /** Not yet signed (collector running or crashed): not read. */
  chunksUnsealed: string[];
  probesNotAttached: Array<{ name: string; reason?: string }>;
  lost: Record<string, string>;
  /**
   * Repeats the in-kernel dedup folded, per probe (from the last status):
   * when present, every count above is of distinct facts, not of events.
   */
  deduplicated: Record<string, string>;
  /**
   * Probes whose counts in a status record do not add up (seen = filtered +
   * deduplicated + emitted + lost + in_flight): the collector's accounting
   * failed, and "not seen" cannot be concluded for them.
   */
  unbalanced: string[];
}

/** One image of `inspect --list-images`. */
export interface ImageListing extends ImageIdentity {
  /** Why there is no manifest digest, when there is none. */
  noManifestDigest?: string;
  runtimes: string[];
  containers: number;
  records: number;
  window: { first: string | null; last: string | null };
}

/** What `inspect --list-images` prints. */
export interface ImageList {
  images: ImageListing[];
  /** Container records with no image identity (attribution unknown, or the runtime gave nothing). */
  unidentified: number;
  completeness: Completeness;
}

function show(field: unknown): string {
  const b = bytesFromField(field as never);
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `<b64:${b.toString('base64')}>`;
}

/** The `--key` public keys, else the one beside (or derived from) signals.signing.key_path; KEY error when there is none. */
export function trustedKeys(p: Parsed, cfg: EffectiveConfig, command = 'inspect'): string[] {
  const given = (p.values.key as string[] | undefined) ?? [];
  if (given.length > 0) return readKeys(given);
  const priv = cfg.get<string>('signing.key_path');
  const pub = publicKeyPath(priv);
  if (existsSync(pub)) return readKeys([pub]);
  if (existsSync(priv)) {
    return [createPublicKey(readFileSync(priv, 'utf8')).export({ type: 'spki', format: 'pem' }).toString()];
  }
  throw new CliError('KEY', `${command} verifies the evidence first and needs the public key`, {
    hint: `pass --key PUBLIC.pem (no key at ${pub})`,
  });
}

function sealedAndVerified(c: ChainReport['chunks'][number]): boolean {
  return c.ok && !c.checks.some((k) => k.name === 'sealed');
}

/** Each chunk that failed verification (not an unsealed tail), with its first failed check. */
function failedChunks(report: ChainReport): string[] {
  return report.chunks
    .filter((c) => !c.ok)
    .map((c) => {
      const k = c.checks.find((x) => !x.ok);
      const why = k ? `${k.name}: ${k.message}` : '';
      return why ? `${c.file} (${why.length > 240 ? `${why.slice(0, 240)}…` : why})` : c.file;
    });
}

/**
 * Every record of the sealed chunks whose signature verified. An unsealed
 * tail (a running collector's current chunk, or anything planted after the
 * chain) is unsigned and is never read as evidence.
 */
async function* verifiedRecords(dir: string, report: ChainReport): AsyncGenerator<EvidenceRecord> {
  for (const chunk of report.chunks.filter(sealedAndVerified)) {
    for await (const r of decodeStream(createReadStream(join(dir, chunk.file)), {
      mode: 'collect',
      checkSequence: false,
    })) {
      if (r.ok) yield r.record as EvidenceRecord;
    }
  }
}

/** What the collector_status records say about gaps, over the whole chain. */
class StatusTally {
  readonly #notAttached = new Map<string, string | undefined>();
  readonly #lost = new Map<string, bigint>();
  readonly #deduplicated = new Map<string, bigint>();
  readonly #unbalanced = new Set<string>();

  add(rec: CollectorStatusRecord): void {
    for (const p of rec.probes) {
      if (!p.attached) this.#notAttached.set(p.name, p.reason);
      const l = BigInt(p.lost);
      if (l > (this.#lost.get(p.name) ?? 0n)) this.#lost.set(p.name, l);
      const d = BigInt(p.deduplicated);
      if (d > (this.#deduplicated.get(p.name) ?? 0n)) this.#deduplicated.set(p.name, d);
      const fates = BigInt(p.filtered) + d + BigInt(p.emitted) + l + BigInt(p.in_flight ?? '0');
      if (BigInt(p.seen) !== fates) this.#unbalanced.add(p.name);
    }
  }

  completeness(report: ChainReport): Completeness {
    const positive = (m: Map<string, bigint>) =>
      Object.fromEntries([...m].filter(([, n]) => n > 0n).map(([k, n]) => [k, n.toString()]));
    return {
      chainOk: report.ok,
      chainClosed: report.summary.closed,
      chunksVerified: report.chunks.filter(sealedAndVerified).length,
      chunksFailed: report.chunks.filter((c) => !c.ok).map((c) => c.file),
      chunksUnsealed: report.chunks.filter((c) => c.ok && !sealedAndVerified(c)).map((c) => c.file),
      probesNotAttached: [...this.#notAttached].map(([name, reason]) => ({
        name,
        ...(reason ? { reason } : {}),
      })),
      lost: positive(this.#lost),
      deduplicated: positive(this.#deduplicated),
      unbalanced: [...this.#unbalanced].sort(),
    };
  }
}

/** Records name CRI-O `cri-o`; collectors before 0.2 wrote `crio`. */
function runtimeName(r: string | undefined): string | undefined {
  return r === 'crio' ? 'cri-o' : r;
}

/** Why a runtime gives no manifest digest, for the messages that say so. */
function noManifestReason(runtime: string | undefined): string {
  switch (runtime) {
    case 'docker':
      return 'no manifest digest from docker (it has none for an image it loaded or built: RepoDigests is empty)';
    case 'cri-o':
      return 'no manifest digest from cri-o (the image was not pulled by digest)';
    default:
      return `no manifest digest from ${runtime ?? 'the runtime'}`;
  }
}

/**
 * The container runtime's own processes in the container's cgroup: runc's
 * `runc init` and its `runc:[N:NAME]` stages (crun likewise), which set up
 * the rootfs from the host before the image's entrypoint runs.
 */
const RUNTIME_INIT_COMM = /^(?:runc|crun)(?::\[\d:[A-Z]+\])?$/;

/**
 * A record of the runtime setting the container up rather than of the image:
 * marked so by the collector (`runtime_setup`), from a runtime's init
 * process, or opening a path with the container id as a directory (the
 * runtime's bundle and state directories on the host; a short id only
 * under /run or /var).
 */
function isRuntimeSetup(rec: EvidenceRecord, containerId: string | undefined): boolean {
  if (rec.type === 'collector_status') return false;
  if ((rec.type === 'file_open' || rec.type === 'process_exec') && rec.runtime_setup === true) return true;
  if (RUNTIME_INIT_COMM.test(show(rec.comm))) return true;
  if (rec.type === 'process_exec') {
    const [arg0, arg1] = rec.argv.map(show);
    if (arg1 === 'init' && /(?:^|\/)(?:runc|crun)$/.test(arg0 ?? '')) return true;
  }
  if (rec.type === 'file_open' && containerId) {
    // Runtimes keep bundles and state in a directory named by the container
    // id (under /run and /var by default; dockerd's --exec-root moves it).
    // A 64-hex id names no directory of the image; a short name (ctr) might.
    const path = show(rec.path);
    if (!path.split('/').includes(containerId)) return false;
    return /^[0-9a-f]{64}$/.test(containerId) || /^\/(?:run|var)\//.test(path);
  }
  return false;
}

type Facts = {
  files: Map<string, FileSeen>;
  execs: Map<string, ExecSeen>;
};

function newFacts(): Facts {
  return { files: new Map(), execs: new Map() };
}

function bump<T extends { count: number }>(m: Map<string, T>, k: string, make: () => T): void {
  const v = m.get(k) ?? make();
  v.count++;
  m.set(k, v);
}

function addFile(facts: Facts, rec: FileOpenRecord): void {
  const opened = show(rec.path);
  // The container's view when enrichment mapped it: a host path is never shown as the image's file.
  const path = rec.container_path ? show(rec.container_path) : opened;
  const f = facts.files.get(path) ?? {
    path,
    ...(path !== opened ? { openedAs: opened } : {}),
    opens: 0,
    failed: 0,
  };
  if (rec.ret < 0) f.failed++;
  else f.opens++;
  facts.files.set(path, f);
}

function addExec(facts: Facts, rec: ProcessExecRecord): void {
  // One entry per command line: runs with other arguments are other facts.
  const filename = show(rec.filename);
  const argv = rec.argv.map(show);
  const exePath = rec.exe_path !== undefined ? show(rec.exe_path) : undefined;
  const exeDigest = rec.exe_digest;
  bump(facts.execs, JSON.stringify([filename, argv, exePath ?? '', exeDigest ?? '']), () => ({
    filename,
    ...(exePath !== undefined && exePath !== filename ? { exePath } : {}),
    ...(exeDigest !== undefined ? { exeDigest } : {}),
    argv,
    count: 0,
  }));
}

const byKey = <T>(m: Map<string, T>): T[] =>
  [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
const iso = (ns: bigint | null) => (ns === null ? null : new Date(Number(ns / 1_000_000n)).toISOString());

/** A container with everything its records said about it. */
interface Catalogued extends ImageIdentity {
  id: string;
  runtime?: string;
  records: number;
  first: bigint;
  last: bigint;
}

/** Fold one record's `container` member into the per-container catalogue. */
function catalogue(seen: Map<string, Catalogued>, c: ContainerInfo, wall: bigint): void {
  if (!c.id) return;
  const key = `${runtimeName(c.runtime) ?? ''}/${c.id}`;
  const e: Catalogued = seen.get(key) ?? { id: c.id, records: 0, first: wall, last: wall };
  e.records++;
  if (wall < e.first) e.first = wall;
  if (wall > e.last) e.last = wall;
  e.runtime ??= runtimeName(c.runtime);
  e.imageRef ??= c.image_ref;
  e.manifestDigest ??= c.image_manifest_digest;
  e.configDigest ??= c.image_config_digest;
  seen.set(key, e);
}

function identityKey(i: ImageIdentity): string {
  return JSON.stringify([i.imageRef ?? '', i.manifestDigest ?? '', i.configDigest ?? '']);
}

/**
 * Read the verified chunks of `dir` and summarise what one image did.
 * `image` is a digest, a digest prefix or an image reference (see
 * {@link parseImageQuery}).
 * @throws CliError `USAGE` for a digest prefix that matches more than one digest.
 */
export async function summarise(
  dir: string,
  image: string | ImageQuery,
  report: ChainReport,
): Promise<ImageSummary> {
  const q = typeof image === 'string' ? parseImageQuery(image) : image;
  const own = newFacts();
  const setup = newFacts();
  const endpoints = new Map<string, { kind: string; address: string; count: number }>();
  const snis = new Map<string, number>();
  const containers = new Map<string, ContainerSeen>();
  const identities = new Map<string, ImageIdentity>();
  const matched = new Set<'manifest' | 'config' | 'ref'>();
  /** Full digests a prefix matched, for the ambiguity check. */
  const prefixHits = new Set<string>();
  const seen = new Map<string, Catalogued>();
  const status = new StatusTally();
  let first: bigint | null = null;
  let last: bigint | null = null;
  let records = 0;
  let setupRecords = 0;
  const matchOf = (c: ContainerInfo): Array<'manifest' | 'config' | 'ref'> => {
    const m = c.image_manifest_digest;
    const cf = c.image_config_digest;
    switch (q.kind) {
      case 'digest':
        return [
          ...(m === q.digest ? (['manifest'] as const) : []),
          ...(cf === q.digest ? (['config'] as const) : []),
        ];
      case 'prefix': {
        const out: Array<'manifest' | 'config'> = [];
        if (m?.startsWith(q.prefix)) {
          prefixHits.add(m);
          out.push('manifest');
        }
        if (cf?.startsWith(q.prefix)) {
          prefixHits.add(cf);
          out.push('config');
        }
        return out;
      }
      case 'ref':
        return refMatches(q.ref, {
          ...(c.image_ref !== undefined ? { imageRef: c.image_ref } : {}),
          ...(m !== undefined ? { manifestDigest: m } : {}),
          ...(cf !== undefined ? { configDigest: cf } : {}),
        })
          ? ['ref']
          : [];
    }
  };
  for await (const rec of verifiedRecords(dir, report)) {
    if (rec.type === 'collector_status') {
      status.add(rec);
      continue;
    }
    const c = rec.container;
    if (!c) continue;
    const t = BigInt(rec.wall_ns);
    catalogue(seen, c, t);
    const how = matchOf(c);
    if (how.length === 0) continue;
    for (const h of how) matched.add(h);
    if (first === null || t < first) first = t;
    if (last === null || t > last) last = t;
    const identity: ImageIdentity = {
      ...(c.image_ref ? { imageRef: c.image_ref } : {}),
      ...(c.image_manifest_digest ? { manifestDigest: c.image_manifest_digest } : {}),
      ...(c.image_config_digest ? { configDigest: c.image_config_digest } : {}),
    };
    identities.set(identityKey(identity), identity);
    const runtime = runtimeName(c.runtime);
    if (c.id && !containers.has(`${runtime ?? ''}/${c.id}`)) {
      containers.set(`${runtime ?? ''}/${c.id}`, {
        id: c.id,
        ...(runtime ? { runtime } : {}),
        ...(c.image_ref ? { imageRef: c.image_ref } : {}),
        ...(c.k8s ? { k8s: c.k8s as Record<string, string> } : {}),
      });
    }
    if (isRuntimeSetup(rec, c.id)) {
      setupRecords++;
      if (rec.type === 'file_open') addFile(setup, rec);
      else if (rec.type === 'process_exec') addExec(setup, rec);
      continue;
    }
    records++;
    switch (rec.type) {
      case 'file_open':
        addFile(own, rec);
        break;
      case 'process_exec':
        addExec(own, rec);
        break;
      case 'net_connect':
      case 'net_accept': {
        const address =
          rec.family === 'unix'
            ? `unix:${rec.unix_abstract ? '@' : ''}${rec.unix_path ? show(rec.unix_path) : ''}`
            : rec.addr !== undefined
              ? `${rec.family === 'inet6' ? `[${rec.addr}]` : rec.addr}:${rec.port}`
              : rec.family;
        const kind = rec.type === 'net_connect' ? 'connect' : 'accept';
        bump(endpoints, `${kind} ${address}`, () => ({ kind, address, count: 0 }));
        break;
      }
      case 'tcp_state': {
        if (rec.event !== 'established' && rec.event !== 'accepted' && rec.event !== 'refused') break;
        const address = `${rec.family === 'inet6' ? `[${rec.daddr}]` : rec.daddr}:${rec.dport}`;
        const kind = `tcp ${rec.event}`;
        bump(endpoints, `${kind} ${address}`, () => ({ kind, address, count: 0 }));
        break;
      }
      case 'tls_handshake':
      case 'tls_io':
        if (rec.sni) snis.set(rec.sni, (snis.get(rec.sni) ?? 0) + 1);
        break;
      default:
        break;
    }
  }
  if (q.kind === 'prefix' && prefixHits.size > 1) throw ambiguousPrefix(q.text, prefixHits, seen);

  // Containers a manifest digest could not match: their runtime gave none.
  const matchedKeys = new Set(containers.keys());
  const configs = new Set([...identities.values()].flatMap((i) => (i.configDigest ? [i.configDigest] : [])));
  const refs = new Set(
    [...identities.values()].flatMap((i) => {
      const r = i.imageRef !== undefined ? parseImageRef(i.imageRef) : undefined;
      return r ? [formatImageRef({ name: r.name, ...(r.tag ? { tag: r.tag } : {}) })] : [];
    }),
  );
  const linked: ImageSummary['withoutManifestDigest'] = [];
  const others = new Set<string>();
  let othersCount = 0;
  if (q.kind !== 'ref' && !matched.has('config')) {
    for (const [key, e] of seen) {
      if (matchedKeys.has(key) || e.manifestDigest !== undefined) continue;
      const r = e.imageRef !== undefined ? parseImageRef(e.imageRef) : undefined;
      const sameRef =
        r !== undefined && refs.has(formatImageRef({ name: r.name, ...(r.tag ? { tag: r.tag } : {}) }));
      if ((e.configDigest !== undefined && configs.has(e.configDigest)) || sameRef) {
        linked.push({
          id: e.id,
          ...(e.runtime ? { runtime: e.runtime } : {}),
          ...(e.imageRef ? { imageRef: e.imageRef } : {}),
          ...(e.configDigest ? { configDigest: e.configDigest } : {}),
          records: e.records,
        });
      } else if (e.configDigest !== undefined || e.imageRef !== undefined) {
        // Only those a config digest or a reference can name: the others cannot be queried at all.
        othersCount++;
        others.add(e.runtime ?? 'unknown runtime');
      }
    }
  }
  const resolved = q.kind === 'digest' ? q.digest : q.kind === 'prefix' ? [...prefixHits][0] : undefined;
  return {
    query: q.text,
    ...(resolved !== undefined ? { digest: resolved } : {}),
    ...(q.kind === 'ref' ? { imageRef: formatImageRef(q.ref) } : {}),
    matchedAs: [...matched],
    images: byKey(identities),
    containers: byKey(containers),
    withoutManifestDigest: linked.sort((a, b) => (a.id < b.id ? -1 : 1)),
    othersWithoutManifestDigest: { containers: othersCount, runtimes: [...others].sort() },
    window: { first: iso(first), last: iso(last) },
    files: byKey(own.files),
    executables: byKey(own.execs),
    endpoints: byKey(endpoints),
    tlsServerNames: [...snis.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([sni, count]) => ({ sni, count })),
    records,
    runtimeSetup: { records: setupRecords, files: byKey(setup.files), executables: byKey(setup.execs) },
    completeness: status.completeness(report),
  };
}

function ambiguousPrefix(text: string, hits: Set<string>, seen: Map<string, Catalogued>): CliError {
  const describe = (d: string) => {
    for (const e of seen.values()) {
      const as = e.manifestDigest === d ? 'manifest' : e.configDigest === d ? 'config' : undefined;
      if (as) return `${d} (${as} digest${e.imageRef ? ` of ${e.imageRef}` : ''})`;
    }
    return d;
  };
  const all = [...hits].sort();
  return new CliError(
    'USAGE',
    `inspect: digest prefix '${text}' is ambiguous: it matches ${all.length} digests in this evidence: ${all.map(describe).join(', ')}`,
    {
      hint: 'give more digits of the digest you mean (or the whole digest); --list-images lists every image',
    },
  );
}

/** Read the verified chunks of `dir` and list every image their records name. */
export async function listImages(dir: string, report: ChainReport): Promise<ImageList> {
  const seen = new Map<string, Catalogued>();
  const status = new StatusTally();
  let unidentified = 0;
  for await (const rec of verifiedRecords(dir, report)) {
    if (rec.type === 'collector_status') {
      status.add(rec);
      continue;
    }
    const c = rec.container;
    if (!c) continue;
    if (!c.id || !(c.image_ref || c.image_manifest_digest || c.image_config_digest)) unidentified++;
    catalogue(seen, c, BigInt(rec.wall_ns));
  }
  const images = new Map<
    string,
    ImageIdentity & {
      runtimes: Set<string>;
      containers: number;
      records: number;
      first: bigint;
      last: bigint;
    }
  >();
  for (const e of seen.values()) {
    if (!(e.imageRef || e.manifestDigest || e.configDigest)) continue;
    const identity: ImageIdentity = {
      ...(e.imageRef ? { imageRef: e.imageRef } : {}),
      ...(e.manifestDigest ? { manifestDigest: e.manifestDigest } : {}),
      ...(e.configDigest ? { configDigest: e.configDigest } : {}),
    };
    const key = identityKey(identity);
    const i = images.get(key) ?? {
      ...identity,
      runtimes: new Set(),
      containers: 0,
      records: 0,
      first: e.first,
      last: e.last,
    };
    if (e.runtime) i.runtimes.add(e.runtime);
    i.containers++;
    i.records += e.records;
    if (e.first < i.first) i.first = e.first;
    if (e.last > i.last) i.last = e.last;
    images.set(key, i);
  }
  return {
    images: byKey(images).map(({ runtimes, first, last, ...i }) => ({
      ...i,
      ...(i.manifestDigest === undefined ? { noManifestDigest: noManifestReason([...runtimes][0]) } : {}),
      runtimes: [...runtimes].sort(),
      window: { first: iso(first), last: iso(last) },
    })),
    unidentified,
    completeness: status.completeness(report),
  };
}

/** Hash ids (Docker, CRI) read best shortened; names (ctr, podman) stay whole. */
function shortId(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

function formatFiles(out: string[], files: FileSeen[], indent: string): void {
  for (const f of files) {
    out.push(
      `${indent}${f.path}${f.openedAs ? `  (opened as ${f.openedAs})` : ''}  opens ${f.opens}${f.failed ? `, failed ${f.failed}` : ''}`,
    );
  }
}

/** `filename (runs /bin/busybox sha256:…)  [argv]`. */
function formatExec(e: ExecSeen): string {
  const runs = [e.exePath, e.exeDigest].filter((x) => x !== undefined).join(' ');
  return `${e.filename}${runs ? ` (runs ${runs})` : ''}  [${e.argv.join(' ')}]`;
}

/** The human-readable form of a summary, as `stella signals inspect` prints it. */
export function formatSummary(s: ImageSummary): string {
  const what = s.digest ?? s.imageRef ?? s.query;
  const as = s.matchedAs.map((m) => (m === 'ref' ? 'reference' : `${m} digest`)).join(' and ');
  const out = [`image ${what} (matched as ${as}), ${s.records} records`];
  for (const i of s.images) {
    out.push(
      `  ${i.imageRef ?? '(no reference)'}  manifest ${i.manifestDigest ?? 'none'}  config ${i.configDigest ?? 'none'}`,
    );
  }
  for (const c of s.containers) {
    out.push(`  container ${shortId(c.id)} ${c.runtime ?? ''} ${c.imageRef ?? ''}`.trimEnd());
  }
  if (s.withoutManifestDigest.length) {
    out.push('also ran without a manifest digest (not matched, not counted above):');
    for (const c of s.withoutManifestDigest) {
      const by = [
        ...(c.configDigest ? [`config digest ${c.configDigest}`] : []),
        ...(c.imageRef ? [`image ref ${c.imageRef}`] : []),
      ].join(' or ');
      out.push(
        `  container ${shortId(c.id)} ${c.runtime ?? ''}: ${noManifestReason(c.runtime)}; ${c.records} records; query by ${by}`,
      );
    }
  }
  const others = s.othersWithoutManifestDigest;
  if (others.containers) {
    out.push(
      `${others.containers} other container${others.containers === 1 ? '' : 's'} (${others.runtimes.join(', ')}) have no manifest digest, so a manifest digest cannot match them: stella signals inspect --list-images shows their config digests and references`,
    );
  }
  out.push(`window ${s.window.first} .. ${s.window.last}`);
  const folded = Object.entries(s.completeness.deduplicated);
  if (folded.length) {
    out.push(
      `counts are of deduplicated facts, not events: the in-kernel dedup folded repeats (${folded.map(([k, n]) => `${k} ${n}`).join(', ')}); xN counts how often a fact was recorded`,
    );
  }
  out.push('');
  out.push(`files opened (${s.files.length}):`);
  formatFiles(out, s.files, '  ');
  out.push(`binaries executed (${s.executables.length}):`);
  for (const e of s.executables) out.push(`  ${formatExec(e)} x${e.count}`);
  out.push(`network endpoints (${s.endpoints.length}):`);
  for (const e of s.endpoints) out.push(`  ${e.kind} ${e.address} x${e.count}`);
  out.push(`TLS server names (${s.tlsServerNames.length}):`);
  for (const t of s.tlsServerNames) out.push(`  ${t.sni} x${t.count}`);
  const rs = s.runtimeSetup;
  if (rs.records) {
    out.push(
      `outside the container root: the runtime setting the container up (runc init, before the entrypoint), ${rs.records} records, host paths or the runtime's own reads, not the image's behaviour${folded.length ? '; with dedup on, a later open of the same path by the image is folded into these' : ''}:`,
    );
    formatFiles(out, rs.files, '  ');
    for (const e of rs.executables) out.push(`  exec ${formatExec(e)} x${e.count}`);
  }
  formatCompleteness(out, s.completeness);
  return `${out.join('\n')}\n`;
}

function formatCompleteness(out: string[], c: Completeness): void {
  out.push('', 'completeness:');
  out.push(
    `  chain: ${c.chunksVerified} chunks verified${c.chunksFailed.length ? `, FAILED (not read): ${c.chunksFailed.join(', ')}` : ''}${c.chunksUnsealed.length ? `, unsealed (not read, not signed yet): ${c.chunksUnsealed.join(', ')}` : ''}, ${c.chainClosed ? 'closed' : 'open (collector running, or its end is missing)'}`,
  );
  out.push(
    c.probesNotAttached.length
      ? `  probes not attached: ${c.probesNotAttached.map((p) => `${p.name}${p.reason ? ` (${p.reason})` : ''}`).join('; ')}`
      : '  every probe attached',
  );
  const lost = Object.entries(c.lost);
  // Failed and unsealed chunks were not read: what they lost is not known.
  const unread = c.chunksFailed.length + c.chunksUnsealed.length;
  const unknown = unread ? `; unknown for the ${unread} chunk${unread === 1 ? '' : 's'} not read` : '';
  out.push(
    lost.length
      ? `  LOST records: ${lost.map(([k, n]) => `${k} ${n}`).join(', ')}${unknown}`
      : unread
        ? `  no records lost in the chunks read${unknown}`
        : '  no records lost',
  );
  if (c.unbalanced.length) {
    out.push(
      `  COUNTS DO NOT ADD UP (seen != filtered + deduplicated + emitted + lost + in_flight): ${c.unbalanced.join(', ')}`,
    );
  }
}

/** The human-readable form of an image list, as `stella signals inspect --list-images` prints it. */
export function formatImageList(l: ImageList, dir: string): string {
  const out = [`images in ${dir} (${l.images.length}):`];
  for (const i of l.images) {
    out.push(`  ${i.imageRef ?? '(no reference)'}`);
    out.push(
      `    manifest ${i.manifestDigest ?? `none: ${i.noManifestDigest}; inspect it by config digest or reference`}`,
    );
    out.push(`    config   ${i.configDigest ?? 'none'}`);
    out.push(
      `    ${i.containers} container${i.containers === 1 ? '' : 's'} (${i.runtimes.join(', ') || 'runtime unknown'}), ${i.records} records, ${i.window.first} .. ${i.window.last}`,
    );
  }
  if (l.unidentified) {
    out.push(`container records with no image named (attribution unknown or incomplete): ${l.unidentified}`);
  }
  formatCompleteness(out, l.completeness);
  return `${out.join('\n')}\n`;
}

/** `stella signals inspect IMAGE` and `stella signals inspect --list-images`. */
export async function inspectCommand(p: Parsed, io: Io): Promise<number> {
  const image = p.positionals.image;
  const list = p.values['list-images'] === true;
  if (list === (image !== undefined)) {
    throw new CliError(
      'USAGE',
      list
        ? 'stella signals inspect: give an IMAGE or --list-images, not both'
        : 'stella signals inspect: missing IMAGE',
      { hint: `usage: ${inspectSpec.usage}` },
    );
  }
  // Parsed before anything is read: a bad argument is a usage error, whatever the directory holds.
  const query = image !== undefined ? parseImageQuery(image) : undefined;
  const cfg = loadConfig({ ...configFileInputs(p, io), env: io.env, flags: configFlags(p) });
  const dir = cfg.get<string>('output_directory');
  if (!existsSync(dir))
    throw new CliError('TARGET', `evidence directory ${dir} does not exist`, { hint: 'pass --target DIR' });
  const report = await verifyChain(dir, { keys: trustedKeys(p, cfg), requireEnd: false });
  const failed = failedChunks(report);
  // A chunk that fails verification is left out, and the output is then not
  // the whole evidence: say so and exit non-zero.
  const failedError = () =>
    new CliError(
      'VERIFY_FAILED',
      `${failed.length} chunk${failed.length > 1 ? 's' : ''} of ${dir} failed verification and ${failed.length > 1 ? 'were' : 'was'} not read: ${failed.join('; ')}`,
      { hint: `run 'stella signals verify-chain ${dir} --key PUBLIC.pem' for every failed check` },
    );
  if (!query) {
    const images = await listImages(dir, report);
    io.out(p.values.json ? `${JSON.stringify(images, null, 2)}\n` : formatImageList(images, dir));
    if (failed.length > 0) throw failedError();
    return EXIT.OK;
  }
  const summary = await summarise(dir, query, report);
  if (summary.records === 0 && summary.runtimeSetup.records === 0 && failed.length === 0) {
    if (p.values.json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
    throw new CliError('NO_EVIDENCE', `no verified evidence in ${dir} for image ${query.text}`, {
      hint: noEvidenceHint(summary, query),
    });
  }
  io.out(p.values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
  if (failed.length > 0) throw failedError();
  return EXIT.OK;
}

function noEvidenceHint(s: ImageSummary, q: ImageQuery): string {
  const n = s.othersWithoutManifestDigest.containers;
  const base = `${s.completeness.chunksVerified} chunks verified; stella signals inspect --list-images lists the images the evidence saw`;
  if (q.kind !== 'ref' && n > 0) {
    return `${n} container${n === 1 ? '' : 's'} (${s.othersWithoutManifestDigest.runtimes.join(', ')}) in it have no manifest digest and cannot match one: query them by config digest or image reference; ${base}`;
  }
  return q.kind === 'ref'
    ? `${base}; a reference without a tag means :latest`
    : `${base}; a digest matches the image's manifest or config digest`;
}
