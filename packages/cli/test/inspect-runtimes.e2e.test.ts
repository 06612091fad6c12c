import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  ctrUnavailableReason,
  importImage,
} from '../../../tools/oci-image/ctr.js';
import { type Daemon, dockerdUnavailableReason, startDockerd } from '../../../tools/oci-image/daemons.js';

// The real collector, a private dockerd on a socket at a non-default path
// (named by the runtimes.docker.socket key) and containerd, running one
// image: inspect must say which containers have no manifest digest, list the
// image both ways, and keep runc's set-up out of the image's files.
const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');

function stella(args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'signals', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const canRun =
  canRunBpf('stella inspect with real runtimes') &&
  gate('stella inspect with containerd', ctrUnavailableReason()) &&
  gate('stella inspect with dockerd', dockerdUnavailableReason());

describe.runIf(canRun)('stella signals inspect on evidence of real docker and containerd containers', () => {
  const ns = `stella-inspect-${process.pid}`;
  const tag = `stellaops/inspect-e2e:${process.pid}`;
  let image: BuiltImage;
  let dockerd: Daemon;

  beforeAll(async () => {
    if (!existsSync(bin)) {
      execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
    }
    image = buildImage({ ref: `docker.io/${tag}` });
    importImage(image, ns);
    dockerd = await startDockerd();
    // Loaded, never pulled: docker has no repo digest for it (RepoDigests: []).
    dockerd.cli(['load', '-i', image.tar]);
  }, 300_000);

  afterAll(async () => {
    await dockerd?.stop();
    spawnSync('ctr', ['-n', ns, 'images', 'rm', `docker.io/${tag}`], { stdio: 'ignore' });
    if (image) rmSync(dirname(image.tar), { recursive: true, force: true });
  }, 120_000);

  it('attributes docker through runtimes.docker.socket, and inspect says which containers have no manifest digest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-inspect-rt-'));
    const evidence = join(dir, 'evidence');
    expect(stella(['keygen', '--out', join(dir, 'key.pem')]).code).toBe(0);
    const cfg = join(dir, 'stellaops.yaml');
    writeFileSync(
      cfg,
      [
        'signals:',
        `  output_directory: ${evidence}`,
        '  status_interval_seconds: 1',
        '  signing:',
        `    key_path: ${join(dir, 'key.pem')}`,
        '  filters:',
        '    path_denylist: ["/proc/**", "/sys/**"]',
        '  runtimes:',
        '    docker:',
        `      socket: ${dockerd.socket}`,
        '',
      ].join('\n'),
    );
    const child: ChildProcess = spawn(process.execPath, [bin, 'signals', 'start', '--config', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 600 && !log.includes('"collector started"') && child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(log).toContain('"collector started"');

    const marker = `/tmp/inspect-marker-${process.pid}`;
    const workload = ['/bin/sh', '-c', `sleep 1; echo x > ${marker}; cat ${marker}; sleep 2`];
    const dockerId = dockerd.cli(['run', '-d', '--network', 'none', tag, ...workload]);
    const ctrId = `inspect-${process.pid}`;
    const ctr = spawnSync('ctr', ['-n', ns, 'run', '--rm', `docker.io/${tag}`, ctrId, ...workload], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(ctr.status, ctr.stderr).toBe(0);
    expect(dockerd.cli(['wait', dockerId])).toBe('0');
    await new Promise((r) => setTimeout(r, 2000));
    child.kill('SIGTERM');
    expect(await exited, log).toBe(0);
    const key = join(dir, 'key.pub.pem');
    const args = ['--config', cfg, '--key', key, '--json'];

    const list = stella(['inspect', '--list-images', ...args]);
    expect(list.code, list.stderr).toBe(0);
    const images = JSON.parse(list.stdout).images as Array<Record<string, unknown>>;
    expect(images).toContainEqual(
      expect.objectContaining({
        imageRef: `docker.io/${tag}`,
        manifestDigest: image.manifestDigest,
        configDigest: image.configDigest,
        runtimes: ['containerd'],
      }),
    );
    expect(images).toContainEqual(
      expect.objectContaining({
        imageRef: tag,
        configDigest: image.configDigest,
        noManifestDigest: expect.stringContaining('no manifest digest from docker'),
        runtimes: ['docker'],
      }),
    );

    // By manifest digest: the ctr container; the docker one is named, with how to query it.
    const byManifest = stella(['inspect', image.manifestDigest, ...args]);
    expect(byManifest.code, byManifest.stderr).toBe(0);
    const m = JSON.parse(byManifest.stdout);
    expect(m.containers.map((c: { id: string }) => c.id)).toEqual([ctrId]);
    expect(m.withoutManifestDigest).toEqual([
      expect.objectContaining({ id: dockerId, runtime: 'docker', configDigest: image.configDigest }),
    ]);
    const text = stella(['inspect', image.manifestDigest, '--config', cfg, '--key', key]).stdout;
    expect(text).toContain(`container ${dockerId.slice(0, 12)} docker: no manifest digest from docker`);
    expect(text).toContain(`query by config digest ${image.configDigest} or image ref ${tag}`);

    // By a config digest prefix: both containers; the image's files are its own, runc's set-up apart.
    const byConfig = stella(['inspect', image.configDigest.slice(7, 19), ...args]);
    expect(byConfig.code, byConfig.stderr).toBe(0);
    const c = JSON.parse(byConfig.stdout);
    expect(c.digest).toBe(image.configDigest);
    expect(c.containers.map((x: { id: string }) => x.id).sort()).toEqual([ctrId, dockerId].sort());
    const files = c.files.map((f: { path: string }) => f.path) as string[];
    expect(files).toContain(marker);
    expect(files.filter((p) => /^\/(run|var)\/|overlay2|stella-dockerd/.test(p))).toEqual([]);
    expect(c.runtimeSetup.files.map((f: { path: string }) => f.path)).toContainEqual(
      expect.stringMatching(
        new RegExp(`^/run/containerd/io\\.containerd\\.runtime\\.v2\\.task/${ns}/${ctrId}/`),
      ),
    );
  }, 300_000);
});
