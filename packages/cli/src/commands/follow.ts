import { bytesFromField, type EvidenceRecord, RECORD_TYPES, type RecordType } from '@stellaops/ndjson';
import { type Collection, type CollectOptions, type CollectProbe, collect } from '@stellaops/signals';
import { type CommandSpec, type Parsed, parseDuration } from '../args.js';
import { loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { configFileInputs, configFlags, requireTracing } from './shared.js';
import { collectOptions } from './start.js';

export const followSpec: CommandSpec = {
  name: 'follow',
  summary:
    'Print records live as they happen (canonical NDJSON, or one readable line each on a terminal). Never signs, never writes evidence.',
  usage:
    'stella signals follow [--type TYPE]... [--container ID]... [--image sha256:DIGEST]... [--path PREFIX]... [--format ndjson|text]',
  options: {
    type: {
      type: 'string',
      multiple: true,
      value: 'TYPE',
      help: `keep only this record type (${RECORD_TYPES.join(', ')})`,
    },
    container: {
      type: 'string',
      multiple: true,
      value: 'ID',
      help: 'keep only records of this container (its id, or a unique prefix of it)',
    },
    image: {
      type: 'string',
      multiple: true,
      value: 'DIGEST',
      help: 'keep only records of containers of this image (sha256: manifest or config digest, or a prefix of one)',
    },
    path: {
      type: 'string',
      multiple: true,
      value: 'PREFIX',
      help: 'keep only file opens and execs whose path starts with PREFIX (host or container path)',
    },
    format: {
      type: 'string',
      value: 'FORMAT',
      help: 'ndjson (canonical, one record a line) or text (readable); default text on a terminal, else ndjson',
    },
    config: {
      type: 'string',
      short: 'c',
      value: 'FILE',
      help: 'stellaops.yaml for probes and filters (else $STELLA_CONFIG, else /etc/stellaops/stellaops.yaml)',
    },
    set: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'override one config key' },
    duration: { type: 'string', value: 'TIME', help: 'stop by itself after this long (30s, 5m, 1h)' },
  },
  positionals: [],
  examples: [
    'stella signals follow',
    'stella signals follow --type file_open --path /etc/ --format ndjson | jq .path',
    'stella signals follow --container 3f1c2a --type process_exec',
    'stella signals follow --image sha256:3f1c...e9 --type net_connect --type tls_handshake',
  ],
  exitCodes: [
    '0  stopped by SIGINT/SIGTERM, --duration, or the reader of stdout going away (| head -1)',
    '2  bad flags or configuration',
    '3  missing privileges or kernel features (the message says which and how to fix)',
    '130  a third signal while stopping: exited at once',
    'follow never signs and writes no evidence: for signed evidence run `stella signals start`.',
  ],
};

/** The probe group that produces each record type (collector_status comes from every group). */
const PROBE_OF: Record<RecordType, CollectProbe | undefined> = {
  file_open: 'file_open',
  process_exec: 'exec',
  process_exit: 'exec',
  tcp_state: 'tcp_state',
  net_connect: 'libc_net',
  net_accept: 'libc_net',
  tls_io: 'tls',
  tls_handshake: 'tls',
  collector_status: undefined,
};

/** What `follow` keeps, from its flags; every list empty means everything. */
export interface FollowFilter {
  types: Set<RecordType>;
  containers: string[];
  images: string[];
  paths: string[];
}

const DIGEST_PREFIX = /^sha256:[0-9a-f]{4,64}$/;
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function list(v: Parsed['values'][string]): string[] {
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** The closest of `names` to `word` (by edit distance), if it is close enough to be a typo. */
function closest(word: string, names: readonly string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0]!;
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const cur = d[j]!;
        d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return d[b.length]!;
  };
  const best = [...names].sort((x, y) => dist(word, x) - dist(word, y))[0];
  return best !== undefined && dist(word, best) <= Math.max(2, Math.floor(word.length / 3))
    ? best
    : undefined;
}

/**
 * Check follow's filter flags and return the filter, or throw a
 * CliError('USAGE') that names the flag, the bad value and the fix.
 */
export function parseFollowFilter(p: Parsed): FollowFilter {
  const types = new Set<RecordType>();
  for (const t of list(p.values.type)) {
    if (!(RECORD_TYPES as readonly string[]).includes(t)) {
      const near = closest(t, RECORD_TYPES);
      throw new CliError(
        'USAGE',
        `--type '${t}' is not a record type${near ? ` (did you mean '${near}'?)` : ''}`,
        {
          hint: `record types: ${RECORD_TYPES.join(', ')}`,
        },
      );
    }
    types.add(t as RecordType);
  }
  const containers = list(p.values.container);
  for (const c of containers) {
    if (!CONTAINER_ID.test(c)) {
      throw new CliError('USAGE', `--container '${c}' is not a container id`, {
        hint: 'give the id as the runtime shows it (docker ps --no-trunc, ctr containers ls, crictl ps), or a prefix of it',
      });
    }
  }
  const images = list(p.values.image).map((d) => d.toLowerCase());
  for (const d of images) {
    if (!DIGEST_PREFIX.test(d)) {
      throw new CliError('USAGE', `--image '${d}' is not an image digest`, {
        hint: 'give sha256: and at least 4 hex digits of the manifest or config digest (docker images --digests, ctr images ls)',
      });
    }
  }
  const paths = list(p.values.path);
  for (const x of paths) {
    if (!x.startsWith('/')) {
      throw new CliError('USAGE', `--path '${x}' is not an absolute path prefix`, {
        hint: `paths in records are absolute: e.g. --path /etc/ or --path ${x.startsWith('./') || x === '.' ? process.cwd() : `/${x}`}`,
      });
    }
  }
  return { types, containers, images, paths };
}

/** Paths of a record that `--path` matches: the host path and the path inside the container. */
function pathsOf(r: EvidenceRecord): Buffer[] {
  const out: Buffer[] = [];
  const add = (f: unknown) => {
    if (f !== undefined) out.push(bytesFromField(f as never));
  };
  if (r.type === 'file_open') {
    add(r.path);
    add(r.container_path);
  } else if (r.type === 'process_exec') {
    add(r.filename);
    add(r.container_path);
  }
  return out;
}

/** Whether `follow` prints `r`. */
export function followKeeps(f: FollowFilter, r: EvidenceRecord): boolean {
  if (f.types.size > 0 && !f.types.has(r.type)) return false;
  if (f.containers.length > 0 || f.images.length > 0) {
    const c = r.type === 'collector_status' ? undefined : r.container;
    if (f.containers.length > 0 && !f.containers.some((id) => c?.id?.startsWith(id))) return false;
    if (
      f.images.length > 0 &&
      !f.images.some(
        (d) =>
          c?.image_manifest_digest?.startsWith(d) === true || c?.image_config_digest?.startsWith(d) === true,
      )
    )
      return false;
  }
  if (f.paths.length > 0) {
    const have = pathsOf(r);
    if (
      !f.paths.some((prefix) =>
        have.some((b) => b.subarray(0, Buffer.byteLength(prefix)).equals(Buffer.from(prefix))),
      )
    )
      return false;
  }
  return true;
}

/** A byte-string field as text, or `<b64:...>` when it is not UTF-8. */
function show(field: unknown): string {
  const b = bytesFromField(field as never);
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `<b64:${b.toString('base64')}>`;
}

function endpoint(addr: string | undefined, port: number | undefined): string {
  if (addr === undefined) return '?';
  return addr.includes(':') ? `[${addr}]:${port ?? '?'}` : `${addr}:${port ?? '?'}`;
}

/** One readable line for a terminal: time, type, process, container, what happened. */
export function textLine(r: EvidenceRecord): string {
  const time = new Date(Number(BigInt(r.wall_ns) / 1_000_000n)).toISOString().slice(11, 23);
  if (r.type === 'collector_status') {
    const lost = r.probes.reduce((n, p) => n + BigInt(p.lost), 0n);
    const emitted = r.probes.reduce((n, p) => n + BigInt(p.emitted), 0n);
    return `${time} collector_status${r.final ? ' (final)' : ''} emitted ${emitted} lost ${lost} probes ${r.probes.filter((p) => p.attached).length}/${r.probes.length} attached`;
  }
  const who = `${show(r.comm)}[${r.pid}]`;
  const c = r.container;
  const where = c?.id
    ? ` ${c.id.slice(0, 12)}${c.image_ref ? `(${c.image_ref})` : ''}`
    : c
      ? ' container?'
      : ' host';
  let what: string;
  switch (r.type) {
    case 'file_open':
      what = `${show(r.path)}${r.ret < 0 ? ` = ${r.ret}` : ''}`;
      break;
    case 'process_exec':
      what = `${show(r.filename)} ${r.argv.map(show).join(' ')}`.trimEnd();
      break;
    case 'process_exit':
      what = r.signal ? `killed by signal ${r.signal}` : `exit ${r.exit_code}`;
      break;
    case 'tcp_state':
      what = `${endpoint(r.saddr, r.sport)} -> ${endpoint(r.daddr, r.dport)} ${r.event}`;
      break;
    case 'net_connect':
    case 'net_accept':
      what = `${r.syscall} ${r.family === 'unix' ? (r.unix_path === undefined ? 'unix' : show(r.unix_path)) : endpoint(r.addr, r.port)}${r.ret < 0 ? ` = ${r.ret}${r.errno ? ` errno ${r.errno}` : ''}` : ''}`;
      break;
    case 'tls_io':
      what = `${r.function} ${r.returned}/${r.requested} bytes${r.sni ? ` sni ${r.sni}` : ''}`;
      break;
    case 'tls_handshake':
      what = `${r.function} ${r.result}${r.sni ? ` sni ${r.sni}` : ''}`;
      break;
  }
  return `${time} ${r.type.padEnd(13)} ${who}${where} ${what}`;
}

/** The collect() options for follow: the config's, narrowed to the probes the types need. */
function followCollectOptions(base: CollectOptions, f: FollowFilter): CollectOptions {
  const opts: CollectOptions = { ...base, probes: { ...base.probes } };
  if (f.types.size > 0 && ![...f.types].every((t) => t === 'collector_status')) {
    const needed = new Set([...f.types].map((t) => PROBE_OF[t]).filter((x) => x !== undefined));
    for (const name of Object.keys(opts.probes ?? {}) as CollectProbe[]) {
      if (!needed.has(name)) opts.probes![name] = false;
    }
  }
  if (f.containers.length > 0) opts.filters = { ...base.filters, targetContainers: f.containers };
  return opts;
}

/**
 * `stella signals follow`: collect() with the config's probes and filters,
 * print the records that pass the flags' filters as they come, until a
 * signal, --duration or a closed stdout. Nothing is signed or written.
 */
export async function followCommand(p: Parsed, io: Io): Promise<number> {
  const filter = parseFollowFilter(p);
  const format = p.values.format ?? (io.isTTY ? 'text' : 'ndjson');
  if (format !== 'ndjson' && format !== 'text') {
    throw new CliError('USAGE', `--format '${String(format)}': expected ndjson or text`, {
      hint: 'ndjson prints the canonical records (for jq and files), text one readable line each',
    });
  }
  const durationMs =
    typeof p.values.duration === 'string' ? parseDuration('--duration', p.values.duration) : undefined;
  const cfg = loadConfig({ ...configFileInputs(p, io), env: io.env, flags: configFlags(p) });
  requireTracing(cfg.get<string>('btf_custom_path') || undefined);

  let signals = 0;
  let stdoutGone = false;
  let collection: Collection | undefined;
  const onSignal = () => {
    signals++;
    if (signals === 1) void collection?.close().catch(() => undefined);
    else if (signals === 2) {
      io.err(
        'stella: second signal: stopping without waiting for the rings to drain; a third exits at once\n',
      );
      void collection?.close({ fast: true }).catch(() => undefined);
    } else process.exit(130);
  };
  // `| head -1`: the reader went away. Stop quietly; there is nobody to tell.
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') io.err(`stella: stdout: ${e.message}\n`);
    stdoutGone = true;
    void collection?.close({ fast: true }).catch(() => undefined);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onStdoutError);
  let timer: NodeJS.Timeout | undefined;
  try {
    collection = collect(followCollectOptions(collectOptions(cfg), filter));
    await collection.ready;
    // A signal while the probes were loading: stop as soon as they are attached.
    if (signals > 0) void collection.close({ fast: true }).catch(() => undefined);
    const shown = [
      filter.types.size > 0 ? `type ${[...filter.types].join(',')}` : '',
      filter.containers.length > 0 ? `container ${filter.containers.join(',')}` : '',
      filter.images.length > 0 ? `image ${filter.images.join(',')}` : '',
      filter.paths.length > 0 ? `path ${filter.paths.join(',')}` : '',
    ].filter(Boolean);
    io.err(
      `stella: following live records${shown.length ? ` (${shown.join('; ')})` : ''}; NOT signed and not written to disk (for signed evidence run 'stella signals start'); Ctrl-C stops\n`,
    );
    if (durationMs !== undefined) {
      timer = setTimeout(() => void collection?.close().catch(() => undefined), durationMs);
    }
    for await (const rec of collection) {
      if (stdoutGone) continue;
      if (!followKeeps(filter, rec)) continue;
      io.out(
        format === 'ndjson' ? `${collection.lineOf(rec) ?? JSON.stringify(rec)}\n` : `${textLine(rec)}\n`,
      );
    }
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Keep swallowing EPIPE for writes still queued.
    if (!stdoutGone) process.stdout.off('error', onStdoutError);
    await collection?.close().catch(() => undefined);
  }
  return EXIT.OK;
}
