import type { RuntimeName } from '../matchers.js';

/** What a runtime's API says about one container. */
export interface RuntimeContainer {
  readonly id: string;
  readonly runtime: RuntimeName;
  /** containerd namespace (containerd only). */
  readonly namespace?: string;
  /** Image reference the container was created from, as the runtime records it. */
  readonly imageRef?: string;
  /** Digest of the image manifest (for a multi-platform image: the platform's manifest, not the index). */
  readonly imageManifestDigest?: string;
  /** Digest of the image config blob (Docker and podman call this the image id). */
  readonly imageConfigDigest?: string;
  /** Container labels (CRI puts pod name, namespace, uid and container name here). */
  readonly labels: Readonly<Record<string, string>>;
  /** Init pid when the runtime reports it. */
  readonly pid?: number;
  /** True when the runtime reports the container stopped (kept only for the TTL). */
  readonly exited?: boolean;
  /** What the runtime could not give, each as `<field>: <why>`. */
  readonly missing: readonly string[];
  /**
   * True when something is missing only because the runtime did not answer
   * in time (a timeout, a lost connection): asking again may fill it, so the
   * tracker does, with backoff, instead of keeping this answer for the
   * container's life.
   */
  readonly incomplete?: boolean;
}

/** A container lifecycle change pushed by a runtime. */
export interface RuntimeEvent {
  readonly runtime: RuntimeName;
  /** `start`: a task/process began; `stop`: it exited; `delete`: the container is gone. */
  readonly kind: 'create' | 'start' | 'stop' | 'delete';
  readonly id: string;
  readonly namespace?: string;
  /** Init pid, when the event carries it (containerd `/tasks/start`). */
  readonly pid?: number;
  /**
   * Image reference the container was created from, when the event carries
   * it (containerd `/containers/create`, docker and podman `Actor.Attributes.image`):
   * what keeps a container that is gone before it could be inspected attributable.
   */
  readonly imageRef?: string;
}

/**
 * The small interface the tracker uses; one implementation per runtime, the
 * only code in this package that opens a socket.
 */
export interface RuntimeClient {
  readonly runtime: RuntimeName;
  /** The socket path this client talks to. */
  readonly socket: string;
  /**
   * The container with this id (in `namespace` when given, else in any
   * namespace), or undefined when the runtime does not know it.
   * Throws EnrichError RUNTIME_UNAVAILABLE / RUNTIME_ERROR.
   */
  inspect(id: string, namespace?: string): Promise<RuntimeContainer | undefined>;
  /**
   * A container described from what its events said (its image reference)
   * and the image, without asking about the container itself: for one that
   * is already gone (the image outlives it), or that its runtime keeps
   * locked while it starts or stops under load. Digests come from the
   * runtime's image store; `missing` says what could not be had; no labels
   * and no pid. Absent when the runtime cannot do this.
   */
  describeFromImage?(id: string, imageRef: string, namespace?: string): Promise<RuntimeContainer>;
  /**
   * The namespaces this runtime has (containerd), to tell a cgroup path that
   * merely looks like `/<namespace>/<id>` from a container's. Undefined for
   * runtimes without namespaces. May be cached a few seconds; `fresh` lists now.
   */
  listNamespaces?(fresh?: boolean): Promise<string[]>;
  /** Every container the runtime knows now, fully inspected. */
  list(): Promise<RuntimeContainer[]>;
  /** Push lifecycle events until the returned function is called; `onError` on stream loss. */
  subscribe(onEvent: (e: RuntimeEvent) => void, onError: (err: Error) => void): () => void;
  /** Drop connections. Idempotent. */
  close(): void;
}
