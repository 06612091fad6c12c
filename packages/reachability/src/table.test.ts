import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, buildRootfs, exec, IMAGE, open, sha256, status } from '../test/support/fixtures.js';
import { analyze } from './analyze.js';
import { inventoryFromRootfs } from './image.js';
import { formatTable } from './table.js';

const root = buildRootfs();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const inventory = await inventoryFromRootfs(root);

describe('formatTable', () => {
  it('states the window and its conditions before the packages, observed first', async () => {
    const r = await analyze({
      imageDigest: IMAGE,
      inventory,
      records: [
        status(0, 0),
        exec(10, '/bin/sh', { exe_path: '/usr/bin/dash', exe_digest: `sha256:${sha256(BIN.dash)}` }),
        open(11, '/app/node_modules/express/index.js'),
        status(0, 90_000, { final: true, lost: 3, attached: true }),
      ],
    });
    const t = formatTable(r);
    const lines = t.split('\n');
    expect(t.endsWith('\n')).toBe(true);
    expect(t).toContain(`image     ${IMAGE}`);
    expect(t).toMatch(
      /window {4}2025-10-09T08:53:20\.000Z \.\. 2025-10-09T08:54:50\.000Z \(90\.0 s\), from collector_status/,
    );
    expect(t).toContain('probes    file_open, process_exec');
    expect(t).toContain('lost      3 events');
    expect(t).toContain('unattrib  0 records of containers not tied to an image');
    expect(t).toContain('not a verdict');
    const header = lines.findIndex((l) => l.startsWith('STATUS'));
    expect(lines[header + 1]).toMatch(/^observed\s+dash\s+0\.5\.12-2\s+deb\s+exec 1: \/bin\/dash \+1 more$/);
    expect(lines[header + 2]).toMatch(
      /^observed\s+express\s+4\.19\.2\s+npm\s+open 1: \/app\/node_modules\/express\/index\.js$/,
    );
    expect(lines.find((l) => /^not observed\s+zlib1g/.test(l))).toMatch(/2 files, none touched$/);
    expect(lines.find((l) => /^unknown\s+no-list/.test(l))).toMatch(/no files known/);
    expect(t).toContain('2 observed, 8 not observed, 1 unknown');
  });

  it('states records no image could be tied to next to the losses, and the packages they touched as unknown', async () => {
    const lost = { cgroup_path: '/k8s/pod-1/web', status: 'unknown' as const };
    const t = formatTable(
      await analyze({
        imageDigest: IMAGE,
        inventory,
        records: [
          status(0, 0),
          open(5, '/etc/hostname'),
          exec(10, '/usr/bin/ls', { exe_path: '/usr/bin/ls', container: lost }),
          open(11, '/etc/passwd', { container: lost }),
          status(0, 20, { final: true }),
        ],
      }),
    );
    expect(t).toContain(
      "unattrib  2 records of containers not tied to an image (/k8s/pod-1/web 2): any may have been this image's",
    );
    expect(t).toContain('nor did any of the 2 records no image could be tied to');
    expect(t.split('\n').find((l) => /^unknown\s+coreutils/.test(l))).toMatch(
      /unattributed records: exec 1: \/bin\/ls$/,
    );
    expect(t).toContain('0 observed, 9 not observed, 2 unknown (1 touched by unattributed records)');
  });

  it('says so when the evidence has no collector_status: probes and losses cannot be stated', async () => {
    const t = formatTable(
      await analyze({ imageDigest: IMAGE, inventory, records: [open(1, '/etc/hostname')] }),
    );
    expect(t).toContain('from records');
    expect(t).toContain('no collector_status records');
  });
});
