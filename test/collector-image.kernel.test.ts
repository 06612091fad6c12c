import { execFileSync, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { canRunBpf, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { repoRoot } from '../scripts/packages.js';
import { type BuiltImage, buildImage, ctrUnavailableReason, importImage } from '../tools/oci-image/ctr.js';
import { capBit, capMask, ctrRunOfDaemonSet } from './daemonset-ctr.js';

// The collector's own image (deploy/image/build.sh), run under containerd
// the way deploy/kubernetes/daemonset.yaml runs it (test/daemonset-ctr.ts
// reads the manifest), collecting a host process's and a busybox
// container's file opens; stopped with SIGTERM; checked on the host.

const daemonSet = parse(readFileSync(join(repoRoot, 'deploy/kubernetes/daemonset.yaml'), 'utf8'));
const configMap = parse(readFileSync(join(repoRoot, 'deploy/kubernetes/configmap.yaml'), 'utf8'));
const cliVersion = JSON.parse(readFileSync(join(repoRoot, 'packages/cli/package.json'), 'utf8')).version;

/** A Docker-style short reference with the registry and library parts containerd adds. */
const normalizeRef = (ref: string) => (/^[^/]+[.:][^/]*\//.test(ref) ? ref : `docker.io/${ref}`);

describe('the DaemonSet names the collector image', () => {
  it('the image of the version being built (deploy/image/build.sh tags docker.io/stellaops/signals:<cli version>)', () => {
    const image = daemonSet.spec.template.spec.containers[0].image;
    expect(normalizeRef(image)).toBe(`docker.io/stellaops/signals:${cliVersion}`);
  });
});

/** The image config (ENTRYPOINT, CMD, …) from the archive build.sh wrote. */
function imageConfig(image: BuiltImage): { config: { Entrypoint: string[]; Cmd: string[] } } {
  const blob = `blobs/sha256/${image.configDigest.replace(/^sha256:/, '')}`;
  return JSON.parse(execFileSync('tar', ['-xOf', image.tar, `./${blob}`], { encoding: 'utf8' }));
}

const what = 'collector image under containerd';
const run = `${process.pid}`;
/** Upper bound of deploy/image/build.sh (build, pack, npm install, layer) on a loaded 2-core VM. */
const BUILD_MS = 900_000;

describe.runIf(canRunBpf(what) && gate(`${what}: ctr`, ctrUnavailableReason()))(what, () => {
  const ns = `stella-image-${run}`;
  const collectorId = `stella-collector-${run}`;
  const workloadId = `stella-workload-${run}`;
  const base = mkdtempSync('/tmp/stella-image-test-');
  const markers = join(base, 'markers');
  const hostMarker = join(markers, 'host-marker');
  const ctrMarker = join(markers, 'ctr-marker');
  const evidence = join(base, 'evidence');
  let collector: BuiltImage;
  let busybox: BuiltImage;
  let hostCat = 0;
  let records: Record<string, unknown>[] = [];
  let log = '';
  let spec: ReturnType<typeof ctrRunOfDaemonSet>;
  let collectorPid = 0;
  let collectorPidNs = '';
  let collectorCaps = 0n;

  const ctr = (...args: string[]) => spawnSync('ctr', ['-n', ns, ...args], { encoding: 'utf8' });
  const taskRow = (id: string) =>
    ctr('task', 'ls')
      .stdout.split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((cols) => cols[0] === id);

  beforeAll(async () => {
    // Built once per input set: .cache/collector-image/out is reused while
    // the packed tarballs, node, the .debs and the scripts are unchanged.
    const out = join(repoRoot, '.cache/collector-image/out');
    execFileSync('bash', [join(repoRoot, 'deploy/image/build.sh'), out], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: BUILD_MS,
    });
    const meta = JSON.parse(readFileSync(join(out, 'image.json'), 'utf8'));
    collector = { tar: join(out, 'image.tar'), ...meta };
    importImage(collector, ns);
    busybox = buildImage({ ref: `docker.io/stellaops/busybox:image-test-${run}` });
    importImage(busybox, ns);

    // What the kubelet would provide: the ConfigMap's stellaops.yaml (with
    // an allow-list, so a loaded shared machine's every open is not kept),
    // the key Secret, and a fresh evidence directory for the hostPath.
    mkdirSync(markers, { recursive: true });
    const config = parse(configMap.data['stellaops.yaml']);
    config.signals.filters.path_allowlist = [`${markers}/**`];
    mkdirSync(join(base, 'config'));
    writeFileSync(join(base, 'config/stellaops.yaml'), stringify(config));
    mkdirSync(join(base, 'secret'));
    execFileSync(
      process.execPath,
      [
        join(repoRoot, 'packages/cli/bin/stella.js'),
        'signals',
        'keygen',
        '--out',
        join(base, 'secret/signals-key.pem'),
      ],
      { stdio: 'ignore' },
    );
    spec = ctrRunOfDaemonSet(daemonSet, {
      configMaps: { 'stella-signals-config': join(base, 'config') },
      secrets: { 'stella-signals-key': join(base, 'secret') },
      hostPathOverrides: { '/var/lib/stellaops/evidence': evidence },
      imageEntrypoint: imageConfig(collector).config.Entrypoint,
    });
    mkdirSync(evidence, { mode: 0o750 });
    if (spec.notGrantable.length > 0) {
      process.stderr.write(
        `[${what}] not in this host's bounding set, not granted: ${spec.notGrantable.join(', ')}\n`,
      );
    }

    const logFile = join(base, 'collector.log');
    execFileSync(
      'ctr',
      [
        '-n',
        ns,
        'run',
        '-d',
        '--log-uri',
        `file://${logFile}`,
        ...spec.flags,
        collector.ref,
        collectorId,
        ...spec.args,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const started = Date.now();
    for (;;) {
      log = readFileSync(logFile, 'utf8');
      if (log.includes('"msg":"collector started"')) break;
      if (taskRow(collectorId)?.[2] === 'STOPPED')
        throw new Error(`the collector container stopped:\n${log}`);
      if (Date.now() - started > 180_000) throw new Error(`the collector did not start in 180 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    collectorPid = Number(taskRow(collectorId)?.[1] ?? 0);
    collectorPidNs = readlinkSync(`/proc/${collectorPid}/ns/pid`);
    collectorCaps = capMask(collectorPid, 'CapEff');

    // The workload: a host process and a container, each opening its marker.
    writeFileSync(hostMarker, 'host\n');
    const cat = spawnSync('cat', [hostMarker]);
    expect(cat.status).toBe(0);
    hostCat = cat.pid ?? 0;
    const wl = ctr(
      'run',
      '--rm',
      busybox.ref,
      workloadId,
      '/bin/sh',
      '-c',
      `mkdir -p ${markers} && echo ctr > ${ctrMarker} && cat ${ctrMarker} && sleep 1`,
    );
    expect(wl.status, wl.stderr).toBe(0);

    // SIGTERM, as the kubelet stops a pod; the collector drains and seals.
    expect(ctr('task', 'kill', '-s', 'SIGTERM', collectorId).status).toBe(0);
    const stopping = Date.now();
    while (taskRow(collectorId)?.[2] !== 'STOPPED') {
      if (Date.now() - stopping > 90_000) throw new Error(`the collector did not stop in 90 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    log = readFileSync(logFile, 'utf8');
    records = readdirSync(evidence)
      .filter((f) => f.endsWith('.ndjson'))
      .sort()
      .flatMap((f) => readFileSync(join(evidence, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }, BUILD_MS + 300_000);

  afterAll(() => {
    for (const id of [collectorId, workloadId]) {
      ctr('task', 'kill', '-s', 'SIGKILL', id);
      ctr('task', 'rm', '-f', id);
      ctr('container', 'rm', id);
    }
    for (const image of [collector, busybox]) if (image) ctr('image', 'rm', image.ref);
    // containerd removes the images' content asynchronously: the namespace is empty a moment later.
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      spawnSync('sleep', ['0.2']);
    }
    rmSync(base, { recursive: true, force: true });
    if (busybox) rmSync(join(busybox.tar, '..'), { recursive: true, force: true });
  }, 60_000);

  it('the DaemonSet names the image the build script tagged', () => {
    expect(normalizeRef(spec.image)).toBe(collector.ref);
  });

  it('runs in the host PID namespace, with exactly the capabilities the DaemonSet adds', () => {
    expect(collectorPid).toBeGreaterThan(0);
    // The pid ctr reports is the host's and the collector logs its own pid: the same process.
    expect(log).toContain(`"pid":${collectorPid},`);
    expect(collectorPidNs).toBe(readlinkSync('/proc/self/ns/pid'));
    // Only CAP_SYS_RESOURCE (BPF memory accounting before 5.11) may be missing, where the host lacks it.
    expect(spec.notGrantable.filter((c) => c !== 'CAP_SYS_RESOURCE')).toEqual([]);
    let granted = 0n;
    for (const c of spec.capabilities) if (!spec.notGrantable.includes(c)) granted |= 1n << BigInt(capBit(c));
    expect(collectorCaps.toString(16)).toBe(granted.toString(16));
  });

  it('stops cleanly on SIGTERM, and the chain verifies on the host', () => {
    expect(log).toMatch(/"msg":"collector stopped"/);
    const verify = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'packages/cli/bin/stella.js'),
        'signals',
        'verify-chain',
        evidence,
        '--key',
        join(base, 'secret/signals-key.pub.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(verify.status, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    expect(verify.stdout).toMatch(/VERIFIED: .* chain closed/);
  });

  it("records the host process's open without a container", () => {
    const host = records.filter((r) => r.type === 'file_open' && r.path === hostMarker && r.pid === hostCat);
    expect(host.length, log).toBeGreaterThan(0);
    for (const r of host) {
      expect(r.comm).toBe('cat');
      expect(r.container).toBeUndefined();
    }
  });

  it("records the container's open with its container id and image manifest digest", () => {
    const inCtr = records.filter((r) => r.type === 'file_open' && r.path === ctrMarker);
    expect(inCtr.length, log).toBeGreaterThan(0);
    for (const r of inCtr) {
      expect(r.container).toMatchObject({
        id: workloadId,
        runtime: 'containerd',
        image_manifest_digest: busybox.manifestDigest,
      });
    }
    // Its exec too: attribution is not limited to the filtered probe.
    const exec = records.find(
      (r) => r.type === 'process_exec' && (r.container as { id?: string } | undefined)?.id === workloadId,
    );
    expect(exec, 'no process_exec record of the workload container').toBeDefined();
  });
});
