import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyStatement } from '@stellaops/reachability';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIGEST, fileOpenRecord, openTestChain, type TestChain } from '../../test/support/signed-chain.js';
import type { Io } from '../io.js';
import { main } from '../main.js';

/** SPDX 2.3 with two packages of one file each. */
const SPDX = {
  spdxVersion: 'SPDX-2.3',
  dataLicense: 'CC0-1.0',
  SPDXID: 'SPDXRef-DOCUMENT',
  name: 'unit',
  documentNamespace: 'https://example.invalid/unit',
  creationInfo: { created: '1970-01-01T00:00:00Z', creators: ['Tool: unit-test'] },
  packages: ['used', 'idle'].map((n) => ({
    SPDXID: `SPDXRef-Package-${n}`,
    name: n,
    versionInfo: '1.0',
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
  })),
  files: ['used', 'idle'].map((n) => ({ SPDXID: `SPDXRef-File-${n}`, fileName: `/usr/bin/${n}` })),
  relationships: ['used', 'idle'].map((n) => ({
    spdxElementId: `SPDXRef-Package-${n}`,
    relatedSpdxElement: `SPDXRef-File-${n}`,
    relationshipType: 'CONTAINS',
  })),
};

function run(args: string[]) {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: {},
    isTTY: false,
    defaultConfigPath: join(tmpdir(), 'stella-reach-no-such-config.yaml'),
  };
  return main(['signals', 'reachability', ...args], io).then((code) => ({ code, out, err }));
}

describe('stella signals reachability', () => {
  let chain: TestChain;
  let sbom: string;
  let emptyStore: string;
  let base: string[];

  beforeAll(async () => {
    chain = await openTestChain('stella-reach-');
    chain.append(fileOpenRecord('/usr/bin/used', 0));
    await chain.writer.close();
    const tmp = mkdtempSync(join(tmpdir(), 'stella-reach-sbom-'));
    sbom = join(tmp, 'unit.spdx.json');
    writeFileSync(sbom, JSON.stringify(SPDX));
    emptyStore = mkdtempSync(join(tmpdir(), 'stella-reach-store-'));
    base = ['--target', chain.dir, '--key', chain.publicKeyPath, '--content-store', emptyStore];
  });

  it('reports the used package observed and the other not observed, from a verified chain', async () => {
    const r = await run([DIGEST, ...base, '--sbom', sbom, '--json']);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    const status = Object.fromEntries(
      report.packages.map((p: { name: string; status: string }) => [p.name, p.status]),
    );
    expect(status).toEqual({ idle: 'not_observed', used: 'observed' });
    // No image in the content store: said, not fatal, with an SBOM.
    expect(r.err).toContain('without the image');
    const table = await run([DIGEST, ...base, '--sbom', sbom]);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/used/);
  });

  it('records no image could be tied to: the package they touched is unknown, not "not observed"; a warning, exit 0', async () => {
    // A real run: the image's container went unattributed (`status: "unknown"`) but for one record.
    const c = await openTestChain('stella-reach-unattr-');
    c.append(fileOpenRecord('/etc/hostname', 0));
    c.append({
      ...fileOpenRecord('/usr/bin/used', 1),
      container: { cgroup_path: '/ns/reach-debian-1', status: 'unknown' },
    });
    await c.writer.close();
    const args = [DIGEST, '--target', c.dir, '--key', c.publicKeyPath, '--content-store', emptyStore];
    const out = join(mkdtempSync(join(tmpdir(), 'stella-reach-out-')), 'r.bundle.json');
    const r = await run([...args, '--sbom', sbom, '--json', '--out', out, '--signing-key', c.keyPath]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(
      'warning: 1 records in the window belong to containers no image could be tied to (/ns/reach-debian-1: 1)',
    );
    expect(r.err).toContain('1 package(s) whose files they touched are reported unknown');
    const report = JSON.parse(r.out);
    const used = report.packages.find((p: { name: string }) => p.name === 'used');
    expect([used.status, used.reason]).toEqual(['unknown', 'unattributed_records']);
    expect(report.window.unattributed_records).toBe('1');
    // The signed statement carries the same condition.
    const signed = verifyStatement(readFileSync(out, 'utf8'), c.publicKeyPem).predicate;
    expect(signed.window.unattributed_containers).toEqual([
      expect.objectContaining({ cgroup_path: '/ns/reach-debian-1', status: 'unknown', records: '1' }),
    ]);
    // The table says it next to the losses.
    const table = await run([...args, '--sbom', sbom]);
    expect(table.out).toMatch(/^unknown\s+used\s.*unattributed records: open 1: \/usr\/bin\/used$/m);
    // No warning when every record was tied to an image.
    const clean = await run([DIGEST, ...base, '--sbom', sbom]);
    expect(clean.err).not.toContain('warning');
  });

  it('--out writes a statement signed with the chain key that verifies with its public key only', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'stella-reach-out-')), 'r.bundle.json');
    const r = await run([DIGEST, ...base, '--sbom', sbom, '--out', out, '--signing-key', chain.keyPath]);
    expect(r.code, r.err).toBe(0);
    const bundle = readFileSync(out, 'utf8');
    const statement = verifyStatement(bundle, readFileSync(chain.publicKeyPath, 'utf8'));
    expect(statement.subject[0]?.digest.sha256).toBe(DIGEST.slice(7));
    const other = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)
      .export({ type: 'spki', format: 'pem' })
      .toString();
    expect(() => verifyStatement(bundle, other)).toThrow();
  });

  it('refuses to sign with a key that is not the chain key; exit 2', async () => {
    const other = join(mkdtempSync(join(tmpdir(), 'stella-reach-key-')), 'other.pem');
    writeFileSync(
      other,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
      { mode: 0o600 },
    );
    const out = join(tmpdir(), `stella-reach-never-${process.pid}.json`);
    const r = await run([DIGEST, ...base, '--sbom', sbom, '--out', out, '--signing-key', other]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('is not the key the chain verifies with');
  });

  it('an unverified chain (another key) is refused; exit 1', async () => {
    const keys = mkdtempSync(join(tmpdir(), 'stella-reach-wrong-'));
    const pub = join(keys, 'wrong.pub.pem');
    writeFileSync(
      pub,
      createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).export({
        type: 'spki',
        format: 'pem',
      }),
    );
    const r = await run([DIGEST, '--target', chain.dir, '--key', pub, '--sbom', sbom]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not verify/);
    expect(r.out).toBe('');
  });

  it('an image the evidence never saw: the report is printed, exit 1', async () => {
    const r = await run([`sha256:${'b'.repeat(64)}`, ...base, '--sbom', sbom]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('no verified evidence');
  });

  it('without --sbom, an image missing from the content store says to give one; exit 2', async () => {
    const r = await run([DIGEST, ...base]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`no package inventory for ${DIGEST}`);
    expect(r.err).toContain('--sbom FILE');
  });

  it('an open chain (no end-of-stream statement) is refused as verify-chain refuses it, unless --allow-open', async () => {
    const c = await openTestChain('stella-reach-open-');
    c.append(fileOpenRecord('/usr/bin/used', 0));
    await c.writer.rotate(); // chunk 0 sealed; the collector is still running
    const args = [DIGEST, '--target', c.dir, '--key', c.publicKeyPath, '--sbom', sbom, '--json'];
    const refused = await run(args);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('end-of-stream');
    expect(refused.err).toContain('--allow-open');
    expect(refused.out).toBe('');
    const allowed = await run([...args, '--allow-open']);
    expect(allowed.code, allowed.err).toBe(0);
    expect(allowed.err).toContain('--allow-open: the chain is open (no end-of-stream statement');
    expect(JSON.parse(allowed.out).window.final_status).toBe(false);
    await c.writer.close();
    // Closed now: no note, with or without the flag.
    const closed = await run([...args, '--allow-open']);
    expect(closed.code, closed.err).toBe(0);
    expect(closed.err).not.toContain('the chain is open');
  });

  it('a malformed SBOM is refused naming the bad member, never reported as empty; exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-reach-badsbom-'));
    const cases: Array<[unknown, string]> = [
      [{ bomFormat: 'CycloneDX', specVersion: '1.6', components: { a: 1 } }, 'components: expected an array'],
      [{ ...SPDX, packages: [...SPDX.packages, { name: 'x' }] }, 'packages[2].SPDXID: missing'],
      [{ ...SPDX, packages: [] }, 'the SPDX SBOM lists no package'],
    ];
    for (const [doc, text] of cases) {
      const f = join(dir, 'sbom.json');
      writeFileSync(f, JSON.stringify(doc));
      const r = await run([DIGEST, ...base, '--sbom', f, '--json']);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`--sbom ${f}: ${text}`);
      expect(r.err).toContain('hint:');
      expect(r.out).toBe('');
    }
  });

  it('argument errors are usage errors (exit 2) that say what to fix', async () => {
    // Armoured like a public key, but no key inside.
    const garbageKey = join(emptyStore, 'garbage.pub.pem');
    writeFileSync(garbageKey, '-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n');
    const noStore = [DIGEST, '--target', chain.dir, '--key', chain.publicKeyPath, '--sbom', sbom];
    const cases: Array<[string[], string]> = [
      [['sha256:abc', ...base], "'sha256:abc' is not an image manifest digest"],
      [[], 'missing IMAGE'],
      [[DIGEST, ...base, '--sbom-root', '/app'], '--sbom-root needs --sbom'],
      [[DIGEST, ...base, '--sbom', sbom, '--signing-key', chain.keyPath], '--signing-key needs --out'],
      [[DIGEST, ...base, '--sbom', join(emptyStore, 'absent.json')], 'no such file'],
      [[DIGEST, ...base, '--sbom', chain.publicKeyPath], `--sbom ${chain.publicKeyPath}:`],
      [[DIGEST, '--target', join(emptyStore, 'absent'), '--sbom', sbom], 'does not exist'],
      [[DIGEST, ...base, '--sbom', sbom, '--sbom-root', 'app'], "--sbom-root 'app' is not an absolute path"],
      [
        [...noStore, '--content-store', '/nonexistent'],
        '--content-store /nonexistent: the directory does not exist',
      ],
      [[...noStore, '--content-store', sbom], `--content-store ${sbom} is not a directory`],
      [
        [DIGEST, '--target', chain.dir, '--key', garbageKey, '--sbom', sbom],
        `--key ${garbageKey}: not a PEM public key`,
      ],
    ];
    for (const [args, text] of cases) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
      expect(r.err).toContain(text);
      expect(r.err).not.toMatch(/\n\s+at .+:\d+:\d+/);
    }
  });
});
