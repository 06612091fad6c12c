import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REACHABILITY_PREDICATE_TYPE, verifyStatement } from '@stellaops/reachability';
import { canRunBpf, gate } from '@stellaops/testing';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  ctrUnavailableReason,
  importImage,
} from '../../../tools/oci-image/ctr.js';
import { startCollector } from './support/collector.js';

// The real collector watching containers of two images built from real
// packages (tools/reach-images/build.sh: Debian 12 .debs with their dpkg
// database and merged /usr; Node with an app's node_modules), each running a
// workload that uses some packages and leaves others alone; then
// `stella signals reachability` with each inventory source must name exactly
// the used packages observed and the others not_observed, with the window,
// in a statement that verifies with the collector's public key.
const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');
const fixtures = join(root, 'packages/reachability/test/fixtures/sboms');

function stella(args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'signals', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Image {
  ref: string;
  manifestDigest: string;
}
interface PackageRow {
  name: string;
  purl?: string;
  status: 'observed' | 'not_observed' | 'unknown';
  reason?: 'no_files' | 'unattributed_records';
}
interface Report {
  image: { manifest_digest: string };
  inventory: { source: { kind: string } };
  window: {
    start_wall_ns: string | null;
    end_wall_ns: string | null;
    source: string;
    probes: unknown[];
    lost: string;
    unattributed_records: string;
    unattributed_containers: { id?: string; cgroup_path?: string; status: string; records: string }[];
    final_status: boolean;
  };
  summary: { unknown: number; unattributed: number };
  packages: PackageRow[];
}

/** name → status, for the packages an inventory lists with a `pkg:<type>/` purl (or all when no type is given). */
function statuses(report: Report, purlType?: string): Record<string, string> {
  const rows = purlType
    ? report.packages.filter((p) => p.purl?.startsWith(`pkg:${purlType}/`))
    : report.packages;
  return Object.fromEntries(rows.map((p) => [p.name, p.status]));
}

const canRun =
  canRunBpf('stella signals reachability on real images') &&
  gate('stella signals reachability with containerd', ctrUnavailableReason());

describe.runIf(canRun)('stella signals reachability on evidence of real images', () => {
  const ns = `stella-reach-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'stella-reach-e2e-'));
  const evidence = join(dir, 'evidence');
  const cfg = join(dir, 'stellaops.yaml');
  const pub = join(dir, 'key.pub.pem');
  let images: { debian: Image; node: Image };
  let warmup: BuiltImage;
  const outputs: Record<string, string> = {};

  // Expected, from what each workload runs (see tools/reach-images/build.sh):
  // the Debian one `sh -c 'sleep 1; jq ...; sleep 2'` (busybox, jq and the
  // libraries jq links), the Node one `sh -c 'sleep 1; node /app/index.js; sleep 2'`
  // (node's libraries; index.js requires debug, which requires ms, and is-number).
  const DEBIAN = {
    observed: ['busybox-static', 'jq', 'libc6', 'libjq1', 'libonig5'],
    not_observed: [
      'base-files',
      'bc',
      'less',
      'libgcc-s1',
      'libreadline8',
      'libtinfo6',
      'readline-common',
      'xxd',
    ],
  };
  const NODE_DEBS = { observed: ['busybox-static', 'libc6', 'libgcc-s1', 'libstdc++6'], not_observed: [] };
  const NODE_NPM = { observed: ['debug', 'is-number', 'ms'], not_observed: ['kind-of', 'left-pad'] };
  const expected = (e: { observed: string[]; not_observed: string[] }) =>
    Object.fromEntries([
      ...e.observed.map((n) => [n, 'observed']),
      ...e.not_observed.map((n) => [n, 'not_observed']),
    ]);

  beforeAll(async () => {
    // The binary users get, built from the current sources (nx caches it).
    execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
    // Built once per input hash, cached under .cache/reach-images.
    const built = execFileSync('bash', [join(root, 'tools/reach-images/build.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 900_000,
    });
    images = JSON.parse(built.trim().split('\n').pop()!);
    for (const name of ['debian', 'node']) {
      execFileSync(
        'ctr',
        ['-n', ns, 'image', 'import', join(root, '.cache/reach-images/out', name, 'image.tar')],
        { stdio: 'ignore', timeout: 300_000 },
      );
    }

    warmup = buildImage({ ref: `docker.io/stellaops/reach-warmup:${process.pid}` });
    importImage(warmup, ns);

    expect(stella(['keygen', '--out', join(dir, 'key.pem')]).code).toBe(0);
    writeFileSync(
      cfg,
      [
        'signals:',
        `  output_directory: ${evidence}`,
        '  status_interval_seconds: 1',
        '  signing:',
        `    key_path: ${join(dir, 'key.pem')}`,
        '  filters:',
        '    path_denylist: ["/proc/**", "/sys/**", "/dev/**"]',
        '',
      ].join('\n'),
    );
    const collector = await startCollector(bin, cfg);
    expect(collector.log()).toContain('"collector started"');
    try {
      // A first container right after start can go unattributed on a loaded
      // machine (seen here: every record of it 'unknown'); a busybox one
      // first, not part of what is asserted, so the tested ones are not first.
      const warm = spawnSync(
        'ctr',
        ['-n', ns, 'run', '--rm', warmup.ref, `reach-warmup-${process.pid}`, '/bin/sleep', '1'],
        {
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      expect(warm.status, warm.stderr).toBe(0);
      for (const name of ['debian', 'node'] as const) {
        const r = spawnSync(
          'ctr',
          ['-n', ns, 'run', '--rm', images[name].ref, `reach-${name}-${process.pid}`],
          {
            encoding: 'utf8',
            timeout: 120_000,
          },
        );
        expect(r.status, r.stderr).toBe(0);
        outputs[name] = r.stdout;
      }
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      const code = await collector.stop();
      expect(code, collector.log()).toBe(0);
    }
  }, 1_200_000);

  afterAll(() => {
    for (const name of ['debian', 'node'] as const) {
      if (images?.[name]) spawnSync('ctr', ['-n', ns, 'images', 'rm', images[name].ref], { stdio: 'ignore' });
    }
    if (warmup) spawnSync('ctr', ['-n', ns, 'images', 'rm', warmup.ref], { stdio: 'ignore' });
    spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' });
  });

  function reachability(image: Image, extra: string[] = []): Report {
    const r = stella([
      'reachability',
      image.manifestDigest,
      '--config',
      cfg,
      '--key',
      pub,
      '--json',
      ...extra,
    ]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Report;
  }

  function expectWindow(report: Report): void {
    // The claim's conditions: a closed window from the collector's status, the probes, the losses.
    expect(report.window.source).toBe('collector_status');
    expect(report.window.final_status).toBe(true);
    expect(BigInt(report.window.end_wall_ns ?? '0')).toBeGreaterThan(
      BigInt(report.window.start_wall_ns ?? '0'),
    );
    expect(report.window.probes.length).toBeGreaterThan(0);
    expect(report.window.lost).toMatch(/^\d+$/);
    // Records no image could be tied to are a condition of the window too, and each package
    // they made unknown says so.
    expect(report.window.unattributed_records).toMatch(/^\d+$/);
    expect(Array.isArray(report.window.unattributed_containers)).toBe(true);
  }

  /** Why statuses differ from what the workload did: containers whose records no image was tied to. */
  const unattributed = (report: Report) =>
    `unattributed containers: ${JSON.stringify(report.window.unattributed_containers)}`;

  it('the workloads ran', () => {
    expect(outputs.debian).toContain('reach');
    expect(outputs.node).toContain('is-number(42)=true');
  });

  it("Debian image, inventory from the image's dpkg database in containerd's content store", () => {
    const report = reachability(images.debian);
    expect(report.inventory.source.kind).toBe('image');
    expect(statuses(report, 'deb'), unattributed(report)).toEqual(expected(DEBIAN));
    expectWindow(report);
  });

  it('Debian image, inventory from an SPDX 2.3 document of its root (files as the packages name them)', () => {
    const spdx = join(dir, 'debian.spdx.json');
    writeFileSync(
      spdx,
      execFileSync(
        process.execPath,
        [
          join(root, 'tools/reach-images/spdx-from-dpkg.mjs'),
          join(root, '.cache/reach-images/out/debian/rootfs'),
          'reach-debian',
        ],
        { encoding: 'utf8', maxBuffer: 64 << 20 },
      ),
    );
    const report = reachability(images.debian, ['--sbom', spdx]);
    expect(report.inventory.source.kind).toBe('spdx');
    expect(statuses(report, 'deb'), unattributed(report)).toEqual(expected(DEBIAN));
    expectWindow(report);
  });

  it("Debian image, inventory from cdxgen's CycloneDX (files linked to packages by dependencies[].provides)", () => {
    const report = reachability(images.debian, ['--sbom', join(fixtures, 'reach-debian.cdx.json')]);
    expect(report.inventory.source.kind).toBe('cyclonedx');
    const s = statuses(report, 'deb');
    const binaries = Object.fromEntries(Object.keys(expected(DEBIAN)).map((n) => [n, s[n]]));
    expect(binaries, unattributed(report)).toEqual(expected(DEBIAN));
    // cdxgen also lists each source package (glibc, readline, vim, ...) with no files of its own.
    const sources = Object.entries(s).filter(([n]) => !(n in binaries));
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter(([, st]) => st !== 'unknown')).toEqual([]);
    // ... and says why: no files, not records of unattributed containers.
    const reasons = new Set(
      report.packages.filter((p) => sources.some(([n]) => n === p.name)).map((p) => p.reason),
    );
    expect([...reasons]).toEqual(['no_files']);
    expectWindow(report);
  });

  it("Node image, inventory from the image's dpkg database and node_modules", () => {
    const report = reachability(images.node);
    expect(statuses(report, 'deb'), unattributed(report)).toEqual(expected(NODE_DEBS));
    expect(statuses(report, 'npm'), unattributed(report)).toEqual(expected(NODE_NPM));
    expectWindow(report);
  });

  it("Node image, inventory from cyclonedx-npm's CycloneDX with --sbom-root /app", () => {
    const report = reachability(images.node, [
      '--sbom',
      join(fixtures, 'reach-node-app.cdx.json'),
      '--sbom-root',
      '/app',
    ]);
    expect(report.inventory.source.kind).toBe('cyclonedx');
    expect(statuses(report, 'npm'), unattributed(report)).toEqual(expected(NODE_NPM));
  });

  it('--out: the signed statement verifies with the collector public key (library and plain node:crypto)', () => {
    const out = join(dir, 'node.bundle.json');
    const r = stella([
      'reachability',
      images.node.manifestDigest,
      '--config',
      cfg,
      '--key',
      pub,
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const bundleText = readFileSync(out, 'utf8');
    const statement = verifyStatement(bundleText, readFileSync(pub, 'utf8'));
    expect(statement.subject[0]?.digest.sha256).toBe(images.node.manifestDigest.slice(7));

    // Independently of the library: DSSE PAE over the payload, ECDSA/SHA-256 with the public key.
    const env = JSON.parse(bundleText).dsseEnvelope as {
      payload: string;
      payloadType: string;
      signatures: { sig: string }[];
    };
    const payload = Buffer.from(env.payload, 'base64');
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${Buffer.byteLength(env.payloadType)} ${env.payloadType} ${payload.length} `),
      payload,
    ]);
    const key = createPublicKey(readFileSync(pub, 'utf8'));
    expect(verify('sha256', pae, key, Buffer.from(env.signatures[0]!.sig, 'base64'))).toBe(true);
    const tampered = Buffer.from(pae);
    tampered[tampered.length - 2] = tampered.at(-2)! ^ 1;
    expect(verify('sha256', tampered, key, Buffer.from(env.signatures[0]!.sig, 'base64'))).toBe(false);
    const st = JSON.parse(payload.toString('utf8'));
    expect(st.predicateType).toBe(REACHABILITY_PREDICATE_TYPE);
    expect(statuses(st.predicate as Report, 'npm')).toEqual(expected(NODE_NPM));
    // The predicate of real evidence matches the JSON Schema the package publishes.
    const schema = JSON.parse(
      readFileSync(join(root, 'packages/reachability/schema/reachability-v1.schema.json'), 'utf8'),
    );
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    expect(validate(st.predicate), JSON.stringify(validate.errors)).toBe(true);
  });
});
