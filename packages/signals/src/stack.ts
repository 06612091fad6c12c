import type { SymbolResolver } from '@stellaops/enrich';
import type { StackFrame } from '@stellaops/ndjson';

/**
 * The `stack` member of a network/TLS record, from the words the kernel's
 * frame-pointer walk returned (`bpf_get_stack(..., BPF_F_USER_STACK)`).
 *
 * Those words are return addresses only while every function on the way
 * keeps a frame pointer. Past the first function built without one (most
 * of libssl, libc and many programs), the walk reads whatever the stack
 * holds: heap pointers, lengths, and next to SSL_read/SSL_write the
 * decrypted application data. So a word is written only when it is
 * verified to be code: it lies in a file mapping of that process that is
 * executable (`x` in `/proc/<pid>/maps`) and, when the file can be read,
 * in an executable ELF segment, and (past the innermost frame, which is the
 * interrupted instruction) the instruction before it is a call, as before
 * every return address. The stack is the innermost run of verified
 * frames: it ends at the first word that is not code (the walk has left
 * the frame chain, so later words are not a call chain either). A frame
 * is (module path, file offset in that module, symbol, build id); the raw
 * word is never written.
 *
 * @returns undefined when no frame can be verified, including when the
 *   process has exited before its record was made (its maps are gone, and
 *   a frame that cannot be checked is not written).
 */
export function verifiedStack(
  resolver: SymbolResolver,
  pid: number,
  words: readonly bigint[],
): StackFrame[] | undefined {
  if (words.length === 0) return undefined;
  let frames: ReturnType<SymbolResolver['resolve']>;
  try {
    frames = resolver.resolve(pid, words);
  } catch {
    return undefined;
  }
  const out: StackFrame[] = [];
  for (const [i, f] of frames.entries()) {
    if (f.executable !== true || f.module === undefined || f.fileOffset === undefined) break;
    // Past the innermost frame (the interrupted instruction itself), a word
    // is a return address only if a call instruction ends right before it.
    if (i > 0 && f.afterCall === false) break;
    out.push({
      module: f.module,
      offset: `0x${f.fileOffset.toString(16)}`,
      ...(f.symbol ? { symbol: f.symbol } : {}),
      ...(f.buildId ? { build_id: f.buildId } : {}),
    });
  }
  return out.length > 0 ? out : undefined;
}
