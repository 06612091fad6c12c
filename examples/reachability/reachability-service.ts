/**
 * Example: a service that answers "which packages of this image ran?" with
 * @stellaops/reachability alone.
 *
 * It reads the image's inventory (an SBOM when given, else the image itself
 * from containerd's content store), analyses a collector evidence directory
 * that must verify with the pinned collector key, and returns the report, its
 * table, and the statement signed with a key of the service's own (here a
 * P-256 PEM through node:crypto; a KMS fits the same `Signer` shape).
 *
 * Run: npx tsx examples/reachability/reachability-service.ts sha256:<manifest> \
 *        --evidence DIR --key COLLECTOR.pub.pem [--sbom FILE [--sbom-root /app]] \
 *        [--sign-key SERVICE.pem --out statement.sigstore.json] [--json]
 */
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  analyze,
  type BundleJson,
  formatTable,
  type Inventory,
  inventoryFromImage,
  parseSbom,
  ReachabilityError,
  type ReachabilityReport,
  type Signer,
  signStatement,
  toStatement,
} from '@stellaops/reachability';

/** One request to the service. */
export interface ReachabilityRequest {
  /** Image manifest digest the question is about. */
  imageDigest: string;
  /** Collector evidence directory. */
  evidenceDir: string;
  /** Pinned collector public key(s), PEM: never taken from the evidence directory. */
  collectorKeys: string[];
  /** SBOM text (CycloneDX or SPDX JSON); without it the image is read from the content store. */
  sbom?: string;
  /** Where the SBOM's relative paths live in the image (an app directory, e.g. /app). */
  sbomRoot?: string;
  /** containerd content store, for the image inventory and its symlinks. */
  contentStore?: string;
  /** Signs the statement; omitted: unsigned. */
  signer?: Signer;
}

/** The service's answer. */
export interface ReachabilityAnswer {
  report: ReachabilityReport;
  table: string;
  bundle?: BundleJson;
}

/** A `Signer` over a P-256 private key PEM, with node:crypto only. */
export function pemSigner(privateKeyPem: string): Signer {
  const key = createPrivateKey(privateKeyPem);
  const publicKeyPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return {
    keyHint: createHash('sha256').update(der).digest('base64'),
    publicKeyPem,
    sign: async (data) => sign('sha256', data, { key, dsaEncoding: 'der' }),
  };
}

/**
 * Answer one request. The image inventory supplies the image's symlinks even
 * when an SBOM supplies the packages, so SBOM paths (`/bin/x`) meet the
 * evidence's (`/usr/bin/x`) on a usr-merged image; if the image is not in the
 * content store, SBOM matching falls back to usr-merge aliases.
 */
export async function answer(req: ReachabilityRequest): Promise<ReachabilityAnswer> {
  let image: Inventory | undefined;
  try {
    image = await inventoryFromImage({ manifestDigest: req.imageDigest, contentStore: req.contentStore });
  } catch (err) {
    if (!(err instanceof ReachabilityError && err.code === 'IMAGE_NOT_FOUND' && req.sbom)) throw err;
  }
  const inventory = req.sbom ? parseSbom(req.sbom, { root: req.sbomRoot }) : (image as Inventory);
  const report = await analyze({
    imageDigest: req.imageDigest,
    inventory,
    chainDir: req.evidenceDir,
    publicKeys: req.collectorKeys,
    symlinks: image?.symlinks,
  });
  const bundle = req.signer ? await signStatement(toStatement(report), req.signer) : undefined;
  return { report, table: formatTable(report), ...(bundle ? { bundle } : {}) };
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      evidence: { type: 'string' },
      key: { type: 'string', multiple: true },
      sbom: { type: 'string' },
      'sbom-root': { type: 'string' },
      'content-store': { type: 'string' },
      'sign-key': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const imageDigest = positionals[0];
  if (!imageDigest || !values.evidence || !values.key?.length) {
    console.error(
      'usage: reachability-service.ts sha256:<manifest> --evidence DIR --key PUB.pem [--sbom FILE]',
    );
    return 2;
  }
  try {
    const a = await answer({
      imageDigest,
      evidenceDir: values.evidence,
      collectorKeys: values.key.map((k) => readFileSync(k, 'utf8')),
      sbom: values.sbom ? readFileSync(values.sbom, 'utf8') : undefined,
      sbomRoot: values['sbom-root'],
      contentStore: values['content-store'],
      signer: values['sign-key'] ? pemSigner(readFileSync(values['sign-key'], 'utf8')) : undefined,
    });
    if (a.bundle && values.out) writeFileSync(values.out, `${JSON.stringify(a.bundle, null, 2)}\n`);
    process.stdout.write(values.json ? `${JSON.stringify(a.report, null, 2)}\n` : a.table);
    return 0;
  } catch (err) {
    if (!(err instanceof ReachabilityError)) throw err;
    console.error(`error: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = await main();
