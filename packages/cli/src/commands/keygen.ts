import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  type DirectoryPlan,
  generateKeyPair,
  makeDirectories,
  planDirectories,
} from '@stellaops/evidence-chain';
import type { CommandSpec, Parsed } from '../args.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';

export const keygenSpec: CommandSpec = {
  name: 'keygen',
  summary:
    'Create an ECDSA P-256 signing key (private 0600, public beside it as .pub.pem; missing directories 0700).',
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
    '2  missing --out, the file exists (never overwritten), or its directory is unusable or cannot be created',
  ],
};

/** The public key path that goes with a private key path. */
export function publicKeyPath(privatePath: string): string {
  return privatePath.replace(/(\.pem)?$/, '.pub.pem');
}

/**
 * Check the directory of --out and return its missing components, outermost
 * first. The nearest existing ancestor must be a real directory on a real
 * filesystem (not proc or sysfs); nothing is created here.
 */
function checkKeyDirectory(out: string): readonly string[] {
  const dir = dirname(resolve(out));
  let plan: DirectoryPlan;
  try {
    plan = planDirectories(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EACCES') {
      throw new CliError('USAGE', `keygen: --out ${out}: permission denied under ${dir} (EACCES)`, {
        hint: 'run as a user that may write there (usually root for /etc/stellaops)',
      });
    }
    throw e;
  }
  if (!plan.existingIsDirectory) {
    throw new CliError(
      'USAGE',
      plan.missing.length > 0
        ? `keygen: --out ${out}: a component of ${dir} is a file, not a directory (${plan.existing})`
        : `keygen: --out ${out}: ${plan.existing} is not a directory`,
      { hint: 'check the path' },
    );
  }
  if (plan.pseudo !== undefined) {
    throw new CliError(
      'USAGE',
      `keygen: --out ${out}: ${plan.existing} is on the ${plan.pseudo} pseudo filesystem`,
      { hint: 'write the key to a directory on disk, e.g. /etc/stellaops/signals-key.pem' },
    );
  }
  return plan.missing;
}

/**
 * Create the missing directories of --out, each 0700 (a key directory is
 * nobody else's business). Directories that exist, including one that
 * appears meanwhile, are left exactly as they are: never chmodded.
 */
function createKeyDirectories(out: string, missing: readonly string[]): string[] {
  try {
    return makeDirectories(missing, 0o700);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const d = (e as NodeJS.ErrnoException).path ?? dirname(resolve(out));
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? ['permission denied', 'run as a user that may write there (usually root for /etc/stellaops)']
        : code === 'EROFS'
          ? ['read-only filesystem', 'choose a path on a writable filesystem']
          : [String(code ?? e), 'check the path'];
    throw new CliError('USAGE', `keygen: --out ${out}: cannot create the directory ${d}: ${why[0]}`, {
      hint: why[1]!,
    });
  }
}

/** `stella signals keygen --out PATH`: write a new key pair; never overwrites. */
export async function keygenCommand(p: Parsed, io: Io): Promise<number> {
  const out = p.values.out;
  if (typeof out !== 'string')
    throw new CliError('USAGE', 'keygen: --out PATH is required', { hint: keygenSpec.usage });
  const pub = publicKeyPath(out);
  const missing = checkKeyDirectory(out);
  for (const f of [out, pub]) {
    if (existsSync(f)) {
      throw new CliError('USAGE', `keygen: ${f} already exists; a key is never overwritten`, {
        hint: 'choose another --out, or move the old key away first (see docs/operator-runbook.md, key rotation)',
      });
    }
  }
  for (const d of createKeyDirectories(out, missing)) io.out(`created directory ${d} (0700)\n`);
  const { keyHint } = generateKeyPair(out, pub);
  // The hint identifies the key; the key material itself is never printed.
  io.out(`private key: ${out} (0600)\npublic key:  ${pub}\nkey hint:    ${keyHint}\n`);
  return EXIT.OK;
}
