import { existsSync } from 'node:fs';
import { type CgroupLocation, CgroupResolver } from './cgroup.js';
import { EnrichError } from './errors.js';
import { CONTAINERD_SOCKET, ContainerdClient } from './external/containerd.js';
import { CRIO_SOCKET, CrioClient } from './external/crio.js';
import { DOCKER_SOCKET, DockerClient } from './external/docker.js';
import { PODMAN_SOCKET, PodmanClient } from './external/podman.js';
import type { RuntimeClient, RuntimeContainer, RuntimeEvent } from './external/types.js';
import { LruCache } from './lru.js';
import { type CgroupMatch, matchCgroupPath, type RuntimeName } from './matchers.js';

/** Kubernetes identity of a container, from the CRI labels (and the kubepods path for the uid). */
export interface K8sInfo {
  readonly pod?: string;
  readonly namespace?: string;
  readonly podUid?: string;
  readonly container?: string;
}

/** A container a process belongs to, as far as its runtime could say. */
export interface ContainerInfo {
  readonly id: string;
  readonly runtime: RuntimeName;
  /** The container's cgroup (v2 path; v1 path for processes only in v1 hierarchies). */
  readonly cgroupPath: string;
  /** containerd namespace (containerd only). */
  readonly namespace?: string;
  readonly imageRef?: string;
  /** Digest of the platform image manifest. */
  readonly imageManifestDigest?: string;
  /** Digest of the image config (Docker's and podman's image id). */
  readonly imageConfigDigest?: string;
  readonly k8s?: K8sInfo;
  /** What the runtime could not give, each `<field>: <why>`; absent when nothing is missing. */
  readonly missing?: readonly string[];
}

/**
 * The answer for one cgroup: a container, a host (non-container) cgroup, or
 * unknown (the cgroup or the runtime could not be resolved; `reason` says why).
 */
export type Resolution =
  | { readonly status: 'resolved'; readonly cgroupPath: string; readonly container: ContainerInfo }
  | { readonly status: 'host'; readonly cgroupPath: string }
  | { readonly status: 'unknown'; readonly cgroupPath?: string; readonly reason: string };

/** One runtime endpoint: its socket path. */
export interface RuntimeEndpoint {
  readonly socket: string;
}

/** Options of {@link ContainerTracker.create}. */
export interface ContainerTrackerOptions {
  /**
   * containerd endpoint; `namespaces` limits the search (default: every
   * namespace containerd lists, `k8s.io` included). Default: the standard
   * socket when it exists. `false` disables the runtime. An explicitly given
   * socket that does not exist is an error.
   */
  readonly containerd?: (RuntimeEndpoint & { readonly namespaces?: readonly string[] }) | false;
  /** Docker Engine API socket; default `/var/run/docker.sock` when it exists. */
  readonly docker?: RuntimeEndpoint | false;
  /** podman libpod API socket; default `/run/podman/podman.sock` when it exists. */
  readonly podman?: RuntimeEndpoint | false;
  /** CRI-O socket; default `/var/run/crio/crio.sock` when it exists. */
  readonly crio?: RuntimeEndpoint | false;
  /** cgroup v2 mount; default auto-detected (see {@link defaultCgroupRoot}). */
  readonly cgroupRoot?: string;
  /** How long a container stays resolvable after it exits, for late records; default 60000 ms. */
  readonly ttlMs?: number;
  /**
   * How long a record of a container its runtime no longer knows waits for
   * that runtime's events about it (podman's file-backed events arrive after
   * a short-lived container is gone); default 700 ms, below the enrichment
   * stage's 1000 ms wait.
   */
  readonly lateEventWaitMs?: number;
  /** Bound of each cache (containers, cgroup ids); default 4096. */
  readonly maxEntries?: number;
  /** Per-call timeout towards a runtime; default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /** Subscribe to runtime events (default true). */
  readonly watch?: boolean;
  /**
   * List every runtime's containers and scan the cgroup tree at start (default
   * true), so lookups by cgroup id alone hit at once; false resolves each
   * container on first sight.
   */
  readonly prepopulate?: boolean;
  /** Runtime clients to use instead of the socket ones (tests, custom runtimes). */
  readonly clients?: readonly RuntimeClient[];
}

/** Connection state of one runtime, for the collector status. */
export interface RuntimeStatus {
  readonly runtime: RuntimeName;
  readonly socket: string;
  /** True after the initial listing succeeded. */
  readonly listed: boolean;
  /** Containers known from the initial listing. */
  readonly containers: number;
  /** Last error from this runtime, if any. */
  readonly error?: string;
}

/** Cache sizes and counters, for tests, status records and the benchmark. */
export interface TrackerStats {
  readonly containers: number;
  readonly cgroups: number;
  readonly cgroupPaths: number;
  readonly runtimeCalls: number;
  readonly events: number;
  readonly evictions: number;
}

const HOST_TTL_MS = 5000;
/**
 * A lookup of a live container that failed or came back incomplete (the
 * runtime timed out under load) is asked again after this, doubling up to
 * {@link RETRY_MAX_MS}, for {@link RETRY_FOR_MS} at most: its later records
 * get the answer without waiting for a new record to ask.
 */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 4000;
const RETRY_FOR_MS = 60_000;
/** How long a root-cgroup process's answer is reused by pid (pid reuse within it is the risk). */
const ROOT_PID_TTL_MS = 2000;

/** What a runtime's events said about a container: enough to describe it once it is gone. */
interface EventFacts {
  readonly runtime: RuntimeName;
  readonly id: string;
  readonly namespace?: string;
  readonly imageRef?: string;
}

function containerKey(runtime: RuntimeName, id: string, namespace?: string): string {
  return runtime === 'containerd' ? `containerd/${namespace ?? ''}/${id}` : `${runtime}//${id}`;
}

function validateMs(name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new EnrichError(
      'INVALID_OPTION',
      `ContainerTracker option ${name} must be a number of ms >= 0, got ${String(v)}`,
    );
  }
  return v;
}

/**
 * The container tracker: maps a bpf cgroup id (and pid) to the container,
 * its image reference and digests, live.
 *
 * At start it lists every container of each reachable runtime, then follows
 * their event streams. Lookups are answered from bounded LRU caches; a
 * container stays resolvable `ttlMs` after it exits. Only the clients in
 * `external/` touch sockets.
 */
export class ContainerTracker {
  readonly cgroups: CgroupResolver;
  readonly #clients: RuntimeClient[];
  readonly #ttlMs: number;
  readonly #containers: LruCache<string, RuntimeContainer>;
  readonly #byCgroup: LruCache<bigint, Resolution>;
  /**
   * Processes at the v2 root (every host process on a hybrid host, and
   * v1-only ones): the id says nothing, so answers are kept per pid, briefly.
   */
  readonly #rootByPid: LruCache<number, Resolution>;
  readonly #inflight = new Map<string, Promise<RuntimeContainer | undefined>>();
  /** Containers whose lookup is to be asked again (see {@link #retryLater}), by container key. */
  readonly #retries: LruCache<string, { delayMs: number; readonly until: number; scheduled: boolean }>;
  readonly #lateEventWaitMs: number;
  /** What events said about each container (image reference), kept the TTL after it is gone. */
  readonly #facts: LruCache<string, EventFacts>;
  /** Resolutions waiting for events about a container id (see {@link #awaitEvent}). */
  readonly #waiters = new Map<string, Set<() => void>>();
  /** containerd namespaces known not to exist: `/<ns>/<id>` paths under them are host cgroups. */
  readonly #hostNamespaces: LruCache<string, true>;
  readonly #status = new Map<RuntimeClient, { listed: boolean; containers: number; error?: string }>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;
  #runtimeCalls = 0;
  #events = 0;

  private constructor(clients: RuntimeClient[], options: ContainerTrackerOptions) {
    this.#clients = clients;
    this.#ttlMs = validateMs('ttlMs', options.ttlMs, 60_000);
    const maxEntries = options.maxEntries ?? 4096;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new EnrichError(
        'INVALID_OPTION',
        `ContainerTracker option maxEntries must be an integer >= 1, got ${String(maxEntries)}`,
      );
    }
    this.cgroups = new CgroupResolver({
      ...(options.cgroupRoot !== undefined && { cgroupRoot: options.cgroupRoot }),
      maxEntries: maxEntries * 4,
    });
    this.#containers = new LruCache(maxEntries);
    this.#facts = new LruCache(maxEntries);
    this.#hostNamespaces = new LruCache(256);
    this.#lateEventWaitMs = validateMs('lateEventWaitMs', options.lateEventWaitMs, 700);
    this.#byCgroup = new LruCache(maxEntries * 4);
    this.#rootByPid = new LruCache(maxEntries * 4);
    this.#retries = new LruCache(maxEntries);
    for (const c of clients) this.#status.set(c, { listed: false, containers: 0 });
  }

  /**
   * Connect to the runtimes (explicit sockets, else those found at their
   * default paths), list their containers and subscribe to their events.
   * A runtime that fails to list is recorded in {@link status} and retried
   * through its event stream; it does not fail `create`.
   *
   * @throws EnrichError INVALID_OPTION for a bad option or an explicit socket path that does not exist.
   */
  static async create(options: ContainerTrackerOptions = {}): Promise<ContainerTracker> {
    const timeout = validateMs('requestTimeoutMs', options.requestTimeoutMs, 2000);
    const clients: RuntimeClient[] = [...(options.clients ?? [])];
    const pick = (name: string, o: RuntimeEndpoint | false | undefined, def: string): string | undefined => {
      if (o === false) return undefined;
      if (o === undefined) return existsSync(def) ? def : undefined;
      if (typeof o?.socket !== 'string' || o.socket.length === 0) {
        throw new EnrichError(
          'INVALID_OPTION',
          `ContainerTracker option ${name}.socket must be a socket path`,
        );
      }
      if (!existsSync(o.socket)) {
        throw new EnrichError(
          'INVALID_OPTION',
          `ContainerTracker option ${name}.socket: ${o.socket} does not exist (start ${name}, or pass ${name}: false to disable it)`,
        );
      }
      return o.socket;
    };
    if (options.clients === undefined) {
      const cd = pick('containerd', options.containerd, CONTAINERD_SOCKET);
      if (cd) {
        const ns = options.containerd ? options.containerd.namespaces : undefined;
        clients.push(new ContainerdClient(cd, timeout, ns));
      }
      const dk = pick('docker', options.docker, DOCKER_SOCKET);
      if (dk) clients.push(new DockerClient(dk, timeout));
      const pm = pick('podman', options.podman, PODMAN_SOCKET);
      if (pm) clients.push(new PodmanClient(pm, timeout));
      const cr = pick('crio', options.crio, CRIO_SOCKET);
      if (cr) clients.push(new CrioClient(cr, timeout));
    }
    const t = new ContainerTracker(clients, options);
    // The cgroup scan maps ids to paths for containers whose runtime reports no pid (containerd).
    if (options.prepopulate !== false)
      await Promise.all([...clients.map((c) => t.#list(c)), t.cgroups.scan()]);
    if (options.watch !== false) for (const c of clients) t.#watch(c);
    return t;
  }

  async #list(c: RuntimeClient): Promise<void> {
    const st = this.#status.get(c)!;
    try {
      this.#runtimeCalls++;
      const all = await c.list();
      for (const rc of all) {
        this.#store(rc);
        if (rc.pid !== undefined) this.#rememberCgroupOf(rc.pid);
      }
      st.listed = true;
      st.containers = all.length;
      delete st.error;
    } catch (err) {
      st.error = err instanceof Error ? err.message : String(err);
    }
  }

  /**
   * Follow a runtime's events. A stream that breaks is re-opened at once
   * (a restarted runtime is back within a second; new containers must not
   * stay unknown meanwhile), then with a growing delay while it keeps failing;
   * an event received resets the delay.
   */
  #watch(c: RuntimeClient, delayMs = 0): void {
    if (this.#closed) return;
    let healthy = false;
    const stop = c.subscribe(
      (e) => {
        healthy = true;
        this.#onEvent(c, e);
      },
      (err) => {
        const st = this.#status.get(c)!;
        st.error = err.message;
        const i = this.#unsubscribe.indexOf(stop);
        if (i >= 0) this.#unsubscribe.splice(i, 1);
        stop();
        // Resubscribe with backoff; re-list so nothing missed while disconnected stays unknown.
        const wait = healthy ? 0 : delayMs;
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (this.#closed) return;
          // At most a second apart: a socket connect is cheap, a missed create event is not.
          void this.#list(c).then(() => this.#watch(c, Math.min(Math.max(wait * 2, 250), 1000)));
        }, wait);
        timer.unref();
        this.#timers.add(timer);
      },
    );
    this.#unsubscribe.push(stop);
  }

  #onEvent(c: RuntimeClient, e: RuntimeEvent): void {
    this.#events++;
    const key = containerKey(e.runtime, e.id, e.namespace);
    if (e.pid !== undefined) this.#rememberCgroupOf(e.pid);
    if (e.namespace !== undefined) this.#hostNamespaces.delete(e.namespace);
    // A host or unknown verdict cached for this container's cgroup is stale now.
    for (const [id, r] of this.#byCgroup.entries()) {
      if (r.status !== 'resolved' && r.cgroupPath !== undefined && matchCgroupPath(r.cgroupPath)?.id === e.id)
        this.#byCgroup.delete(id);
    }
    const known = this.#facts.peek(key);
    const imageRef = e.imageRef ?? known?.imageRef;
    this.#facts.set(
      key,
      {
        runtime: e.runtime,
        id: e.id,
        ...(e.namespace !== undefined && { namespace: e.namespace }),
        ...(imageRef !== undefined && { imageRef }),
      },
      Date.now() + this.#ttlMs,
    );
    if (e.kind === 'create' || e.kind === 'start') {
      // Fetch now so the container's first records find it in the cache.
      if (this.#containers.peek(key) === undefined) {
        void this.#fetch(c, e.id, e.namespace).catch(() => undefined);
        if (e.kind === 'create') this.#provisional(c, e);
      }
    } else {
      const expiresAt = Date.now() + this.#ttlMs;
      // Seen created, gone before it was ever inspected: keep a tombstone from what its events said.
      if (known !== undefined && this.#containers.peek(key) === undefined && !this.#inflight.has(key))
        void this.#fetch(c, e.id, e.namespace).catch(() => undefined);
      this.#containers.expire(key, expiresAt);
      for (const [id, r] of this.#byCgroup.entries()) {
        if (r.status === 'resolved' && r.container.id === e.id && r.container.runtime === e.runtime) {
          this.#byCgroup.expire(id, expiresAt);
        }
      }
    }
    this.#wake(e.id);
  }

  /**
   * docker and podman hold a container's lock while they start or stop it,
   * so under a burst its inspect can take seconds, past the records'
   * wait. The image, named by the create event, is not locked: describe the
   * container from it at once; the inspect's fuller answer replaces it.
   * (containerd answers without such locks and carries the CRI labels: not needed there.)
   */
  #provisional(c: RuntimeClient, e: RuntimeEvent): void {
    if (e.imageRef === undefined || c.describeFromImage === undefined) return;
    if (c.runtime !== 'docker' && c.runtime !== 'podman') return;
    const key = containerKey(e.runtime, e.id, e.namespace);
    this.#runtimeCalls++;
    void c.describeFromImage(e.id, e.imageRef, e.namespace).then(
      (rc) => {
        // Kept the TTL at most, like an exited container, until the inspect's answer replaces it.
        if (this.#containers.peek(key) === undefined) {
          this.#containers.set(key, rc, Date.now() + this.#ttlMs);
          this.#wake(e.id);
        }
      },
      () => undefined,
    );
  }

  /** Wake the resolutions waiting for news of container `id`. */
  #wake(id: string): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    this.#waiters.delete(id);
    for (const w of set) w();
  }

  /** Resolves when an event about container `id` arrives, or after `ms`. */
  #awaitEvent(id: string, ms: number): Promise<void> {
    if (ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(id, set);
      }
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      set.add(done);
    });
  }

  /** A stopped container is kept only for the TTL (late records), never indefinitely. */
  #expiry(rc: RuntimeContainer): number {
    return rc.exited ? Date.now() + this.#ttlMs : Number.POSITIVE_INFINITY;
  }

  #store(rc: RuntimeContainer): void {
    this.#containers.set(containerKey(rc.runtime, rc.id, rc.namespace), rc, this.#expiry(rc));
  }

  /**
   * A runtime told us a container's init pid: learn its cgroup id → path now,
   * so records of short-lived first processes need no tree scan.
   */
  #rememberCgroupOf(pid: number): void {
    const v2 = this.cgroups.procCgroups(pid)?.v2;
    if (v2 === undefined || v2 === '/') return;
    const id = this.cgroups.idOf(v2);
    if (id !== undefined) this.cgroups.remember(id, v2);
  }

  #fetch(c: RuntimeClient, id: string, namespace?: string): Promise<RuntimeContainer | undefined> {
    const key = containerKey(c.runtime, id, namespace);
    const running = this.#inflight.get(key);
    if (running) return running;
    this.#runtimeCalls++;
    const p = c
      .inspect(id, namespace)
      .then(
        async (rc) => {
          if (rc) {
            this.#refresh(rc);
            if (rc.pid !== undefined) this.#rememberCgroupOf(rc.pid);
            if (rc.incomplete) this.#retryLater(c, id, namespace);
            else this.#retries.delete(key);
            return rc;
          }
          this.#retries.delete(key);
          return this.#tombstone(c, id, namespace);
        },
        (err: unknown) => {
          this.#retryLater(c, id, namespace);
          throw err;
        },
      )
      .finally(() => {
        this.#inflight.delete(key);
        this.#wake(id);
      });
    this.#inflight.set(key, p);
    return p;
  }

  /**
   * Store a runtime's answer. A cgroup already answered without it (unknown,
   * or from an earlier incomplete answer) is answered afresh from it.
   */
  #refresh(rc: RuntimeContainer): void {
    const before = this.#containers.peek(containerKey(rc.runtime, rc.id, rc.namespace));
    this.#store(rc);
    if (before !== undefined && !before.incomplete) return;
    for (const [id, r] of this.#byCgroup.entries()) {
      const named =
        r.status === 'resolved'
          ? r.container.id === rc.id
          : r.cgroupPath !== undefined && matchCgroupPath(r.cgroupPath)?.id === rc.id;
      if (named) this.#byCgroup.delete(id);
    }
  }

  /**
   * The runtime failed to answer about a container, or answered only in part
   * (timed out under load): ask again, with a delay that doubles, so a live
   * container is never left unknown or without its image for the rest of its
   * life. Ends on a full answer, on "not known" (gone: a tombstone then),
   * after {@link RETRY_FOR_MS}, or at close.
   */
  #retryLater(c: RuntimeClient, id: string, namespace: string | undefined): void {
    if (this.#closed) return;
    const key = containerKey(c.runtime, id, namespace);
    const now = Date.now();
    let state = this.#retries.get(key, now);
    if (state === undefined) {
      state = { delayMs: RETRY_FIRST_MS, until: now + RETRY_FOR_MS, scheduled: false };
      // Kept past its end, so a container that keeps failing is not retried anew at once.
      this.#retries.set(key, state, state.until + RETRY_FOR_MS);
    }
    if (state.scheduled || now >= state.until) return;
    const retry = state;
    retry.scheduled = true;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      retry.scheduled = false;
      if (this.#closed || this.#retries.peek(key) !== retry) return;
      retry.delayMs = Math.min(retry.delayMs * 2, RETRY_MAX_MS);
      void this.#fetch(c, id, namespace).catch(() => undefined);
    }, retry.delayMs);
    timer.unref();
    this.#timers.add(timer);
  }

  /**
   * A container the runtime no longer knows, described from what its events
   * said (the image reference) and the image, which outlives it; kept the
   * TTL like any exited container. Undefined when no event named its image.
   */
  async #tombstone(c: RuntimeClient, id: string, namespace?: string): Promise<RuntimeContainer | undefined> {
    let facts = this.#facts.get(containerKey(c.runtime, id, namespace));
    if (facts === undefined && namespace === undefined) {
      for (const [, f] of this.#facts.entries()) if (f.runtime === c.runtime && f.id === id) facts = f;
    }
    if (facts?.imageRef === undefined || c.describeFromImage === undefined) return undefined;
    this.#runtimeCalls++;
    const rc: RuntimeContainer = {
      ...(await c.describeFromImage(id, facts.imageRef, facts.namespace ?? namespace)),
      exited: true,
    };
    this.#store(rc);
    return rc;
  }

  #clientsFor(m: CgroupMatch): { client: RuntimeClient; namespace?: string }[] {
    const out: { client: RuntimeClient; namespace?: string }[] = [];
    for (const c of this.#clients) {
      if (m.runtime === 'cri') {
        if (c.runtime === 'containerd') out.push({ client: c, namespace: 'k8s.io' });
        if (c.runtime === 'cri-o') out.push({ client: c });
      } else if (c.runtime === m.runtime) {
        out.push(m.namespace !== undefined ? { client: c, namespace: m.namespace } : { client: c });
      }
    }
    // kubepods cgroupfs paths made by `ctr run --cgroup` live outside k8s.io: search every namespace last.
    if (m.runtime === 'cri')
      for (const c of this.#clients) if (c.runtime === 'containerd') out.push({ client: c });
    return out;
  }

  #cachedContainer(m: CgroupMatch): RuntimeContainer | undefined {
    if (m.runtime === 'cri') {
      const hit =
        this.#containers.get(containerKey('containerd', m.id, 'k8s.io')) ??
        this.#containers.get(containerKey('cri-o', m.id));
      if (hit) return hit;
      for (const [, rc] of this.#containers.entries())
        if (rc.id === m.id && rc.runtime === 'containerd') return rc;
      return undefined;
    }
    return this.#containers.get(containerKey(m.runtime, m.id, m.namespace));
  }

  #info(m: CgroupMatch, rc: RuntimeContainer | undefined, extraMissing: string[] = []): ContainerInfo {
    const labels = rc?.labels ?? {};
    const k8s: { pod?: string; namespace?: string; podUid?: string; container?: string } = {};
    const pod = labels['io.kubernetes.pod.name'];
    const ns = labels['io.kubernetes.pod.namespace'];
    const uid = labels['io.kubernetes.pod.uid'] ?? m.podUid;
    const cname = labels['io.kubernetes.container.name'];
    if (pod) k8s.pod = pod;
    if (ns) k8s.namespace = ns;
    if (uid) k8s.podUid = uid;
    if (cname) k8s.container = cname;
    const missing = [...(rc?.missing ?? []), ...extraMissing];
    const runtime: RuntimeName = rc?.runtime ?? (m.runtime === 'cri' ? 'containerd' : m.runtime);
    return {
      id: rc?.id ?? m.id,
      runtime,
      cgroupPath: m.containerCgroup,
      ...((rc?.namespace ?? m.namespace) !== undefined && { namespace: rc?.namespace ?? m.namespace }),
      ...(rc?.imageRef !== undefined && { imageRef: rc.imageRef }),
      ...(rc?.imageManifestDigest !== undefined && { imageManifestDigest: rc.imageManifestDigest }),
      ...(rc?.imageConfigDigest !== undefined && { imageConfigDigest: rc.imageConfigDigest }),
      ...(Object.keys(k8s).length > 0 && { k8s }),
      ...(missing.length > 0 && { missing }),
    };
  }

  /**
   * Synchronous, cache-only answer: the resolution if this cgroup (or, with
   * `pid`, the process's cgroup path and its container) is already known,
   * else undefined. Never waits on a runtime; reads `/proc/<pid>/cgroup`.
   */
  peek(cgroupId: bigint, pid?: number): Resolution | undefined {
    this.#assertOpen();
    const hit = this.#byCgroup.get(cgroupId);
    if (hit !== undefined) return hit;
    const atRoot = cgroupId === this.cgroups.rootId && pid !== undefined;
    if (atRoot) {
      const byPid = this.#rootByPid.get(pid);
      if (byPid !== undefined) return byPid;
    }
    const r = this.#peekSlow(cgroupId, pid);
    if (atRoot && r !== undefined) this.#rootByPid.set(pid, r, Date.now() + ROOT_PID_TTL_MS);
    return r;
  }

  #peekSlow(cgroupId: bigint, pid: number | undefined): Resolution | undefined {
    const loc = this.cgroups.lookup(cgroupId, pid);
    if (loc === undefined) return undefined;
    const m = matchCgroupPath(loc.path);
    if (m === undefined) {
      const r: Resolution = { status: 'host', cgroupPath: loc.path };
      if (this.#cacheable(cgroupId, loc)) this.#byCgroup.set(cgroupId, r, Date.now() + HOST_TTL_MS);
      return r;
    }
    if (m.rule === 'ctr' && m.namespace !== undefined && this.#hostNamespaces.get(m.namespace)) {
      const r: Resolution = { status: 'host', cgroupPath: loc.path };
      if (this.#cacheable(cgroupId, loc)) this.#byCgroup.set(cgroupId, r, Date.now() + HOST_TTL_MS);
      return r;
    }
    const rc = this.#cachedContainer(m);
    if (rc === undefined) return undefined;
    const r: Resolution = { status: 'resolved', cgroupPath: loc.path, container: this.#info(m, rc) };
    if (this.#cacheable(cgroupId, loc)) this.#byCgroup.set(cgroupId, r, this.#expiry(rc));
    return r;
  }

  /**
   * A cgroup v2 directory was made: remember its id → path (the probes'
   * `cgroup_mkdir` events), so the records of processes that run in it,
   * however briefly, resolve without a scan of the tree, even once the
   * cgroup is gone.
   */
  learnCgroup(cgroupId: bigint, path: string): void {
    this.#assertOpen();
    this.cgroups.remember(cgroupId, path);
  }

  /**
   * True when the answer for this cgroup id depends on the process: the v2
   * root, which every process only in v1 hierarchies shares (every host
   * process on a hybrid host); each is resolved through its own v1 path.
   */
  perProcess(cgroupId: bigint): boolean {
    return cgroupId === this.cgroups.rootId;
  }

  /** The cgroup path of an id from the caches or the pid, without waiting; for `unknown` records. */
  cgroupPathOf(cgroupId: bigint, pid?: number): string | undefined {
    return this.cgroups.lookup(cgroupId, pid)?.path;
  }

  /** {@link peek}, reduced to the container: undefined for host, unknown and not-yet-known cgroups. */
  lookup(cgroupId: bigint, pid?: number): ContainerInfo | undefined {
    const r = this.peek(cgroupId, pid);
    return r?.status === 'resolved' ? r.container : undefined;
  }

  /**
   * Resolve a cgroup fully: the cgroup path (scanning the v2 tree if the
   * caches and the pid do not know it), the container matcher, then the
   * runtime API. Never throws for runtime trouble: that is `unknown` with a
   * reason, or a container without image fields and a `missing` note.
   */
  async resolveDetailed(cgroupId: bigint, pid?: number): Promise<Resolution> {
    this.#assertOpen();
    const quick = this.peek(cgroupId, pid);
    if (quick !== undefined) return quick;
    // The path learnt when the cgroup was made (learnCgroup) or from the pid is in peek's
    // lookup; only a cgroup nobody told us about costs a (rate-limited) scan of the tree.
    const loc = await this.cgroups.resolve(cgroupId, pid);
    if (loc === undefined) {
      return {
        status: 'unknown',
        reason: `cgroup id ${cgroupId} is not in ${this.cgroups.root} (cgroup already removed?)`,
      };
    }
    const m = matchCgroupPath(loc.path);
    if (m === undefined) return this.peek(cgroupId, pid) ?? { status: 'host', cgroupPath: loc.path };
    const settle = (rc: RuntimeContainer): Resolution => {
      const r: Resolution = { status: 'resolved', cgroupPath: loc.path, container: this.#info(m, rc) };
      if (this.#cacheable(cgroupId, loc)) this.#byCgroup.set(cgroupId, r, this.#expiry(rc));
      return r;
    };
    const verdict = (r: Resolution): Resolution => {
      if (this.#cacheable(cgroupId, loc)) this.#byCgroup.set(cgroupId, r, Date.now() + HOST_TTL_MS);
      return r;
    };
    // What the tracker already knows or is fetching (events, tombstones) before any new runtime call.
    const known = await this.#known(m);
    if (known) return settle(known);
    if (await this.#notANamespace(m)) return verdict({ status: 'host', cgroupPath: loc.path });
    const clients = this.#clientsFor(m);
    const errors: string[] = [];
    // Ask the runtimes, but take whatever answers first: an inspect can wait seconds on a
    // container its runtime keeps locked, while its events and image already tell enough.
    for (const { client, namespace } of clients) {
      this.#fetch(client, m.id, namespace).catch((err: unknown) => {
        errors.push(err instanceof Error ? err.message : String(err));
      });
    }
    const asked = await this.#known(m);
    if (asked) return settle(asked);
    // Not known (any more): the runtime's events may still be on their way (podman's come late).
    if (clients.length > 0) {
      const deadline = Date.now() + this.#lateEventWaitMs;
      for (;;) {
        const late = await this.#known(m);
        if (late) return settle(late);
        const left = deadline - Date.now();
        if (left <= 0 || this.#closed) break;
        await this.#awaitEvent(m.id, left);
      }
    }
    if (m.confirm) {
      if (errors.length > 0) return { status: 'unknown', cgroupPath: loc.path, reason: errors.join('; ') };
      // A loose pattern no runtime can be asked about: an ordinary host cgroup.
      if (clients.length === 0) return verdict({ status: 'host', cgroupPath: loc.path });
      // The path looks like a container's and the runtime cannot say: never call it host.
      const runtimes = [...new Set(clients.map((c) => c.client.runtime))].join(', ');
      return verdict({
        status: 'unknown',
        cgroupPath: loc.path,
        reason: `cgroup ${loc.path} is laid out like a container's (${m.rule}) but ${runtimes} does not know container ${m.id} and no event of it named its image (removed before it could be inspected?)`,
      });
    }
    // The path alone names the container: report it, saying what is missing and why.
    const why =
      errors.length > 0
        ? errors.join('; ')
        : clients.length === 0
          ? `no ${m.runtime} API connected (socket not found; pass ${m.runtime}.socket)`
          : `${m.runtime} does not know container ${m.id} (already removed?)`;
    const container = this.#info(m, undefined, [`image_ref: ${why}`]);
    // Short-lived: the runtime may answer on a later try.
    return verdict({ status: 'resolved', cgroupPath: loc.path, container });
  }

  /**
   * The container from the cache (tombstones and image-based descriptions
   * included), once any fetch of it still running has settled or news of it
   * arrived, whichever is first.
   */
  async #known(m: CgroupMatch): Promise<RuntimeContainer | undefined> {
    for (;;) {
      const hit = this.#cachedContainer(m);
      if (hit) return hit;
      const running = this.#clientsFor(m)
        .map(({ client, namespace }) => this.#inflight.get(containerKey(client.runtime, m.id, namespace)))
        .filter((p) => p !== undefined);
      for (const [key, p] of this.#inflight) if (key.endsWith(`/${m.id}`)) running.push(p);
      if (running.length === 0 || this.#closed) return undefined;
      await Promise.race([Promise.allSettled(running), this.#awaitEvent(m.id, 5000)]);
    }
  }

  /**
   * True when `m` is a `/<namespace>/<id>` match (ctr's layout) under a
   * namespace containerd does not have: an ordinary host cgroup (this VM's
   * `/process_api/<hash>`), answered without a call per record (the
   * namespace list is cached 5 s).
   */
  async #notANamespace(m: CgroupMatch): Promise<boolean> {
    if (m.rule !== 'ctr' || m.namespace === undefined) return false;
    if (this.#hostNamespaces.get(m.namespace)) return true;
    const cd = this.#clients.find((c) => c.runtime === 'containerd' && c.listNamespaces !== undefined);
    if (cd?.listNamespaces === undefined) return false;
    try {
      // A namespace made a moment ago is not in a cached list: look again before calling it host.
      if ((await cd.listNamespaces()).includes(m.namespace)) return false;
      if ((await cd.listNamespaces(true)).includes(m.namespace)) return false;
      this.#hostNamespaces.set(m.namespace, true, Date.now() + HOST_TTL_MS);
      return true;
    } catch {
      return false;
    }
  }

  /** {@link resolveDetailed}, reduced to the container. */
  async resolve(cgroupId: bigint, pid?: number): Promise<ContainerInfo | undefined> {
    const r = await this.resolveDetailed(cgroupId, pid);
    return r.status === 'resolved' ? r.container : undefined;
  }

  /** Per-runtime connection state. */
  status(): RuntimeStatus[] {
    return this.#clients.map((c) => {
      const st = this.#status.get(c)!;
      return {
        runtime: c.runtime,
        socket: c.socket,
        listed: st.listed,
        containers: st.containers,
        ...(st.error !== undefined && { error: st.error }),
      };
    });
  }

  /** Cache sizes and counters. */
  stats(): TrackerStats {
    return {
      containers: this.#containers.size,
      cgroups: this.#byCgroup.size,
      cgroupPaths: this.cgroups.cacheSize,
      runtimeCalls: this.#runtimeCalls,
      events: this.#events,
      evictions: this.#containers.evictions + this.#byCgroup.evictions,
    };
  }

  /** v1-only processes all share the root's v2 id: never cache anything under it. */
  #cacheable(cgroupId: bigint, loc: CgroupLocation): boolean {
    return loc.hierarchy === 'v2' && cgroupId !== this.cgroups.rootId;
  }

  #assertOpen(): void {
    if (this.#closed) throw new EnrichError('CLOSED', 'ContainerTracker used after close()');
  }

  /** Stop event streams and close runtime connections. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stop of this.#unsubscribe.splice(0)) stop();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#clients) c.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
