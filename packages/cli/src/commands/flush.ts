import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type FlushReport,
  flushWitnessSpool,
  RekorV1Witness,
  type WriterStatus,
} from '@stellaops/evidence-chain';
import type { CommandSpec, Parsed } from '../args.js';
import { loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { publicKeyPath } from './keygen.js';
import { CONFIG_FILE_OPTION, configFileInputs, configFlags } from './shared.js';
import { readKeys } from './verify.js';

export const flushSpec: CommandSpec = {
  name: 'flush',
  summary:
    'Submit the transparency-log (Rekor) entries a collector left pending in <dir>/.spool now, and report what was logged.',
  usage:
    'stella signals flush [--target DIR] [--config FILE] [--set KEY=VALUE]... [--key PUBLIC.pem] [--json]',
  options: {
    target: {
      type: 'string',
      short: 't',
      value: 'DIR',
      help: 'evidence directory (signals.output_directory)',
    },
    config: CONFIG_FILE_OPTION,
    set: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'override one config key' },
    key: {
      type: 'string',
      value: 'PEM',
      help: 'public key of the signer (default: the one beside signals.signing.key_path); keyless bundles need none',
    },
    json: { type: 'boolean', help: 'machine-readable output' },
  },
  positionals: [],
  examples: [
    'stella signals flush --target /var/lib/stellaops/evidence',
    'stella signals flush --config /etc/stellaops/stellaops.yaml --set signing.rekor_url=https://rekor.example.com',
  ],
  exitCodes: [
    '0  every pending submission was logged (or none was pending)',
    '2  bad flags or config, no such directory, or a collector is running on it (it retries by itself)',
    '3  some submissions failed again (the log is unreachable or refused them); they stay pending',
  ],
};

/** The signer's public key for key-signed bundles, or undefined when none can be found (keyless needs none). */
function signerPublicKey(p: Parsed, keyPath: string): string | undefined {
  if (typeof p.values.key === 'string') return readKeys([p.values.key])[0];
  const pub = publicKeyPath(keyPath);
  if (existsSync(pub)) return readKeys([pub])[0];
  try {
    return createPublicKey(readFileSync(keyPath, 'utf8')).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    return undefined;
  }
}

/** The log index of the last log entry in a bundle, or undefined. */
function logIndexOf(dir: string, bundleFile: string): string | undefined {
  try {
    const b = JSON.parse(readFileSync(join(dir, bundleFile), 'utf8'));
    const e = b?.verificationMaterial?.tlogEntries?.at(-1);
    return e?.logIndex === undefined ? undefined : String(e.logIndex);
  } catch {
    return undefined;
  }
}

/** `stella signals flush`: one attempt for every pending log submission, now. */
export async function flushCommand(p: Parsed, io: Io): Promise<number> {
  const cfg = loadConfig({ ...configFileInputs(p, io), env: io.env, flags: configFlags(p) });
  const dir = cfg.get<string>('output_directory');
  const rekorUrl = cfg.get<string>('signing.rekor_url');
  let rekor: RekorV1Witness;
  try {
    rekor = new RekorV1Witness({ baseURL: rekorUrl });
  } catch (e) {
    throw new CliError('CONFIG_INVALID', `signing.rekor_url: ${(e as Error).message}`, {
      hint: 'an http(s) URL, e.g. https://rekor.sigstore.dev',
      cause: e,
    });
  }
  const publicKeyPem = signerPublicKey(p, cfg.get<string>('signing.key_path'));
  let report: FlushReport;
  try {
    report = await flushWitnessSpool({ dir, witnesses: [rekor], ...(publicKeyPem ? { publicKeyPem } : {}) });
  } catch (e) {
    if ((e as { code?: string }).code === 'DIRECTORY_LOCKED') {
      throw new CliError(
        'TARGET',
        `a collector is running on ${dir}: it submits the pending entries itself`,
        {
          hint: `'stella signals status --target ${dir}' shows how many are pending; flush after that collector has stopped`,
          cause: e,
        },
      );
    }
    throw e;
  }
  if (p.values.json) {
    io.out(`${JSON.stringify({ dir, rekor: rekorUrl, ...report }, null, 2)}\n`);
  } else {
    for (const e of report.logged) {
      const index = logIndexOf(dir, e.bundleFile);
      io.out(`logged   ${e.bundleFile}  ${e.witness}${index === undefined ? '' : `  log index ${index}`}\n`);
    }
    for (const e of report.failed) {
      io.out(`failed   ${e.bundleFile}  ${e.witness}  ${e.error} (attempt ${e.attempts})\n`);
    }
    for (const e of report.skipped) {
      io.out(`skipped  ${e.bundleFile}  ${e.witness}  (not the configured log ${rekor.name})\n`);
    }
    io.out(
      `${report.logged.length} logged, ${report.pending} still pending in ${join(dir, '.spool')}${report.logged.length + report.pending === 0 ? ' (nothing was pending)' : ''}\n`,
    );
  }
  if (report.skipped.length > 0 && !p.values.json) {
    io.err(
      `stella: ${report.skipped.length} pending submission(s) are for another log; set signing.rekor_url to its URL to flush them\n`,
    );
  }
  if (report.failed.length > 0) {
    io.err(`stella: ${report.failed.length} submission(s) to ${rekorUrl} failed again; they stay pending\n`);
    io.err(
      '  hint: check that the log is reachable from this host (proxy, firewall, DNS), then flush again\n',
    );
    return EXIT.ENVIRONMENT;
  }
  return EXIT.OK;
}

/**
 * Log when transparency-log submissions start spooling (a witness fails) and
 * when the log answers again, from the writer status read every second.
 * Returns a stop function.
 */
export function watchLogOutages(
  status: () => WriterStatus,
  log: (level: 'info' | 'warn', text: string, fields: Record<string, unknown>) => void,
): () => void {
  const known = new Map<string, string>();
  const check = () => {
    let w: WriterStatus;
    try {
      w = status();
    } catch {
      return;
    }
    const now = new Map(w.witnessOutages.map((o) => [o.witness, o] as const));
    for (const o of now.values()) {
      if (known.get(o.witness) === o.since) continue;
      known.set(o.witness, o.since);
      log(
        'warn',
        `log unreachable: ${o.witness} failed (${o.lastError}); submissions spool in ${join(w.dir, '.spool')} and are retried with back-off (${w.pendingSubmissions} pending)`,
        { witness: o.witness, error: o.lastError, since: o.since, pending: w.pendingSubmissions },
      );
    }
    for (const witness of [...known.keys()]) {
      if (now.has(witness)) continue;
      known.delete(witness);
      log('info', `log reachable again: ${witness} accepted a submission (${w.pendingSubmissions} pending)`, {
        witness,
        pending: w.pendingSubmissions,
      });
    }
  };
  const timer = setInterval(check, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    check();
  };
}

/** The stop's line about log submissions still pending, or undefined when there are none. */
export function pendingAtStop(w: WriterStatus): string | undefined {
  if (w.pendingSubmissions === 0) return undefined;
  return `${w.pendingSubmissions} log submission(s) still pending in ${join(w.dir, '.spool')}: 'stella signals flush --target ${w.dir}' submits them now (the next start also retries them)`;
}
