/**
 * @stellaops/enrich: cgroup → container → image digests on real runtimes,
 * process info and ELF symbolization for runtime evidence.
 */

export type { CgroupLocation, CgroupResolverOptions, ProcCgroups } from './cgroup.js';
export {
  CgroupResolver,
  defaultCgroupRoot,
  parseProcCgroup,
} from './cgroup.js';
export type {
  DigestFailure,
  DigestRequest,
  DigestResult,
  FileDigestStats,
  FileDigestsOptions,
} from './digest.js';
export { FileDigests } from './digest.js';
export type { ElfInfo, ElfSegment, ElfSymbol } from './elf.js';
export { fileOffsetToVaddr, readElf, symbolAt } from './elf.js';
export type { ContainerField } from './envelope.js';
export { containerField } from './envelope.js';
export type { EnrichErrorCode } from './errors.js';
export { EnrichError } from './errors.js';
export { CONTAINERD_SOCKET, ContainerdClient } from './external/containerd.js';
export { CRIO_SOCKET, CrioClient } from './external/crio.js';
export { DOCKER_SOCKET, DockerClient } from './external/docker.js';
export { PODMAN_SOCKET, PodmanClient } from './external/podman.js';
export type { RuntimeClient, RuntimeContainer, RuntimeEvent } from './external/types.js';
export type { KernelString } from './kernel-string.js';
export { kernelString } from './kernel-string.js';
export { LruCache } from './lru.js';
export type { CgroupMatch, RuntimeName } from './matchers.js';
export { matchCgroupPath } from './matchers.js';
export type { ReleasedBatch, SettlingBatch } from './ordered.js';
export { releaseInOrder } from './ordered.js';
export type { ProcessInfo, ProcessInfoOptions } from './process.js';
export { readProcessInfo } from './process.js';
export type {
  ContainerResolver,
  EnrichableItem,
  Enriched,
  EnrichmentStageOptions,
  EnrichmentStats,
} from './stage.js';
export { EnrichmentStage } from './stage.js';
export type { Mapping, StackFrame, SymbolResolverOptions, SymbolResolverStats } from './symbols.js';
export { parseMaps, SymbolResolver } from './symbols.js';
export type {
  ContainerInfo,
  ContainerTrackerOptions,
  K8sInfo,
  Resolution,
  RuntimeEndpoint,
  RuntimeStatus,
  TrackerStats,
} from './tracker.js';
export { ContainerTracker } from './tracker.js';
