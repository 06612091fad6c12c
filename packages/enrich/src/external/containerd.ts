import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { EnrichError } from '../errors.js';
import { protoStringField, protoVarintField } from './protowire.js';
import type { RuntimeClient, RuntimeContainer, RuntimeEvent } from './types.js';

/** Default containerd socket. */
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';

const PROTO_FILES = [
  'containerd/services/containers/v1/containers.proto',
  'containerd/services/images/v1/images.proto',
  'containerd/services/namespaces/v1/namespace.proto',
  'containerd/services/content/v1/content.proto',
  'containerd/services/events/v1/events.proto',
];

/** The vendored proto directory: `<package>/proto`, from `src/external/` or from `dist/`. */
function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../../proto', '../proto']) {
    const d = join(here, rel);
    if (existsSync(join(d, PROTO_FILES[0]!))) return d;
  }
  throw new EnrichError(
    'RUNTIME_ERROR',
    `vendored containerd protos not found next to ${here}; reinstall @stellaops/enrich`,
  );
}

// gRPC and the proto parser cost ~15 MiB of RSS in every process that loads
// them: required when a containerd client is made (its socket exists), not
// when the package is imported.
const requireLazy = createRequire(import.meta.url);
let grpcLib: typeof grpc | undefined;
function lib(): typeof grpc {
  grpcLib ??= requireLazy('@grpc/grpc-js') as typeof grpc;
  return grpcLib;
}

// biome-ignore lint/suspicious/noExplicitAny: grpc's generated package object is untyped.
let loaded: any;

/** The service constructors, from the vendored protos parsed once per process. */
// biome-ignore lint/suspicious/noExplicitAny: as above.
function services(): any {
  if (loaded === undefined) {
    const def = (requireLazy('@grpc/proto-loader') as typeof protoLoader).loadSync(PROTO_FILES, {
      includeDirs: [protoDir()],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
    });
    // biome-ignore lint/suspicious/noExplicitAny: as above.
    loaded = (lib().loadPackageDefinition(def) as any).containerd.services;
  }
  return loaded;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

interface Descriptor {
  media_type: string;
  digest: string;
}
interface PbContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime?: { name: string } | null;
}
interface Services {
  containers: grpc.Client & {
    Get: Unary<{ id: string }, { container: PbContainer }>;
    List: Unary<{ filters: string[] }, { containers: PbContainer[] }>;
  };
  images: grpc.Client & {
    Get: Unary<{ name: string }, { image: { name: string; target: Descriptor | null } }>;
  };
  namespaces: grpc.Client & { List: Unary<{ filter: string }, { namespaces: { name: string }[] }> };
  content: grpc.Client & {
    Read(
      req: { digest: string; offset: number; size: number },
      md: grpc.Metadata,
      opts: grpc.CallOptions,
    ): grpc.ClientReadableStream<{ data: Buffer }>;
  };
  events: grpc.Client & {
    Subscribe(
      req: { filters: string[] },
      md?: grpc.Metadata,
    ): grpc.ClientReadableStream<{
      namespace: string;
      topic: string;
      event: { type_url: string; value: Buffer } | null;
    }>;
  };
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
};

/**
 * containerd over gRPC (its own API, not CRI), across every namespace
 * including `k8s.io`. The image target is resolved to this platform's
 * manifest digest (through the index when the target is one) and the config
 * digest read from that manifest in containerd's content store.
 */
export class ContainerdClient implements RuntimeClient {
  readonly runtime = 'containerd' as const;
  #svc: Services;
  /** When the channel was last rebuilt (see {@link #call}). */
  #resetAt = 0;
  readonly #imageCache = new Map<string, { manifest: string; config: string }>();
  #namespaces: { at: number; names: string[] } | undefined;

  constructor(
    readonly socket: string = CONTAINERD_SOCKET,
    readonly timeoutMs = 2000,
    /** Namespaces to search; default: all namespaces containerd lists. */
    readonly namespaces?: readonly string[],
  ) {
    this.#svc = this.#connect();
  }

  #connect(): Services {
    const s = services();
    const g = lib();
    const target = `unix://${this.socket}`;
    const creds = g.credentials.createInsecure();
    // A restarted containerd is back within a second: retry the socket at most that far apart.
    const opt = {
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // Its own subchannels: a rebuilt channel must not inherit the failed, backing-off
      // connection grpc-js would otherwise share from its global pool.
      'grpc.use_local_subchannel_pool': 1,
    };
    // Every service on one channel, so one connection: the one the start-up listing and the
    // event stream opened. With a channel each (local subchannel pools share nothing), the
    // first container after start paid two more connects, images and content, inside its
    // lookup, and under load its records went out unknown meanwhile.
    const shared = { channelOverride: new g.Channel(target, creds, opt) };
    return {
      containers: new s.containers.v1.Containers(target, creds, shared),
      images: new s.images.v1.Images(target, creds, shared),
      namespaces: new s.namespaces.v1.Namespaces(target, creds, shared),
      content: new s.content.v1.Content(target, creds, shared),
      events: new s.events.v1.Events(target, creds, shared),
    };
  }

  /** The channel every service of `svc` shares (see {@link #connect}). */
  static #channelOf(svc: Services): grpc.ChannelInterface {
    return svc.containers.getChannel();
  }

  #md(ns: string): grpc.Metadata {
    const md = new (lib().Metadata)();
    md.set('containerd-namespace', ns);
    return md;
  }

  /**
   * One unary call. An UNAVAILABLE answer (containerd restarted: the channel
   * holds a failed connection and backs off) rebuilds the channel and tries
   * once more at once, waiting (within the call's deadline) for the new
   * connection, so new containers are not unknown for the backoff.
   */
  async #call<Req, Res>(
    pick: (svc: Services) => [grpc.Client, Unary<Req, Res>],
    req: Req,
    ns: string,
  ): Promise<Res | undefined> {
    const svc = this.#svc;
    try {
      return await this.#callOnce(...pick(svc), req, ns);
    } catch (err) {
      if (!unavailable(err)) throw err;
      if (this.#svc === svc && Date.now() - this.#resetAt > 200) {
        this.#resetAt = Date.now();
        this.#svc = this.#connect();
        // Calls still running on the old channel finish or time out first.
        setTimeout(() => ContainerdClient.#channelOf(svc).close(), 2 * this.timeoutMs).unref();
      }
      // containerd may still be starting: keep trying (each try waits for the connection) for one timeout.
      const end = Date.now() + this.timeoutMs;
      for (;;) {
        try {
          return await this.#callOnce(...pick(this.#svc), req, ns, true);
        } catch (again) {
          if (!unavailable(again) || Date.now() >= end) throw again;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }

  #callOnce<Req, Res>(
    client: grpc.Client,
    fn: Unary<Req, Res>,
    req: Req,
    ns: string,
    waitForReady = false,
  ): Promise<Res | undefined> {
    return new Promise((resolve, reject) => {
      const opts = { deadline: Date.now() + this.timeoutMs, waitForReady };
      fn.call(client, req, this.#md(ns), opts, (err, res) => {
        if (err) {
          if (err.code === lib().status.NOT_FOUND) return resolve(undefined);
          return reject(this.#error(err));
        }
        resolve(res);
      });
    });
  }

  #error(err: grpc.ServiceError): EnrichError {
    const code =
      err.code === lib().status.UNAVAILABLE || err.code === lib().status.DEADLINE_EXCEEDED
        ? 'RUNTIME_UNAVAILABLE'
        : 'RUNTIME_ERROR';
    const hint =
      code === 'RUNTIME_UNAVAILABLE' ? ' (is containerd running? pass its socket as containerd.socket)' : '';
    return new EnrichError(code, `containerd at ${this.socket}: ${err.details || err.message}${hint}`, {
      cause: err,
    });
  }

  /** Namespaces to search, listed at most every 5 s (`fresh`: list now). */
  async listNamespaces(fresh = false): Promise<string[]> {
    if (this.namespaces) return [...this.namespaces];
    const now = Date.now();
    if (!fresh && this.#namespaces && now - this.#namespaces.at < 5000) return this.#namespaces.names;
    const res = await this.#call((v) => [v.namespaces, v.namespaces.List], { filter: '' }, 'default');
    const names = (res?.namespaces ?? []).map((n) => n.name).sort();
    this.#namespaces = { at: now, names };
    return names;
  }

  async inspect(id: string, namespace?: string): Promise<RuntimeContainer | undefined> {
    const spaces = namespace !== undefined ? [namespace] : await this.listNamespaces();
    for (const ns of spaces) {
      const res = await this.#call((v) => [v.containers, v.containers.Get], { id }, ns);
      if (res?.container) return this.#describe(res.container, ns);
    }
    return undefined;
  }

  async describeFromImage(id: string, imageRef: string, namespace?: string): Promise<RuntimeContainer> {
    const ns = namespace ?? 'default';
    return this.#describe({ id, image: imageRef, labels: {} }, ns);
  }

  async list(): Promise<RuntimeContainer[]> {
    const out: RuntimeContainer[] = [];
    for (const ns of await this.listNamespaces()) {
      const res = await this.#call((v) => [v.containers, v.containers.List], { filters: [] }, ns);
      for (const c of res?.containers ?? []) out.push(await this.#describe(c, ns));
    }
    return out;
  }

  async #describe(c: PbContainer, ns: string): Promise<RuntimeContainer> {
    const missing: string[] = [];
    const imageRef = c.image || undefined;
    let digests: { manifest: string; config: string } | undefined;
    let incomplete = false;
    if (imageRef === undefined) {
      missing.push('image_ref: containerd records no image for this container');
    } else {
      try {
        digests = await this.#imageDigests(imageRef, ns);
        if (digests === undefined) {
          missing.push(`image_manifest_digest: image ${imageRef} is no longer in containerd namespace ${ns}`);
          missing.push(`image_config_digest: image ${imageRef} is no longer in containerd namespace ${ns}`);
        }
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        missing.push(`image_manifest_digest: ${why}`, `image_config_digest: ${why}`);
        incomplete = err instanceof EnrichError && err.code === 'RUNTIME_UNAVAILABLE';
      }
    }
    return {
      id: c.id,
      runtime: 'containerd',
      namespace: ns,
      ...(imageRef !== undefined && { imageRef }),
      ...(digests && { imageManifestDigest: digests.manifest, imageConfigDigest: digests.config }),
      labels: { ...c.labels },
      missing,
      ...(incomplete && { incomplete }),
    };
  }

  async #imageDigests(name: string, ns: string): Promise<{ manifest: string; config: string } | undefined> {
    const res = await this.#call((v) => [v.images, v.images.Get], { name }, ns);
    const target = res?.image?.target;
    if (!target?.digest) return undefined;
    const cached = this.#imageCache.get(`${ns}/${target.digest}`);
    if (cached) return cached;
    let manifest = target.digest;
    if (INDEX_TYPES.has(target.media_type)) {
      const index = JSON.parse((await this.#read(target.digest, ns)).toString('utf8')) as {
        manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
      };
      const arch = GOARCH[process.arch] ?? process.arch;
      const pick = index.manifests?.find(
        (m) => m.platform?.os === 'linux' && m.platform.architecture === arch,
      );
      if (!pick) throw new EnrichError('RUNTIME_ERROR', `image ${name} index has no linux/${arch} manifest`);
      manifest = pick.digest;
    }
    const m = JSON.parse((await this.#read(manifest, ns)).toString('utf8')) as {
      config?: { digest?: string };
    };
    if (!m.config?.digest)
      throw new EnrichError('RUNTIME_ERROR', `manifest ${manifest} of ${name} has no config`);
    const out = { manifest, config: m.config.digest };
    if (this.#imageCache.size > 1024) this.#imageCache.clear();
    this.#imageCache.set(`${ns}/${target.digest}`, out);
    return out;
  }

  #read(digest: string, ns: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const stream = this.#svc.content.Read({ digest, offset: 0, size: 0 }, this.#md(ns), {
        deadline: Date.now() + this.timeoutMs,
      });
      stream.on('data', (d: { data: Buffer }) => chunks.push(d.data));
      stream.on('error', (err: grpc.ServiceError) => reject(this.#error(err)));
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  }

  subscribe(onEvent: (e: RuntimeEvent) => void, onError: (err: Error) => void): () => void {
    let stopped = false;
    const call = this.#svc.events.Subscribe({
      filters: [
        'topic=="/containers/create"',
        'topic=="/tasks/start"',
        'topic=="/tasks/exit"',
        'topic=="/containers/delete"',
      ],
    });
    call.on('data', (env) => {
      const kind = TOPICS[env.topic];
      if (kind === undefined || !env.event) return;
      const id = protoStringField(env.event.value, 1);
      // TaskExit also fires for exec'd processes: only the init (exec id = container id) ends the container.
      if (env.topic === '/tasks/exit' && protoStringField(env.event.value, 2) !== id) return;
      if (!id) return;
      const pid = env.topic === '/tasks/start' ? protoVarintField(env.event.value, 2) : undefined;
      // ContainerCreate { id = 1; image = 2; }: the image outlives a container removed before it is inspected.
      const imageRef = env.topic === '/containers/create' ? protoStringField(env.event.value, 2) : undefined;
      onEvent({
        runtime: 'containerd',
        kind,
        id,
        namespace: env.namespace,
        ...(pid ? { pid } : {}),
        ...(imageRef ? { imageRef } : {}),
      });
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (!stopped && err.code !== lib().status.CANCELLED) onError(this.#error(err));
    });
    call.on('end', () => {
      if (!stopped)
        onError(new EnrichError('RUNTIME_UNAVAILABLE', `containerd event stream at ${this.socket} ended`));
    });
    return () => {
      stopped = true;
      call.cancel();
    };
  }

  close(): void {
    ContainerdClient.#channelOf(this.#svc).close();
  }
}

/** True for a call containerd could not be reached for (gRPC UNAVAILABLE). */
function unavailable(err: unknown): boolean {
  return (
    err instanceof EnrichError &&
    (err.cause as grpc.ServiceError | undefined)?.code === lib().status.UNAVAILABLE
  );
}

const TOPICS: Record<string, RuntimeEvent['kind']> = {
  '/containers/create': 'create',
  '/tasks/start': 'start',
  '/tasks/exit': 'stop',
  '/containers/delete': 'delete',
};
