import { createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { endBundleName } from '@stellaops/evidence-chain';
import {
  analyze,
  DEFAULT_CONTENT_STORE,
  formatTable,
  type Inventory,
  inventoryFromImage,
  parseSbom,
  ReachabilityError,
  type ReachabilityReport,
  type SymlinkMap,
  signStatement,
  toStatement,
  verifyStatement,
} from '@stellaops/reachability';
import type { CommandSpec, Parsed } from '../args.js';
import { loadConfig } from '../config.js';
import { CliError, type CliErrorCode, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { inspectSpec, trustedKeys } from './inspect.js';
import { CONFIG_FILE_OPTION, configFileInputs, configFlags } from './shared.js';
import { makeSigner } from './start.js';
import { verifySpec } from './verify.js';

export const reachabilitySpec: CommandSpec = {
  name: 'reachability',
  summary:
    'Which packages of an image the verified evidence saw used (observed), not used within the window (not_observed), or cannot tell (unknown); optionally a signed in-toto statement.',
  usage:
    'stella signals reachability sha256:DIGEST [--target DIR] [--config FILE] [--key PUBLIC.pem]... [--allow-open] [--sbom FILE [--sbom-root DIR]] [--content-store DIR] [--json] [--out FILE [--signing-key PEM]]',
  options: {
    target: inspectSpec.options.target!,
    config: CONFIG_FILE_OPTION,
    key: inspectSpec.options.key!,
    'allow-open': verifySpec.options['allow-open']!,
    sbom: {
      type: 'string',
      value: 'FILE',
      help: "the image's packages from a CycloneDX 1.4-1.6 or SPDX 2.2/2.3 JSON SBOM; default: read the image's package databases (dpkg, apk, npm, Python) from containerd's content store",
    },
    'sbom-root': {
      type: 'string',
      value: 'DIR',
      help: "where the SBOM's relative paths live in the image, an absolute in-image path (e.g. /app for cyclonedx-npm's node_modules/...); default /",
    },
    'content-store': {
      type: 'string',
      value: 'DIR',
      help: `containerd's content store (default ${DEFAULT_CONTENT_STORE}): the image's layers and symlinks (/bin -> usr/bin)`,
    },
    json: {
      type: 'boolean',
      help: 'print the report (the statement predicate) as JSON instead of the table',
    },
    out: {
      type: 'string',
      value: 'FILE',
      help: 'write the report as a signed in-toto statement (Sigstore bundle, DSSE) to FILE, signed with the collector key',
    },
    'signing-key': {
      type: 'string',
      value: 'PEM',
      help: 'private key for --out (signals.signing.key_path, STELLA_SIGNING_KEY_PATH); must be the chain key',
    },
  },
  positionals: ['image'],
  examples: [
    'stella signals reachability sha256:3f1c...e9 --target /var/lib/stellaops/evidence',
    'stella signals reachability sha256:3f1c...e9 --sbom sbom.cdx.json --sbom-root /app --json',
    'stella signals reachability sha256:3f1c...e9 --sbom sbom.spdx.json --out reachability.bundle.json',
  ],
  exitCodes: [
    '0  report made (and written with --out); a warning on stderr when the window holds records of containers no image could be tied to',
    '1  the chain does not verify with the key(s), is open (no end-of-stream statement) without --allow-open, or holds no verified evidence of the image',
    '2  bad digest, flags, config, key, SBOM, or the image is not in the content store (give --sbom)',
    '3  the content store or an image layer cannot be read',
  ],
};

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** The library's failures as CLI errors: a user's input is exit 2, an unverified chain 1, I/O 3. */
function fromReachabilityError(e: ReachabilityError): CliError {
  const map: Record<string, CliErrorCode> = {
    CHAIN_UNVERIFIED: 'VERIFY_FAILED',
    SIGNATURE_INVALID: 'KEY',
    INVALID_OPTION: 'USAGE',
    SBOM_INVALID: 'USAGE',
    IMAGE_NOT_FOUND: 'USAGE',
    IMAGE_INVALID: 'IO',
    TAR_INVALID: 'IO',
    IO_ERROR: 'IO',
  };
  return new CliError(map[e.code] ?? 'IO', e.message, { ...(e.hint ? { hint: e.hint } : {}), cause: e });
}

async function withCliErrors<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw e instanceof ReachabilityError ? fromReachabilityError(e) : e;
  }
}

function readSbom(path: string, root: string | undefined): Inventory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      'USAGE',
      `--sbom ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      {
        hint: 'give a CycloneDX or SPDX JSON file',
      },
    );
  }
  try {
    return parseSbom(text, root ? { root } : {});
  } catch (e) {
    if (e instanceof ReachabilityError) {
      throw new CliError('USAGE', `--sbom ${path}: ${e.message}`, {
        hint: e.hint ?? 'give a CycloneDX 1.4-1.6 or SPDX 2.2/2.3 JSON document',
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * The inventory: the SBOM when given (with the image's symlinks from the
 * content store when the image is there, so /bin/x matches /usr/bin/x), else
 * the image's own package databases.
 */
async function inventoryOf(
  p: Parsed,
  digest: string,
): Promise<{ inventory: Inventory; symlinks?: SymlinkMap; note?: string }> {
  const contentStore = typeof p.values['content-store'] === 'string' ? p.values['content-store'] : undefined;
  const fromImage = () =>
    inventoryFromImage({ manifestDigest: digest, ...(contentStore ? { contentStore } : {}) });
  if (typeof p.values.sbom !== 'string') {
    try {
      return { inventory: await fromImage() };
    } catch (e) {
      if (e instanceof ReachabilityError && e.code === 'IMAGE_NOT_FOUND') {
        throw new CliError('USAGE', `no package inventory for ${digest}: ${e.message}`, {
          hint: `give the image's SBOM with --sbom FILE, or --content-store DIR where containerd keeps the image`,
          cause: e,
        });
      }
      throw e instanceof ReachabilityError ? fromReachabilityError(e) : e;
    }
  }
  const root = typeof p.values['sbom-root'] === 'string' ? p.values['sbom-root'] : undefined;
  const inventory = readSbom(p.values.sbom, root);
  try {
    const image = await fromImage();
    return image.symlinks ? { inventory, symlinks: image.symlinks } : { inventory };
  } catch (e) {
    if (!(e instanceof ReachabilityError)) throw e;
    return {
      inventory,
      note: `the image is not readable from the content store (${e.code}): paths are matched as the SBOM names them, without the image's symlinks`,
    };
  }
}

/**
 * The warning for records no image could be tied to: how many, of which
 * containers, and which packages they made `unknown` instead of
 * `not_observed`. Undefined when there are none. The report (and the signed
 * statement) carries the same as a condition of its window, so the exit
 * status stays 0: a host running other unattributed containers would
 * otherwise fail every run.
 */
function unattributedWarning(report: ReachabilityReport): string | undefined {
  const w = report.window;
  if (w.unattributed_records === '0') return undefined;
  const where = w.unattributed_containers
    .slice(0, 3)
    .map((c) => `${c.id ?? c.cgroup_path ?? '(no id or cgroup)'}: ${c.records}`)
    .join(', ');
  const more = w.unattributed_containers.length > 3 ? `, +${w.unattributed_containers.length - 3} more` : '';
  const pkgs = report.packages.filter((p) => p.reason === 'unattributed_records').map((p) => p.name);
  const shownPkgs = pkgs.slice(0, 10).join(', ') + (pkgs.length > 10 ? `, +${pkgs.length - 10} more` : '');
  const effect =
    pkgs.length > 0
      ? `${pkgs.length} package(s) whose files they touched are reported unknown (reason unattributed_records), not "not observed": ${shownPkgs}`
      : 'they touched no file of the inventory, but may have named one by a path it does not list';
  return `stella: warning: ${w.unattributed_records} records in the window belong to containers no image could be tied to (${where}${more}); any may have been this image's. ${effect}. The report carries them in window.unattributed_records / unattributed_containers.\n`;
}

/**
 * The public keys the chain must verify with; a file that holds no PEM
 * public key is named with its flag, not left to fail inside the analysis.
 */
function publicKeys(p: Parsed, cfg: ReturnType<typeof loadConfig>): string[] {
  const keys = trustedKeys(p, cfg, 'reachability');
  const given = (p.values.key as string[] | undefined) ?? [];
  keys.forEach((pem, i) => {
    try {
      createPublicKey(pem);
    } catch (e) {
      const where = given[i] !== undefined ? `--key ${given[i]}` : 'the collector public key';
      throw new CliError('KEY', `${where}: not a PEM public key (${(e as Error).message})`, {
        hint: 'give the collector public key PEM (stella signals keygen writes <name>.pub.pem beside the private key)',
        cause: e,
      });
    }
  });
  return keys;
}

/** True when the chain's last chunk has no end-of-stream statement (what verify-chain calls open). */
function chainIsOpen(dir: string): boolean {
  const last = Math.max(-1, ...readdirSync(dir).map((n) => Number(n.match(/^chunk-(\d{6,})\./)?.[1] ?? -1)));
  return last >= 0 && !existsSync(join(dir, endBundleName(last)));
}

/** An explicit --content-store must be a directory: said before any image is looked up in it. */
function checkContentStore(p: Parsed): void {
  const store = p.values['content-store'];
  if (typeof store !== 'string') return;
  const hint = `give containerd's content store directory (default ${DEFAULT_CONTENT_STORE}), or leave --content-store out`;
  let isDir: boolean;
  try {
    isDir = statSync(store).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      'USAGE',
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `--content-store ${store}: the directory does not exist`
        : `--content-store ${store}: ${(e as Error).message}`,
      { hint },
    );
  }
  if (!isDir) throw new CliError('USAGE', `--content-store ${store} is not a directory`, { hint });
}

/** `stella signals reachability`: the report of one image from verified evidence, as a table, JSON or a signed statement. */
export async function reachabilityCommand(p: Parsed, io: Io): Promise<number> {
  const digest = p.positionals.image!;
  if (!DIGEST_RE.test(digest)) {
    throw new CliError('USAGE', `'${digest}' is not an image manifest digest (sha256:<64 hex digits>)`, {
      hint: "list the digests the evidence saw with 'stella signals inspect --list-images'",
    });
  }
  if (p.values['sbom-root'] !== undefined && p.values.sbom === undefined) {
    throw new CliError('USAGE', '--sbom-root needs --sbom', { hint: `usage: ${reachabilitySpec.usage}` });
  }
  const sbomRoot = p.values['sbom-root'];
  if (typeof sbomRoot === 'string' && !sbomRoot.startsWith('/')) {
    throw new CliError('USAGE', `--sbom-root '${sbomRoot}' is not an absolute path`, {
      hint: `it is where the SBOM's relative paths live inside the image, e.g. --sbom-root /${sbomRoot.replace(/^\.?\/*/, '')}`,
    });
  }
  if (p.values['signing-key'] !== undefined && p.values.out === undefined) {
    throw new CliError('USAGE', '--signing-key needs --out (it signs the statement written there)', {
      hint: `usage: ${reachabilitySpec.usage}`,
    });
  }
  const flags = configFlags(p);
  if (typeof p.values['signing-key'] === 'string') {
    flags.push({ key: 'signing.key_path', value: p.values['signing-key'], flag: '--signing-key' });
  }
  const cfg = loadConfig({ ...configFileInputs(p, io), env: io.env, flags });
  const dir = cfg.get<string>('output_directory');
  if (!existsSync(dir)) {
    throw new CliError('TARGET', `evidence directory ${dir} does not exist`, { hint: 'pass --target DIR' });
  }
  const keys = publicKeys(p, cfg);
  checkContentStore(p);
  const { inventory, symlinks, note } = await inventoryOf(p, digest);
  const allowOpen = p.values['allow-open'] === true;
  const report: ReachabilityReport = await withCliErrors(() =>
    analyze({
      imageDigest: digest,
      inventory,
      chainDir: dir,
      publicKeys: keys,
      requireEnd: !allowOpen,
      ...(symlinks ? { symlinks } : {}),
    }),
  ).catch((e: unknown) => {
    if (e instanceof CliError && e.code === 'VERIFY_FAILED' && /end-of-stream|requireEnd/.test(e.message)) {
      throw new CliError('VERIFY_FAILED', e.message, {
        hint: 'the chain is open (the collector is still running, or its later chunks were deleted): stop the collector, or pass --allow-open to report on its sealed chunks',
        cause: e,
      });
    }
    throw e;
  });
  if (note) io.err(`stella: note: ${note}\n`);
  if (allowOpen && chainIsOpen(dir)) {
    io.err(
      `stella: note: --allow-open: the chain is open (no end-of-stream statement: the collector is still running, or later chunks were deleted); only its sealed chunks are reported${report.window.final_status ? '' : ', and window.final_status is false'}\n`,
    );
  }
  io.out(p.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatTable(report));
  const unattributed = unattributedWarning(report);
  if (unattributed) io.err(unattributed);
  if (report.evidence.image_records === '0') {
    throw new CliError('NO_EVIDENCE', `no verified evidence in ${dir} for image ${digest}`, {
      hint: unattributed
        ? "records of containers no image could be tied to are in the window (see the warning): they may be this image's"
        : "the image's containers did not run while the collector did; 'stella signals inspect --list-images' lists the images it saw",
    });
  }
  if (typeof p.values.out === 'string') {
    const signer = await makeSigner(cfg, io.env);
    const bundle = await withCliErrors(() => signStatement(toStatement(report), signer));
    // Signed with the chain's key, or a reader with the collector's public key cannot verify it.
    try {
      verifyStatement(bundle, keys);
    } catch (e) {
      throw new CliError(
        'KEY',
        `the signing key ${cfg.get<string>('signing.key_path')} is not the key the chain verifies with`,
        {
          hint: 'sign with the collector key (signals.signing.key_path or --signing-key), or pass its public key with --key',
          cause: e,
        },
      );
    }
    try {
      writeFileSync(p.values.out, `${JSON.stringify(bundle)}\n`);
    } catch (e) {
      throw new CliError('IO', `--out ${p.values.out}: ${(e as Error).message}`, {
        hint: 'choose a writable path',
      });
    }
    io.err(`stella: signed statement written to ${p.values.out}\n`);
  }
  return EXIT.OK;
}
