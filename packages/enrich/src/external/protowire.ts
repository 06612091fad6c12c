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
      if (wt === 0) varint();
      else if (wt === 1) i += 8;
      else if (wt === 5) i += 4;
      else if (wt === 2) {
        const len = varint();
        if (i + len > buf.length) return undefined;
        if (f === field) return new TextDecoder().decode(buf.subarray(i, i + len));
        i += len;
      } else return undefined; // groups (3, 4) are not used by containerd
    }
  } catch {
    return undefined;
  }
  return undefined;
}
