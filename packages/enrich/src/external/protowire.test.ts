import { describe, expect, it } from 'vitest';
import { protoStringField, protoVarintField } from './protowire.js';

// containerd.events.TaskStart{container_id: "web", pid: 300}, encoded by hand:
// field 1 (len) "web", field 2 (varint) 300 = 0xac 0x02.
const taskStart = Uint8Array.from([0x0a, 0x03, 0x77, 0x65, 0x62, 0x10, 0xac, 0x02]);

describe('protobuf wire fields', () => {
  it('reads the id string and the pid varint of a TaskStart', () => {
    expect(protoStringField(taskStart, 1)).toBe('web');
    expect(protoVarintField(taskStart, 2)).toBe(300);
  });
  it('answers undefined for an absent field, a wrong wire type, and truncated input', () => {
    expect(protoStringField(taskStart, 3)).toBeUndefined();
    expect(protoVarintField(taskStart, 1)).toBeUndefined();
    expect(protoStringField(taskStart.subarray(0, 3), 1)).toBeUndefined();
    expect(protoVarintField(Uint8Array.from([0x10, 0xff]), 2)).toBeUndefined();
  });
});
