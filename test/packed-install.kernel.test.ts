import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { canRunBpf } from '@stellaops/testing';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../scripts/packages.js';

// The packed tarballs as a user installs them: a fresh project, no compiler
// on PATH, no libbpf.so.1, then collect() from ESM and CJS against a real
// file open; and `npm install -g` with the installed `stella` collecting a
// chain that verifies. The work is in scripts/packed-install-test.sh (also
// runnable by hand); this puts it in `npm run test:all`, so in CI.
const run = canRunBpf('packed install (no compiler, no libbpf) and collect()');

/** Upper bound of the whole script: build check, pack, install, two collect() runs. */
const BUDGET_MS = 600_000;

describe.runIf(run)('packed packages on a machine without a compiler', () => {
  it(
    'install from the tarballs, collect a file open from ESM and CJS, run the globally installed stella',
    () => {
      const r = spawnSync('bash', [join(repoRoot, 'scripts/packed-install-test.sh')], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: BUDGET_MS,
        killSignal: 'SIGKILL',
      });
      const output = `${r.stdout}\n${r.stderr}`;
      expect(r.error, output).toBeUndefined();
      expect(r.status, output).toBe(0);
      expect(r.stdout.trim().split('\n').at(-1), output).toBe('packed-install: ok');
      // Both module systems saw the marker file opened, through the shipped prebuild.
      expect(r.stderr).toMatch(
        /collect\(\) from \.mjs: file_open of .*marker-mjs\.txt seen, addon from prebuilds\//,
      );
      expect(r.stderr).toMatch(
        /collect\(\) from \.cjs: file_open of .*marker-cjs\.txt seen, addon from prebuilds\//,
      );
      // The server install: `npm install -g` of the tarballs; the installed stella collects a chain that verifies.
      expect(r.stderr).toMatch(
        /npm install -g: stella signals start collected and verify-chain says: VERIFIED/,
      );
    },
    BUDGET_MS + 10_000,
  );
});
