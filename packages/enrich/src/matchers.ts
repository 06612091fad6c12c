/**
 * cgroup path → container id, one matcher per runtime and cgroup driver.
 *
 * Pure functions over the path string: no I/O. A match whose pattern is loose
 * (`ctr`'s `/<namespace>/<id>`, the cgroupfs kubepods layout that both
 * containerd and CRI-O use) says `confirm: true`; the tracker then asks the
 * runtime before it calls the process a container.
 */

/**
 * Container runtimes the tracker can ask, spelled as evidence records and Kubernetes'
 * `containerID` scheme (`cri-o://<id>`) spell it.
 */
export type RuntimeName = 'containerd' | 'docker' | 'podman' | 'cri-o';

/** What a cgroup path says about the container that owns it. */
export interface CgroupMatch {
  /** The runtime, or `cri` when only a CRI runtime's API can tell (containerd `k8s.io` or CRI-O). */
  readonly runtime: RuntimeName | 'cri';
  /** Container id as the runtime names it. */
  readonly id: string;
  /** The container's own cgroup: the matched ancestor of the process's cgroup. */
  readonly containerCgroup: string;
  /** containerd namespace, when the layout carries it (`ctr`: first segment; CRI: `k8s.io`). */
  readonly namespace?: string;
  /** Kubernetes pod uid from a kubepods path (systemd slices write `_` for `-`; undone here). */
  readonly podUid?: string;
  /** Kubernetes QoS class from a kubepods path. */
  readonly qos?: 'guaranteed' | 'burstable' | 'besteffort';
  /** True when the pattern alone does not prove a container: ask the runtime. */
  readonly confirm: boolean;
  /** Which matcher fired, for diagnostics (`docker-systemd`, `ctr`, …). */
  readonly rule: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const CTR_NS = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const CTR_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
// First segments that are runtime or init-system parents, never a ctr namespace.
const NOT_CTR_NS = new Set([
  'docker',
  'kubepods',
  'libpod_parent',
  'system.slice',
  'user.slice',
  'machine.slice',
]);

function podFromSlice(seg: string | undefined): { podUid?: string; qos?: CgroupMatch['qos'] } {
  if (seg === undefined) return {};
  // kubepods-besteffort-pod<uid>.slice or kubepods-pod<uid>.slice (guaranteed)
  const m = /^kubepods(?:-(besteffort|burstable))?-pod([0-9a-fA-F_-]+)\.slice$/.exec(seg);
  if (m?.[2] === undefined) return {};
  return { podUid: m[2].replaceAll('_', '-'), qos: (m[1] as CgroupMatch['qos']) ?? 'guaranteed' };
}

type Found = Omit<CgroupMatch, 'containerCgroup'>;

/** Leaf patterns that name their runtime unambiguously (systemd scopes and the like). */
const SCOPED_RULES: { re: RegExp; make: (m: RegExpExecArray, parent: string | undefined) => Found }[] = [
  {
    re: /^docker-([0-9a-f]{64})\.scope$/,
    make: (m) => ({ runtime: 'docker', id: m[1]!, confirm: false, rule: 'docker-systemd' }),
  },
  {
    re: /^cri-containerd-([0-9a-f]{64})\.scope$/,
    make: (m, parent) => ({
      runtime: 'containerd',
      id: m[1]!,
      namespace: 'k8s.io',
      ...podFromSlice(parent),
      confirm: false,
      rule: 'cri-containerd-systemd',
    }),
  },
  {
    // cgroupfs driver with systemd-style names: kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>
    re: /^(.*):cri-containerd:([0-9a-f]{64})$/,
    make: (m) => ({
      runtime: 'containerd',
      id: m[2]!,
      namespace: 'k8s.io',
      ...podFromSlice(m[1]),
      confirm: false,
      rule: 'cri-containerd-cgroupfs-systemd',
    }),
  },
  {
    re: /^crio-([0-9a-f]{64})(?:\.scope)?$/,
    make: (m, parent) => ({
      runtime: 'cri-o',
      id: m[1]!,
      ...podFromSlice(parent),
      confirm: false,
      rule: 'crio',
    }),
  },
  {
    re: /^libpod-([0-9a-f]{64})(?:\.scope)?$/,
    make: (m) => ({ runtime: 'podman', id: m[1]!, confirm: false, rule: 'podman' }),
  },
];

function matchLevel(segs: readonly string[], n: number): Found | undefined {
  const seg = segs[n - 1]!;
  const parent = n >= 2 ? segs[n - 2] : undefined;
  for (const rule of SCOPED_RULES) {
    const m = rule.re.exec(seg);
    if (m?.[1] !== undefined) return rule.make(m, parent);
  }
  if (parent === 'docker' && n === 2 && HEX64.test(seg)) {
    return { runtime: 'docker', id: seg, confirm: false, rule: 'docker-cgroupfs' };
  }
  if (segs[0] === 'kubepods' && CTR_ID.test(seg)) {
    // cgroupfs driver: /kubepods/<qos>/pod<uid>/<id> or /kubepods/pod<uid>/<id> (guaranteed).
    const pod = n === 4 ? segs[2]! : n === 3 ? segs[1]! : undefined;
    const qos = n === 4 ? segs[1] : n === 3 ? 'guaranteed' : undefined;
    if (pod?.startsWith('pod') && (qos === 'besteffort' || qos === 'burstable' || qos === 'guaranteed')) {
      return { runtime: 'cri', id: seg, podUid: pod.slice(3), qos, confirm: true, rule: 'kubepods-cgroupfs' };
    }
  }
  if (n === 2 && parent !== undefined && !NOT_CTR_NS.has(parent) && !parent.endsWith('.slice')) {
    if (CTR_NS.test(parent) && CTR_ID.test(seg) && !seg.endsWith('.scope') && !seg.endsWith('.service')) {
      return { runtime: 'containerd', id: seg, namespace: parent, confirm: true, rule: 'ctr' };
    }
  }
  return undefined;
}

/**
 * Match a cgroup v2 (or v1) path such as `/system.slice/docker-<id>.scope` to
 * a container. Nested cgroups (`…/libpod-<id>.scope/container`, a process
 * that made its own child cgroup) resolve by walking up to the nearest
 * matching ancestor. Returns undefined for host cgroups and for runtime
 * helpers that are not the container (`libpod-conmon-…`, `crio-conmon-…`).
 */
export function matchCgroupPath(path: string): CgroupMatch | undefined {
  const segs = path.split('/').filter((s) => s.length > 0);
  if (segs.some((s) => s.startsWith('libpod-conmon-') || s.startsWith('crio-conmon-'))) return undefined;
  for (let n = segs.length; n >= 1; n--) {
    const m = matchLevel(segs, n);
    if (m !== undefined) return { ...m, containerCgroup: `/${segs.slice(0, n).join('/')}` };
  }
  return undefined;
}
