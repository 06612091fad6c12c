import { existsSync } from 'node:fs';
import { generateKeyPair } from '@stellaops/evidence-chain';
import type { CommandSpec, Parsed } from '../args.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';

export const keygenSpec: CommandSpec = {
  name: 'keygen',
  summary: 'Create an ECDSA P-256 signing key (private 0600, public beside it as .pub.pem).',
  usage: 'stella signals keygen --out PRIVATE.pem',
  options: {
    out: { type: 'string', short: 'o', value: 'PATH', help: 'where to write the private key (PEM, PKCS#8)' },
  },
  positionals: [],
  examples: [
    'stella signals keygen --out /etc/stellaops/signals-key.pem',
    'stella signals verify-chain /var/lib/stellaops/evidence --key /etc/stellaops/signals-key.pub.pem',
  ],
  exitCodes: ['0  key written', '2  missing --out, or the file exists (never overwritten)'],
};

/** The public key path that goes with a private key path. */
export function publicKeyPath(privatePath: string): string {
  return privatePath.replace(/(\.pem)?$/, '.pub.pem');
}

export async function keygenCommand(p: Parsed, io: Io): Promise<number> {
  const out = p.values.out;
  if (typeof out !== 'string')
    throw new CliError('USAGE', 'keygen: --out PATH is required', { hint: keygenSpec.usage });
  const pub = publicKeyPath(out);
  for (const f of [out, pub]) {
    if (existsSync(f)) {
      throw new CliError('USAGE', `keygen: ${f} already exists; a key is never overwritten`, {
        hint: 'choose another --out, or move the old key away first (see docs/operator-runbook.md, key rotation)',
      });
    }
  }
  const { keyHint } = generateKeyPair(out, pub);
  // The hint identifies the key; the key material itself is never printed.
  io.out(`private key: ${out} (0600)\npublic key:  ${pub}\nkey hint:    ${keyHint}\n`);
  return EXIT.OK;
}
