import { readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { type ChainReport, verifyChain } from '@stellaops/evidence-chain';
import type { CommandSpec, Parsed } from '../args.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';

export const verifySpec: CommandSpec = {
  name: 'verify-chain',
  summary: 'Verify an evidence directory offline: signatures, digests, the hash chain, its end, log entries.',
  usage:
    'stella signals verify-chain DIR --key PUBLIC.pem [--key ...] [--trusted-root FILE] [--require-tlog] [--allow-open] [--allow-incomplete] [--json]',
  options: {
    key: { type: 'string', multiple: true, value: 'PEM', help: 'trusted public key (PEM); at least one' },
    'trusted-root': { type: 'string', value: 'FILE', help: 'Sigstore trusted_root.json for log entries' },
    'require-tlog': { type: 'boolean', help: 'every chunk must carry a verified Rekor entry' },
    'allow-open': {
      type: 'boolean',
      help: 'accept a chain without an end-of-stream statement (a collector still running)',
    },
    'allow-incomplete': {
      type: 'boolean',
      help: 'accept streams that ended without their final collector_status (crash, failed stop); they are still listed',
    },
    'expect-chunks': { type: 'string', value: 'N', help: 'demand exactly N chunks (detects deleted tails)' },
    json: { type: 'boolean', help: 'print the machine-readable report' },
  },
  positionals: ['dir'],
  examples: [
    'stella signals verify-chain /var/lib/stellaops/evidence --key /etc/stellaops/signals-key.pub.pem',
    'stella signals verify-chain ./evidence --key k.pub.pem --trusted-root trusted_root.json --require-tlog --json',
  ],
  exitCodes: [
    '0  every chunk verified, the chain is closed, and every stream ended with its final collector_status',
    '1  a check failed (each failure names the chunk, the check, and for records the line and JSON path), or a stream is incomplete (see --allow-incomplete)',
    '2  bad flags, unreadable key, or a directory that does not exist or cannot be listed',
  ],
};

/** "a directory", "a character device", ... for a path that should be a regular file. */
function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Read PEM files given with --key, failing with the path that is wrong. */
export function readKeys(paths: string[]): string[] {
  return paths.map((p) => {
    let pem: string;
    try {
      const st = statSync(p);
      if (!st.isFile()) {
        throw new CliError('USAGE', `--key ${p} is ${fileKind(st)}, not a regular file`, {
          hint: 'give the public key PEM file (keygen writes it beside the private key as <name>.pub.pem)',
        });
      }
      pem = readFileSync(p, 'utf8');
    } catch (e) {
      if (e instanceof CliError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new CliError(
        'USAGE',
        `--key ${p}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied (EACCES)' : code === 'ENOTDIR' ? 'a component of the path is a file, not a directory' : (e as Error).message}`,
        {
          hint:
            code === 'EACCES'
              ? 'run as a user that may read it (a public key can be 0644)'
              : 'give the path of the public key PEM file',
        },
      );
    }
    if (/PRIVATE KEY/.test(pem)) {
      throw new CliError('USAGE', `--key ${p} is a private key; give the public key`, {
        hint: 'the public key sits beside it as <name>.pub.pem (stella signals keygen writes both)',
      });
    }
    if (!/BEGIN PUBLIC KEY/.test(pem)) {
      throw new CliError('USAGE', `--key ${p} is not a PEM public key`, {
        hint: 'expected a file starting with -----BEGIN PUBLIC KEY----- (stella signals keygen writes <name>.pub.pem)',
      });
    }
    return pem;
  });
}

/** Fail with exit 2 and a hint when the evidence directory cannot be listed (as --help documents). */
function checkEvidenceDir(dir: string): void {
  try {
    readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what =
      code === 'ENOENT'
        ? 'no such directory'
        : code === 'ENOTDIR'
          ? 'not a directory'
          : code === 'EACCES'
            ? 'permission denied (EACCES)'
            : `cannot be listed (${code ?? (e as Error).message})`;
    throw new CliError('USAGE', `evidence directory ${dir}: ${what}`, {
      hint:
        code === 'EACCES'
          ? 'run as a user that may read the evidence directory'
          : 'give the directory the collector writes to (signals.output_directory, e.g. /var/lib/stellaops/evidence)',
    });
  }
}

/** What the report says about a chunk sealed by crash recovery (the recovery window). */
function recoveryNote(c: ChainReport['chunks'][number]): string {
  if (!c.recovered) return '';
  const u = c.recovery?.unsealedLines;
  return u
    ? ` (sealed by recovery after a crash: lines ${u.first}-${u.last} were unsealed until the restart)`
    : ' (sealed by recovery after a crash)';
}

/** Human-readable report lines. */
export function formatReport(report: ChainReport, allowIncomplete = false): string {
  const lines: string[] = [];
  let otherFailures = report.errors.length;
  let failedChunks = 0;
  for (const c of report.chunks) {
    // An incomplete stream is reported once below, not as a failed chunk.
    const failed = c.checks.filter((k) => !k.ok && k.name !== 'complete');
    otherFailures -= c.checks.filter((k) => !k.ok && k.name === 'complete').length;
    const tag = failed.length === 0 ? 'ok    ' : 'FAILED';
    if (failed.length > 0) failedChunks++;
    lines.push(
      `${tag} ${c.file}${c.records !== undefined ? `  ${c.records} records` : ''}${recoveryNote(c)}`,
    );
    for (const f of failed) lines.push(`       ${f.name}: ${f.message}`);
  }
  const s = report.summary;
  const incomplete = report.incomplete.length > 0;
  const verdict = otherFailures > 0 ? 'FAILED' : incomplete && !allowIncomplete ? 'INCOMPLETE' : 'VERIFIED';
  const chain = !s.closed ? 'open' : incomplete ? 'closed, but incomplete' : 'closed';
  lines.push('');
  lines.push(
    `${verdict}: ${s.chunks} chunks, ${failedChunks} failed, ${s.records} records, ` +
      `${s.streams} streams, ${s.tlogEntries} log entries, chain ${chain}`,
  );
  for (const e of report.errors.filter((e) => !report.chunks.some((c) => e.includes(c.file))))
    lines.push(`  ${e}`);
  for (const i of report.incomplete) lines.push(`  incomplete: ${i}`);
  if (s.recoveredChunks > 0) {
    lines.push(
      `  recovery window: ${s.recoveredLines} lines in ${s.recoveredChunks} chunks were written before a crash and signed only at the next start (anyone who could write the directory in between could have changed them)`,
    );
  }
  if (incomplete && !allowIncomplete) {
    lines.push('  hint: pass --allow-incomplete to accept streams that did not end with their final status');
  }
  return `${lines.join('\n')}\n`;
}

/** `stella signals verify-chain`: verify offline, print the report, exit 0 only for a verified, closed, complete chain. */
export async function verifyCommand(p: Parsed, io: Io): Promise<number> {
  const dir = p.positionals.dir!;
  const keyPaths = (p.values.key as string[] | undefined) ?? [];
  if (keyPaths.length === 0) {
    throw new CliError('USAGE', 'verify-chain: at least one --key PUBLIC.pem is required', {
      hint: 'trust comes from keys you pin, never from the bundles themselves',
    });
  }
  let expected: number | undefined;
  if (typeof p.values['expect-chunks'] === 'string') {
    expected = Number(p.values['expect-chunks']);
    if (!Number.isInteger(expected) || expected < 1) {
      throw new CliError(
        'USAGE',
        `--expect-chunks: '${p.values['expect-chunks']}' is not a positive integer`,
      );
    }
  }
  const allowIncomplete = p.values['allow-incomplete'] === true;
  checkEvidenceDir(dir);
  const report = await verifyChain(dir, {
    keys: readKeys(keyPaths),
    ...(typeof p.values['trusted-root'] === 'string' ? { trustedRoot: p.values['trusted-root'] } : {}),
    requireTlog: p.values['require-tlog'] === true,
    requireEnd: expected !== undefined ? { expectedChunks: expected } : p.values['allow-open'] !== true,
    requireComplete: !allowIncomplete,
  });
  io.out(p.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, allowIncomplete));
  return report.ok ? EXIT.OK : EXIT.FAILED;
}
