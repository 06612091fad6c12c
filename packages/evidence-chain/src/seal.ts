import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type BundleJson, bundlePayload, parseBundle, serializeBundle, signPayload } from './bundle.js';
import { EvidenceChainError } from './errors.js';
import { readFileNoFollow, writeFileAtomic } from './fsx.js';
import { bundleName, chunkName, endBundleName } from './layout.js';
import type { Signer } from './signer.js';
import {
  type ChainMeta,
  type ChunkPredicate,
  type EncodedStatement,
  encodeStatement,
  STREAM_END_PREDICATE_TYPE,
  type Statement,
  type StatusTotals,
  type StreamEndPredicate,
} from './statement.js';

/** The last sealed link of a chain: what the next chunk points back to. */
export interface ChainHead {
  index: number;
  streamId: string;
  statementDigest: string;
  /** `sha256:<hex>` of the chunk file. */
  chunkDigest: string;
  predicate: ChunkPredicate;
}

/** Sign `encoded` and write it atomically as `dir/fileName`. Returns the bundle. */
export async function sealToDisk(
  dir: string,
  fileName: string,
  encoded: EncodedStatement<unknown>,
  signer: Signer,
): Promise<BundleJson> {
  const bundle = await signPayload(encoded.payload, signer);
  writeFileAtomic(dir, fileName, serializeBundle(bundle));
  return bundle;
}

/** Read and decode the statement of a chunk's bundle. Throws CHAIN_STATE_INVALID if unreadable. */
export function readChunkStatement(
  dir: string,
  index: number,
): { statement: Statement<ChunkPredicate>; digest: string } {
  const path = join(dir, bundleName(index));
  let bundle: BundleJson;
  try {
    bundle = parseBundle(readFileNoFollow(path).toString('utf8'), path);
  } catch (err) {
    throw new EvidenceChainError(
      'CHAIN_STATE_INVALID',
      `cannot continue the chain: ${path} is unreadable (${(err as Error).message}); run verify-chain on ${dir} and move the directory aside if it is damaged`,
      { path, cause: err },
    );
  }
  const payload = bundlePayload(bundle);
  const statement = JSON.parse(payload.toString('utf8')) as Statement<ChunkPredicate>;
  if (!statement?.predicate || typeof statement.predicate.stream_id !== 'string') {
    throw new EvidenceChainError('CHAIN_STATE_INVALID', `${path} does not hold a chunk statement`, { path });
  }
  return { statement, digest: `sha256:${createHash('sha256').update(payload).digest('hex')}` };
}

/** The chain head of chunk `index` (which must be sealed). */
export function chainHeadAt(dir: string, index: number): ChainHead {
  const { statement, digest } = readChunkStatement(dir, index);
  const subject = statement.subject?.[0];
  if (!subject || subject.name !== chunkName(index)) {
    throw new EvidenceChainError(
      'CHAIN_STATE_INVALID',
      `${bundleName(index)} names ${subject?.name ?? 'no subject'} instead of ${chunkName(index)}; the directory has been altered`,
      { path: join(dir, bundleName(index)) },
    );
  }
  return {
    index,
    streamId: statement.predicate.stream_id,
    statementDigest: digest,
    chunkDigest: `sha256:${subject.digest.sha256}`,
    predicate: statement.predicate,
  };
}

/** Inputs of an end-of-stream statement. */
export interface EndOfStream {
  head: ChainHead;
  firstChunkIndex: number;
  reason: StreamEndPredicate['reason'];
  endedWallNs: bigint;
  totals: StatusTotals;
  meta: Pick<ChainMeta, 'hostId' | 'collectorVersion'>;
}

/** Seal the end-of-stream statement of a stream whose last chunk is `head`. */
export async function sealEndOfStream(dir: string, e: EndOfStream, signer: Signer): Promise<BundleJson> {
  const predicate: StreamEndPredicate = {
    stream_id: e.head.streamId,
    reason: e.reason,
    first_chunk_index: e.firstChunkIndex,
    last_chunk_index: e.head.index,
    chunk_count: e.head.index - e.firstChunkIndex + 1,
    last_statement_digest: e.head.statementDigest,
    ended_wall_ns: e.endedWallNs.toString(),
    collector_status: e.totals,
    host_id: e.meta.hostId,
    collector_version: e.meta.collectorVersion,
    final: true,
  };
  const encoded = encodeStatement(
    chunkName(e.head.index),
    e.head.chunkDigest.slice('sha256:'.length),
    STREAM_END_PREDICATE_TYPE,
    predicate,
  );
  return sealToDisk(dir, endBundleName(e.head.index), encoded, signer);
}
