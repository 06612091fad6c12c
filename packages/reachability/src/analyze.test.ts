import { rmSync } from 'node:fs';
import type { EvidenceRecord } from '@stellaops/ndjson';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BIN,
  buildRootfs,
  exec,
  IMAGE,
  OTHER_IMAGE,
  open,
  sha256,
  status,
  wallAt,
} from '../test/support/fixtures.js';
import { analyze } from './analyze.js';
import { inventoryFromRootfs } from './image.js';
import type { Inventory, PackageReport, ReachabilityReport } from './types.js';

const root = buildRootfs();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const inventory = await inventoryFromRootfs(root);

const pkg = (r: ReachabilityReport, name: string) => r.packages.find((p) => p.name === name) as PackageReport;
const statuses = (r: ReachabilityReport) => Object.fromEntries(r.packages.map((p) => [p.name, p.status]));

describe('analyze', () => {
  it('names exactly the packages whose files the image executed, loaded or opened', async () => {
    const records = [
      status(0, 0),
      // `sh -c ls`: the kernel runs /usr/bin/dash behind the /bin/sh symlink.
      exec(10, '/bin/sh', { exe_path: '/usr/bin/dash', exe_digest: `sha256:${sha256(BIN.dash)}` }),
      // the loader maps libc through the /lib symlink.
      open(11, '/lib/x86_64-linux-gnu/libc.so.6', { file_digest: `sha256:${sha256(BIN.libc)}` }),
      exec(12, '/usr/bin/ls', { exe_path: '/usr/bin/ls' }),
      // node requires express: its package.json and index.js are opened.
      open(13, '/app/node_modules/express/package.json'),
      open(14, '/app/node_modules/express/index.js'),
      open(15, '/app/node_modules/express/index.js'),
      // A failed open, a different image, the runtime's set-up: none counts.
      open(16, '/usr/lib/python3/dist-packages/six.py', { ret: -2 }),
      open(17, '/app/node_modules/left-pad/index.js', { image: OTHER_IMAGE }),
      exec(18, '/usr/bin/python3.11', { runtime_setup: true }),
      // A file no package owns.
      open(19, '/etc/hostname'),
      open(20, '/proc/self/status'),
      status(0, 30, { final: true, lost: 2 }),
    ];
    const r = await analyze({ imageDigest: IMAGE, inventory, records });
    expect(statuses(r)).toEqual({
      '@types/node': 'not_observed',
      coreutils: 'observed',
      dash: 'observed',
      debug: 'not_observed',
      express: 'observed',
      'left-pad': 'not_observed',
      libc6: 'observed',
      'no-list': 'unknown',
      six: 'not_observed',
      tzdata: 'not_observed',
      zlib1g: 'not_observed',
    });
    expect(r.summary).toEqual({ observed: 4, not_observed: 6, unknown: 1, unattributed: 0 });
    const dash = pkg(r, 'dash').observed;
    expect(dash?.counts).toEqual({ executed: '1', loaded: '0', opened: '0' });
    // Both the symlink the caller named and the real file are dash's: each is reported.
    expect(dash?.files.map((f) => [f.path, f.access, f.matched_by])).toEqual([
      ['/bin/dash', ['executed'], ['path', 'digest']],
      ['/usr/bin/sh', ['executed'], ['path']],
    ]);
    expect(pkg(r, 'libc6').observed?.files[0]).toMatchObject({
      path: '/lib/x86_64-linux-gnu/libc.so.6',
      access: ['loaded'],
      matched_by: ['path', 'digest'],
      count: '1',
      first_seen_wall_ns: wallAt(11),
      evidence: [{ seq: records[2]?.seq, type: 'file_open' }],
    });
    const express = pkg(r, 'express').observed;
    expect(express?.counts).toEqual({ executed: '0', loaded: '0', opened: '3' });
    expect(express?.first_seen_wall_ns).toBe(wallAt(13));
    expect(express?.last_seen_wall_ns).toBe(wallAt(15));
    expect(r.evidence).toMatchObject({
      kind: 'records',
      records: '13',
      runtime_setup_records: '1',
      containers: ['c1'],
    });
    expect(r.window).toMatchObject({
      start_wall_ns: wallAt(0),
      end_wall_ns: wallAt(30),
      source: 'collector_status',
      lost: '2',
      final_status: true,
    });
    expect(r.window.probes.map((p) => [p.name, p.attached, p.lost])).toEqual([
      ['file_open', true, '2'],
      ['process_exec', true, '0'],
    ]);
    expect(r.unowned_paths).toEqual([{ path: '/etc/hostname', access: ['opened'], count: '1' }]);
  });

  it('matches by SHA-256 where the path does not (a copied binary)', async () => {
    const r = await analyze({
      imageDigest: IMAGE,
      inventory,
      records: [
        exec(1, '/tmp/renamed', { exe_path: '/tmp/renamed', exe_digest: `sha256:${sha256(BIN.ls)}` }),
      ],
    });
    expect(pkg(r, 'coreutils').observed?.files).toMatchObject([{ path: '/bin/ls', matched_by: ['digest'] }]);
  });

  it('takes the window from the records when there is no collector_status, and says so', async () => {
    const r = await analyze({
      imageDigest: IMAGE,
      inventory,
      records: [open(5, '/etc/hostname'), open(9, '/etc/passwd')],
    });
    expect(r.window).toMatchObject({
      source: 'records',
      start_wall_ns: wallAt(5),
      end_wall_ns: wallAt(9),
      probes: [],
      runs: [],
    });
    const none = await analyze({ imageDigest: IMAGE, inventory, records: [] });
    expect(none.window).toMatchObject({ source: 'none', start_wall_ns: null, end_wall_ns: null });
  });

  it('sums the latest status of each collector run; a probe detached in any run is not attached', async () => {
    const r = await analyze({
      imageDigest: IMAGE,
      inventory,
      records: [
        status(0, 10, { lost: 1 }),
        status(0, 20, { lost: 3 }),
        status(100, 150, { lost: 4, attached: false, final: true }),
      ],
    });
    expect(r.window.runs.map((x) => [x.start_wall_ns, x.end_wall_ns, x.final])).toEqual([
      [wallAt(0), wallAt(20), false],
      [wallAt(100), wallAt(150), true],
    ]);
    expect(r.window.lost).toBe('7');
    expect(r.window.probes[0]).toMatchObject({ name: 'file_open', attached: false, lost: '7' });
  });

  it('matches an SBOM inventory through the image symlinks given separately, or usr-merge aliases without them', async () => {
    const sbom: Inventory = {
      source: { kind: 'spdx', spdxVersion: 'SPDX-2.3' },
      packages: [{ ref: 'pkg:deb/debian/dash', name: 'dash', ecosystem: 'deb', files: ['/bin/dash'] }],
    };
    const records = [exec(1, '/usr/bin/dash', { exe_path: '/usr/bin/dash' })];
    const withLinks = await analyze({
      imageDigest: IMAGE,
      inventory: sbom,
      records,
      symlinks: { '/bin': 'usr/bin' },
    });
    expect(withLinks.packages[0]?.status).toBe('observed');
    const guessed = await analyze({ imageDigest: IMAGE, inventory: sbom, records });
    expect(guessed.packages[0]?.status).toBe('observed');
    // With the image's real symlinks, /bin is not /usr/bin, so no alias applies.
    const notMerged = await analyze({
      imageDigest: IMAGE,
      inventory: sbom,
      records,
      symlinks: { '/x': 'y' },
    });
    expect(notMerged.packages[0]?.status).toBe('not_observed');
  });

  it('lets a package own a whole directory (npm package directories from an SBOM), without nested node_modules', async () => {
    const inv: Inventory = {
      source: { kind: 'cyclonedx', specVersion: '1.6' },
      packages: [
        {
          ref: 'a',
          name: 'express',
          ecosystem: 'npm',
          files: [],
          directories: ['/app/node_modules/express'],
        },
        {
          ref: 'b',
          name: 'debug',
          ecosystem: 'npm',
          files: [],
          directories: ['/app/node_modules/express/node_modules/debug'],
        },
      ],
    };
    const r = await analyze({
      imageDigest: IMAGE,
      inventory: inv,
      records: [open(1, '/app/node_modules/express/node_modules/debug/src/index.js')],
    });
    expect(statuses(r)).toEqual({ debug: 'observed', express: 'not_observed' });
  });

  it('refuses unusable options with what to fix', async () => {
    await expect(analyze({ imageDigest: 'sha256:abc', inventory, records: [] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(analyze({ imageDigest: IMAGE, inventory })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('records or chainDir'),
    });
    await expect(analyze({ imageDigest: IMAGE, inventory, chainDir: '/tmp' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('publicKeys'),
    });
  });

  it('reads records from an async source (collect() output)', async () => {
    async function* gen() {
      yield exec(1, '/usr/bin/ls', { exe_path: '/usr/bin/ls' });
    }
    const r = await analyze({ imageDigest: IMAGE, inventory, records: gen() });
    expect(pkg(r, 'coreutils').status).toBe('observed');
  });
});

describe('unattributed records: only container records that could have made a package observed', () => {
  const unknown = { status: 'unknown' as const };
  const inCgroup = { cgroup_path: '/kubepods/pod1/c2', status: 'unknown' as const };
  // As the collector writes them on a busy host: TCP state changes in softirq context (cgroup 0,
  // a container of status unknown with no id or cgroup), and exits, which name no file.
  const tcp = {
    ...exec(1, '/x'),
    type: 'tcp_state',
    cgroup_id: '0',
    container: unknown,
    event: 'state_change',
    old_state: 'ESTABLISHED',
    new_state: 'CLOSE_WAIT',
  } as unknown as EvidenceRecord;
  const exit = {
    ...exec(2, '/x'),
    type: 'process_exit',
    container: inCgroup,
    exit_code: 0,
  } as unknown as EvidenceRecord;

  it('does not count host records, exits or failed opens, and warns of none', async () => {
    const r = await analyze({
      imageDigest: IMAGE,
      inventory,
      records: [
        status(0, 0),
        exec(1, '/usr/bin/ls', { exe_path: '/usr/bin/ls' }),
        tcp,
        exit,
        open(3, '/usr/lib/x86_64-linux-gnu/libz.so.1', { container: inCgroup, ret: -2 }),
        // A host process in cgroup 0 opening a package file is not a container's record.
        open(4, '/usr/lib/x86_64-linux-gnu/libz.so.1', { container: unknown, cgroup_id: '0' }),
        open(5, '/usr/lib/x86_64-linux-gnu/libz.so.1', { container: unknown }),
        status(0, 10, { final: true }),
      ],
    });
    expect(r.window.unattributed_records).toBe('0');
    expect(r.window.unattributed_containers).toEqual([]);
    expect(pkg(r, 'zlib1g').status).toBe('not_observed');
  });

  it('counts a container record that names a path, touched package or not', async () => {
    const r = await analyze({
      imageDigest: IMAGE,
      inventory,
      records: [exec(1, '/usr/bin/ls'), tcp, exit, open(3, '/etc/hostname', { container: inCgroup })],
    });
    expect(r.window.unattributed_records).toBe('1');
    expect(r.window.unattributed_containers).toMatchObject([
      { cgroup_path: '/kubepods/pod1/c2', records: '1' },
    ]);
  });
});
