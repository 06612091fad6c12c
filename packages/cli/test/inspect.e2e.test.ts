import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerInfo, EvidenceRecord, FileOpenRecord, ProcessExecRecord } from '@stellaops/ndjson';
import { beforeAll, describe, expect, it } from 'vitest';
import { openTestChain } from './support/signed-chain.js';

// `stella signals inspect` through the built binary, on chains written and
// signed by the real chunk writer (issue 12 and 14 inspect items).
const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');

beforeAll(() => {
  if (!existsSync(bin)) {
    execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
  }
}, 300_000);

function stella(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, 'signals', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const hex = (c: string, n = 64) => c.repeat(n).slice(0, n);
// Two images whose digests share the prefix 3f1c: a prefix that short is ambiguous.
const CTR = {
  manifest: `sha256:3f1c${hex('1', 60)}`,
  config: `sha256:9d2e${hex('2', 60)}`,
  ref: 'docker.io/stellaops/app:1.2',
};
const OTHER = { manifest: `sha256:3f1c${hex('7', 60)}`, ref: 'ghcr.io/acme/tool:v3' };
const DOCKER_ID = hex('d');
const CRIO_ID = hex('c');

let seq = 0n;
function open(path: string, container: ContainerInfo, comm = 'app'): FileOpenRecord {
  const s = seq++;
  return {
    schema_version: 1,
    type: 'file_open',
    seq: s.toString(),
    mono_ns: (1_000n + s).toString(),
    wall_ns: (1_795_000_000_000_000_000n + s).toString(),
    host_id: 'h',
    pid: 10,
    tid: 10,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm,
    cgroup_id: '4242',
    container,
    path,
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0,
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
  };
}

function exec(filename: string, argv: string[], container: ContainerInfo, comm: string): ProcessExecRecord {
  const {
    path: _p,
    path_resolution: _r,
    path_truncated: _t,
    flags: _f,
    mode: _m,
    dirfd: _d,
    syscall: _s,
    ...base
  } = open('/x', container, comm);
  return {
    ...base,
    type: 'process_exec',
    filename,
    argv,
    argv_truncated: false,
    exe_dev: '66305',
    exe_ino: '1837465',
    ret: 0,
  };
}

const ctr: ContainerInfo = {
  id: 'web-1',
  runtime: 'containerd',
  image_ref: CTR.ref,
  image_manifest_digest: CTR.manifest,
  image_config_digest: CTR.config,
  status: 'resolved',
};
// The same image run by docker from a loaded archive: RepoDigests is empty, so no manifest digest.
const docker: ContainerInfo = {
  id: DOCKER_ID,
  runtime: 'docker',
  image_ref: 'stellaops/app:1.2',
  image_config_digest: CTR.config,
  status: 'resolved',
};
// Written by a collector before the runtime was spelled "cri-o".
const crio: ContainerInfo = {
  id: CRIO_ID,
  runtime: 'crio',
  image_ref: OTHER.ref,
  image_manifest_digest: OTHER.manifest,
  status: 'resolved',
};

/** A closed chain: the containerd, docker and CRI-O containers above, each opening a file. */
async function chain(more: () => EvidenceRecord[] = () => []) {
  const c = await openTestChain('stella-inspect-e2e-');
  for (const r of [
    open('/srv/app/config.yaml', ctr),
    open('/srv/app/config.yaml', docker),
    open('/srv/app/docker-only', docker),
    open('/usr/bin/tool', crio),
    ...more(),
  ])
    c.append(r);
  await c.writer.close();
  return { dir: c.dir, key: c.publicKeyPath, privateKey: c.keyPath };
}

describe('stella signals inspect --list-images', () => {
  it('lists every image with its reference, digests, runtimes, containers and records', async () => {
    const { dir, key } = await chain();
    const r = stella(['inspect', '--list-images', '--target', dir, '--key', key, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const l = JSON.parse(r.stdout);
    expect(l.images).toEqual([
      {
        imageRef: CTR.ref,
        manifestDigest: CTR.manifest,
        configDigest: CTR.config,
        runtimes: ['containerd'],
        containers: 1,
        records: 1,
        window: expect.any(Object),
      },
      {
        imageRef: OTHER.ref,
        manifestDigest: OTHER.manifest,
        runtimes: ['cri-o'],
        containers: 1,
        records: 1,
        window: expect.any(Object),
      },
      {
        imageRef: 'stellaops/app:1.2',
        configDigest: CTR.config,
        noManifestDigest: expect.stringContaining('no manifest digest from docker'),
        runtimes: ['docker'],
        containers: 1,
        records: 2,
        window: expect.any(Object),
      },
    ]);
    const text = stella(['inspect', '--list-images', '--target', dir, '--key', key]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      '    manifest none: no manifest digest from docker (it has none for an image it loaded or built: RepoDigests is empty); inspect it by config digest or reference',
    );
    expect(text.stdout).toContain('    1 container (cri-o), 1 records');
  });

  it('reads the configuration where start does: the file STELLA_CONFIG names', async () => {
    const { dir, privateKey } = await chain();
    const cfg = join(dir, '..', `${basename(dir)}.yaml`);
    writeFileSync(cfg, `signals:\n  output_directory: ${dir}\n  signing:\n    key_path: ${privateKey}\n`);
    const r = stella(['inspect', '--list-images'], { STELLA_CONFIG: cfg });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`images in ${dir} (3):`);
  });

  it('refuses an IMAGE together with --list-images, and neither; exit 2', async () => {
    const { dir, key } = await chain();
    const both = stella(['inspect', CTR.manifest, '--list-images', '--target', dir, '--key', key]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give an IMAGE or --list-images, not both');
    const none = stella(['inspect', '--target', dir, '--key', key]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('missing IMAGE');
  });
});

describe('stella signals inspect by digest prefix and by reference', () => {
  it('a unique prefix (sha256:… or bare hex) resolves to the full digest', async () => {
    const { dir, key } = await chain();
    for (const prefix of [
      CTR.config.slice(0, 'sha256:'.length + 4),
      CTR.config.slice('sha256:'.length, 'sha256:'.length + 8),
    ]) {
      const r = stella(['inspect', prefix, '--target', dir, '--key', key, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s.digest).toBe(CTR.config);
      expect(s.matchedAs).toEqual(['config']);
      expect(s.containers.map((c: { id: string }) => c.id).sort()).toEqual([DOCKER_ID, 'web-1']);
    }
  });

  it('an ambiguous prefix exits 2 naming every digest it matches', async () => {
    const { dir, key } = await chain();
    const r = stella(['inspect', 'sha256:3f1c', '--target', dir, '--key', key]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "digest prefix 'sha256:3f1c' is ambiguous: it matches 2 digests in this evidence:",
    );
    expect(r.stderr).toContain(`${CTR.manifest} (manifest digest of ${CTR.ref})`);
    expect(r.stderr).toContain(`${OTHER.manifest} (manifest digest of ${OTHER.ref})`);
    expect(r.stderr).toContain('give more digits');
    expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  });

  it('a reference matches however the runtime spelled it (docker.io/, no registry), and an untagged one means :latest', async () => {
    const { dir, key } = await chain();
    const r = stella(['inspect', 'stellaops/app:1.2', '--target', dir, '--key', key, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.imageRef).toBe('docker.io/stellaops/app:1.2');
    expect(s.matchedAs).toEqual(['ref']);
    expect(s.containers.map((c: { runtime: string }) => c.runtime).sort()).toEqual(['containerd', 'docker']);
    expect(s.files.map((f: { path: string }) => f.path)).toEqual([
      '/srv/app/config.yaml',
      '/srv/app/docker-only',
    ]);
    const latest = stella(['inspect', 'stellaops/app', '--target', dir, '--key', key]);
    expect(latest.code).toBe(1);
    expect(latest.stderr).toContain('a reference without a tag means :latest');
  });

  it('refuses an argument that is neither a digest nor a reference; exit 2', async () => {
    const { dir, key } = await chain();
    for (const bad of ['sha256:XYZ', 'Not/An/Image']) {
      const r = stella(['inspect', bad, '--target', dir, '--key', key]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`'${bad}' is`);
      expect(r.stderr).toContain('a unique digest prefix');
    }
  });
});

describe('stella signals inspect shows the file the kernel ran', () => {
  it('names the real binary behind /proc/self/exe and its digest, for the SBOM', async () => {
    const digest = `sha256:${hex('5')}`;
    const { dir, key } = await chain(() => [
      {
        ...exec('/proc/self/exe', ['cat', '/etc/hosts'], ctr, 'cat'),
        exe_path: '/bin/busybox',
        exe_digest: digest,
      },
    ]);
    const r = stella(['inspect', CTR.manifest, '--target', dir, '--key', key]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`  /proc/self/exe (runs /bin/busybox ${digest})  [cat /etc/hosts] x1`);
  });
});

describe('stella signals inspect and containers without a manifest digest', () => {
  it('by manifest digest, names the docker container of the same config digest and how to query it', async () => {
    const { dir, key } = await chain();
    const r = stella(['inspect', CTR.manifest, '--target', dir, '--key', key]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('also ran without a manifest digest (not matched, not counted above):');
    expect(r.stdout).toContain(
      `  container ${DOCKER_ID.slice(0, 12)} docker: no manifest digest from docker (it has none for an image it loaded or built: RepoDigests is empty); 2 records; query by config digest ${CTR.config} or image ref stellaops/app:1.2`,
    );
    const j = JSON.parse(stella(['inspect', CTR.manifest, '--target', dir, '--key', key, '--json']).stdout);
    expect(j.records).toBe(1);
    expect(j.withoutManifestDigest).toEqual([
      {
        id: DOCKER_ID,
        runtime: 'docker',
        imageRef: 'stellaops/app:1.2',
        configDigest: CTR.config,
        records: 2,
      },
    ]);
  });

  it('a manifest digest that matches nothing says which containers have none; exit 1', async () => {
    const { dir, key } = await chain();
    const r = stella(['inspect', `sha256:${hex('e')}`, '--target', dir, '--key', key]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no verified evidence');
    expect(r.stderr).toContain(
      '1 container (docker) in it have no manifest digest and cannot match one: query them by config digest or image reference',
    );
  });
});

describe('stella signals inspect never lists the runtime set-up as the image', () => {
  it("sets aside runc's copy of itself in dockerd's exec root, wherever --exec-root put it", async () => {
    const copy = `/srv/dockerd/exec/runtime-runc/moby/${DOCKER_ID}/runc.qnVNrK`;
    const { dir, key } = await chain(() => [open(copy, docker, 'exe')]);
    const s = JSON.parse(stella(['inspect', CTR.config, '--target', dir, '--key', key, '--json']).stdout);
    expect(s.files.map((f: { path: string }) => f.path)).toEqual([
      '/srv/app/config.yaml',
      '/srv/app/docker-only',
    ]);
    expect(s.runtimeSetup.files.map((f: { path: string }) => f.path)).toEqual([copy]);
  });

  it('sets aside records the collector marked runtime_setup, whatever their comm', async () => {
    const { dir, key } = await chain(() => [
      {
        ...open('/run/containerd/io.containerd.runtime.v2.task/default/other/rootfs/etc', ctr, 'setup'),
        runtime_setup: true,
      },
    ]);
    const s = JSON.parse(stella(['inspect', CTR.manifest, '--target', dir, '--key', key, '--json']).stdout);
    expect(s.files.map((f: { path: string }) => f.path)).toEqual(['/srv/app/config.yaml']);
    expect(s.runtimeSetup.records).toBe(1);
  });

  it("keeps runc init's host paths out of the image's files, under their own heading", async () => {
    const bundle = '/run/containerd/io.containerd.runtime.v2.task/default/web-1/rootfs';
    const { dir, key } = await chain(() => [
      exec('/dev/fd/6', ['runc', 'init'], ctr, 'runc'),
      open('/lib/x86_64-linux-gnu/libseccomp.so.2', ctr, 'runc'),
      open(`${bundle}/dev/shm`, ctr, 'runc:[2:INIT]'),
      // runc's sealed copy of itself, opened by a process named after /proc/self/exe.
      open('/run/containerd/runc/default/web-1/runc.Ab12Cd', ctr, 'exe'),
      exec('/bin/server', ['/bin/server', '--port', '80'], ctr, 'server'),
    ]);
    const r = stella(['inspect', CTR.manifest, '--target', dir, '--key', key, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.files.map((f: { path: string }) => f.path)).toEqual(['/srv/app/config.yaml']);
    expect(s.executables.map((e: { filename: string }) => e.filename)).toEqual(['/bin/server']);
    expect(s.runtimeSetup.records).toBe(4);
    expect(s.runtimeSetup.files.map((f: { path: string }) => f.path)).toEqual([
      '/lib/x86_64-linux-gnu/libseccomp.so.2',
      `${bundle}/dev/shm`,
      '/run/containerd/runc/default/web-1/runc.Ab12Cd',
    ]);
    const text = stella(['inspect', CTR.manifest, '--target', dir, '--key', key]).stdout;
    const [image, setup] = text.split('outside the container root');
    expect(image).not.toContain('/run/containerd/');
    expect(image).not.toContain('libseccomp');
    expect(setup).toContain(`${bundle}/dev/shm`);
    expect(setup).toContain('exec /dev/fd/6  [runc init] x1');
  });
});
