import { dockerEventKind, eventImage } from './docker.js';
import { getJson, streamJson } from './http.js';
import { asDigest, num, obj, repoDigestFor, str, strMap } from './json.js';
import type { RuntimeClient, RuntimeContainer, RuntimeEvent } from './types.js';

/** libpod API prefix; podman 4.x and 5.x serve it. */
const API = '/v4.0.0/libpod';

/** Default rootful podman API socket (`podman system service`). */
export const PODMAN_SOCKET = '/run/podman/podman.sock';

/**
 * podman's libpod API over its unix socket. The image id is the config
 * digest; the manifest digest is the image's `Digest` (also given per
 * container as `ImageDigest` by podman >= 4).
 */
export class PodmanClient implements RuntimeClient {
  readonly runtime = 'podman' as const;

  constructor(
    readonly socket: string = PODMAN_SOCKET,
    readonly timeoutMs = 2000,
  ) {}

  async inspect(id: string): Promise<RuntimeContainer | undefined> {
    const c = obj(
      await getJson(this.socket, `${API}/containers/${encodeURIComponent(id)}/json`, this.timeoutMs),
    );
    if (c === undefined) return undefined;
    const config = obj(c.Config);
    const state = obj(c.State);
    const imageRef = str(c.ImageName) ?? str(config?.Image);
    const imageId = str(c.Image);
    const missing: string[] = [];
    let imageManifestDigest = str(c.ImageDigest);
    const imageConfigDigest = imageId === undefined ? undefined : asDigest(imageId);
    if (imageId === undefined) missing.push('image_config_digest: podman reported no image id');
    else if (imageManifestDigest === undefined) {
      const img = obj(
        await getJson(this.socket, `${API}/images/${encodeURIComponent(imageId)}/json`, this.timeoutMs),
      );
      const repoDigests = Array.isArray(img?.RepoDigests)
        ? img.RepoDigests.filter((d) => typeof d === 'string')
        : [];
      imageManifestDigest = str(img?.Digest) ?? repoDigestFor(imageRef, repoDigests);
      if (imageManifestDigest === undefined) {
        missing.push(`image_manifest_digest: podman has no manifest digest for image ${imageId}`);
      }
    }
    const pid = num(state?.Pid);
    return {
      id: str(c.Id) ?? id,
      runtime: 'podman',
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
    const imageManifestDigest = str(img?.Digest) ?? repoDigestFor(imageRef, repoDigests);
    const missing: string[] = [];
    const gone = `image ${imageRef} of container ${id} is not in podman's store`;
    if (imageId === undefined) missing.push(`image_config_digest: ${gone}`);
    if (imageManifestDigest === undefined) {
      missing.push(
        img === undefined
          ? `image_manifest_digest: ${gone}`
          : `image_manifest_digest: podman has no manifest digest for image ${imageRef}`,
      );
    }
    return {
      id,
      runtime: 'podman',
      imageRef,
      ...(imageManifestDigest !== undefined && { imageManifestDigest }),
      ...(imageId !== undefined && { imageConfigDigest: asDigest(imageId) }),
      labels: {},
      missing,
    };
  }

  async list(): Promise<RuntimeContainer[]> {
    const arr = await getJson(this.socket, `${API}/containers/json?all=true`, this.timeoutMs);
    const ids = Array.isArray(arr) ? arr.map((c) => str(obj(c)?.Id)).filter((x) => x !== undefined) : [];
    const out = await Promise.all(ids.map((id) => this.inspect(id).catch(() => undefined)));
    return out.filter((c) => c !== undefined);
  }

  subscribe(onEvent: (e: RuntimeEvent) => void, onError: (err: Error) => void): () => void {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    return streamJson(
      this.socket,
      `${API}/events?stream=true&filters=${filters}`,
      (o) => {
        const kind = dockerEventKind(obj(o));
        const id = str(obj(obj(o)?.Actor)?.ID) ?? str(obj(o)?.ID) ?? str(obj(o)?.id);
        const imageRef = eventImage(obj(o));
        if (kind !== undefined && id !== undefined)
          onEvent({ runtime: 'podman', kind, id, ...(imageRef !== undefined && { imageRef }) });
      },
      onError,
    );
  }

  close(): void {}
}
