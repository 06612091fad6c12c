import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { canonicalize } from 'json-canonicalize';
import { type BundleJson, parseBundle, serializeBundle } from '../bundle.js';
import { EvidenceChainError, errnoCode } from '../errors.js';
import { acquireDirLock, ensureEvidenceDir, readFileNoFollow, safeUnlink, writeFileAtomic } from '../fsx.js';
import type { Witness } from './types.js';

/** A pending submission, as kept on disk in the spool directory. */
export interface SpoolEntry {
  bundle_file: string;
  witness: string;
  attempts: number;
  last_error: string | null;
  next_attempt_ms: number;
  created_ms: number;
}

/** Options of a witness spool. */
export interface WitnessSpoolOptions {
  /** Evidence directory holding the bundles. */
  dir: string;
  /** Directory of pending submissions (created 0750). */
  spoolDir: string;
  witnesses: Witness[];
  /**
   * PEM public key of the signer, for bundles that carry only a key hint.
   * Certificate bundles carry their own verifier.
   */
  publicKeyPem?: string;
  /** First retry delay (default 1 s), doubled per failure up to `maxDelayMs` (default 5 min). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * A witness whose submissions are failing: from its first failed attempt
 * until one succeeds again. Its submissions wait in the spool meanwhile.
 */
export interface WitnessOutage {
  witness: string;
  /** ISO time of the first failure of this outage. */
  since: string;
  /** The latest failure. */
  lastError: string;
}

/** Events of a spool. */
export interface WitnessSpoolEvents {
  witnessed: [{ bundleFile: string; witness: string }];
  'witness-error': [{ bundleFile: string; witness: string; error: string; attempts: number }];
  /** A witness failed after being reachable (or at the first attempt): submissions are spooling. Once per outage. */
  'witness-outage': [WitnessOutage & { pending: number }];
  /** A witness accepted a submission again after an outage. Once per outage. */
  'witness-recovered': [{ witness: string; since: string; pending: number }];
}

/**
 * Persistent queue of log/timestamp submissions: seal first, log later. Each
 * (bundle, witness) pair is a file in the spool directory until the witness's
 * material is merged into the bundle, so submissions survive restarts and a
 * log outage. Retries back off exponentially. A merge is idempotent (an entry
 * already in the bundle is not added twice) and only ever adds to
 * `verificationMaterial`; the signed envelope is never touched.
 */
export class WitnessSpool extends EventEmitter<WitnessSpoolEvents> {
  readonly #o: Required<Omit<WitnessSpoolOptions, 'publicKeyPem'>> & { publicKeyPem?: string };
  readonly #byName: Map<string, Witness>;
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();
  #running = new Set<string>();
  #stopped = false;
  #outages = new Map<string, WitnessOutage>();

  private constructor(o: WitnessSpoolOptions) {
    super();
    this.#o = { initialDelayMs: 1000, maxDelayMs: 300_000, ...o };
    this.#byName = new Map();
    for (const w of o.witnesses) {
      if (!w || typeof w.testify !== 'function' || typeof w.name !== 'string') {
        throw new EvidenceChainError('INVALID_OPTION', 'witnesses: each witness needs a name and testify()');
      }
      if (this.#byName.has(w.name))
        throw new EvidenceChainError('INVALID_OPTION', `witnesses: duplicate name ${w.name}`);
      this.#byName.set(w.name, w);
    }
  }

  /** Open the spool (creating its directory) and schedule what earlier runs left pending. */
  static async open(o: WitnessSpoolOptions): Promise<WitnessSpool> {
    const s = new WitnessSpool(o);
    ensureEvidenceDir(o.spoolDir);
    s.#schedule(0);
    return s;
  }

  /** Queue `bundleFile` (a name in the evidence directory) for every witness. */
  enqueue(bundleFile: string): void {
    const now = Date.now();
    for (const name of this.#byName.keys()) {
      const file = entryFile(bundleFile, name);
      if (fs.existsSync(join(this.#o.spoolDir, file))) continue;
      const e: SpoolEntry = {
        bundle_file: bundleFile,
        witness: name,
        attempts: 0,
        last_error: null,
        next_attempt_ms: now,
        created_ms: now,
      };
      try {
        writeFileAtomic(this.#o.spoolDir, file, JSON.stringify(e));
      } catch (err) {
        this.emit('witness-error', {
          bundleFile,
          witness: name,
          error: `cannot spool: ${(err as Error).message}`,
          attempts: 0,
        });
      }
    }
    this.#schedule(0);
  }

  /** Pending submissions on disk. */
  pending(): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.#o.spoolDir);
    } catch {
      return out;
    }
    for (const n of names) {
      if (!n.endsWith('.pending.json')) continue;
      try {
        out.push(JSON.parse(readFileNoFollow(join(this.#o.spoolDir, n)).toString('utf8')) as SpoolEntry);
      } catch {
        // a half-written entry cannot exist (atomic writes); an unreadable one is skipped
      }
    }
    return out.sort((a, b) => a.created_ms - b.created_ms || (a.bundle_file < b.bundle_file ? -1 : 1));
  }

  /** Number of pending submissions. */
  pendingCount(): number {
    return this.pending().length;
  }

  /** The witnesses whose submissions are failing now, oldest outage first. */
  outages(): WitnessOutage[] {
    return [...this.#outages.values()].map((o) => ({ ...o }));
  }

  /**
   * Stop scheduling attempts (what is in flight finishes; {@link drain}
   * still works); pending entries stay on disk for the next run.
   */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Attempt every due submission now; resolves when those attempts finish. */
  async drain(): Promise<void> {
    await this.#runDue(true);
  }

  /**
   * Stop retrying: try what is due once more, wait at most `timeoutMs` for
   * in-flight submissions; whatever is still pending stays on disk.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    const all = this.#runDue(true);
    await Promise.race([all, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#runDue(false).then(() => this.#scheduleNext());
    }, ms);
    this.#timer.unref();
  }

  #scheduleNext(): void {
    const p = this.pending().filter((e) => this.#byName.has(e.witness));
    if (p.length === 0) return;
    const next = Math.min(...p.map((e) => e.next_attempt_ms));
    this.#schedule(Math.max(0, next - Date.now()));
  }

  async #runDue(force: boolean): Promise<void> {
    const now = Date.now();
    const due = this.pending().filter(
      (e) => this.#byName.has(e.witness) && (force || e.next_attempt_ms <= now),
    );
    const jobs: Promise<void>[] = [];
    for (const e of due) {
      const key = entryFile(e.bundle_file, e.witness);
      if (this.#running.has(key)) continue;
      this.#running.add(key);
      const p = this.#attempt(e).finally(() => {
        this.#running.delete(key);
        this.#inflight.delete(p);
      });
      this.#inflight.add(p);
      jobs.push(p);
    }
    await Promise.all([...this.#inflight, ...jobs]);
  }

  async #attempt(e: SpoolEntry): Promise<void> {
    const w = this.#byName.get(e.witness)!;
    const file = entryFile(e.bundle_file, e.witness);
    const bundlePath = join(this.#o.dir, e.bundle_file);
    try {
      let bundle: BundleJson;
      try {
        bundle = parseBundle(readFileNoFollow(bundlePath).toString('utf8'), bundlePath);
      } catch (err) {
        if (err instanceof EvidenceChainError && errnoCode(err.cause) === 'ENOENT') {
          // The bundle is gone (directory pruned): nothing left to witness.
          safeUnlink(join(this.#o.spoolDir, file));
          return;
        }
        throw err;
      }
      const verifierPem = this.#verifierPem(bundle);
      const material = await w.testify(bundle, { verifierPem });
      // Re-read: another witness may have merged meanwhile (merges of one bundle are serialized).
      await this.#mergeLocked(e.bundle_file, material.tlogEntries ?? [], material.rfc3161Timestamps ?? []);
      safeUnlink(join(this.#o.spoolDir, file));
      this.emit('witnessed', { bundleFile: e.bundle_file, witness: e.witness });
      const outage = this.#outages.get(e.witness);
      if (outage) {
        this.#outages.delete(e.witness);
        this.emit('witness-recovered', {
          witness: e.witness,
          since: outage.since,
          pending: this.pending().filter((x) => x.witness === e.witness).length,
        });
      }
    } catch (err) {
      const attempts = e.attempts + 1;
      const delay = Math.min(this.#o.initialDelayMs * 2 ** Math.min(attempts - 1, 20), this.#o.maxDelayMs);
      const msg = describeError(err);
      const updated: SpoolEntry = { ...e, attempts, last_error: msg, next_attempt_ms: Date.now() + delay };
      try {
        writeFileAtomic(this.#o.spoolDir, file, JSON.stringify(updated));
      } catch {
        // keep the old entry; it is retried anyway
      }
      this.emit('witness-error', { bundleFile: e.bundle_file, witness: e.witness, error: msg, attempts });
      const outage = this.#outages.get(e.witness);
      if (outage) outage.lastError = msg;
      else {
        const started: WitnessOutage = {
          witness: e.witness,
          since: new Date().toISOString(),
          lastError: msg,
        };
        this.#outages.set(e.witness, started);
        this.emit('witness-outage', {
          ...started,
          pending: this.pending().filter((x) => x.witness === e.witness).length,
        });
      }
    }
  }

  #merging = new Map<string, Promise<void>>();

  #mergeLocked(bundleFile: string, tlog: unknown[], ts: unknown[]): Promise<void> {
    const prev = this.#merging.get(bundleFile) ?? Promise.resolve();
    const next = prev.then(() => mergeMaterial(this.#o.dir, bundleFile, tlog, ts));
    this.#merging.set(
      bundleFile,
      next.catch(() => {}),
    );
    return next;
  }

  #verifierPem(bundle: BundleJson): string {
    const cert = bundle.verificationMaterial.certificate?.rawBytes;
    if (cert) return new X509Certificate(Buffer.from(cert, 'base64')).toString();
    if (this.#o.publicKeyPem) return this.#o.publicKeyPem;
    throw new EvidenceChainError(
      'WITNESS_FAILED',
      'the signer exposes no public key, so a log entry cannot name the verifier; give the Signer a publicKeyPem',
    );
  }
}

/**
 * Add witness material to a bundle file (atomic rewrite). Only
 * `verificationMaterial.tlogEntries` and `timestampVerificationData` change;
 * an entry already present is not added again.
 */
export function mergeMaterial(dir: string, bundleFile: string, tlog: unknown[], ts: unknown[]): void {
  const path = join(dir, bundleFile);
  const bundle = parseBundle(readFileNoFollow(path).toString('utf8'), path);
  const vm = bundle.verificationMaterial;
  const have = new Set(vm.tlogEntries.map((x) => canonicalize(x)));
  for (const t of tlog) if (!have.has(canonicalize(t))) vm.tlogEntries.push(t);
  vm.timestampVerificationData ??= { rfc3161Timestamps: [] };
  const haveTs = new Set(vm.timestampVerificationData.rfc3161Timestamps.map((x) => canonicalize(x)));
  for (const t of ts)
    if (!haveTs.has(canonicalize(t))) vm.timestampVerificationData.rfc3161Timestamps.push(t);
  writeFileAtomic(dir, bundleFile, serializeBundle(bundle));
}

/** Options of {@link flushWitnessSpool}. */
export interface FlushWitnessSpoolOptions {
  /** Evidence directory holding the bundles (no collector may be running on it). */
  dir: string;
  /** Directory of pending submissions (default `<dir>/.spool`). */
  spoolDir?: string;
  /** The witnesses to submit to; entries of other witnesses stay pending. */
  witnesses: Witness[];
  /** PEM public key of the signer, for bundles that carry only a key hint. */
  publicKeyPem?: string;
}

/** What {@link flushWitnessSpool} did. */
export interface FlushReport {
  /** Submissions the witness accepted; their material is now in the bundle. */
  logged: Array<{ bundleFile: string; witness: string }>;
  /** Submissions that failed again (still pending, with the error). */
  failed: Array<{ bundleFile: string; witness: string; error: string; attempts: number }>;
  /** Pending entries for witnesses not given (left as they are). */
  skipped: Array<{ bundleFile: string; witness: string }>;
  /** Entries still pending afterwards (failed + skipped). */
  pending: number;
}

/**
 * Submit every pending entry of an evidence directory's spool once, now
 * (ignoring back-off), and report what was logged and what is still
 * pending. Takes the directory lock, so it refuses (DIRECTORY_LOCKED) while
 * a collector runs there: a running collector retries by itself. Throws
 * INVALID_OPTION when `dir` does not exist.
 */
export async function flushWitnessSpool(o: FlushWitnessSpoolOptions): Promise<FlushReport> {
  try {
    if (!fs.statSync(o.dir).isDirectory())
      throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw new EvidenceChainError(
      'INVALID_OPTION',
      `no evidence directory at ${o.dir} (${errnoCode(err) ?? 'unreadable'})`,
      {
        cause: err,
        path: o.dir,
        hint: 'give the directory the collector writes (signals.output_directory, --target)',
      },
    );
  }
  const spoolDir = o.spoolDir ?? join(o.dir, '.spool');
  const report: FlushReport = { logged: [], failed: [], skipped: [], pending: 0 };
  const release = acquireDirLock(o.dir);
  try {
    if (!fs.existsSync(spoolDir)) return report;
    const spool = await WitnessSpool.open({
      dir: o.dir,
      spoolDir,
      witnesses: o.witnesses,
      ...(o.publicKeyPem ? { publicKeyPem: o.publicKeyPem } : {}),
    });
    // Never scheduled: one forced attempt each, below.
    spool.stop();
    const names = new Set(o.witnesses.map((w) => w.name));
    for (const e of spool.pending()) {
      if (!names.has(e.witness)) report.skipped.push({ bundleFile: e.bundle_file, witness: e.witness });
    }
    spool.on('witnessed', (e) => report.logged.push(e));
    spool.on('witness-error', (e) => report.failed.push(e));
    await spool.drain();
    report.pending = spool.pendingCount();
    return report;
  } finally {
    release();
  }
}

/**
 * An error with its causes ("error creating tlog entry: fetch failed:
 * connect ECONNREFUSED 127.0.0.1:443"): the client's own message alone does
 * not tell an operator whether the log is down, refusing, or misconfigured.
 */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== undefined && e !== null; depth++) {
    const m = e instanceof Error ? e.message : String(e);
    if (m && !parts.some((p) => p.includes(m))) parts.push(m);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}

function entryFile(bundleFile: string, witness: string): string {
  const w = witness.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${bundleFile}--${w}.pending.json`;
}
