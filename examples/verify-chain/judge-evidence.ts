/**
 * Example: deciding whether to rely on an evidence directory.
 *
 * `verifyChain` answers "is this exactly what a holder of a pinned key
 * sealed, in order, with nothing cut off?". A consumer about to claim that a
 * workload did NOT do something needs more: that every stream ended with a
 * final collector_status, that no probe lost records, which probes were not
 * attached, and that the filters in effect were the ones expected. This file
 * shows how to read that completeness record from verified chunks only.
 *
 * Run: npx tsx examples/verify-chain/judge-evidence.ts DIR --key PUB.pem [--key ...]
 *        [--filter-digest sha256:<hex>] [--expect-chunks N] [--require-attached PROBE]...
 */
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type ChainReport, verifyChain } from '@stellaops/evidence-chain';
import { type CollectorStatusRecord, decodeStream } from '@stellaops/ndjson';

/** What the consumer demands of the evidence. Trust comes only from here. */
export interface EvidencePolicy {
  /** Pinned PEM public keys (never taken from the evidence directory). */
  keys: string[];
  /** Exactly this many chunks (detects a deleted later run). */
  expectedChunks?: number;
  /** The `filter_config_digest` every chunk must carry. */
  filterConfigDigest?: string;
  /** Probes that must have been attached in every status record. */
  requireAttached?: string[];
}

/** Completeness of one collector run (stream). */
export interface StreamVerdict {
  streamId: string;
  firstChunk: number;
  lastChunk: number;
  /** Reason of the end-of-stream statement (`stop`, `error`, `disk_full`, `crash_recovery`), null when missing. */
  end: ChainReport['streams'][number]['end'];
  /** True when the stream's last collector_status has `final: true`. */
  finalStatus: boolean;
  /** Probes with lost records, total per probe (from the last status). */
  lost: Record<string, string>;
  /** Probes reported not attached at least once, with the reason. */
  notAttached: Array<{ name: string; reason?: string }>;
  /** Distinct filter_config_digest values of the stream's chunks. */
  filterConfigDigests: string[];
  /** Window covered by the stream's status records, Unix-epoch ns, or null without any. */
  window: { startWallNs: string; endWallNs: string } | null;
}

/** The verdict: `authentic` (the chain verifies and is closed) and `complete` (nothing unaccounted). */
export interface EvidenceVerdict {
  authentic: boolean;
  complete: boolean;
  /** One line per reason the evidence is not authentic or not complete. */
  problems: string[];
  streams: StreamVerdict[];
  chain: ChainReport;
}

/** The signed statement inside a verified bundle (the DSSE payload). */
function signedPredicate(dir: string, chunkFile: string): { filter_config_digest?: string } {
  const bundle = JSON.parse(
    readFileSync(join(dir, chunkFile.replace(/\.ndjson$/, '.sigstore.json')), 'utf8'),
  );
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
  return statement.predicate ?? {};
}

/**
 * Verify `dir` against the policy and read its completeness record.
 * Only chunks that verified are read; records of a failed or unsealed chunk
 * never count. Throws only for unusable options (no keys) or an unreadable
 * directory, like `verifyChain`.
 */
export async function judgeEvidence(dir: string, policy: EvidencePolicy): Promise<EvidenceVerdict> {
  const chain = verifyChain(dir, {
    keys: policy.keys,
    requireEnd: policy.expectedChunks !== undefined ? { expectedChunks: policy.expectedChunks } : true,
  });
  const problems = [...chain.errors];
  if (!chain.summary.closed)
    problems.push('chain is open: the last run has no signed end-of-stream statement');

  const streams: StreamVerdict[] = [];
  for (const s of chain.streams) {
    const chunks = chain.chunks.filter((c) => c.streamId === s.streamId && c.ok && c.records !== undefined);
    const v: StreamVerdict = {
      streamId: s.streamId,
      firstChunk: s.firstChunk,
      lastChunk: s.lastChunk,
      end: s.end,
      finalStatus: false,
      lost: {},
      notAttached: [],
      filterConfigDigests: [],
      window: null,
    };
    let last: CollectorStatusRecord | undefined;
    let first: CollectorStatusRecord | undefined;
    const notAttached = new Map<string, string | undefined>();
    const digests = new Set<string>();
    for (const c of chunks) {
      const digest = signedPredicate(dir, c.file).filter_config_digest;
      if (digest) digests.add(digest);
      for await (const r of decodeStream(createReadStream(join(dir, c.file)), { mode: 'collect' })) {
        if (!r.ok) {
          problems.push(`${c.file} line ${r.lineNumber}: ${r.error.code}: ${r.error.message}`);
          continue;
        }
        if (r.record.type !== 'collector_status') continue;
        first ??= r.record;
        last = r.record;
        for (const p of r.record.probes) if (!p.attached) notAttached.set(p.name, p.reason);
      }
    }
    v.filterConfigDigests = [...digests].sort();
    v.notAttached = [...notAttached].map(([name, reason]) => ({ name, ...(reason ? { reason } : {}) }));
    if (first && last) {
      v.window = { startWallNs: first.window_start_wall_ns, endWallNs: last.window_end_wall_ns };
      v.finalStatus = last.final === true;
      for (const p of last.probes) if (BigInt(p.lost) > 0n) v.lost[p.name] = p.lost;
    }
    const where = `stream ${s.streamId} (chunks ${s.firstChunk}..${s.lastChunk})`;
    if (!v.finalStatus) {
      problems.push(
        `${where}: no final collector_status: events after its last status record are unaccounted for`,
      );
    }
    for (const [name, n] of Object.entries(v.lost))
      problems.push(`${where}: probe ${name} lost ${n} records`);
    for (const name of policy.requireAttached ?? []) {
      const na = v.notAttached.find((p) => p.name === name);
      const seen = last?.probes.some((p) => p.name === name) ?? false;
      if (na || !seen)
        problems.push(
          `${where}: required probe ${name} was not attached${na?.reason ? `: ${na.reason}` : ''}`,
        );
    }
    if (policy.filterConfigDigest !== undefined) {
      for (const d of v.filterConfigDigests) {
        if (d !== policy.filterConfigDigest)
          problems.push(`${where}: filter_config_digest ${d}, expected ${policy.filterConfigDigest}`);
      }
    }
    streams.push(v);
  }
  const authentic = chain.ok && chain.summary.closed;
  return { authentic, complete: authentic && problems.length === 0, problems, streams, chain };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      key: { type: 'string', multiple: true },
      'filter-digest': { type: 'string' },
      'expect-chunks': { type: 'string' },
      'require-attached': { type: 'string', multiple: true },
    },
  });
  const dir = positionals[0];
  if (!dir || !values.key?.length) {
    process.stderr.write('usage: judge-evidence.ts DIR --key PUB.pem [--key ...] [--filter-digest D]\n');
    return 2;
  }
  const verdict = await judgeEvidence(dir, {
    keys: values.key.map((k) => readFileSync(k, 'utf8')),
    ...(values['filter-digest'] ? { filterConfigDigest: values['filter-digest'] } : {}),
    ...(values['expect-chunks'] ? { expectedChunks: Number(values['expect-chunks']) } : {}),
    ...(values['require-attached'] ? { requireAttached: values['require-attached'] } : {}),
  });
  const { chain: _chain, ...summary } = verdict;
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return verdict.complete ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: Error) => {
      process.stderr.write(`judge-evidence: ${e.message}\n`);
      process.exitCode = 2;
    },
  );
}
