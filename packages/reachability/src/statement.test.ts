import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { keyHintFromPublicKey, type Signer } from '@stellaops/evidence-chain';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, buildRootfs, exec, IMAGE, open, sha256, status } from '../test/support/fixtures.js';
import { analyze } from './analyze.js';
import { inventoryFromRootfs } from './image.js';
import { schemaIssues } from './jsonschema.js';
import { parseSbom } from './sbom.js';
import { schemaFileText } from './schema.js';
import {
  REACHABILITY_PREDICATE_SCHEMA,
  REACHABILITY_PREDICATE_TYPE,
  signStatement,
  statementBytes,
  toStatement,
  verifyStatement,
} from './statement.js';
import type { ReachabilityReport } from './types.js';

const root = buildRootfs();
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** An in-memory P-256 signer, the shape LocalKeySigner has. */
function signer(): Signer & { publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    keyHint: keyHintFromPublicKey(publicKeyPem),
    publicKeyPem,
    sign: async (data) => {
      const { sign } = await import('node:crypto');
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
    },
  };
}

async function reports(): Promise<ReachabilityReport[]> {
  const inventory = await inventoryFromRootfs(root);
  const records = [
    status(0, 0),
    exec(10, '/bin/sh', { exe_path: '/usr/bin/dash', exe_digest: `sha256:${sha256(BIN.dash)}` }),
    open(11, '/app/node_modules/express/index.js'),
    open(12, '/etc/hostname'),
    status(0, 20, { final: true }),
  ];
  const sbom = parseSbom(
    readFileSync(new URL('../test/fixtures/sboms/reach-debian.cdx.json', import.meta.url), 'utf8'),
  );
  return [
    await analyze({ imageDigest: IMAGE, inventory, records }),
    await analyze({ imageDigest: IMAGE, inventory: sbom, records: [] }),
    await analyze({
      imageDigest: IMAGE,
      inventory: await inventoryFromRootfs(root),
      records: [open(1, '/x')],
    }),
  ];
}

describe('the reachability statement', () => {
  const all = reports();

  it('is an in-toto v1 statement about the image manifest, valid against the shipped JSON Schema', async () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    const validate = ajv.compile(REACHABILITY_PREDICATE_SCHEMA);
    for (const r of await all) {
      const s = toStatement(r);
      expect(s._type).toBe('https://in-toto.io/Statement/v1');
      expect(s.predicateType).toBe(REACHABILITY_PREDICATE_TYPE);
      expect(s.subject).toEqual([{ name: IMAGE, digest: { sha256: IMAGE.slice(7) } }]);
      const ok = validate(JSON.parse(statementBytes(s).toString()).predicate);
      expect(validate.errors ?? [], 'schema errors').toEqual([]);
      expect(ok).toBe(true);
    }
    // The schema can fail: a report missing its window is refused.
    const { window: _w, ...broken } = (await all)[0] as ReachabilityReport;
    expect(validate(broken)).toBe(false);
    const wrong = structuredClone((await all)[0] as ReachabilityReport);
    (wrong.packages[0] as { status: string }).status = 'not_affected';
    expect(validate(wrong)).toBe(false);
  });

  it('the schema file shipped in the package is the one in src/schema.ts (npm run gen)', () => {
    const file = readFileSync(new URL('../schema/reachability-v1.schema.json', import.meta.url), 'utf8');
    expect(JSON.parse(file)).toEqual(JSON.parse(schemaFileText()));
  });

  it('is canonical JSON: the same report gives the same bytes whatever the member order', async () => {
    const r = (await all)[0] as ReachabilityReport;
    const reordered = Object.fromEntries(Object.entries(r).reverse()) as unknown as ReachabilityReport;
    expect(statementBytes(toStatement(reordered)).equals(statementBytes(toStatement(r)))).toBe(true);
    expect(statementBytes(toStatement(r)).toString()).not.toMatch(/\n| {2}/);
  });

  it('signs with a chain signer and verifies with its public key only', async () => {
    const r = (await all)[0] as ReachabilityReport;
    const s = signer();
    const bundle = await signStatement(toStatement(r), s);
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    expect(verifyStatement(bundle, s.publicKeyPem).predicate).toEqual(r);

    const other = signer();
    expect(() => verifyStatement(bundle, other.publicKeyPem)).toThrow(
      expect.objectContaining({
        code: 'SIGNATURE_INVALID',
        message: expect.stringContaining('not one of the pinned keys'),
      }),
    );
    // An edited report (a package turned "not observed") no longer verifies.
    const edited = structuredClone(bundle);
    const payload = JSON.parse(Buffer.from(edited.dsseEnvelope.payload, 'base64').toString());
    const dash = payload.predicate.packages.find((x: { name: string }) => x.name === 'dash');
    expect(dash.status).toBe('observed');
    dash.status = 'not_observed';
    delete dash.observed;
    edited.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    expect(() => verifyStatement(edited, s.publicKeyPem)).toThrow(
      expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
    );
  });

  it('refuses a signed statement that is not about its report image', async () => {
    const r = (await all)[0] as ReachabilityReport;
    const s = signer();
    const st = toStatement(r);
    st.subject[0].digest.sha256 = 'f'.repeat(64);
    const bundle = await signStatement(st, s);
    expect(() => verifyStatement(bundle, s.publicKeyPem)).toThrow(
      expect.objectContaining({ code: 'STATEMENT_INVALID' }),
    );
  });

  it('refuses a signed predicate that breaks the published JSON Schema, naming where', async () => {
    const s = signer();
    const r = (await all)[0] as ReachabilityReport;
    const cases: Array<[(p: Record<string, unknown>) => void, RegExp]> = [
      [
        (p) => {
          (p.packages as { status: string }[])[0]!.status = 'not_affected';
        },
        /\/predicate\/packages\/0/,
      ],
      [
        (p) => {
          delete p.window;
        },
        /\/predicate: missing window/,
      ],
    ];
    for (const [edit, where] of cases) {
      const st = structuredClone(toStatement(r));
      edit(st.predicate as unknown as Record<string, unknown>);
      const bundle = await signStatement(st, s);
      expect(() => verifyStatement(bundle, s.publicKeyPem)).toThrow(
        expect.objectContaining({
          code: 'STATEMENT_INVALID',
          message: expect.stringMatching(where),
        }),
      );
    }
  });

  it('the schema checker verifyStatement uses agrees with Ajv on valid and broken predicates', async () => {
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(REACHABILITY_PREDICATE_SCHEMA);
    const predicates: unknown[] = [];
    for (const r of await all) {
      predicates.push(JSON.parse(statementBytes(toStatement(r)).toString()).predicate);
      // A status that does not fit its members: oneOf fails.
      predicates.push({
        ...r,
        packages: r.packages.map((x) => ({ ...x, status: x.status === 'observed' ? 'unknown' : 'observed' })),
      });
      predicates.push({ ...r, extra: 1 });
      predicates.push({ ...r, window: { ...r.window, lost: '-1' } });
      predicates.push({ ...r, unowned_paths: [{ path: 'rel', access: [], count: '1' }] });
      predicates.push({ ...r, inventory: { ...r.inventory, source: { kind: 'spdx' } } });
    }
    for (const p of predicates) {
      expect(
        schemaIssues(REACHABILITY_PREDICATE_SCHEMA, p).length === 0,
        JSON.stringify(validate.errors),
      ).toBe(validate(p));
    }
    expect(predicates.filter((p) => validate(p))).toHaveLength(3);
  });

  it('refuses a signer whose signature does not verify with its own key', async () => {
    const good = signer();
    const liar: Signer = { keyHint: good.keyHint, publicKeyPem: signer().publicKeyPem, sign: good.sign };
    await expect(
      signStatement(toStatement((await all)[0] as ReachabilityReport), liar),
    ).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
    });
  });
});
