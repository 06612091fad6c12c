import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { commandUnavailableReason, gate } from '@stellaops/testing';
import { describe, expect, it } from 'vitest';
import { NET_LAYOUT, netObjectPath } from '../src/net/index.js';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: Array<{ name: string; type_id: number; bits_offset: number }>;
}

function loadBtf(file: string): Map<number, BtfType> {
  const json = JSON.parse(
    execFileSync('bpftool', ['btf', 'dump', 'file', file, '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 }),
  );
  return new Map((json.types as BtfType[]).map((t) => [t.id, t]));
}

function sizeOf(types: Map<number, BtfType>, id: number): number {
  const t = types.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  switch (t.kind) {
    case 'INT':
    case 'STRUCT':
    case 'UNION':
    case 'ENUM':
      return t.size ?? 0;
    case 'ARRAY':
      return (t.nr_elems ?? 0) * sizeOf(types, t.type_id ?? 0);
    case 'TYPEDEF':
    case 'CONST':
    case 'VOLATILE':
      return sizeOf(types, t.type_id ?? 0);
    case 'PTR':
      return 8;
    default:
      throw new Error(`size of BTF kind ${t.kind}`);
  }
}

const file = netObjectPath();
const runnable = gate(
  'net layout vs BTF',
  existsSync(file) ? commandUnavailableReason('bpftool') : `${file} not built (make -C packages/probes/bpf)`,
);

describe.runIf(runnable)('net.h layout mirror', () => {
  const types = runnable ? loadBtf(file) : new Map<number, BtfType>();
  for (const [name, layout] of Object.entries(NET_LAYOUT)) {
    it(`${name} matches the object's BTF`, () => {
      const st = [...types.values()].find((t) => t.kind === 'STRUCT' && t.name === name);
      expect(st, `${name} not in BTF`).toBeDefined();
      expect(st?.size).toBe(layout.size);
      const fromBtf: Record<string, [number, number]> = {};
      for (const m of st?.members ?? []) fromBtf[m.name] = [m.bits_offset / 8, sizeOf(types, m.type_id)];
      expect(fromBtf).toEqual(
        Object.fromEntries(Object.entries(layout.members).map(([k, v]) => [k, [...v]])),
      );
    });
  }
});
