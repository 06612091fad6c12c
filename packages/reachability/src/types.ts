/**
 * The data contract of @stellaops/reachability: package inventories, the
 * options of `analyze`, and the report it returns. The report is also the
 * predicate of the signed statement (`toStatement`), so its members are
 * snake_case like the evidence records, and every u64 (wall-clock ns, counts
 * that can exceed 2^53) is a decimal string as in the record contract.
 */
import type { EvidenceRecord, RecordType } from '@stellaops/ndjson';

/** Package ecosystems this package understands; anything else is "generic". */
export type Ecosystem = 'deb' | 'apk' | 'npm' | 'pypi' | 'generic';

/** One package of an image, from an SBOM or from the image's package databases. */
export interface InventoryPackage {
  /**
   * Stable reference of the package inside its inventory: the purl when there
   * is one, else the CycloneDX `bom-ref`, the SPDX `SPDXID`, or
   * `<ecosystem>:<name>@<version>` for package databases.
   */
  ref: string;
  name: string;
  version?: string;
  purl?: string;
  ecosystem: Ecosystem;
  /**
   * Files the package installs, as absolute in-image paths, normalised
   * (no `.`/`..`, no double or trailing slash). Empty when the inventory does
   * not say: the package is then reported `unknown` (unless it has `directories`).
   */
  files: string[];
  /**
   * Directories the package owns whole, when the inventory names the
   * directory rather than its files (an npm package directory in an SBOM):
   * every path under it except nested `node_modules` is the package's.
   */
  directories?: string[];
  /** Where the package is installed, for ecosystems that install per directory (npm package dir, Python dist-info dir). */
  location?: string;
  /** `sha256:<hex>` content digests by path (subset of `files`), where the inventory has SHA-256. */
  digests?: Record<string, string>;
}

/** Where an inventory came from. */
export type InventorySource =
  | { kind: 'cyclonedx'; specVersion: string; tool?: string; serialNumber?: string }
  | { kind: 'spdx'; spdxVersion: string; tool?: string; documentNamespace?: string }
  | { kind: 'image'; manifestDigest: string; configDigest: string; layers: string[] }
  | { kind: 'rootfs'; dir: string };

/**
 * Symbolic links of the image's filesystem: absolute link path → link target
 * exactly as stored (absolute or relative to the link's directory). Used to
 * bring evidence paths and inventory paths to the same real path
 * (e.g. `/bin` → `usr/bin` on usr-merged images).
 */
export type SymlinkMap = Record<string, string>;

/** A package inventory of one image. */
export interface Inventory {
  source: InventorySource;
  packages: InventoryPackage[];
  /** Symlinks of the image's filesystem, when the inventory was read from the image (or rootfs). */
  symlinks?: SymlinkMap;
}

/** Options of `inventoryFromImage`. */
export interface ImageInventoryOptions {
  /** `sha256:<hex>` of the image manifest (or of an image index: the platform's manifest is used). */
  manifestDigest: string;
  /** containerd content store root; default `/var/lib/containerd/io.containerd.content.v1.content`. */
  contentStore?: string;
  /** Platform to pick from an image index; default the running one (`linux/amd64`, `linux/arm64`, ...). */
  platform?: { os: string; architecture: string; variant?: string };
}

/** How a file of a package was seen in the evidence. */
export type Access = 'executed' | 'loaded' | 'opened';

/** Pointer to one evidence record: the chunk file (for chain evidence) and the record's `seq`. */
export interface EvidencePointer {
  /** Chunk file name inside the evidence directory; absent for records given directly. */
  chunk?: string;
  seq: string;
  type: RecordType;
}

/** One file of a package that the evidence touched. */
export interface FileObservation {
  /** The package's path of the file (as the inventory lists it). */
  path: string;
  /** How it was touched, in the order executed, loaded, opened (each at most once). */
  access: Access[];
  /** How the record was tied to the file: by (symlink-resolved) path, or by SHA-256 content digest. */
  matched_by: ('path' | 'digest')[];
  /** Records that touched this file (after the collector's own dedup), as a decimal string. */
  count: string;
  first_seen_wall_ns: string;
  last_seen_wall_ns: string;
  /** The first records that touched it (at most `maxEvidencePerFile`). */
  evidence: EvidencePointer[];
}

/** Per-access record counts, decimal strings. */
export interface AccessCounts {
  executed: string;
  loaded: string;
  opened: string;
}

/** Reachability of one package. */
export type PackageStatus = 'observed' | 'not_observed' | 'unknown';

/**
 * Why a package is `unknown`: the inventory lists no file for it
 * (`no_files`), or records whose container the collector could not tie to an
 * image touched its files (`unattributed_records`): they may have been this
 * image's, so "not observed" cannot be claimed.
 */
export type UnknownReason = 'no_files' | 'unattributed_records';

/** What a set of records did to a package's files: per-access counts, first and last seen, the files. */
export interface PackageEvidence {
  counts: AccessCounts;
  first_seen_wall_ns: string;
  last_seen_wall_ns: string;
  /** The package's files the records touched, sorted by path. */
  files: FileObservation[];
}

/** One package's entry in the report. */
export interface PackageReport {
  ref: string;
  name: string;
  version?: string;
  purl?: string;
  ecosystem: Ecosystem;
  status: PackageStatus;
  /** How many files the inventory lists for the package. */
  file_count: number;
  /** Present when `status` is "unknown". */
  reason?: UnknownReason;
  /** Present when `status` is "observed": what the image's records did to the package's files. */
  observed?: PackageEvidence;
  /**
   * Present when `reason` is "unattributed_records": what the records of
   * unattributed containers did to the package's files, matched in the
   * image's view as the image's own records are, with pointers to them.
   */
  unattributed?: PackageEvidence;
}

/**
 * Records of one container (or cgroup) the collector could not tie to an
 * image: `container.status` other than "resolved", or no
 * `container.image_manifest_digest`.
 */
export interface UnattributedContainer {
  /** Container ID, when the record carries one. */
  id?: string;
  /** cgroup v2 path of the records, when they carry one. */
  cgroup_path?: string;
  /** `container.status` of the records ("unknown", or "resolved" without an image digest). */
  status: string;
  /** Its records in the window (runtime set-up records set aside), decimal string. */
  records: string;
  first_seen_wall_ns: string;
  last_seen_wall_ns: string;
}

/** One probe's state over the observation window (summed over the window's collector_status records). */
export interface ProbeWindow {
  name: string;
  /** True when every status record of the window says the probe was attached. */
  attached: boolean;
  /** Attach types seen for it (e.g. "tp_btf"), sorted. */
  attach_types: string[];
  seen: string;
  emitted: string;
  lost: string;
}

/**
 * The conditions a "not_observed" claim carries: the time the collector
 * watched the image, which probes were attached, and how many events were
 * lost in that time.
 */
export interface ObservationWindow {
  /** Start and end of the window, unix-epoch ns; null when there is no evidence at all. */
  start_wall_ns: string | null;
  end_wall_ns: string | null;
  /**
   * "collector_status": the window is the span of the collector's status
   * windows; "records": no status records, so the first and last record of
   * the image bound it; "none": no evidence.
   */
  source: 'collector_status' | 'records' | 'none';
  probes: ProbeWindow[];
  /** Events lost over all probes in the window (a non-zero value weakens every "not_observed"). */
  lost: string;
  /**
   * Records in the window of containers whose image could not be resolved
   * (runtime set-up records set aside): any of them may have been this
   * image's. A package whose files they touched is `unknown` with reason
   * `unattributed_records`; a non-zero value weakens every other
   * "not_observed" as `lost` does (a record may name a file by a path the
   * inventory does not).
   */
  unattributed_records: string;
  /** Those records per container ID (else cgroup path): the most records first, at most 100. */
  unattributed_containers: UnattributedContainer[];
  /** True when the run's final collector_status (`final: true`) is inside the evidence. */
  final_status: boolean;
  /**
   * The collector runs inside the evidence (one per host and start), each
   * with the span its latest status record covers: the window is their
   * union, and a gap between runs was not watched.
   */
  runs: { host_id: string; start_wall_ns: string; end_wall_ns: string; final: boolean }[];
}

/** What evidence the report was built from. */
export interface EvidenceSummary {
  kind: 'chain' | 'records';
  /** For chain evidence: the verified chunk files, in order. */
  chunks?: string[];
  /** For chain evidence: hints of the keys it verified with (base64 SHA-256 of the SPKI). */
  key_hints?: string[];
  /** Records read, in total. */
  records: string;
  /** Records of the image (its container(s)), after setting aside the runtime's set-up records. */
  image_records: string;
  /** Records set aside as the container runtime's own set-up (`runtime_setup: true`). */
  runtime_setup_records: string;
  /** Container IDs of the image seen in the evidence, sorted. */
  containers: string[];
}

/** A path of the image that the evidence touched but no package of the inventory owns. */
export interface UnownedPath {
  path: string;
  access: Access[];
  count: string;
}

/** The result of `analyze`: also the predicate of the reachability statement. */
export interface ReachabilityReport {
  /** Always 1 for this predicate version. */
  report_version: 1;
  image: { manifest_digest: string };
  inventory: { source: InventorySource; packages: number };
  evidence: EvidenceSummary;
  window: ObservationWindow;
  /** Package counts per status; `unattributed` is how many of the `unknown` have reason `unattributed_records`. */
  summary: { observed: number; not_observed: number; unknown: number; unattributed: number };
  /** Sorted by name, then version, then ref. */
  packages: PackageReport[];
  /** Paths touched that no package owns (at most 1000, most-touched first), for inventory gaps. */
  unowned_paths: UnownedPath[];
}

/** Options of `analyze`. Give either `records` or `chainDir` (with `publicKeys`). */
export interface AnalyzeOptions {
  /** `sha256:<hex>` of the image manifest: only records whose `container.image_manifest_digest` equals it count. */
  imageDigest: string;
  inventory: Inventory;
  /** Records as `collect()` returns them (include its collector_status records for the window). */
  records?: Iterable<EvidenceRecord> | AsyncIterable<EvidenceRecord>;
  /** An evidence directory: verified with `verifyChain` first; an unverified chain is refused. */
  chainDir?: string;
  /** PEM public key(s) the chain must verify with (required with `chainDir`). */
  publicKeys?: string[];
  /** Sigstore `trusted_root.json` for keyless (Fulcio) chains. */
  trustedRoot?: string;
  /**
   * Refuse an open chain (no end-of-stream statement: the collector is still
   * running, or its later chunks were deleted), as `verify-chain` does
   * without `--allow-open`. Default false: an open chain's sealed chunks are read.
   */
  requireEnd?: boolean;
  /** Symlinks of the image, when the inventory (an SBOM) has none: e.g. `(await inventoryFromImage(...)).symlinks`. */
  symlinks?: SymlinkMap;
  /** Evidence pointers kept per file (default 5). */
  maxEvidencePerFile?: number;
}
