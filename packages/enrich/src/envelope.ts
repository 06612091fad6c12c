import type { Resolution } from './tracker.js';

/**
 * The evidence envelope's optional `container` object (schema v1), from a
 * resolution. Host processes get none (undefined). Every member is optional;
 * `status` and `cgroup_path` say how far resolution got.
 */
export interface ContainerField {
  id?: string;
  runtime?: string;
  image_ref?: string;
  image_manifest_digest?: string;
  image_config_digest?: string;
  k8s?: { pod?: string; namespace?: string; pod_uid?: string; container?: string };
  cgroup_path?: string;
  status: 'resolved' | 'unknown';
}

/** Map a {@link Resolution} to the envelope's `container` member; undefined for host processes. */
export function containerField(r: Resolution): ContainerField | undefined {
  if (r.status === 'host') return undefined;
  if (r.status === 'unknown') {
    return r.cgroupPath !== undefined
      ? { cgroup_path: r.cgroupPath, status: 'unknown' }
      : { status: 'unknown' };
  }
  const c = r.container;
  const k8s: NonNullable<ContainerField['k8s']> = {};
  if (c.k8s?.pod !== undefined) k8s.pod = c.k8s.pod;
  if (c.k8s?.namespace !== undefined) k8s.namespace = c.k8s.namespace;
  if (c.k8s?.podUid !== undefined) k8s.pod_uid = c.k8s.podUid;
  if (c.k8s?.container !== undefined) k8s.container = c.k8s.container;
  return {
    id: c.id,
    runtime: c.runtime,
    ...(c.imageRef !== undefined && { image_ref: c.imageRef }),
    ...(c.imageManifestDigest !== undefined && { image_manifest_digest: c.imageManifestDigest }),
    ...(c.imageConfigDigest !== undefined && { image_config_digest: c.imageConfigDigest }),
    ...(Object.keys(k8s).length > 0 && { k8s }),
    cgroup_path: r.cgroupPath,
    status: 'resolved',
  };
}
