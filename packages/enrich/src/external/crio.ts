import { getJson } from './http.js';
import { num, obj, str, strMap } from './json.js';
import type { RuntimeClient, RuntimeContainer, RuntimeEvent } from './types.js';

/** Default CRI-O socket. */
export const CRIO_SOCKET = '/var/run/crio/crio.sock';

/**
 * CRI-O's HTTP inspect endpoint (`GET /containers/<id>` on its socket). It
 * has no list and no event stream: containers are found on first sight of
 * their cgroup. `image_ref` carries the manifest digest when the image was
 * pulled by digest reference; CRI-O does not report the config digest here.
 */
export class CrioClient implements RuntimeClient {
  readonly runtime = 'cri-o' as const;

  constructor(
    readonly socket: string = CRIO_SOCKET,
    readonly timeoutMs = 2000,
  ) {}

  async inspect(id: string): Promise<RuntimeContainer | undefined> {
    const c = obj(await getJson(this.socket, `/containers/${encodeURIComponent(id)}`, this.timeoutMs));
    if (c === undefined) return undefined;
    const imageRef = str(c.image);
    const ref = str(c.image_ref);
    const at = ref?.indexOf('@') ?? -1;
    const imageManifestDigest = ref !== undefined && at >= 0 ? ref.slice(at + 1) : undefined;
    const missing = ['image_config_digest: CRI-O inspect does not report the image config digest'];
    if (imageManifestDigest === undefined) {
      missing.push('image_manifest_digest: CRI-O reported no digest reference for the image');
    }
    const pid = num(c.pid);
    return {
      id,
      runtime: 'cri-o',
      ...(imageRef !== undefined && { imageRef }),
      ...(imageManifestDigest !== undefined && { imageManifestDigest }),
      labels: strMap(c.labels),
      ...(pid !== undefined && pid > 0 && { pid }),
      missing,
    };
  }

  async list(): Promise<RuntimeContainer[]> {
    return [];
  }

  subscribe(_onEvent: (e: RuntimeEvent) => void, _onError: (err: Error) => void): () => void {
    return () => {};
  }

  close(): void {}
}
