/**
 * Evidence sources: a verified chain directory (only sealed, verified chunks
 * are read, and each is re-hashed against its signed statement so a file
 * swapped after verification is refused), or records given directly.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { bundleName, type ChainReport, keyHintFromPublicKey, verifyChain } from '@stellaops/evidence-chain';
import type { EvidenceRecord } from '@stellaops/ndjson';
import { ReachabilityError } from './errors.js';

/** A record and the chunk file it came from. */
export interface SourcedRecord {
  record: EvidenceRecord;
  chunk?: string;
}

/** A chain after verification: the chunks to read and the keys it verified with. */
export interface VerifiedChain {
  dir: string;
  chunks: string[];
  keyHints: string[];
}

/**
 * Verify an evidence directory with pinned keys; refuse it unless every check
 * passes (with `requireEnd`, also an open chain: no end-of-stream statement).
 * Unsealed chunks at the tail (a running collector) are left out: their
 * lines are not signed yet.
 * @throws ReachabilityError CHAIN_UNVERIFIED, IO_ERROR, INVALID_OPTION
 */
export function verifiedChain(
  dir: string,
  publicKeys: string[],
  trustedRoot?: string,
  requireEnd = false,
): VerifiedChain {
  let keyHints: string[];
  try {
    keyHints = publicKeys.map((k) => keyHintFromPublicKey(k));
  } catch (err) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      `publicKeys: not a PEM public key (${(err as Error).message})`,
      {
        cause: err,
        hint: 'pass the collector public key PEM (stella signals keygen writes it next to the private key)',
      },
    );
  }
  let report: ChainReport;
  try {
    report = verifyChain(dir, { keys: publicKeys, requireEnd, ...(trustedRoot ? { trustedRoot } : {}) });
  } catch (err) {
    throw new ReachabilityError('IO_ERROR', `evidence directory ${dir}: ${(err as Error).message}`, {
      path: dir,
      cause: err,
    });
  }
  if (!report.ok) {
    const shown = report.errors.slice(0, 5).join('\n  ');
    const more = report.errors.length > 5 ? `\n  ... and ${report.errors.length - 5} more` : '';
    throw new ReachabilityError(
      'CHAIN_UNVERIFIED',
      `evidence directory ${dir} does not verify with the given key(s); its records are not used:\n  ${shown}${more}`,
      { path: dir, hint: `run \`stella signals verify-chain ${dir}\` for the full report` },
    );
  }
  const chunks = report.chunks
    .filter((c) => c.checks.some((k) => k.name === 'records' && k.ok && !k.skipped))
    .map((c) => c.file);
  if (chunks.length === 0) {
    throw new ReachabilityError('CHAIN_UNVERIFIED', `evidence directory ${dir} holds no sealed chunk`, {
      path: dir,
      hint: 'point at the collector evidence directory (chunk-NNNNNN.ndjson files), after at least one chunk was sealed',
    });
  }
  return { dir, chunks, keyHints };
}

/** The sha256 the chunk's signed statement names as its subject. */
function signedSubject(dir: string, chunk: string): string | undefined {
  const index = Number(chunk.match(/^chunk-(\d+)\.ndjson$/)?.[1]);
  try {
    const bundle = JSON.parse(fs.readFileSync(join(dir, bundleName(index)), 'utf8'));
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
    return statement.subject?.[0]?.digest?.sha256;
  } catch {
    return undefined;
  }
}

/**
 * Records of the verified chunks, in chain order. Each chunk is read once and
 * hashed; a chunk whose bytes are not the ones its signed statement names
 * (changed since verification) is refused.
 * @throws ReachabilityError CHAIN_UNVERIFIED, IO_ERROR
 */
export function* chainRecords(chain: VerifiedChain): Generator<SourcedRecord> {
  for (const chunk of chain.chunks) {
    const p = join(chain.dir, chunk);
    let data: Buffer;
    try {
      data = fs.readFileSync(p);
    } catch (err) {
      throw new ReachabilityError('IO_ERROR', `cannot read ${p}: ${(err as Error).message}`, {
        path: p,
        cause: err,
      });
    }
    const digest = createHash('sha256').update(data).digest('hex');
    if (digest !== signedSubject(chain.dir, chunk)) {
      throw new ReachabilityError(
        'CHAIN_UNVERIFIED',
        `${p} changed after it was verified (sha256 ${digest} is not its signed subject)`,
        { path: p },
      );
    }
    let start = 0;
    while (start < data.length) {
      let end = data.indexOf(0x0a, start);
      if (end === -1) end = data.length;
      if (end > start)
        yield { record: JSON.parse(data.toString('utf8', start, end)) as EvidenceRecord, chunk };
      start = end + 1;
    }
  }
}

/** Records given directly (e.g. collect() output), sync or async. */
export async function* givenRecords(
  records: Iterable<EvidenceRecord> | AsyncIterable<EvidenceRecord>,
): AsyncGenerator<SourcedRecord> {
  for await (const record of records) yield { record };
}
