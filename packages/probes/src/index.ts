export type { CgroupMkdirEvent } from './cgroup-event.js';
export { decodeEvent, FileOpenView, viewEvent } from './decode.js';
export type { ProbesErrorCode } from './errors.js';
export { DecodeError, ProbeOptionError, ProbesError } from './errors.js';
export type {
  EventHeader,
  ExecEvent,
  ExitEvent,
  FileOpenEvent,
  OpenSyscall,
  PathResolution,
  ProbeEvent,
  ProbeName,
} from './events.js';
export type { Field, StructLayout } from './layout.js';
export { FE_PATH_FAULT, FE_PATH_TRUNCATED, KIND, LAYOUT, RESOLUTIONS, SYSCALLS } from './layout.js';
export type {
  Endpoint,
  NetEvent,
  NetProbeCounters,
  NetProbeName,
  NetProbeOptions,
  NetProbeStatus,
  NetProbes,
  NetUserStacks,
  SockAddr,
  SockEvent,
  SocketTuple,
  TcpStateEvent,
  TlsEvent,
  TlsSessionInfo,
} from './net/index.js';
export {
  decodeNetRecord,
  decodeSockaddr,
  ElfError,
  NET_KIND,
  NET_LAYOUT,
  netObjectPath,
  openNetProbes,
  TlsCorrelator,
} from './net/index.js';
export type { ObjectName } from './objects.js';
export { objectPath } from './objects.js';
export type { ProbeFilters, ProbeSetOptions } from './options.js';
export type { DedupStats, ProbeCounters, ProbeSet, ProbeStatus } from './probeset.js';
export { openProbeSet } from './probeset.js';
