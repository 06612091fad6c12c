import * as fs from 'node:fs';
import { ioError } from './errors.js';

/**
 * File names inside an evidence directory. `N` is the chunk index, zero-padded
 * to 6 digits (more when it needs more), so a plain `ls` lists the chain in order.
 *
 * - `chunk-N.ndjson`              canonical NDJSON records
 * - `chunk-N.sigstore.json`       Sigstore bundle: DSSE-signed chunk statement
 * - `chunk-N.end.sigstore.json`   end-of-stream statement whose subject is chunk N
 * - `chunk-N.open.json`           present while chunk N is being written (removed once sealed)
 * - `chunk-N.partial`             the incomplete last line recovery cut from chunk N
 */
export const chunkName = (i: number): string => `chunk-${pad(i)}.ndjson`;
/** Bundle beside chunk `i`. */
export const bundleName = (i: number): string => `chunk-${pad(i)}.sigstore.json`;
/** End-of-stream bundle whose subject is chunk `i`. */
export const endBundleName = (i: number): string => `chunk-${pad(i)}.end.sigstore.json`;
/** Marker of a chunk being written. */
export const openMarkerName = (i: number): string => `chunk-${pad(i)}.open.json`;
/** Incomplete line cut from a recovered chunk. */
export const partialName = (i: number): string => `chunk-${pad(i)}.partial`;

function pad(i: number): string {
  return String(i).padStart(6, '0');
}

const RE = /^chunk-(\d{6,})\.(ndjson|sigstore\.json|end\.sigstore\.json|open\.json|partial)$/;

/** What an evidence directory holds, by chunk index. */
export interface DirListing {
  chunks: Set<number>;
  bundles: Set<number>;
  ends: Set<number>;
  open: Set<number>;
  partials: Set<number>;
  /** Names that match no known pattern (ignored, reported by the verifier). */
  other: string[];
  /** Leftover temporary files of an interrupted atomic write. */
  temps: string[];
  /** Every index seen in any name, ascending. */
  indexes: number[];
}

/** List an evidence directory. */
export function listDir(dir: string): DirListing {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw ioError('cannot list evidence directory', dir, err);
  }
  const l: DirListing = {
    chunks: new Set(),
    bundles: new Set(),
    ends: new Set(),
    open: new Set(),
    partials: new Set(),
    other: [],
    temps: [],
    indexes: [],
  };
  const all = new Set<number>();
  for (const name of names) {
    if (name.startsWith('.') && name.includes('.tmp-')) {
      l.temps.push(name);
      continue;
    }
    const m = RE.exec(name);
    if (!m) {
      if (!name.startsWith('.')) l.other.push(name);
      continue;
    }
    const i = Number.parseInt(m[1]!, 10);
    if (!Number.isSafeInteger(i)) {
      l.other.push(name);
      continue;
    }
    all.add(i);
    const kind = m[2];
    if (kind === 'ndjson') l.chunks.add(i);
    else if (kind === 'sigstore.json') l.bundles.add(i);
    else if (kind === 'end.sigstore.json') l.ends.add(i);
    else if (kind === 'open.json') l.open.add(i);
    else l.partials.add(i);
  }
  l.indexes = [...all].sort((a, b) => a - b);
  return l;
}
