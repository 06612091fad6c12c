import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  type CtrContainer,
  ctrUnavailableReason,
  importImage,
  runCtr,
} from '../../../tools/oci-image/ctr.js';

// Issue 14: `stella signals follow` prints records live, through the built
// binary a user runs, against the real kernel.

const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');

beforeAll(() => {
  if (!existsSync(bin)) {
    execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
  }
}, 300_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Open (create) each file in a separate python process: a real workload, not this test process. */
function openFiles(paths: string[]): void {
  const py = `import sys\nfor p in sys.argv[1:]: open(p, 'w').close()`;
  const r = spawnSync('python3', ['-c', py, ...paths], { stdio: 'ignore' });
  expect(r.status).toBe(0);
}

/** Wait until `cond()` holds, checking every 100 ms; fail with `what` after a generous limit. */
async function until(cond: () => boolean, what: string, limitMs = 90_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function capture(c: ChildProcess): { out: () => string; err: () => string; exit: Promise<number | null> } {
  let out = '';
  let err = '';
  c.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  c.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const exit = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  return { out: () => out, err: () => err, exit };
}

const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('stella signals follow: bad filters are refused before tracing', () => {
  it.each([
    [['--type', 'file_opn'], "--type 'file_opn' is not a record type (did you mean 'file_open'?)"],
    [['--image', 'sha256:xyz'], "--image 'sha256:xyz' is not an image digest"],
    [['--path', 'etc/'], "--path 'etc/' is not an absolute path prefix"],
    [['--container', 'a b'], "--container 'a b' is not a container id"],
    [['--format', 'yaml'], "--format 'yaml': expected ndjson or text"],
  ])('%j: exit 2 with the reason and a hint', (args, message) => {
    const r = spawnSync(process.execPath, [bin, 'signals', 'follow', ...args], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`stella: ${message}`);
    expect(r.stderr).toContain('  hint: ');
    expect(r.stdout).toBe('');
    noStack(r.stderr);
  });

  it('--help says that follow never signs', () => {
    const r = spawnSync(process.execPath, [bin, 'signals', 'follow', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Never signs, never writes evidence');
  });
});

describe.runIf(canRunBpf('stella signals follow'))('stella signals follow with the real kernel', () => {
  const base = mkdtempSync(join(tmpdir(), 'stella-follow-'));
  const watched = join(base, 'watched');
  const elsewhere = join(base, 'elsewhere');
  execFileSync('mkdir', ['-p', watched, elsewhere]);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('prints the canonical record of a marker file opened by a workload, and nothing its filters leave out; SIGINT exits 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'stella-follow-cwd-'));
    const c = spawn(
      process.execPath,
      [bin, 'signals', 'follow', '--type', 'file_open', '--path', `${watched}/`, '--format', 'ndjson'],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const io = capture(c);
    try {
      await until(() => io.err().includes('following live records'), 'follow to attach its probes');
      expect(io.err()).toContain('NOT signed and not written to disk');
      const marker = join(watched, `marker-${process.pid}`);
      // Left out by the filters: a path outside the prefix, and the exec of the workload itself.
      openFiles([join(elsewhere, 'not-this-one'), marker]);
      await until(() => io.out().includes(marker), 'the marker record on stdout');
      c.kill('SIGINT');
      expect(await io.exit).toBe(0);
    } finally {
      c.kill('SIGKILL');
    }
    const lines = io
      .out()
      .split('\n')
      .filter((l) => l.length > 0);
    const records = lines.map((l) => JSON.parse(l));
    const mine = records.find((r) => r.path === join(watched, `marker-${process.pid}`));
    expect(mine).toMatchObject({ type: 'file_open', comm: 'python3', schema_version: 1 });
    expect(mine.ret).toBeGreaterThanOrEqual(0);
    // Canonical: keys in RFC 8785 order, no spaces.
    for (const l of lines) expect(l).toBe(JSON.stringify(sortKeys(JSON.parse(l))));
    for (const r of records) {
      expect(r.type).toBe('file_open');
      expect(String(r.path).startsWith(`${watched}/`)).toBe(true);
    }
    expect(io.out()).not.toContain('not-this-one');
    expect(io.out()).not.toContain('process_exec');
    // Nothing signed or written: follow writes no evidence into its working directory.
    expect(readdirSync(cwd)).toEqual([]);
    noStack(io.err());
  }, 180_000);

  it('| head -1 ends follow cleanly (exit 0, no stack) and prints the readable line format', async () => {
    const tag = `head-${process.pid}`;
    const c = spawn(
      'bash',
      [
        '-c',
        // pipefail: the pipeline's status is follow's when follow fails.
        'set -o pipefail; "$0" "$1" signals follow --type file_open --path "$2" --format text | head -1',
        process.execPath,
        bin,
        `${watched}/${tag}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const io = capture(c);
    let exited = false;
    void io.exit.then(() => {
      exited = true;
    });
    try {
      await until(() => io.err().includes('following live records'), 'follow to attach its probes');
      // head exits after the first line; follow notices at its next write: keep opening new files until it is gone.
      for (let i = 0; !exited; i++) {
        if (i > 900) throw new Error('the pipeline did not end after head -1');
        openFiles([`${watched}/${tag}-${i}`]);
        await sleep(100);
      }
      expect(await io.exit).toBe(0);
    } finally {
      c.kill('SIGKILL');
    }
    const out = io.out().split('\n');
    expect(out.filter((l) => l.length > 0)).toHaveLength(1);
    expect(out[0]).toMatch(
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} file_open +python3\\[\\d+\\] \\S+ ${watched}/${tag}-\\d+$`),
    );
    expect(io.err()).not.toContain('internal error');
    expect(io.err()).not.toContain('EPIPE');
    noStack(io.err());
  }, 180_000);
});

const canCtr =
  canRunBpf('stella signals follow --image') &&
  gate('stella signals follow with containerd', ctrUnavailableReason());

describe.runIf(canCtr)('stella signals follow --image with a containerd container', () => {
  const ns = `stella-follow-${process.pid}`;
  let image: BuiltImage;
  let c: CtrContainer | undefined;
  beforeAll(() => {
    image = buildImage({ ref: `docker.io/stellaops/follow-e2e:${process.pid}` });
    importImage(image, ns);
  }, 180_000);
  afterAll(() => {
    c?.stop();
    if (image) spawnSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
    spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' });
  });

  it("keeps the container's records by image digest and leaves out the host's opens of the same path", async () => {
    const marker = `/tmp/follow-image-${process.pid}`;
    const follow = spawn(
      process.execPath,
      [
        bin,
        'signals',
        'follow',
        '--type',
        'file_open',
        '--image',
        image.configDigest.slice(0, 'sha256:'.length + 16),
        '--path',
        marker,
        '--format',
        'ndjson',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const io = capture(follow);
    try {
      await until(() => io.err().includes('following live records'), 'follow to attach its probes');
      c = runCtr({ namespace: ns, image });
      // The same path opened on the host (left out: not that image) and in the container (kept).
      for (let i = 0; !io.out().includes(`"id":"${c.id}"`); i++) {
        if (i > 600) throw new Error('no record of the container on stdout');
        openFiles([`${marker}-host-${i}`]);
        c.exec(['/bin/sh', '-c', `echo x > ${marker}-in-${i}`]);
        await sleep(200);
      }
      follow.kill('SIGTERM');
      expect(await io.exit).toBe(0);
    } finally {
      follow.kill('SIGKILL');
    }
    const records = io
      .out()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l));
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r.type).toBe('file_open');
      expect(r.container).toMatchObject({ image_config_digest: image.configDigest });
      expect(String(r.path)).toMatch(new RegExp(`^${marker}-in-\\d+$`));
    }
    expect(records.some((r) => r.container.id === c!.id)).toBe(true);
    expect(io.out()).not.toContain(`${marker}-host-`);
  }, 300_000);
});

/** The object with its keys sorted recursively (RFC 8785 order for these ASCII keys). */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
