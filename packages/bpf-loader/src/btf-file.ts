import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { endianness, constants as osConstants, release } from 'node:os';
import { isAbsolute } from 'node:path';
import { BpfError } from './errors.js';

/** `operation` of every BpfError about OpenOptions.btfCustomPath, so callers can name their own setting. */
const BTF_CUSTOM_PATH_OPERATION = 'btf_custom_path';

// struct btf_header (include/uapi/linux/btf.h): magic u16, version u8, flags u8,
// hdr_len u32, then type_off, type_len, str_off, str_len (u32, from the end of the header).
const BTF_MAGIC = 0xeb9f;
const BTF_VERSION = 1;
const BTF_HEADER_LEN = 24;

const { ENOENT, EACCES, EISDIR, EINVAL } = osConstants.errno;

function hint(): string {
  return (
    `use the BTF of this exact kernel build (${release()}): a file from BTFHub ` +
    '(https://github.com/aquasecurity/btfhub-archive), or one made with ' +
    '`pahole --btf_encode_detached=<file> <vmlinux with debug info>`; on kernels with BTF omit it (/sys/kernel/btf/vmlinux is used)'
  );
}

function refuse(
  path: string,
  what: string,
  code: 'OPEN' | 'BTF_INVALID',
  errno: number,
  cause?: unknown,
): BpfError {
  return new BpfError(`btfCustomPath ${path}: ${what}`, {
    code,
    operation: BTF_CUSTOM_PATH_OPERATION,
    errno,
    hint: hint(),
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * What is wrong with `head` (the first bytes of a file of `size` bytes) as
 * raw BTF for this machine, or undefined when its header is sound: magic in
 * this machine's byte order, version 1, a header of at least 24 bytes, and
 * non-empty type and string sections that lie within the file. libbpf reads
 * the file only at load and then reports a bare errno (EIO, 4001, or EINVAL
 * that reads like a verifier rejection), so the header is checked up front.
 */
export function btfHeaderProblem(head: Buffer, size: number): string | undefined {
  if (size === 0) return 'the file is empty, not BTF';
  if (size < BTF_HEADER_LEN || head.length < BTF_HEADER_LEN)
    return `${size} bytes is shorter than a BTF header (${BTF_HEADER_LEN} bytes)`;
  const le = endianness() === 'LE';
  const u16 = (at: number) => (le ? head.readUInt16LE(at) : head.readUInt16BE(at));
  const u32 = (at: number) => (le ? head.readUInt32LE(at) : head.readUInt32BE(at));
  const magic = u16(0);
  if (magic !== BTF_MAGIC) {
    if (magic === 0x9feb) return 'BTF in the other byte order: a file for a machine of another architecture';
    return `not BTF (magic 0x${magic.toString(16).padStart(4, '0')}, BTF starts with 0x${BTF_MAGIC.toString(16)})`;
  }
  const version = head.readUInt8(2);
  if (version !== BTF_VERSION) return `BTF version ${version}, only version ${BTF_VERSION} exists`;
  const hdrLen = u32(4);
  if (hdrLen < BTF_HEADER_LEN) return `BTF header length ${hdrLen} is below ${BTF_HEADER_LEN}`;
  if (hdrLen > size) return `BTF header length ${hdrLen} runs past the end of the file (${size} bytes)`;
  const sections: Array<[string, number, number]> = [
    ['type', u32(8), u32(12)],
    ['string', u32(16), u32(20)],
  ];
  for (const [name, off, len] of sections) {
    if (len === 0) return `the BTF ${name} section is empty`;
    const end = hdrLen + off + len;
    if (end > size)
      return `the BTF ${name} section ends at byte ${end}, past the end of the file (${size} bytes): truncated`;
  }
  return undefined;
}

const ELF_MAGIC = 0x7f454c46;
const ELF64_HEADER_LEN = 64;
const ELF64_SHDR_LEN = 64;
/** Section names of a vmlinux take a few KiB; more means the header is garbage. */
const MAX_SECTION_NAMES = 1 << 20;

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, length === 0 ? 0 : readSync(fd, buf, 0, length, position));
}

/**
 * libbpf also takes an ELF file whose .BTF section holds the BTF (a vmlinux
 * after `pahole -J`): check that section's header. Only 64-bit little-endian
 * ELF (this package's x64 target) is read; other ELF is left to libbpf.
 */
function elfBtfProblem(fd: number, eh: Buffer): string | undefined {
  if (eh[4] !== 2 || eh[5] !== 1) return undefined;
  const shoff = Number(eh.readBigUInt64LE(0x28));
  const shnum = eh.readUInt16LE(0x3c);
  const shstrndx = eh.readUInt16LE(0x3e);
  const shdrs = readAt(fd, shoff, shnum * ELF64_SHDR_LEN);
  if (shnum === 0 || shdrs.length < shnum * ELF64_SHDR_LEN || shstrndx >= shnum)
    return 'an ELF file with unreadable section headers, not BTF';
  const section = (i: number) => ({
    name: shdrs.readUInt32LE(i * ELF64_SHDR_LEN),
    offset: Number(shdrs.readBigUInt64LE(i * ELF64_SHDR_LEN + 0x18)),
    size: Number(shdrs.readBigUInt64LE(i * ELF64_SHDR_LEN + 0x20)),
  });
  const strtab = section(shstrndx);
  if (strtab.size > MAX_SECTION_NAMES) return 'an ELF file with unreadable section names, not BTF';
  const names = readAt(fd, strtab.offset, strtab.size);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const end = names.indexOf(0, s.name);
    if (names.toString('latin1', s.name, end < 0 ? names.length : end) !== '.BTF') continue;
    const problem = btfHeaderProblem(readAt(fd, s.offset, Math.min(s.size, BTF_HEADER_LEN)), s.size);
    return problem === undefined ? undefined : `its .BTF section: ${problem}`;
  }
  return 'an ELF file without a .BTF section: give a raw BTF file, or a vmlinux with BTF (pahole -J)';
}

/**
 * Checks that `path` is a readable regular file holding raw BTF (see
 * {@link btfHeaderProblem}), or an ELF file with a .BTF section, before libbpf is handed it as btf_custom_path.
 * Throws BpfError 'OPEN' (missing, not a file, unreadable) or 'BTF_INVALID'
 * (not BTF, truncated), operation 'btf_custom_path', naming the file, what
 * is wrong and where a BTF file for this kernel comes from.
 */
export function requireBtfFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const where = isAbsolute(path) ? '' : ` (a relative path, from ${process.cwd()})`;
      throw refuse(path, `no such file${where}`, 'OPEN', ENOENT, e);
    }
    if (code === 'EACCES') throw refuse(path, 'permission denied', 'OPEN', EACCES, e);
    throw refuse(path, (e as Error).message, 'OPEN', EINVAL, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(path, 'not a regular file', 'OPEN', st.isDirectory() ? EISDIR : EINVAL);
    const head = readAt(fd, 0, ELF64_HEADER_LEN);
    const problem =
      head.length === ELF64_HEADER_LEN && head.readUInt32BE(0) === ELF_MAGIC
        ? elfBtfProblem(fd, head)
        : btfHeaderProblem(head, st.size);
    if (problem !== undefined) throw refuse(path, problem, 'BTF_INVALID', EINVAL);
  } catch (e) {
    if (e instanceof BpfError) throw e;
    throw refuse(path, (e as Error).message, 'OPEN', EINVAL, e);
  } finally {
    closeSync(fd);
  }
}
