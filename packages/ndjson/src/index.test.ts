import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { exportsMap } from '../../../tsup.base.js';
import { entry, extraExports } from '../tsup.config.js';
import type { EvidenceRecord, FileOpenRecord, NetConnectRecord, ProbeStatus } from './index.js';
import * as api from './index.js';

describe('public surface of @stellaops/ndjson', () => {
  it('exports exactly these runtime names (a rename must be deliberate)', () => {
    expect(Object.keys(api).sort()).toEqual([
      'DEFAULT_MAX_LINE_BYTES',
      'EVIDENCE_JSON_SCHEMA',
      'NdjsonError',
      'RECORD_SCHEMAS',
      'RECORD_TYPES',
      'SCHEMA_VERSION',
      'TCP_STATES',
      'U64_MAX',
      'VALIDATOR_ONLY_RULES',
      'addU64',
      'assertSupported',
      'bytesField',
      'bytesFromField',
      'canonicalize',
      'compareRecords',
      'compareU64',
      'compileFused',
      'decodeLine',
      'decodeLines',
      'decodeStream',
      'encodeRecord',
      'encodeRecordBytes',
      'formatIp',
      'isU64',
      'parseIp',
      'u64Decimal',
      'u64Halves',
      'u64String',
      'validateRecord',
      'writeInt',
      'writeU64',
    ]);
    expect(api.SCHEMA_VERSION).toBe(1);
  });

  it('record types follow the shared contract', () => {
    expectTypeOf<FileOpenRecord['seq']>().toEqualTypeOf<string>();
    expectTypeOf<FileOpenRecord['pid']>().toEqualTypeOf<number>();
    expectTypeOf<FileOpenRecord['path']>().toEqualTypeOf<string | { readonly b64: string }>();
    expectTypeOf<FileOpenRecord['path_resolution']>().toEqualTypeOf<
      'absolute' | 'cwd' | 'dirfd' | 'fd' | 'unresolved'
    >();
    expectTypeOf<FileOpenRecord['container']>().toEqualTypeOf<api.ContainerInfo | undefined>();
    expectTypeOf<NetConnectRecord['family']>().toEqualTypeOf<'inet' | 'inet6' | 'unix' | 'other'>();
    expectTypeOf<ProbeStatus['lost']>().toEqualTypeOf<string>();
    expectTypeOf<EvidenceRecord['type']>().toEqualTypeOf<api.RecordType>();
    // @ts-expect-error 64-bit values are strings, never numbers
    const bad: Pick<FileOpenRecord, 'cgroup_id'> = { cgroup_id: 5 };
    expect(bad).toBeDefined();
  });

  it('package.json exports are derived from the tsup entries and ship the JSON Schema', () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
    expect(pkg.exports).toEqual(exportsMap(entry, extraExports));
    expect(pkg.files).toContain('schema');
    expect(pkg.scripts.bench).toBe('tsx bench/codec.bench.ts');
  });
});
