import { getJson, streamJson } from './http.js';
import { asDigest, num, obj, repoDigestFor, str, strMap } from './json.js';
import type { RuntimeClient, RuntimeContainer, RuntimeEvent } from './types.js';

/** Docker Engine API version used in paths: understood by dockerd 20.10 through 28. */
const API = '/v1.41';

/** Default dockerd socket. */
export const DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * Docker Engine API over its unix socket. With Docker's classic image store
 * the image id is the config digest; the manifest digest exists only as a
 * repo digest, which an image that was loaded (not pulled) does not have.
 */
export class DockerClient implements RuntimeClient {
  readonly runtime = 'docker' as const;

  constructor(
    readonly socket: string = DOCKER_SOCKET,
    readonly timeoutMs = 2000,
  ) {}

  async inspect(id: string): Promise<RuntimeContainer | undefined> {
    const c = obj(
      await getJson(this.socket, `${API}/containers/${encodeURIComponent(id)}/json`, this.timeoutMs),
    );
    if (c === undefined) return undefined;
    const config = obj(c.Config);
    const state = obj(c.State);
    const imageRef = str(config?.Image);
    const imageId = str(c.Image);
    const missing: string[] = [];
    let imageManifestDigest: string | undefined;
    let imageConfigDigest: string | undefined;
    if (imageId === undefined) {
      missing.push('image_config_digest: docker reported no image id');
    } else {
      imageConfigDigest = asDigest(imageId);
      const img = obj(
        await getJson(this.socket, `${API}/images/${encodeURIComponent(imageId)}/json`, this.timeoutMs),
      );
      const repoDigests = Array.isArray(img?.RepoDigests)
        ? img.RepoDigests.filter((d) => typeof d === 'string')
        : [];
      imageManifestDigest = repoDigestFor(imageRef, repoDigests);
      if (img === undefined)
        missing.push(`image_manifest_digest: image ${imageId} is no longer in docker's store`);
      else if (imageManifestDigest === undefined) {
        missing.push(
          'image_manifest_digest: docker has no repo digest for a loaded (never pulled or pushed) image',
        );
      }
    }
    const pid = num(state?.Pid);
    return {
      id: str(c.Id) ?? id,
      runtime: 'docker',
      ...(imageRef !== undefined && { imageRef }),
      ...(imageManifestDigest !== undefined && { imageManifestDigest }),
      ...(imageConfigDigest !== undefined && { imageConfigDigest }),
      labels: strMap(config?.Labels),
      ...(pid !== undefined && pid > 0 && { pid }),
      ...(state?.Running === false && { exited: true }),
      missing,
    };
  }

  async describeFromImage(id: string, imageRef: string): Promise<RuntimeContainer> {
    const img = obj(
      await getJson(this.socket, `${API}/images/${encodeURIComponent(imageRef)}/json`, this.timeoutMs),
    );
    const imageId = str(img?.Id);
    const repoDigests = Array.isArray(img?.RepoDigests)
      ? img.RepoDigests.filter((d) => typeof d === 'string')
      : [];
    const imageManifestDigest = repoDigestFor(imageRef, repoDigests);
    const missing: string[] = [];
    if (imageId === undefined) {
      missing.push(`image_config_digest: image ${imageRef} of container ${id} is not in docker's store`);
    }
    if (imageManifestDigest === undefined) {
      missing.push(
        img === undefined
          ? `image_manifest_digest: image ${imageRef} of container ${id} is not in docker's store`
          : 'image_manifest_digest: docker has no repo digest for a loaded (never pulled or pushed) image',
      );
    }
    return {
      id,
      runtime: 'docker',
      imageRef,
      ...(imageManifestDigest !== undefined && { imageManifestDigest }),
      ...(imageId !== undefined && { imageConfigDigest: asDigest(imageId) }),
      labels: {},
      missing,
    };
  }

  async list(): Promise<RuntimeContainer[]> {
    const arr = await getJson(this.socket, `${API}/containers/json?all=1`, this.timeoutMs);
    const ids = Array.isArray(arr) ? arr.map((c) => str(obj(c)?.Id)).filter((x) => x !== undefined) : [];
    const out = await Promise.all(ids.map((id) => this.inspect(id).catch(() => undefined)));
    return out.filter((c) => c !== undefined);
  }

  subscribe(onEvent: (e: RuntimeEvent) => void, onError: (err: Error) => void): () => void {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    return streamJson(
      this.socket,
      `${API}/events?filters=${filters}`,
      (o) => {
        const kind = dockerEventKind(obj(o));
        const id = str(obj(obj(o)?.Actor)?.ID) ?? str(obj(o)?.id);
        const imageRef = eventImage(obj(o));
        if (kind !== undefined && id !== undefined)
          onEvent({ runtime: 'docker', kind, id, ...(imageRef !== undefined && { imageRef }) });
      },
      onError,
    );
  }

  close(): void {}
}

/** The image reference a docker or podman container event names (`Actor.Attributes.image`). */
export function eventImage(o: Record<string, unknown> | undefined): string | undefined {
  return str(obj(obj(o?.Actor)?.Attributes)?.image) ?? str(o?.Image) ?? str(o?.from);
}

/** Docker and podman event actions → lifecycle kinds. */
export function dockerEventKind(o: Record<string, unknown> | undefined): RuntimeEvent['kind'] | undefined {
  if (o === undefined) return undefined;
  const type = str(o.Type) ?? str(o.type);
  if (type !== undefined && type !== 'container') return undefined;
  const action = str(o.Action) ?? str(o.status) ?? str(o.Status);
  switch (action) {
    case 'create':
      return 'create';
    case 'start':
    case 'init':
      return 'start';
    case 'die':
    case 'died':
    case 'stop':
      return 'stop';
    case 'destroy':
    case 'remove':
      return 'delete';
    default:
      return undefined;
  }
}
