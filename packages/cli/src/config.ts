import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { CliError } from './errors.js';

/** Where a configuration value came from, in precedence order (last wins). */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

type FieldType =
  | { kind: 'boolean' }
  | { kind: 'string'; oneOf?: readonly string[]; socketOrOff?: true }
  | { kind: 'number'; min: number; max: number; integer: boolean; powerOfTwo?: boolean }
  | { kind: 'string[]' };

interface FieldSpec {
  /** Dotted key under the top-level `signals:` map. */
  key: string;
  type: FieldType;
  default: ConfigValue;
  doc: string;
}

export type ConfigValue = boolean | string | number | string[];

const bool = { kind: 'boolean' } as const;
const str = { kind: 'string' } as const;
const list = { kind: 'string[]' } as const;
const int = (min: number, max: number) => ({ kind: 'number', min, max, integer: true }) as const;

/**
 * The container runtimes the collector asks for attribution, as config keys
 * (`runtimes.<name>.socket`) and records spell them, with their default API
 * sockets (the same as `@stellaops/enrich`'s `*_SOCKET` constants).
 */
export const RUNTIME_SOCKETS = [
  { runtime: 'containerd', socket: '/run/containerd/containerd.sock', api: 'containerd gRPC API' },
  { runtime: 'docker', socket: '/var/run/docker.sock', api: 'Docker Engine API' },
  { runtime: 'podman', socket: '/run/podman/podman.sock', api: 'podman libpod API' },
  { runtime: 'cri-o', socket: '/var/run/crio/crio.sock', api: 'CRI-O inspect API' },
] as const;

const RUNTIME_SOCKET_FIELDS: readonly FieldSpec[] = RUNTIME_SOCKETS.map(({ runtime, socket, api }) => ({
  key: `runtimes.${runtime}.socket`,
  type: { kind: 'string', socketOrOff: true },
  default: socket,
  doc: `${api} socket. Left at its default it is used when it exists; set, it must be a socket (start exits 2 otherwise); "off" never asks ${runtime}.`,
}));

/**
 * The configuration schema: every key of `stellaops.yaml`, its type, default
 * and meaning. Validation, environment names (`STELLA_<KEY>`), the effective
 * config printout and docs all come from this one table.
 */
export const CONFIG_FIELDS: readonly FieldSpec[] = [
  { key: 'enabled', type: bool, default: true, doc: 'Master switch: start refuses to run when false.' },
  {
    key: 'output_directory',
    type: str,
    default: '/var/lib/stellaops/evidence',
    doc: 'Where chunks, bundles and the status socket live (--target).',
  },
  { key: 'rotation.max_size_mb', type: int(1, 1_048_576), default: 100, doc: 'Seal a chunk at this size.' },
  {
    key: 'rotation.max_age_hours',
    type: { kind: 'number', min: 0.001, max: 8760, integer: false },
    default: 1,
    doc: 'Seal a chunk at this age (fractions allowed).',
  },
  {
    key: 'rotation.fsync',
    type: { kind: 'string', oneOf: ['seal', 'interval', 'always'] },
    default: 'seal',
    doc: 'When chunk data is fsynced: at seal only, also every second, or after every record.',
  },
  { key: 'signing.enabled', type: bool, default: true, doc: 'Sign every sealed chunk (DSSE).' },
  {
    key: 'signing.key_id',
    type: str,
    default: 'local',
    doc: '"local" (PEM key at signing.key_path) or "fulcio" (keyless, needs SIGSTORE_ID_TOKEN); KMS keys: embed @stellaops/signals with an ExternalKeySigner.',
  },
  {
    key: 'signing.key_path',
    type: str,
    default: '/etc/stellaops/signals-key.pem',
    doc: 'ECDSA P-256 private key (PEM) for key_id "local"; make one with `stella signals keygen`.',
  },
  {
    key: 'signing.submit_to_rekor',
    type: bool,
    default: false,
    doc: 'Also log each sealed statement to Rekor (after sealing; retried from a spool).',
  },
  { key: 'signing.rekor_url', type: str, default: 'https://rekor.sigstore.dev', doc: 'Rekor base URL.' },
  {
    key: 'filters.target_containers',
    type: list,
    default: [],
    doc: 'Container ids (or unique prefixes) to trace; empty = every container and the host.',
  },
  {
    key: 'filters.path_allowlist',
    type: list,
    default: [],
    doc: 'Globs of paths to record (empty = all). `/dir/**` becomes an in-kernel prefix.',
  },
  { key: 'filters.path_denylist', type: list, default: [], doc: 'Globs of paths never to record.' },
  { key: 'probes.file_open', type: bool, default: true, doc: 'open/openat/openat2/creat.' },
  { key: 'probes.exec', type: bool, default: true, doc: 'execve/execveat and process exit.' },
  { key: 'probes.tcp_state', type: bool, default: true, doc: 'inet_sock_set_state transitions.' },
  {
    key: 'probes.libc_net',
    type: bool,
    default: true,
    doc: 'connect/accept/accept4 calls with their addresses (net_connect, net_accept).',
  },
  { key: 'probes.tls', type: bool, default: true, doc: 'OpenSSL SSL_read/SSL_write/handshake uprobes.' },
  {
    key: 'probes.socket_source',
    type: { kind: 'string', oneOf: ['syscall', 'libc'] },
    default: 'syscall',
    doc: 'connect/accept from the syscalls (all programs, cheapest) or libc uprobes (stacks start at the caller).',
  },
  {
    key: 'stacks.libc_net',
    type: bool,
    default: true,
    doc: 'User stack (verified code frames) on net_connect/net_accept: which code opened the connection.',
  },
  {
    key: 'stacks.tls',
    type: bool,
    default: false,
    doc: 'User stack on tls_io/tls_handshake records: one more unwind per TLS record (docs/probe-reference.md).',
  },
  {
    key: 'dedup.enabled',
    type: bool,
    default: true,
    doc: 'Report each fact once per cgroup (in-kernel LRU).',
  },
  { key: 'dedup.max_entries', type: int(1024, 16_777_216), default: 65_536, doc: 'Dedup LRU size.' },
  {
    key: 'ring_buffer.size_mb',
    type: { kind: 'number', min: 1, max: 1024, integer: true, powerOfTwo: true },
    default: 8,
    doc: 'Kernel ring buffer size per object (power of two).',
  },
  {
    key: 'ring_buffer.drain_latency_ms',
    type: int(1, 1000),
    default: 10,
    doc: 'How often the ring is drained; lower = fresher, more wakeups.',
  },
  ...RUNTIME_SOCKET_FIELDS,
  {
    key: 'btf_custom_path',
    type: str,
    default: '',
    doc: "Kernel BTF file for kernels without /sys/kernel/btf/vmlinux (from BTFHub, or pahole --btf_encode_detached); empty = the kernel's own.",
  },
  {
    key: 'status_interval_seconds',
    type: int(1, 86_400),
    default: 60,
    doc: 'How often a collector_status record is written.',
  },
];

const FIELD_BY_KEY = new Map(CONFIG_FIELDS.map((f) => [f.key, f]));

/**
 * The environment variable for a key: `rotation.max_size_mb` →
 * `STELLA_ROTATION_MAX_SIZE_MB`, `runtimes.cri-o.socket` → `STELLA_RUNTIMES_CRI_O_SOCKET`.
 */
export function envName(key: string): string {
  return `STELLA_${key.replace(/[.-]/g, '_').toUpperCase()}`;
}

/** One resolved setting and where it came from. */
export interface EffectiveSetting {
  key: string;
  value: ConfigValue;
  source: ConfigSource;
  /** File path, `ENV_NAME`, or `--flag` that set it. */
  origin?: string;
}

/**
 * The stellaops.yaml location read when neither `--config` nor `STELLA_CONFIG`
 * names one (the spec's place for it). A missing file here means defaults.
 */
export const DEFAULT_CONFIG_PATH = '/etc/stellaops/stellaops.yaml';

/** The configuration file a run read, and what named it. */
export interface ConfigFileRead {
  path: string;
  /** `--config`, `STELLA_CONFIG` or `default location`. */
  via: string;
}

/** The merged configuration, keyed by dotted name. */
export class EffectiveConfig {
  /**
   * @param settings every key with its value and source.
   * @param file the stellaops.yaml that was read; undefined when none was (defaults).
   */
  constructor(
    readonly settings: ReadonlyMap<string, EffectiveSetting>,
    readonly file?: ConfigFileRead,
  ) {}

  /** "PATH (via)" or "none: defaults", for `config --effective` and start's log. */
  describeFile(): string {
    return this.file ? `${this.file.path} (${this.file.via})` : 'none: defaults';
  }

  get<T extends ConfigValue>(key: string): T {
    const s = this.settings.get(key);
    if (!s) throw new Error(`unknown config key ${key}`);
    return s.value as T;
  }

  /** Nested `{ signals: { ... } }` object, as the file would hold it. */
  toObject(): Record<string, unknown> {
    const root: Record<string, unknown> = {};
    for (const { key, value } of this.settings.values()) {
      const parts = key.split('.');
      let cur = root;
      for (const p of parts.slice(0, -1)) {
        cur[p] ??= {};
        cur = cur[p] as Record<string, unknown>;
      }
      cur[parts[parts.length - 1]!] = value;
    }
    return { signals: root };
  }
}

function suggest(key: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(key, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 4))
    ? ` (did you mean '${best}'?)`
    : '';
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function describe(t: FieldType): string {
  switch (t.kind) {
    case 'boolean':
      return 'true or false';
    case 'string':
      if (t.socketOrOff) return 'an absolute socket path or "off"';
      return t.oneOf ? `one of ${t.oneOf.map((v) => `"${v}"`).join(', ')}` : 'a string';
    case 'string[]':
      return 'a list of strings';
    case 'number':
      return `${t.integer ? 'an integer' : 'a number'} from ${t.min} to ${t.max}${t.powerOfTwo ? ', a power of two' : ''}`;
  }
}

type Checked = { ok: true; value: ConfigValue } | { ok: false; message: string };

function checkValue(field: FieldSpec, raw: unknown): Checked {
  const t = field.type;
  const bad: Checked = { ok: false, message: `must be ${describe(t)}, got ${JSON.stringify(raw)}` };
  switch (t.kind) {
    case 'boolean':
      return typeof raw === 'boolean' ? { ok: true, value: raw } : bad;
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0) return bad;
      if (t.oneOf && !t.oneOf.includes(raw)) return bad;
      if (t.socketOrOff && raw !== 'off' && !raw.startsWith('/')) return bad;
      return { ok: true, value: raw };
    case 'string[]':
      if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string' && v.length > 0)) return bad;
      return { ok: true, value: raw as string[] };
    case 'number': {
      if (typeof raw !== 'number' || !Number.isFinite(raw)) return bad;
      if (t.integer && !Number.isInteger(raw)) return bad;
      if (raw < t.min || raw > t.max) return bad;
      if (t.powerOfTwo && (raw & (raw - 1)) !== 0) return bad;
      return { ok: true, value: raw };
    }
  }
}

/**
 * A number as configuration takes it: plain decimal (`16`, `0.5`, `-3`), no
 * hex, octal, binary, exponent, leading zeros, `+`, `.5`, `Infinity` or
 * surrounding spaces, so a value means the same to every reader of the file.
 */
const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** ", e.g. 100 (plain decimal)" for numeric keys: the form every number must take. */
function plainExample(field: FieldSpec): string {
  return field.type.kind === 'number' ? `, e.g. ${field.default} (plain decimal)` : '';
}

/** Parse a string from an env var or flag into the field's type. */
function fromString(field: FieldSpec, text: string): unknown {
  switch (field.type.kind) {
    case 'boolean':
      return text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : text;
    case 'number':
      return DECIMAL.test(text) ? Number(text) : text;
    case 'string[]':
      return text === ''
        ? []
        : text
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
    case 'string':
      return text;
  }
}

interface FileSetting {
  key: string;
  value: unknown;
  line: number;
  column: number;
  /** The scalar as written in the file (`0x10`, `1e3`), for numbers that must be decimal. */
  source?: string;
}

/** Flatten the YAML file's `signals:` map, keeping each value's position. */
function readFile(path: string, text: string): FileSetting[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const pos = (node: Node | null | undefined) => {
    const off = node?.range?.[0] ?? 0;
    const p = lineCounter.linePos(off);
    return { line: p.line || 1, column: p.col || 1 };
  };
  const first = doc.errors[0];
  if (first) {
    const p = lineCounter.linePos(first.pos[0]);
    throw new CliError(
      'CONFIG_INVALID',
      `${path}:${p.line}:${p.col}: not valid YAML: ${first.message.split('\n')[0]}`,
      {
        hint: 'fix the YAML syntax at that line',
      },
    );
  }
  const out: FileSetting[] = [];
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return out;
  if (!isMap(root)) {
    const p = pos(root as Node);
    throw new CliError(
      'CONFIG_INVALID',
      `${path}:${p.line}:${p.column}: the file must be a map with a 'signals:' key`,
    );
  }
  for (const pair of root.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '?';
    if (k !== 'signals') {
      const p = pos(pair.key as Node);
      throw new CliError(
        'CONFIG_INVALID',
        `${path}:${p.line}:${p.column}: unknown top-level key '${k}'${suggest(k, ['signals'])}`,
        { hint: 'every setting lives under `signals:`' },
      );
    }
    walk(pair.value as Node | null, '', path, pos, out);
  }
  return out;
}

function walk(
  node: Node | null,
  prefix: string,
  path: string,
  pos: (n: Node | null | undefined) => { line: number; column: number },
  out: FileSetting[],
): void {
  if (node === null || (isScalar(node) && node.value === null)) return;
  if (!isMap(node)) {
    const p = pos(node);
    throw new CliError('CONFIG_INVALID', `${path}:${p.line}:${p.column}: 'signals${prefix}' must be a map`);
  }
  for (const pair of node.items) {
    const keyNode = pair.key as Node;
    const k = isScalar(keyNode) ? String(keyNode.value) : '?';
    const full = prefix ? `${prefix.slice(1)}.${k}` : k;
    const p = pos(keyNode);
    const field = FIELD_BY_KEY.get(full);
    const value = pair.value as Node | null;
    if (field) {
      const v =
        value === null ? null : isSeq(value) || isMap(value) || isScalar(value) ? value.toJSON() : null;
      const vp = value ? pos(value) : p;
      const source = isScalar(value) && typeof value.source === 'string' ? value.source : undefined;
      out.push({ key: full, value: v, line: vp.line, column: vp.column, ...(source ? { source } : {}) });
      continue;
    }
    const isGroup = CONFIG_FIELDS.some((f) => f.key.startsWith(`${full}.`));
    if (isGroup) {
      walk(value, `${prefix}.${k}`, path, pos, out);
      continue;
    }
    const siblings = CONFIG_FIELDS.map((f) => f.key)
      .filter((f) => f.startsWith(prefix ? `${prefix.slice(1)}.` : ''))
      .map((f) => (prefix ? f.slice(prefix.length) : f).split('.')[0]!);
    throw new CliError(
      'CONFIG_INVALID',
      `${path}:${p.line}:${p.column}: unknown key 'signals.${full}'${suggest(k, new Set(siblings))}`,
      { hint: 'see `stella signals config --help` for every key' },
    );
  }
}

/**
 * Where a setting's value came from, for error messages: the flag
 * (`--target`), `ENV_NAME`, `file:line (signals.key)` or `default signals.key`.
 */
export function settingOrigin(cfg: EffectiveConfig, key: string): string {
  const s = cfg.settings.get(key);
  if (!s || s.source === 'default') return `signals.${key} (default)`;
  if (s.source === 'file') return `${s.origin} (signals.${key})`;
  return s.origin ?? `signals.${key}`;
}

/** Inputs to {@link loadConfig}, each optional; later sources override earlier ones. */
export interface ConfigInputs {
  /** Path of stellaops.yaml, which must exist; when absent no file is read (see `defaultFile`). */
  file?: string;
  /** What named `file`, for messages: `--config` (the default) or `STELLA_CONFIG`. */
  fileVia?: '--config' | 'STELLA_CONFIG';
  /** Read only when `file` is absent, and only if it exists (a missing default file means defaults). */
  defaultFile?: string;
  /** Environment; only `STELLA_*` names of known keys are read. */
  env?: NodeJS.ProcessEnv;
  /** Flag overrides as dotted key → string (from --set key=value, --target, ...). */
  flags?: ReadonlyArray<{ key: string; value: string; flag: string }>;
}

/**
 * Merge defaults < file < env < flags into an {@link EffectiveConfig}.
 * @throws CliError `CONFIG_INVALID` naming the file, line and key (or the env
 *   var / flag) of the first bad value, and `CONFIG_NOT_FOUND`.
 */
export function loadConfig(inputs: ConfigInputs = {}): EffectiveConfig {
  const settings = new Map<string, EffectiveSetting>();
  for (const f of CONFIG_FIELDS) settings.set(f.key, { key: f.key, value: f.default, source: 'default' });

  let read: ConfigFileRead | undefined;
  let text = '';
  if (inputs.file !== undefined) {
    const via = inputs.fileVia ?? '--config';
    try {
      text = readFileSync(inputs.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CliError(
        'CONFIG_NOT_FOUND',
        `cannot read config file ${inputs.file} (named by ${via}): ${code === 'ENOENT' ? 'no such file' : String(code ?? e)}`,
        {
          hint:
            via === 'STELLA_CONFIG'
              ? `fix STELLA_CONFIG, or unset it to read ${inputs.defaultFile ?? DEFAULT_CONFIG_PATH} if it exists`
              : 'check the --config path',
        },
      );
    }
    read = { path: inputs.file, via };
  } else if (inputs.defaultFile !== undefined) {
    try {
      text = readFileSync(inputs.defaultFile, 'utf8');
      read = { path: inputs.defaultFile, via: 'default location' };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // No file at the default location: defaults apply. Anything else (a
      // directory, no permission) is a file the user meant and must hear about.
      if (code !== 'ENOENT') {
        throw new CliError(
          'CONFIG_NOT_FOUND',
          `cannot read config file ${inputs.defaultFile} (default location): ${String(code ?? e)}`,
          {
            hint: `make it a readable file, remove it, or name another with --config or STELLA_CONFIG`,
          },
        );
      }
    }
  }
  if (read) {
    for (const s of readFile(read.path, text)) {
      const field = FIELD_BY_KEY.get(s.key)!;
      // YAML reads 0x10, 0o20 and 1e3 as numbers; configuration takes plain decimal only.
      const c =
        field.type.kind === 'number' && typeof s.value === 'number' && !DECIMAL.test(s.source ?? '')
          ? ({ ok: false, message: `must be written in plain decimal, got ${s.source}` } as const)
          : checkValue(field, s.value);
      if (!c.ok) {
        throw new CliError(
          'CONFIG_INVALID',
          `${read.path}:${s.line}:${s.column}: signals.${s.key} ${c.message}`,
          { hint: `give signals.${s.key} ${describe(field.type)}${plainExample(field)}` },
        );
      }
      settings.set(s.key, { key: s.key, value: c.value, source: 'file', origin: `${read.path}:${s.line}` });
    }
  }

  for (const field of CONFIG_FIELDS) {
    const name = envName(field.key);
    const text = inputs.env?.[name];
    if (text === undefined) continue;
    const c = checkValue(field, fromString(field, text));
    if (!c.ok) {
      throw new CliError('CONFIG_INVALID', `environment variable ${name}: ${c.message}`, {
        hint: `unset ${name} or give it ${describe(field.type)}${plainExample(field)}`,
      });
    }
    settings.set(field.key, { key: field.key, value: c.value, source: 'env', origin: name });
  }

  for (const { key, value, flag } of inputs.flags ?? []) {
    const k = key.replace(/^signals\./, '');
    const field = FIELD_BY_KEY.get(k);
    if (!field) {
      throw new CliError('USAGE', `${flag}: unknown config key '${key}'${suggest(k, FIELD_BY_KEY.keys())}`, {
        hint: 'every key, its default and meaning: stella signals config --keys',
      });
    }
    const c = checkValue(field, fromString(field, value));
    if (!c.ok) {
      throw new CliError('USAGE', `${flag}: signals.${k} ${c.message}`, {
        hint: `give ${describe(field.type)}${plainExample(field)}`,
      });
    }
    settings.set(k, { key: k, value: c.value, source: 'flag', origin: flag });
  }
  return new EffectiveConfig(settings, read);
}
