/**
 * Turns deploy/kubernetes/daemonset.yaml's collector container into
 * `ctr run` arguments, so a test runs the image the way a kubelet would run
 * the pod: same args, env, mounts, capabilities, host PID namespace,
 * read-only root and memory limit. What a kubelet would supply (the
 * ConfigMap and Secret contents, the host directory of a hostPath) is given
 * by the caller; everything else is read from the manifest.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The parts of the DaemonSet this reads (kubernetes-types has the full shape). */
interface Manifest {
  spec: {
    template: {
      spec: {
        hostPID?: boolean;
        containers: {
          image: string;
          command?: string[];
          args?: string[];
          env?: { name: string; value?: string }[];
          securityContext?: {
            privileged?: boolean;
            readOnlyRootFilesystem?: boolean;
            allowPrivilegeEscalation?: boolean;
            capabilities?: { add?: string[]; drop?: string[] };
          };
          resources?: { limits?: { memory?: string } };
          volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
        }[];
        volumes?: {
          name: string;
          hostPath?: { path: string };
          configMap?: { name: string };
          secret?: { secretName: string };
        }[];
      };
    };
  };
}

/** Host files and directories that stand in for what the kubelet would project or create. */
export interface PodSources {
  /** ConfigMap name → host directory holding its keys as files. */
  readonly configMaps: Readonly<Record<string, string>>;
  /** Secret name → host directory holding its keys as files. */
  readonly secrets: Readonly<Record<string, string>>;
  /** hostPath → host path to use instead (e.g. a temporary evidence directory). */
  readonly hostPathOverrides?: Readonly<Record<string, string>>;
  /** The image's ENTRYPOINT: a pod's `args` without `command` run after it, as the kubelet does. */
  readonly imageEntrypoint: readonly string[];
}

/** `ctr run` arguments for the collector container, and what differs from a kubelet. */
export interface CtrRun {
  /** Arguments after `ctr -n <ns> run -d`, up to (not including) the image ref. */
  readonly flags: string[];
  /** The container's process (after the image ref and container id): ctr replaces the image's
   * entrypoint and command with it, so the entrypoint is spelled out. */
  readonly args: string[];
  /** The image the manifest names. */
  readonly image: string;
  /** Capabilities the manifest adds, `CAP_`-prefixed. */
  readonly capabilities: string[];
  /** Capabilities the manifest adds that this host cannot grant (not in its bounding set). */
  readonly notGrantable: string[];
}

/** Kubernetes memory quantity (Ki/Mi/Gi or plain bytes) in bytes. */
function bytesOf(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (!m?.[1]) throw new Error(`unsupported memory quantity ${q}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] as 'Ki' | 'Mi' | 'Gi'] ?? 1;
  return Number(m[1]) * unit;
}

// Capability numbers (include/uapi/linux/capability.h) of the ones a collector may be given.
const CAP_BITS: Record<string, number> = {
  CAP_DAC_READ_SEARCH: 2,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
};

/** The capability bit of a `CAP_` name this module knows. */
export function capBit(name: string): number {
  const bit = CAP_BITS[name];
  if (bit === undefined) throw new Error(`unknown capability ${name}`);
  return bit;
}

/** A capability mask line (CapEff, CapBnd, …) of /proc/<pid>/status. */
export function capMask(pid: number | 'self', line: string): bigint {
  const m = new RegExp(`^${line}:\\s*([0-9a-f]+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m?.[1]) throw new Error(`/proc/${pid}/status has no ${line}`);
  return BigInt(`0x${m[1]}`);
}

/** Read the DaemonSet and build the `ctr run` flags for its first container. */
export function ctrRunOfDaemonSet(manifest: unknown, sources: PodSources): CtrRun {
  const pod = (manifest as Manifest).spec.template.spec;
  const c = pod.containers[0];
  if (!c) throw new Error('the DaemonSet has no container');
  const sc = c.securityContext ?? {};
  const flags: string[] = [];

  // hostPID: join the PID namespace of this (host) process. /proc/1/ns/pid
  // would do on a plain host, but a sandbox's pid 1 may refuse readlink.
  if (pod.hostPID) flags.push('--with-ns', `pid:/proc/${process.pid}/ns/pid`);
  if (sc.privileged) flags.push('--privileged');
  if (sc.readOnlyRootFilesystem) flags.push('--read-only');
  // ctr sets NoNewPrivileges unless --allow-new-privs: allowPrivilegeEscalation: false.
  if (sc.allowPrivilegeEscalation !== false) flags.push('--allow-new-privs');

  // drop: ["ALL"]: ctr's --cap-drop has no ALL, so drop each of its defaults.
  const add = (sc.capabilities?.add ?? []).map((x) => `CAP_${x}`);
  const bounding = capMask('self', 'CapBnd');
  const notGrantable = add.filter((x) => (bounding & (1n << BigInt(capBit(x)))) === 0n);
  if (sc.capabilities?.drop?.includes('ALL')) {
    const spec = JSON.parse(execFileSync('ctr', ['oci', 'spec'], { encoding: 'utf8' })) as {
      process: { capabilities: { bounding: string[] } };
    };
    for (const d of spec.process.capabilities.bounding) if (!add.includes(d)) flags.push('--cap-drop', d);
  }
  for (const a of add) if (!notGrantable.includes(a)) flags.push('--cap-add', a);

  const memory = c.resources?.limits?.memory;
  if (memory) flags.push('--memory-limit', String(bytesOf(memory)));
  for (const e of c.env ?? []) flags.push('--env', `${e.name}=${e.value ?? ''}`);

  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`volumeMount ${m.name} names no volume`);
    let src: string | undefined;
    if (v.hostPath) src = sources.hostPathOverrides?.[v.hostPath.path] ?? v.hostPath.path;
    else if (v.configMap) src = sources.configMaps[v.configMap.name];
    else if (v.secret) src = sources.secrets[v.secret.secretName];
    if (src === undefined) throw new Error(`no host source for volume ${m.name}`);
    if (m.subPath) src = `${src}/${m.subPath}`;
    // ConfigMap and Secret volumes are always read-only in a pod.
    const ro = m.readOnly === true || v.configMap !== undefined || v.secret !== undefined;
    flags.push('--mount', `type=bind,src=${src},dst=${m.mountPath},options=rbind:${ro ? 'ro' : 'rw'}`);
  }
  // Kubernetes: `command` replaces the ENTRYPOINT, `args` only the CMD.
  const args = [...(c.command ?? sources.imageEntrypoint), ...(c.args ?? [])];
  return { flags, args, image: c.image, capabilities: add, notGrantable };
}
