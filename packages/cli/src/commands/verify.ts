import { readFileSync } from 'node:fs';
import { type ChainReport, verifyChain } from '@stellaops/evidence-chain';
import type { CommandSpec, Parsed } from '../args.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';

export const verifySpec: CommandSpec = {
  name: 'verify-chain',
  summary: 'Verify an evidence directory offline: signatures, digests, the hash chain, its end, log entries.',
  usage:
    'stella signals verify-chain DIR --key PUBLIC.pem [--key ...] [--trusted-root FILE] [--require-tlog] [--json]',
  options: {
    key: { type: 'string', multiple: true, value: 'PEM', help: 'trusted public key (PEM); at least one' },
    'trusted-root': { type: 'string', value: 'FILE', help: 'Sigstore trusted_root.json for log entries' },
    'require-tlog': { type: 'boolean', help: 'every chunk must carry a verified Rekor entry' },
    'allow-open': {
      type: 'boolean',
      help: 'accept a chain without an end-of-stream statement (a collector still running)',
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
    '0  every chunk verified and the chain is closed',
    '1  a check failed (each failure names the chunk and the check)',
    '2  bad flags, unreadable key or directory',
  ],
};

/** Read PEM files given with --key, failing with the path that is wrong. */
export function readKeys(paths: string[]): string[] {
  return paths.map((p) => {
    let pem: string;
    try {
      pem = readFileSync(p, 'utf8');
    } catch (e) {
      throw new CliError(
        'USAGE',
        `--key ${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      );
    }
    if (/PRIVATE KEY/.test(pem)) {
      throw new CliError('USAGE', `--key ${p} is a private key; give the public key`, {
        hint: 'the public key sits beside it as <name>.pub.pem (stella signals keygen writes both)',
      });
    }
    if (!/BEGIN PUBLIC KEY/.test(pem)) throw new CliError('USAGE', `--key ${p} is not a PEM public key`);
    return pem;
  });
}

/** Human-readable report lines. */
export function formatReport(report: ChainReport): string {
  const lines: string[] = [];
  for (const c of report.chunks) {
    const failed = c.checks.filter((k) => !k.ok);
    const tag = c.ok ? 'ok    ' : 'FAILED';
    const extra = c.recovered ? ' (recovered after a crash)' : '';
    lines.push(`${tag} ${c.file}${c.records !== undefined ? `  ${c.records} records` : ''}${extra}`);
    for (const f of failed) lines.push(`       ${f.name}: ${f.message}`);
  }
  const s = report.summary;
  lines.push('');
  lines.push(
    `${report.ok ? 'VERIFIED' : 'FAILED'}: ${s.chunks} chunks, ${s.failedChunks} failed, ${s.records} records, ` +
      `${s.streams} streams, ${s.tlogEntries} log entries, chain ${s.closed ? 'closed' : 'open'}`,
  );
  for (const e of report.errors.filter((e) => !report.chunks.some((c) => e.includes(c.file))))
    lines.push(`  ${e}`);
  return `${lines.join('\n')}\n`;
}

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
  const report = await verifyChain(dir, {
    keys: readKeys(keyPaths),
    ...(typeof p.values['trusted-root'] === 'string' ? { trustedRoot: p.values['trusted-root'] } : {}),
    requireTlog: p.values['require-tlog'] === true,
    requireEnd: expected !== undefined ? { expectedChunks: expected } : p.values['allow-open'] !== true,
  });
  io.out(p.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? EXIT.OK : EXIT.FAILED;
}
