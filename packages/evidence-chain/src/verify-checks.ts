/**
 * The small named checks verify-chain is built from: trust (pinned keys and
 * trusted root), key (which key the bundle names), signature, statement,
 * link and times. Each takes what it checks and returns a verdict; none
 * throws for evidence problems.
 */
import {
  createHash,
  createPublicKey,
  verify as cryptoVerify,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import type { TrustMaterial } from '@sigstore/verify';
import { type BundleJson, pae } from './bundle.js';
import { EvidenceChainError } from './errors.js';
import { readFileNoFollow } from './fsx.js';
import { keyHintFromPublicKey } from './signer.js';
import { protobufSpecs, sigstoreBundle, sigstoreVerify } from './sigstore-lazy.js';
import {
  type ChunkPredicate,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  type Statement,
} from './statement.js';

/** Outcome of one check. */
export interface Verdict {
  ok: boolean;
  message: string;
}

/** One pinned key: the key, its bundle hint and the DSSE key id sigstore-go computes for it. */
export interface PinnedKey {
  key: KeyObject;
  /** base64(sha256(SPKI DER)): what `verificationMaterial.publicKey.hint` must say. */
  hint: string;
  /** `SHA256:<base64>` SSH fingerprint (go-securesystemslib `SHA256KeyID`), or undefined for key types SSH cannot name. */
  keyid: string | undefined;
}

/** The verification policy's trust: pinned keys and, optionally, a trusted root. */
export interface Trust {
  keys: PinnedKey[];
  material: TrustMaterial | undefined;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/**
 * The DSSE key id sigstore-go gives a verifier that names none: the SSH
 * SHA-256 fingerprint of the public key (`SHA256:` + unpadded base64), as
 * go-securesystemslib's `SHA256KeyID` computes it. Undefined for key types
 * other than ECDSA P-256/P-384 and Ed25519.
 */
export function dsseKeyIdOf(key: KeyObject): string | undefined {
  const jwk = key.export({ format: 'jwk' });
  let blob: Buffer;
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384') && jwk.x && jwk.y) {
    const curve = jwk.crv === 'P-256' ? 'nistp256' : 'nistp384';
    const q = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(jwk.x, 'base64url'),
      Buffer.from(jwk.y, 'base64url'),
    ]);
    blob = Buffer.concat([
      sshString(Buffer.from(`ecdsa-sha2-${curve}`)),
      sshString(Buffer.from(curve)),
      sshString(q),
    ]);
  } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && jwk.x) {
    blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(Buffer.from(jwk.x, 'base64url'))]);
  } else {
    return undefined;
  }
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** A pinned key from its PEM. Throws when the PEM is not a public key. */
export function pinKey(pem: string): PinnedKey {
  const key = createPublicKey(pem);
  return { key, hint: keyHintFromPublicKey(key), keyid: dsseKeyIdOf(key) };
}

/** Options `loadTrust` reads (a subset of VerifyChainOptions). */
export interface TrustOptions {
  keys: string[];
  trustedRoot?: string;
  requireTlog?: boolean;
}

/** Build the trust from the policy. Throws INVALID_OPTION for unusable keys or trusted roots. */
export function loadTrust(o: TrustOptions): Trust {
  if (!o || !Array.isArray(o.keys)) {
    throw new EvidenceChainError('INVALID_OPTION', 'verifyChain: keys must be an array of PEM public keys');
  }
  const keys = o.keys.map((pem, i) => {
    try {
      return pinKey(pem);
    } catch (err) {
      throw new EvidenceChainError('INVALID_OPTION', `verifyChain: keys[${i}] is not a PEM public key`, {
        cause: err,
      });
    }
  });
  let material: TrustMaterial | undefined;
  if (o.trustedRoot !== undefined) {
    let root: TrustedRoot;
    try {
      root = protobufSpecs().TrustedRoot.fromJSON(
        JSON.parse(readFileNoFollow(o.trustedRoot).toString('utf8')),
      );
    } catch (err) {
      throw new EvidenceChainError(
        'INVALID_OPTION',
        `verifyChain: trusted root ${o.trustedRoot} is not a readable trusted_root.json (${(err as Error).message})`,
        { path: o.trustedRoot, cause: err },
      );
    }
    material = sigstoreVerify().toTrustMaterial(root, (hint: string) => {
      const k = keys.find((x) => x.hint === hint);
      if (!k) throw new Error(`no pinned key with hint ${hint}`);
      return { publicKey: k.key, validFor: () => true };
    });
  }
  if (o.requireTlog && !material) {
    throw new EvidenceChainError(
      'INVALID_OPTION',
      'verifyChain: requireTlog needs trustedRoot (the log keys that make an entry verifiable offline)',
    );
  }
  if (keys.length === 0 && !material) {
    throw new EvidenceChainError(
      'INVALID_OPTION',
      'verifyChain: no trust configured: give keys and/or trustedRoot',
    );
  }
  return { keys, material };
}

/**
 * Key check: the bundle must name its key the way the Sigstore verifiers
 * look it up, so that a stella VERIFIED implies they agree.
 *
 * - `verificationMaterial.publicKey.hint` must be the hint of a pinned key:
 *   sigstore-js (@sigstore/verify) and sigstore-go resolve the verification
 *   key through trusted material by this hint, and fail when it names no key.
 * - The DSSE signature's `keyid` must be empty (what this package writes) or
 *   the key's `SHA256:` SSH fingerprint: sigstore-go's DSSE verifier
 *   (go-securesystemslib) skips a signature whose non-empty keyid differs
 *   from its key's id, and then finds no valid signature.
 *
 * Certificate (keyless) bundles carry no hint; their keyid is held against
 * the certificate's key.
 */
export function checkKey(bundle: BundleJson, trust: Trust): Verdict & { key?: PinnedKey } {
  const sigs = bundle.dsseEnvelope.signatures;
  if (sigs.length !== 1) return { ok: false, message: `expected one DSSE signature, found ${sigs.length}` };
  const keyid = sigs[0]!.keyid ?? '';
  const vm = bundle.verificationMaterial;
  if (vm.certificate) {
    let id: string | undefined;
    try {
      id = dsseKeyIdOf(new X509Certificate(Buffer.from(vm.certificate.rawBytes, 'base64')).publicKey);
    } catch (err) {
      return { ok: false, message: `the bundle's certificate does not parse (${(err as Error).message})` };
    }
    if (keyid !== '' && keyid !== id) {
      return {
        ok: false,
        message: `DSSE keyid '${keyid}' is neither empty nor the certificate key's id ${id ?? '(none)'}: sigstore-go would skip the signature`,
      };
    }
    return { ok: true, message: 'certificate bundle' };
  }
  const hint = vm.publicKey?.hint;
  const key = trust.keys.find((k) => k.hint === hint);
  if (!key) {
    return {
      ok: false,
      message: `verificationMaterial.publicKey.hint ${hint === undefined || hint === '' ? '(none)' : `'${hint}'`} names no pinned key (pinned: ${trust.keys.map((k) => k.hint).join(', ') || 'none'}); sigstore-js and sigstore-go look the key up by this hint and would reject the bundle`,
    };
  }
  if (keyid !== '' && keyid !== key.keyid) {
    return {
      ok: false,
      message: `DSSE keyid '${keyid}' is neither empty nor the pinned key's id ${key.keyid ?? '(none)'}: sigstore-go would skip the signature and reject the bundle`,
      key,
    };
  }
  return { ok: true, message: `names pinned key ${key.hint}${keyid ? ` (keyid ${keyid})` : ''}`, key };
}

/**
 * Signature check: the DSSE signature over PAE(payloadType, payload) verifies
 * with the key the bundle names (`named`), or, for a bundle whose key check
 * failed, with any pinned key (so the message can tell a wrong name from a
 * wrong signer). Certificate bundles are verified against the trusted root.
 */
export function checkSignature(
  bundle: BundleJson,
  payloadType: string,
  payload: Buffer,
  trust: Trust,
  named: PinnedKey | undefined,
): Verdict {
  const sigs = bundle.dsseEnvelope.signatures;
  if (sigs.length !== 1) return { ok: false, message: `expected one DSSE signature, found ${sigs.length}` };
  const sig = Buffer.from(sigs[0]!.sig, 'base64');
  const data = pae(payloadType, payload);
  const vm = bundle.verificationMaterial;
  if (vm.certificate) {
    if (!trust.material)
      return { ok: false, message: 'keyless (certificate) bundle, but no trustedRoot configured' };
    try {
      new (sigstoreVerify().Verifier)(trust.material, {
        tlogThreshold: 0,
        ctlogThreshold: 1,
        timestampThreshold: 1,
      }).verify(sigstoreVerify().toSignedEntity(sigstoreBundle().bundleFromJSON(bundle)));
      return { ok: true, message: 'certificate chains to the trusted root and the signature verifies' };
    } catch (err) {
      return { ok: false, message: `keyless signature rejected: ${(err as Error).message}` };
    }
  }
  const verifies = (k: PinnedKey) => {
    try {
      return cryptoVerify('sha256', data, { key: k.key, dsaEncoding: 'der' }, sig);
    } catch {
      return false; // wrong key type
    }
  };
  if (named) {
    return verifies(named)
      ? { ok: true, message: `signed by pinned key ${named.hint}` }
      : {
          ok: false,
          message: `DSSE signature does not verify with the pinned key the bundle names (${named.hint}): re-signed, edited, or signed by an untrusted key`,
        };
  }
  const other = trust.keys.find(verifies);
  return other
    ? { ok: true, message: `signed by pinned key ${other.hint}, but the bundle does not name it` }
    : {
        ok: false,
        message: `DSSE signature does not verify with any pinned key (bundle names key ${vm.publicKey?.hint ?? 'none'}): re-signed, edited, or signed by an untrusted key`,
      };
}

/** Statement check: an in-toto Statement v1 in a DSSE envelope of the in-toto type, one subject, the expected predicate type. */
export function checkStatement(
  payloadType: string,
  payload: Buffer,
  predicateType: string,
): Verdict & { statement?: Statement<unknown> } {
  let statement: Statement<unknown>;
  try {
    statement = JSON.parse(payload.toString('utf8')) as Statement<unknown>;
  } catch {
    return { ok: false, message: 'signed payload is not JSON' };
  }
  const problems: string[] = [];
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) problems.push(`payloadType ${payloadType}`);
  if (typeof statement !== 'object' || statement === null)
    return { ok: false, message: 'signed payload is not a JSON object' };
  if (statement._type !== IN_TOTO_STATEMENT_TYPE) problems.push(`_type ${String(statement._type)}`);
  if (statement.predicateType !== predicateType)
    problems.push(`predicateType ${String(statement.predicateType)}, expected ${predicateType}`);
  if (!Array.isArray(statement.subject) || statement.subject.length !== 1)
    problems.push('expected exactly one subject');
  if (typeof statement.predicate !== 'object' || statement.predicate === null) problems.push('no predicate');
  return problems.length === 0
    ? { ok: true, message: predicateType, statement }
    : { ok: false, message: problems.join('; ') };
}

/** The previous sealed chunk, as the link check needs it. */
export interface PreviousLink {
  /** `sha256:<hex>` of the previous chunk's statement bytes (its DSSE payload). */
  statementDigest: string;
  /** `sha256:<hex>` of the previous chunk file. */
  chunkDigest: string;
  predicate: ChunkPredicate;
}

/**
 * Link check: chunk 0 claims no predecessor; chunk i > 0 names chunk i-1's
 * statement digest (sha256 of its DSSE payload bytes) and chunk digest
 * (sha256 of its file). `prev` is undefined when chunk i-1 is missing or failed.
 */
export function checkLink(index: number, p: ChunkPredicate, prev: PreviousLink | undefined): Verdict {
  if (index === 0) {
    const ok = p.previous_statement_digest === null && p.previous_chunk_digest === null;
    return { ok, message: ok ? 'first chunk' : 'chunk 0 claims a predecessor: earlier chunks were removed' };
  }
  if (!prev) return { ok: false, message: `cannot check the link: chunk ${index - 1} is missing or invalid` };
  const problems: string[] = [];
  if (p.previous_statement_digest !== prev.statementDigest)
    problems.push(
      `previous_statement_digest ${p.previous_statement_digest} is not chunk ${index - 1}'s statement ${prev.statementDigest}`,
    );
  if (p.previous_chunk_digest !== prev.chunkDigest)
    problems.push(
      `previous_chunk_digest ${p.previous_chunk_digest} is not chunk ${index - 1}'s digest ${prev.chunkDigest}`,
    );
  return problems.length === 0
    ? { ok: true, message: `follows chunk ${index - 1}` }
    : { ok: false, message: problems.join('; ') };
}

/** Times check: a chunk closes after it opens; within a stream it opens after the previous chunk closed (monotonic clock), across streams after it closed (wall clock). */
export function checkTimes(index: number, p: ChunkPredicate, prev: PreviousLink | undefined): Verdict {
  const problems: string[] = [];
  const opened = BigInt(p.opened_wall_ns);
  if (BigInt(p.closed_wall_ns) < opened) problems.push('closed before it was opened (wall clock)');
  if (p.closed_mono_ns !== null && BigInt(p.closed_mono_ns) < BigInt(p.opened_mono_ns))
    problems.push('closed before it was opened (monotonic clock)');
  if (prev) {
    const pp = prev.predicate;
    if (pp.stream_id === p.stream_id) {
      if (pp.closed_mono_ns !== null && BigInt(p.opened_mono_ns) < BigInt(pp.closed_mono_ns))
        problems.push(
          `opened (mono ${p.opened_mono_ns}) before chunk ${index - 1} closed (mono ${pp.closed_mono_ns})`,
        );
    } else if (opened < BigInt(pp.closed_wall_ns)) {
      problems.push(
        `new stream opened (wall ${p.opened_wall_ns}) before chunk ${index - 1} closed (wall ${pp.closed_wall_ns})`,
      );
    }
  }
  return problems.length === 0
    ? { ok: true, message: 'monotonic' }
    : { ok: false, message: problems.join('; ') };
}
