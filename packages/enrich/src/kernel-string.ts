/**
 * A byte string from the kernel (path, comm, argv) as the evidence schema
 * carries it: a JSON string when the bytes are valid UTF-8, otherwise the raw
 * bytes in standard base64.
 */
export type KernelString = string | { b64: string };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Encode raw bytes per the schema rule: valid UTF-8 → string, else `{ b64 }`. */
export function kernelString(bytes: Uint8Array): KernelString {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return { b64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
  }
}
