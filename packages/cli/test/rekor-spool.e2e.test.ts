/**
 * Issue 14: Rekor outages are no longer silent. `start` logs one line when
 * log submissions start spooling and one when the log answers again,
 * `status` shows the pending count and the failing log, the stop says how
 * many are still pending, and `stella signals flush` submits them.
 *
 * Rekor here is the loopback STAND-IN of packages/evidence-chain
 * (test/support/rekor-standin.ts: real HTTP, real signed entries, not a real
 * Rekor); the client code under test is the real one (@sigstore/sign's
 * RekorWitness through our spool). The collector runs for real (kernel).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, verifyChain } from '@stellaops/evidence-chain';
import { canRunBpf } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RekorStandIn, startRekorStandIn } from '../../evidence-chain/test/support/rekor-standin.js';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');

beforeAll(() => {
  if (!existsSync(bin)) {
    execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
  }
}, 300_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, limitMs = 120_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Run the CLI without blocking this process: the Rekor stand-in answers from
 * this process's event loop (spawnSync would starve it).
 */
function stella(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  c.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  return new Promise((r) => c.once('close', (code) => r({ code, stdout, stderr })));
}

/** The JSON log lines start wrote to stderr (it is not a terminal here). */
function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

const pendingFiles = (dir: string) =>
  existsSync(join(dir, '.spool'))
    ? readdirSync(join(dir, '.spool')).filter((f) => f.endsWith('.pending.json')).length
    : 0;

describe.runIf(canRunBpf('stella signals start/flush with a Rekor outage'))(
  'a Rekor outage: logged, counted, flushable',
  () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-rekor-spool-'));
    const key = join(base, 'signals-key.pem');
    const pub = join(base, 'signals-key.pub.pem');
    const { publicKeyPem } = generateKeyPair(key, pub);
    let rekor: RekorStandIn;
    let isDown = false;
    beforeAll(async () => {
      rekor = await startRekorStandIn();
    });
    afterAll(async () => {
      if (isDown) await rekor.up();
      await rekor.close();
      rmSync(base, { recursive: true, force: true });
    });

    it('start logs the outage and the recovery, status and the stop count what is pending, flush submits it', async () => {
      const dir = join(base, 'evidence');
      const common = ['--target', dir, '--set', `signing.rekor_url=${rekor.url}`];
      await rekor.down();
      isDown = true;
      let err = '';
      let c: ChildProcess | undefined;
      // Something to record on a quiet host, so every rotation has a chunk to seal (new names: no dedup).
      const busyDir = mkdtempSync(join(base, 'busy-'));
      const workload = spawn(
        'python3',
        [
          '-c',
          'import sys, time\ni = 0\nwhile True:\n  open("%s/f%d" % (sys.argv[1], i % 10000), "w").close(); i += 1; time.sleep(0.05)',
          busyDir,
        ],
        { stdio: 'ignore' },
      );
      try {
        c = spawn(
          process.execPath,
          [
            bin,
            'signals',
            'start',
            ...common,
            '--key',
            key,
            '--set',
            'signing.submit_to_rekor=true',
            // A seal every 3.6 s, so submissions happen while it runs.
            '--set',
            'rotation.max_age_hours=0.001',
            '--set',
            'probes.tls=false',
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        c.stderr?.on('data', (d: Buffer) => {
          err += d.toString('utf8');
        });
        const exit = new Promise<number | null>((r) => c!.once('exit', (code) => r(code)));
        const lines = () => logLines(err);
        const spooling = () => lines().filter((l) => String(l.msg).startsWith('log unreachable:'));
        const reachable = () => lines().filter((l) => String(l.msg).startsWith('log reachable again:'));

        await until(() => spooling().length > 0, 'the spooling line');
        expect(spooling()[0]).toMatchObject({
          level: 'warn',
          witness: `rekor-v1@${rekor.url}`,
          error: expect.stringMatching(/ECONNREFUSED|fetch failed/),
        });
        expect(String(spooling()[0]!.msg)).toContain(join(dir, '.spool'));

        // status names the pending count and the failing log.
        const st = await stella(['signals', 'status', '--target', dir]);
        expect(st.code).toBe(0);
        expect(st.stdout).toMatch(
          new RegExp(
            `log +[1-9]\\d* submissions pending; rekor-v1@${rekor.url.replace(/[.]/g, '\\.')} failing since`,
          ),
        );

        // flush refuses while the collector owns the directory.
        const busy = await stella(['signals', 'flush', ...common, '--key', pub]);
        expect(busy.code).toBe(2);
        expect(busy.stderr).toContain(
          `stella: a collector is running on ${dir}: it submits the pending entries itself`,
        );

        // The log is back: one line says so (and only one per outage).
        await rekor.up();
        isDown = false;
        await until(() => reachable().length > 0, 'the recovery line');
        expect(spooling()).toHaveLength(1);

        // Down again for the stop: what the stop seals stays pending, and the stop says so.
        await rekor.down();
        isDown = true;
        await until(() => spooling().length > 1, 'the second outage line');
        c.kill('SIGTERM');
        expect(await exit).toBe(0);
        // The last line is still 'collector stopped'; the pending count comes just before it.
        expect(lines().at(-1)?.msg).toBe('collector stopped');
        const stopped = lines().find((l) => l.msg === 'collector stopped');
        expect(stopped?.pending_submissions).toBeGreaterThan(0);
        expect(stopped?.pending_submissions).toBe(pendingFiles(dir));
        const summary = lines().find((l) => String(l.msg).includes('log submission(s) still pending'));
        expect(summary?.msg).toBe(
          `${pendingFiles(dir)} log submission(s) still pending in ${join(dir, '.spool')}: 'stella signals flush --target ${dir}' submits them now (the next start also retries them)`,
        );
      } finally {
        c?.kill('SIGKILL');
        workload.kill('SIGKILL');
      }
      expect(err).not.toMatch(/\n\s+at .+:\d+:\d+/);

      // Still down: flush tries each once more, exit 3, nothing lost.
      const left = pendingFiles(dir);
      const failed = await stella(['signals', 'flush', ...common, '--key', pub]);
      expect(failed.code).toBe(3);
      expect(failed.stdout).toContain(`0 logged, ${left} still pending in ${join(dir, '.spool')}`);
      expect(failed.stderr).toContain(
        `stella: ${left} submission(s) to ${rekor.url} failed again; they stay pending`,
      );
      expect(pendingFiles(dir)).toBe(left);

      await rekor.up();
      isDown = false;
      const ok = await stella(['signals', 'flush', ...common, '--key', pub]);
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toContain(`${left} logged, 0 still pending`);
      expect(
        ok.stdout.match(/^logged +chunk-\d+(\.end)?\.sigstore\.json +rekor-v1@\S+ +log index \d+$/gm),
      ).toHaveLength(left);
      expect(pendingFiles(dir)).toBe(0);

      // Every bundle now has its log entry: the chain verifies with the log required.
      const trustedRoot = join(base, 'trusted_root.json');
      rekor.writeTrustedRoot(trustedRoot);
      const report = verifyChain(dir, {
        keys: [publicKeyPem],
        trustedRoot,
        requireTlog: true,
        requireEnd: true,
      });
      expect(report.errors).toEqual([]);

      // Nothing left: a second flush says so.
      const again = await stella(['signals', 'flush', ...common]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('0 logged, 0 still pending');
    }, 300_000);
  },
);
