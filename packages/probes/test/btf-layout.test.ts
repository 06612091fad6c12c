import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LAYOUT, objectPath } from '@stellaops/probes';
import { commandUnavailableReason, gate } from '@stellaops/testing';
import { beforeAll, describe, expect, it } from 'vitest';

// The decoder's layout table (src/layout.ts) against the compiled object's
// BTF: a struct change in bpf/*.h that is not mirrored fails here.

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
}
interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  vars?: Array<{ type_id: number }>;
}

const bpfDir = fileURLToPath(new URL('../bpf', import.meta.url));
const tools = commandUnavailableReason('bpftool') ?? commandUnavailableReason('clang');

describe.runIf(gate('probes BTF layout check', tools))(
  'BTF of fileexec.bpf.o matches the decoder layout',
  () => {
    const byId = new Map<number, BtfType>();
    const byName = new Map<string, BtfType>();

    beforeAll(() => {
      // Incremental: rebuilds only when a source is newer than the object.
      execFileSync('make', ['-s', '-C', bpfDir], { stdio: 'inherit' });
      const json = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objectPath('fileexec')], {
        maxBuffer: 64 * 1024 * 1024,
      }).toString();
      for (const t of (JSON.parse(json) as { types: BtfType[] }).types) {
        byId.set(t.id, t);
        if (t.kind === 'STRUCT' || t.kind === 'DATASEC' || t.kind === 'VAR') byName.set(t.name, t);
      }
    });

    function sizeOf(id: number): number {
      const t = byId.get(id);
      if (!t) throw new Error(`BTF type ${id} missing`);
      switch (t.kind) {
        case 'INT':
        case 'STRUCT':
        case 'UNION':
        case 'ENUM':
        case 'ENUM64':
          return t.size!;
        case 'PTR':
          return 8;
        case 'ARRAY':
          return t.nr_elems! * sizeOf(t.type_id!);
        case 'TYPEDEF':
        case 'VOLATILE':
        case 'CONST':
        case 'RESTRICT':
          return sizeOf(t.type_id!);
        default:
          throw new Error(`no size rule for BTF kind ${t.kind}`);
      }
    }

    for (const [struct, layout] of Object.entries(LAYOUT)) {
      it(`struct ${struct}: size and every member's offset and size`, () => {
        const t = byName.get(struct);
        expect(
          t,
          `struct ${struct} is not in the object's BTF (unused types are dropped: use it in a map or event)`,
        ).toBeDefined();
        expect(t!.size).toBe(layout.size);
        const actual = Object.fromEntries(
          t!.members!.map((m) => [m.name, [m.bits_offset / 8, sizeOf(m.type_id)] as const]),
        );
        expect(actual).toEqual(layout.members);
      });
    }

    it('has the settings openProbeSet writes and the maps it uses', () => {
      const vars = new Set([...byId.values()].filter((t) => t.kind === 'VAR').map((t) => t.name));
      for (const v of [
        'cfg_cgroup_filter',
        'cfg_path_filter',
        'cfg_path_allow',
        'cfg_dedup',
        'cfg_wakeup_bytes',
      ]) {
        expect(vars, v).toContain(v);
      }
      for (const m of [
        'events',
        'counters',
        'dedup_stats',
        'cgroup_allow',
        'pid_exclude',
        'path_prefixes',
        'dedup',
      ]) {
        expect(vars, m).toContain(m);
      }
    });
  },
);
