/**
 * JSON Schema (draft 2020-12) of the reachability predicate: the one source
 * of `schema/reachability-v1.schema.json` (written by `npm run gen -w
 * @stellaops/reachability`; a test fails when the file drifts) and of the
 * docs' description. Mirrors `ReachabilityReport` in types.ts; a test
 * validates real reports against it.
 */

const u64 = {
  type: 'string',
  pattern: '^(0|[1-9][0-9]{0,19})$',
  description: 'unsigned 64-bit integer as a decimal string',
};
const wallNs = { ...u64, description: 'unix-epoch time in nanoseconds, decimal string' };
const digest = { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' };
const absPath = { type: 'string', pattern: '^/' };
const access = { enum: ['executed', 'loaded', 'opened'] };
const ecosystem = { enum: ['deb', 'apk', 'npm', 'pypi', 'generic'] };

function closed(properties: Record<string, unknown>, required: string[], description?: string) {
  return {
    type: 'object',
    ...(description ? { description } : {}),
    properties,
    required,
    additionalProperties: false,
  };
}

const source = {
  oneOf: [
    closed(
      {
        kind: { const: 'cyclonedx' },
        specVersion: { type: 'string' },
        tool: { type: 'string' },
        serialNumber: { type: 'string' },
      },
      ['kind', 'specVersion'],
    ),
    closed(
      {
        kind: { const: 'spdx' },
        spdxVersion: { type: 'string' },
        tool: { type: 'string' },
        documentNamespace: { type: 'string' },
      },
      ['kind', 'spdxVersion'],
    ),
    closed(
      {
        kind: { const: 'image' },
        manifestDigest: digest,
        configDigest: digest,
        layers: { type: 'array', items: digest },
      },
      ['kind', 'manifestDigest', 'configDigest', 'layers'],
    ),
    closed({ kind: { const: 'rootfs' }, dir: { type: 'string' } }, ['kind', 'dir']),
  ],
};

const pointer = closed(
  {
    chunk: { type: 'string', pattern: '^chunk-[0-9]{6,}\\.ndjson$' },
    seq: u64,
    type: { type: 'string' },
  },
  ['seq', 'type'],
  'one evidence record: its chunk file (chain evidence) and seq',
);

const fileObservation = closed(
  {
    path: absPath,
    access: { type: 'array', items: access, minItems: 1, uniqueItems: true },
    matched_by: { type: 'array', items: { enum: ['path', 'digest'] }, minItems: 1, uniqueItems: true },
    count: u64,
    first_seen_wall_ns: wallNs,
    last_seen_wall_ns: wallNs,
    evidence: { type: 'array', items: pointer },
  },
  ['path', 'access', 'matched_by', 'count', 'first_seen_wall_ns', 'last_seen_wall_ns', 'evidence'],
);

const packageEvidence = closed(
  {
    counts: closed({ executed: u64, loaded: u64, opened: u64 }, ['executed', 'loaded', 'opened']),
    first_seen_wall_ns: wallNs,
    last_seen_wall_ns: wallNs,
    files: { type: 'array', items: fileObservation, minItems: 1 },
  },
  ['counts', 'first_seen_wall_ns', 'last_seen_wall_ns', 'files'],
);

const absent = (name: string) => ({ not: { properties: { [name]: true }, required: [name] } });

const packageReport = {
  ...closed(
    {
      ref: { type: 'string', minLength: 1 },
      name: { type: 'string', minLength: 1 },
      version: { type: 'string' },
      purl: { type: 'string', pattern: '^pkg:' },
      ecosystem,
      status: { enum: ['observed', 'not_observed', 'unknown'] },
      reason: { enum: ['no_files', 'unattributed_records'] },
      file_count: { type: 'integer', minimum: 0 },
      observed: { ...packageEvidence, description: "what the image's records did to the package's files" },
      unattributed: {
        ...packageEvidence,
        description: "what records of containers not tied to any image did to the package's files",
      },
    },
    ['ref', 'name', 'ecosystem', 'status', 'file_count'],
  ),
  // `observed` exactly when status is "observed"; `reason` exactly when "unknown";
  // `unattributed` exactly when the reason is "unattributed_records".
  oneOf: [
    {
      properties: { status: { const: 'observed' }, observed: true },
      required: ['observed'],
      allOf: [absent('reason'), absent('unattributed')],
    },
    {
      properties: { status: { const: 'not_observed' } },
      allOf: [absent('observed'), absent('reason'), absent('unattributed')],
    },
    {
      properties: { status: { const: 'unknown' }, reason: { const: 'no_files' } },
      required: ['reason'],
      allOf: [absent('observed'), absent('unattributed')],
    },
    {
      properties: {
        status: { const: 'unknown' },
        reason: { const: 'unattributed_records' },
        unattributed: true,
      },
      required: ['reason', 'unattributed'],
      allOf: [absent('observed')],
    },
  ],
};

const unattributedContainer = closed(
  {
    id: { type: 'string' },
    cgroup_path: { type: 'string' },
    status: { type: 'string' },
    records: u64,
    first_seen_wall_ns: wallNs,
    last_seen_wall_ns: wallNs,
  },
  ['status', 'records', 'first_seen_wall_ns', 'last_seen_wall_ns'],
);

const window = closed(
  {
    start_wall_ns: { oneOf: [wallNs, { type: 'null' }] },
    end_wall_ns: { oneOf: [wallNs, { type: 'null' }] },
    source: { enum: ['collector_status', 'records', 'none'] },
    probes: {
      type: 'array',
      items: closed(
        {
          name: { type: 'string' },
          attached: { type: 'boolean' },
          attach_types: { type: 'array', items: { type: 'string' } },
          seen: u64,
          emitted: u64,
          lost: u64,
        },
        ['name', 'attached', 'attach_types', 'seen', 'emitted', 'lost'],
      ),
    },
    lost: u64,
    unattributed_records: {
      ...u64,
      description:
        "successful execs and opens naming a path or digest, in the window, of containers not tied to any image (host records of no cgroup and runtime set-up records set aside): any may have been this image's",
    },
    unattributed_containers: { type: 'array', maxItems: 100, items: unattributedContainer },
    final_status: { type: 'boolean' },
    runs: {
      type: 'array',
      items: closed(
        {
          host_id: { type: 'string' },
          start_wall_ns: wallNs,
          end_wall_ns: wallNs,
          final: { type: 'boolean' },
        },
        ['host_id', 'start_wall_ns', 'end_wall_ns', 'final'],
      ),
    },
  },
  [
    'start_wall_ns',
    'end_wall_ns',
    'source',
    'probes',
    'lost',
    'unattributed_records',
    'unattributed_containers',
    'final_status',
    'runs',
  ],
  'the conditions of every not_observed: the watched time, the probes attached in it, the events lost in it and the records no image could be tied to',
);

/** JSON Schema of the predicate of `https://stellaops.dev/attestations/reachability/v1`. */
export const REACHABILITY_PREDICATE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://stellaops.dev/attestations/reachability/v1/schema.json',
  title: 'StellaOps reachability predicate v1',
  description:
    'Which packages of a container image the runtime evidence shows executed, loaded or opened during the observation window. "not_observed" states the window, the probes, the lost events and the records no image could be tied to, never that a package is not affected.',
  ...closed(
    {
      report_version: { const: 1 },
      image: closed({ manifest_digest: digest }, ['manifest_digest']),
      inventory: closed({ source, packages: { type: 'integer', minimum: 0 } }, ['source', 'packages']),
      evidence: closed(
        {
          kind: { enum: ['chain', 'records'] },
          chunks: { type: 'array', items: { type: 'string' } },
          key_hints: { type: 'array', items: { type: 'string' } },
          records: u64,
          image_records: u64,
          runtime_setup_records: u64,
          containers: { type: 'array', items: { type: 'string' } },
        },
        ['kind', 'records', 'image_records', 'runtime_setup_records', 'containers'],
      ),
      window,
      summary: closed(
        {
          observed: { type: 'integer', minimum: 0 },
          not_observed: { type: 'integer', minimum: 0 },
          unknown: { type: 'integer', minimum: 0 },
          unattributed: { type: 'integer', minimum: 0 },
        },
        ['observed', 'not_observed', 'unknown', 'unattributed'],
      ),
      packages: { type: 'array', items: packageReport },
      unowned_paths: {
        type: 'array',
        maxItems: 1000,
        items: closed({ path: absPath, access: { type: 'array', items: access, minItems: 1 }, count: u64 }, [
          'path',
          'access',
          'count',
        ]),
      },
    },
    ['report_version', 'image', 'inventory', 'evidence', 'window', 'summary', 'packages', 'unowned_paths'],
  ),
} as const;

/** The schema file's text, exactly as `schema/reachability-v1.schema.json` holds it. */
export function schemaFileText(): string {
  return `${JSON.stringify(REACHABILITY_PREDICATE_SCHEMA, null, 2)}\n`;
}
