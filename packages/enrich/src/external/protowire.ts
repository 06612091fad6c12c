/**
 * Reads one string field from a protobuf message's wire bytes. The
 * containerd event payloads (inside `Envelope.event`, a `google.protobuf.Any`)
 * the tracker needs carry the container id as field 1 (string) in every case:
 * `containerd.events.ContainerCreate.id`, `ContainerDelete.id`,
 * `TaskStart.container_id`, `TaskExit.container_id` (containerd
 * api/events/container.proto and task.proto). Decoding just that field
 * avoids vendoring every event type.
 */
export function protoStringField(buf: Uint8Array, field: number): string | undefined {
  const v = scanField(buf, field, 2);
  return v instanceof Uint8Array ? new TextDecoder().decode(v) : undefined;
}

/** Reads one varint field (uint32/uint64 as a number), e.g. `TaskStart.pid` (field 2). */
export function protoVarintField(buf: Uint8Array, field: number): number | undefined {
  const v = scanField(buf, field, 0);
  return typeof v === 'number' ? v : undefined;
}

function scanField(buf: Uint8Array, field: number, wireType: 0 | 2): Uint8Array | number | undefined {
  let i = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new RangeError('truncated varint');
      const b = buf[i++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new RangeError('varint too long');
    }
  };
  try {
    while (i < buf.length) {
      const key = varint();
      const f = Math.floor(key / 8);
      const wt = key & 7;
      if (wt === 0) {
        const v = varint();
        if (f === field && wireType === 0) return v;
      } else if (wt === 1) i += 8;
      else if (wt === 5) i += 4;
      else if (wt === 2) {
        const len = varint();
        if (i + len > buf.length) return undefined;
        if (f === field && wireType === 2) return buf.subarray(i, i + len);
        i += len;
      } else return undefined; // groups (3, 4) are not used by containerd
    }
  } catch {
    return undefined;
  }
  return undefined;
}
