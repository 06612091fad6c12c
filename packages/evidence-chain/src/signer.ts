import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import * as fs from 'node:fs';
import type { FulcioSigner as SigstoreFulcioSigner } from '@sigstore/sign';
import { EvidenceChainError, errnoCode, ioError } from './errors.js';
import { checkIdentityToken } from './oidc-token.js';
import { sigstoreSign } from './sigstore-lazy.js';

/** A signature plus the verification material that goes into the bundle. */
export interface SignatureWithMaterial {
  /** DER-encoded ECDSA signature (or the scheme's native bytes) over the DSSE PAE. */
  signature: Buffer;
  /** PEM leaf certificate, for keyless (Fulcio) signatures; absent for key signatures. */
  certificatePem?: string;
}

/**
 * Signs DSSE pre-authentication encodings. Implement this for a KMS/HSM: the
 * chain only needs `sign` and a stable `keyHint`.
 *
 * - `sign(data)` signs `data` (the DSSE PAE bytes) with SHA-256 and returns
 *   the signature bytes (ECDSA signatures DER-encoded, as Sigstore expects).
 * - `keyHint` goes into the bundle's `verificationMaterial.publicKey.hint`;
 *   for a key it must be base64(sha256(SPKI DER)) — use `keyHintFromPublicKey`.
 * - `publicKeyPem`, when present, lets the writer check every signature
 *   before it is written and lets Rekor witnesses name the verifier.
 * - `signWithMaterial`, when present, is used instead of `sign` (keyless
 *   signers whose certificate changes per signature).
 */
export interface Signer {
  readonly keyHint: string;
  readonly publicKeyPem?: string;
  sign(data: Buffer): Promise<Buffer>;
  signWithMaterial?(data: Buffer): Promise<SignatureWithMaterial>;
}

/** base64(sha256(SPKI DER)) of a public key: the bundle hint cosign and sigstore-go look keys up by. */
export function keyHintFromPublicKey(publicKey: string | KeyObject): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

function assertP256(key: KeyObject, where: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EvidenceChainError(
      'KEY_ERROR',
      `${where}: expected an ECDSA P-256 key, got ${key.asymmetricKeyType ?? 'unknown'}${
        key.asymmetricKeyDetails?.namedCurve ? ` (${key.asymmetricKeyDetails.namedCurve})` : ''
      }; generate one with generateKeyPair() or \`openssl ecparam -name prime256v1 -genkey\``,
    );
  }
}

/** "a directory", "a character device", ... for messages about a path that should be a file. */
function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** A KEY_ERROR saying why a key file cannot be read, and what to do about it. */
function keyReadError(path: string, err: unknown): EvidenceChainError {
  const code = errnoCode(err);
  const fix: Record<string, [string, string]> = {
    ENOENT: ['does not exist', `create one: stella signals keygen --out ${path}`],
    EACCES: [
      `cannot be read by this user (uid ${process.geteuid?.() ?? '?'})`,
      `run the collector as the key's owner, or chown that user ${path} (keep mode 600)`,
    ],
    EPERM: ['cannot be read (EPERM)', 'check the file attributes (lsattr) and the LSM policy'],
    ELOOP: [
      'is a symbolic link; keys are not read through symlinks',
      'give the real path of the key file (realpath; in Kubernetes mount the secret with subPath)',
    ],
    ENOTDIR: ['is not a path to a file: a component of it is a file', 'check the path'],
    EISDIR: ['is a directory, not a regular file', 'give the PEM file itself'],
  };
  const f = code ? fix[code] : undefined;
  if (f)
    return new EvidenceChainError('KEY_ERROR', `private key ${path} ${f[0]}`, {
      path,
      cause: err,
      hint: f[1],
    });
  const e = ioError('cannot read private key', path, err);
  return new EvidenceChainError('KEY_ERROR', e.message, {
    path,
    cause: err,
    ...(e.hint ? { hint: e.hint } : {}),
  });
}

/**
 * Signs with a local ECDSA P-256 private key (PEM, PKCS#8 or SEC1). The key
 * never leaves the process and is never put in a message.
 */
export class LocalKeySigner implements Signer {
  readonly keyHint: string;
  readonly publicKeyPem: string;
  readonly #key: KeyObject;

  /** Wrap an already-loaded private key. Throws KEY_ERROR unless it is ECDSA P-256. */
  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private')
      throw new EvidenceChainError('KEY_ERROR', 'LocalKeySigner needs a private key');
    assertP256(privateKey, 'LocalKeySigner');
    this.#key = privateKey;
    const pub = createPublicKey(privateKey);
    this.publicKeyPem = pub.export({ type: 'spki', format: 'pem' }).toString();
    this.keyHint = keyHintFromPublicKey(pub);
  }

  /**
   * Load a PEM private key file (not followed through a symlink). Throws
   * KEY_ERROR when the file is world-accessible, unreadable, encrypted without
   * `passphrase`, or not an ECDSA P-256 key. The message never contains key bytes.
   */
  static fromPemFile(path: string, options: { passphrase?: string } = {}): LocalKeySigner {
    let pem: Buffer;
    try {
      // O_NONBLOCK: opening a FIFO given by mistake must not hang the start.
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile()) {
          throw new EvidenceChainError(
            'KEY_ERROR',
            `private key ${path} is ${fileKind(st)}, not a regular file`,
            {
              path,
              hint: 'give the PEM file itself (make one with `stella signals keygen --out FILE`)',
            },
          );
        }
        pem = fs.readFileSync(fd);
        // A public key given by mistake: say so before its (harmless) mode.
        if (pem.includes('-----BEGIN PUBLIC KEY-----')) {
          const priv = path.endsWith('.pub.pem') ? path.slice(0, -'.pub.pem'.length) + '.pem' : undefined;
          throw new EvidenceChainError(
            'KEY_ERROR',
            `${path} is a public key; signing needs the private key`,
            {
              path,
              hint: `give the private key: the .pem that stella signals keygen wrote next to it${priv ? ` (${priv})` : ''}; the .pub.pem is for verify-chain`,
            },
          );
        }
        if ((st.mode & 0o007) !== 0) {
          throw new EvidenceChainError(
            'KEY_ERROR',
            `private key ${path} is accessible to all users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
            { path, hint: `chmod 600 ${path}` },
          );
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      if (err instanceof EvidenceChainError) throw err;
      throw keyReadError(path, err);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(
        options.passphrase === undefined ? { key: pem } : { key: pem, passphrase: options.passphrase },
      );
    } catch (err) {
      // The crypto error text never includes key bytes, but say what to do instead of echoing it.
      throw new EvidenceChainError(
        'KEY_ERROR',
        `${path} is not a usable PEM private key (${errnoCode(err) ?? 'parse error'}); expected an unencrypted or passphrase-protected ECDSA P-256 key`,
        { path },
      );
    }
    try {
      return new LocalKeySigner(key);
    } catch (err) {
      if (err instanceof EvidenceChainError)
        throw new EvidenceChainError('KEY_ERROR', `${path}: ${err.message}`, { path });
      throw err;
    }
  }

  /** ECDSA P-256 / SHA-256 signature over `data`, DER-encoded. */
  async sign(data: Buffer): Promise<Buffer> {
    return cryptoSign('sha256', data, { key: this.#key, dsaEncoding: 'der' });
  }
}

/**
 * A signer whose private key lives elsewhere (KMS, HSM, agent): you give the
 * public key and a function that signs; the chain checks every returned
 * signature against the public key before it seals anything with it.
 */
export class ExternalKeySigner implements Signer {
  readonly keyHint: string;
  readonly publicKeyPem: string;
  readonly #signFn: (data: Buffer) => Promise<Buffer>;

  constructor(options: { publicKeyPem: string; sign: (data: Buffer) => Promise<Buffer> }) {
    let pub: KeyObject;
    try {
      pub = createPublicKey(options.publicKeyPem);
    } catch (err) {
      throw new EvidenceChainError('KEY_ERROR', 'ExternalKeySigner: publicKeyPem is not a PEM public key', {
        cause: err,
      });
    }
    assertP256(pub, 'ExternalKeySigner');
    this.publicKeyPem = pub.export({ type: 'spki', format: 'pem' }).toString();
    this.keyHint = keyHintFromPublicKey(pub);
    this.#signFn = options.sign;
  }

  async sign(data: Buffer): Promise<Buffer> {
    return this.#signFn(data);
  }
}

/**
 * Generate an ECDSA P-256 key pair: the private key as PKCS#8 PEM with mode
 * 0600, the public key as SPKI PEM with mode 0644. Refuses to overwrite
 * either file (KEY_ERROR) or to write through a symlink.
 * Returns the public key PEM and its bundle key hint.
 */
export function generateKeyPair(
  privatePath: string,
  publicPath: string,
): { publicKeyPem: string; keyHint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeNewFile(privatePath, privPem, 0o600);
  try {
    writeNewFile(publicPath, pubPem, 0o644);
  } catch (err) {
    fs.unlinkSync(privatePath);
    throw err;
  }
  return { publicKeyPem: pubPem, keyHint: keyHintFromPublicKey(publicKey) };
}

function writeNewFile(path: string, data: string, mode: number): void {
  let fd: number;
  try {
    fd = fs.openSync(
      path,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      mode,
    );
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      throw new EvidenceChainError('KEY_ERROR', `${path} already exists; refusing to overwrite a key file`, {
        path,
      });
    }
    const e = ioError('cannot create key file', path, err);
    throw new EvidenceChainError('KEY_ERROR', e.message, { path, cause: err });
  }
  try {
    fs.fchmodSync(fd, mode);
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Options of the keyless signer. */
export interface FulcioSignerOptions {
  /** Fulcio base URL (default https://fulcio.sigstore.dev). */
  fulcioBaseURL?: string;
  /**
   * Returns an OIDC identity token (e.g. from CI). Called for every
   * signature; each token is checked offline first ({@link checkIdentityToken}).
   */
  getToken: () => Promise<string>;
  /** Request timeout in ms. */
  timeout?: number;
}

/**
 * Keyless signing through `@sigstore/sign`: an ephemeral key, a short-lived
 * Fulcio certificate bound to the OIDC identity, the certificate in the bundle.
 * Needs network access to Fulcio and an OIDC token; bundles it makes verify
 * only with a trusted root that holds the Fulcio CA (`verifyChain`'s
 * `trustedRoot`).
 */
export class FulcioSigner implements Signer {
  readonly keyHint = '';
  readonly #inner: SigstoreFulcioSigner;
  #tokenError: EvidenceChainError | undefined;

  constructor(options: FulcioSignerOptions) {
    if (typeof options?.getToken !== 'function') {
      throw new EvidenceChainError(
        'INVALID_OPTION',
        'FulcioSigner: getToken must be a function returning an OIDC token',
      );
    }
    const getToken = options.getToken;
    // Checked before any network request: a malformed or expired token is
    // named as such (TOKEN_INVALID), not as an unreachable Fulcio.
    const checked = async () => {
      const token = await getToken();
      try {
        checkIdentityToken(token);
      } catch (e) {
        this.#tokenError = e as EvidenceChainError;
        throw e;
      }
      return token;
    };
    this.#inner = new (sigstoreSign().FulcioSigner)({
      identityProvider: { getToken: checked },
      ...(options.fulcioBaseURL === undefined ? {} : { fulcioBaseURL: options.fulcioBaseURL }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    });
  }

  async sign(data: Buffer): Promise<Buffer> {
    return (await this.signWithMaterial(data)).signature;
  }

  async signWithMaterial(data: Buffer): Promise<SignatureWithMaterial> {
    this.#tokenError = undefined;
    try {
      const sig = await this.#inner.sign(data);
      if (sig.key.$case !== 'x509Certificate') {
        throw new EvidenceChainError('SIGNING_FAILED', 'Fulcio returned no certificate');
      }
      return { signature: sig.signature, certificatePem: sig.key.certificate };
    } catch (err) {
      if (err instanceof EvidenceChainError) throw err;
      if (this.#tokenError) throw this.#tokenError;
      // The sigstore error may quote the identity token; keep only its code.
      const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown';
      throw new EvidenceChainError(
        'SIGNING_FAILED',
        `keyless signing failed (${code}); check the OIDC token and that Fulcio is reachable`,
      );
    }
  }
}

/** True when `signature` over `data` verifies with the PEM public key or certificate. */
export function verifySignature(data: Buffer, signature: Buffer, publicKeyOrCertPem: string): boolean {
  try {
    return cryptoVerify(
      'sha256',
      data,
      { key: createPublicKey(publicKeyOrCertPem), dsaEncoding: 'der' },
      signature,
    );
  } catch {
    return false;
  }
}
