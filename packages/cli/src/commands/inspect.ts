import { createPublicKey } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChainReport, verifyChain } from '@stellaops/evidence-chain';
import { bytesFromField, decodeStream, type EvidenceRecord } from '@stellaops/ndjson';
import type { CommandSpec, Parsed } from '../args.js';
import { loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { publicKeyPath } from './keygen.js';
import { configFlags } from './shared.js';
import { readKeys } from './verify.js';

export const inspectSpec: CommandSpec = {
  name: 'inspect',
  summary:
    'Summarise the verified evidence for one image digest: files, binaries, endpoints, TLS names, gaps.',
  usage: 'stella signals inspect sha256:DIGEST [--target DIR] [--key PUBLIC.pem]... [--json]',
  options: {
    target: {
      type: 'string',
      short: 't',
      value: 'DIR',
      help: 'evidence directory (signals.output_directory)',
    },
    config: { type: 'string', short: 'c', value: 'FILE', help: 'stellaops.yaml' },
    key: {
      type: 'string',
      multiple: true,
      value: 'PEM',
      help: 'trusted public key; default: the public key beside signals.signing.key_path',
    },
    json: { type: 'boolean', help: 'machine-readable output' },
  },
  positionals: ['digest'],
  examples: [
    'stella signals inspect sha256:3f1c...e9 --target /var/lib/stellaops/evidence',
    'stella signals inspect sha256:3f1c...e9 --key /etc/stellaops/signals-key.pub.pem --json',
  ],
  exitCodes: [
    '0  evidence found and summarised',
    '1  no verified evidence matches the digest, or a chunk failed verification (it is named, and left out of the summary)',
    '2  bad digest, flags, config or key',
  ],
};

/** What the evidence says one image did. */
export interface ImageSummary {
  digest: string;
  matchedAs: Array<'manifest' | 'config'>;
  containers: Array<{ id: string; runtime?: string; imageRef?: string; k8s?: Record<string, string> }>;
  window: { first: string | null; last: string | null };
  files: Array<{ path: string; containerPath?: string; opens: number; failed: number }>;
  executables: Array<{ filename: string; argv: string[]; count: number }>;
  endpoints: Array<{ kind: string; address: string; count: number }>;
  tlsServerNames: Array<{ sni: string; count: number }>;
  records: number;
  completeness: {
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
  };
}

function show(field: unknown): string {
  const b = bytesFromField(field as never);
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `<b64:${b.toString('base64')}>`;
}

function trustedKeys(p: Parsed, io: Io): string[] {
  const given = (p.values.key as string[] | undefined) ?? [];
  if (given.length > 0) return readKeys(given);
  const cfg = loadConfig({
    ...(typeof p.values.config === 'string' ? { file: p.values.config } : {}),
    env: io.env,
  });
  const priv = cfg.get<string>('signing.key_path');
  const pub = publicKeyPath(priv);
  if (existsSync(pub)) return readKeys([pub]);
  if (existsSync(priv)) {
    return [createPublicKey(readFileSync(priv, 'utf8')).export({ type: 'spki', format: 'pem' }).toString()];
  }
  throw new CliError('KEY', 'inspect verifies the evidence first and needs the public key', {
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

/** Read the verified chunks of `dir` and summarise what the image `digest` did. */
export async function summarise(dir: string, digest: string, report: ChainReport): Promise<ImageSummary> {
  const files = new Map<string, { path: string; containerPath?: string; opens: number; failed: number }>();
  const execs = new Map<string, { filename: string; argv: string[]; count: number }>();
  const endpoints = new Map<string, { kind: string; address: string; count: number }>();
  const snis = new Map<string, number>();
  const containers = new Map<string, ImageSummary['containers'][number]>();
  const matched = new Set<'manifest' | 'config'>();
  const notAttached = new Map<string, string | undefined>();
  const lost = new Map<string, bigint>();
  const deduplicated = new Map<string, bigint>();
  const unbalanced = new Set<string>();
  let first: bigint | null = null;
  let last: bigint | null = null;
  let records = 0;
  const bump = <T extends { count: number }>(m: Map<string, T>, k: string, make: () => T) => {
    const v = m.get(k) ?? make();
    v.count++;
    m.set(k, v);
  };
  // Only sealed chunks whose signature verified: an unsealed tail (a running
  // collector's current chunk, or anything planted after the chain) is
  // unsigned and is never read as evidence.
  for (const chunk of report.chunks.filter(sealedAndVerified)) {
    for await (const r of decodeStream(createReadStream(join(dir, chunk.file)), {
      mode: 'collect',
      checkSequence: false,
    })) {
      if (!r.ok) continue;
      const rec = r.record as EvidenceRecord;
      if (rec.type === 'collector_status') {
        for (const p of rec.probes) {
          if (!p.attached) notAttached.set(p.name, p.reason);
          const l = BigInt(p.lost);
          if (l > (lost.get(p.name) ?? 0n)) lost.set(p.name, l);
          const d = BigInt(p.deduplicated);
          if (d > (deduplicated.get(p.name) ?? 0n)) deduplicated.set(p.name, d);
          const fates = BigInt(p.filtered) + d + BigInt(p.emitted) + l + BigInt(p.in_flight ?? '0');
          if (BigInt(p.seen) !== fates) unbalanced.add(p.name);
        }
        continue;
      }
      const c = rec.container;
      const asManifest = c?.image_manifest_digest === digest;
      const asConfig = c?.image_config_digest === digest;
      if (!c || !(asManifest || asConfig)) continue;
      if (asManifest) matched.add('manifest');
      if (asConfig) matched.add('config');
      records++;
      const t = BigInt(rec.wall_ns);
      if (first === null || t < first) first = t;
      if (last === null || t > last) last = t;
      if (c.id && !containers.has(c.id)) {
        containers.set(c.id, {
          id: c.id,
          ...(c.runtime ? { runtime: c.runtime } : {}),
          ...(c.image_ref ? { imageRef: c.image_ref } : {}),
          ...(c.k8s ? { k8s: c.k8s as Record<string, string> } : {}),
        });
      }
      switch (rec.type) {
        case 'file_open': {
          const path = show(rec.path);
          const f = files.get(path) ?? {
            path,
            ...(rec.container_path ? { containerPath: show(rec.container_path) } : {}),
            opens: 0,
            failed: 0,
          };
          if (rec.ret < 0) f.failed++;
          else f.opens++;
          files.set(path, f);
          break;
        }
        case 'process_exec': {
          // One entry per command line: runs with other arguments are other facts.
          const filename = show(rec.filename);
          const argv = rec.argv.map(show);
          bump(execs, JSON.stringify([filename, argv]), () => ({ filename, argv, count: 0 }));
          break;
        }
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
  }
  const byKey = <T>(m: Map<string, T>) =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
  const iso = (ns: bigint | null) => (ns === null ? null : new Date(Number(ns / 1_000_000n)).toISOString());
  return {
    digest,
    matchedAs: [...matched],
    containers: byKey(containers),
    window: { first: iso(first), last: iso(last) },
    files: byKey(files),
    executables: byKey(execs),
    endpoints: byKey(endpoints),
    tlsServerNames: [...snis.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([sni, count]) => ({ sni, count })),
    records,
    completeness: {
      chainOk: report.ok,
      chainClosed: report.summary.closed,
      chunksVerified: report.chunks.filter(sealedAndVerified).length,
      chunksFailed: report.chunks.filter((c) => !c.ok).map((c) => c.file),
      chunksUnsealed: report.chunks.filter((c) => c.ok && !sealedAndVerified(c)).map((c) => c.file),
      probesNotAttached: [...notAttached].map(([name, reason]) => ({ name, ...(reason ? { reason } : {}) })),
      lost: Object.fromEntries([...lost].filter(([, n]) => n > 0n).map(([k, n]) => [k, n.toString()])),
      deduplicated: Object.fromEntries(
        [...deduplicated].filter(([, n]) => n > 0n).map(([k, n]) => [k, n.toString()]),
      ),
      unbalanced: [...unbalanced].sort(),
    },
  };
}

/** The human-readable form of a summary, as `stella signals inspect` prints it. */
export function formatSummary(s: ImageSummary): string {
  const out = [`image ${s.digest} (matched as ${s.matchedAs.join(' and ')} digest), ${s.records} records`];
  for (const c of s.containers) {
    // Hash ids (Docker, CRI) read best shortened; names (ctr, podman) stay whole.
    const id = /^[0-9a-f]{64}$/.test(c.id) ? c.id.slice(0, 12) : c.id;
    out.push(`  container ${id} ${c.runtime ?? ''} ${c.imageRef ?? ''}`.trimEnd());
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
  for (const f of s.files) {
    out.push(
      `  ${f.path}${f.containerPath ? `  (in container: ${f.containerPath})` : ''}  opens ${f.opens}${f.failed ? `, failed ${f.failed}` : ''}`,
    );
  }
  out.push(`binaries executed (${s.executables.length}):`);
  for (const e of s.executables) out.push(`  ${e.filename}  [${e.argv.join(' ')}] x${e.count}`);
  out.push(`network endpoints (${s.endpoints.length}):`);
  for (const e of s.endpoints) out.push(`  ${e.kind} ${e.address} x${e.count}`);
  out.push(`TLS server names (${s.tlsServerNames.length}):`);
  for (const t of s.tlsServerNames) out.push(`  ${t.sni} x${t.count}`);
  const c = s.completeness;
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
  return `${out.join('\n')}\n`;
}

export async function inspectCommand(p: Parsed, io: Io): Promise<number> {
  const digest = p.positionals.digest!;
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new CliError('USAGE', `inspect: '${digest}' is not an image digest`, {
      hint: 'give sha256: and 64 lowercase hex digits (a manifest or a config digest)',
    });
  }
  const cfg = loadConfig({
    ...(typeof p.values.config === 'string' ? { file: p.values.config } : {}),
    env: io.env,
    flags: configFlags(p),
  });
  const dir = cfg.get<string>('output_directory');
  if (!existsSync(dir))
    throw new CliError('TARGET', `evidence directory ${dir} does not exist`, { hint: 'pass --target DIR' });
  const report = await verifyChain(dir, { keys: trustedKeys(p, io), requireEnd: false });
  const summary = await summarise(dir, digest, report);
  // A chunk that fails verification is left out of the summary, and the
  // summary is then not the whole evidence: say so and exit non-zero.
  const failed = failedChunks(report);
  if (summary.records === 0 && failed.length === 0) {
    if (p.values.json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
    throw new CliError('NO_EVIDENCE', `no verified evidence in ${dir} for image ${digest}`, {
      hint: `${summary.completeness.chunksVerified} chunks verified; check the digest (stella accepts the manifest or the config digest)`,
    });
  }
  io.out(p.values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
  if (failed.length > 0) {
    throw new CliError(
      'VERIFY_FAILED',
      `${failed.length} chunk${failed.length > 1 ? 's' : ''} of ${dir} failed verification and ${failed.length > 1 ? 'were' : 'was'} not read: ${failed.join('; ')}`,
      { hint: `run 'stella signals verify-chain ${dir} --key PUBLIC.pem' for every failed check` },
    );
  }
  return EXIT.OK;
}
