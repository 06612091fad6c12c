import { chmodSync, existsSync, mkdirSync, statfsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { generateKeyPair } from '@stellaops/evidence-chain';
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
function checkKeyDirectory(out: string): string[] {
  const dir = dirname(resolve(out));
  const missing: string[] = [];
  let cur = dir;
  let st: ReturnType<typeof statSync>;
  for (;;) {
    try {
      st = statSync(cur);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dirname(cur) !== cur) {
        missing.unshift(cur);
        cur = dirname(cur);
        continue;
      }
      if (code === 'ENOTDIR') {
        throw new CliError(
          'USAGE',
          `keygen: --out ${out}: a component of ${dir} is a file, not a directory`,
          {
            hint: 'check the path',
          },
        );
      }
      if (code === 'EACCES') {
        throw new CliError('USAGE', `keygen: --out ${out}: permission denied on ${cur} (EACCES)`, {
          hint: 'run as a user that may write there (usually root for /etc/stellaops)',
        });
      }
      throw e;
    }
  }
  if (!st.isDirectory()) {
    throw new CliError('USAGE', `keygen: --out ${out}: ${cur} is not a directory`, {
      hint: 'check the path',
    });
  }
  let type = 0;
  try {
    type = Number(statfsSync(cur).type);
  } catch {
    // statfs unsupported: the write below still reports what goes wrong
  }
  // proc and sysfs (include/uapi/linux/magic.h): a key cannot be kept there.
  if (type === 0x9fa0 || type === 0x62656572) {
    throw new CliError(
      'USAGE',
      `keygen: --out ${out}: ${cur} is on the ${type === 0x9fa0 ? 'proc' : 'sysfs'} pseudo filesystem`,
      {
        hint: 'write the key to a directory on disk, e.g. /etc/stellaops/signals-key.pem',
      },
    );
  }
  return missing;
}

/**
 * Create the missing directories of --out, each 0700 (a key directory is
 * nobody else's business). Directories that exist, including one that
 * appears meanwhile, are left exactly as they are: never chmodded.
 */
function createKeyDirectories(out: string, missing: readonly string[]): string[] {
  const created: string[] = [];
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(d).isDirectory()) continue;
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
    // The umask may have taken bits away; this directory is ours, so make it exactly 0700.
    chmodSync(d, 0o700);
    created.push(d);
  }
  return created;
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
