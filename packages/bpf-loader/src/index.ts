export { bindingCandidates, loadBinding, loadedBindingPath } from './binding.js';
export type { CapabilityName, CapabilityReaders, CapabilityState, MemlockAccounting } from './caps.js';
export { bpfChargesMemlock, effectiveCapabilities, missingCapabilities, readCapabilities } from './caps.js';
export type { BpfErrorCode, BpfErrorDetails } from './errors.js';
export { BpfError, NotSupportedError } from './errors.js';
export type { BpfMap, MapInfo, MapUpdateFlag } from './map.js';
export type { AttachSpec, BpfLink, GlobalInfo, OpenOptions, ProgramInfo } from './object.js';
export { BpfObject, programKind } from './object.js';
export type {
  BpfFeature,
  FeatureSupport,
  PreflightOptions,
  PreflightReport,
  ProgramTypeStatus,
} from './preflight.js';
export {
  MIN_KERNEL,
  numPossibleCpus,
  preflight,
  probeFeature,
  requireFeature,
  resetFeatureCache,
  tracefsMount,
  tracefsPath,
} from './preflight.js';
export type { RecordBatch, RingBufferOptions, RingBufferStats } from './ringbuf.js';
export { makeRecordBatch, RingBufferReader } from './ringbuf.js';
