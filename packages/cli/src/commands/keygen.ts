import { existsSync, statfsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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
  exitCodes: [
    '0  key written',
    '2  missing --out, the file exists (never overwritten), or its directory is missing or unusable',
  ],
};

/** The public key path that goes with a private key path. */
export function publicKeyPath(privatePath: string): string {
  return privatePath.replace(/(\.pem)?$/, '.pub.pem');
}

/**
 * The directory of --out must exist (keygen never creates directories, so a
 * typo cannot scatter keys) and be a real directory on a real filesystem.
 */
function checkKeyDirectory(out: string): void {
  const dir = dirname(resolve(out));
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError('USAGE', `keygen: --out ${out}: the directory ${dir} does not exist`, {
        hint: `create it first (keygen does not create directories): install -d -m 0750 ${dir}`,
      });
    }
    if (code === 'ENOTDIR') {
      throw new CliError('USAGE', `keygen: --out ${out}: a component of ${dir} is a file, not a directory`, {
        hint: 'check the path',
      });
    }
    if (code === 'EACCES') {
      throw new CliError('USAGE', `keygen: --out ${out}: permission denied on ${dir} (EACCES)`, {
        hint: 'run as a user that may write there (usually root for /etc/stellaops)',
      });
    }
    throw e;
  }
  if (!st.isDirectory()) {
    throw new CliError('USAGE', `keygen: --out ${out}: ${dir} is not a directory`, {
      hint: 'check the path',
    });
  }
  let type = 0;
  try {
    type = Number(statfsSync(dir).type);
  } catch {
    // statfs unsupported: the write below still reports what goes wrong
  }
  // proc and sysfs (include/uapi/linux/magic.h): a key cannot be kept there.
  if (type === 0x9fa0 || type === 0x62656572) {
    throw new CliError(
      'USAGE',
      `keygen: --out ${out}: ${dir} is on the ${type === 0x9fa0 ? 'proc' : 'sysfs'} pseudo filesystem`,
      {
        hint: 'write the key to a directory on disk, e.g. /etc/stellaops/signals-key.pem',
      },
    );
  }
}

/** `stella signals keygen --out PATH`: write a new key pair; never overwrites. */
export async function keygenCommand(p: Parsed, io: Io): Promise<number> {
  const out = p.values.out;
  if (typeof out !== 'string')
    throw new CliError('USAGE', 'keygen: --out PATH is required', { hint: keygenSpec.usage });
  const pub = publicKeyPath(out);
  checkKeyDirectory(out);
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
