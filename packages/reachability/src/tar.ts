/**
 * A small streaming tar reader for image layers: POSIX ustar, pax extended
 * headers (`path`, `linkpath`, `size`) and GNU long names (`L`, `K`), sizes
 * in octal or GNU base-256. Bodies are handed to the caller chunk by chunk,
 * so a layer is never held in memory.
 */
import { ReachabilityError } from './errors.js';

const BLOCK = 512;

/** Entry kinds a layer can hold. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';

/** One member of a tar stream. */
export interface TarEntry {
  /** Member name as stored (usually relative, e.g. `usr/bin/ls` or `./usr/bin/ls`). */
  path: string;
  type: TarEntryType;
  /** Link target for symlinks and hard links. */
  linkpath: string;
  mode: number;
  size: number;
}

/** Receives an entry's body; return one from the visitor to read the body. */
export interface TarBodySink {
  write(chunk: Buffer): void;
  end(): void;
}

/** Called for each entry; return a sink to receive its body, or undefined to skip it. */
export type TarVisitor = (entry: TarEntry) => TarBodySink | undefined;

function cString(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function parseNumber(b: Buffer, start: number, len: number, where: string): number {
  const first = b[start] as number;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement, high bit of the first byte set.
    let v = first & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + (b[i] as number);
    return v;
  }
  const text = cString(b, start, len).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new ReachabilityError('TAR_INVALID', `${where}: header number "${text}" is not octal`);
  }
  return Number.parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  const stored = cString(h, 148, 8).trim();
  return stored !== '' && Number.parseInt(stored, 8) === sum;
}

/** Parse pax extended header records: "<len> <key>=<value>\n". */
export function parsePax(data: Buffer, where: string): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp === -1) break;
    const len = Number.parseInt(data.toString('ascii', off, sp), 10);
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length) {
      throw new ReachabilityError('TAR_INVALID', `${where}: malformed pax record at byte ${off}`);
    }
    const rec = data.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

/** Collects a meta entry's body (pax header, GNU long name). */
class Collect implements TarBodySink {
  readonly parts: Buffer[] = [];
  done = false;
  write(chunk: Buffer): void {
    this.parts.push(chunk);
  }
  end(): void {
    this.done = true;
  }
  get data(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * Read a tar stream, calling `visit` for every file, link and directory
 * member (pax and GNU long-name members are applied, not visited). Stops at
 * the end-of-archive block; data after it is ignored.
 * @param where names the stream in errors (e.g. the layer digest)
 * @throws ReachabilityError TAR_INVALID on a bad header checksum, a bad number or a truncated stream
 */
export async function readTar(
  source: AsyncIterable<Buffer | Uint8Array>,
  visit: TarVisitor,
  where: string,
): Promise<void> {
  let header: Buffer = Buffer.alloc(0);
  let remaining = 0; // body bytes left of the current entry
  let padding = 0; // padding bytes left after the body
  let sink: TarBodySink | undefined;
  let meta: { kind: 'pax' | 'global' | 'gnuName' | 'gnuLink'; body: Collect } | undefined;
  let pax = new Map<string, string>();
  let globalPax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let ended = false;
  let offset = 0;

  const finishBody = () => {
    if (meta) {
      const data = meta.body.data;
      if (meta.kind === 'pax') pax = parsePax(data, where);
      else if (meta.kind === 'gnuName') longName = cString(data, 0, data.length);
      else if (meta.kind === 'gnuLink') longLink = cString(data, 0, data.length);
      else globalPax = new Map([...globalPax, ...parsePax(data, where)]);
      meta = undefined;
    } else sink?.end();
    sink = undefined;
  };

  const onHeader = (h: Buffer) => {
    if (h.every((x) => x === 0)) {
      ended = true;
      return;
    }
    if (!checksumOk(h)) {
      throw new ReachabilityError(
        'TAR_INVALID',
        `${where}: bad tar header checksum at byte ${offset}; the layer is corrupt or not a tar file`,
      );
    }
    const flag = String.fromCharCode(h[156] as number);
    const magic = h.toString('latin1', 257, 263);
    let size = parseNumber(h, 124, 12, where);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const kind = flag === 'x' ? 'pax' : flag === 'g' ? 'global' : flag === 'L' ? 'gnuName' : 'gnuLink';
      meta = { kind, body: new Collect() };
    } else {
      let path = cString(h, 0, 100);
      if (magic === 'ustar\0') {
        const prefix = cString(h, 345, 155);
        if (prefix !== '') path = `${prefix}/${path}`;
      }
      path = pax.get('path') ?? longName ?? globalPax.get('path') ?? path;
      const linkpath = pax.get('linkpath') ?? longLink ?? cString(h, 157, 100);
      const paxSize = pax.get('size');
      if (paxSize !== undefined) size = Number.parseInt(paxSize, 10);
      const type = entryType(flag);
      sink = visit({ path, type, linkpath, mode: parseNumber(h, 100, 8, where), size });
      pax = new Map();
      longName = undefined;
      longLink = undefined;
      // Hard links, symlinks and directories carry no body even when size is set (old GNU tar).
      if (type === 'hardlink' || type === 'symlink' || type === 'directory') size = 0;
    }
    remaining = size;
    padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (remaining === 0) finishBody();
  };

  for await (const raw of source) {
    let chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    while (chunk.length > 0 && !ended) {
      if (remaining > 0) {
        const n = Math.min(remaining, chunk.length);
        const part = chunk.subarray(0, n);
        if (meta) meta.body.write(Buffer.from(part));
        else sink?.write(part);
        remaining -= n;
        offset += n;
        chunk = chunk.subarray(n);
        if (remaining === 0) finishBody();
      } else if (padding > 0) {
        const n = Math.min(padding, chunk.length);
        padding -= n;
        offset += n;
        chunk = chunk.subarray(n);
      } else {
        const need = BLOCK - header.length;
        const take = chunk.subarray(0, need);
        header = header.length === 0 && take.length === BLOCK ? take : Buffer.concat([header, take]);
        chunk = chunk.subarray(take.length);
        if (header.length === BLOCK) {
          const h = header;
          header = Buffer.alloc(0);
          onHeader(h);
          offset += BLOCK;
        }
      }
    }
    // After the end blocks the rest is read and ignored: the caller may be hashing the whole blob.
  }
  // A stream that stops at an entry boundary without the end blocks is accepted (some writers omit them).
  if (!ended && (remaining > 0 || padding > 0 || header.length > 0)) {
    throw new ReachabilityError(
      'TAR_INVALID',
      `${where}: the tar stream ends inside an entry (at byte ${offset}): truncated layer`,
    );
  }
}
