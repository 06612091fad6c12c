export type { AttachedLibrary, UprobeHost, UprobeSpec } from './attach.js';
export { LIBC_UPROBES, SSL_IO_SYMBOLS, SSL_UPROBES, UprobeAttacher } from './attach.js';
export type { TlsSessionInfo } from './correlate.js';
export { TlsCorrelator } from './correlate.js';
export type {
  Endpoint,
  NetEvent,
  NetHeader,
  SockAddr,
  SockEvent,
  SocketTuple,
  TcpStateEvent,
  TlsEvent,
} from './decode.js';
export { decodeNetRecord, decodeSockaddr, formatIPv4, formatIPv6 } from './decode.js';
export type { LibraryKind, LibraryTarget, MapsEntry, ScannerOptions } from './discovery.js';
export {
  classifyLibrary,
  fileKey,
  HOST_LIBRARY_DIRS,
  hostLibraries,
  LibraryScanner,
  parseMaps,
  STATIC_SSL_REQUIRED,
} from './discovery.js';
export type { ElfFunction } from './elf.js';
export { dynamicFunctions, dynamicFunctionsAsync, ElfError } from './elf.js';
export type {
  NetDirection,
  NetField,
  NetProbeName,
  NetStructLayout,
  SockCall,
  TcpEvent,
  TlsOp,
  TlsResult,
} from './layout.js';
export { NET_COUNTER_SLOT, NET_KIND, NET_LAYOUT } from './layout.js';
export type {
  NetProbeCounters,
  NetProbeOptions,
  NetProbeStatus,
  NetProbes,
  NetUserStacks,
} from './runtime.js';
export { netObjectPath, openNetProbes } from './runtime.js';
