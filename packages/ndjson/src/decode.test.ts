import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { VALID_CASES } from '../test/golden-cases.js';
import { type DecodeResult, decodeLine, decodeLines, decodeStream, nextU64 } from './decode.js';
import { encodeRecord } from './encode.js';
import { NdjsonError } from './errors.js';
import type { EvidenceRecord } from './records.js';

const fileOpen = VALID_CASES[0]!.record;
const withSeq = (seq: number, r: EvidenceRecord = fileOpen) => ({ ...r, seq: String(seq) }) as EvidenceRecord;
const lines = (n: number, start = 1) => Array.from({ length: n }, (_, i) => encodeRecord(withSeq(start + i)));

async function collect(source: Parameters<typeof decodeStream>[0], opts = {}): Promise<DecodeResult[]> {
  const out: DecodeResult[] = [];
  for await (const r of decodeStream(source, { mode: 'collect', ...opts })) out.push(r);
  return out;
}

const summary = (rs: DecodeResult[]) =>
  rs.map((r) =>
    r.ok ? `ok:${r.lineNumber}@${r.byteOffset}` : `${r.error.code}:${r.lineNumber}@${r.byteOffset}`,
  );

describe('decodeLine', () => {
  it('accepts a canonical line with or without its newline, as text or bytes', () => {
    const line = encodeRecord(fileOpen);
    expect(decodeLine(line)).toEqual(fileOpen);
    expect(decodeLine(line.slice(0, -1))).toEqual(fileOpen);
    expect(decodeLine(Buffer.from(line))).toEqual(fileOpen);
  });

  it('reports INVALID_UTF8 with the offset of the bad byte', () => {
    const bytes = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xe2, 0x28]), Buffer.from('"}')]);
    try {
      decodeLine(bytes, { lineNumber: 3, byteOffset: 99 });
      expect.unreachable();
    } catch (e) {
      expect((e as NdjsonError).code).toBe('INVALID_UTF8');
      expect((e as NdjsonError).reason).toContain('byte 6');
      expect((e as NdjsonError).message).toContain('line 3, byte offset 99');
    }
  });

  it('reports a SCHEMA error with every issue and the path of the first', () => {
    const bad = { ...fileOpen, pid: -1, comm: 5, extra: true } as Record<string, unknown>;
    const text = JSON.stringify(bad);
    try {
      decodeLine(text);
      expect.unreachable();
    } catch (e) {
      const err = e as NdjsonError;
      expect(err).toBeInstanceOf(NdjsonError);
      expect(err.name).toBe('NdjsonError');
      expect(err.code).toBe('SCHEMA');
      expect(err.issues.map((i) => i.path).sort()).toEqual(['$.comm', '$.extra', '$.pid']);
      expect(err.message).toMatch(/and 2 more problems/);
    }
  });

  it('rejects a raw lone surrogate in a text line (no escapes in the line at all)', () => {
    const line = encodeRecord(fileOpen).replace('"api-server"', '"a\ud800"');
    expect(line.includes('\\')).toBe(false);
    expect(() => decodeLine(line)).toThrow(/SCHEMA: \$\.comm: string contains a lone UTF-16 surrogate/);
  });

  it('recognises a container text it verified before, and still rejects a duplicated one', () => {
    const line = encodeRecord(fileOpen);
    expect(decodeLine(line)).toEqual(fileOpen);
    expect(decodeLine(encodeRecord({ ...fileOpen, pid: 7 } as EvidenceRecord))).toEqual({
      ...fileOpen,
      pid: 7,
    });
    const at = line.indexOf('"container":');
    const end = line.indexOf(',"dirfd"');
    const member = line.slice(at, end);
    // The same (remembered) container text twice: JSON.parse keeps the last, the line is not canonical.
    expect(() => decodeLine(`${line.slice(0, end)},${member}${line.slice(end)}`)).toThrow(/NOT_CANONICAL/);
    // A remembered container followed by a different one for the same member.
    const other = member.replace('"runtime":"containerd"', '"runtime":"cri-o"');
    expect(() => decodeLine(`${line.slice(0, end)},${other}${line.slice(end)}`)).toThrow(/NOT_CANONICAL/);
    // A changed container is checked in full again.
    expect(() => decodeLine(line.replace('"status":"resolved"', '"status":"gone"'))).toThrow(
      /SCHEMA: \$\.container\.status/,
    );
  });

  it('reports NOT_CANONICAL for a valid record written differently, naming the byte column', () => {
    const text = JSON.stringify(fileOpen, null, 1);
    expect(() => decodeLine(text.replace(/\n/g, ''))).toThrow(
      /NOT_CANONICAL: valid record but not its canonical form: byte 1/,
    );
  });
});

describe('decodeStream', () => {
  it('decodes every record of a stream split at every possible chunk boundary', async () => {
    const text = Buffer.from(lines(3).join('') + encodeRecord(withSeq(4, VALID_CASES[3]!.record)));
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 40 }),
        async (cuts) => {
          const points = [0, ...cuts.sort((a, b) => a - b), text.length];
          const chunks = points.slice(1).map((end, i) => text.subarray(points[i], end));
          const rs = await collect(chunks);
          expect(rs.every((r) => r.ok)).toBe(true);
          expect(rs.map((r) => r.byteOffset)).toEqual(
            [0, 1, 2, 3].map((i) => Buffer.byteLength(lines(3).slice(0, i).join(''))),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('strict mode yields the good records, then throws the first error with its line and offset', async () => {
    const good = lines(2);
    const seen: string[] = [];
    const run = async () => {
      for await (const r of decodeStream([good.join(''), '{"not":"a record"}\n', good[0]!])) {
        if (r.ok) seen.push(r.record.seq);
      }
    };
    const err = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(seen).toEqual(['1', '2']);
    expect(err).toBeInstanceOf(NdjsonError);
    expect((err as NdjsonError).code).toBe('SCHEMA');
    expect((err as NdjsonError).lineNumber).toBe(3);
    expect((err as NdjsonError).byteOffset).toBe(Buffer.byteLength(good.join('')));
  });

  it('collect mode reports every bad line in place and never skips one', async () => {
    const good = lines(4);
    const text = [good[0], 'not json\n', good[1], '\n', good[2]!.replace(',', ', '), good[3]].join('');
    const rs = await collect([text], { checkSequence: false });
    expect(rs.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'ok',
      'INVALID_JSON',
      'ok',
      'INVALID_JSON',
      'NOT_CANONICAL',
      'ok',
    ]);
    expect(rs.map((r) => r.lineNumber)).toEqual([1, 2, 3, 4, 5, 6]);
    const bad = rs[1]!;
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.byteOffset).toBe(Buffer.byteLength(good[0]!));
  });

  it('reports a line over maxLineBytes once, skips to its end and goes on', async () => {
    const good = lines(3);
    const long = `${'x'.repeat(5000)}\n`;
    const chunks = [
      good[0]!,
      long.slice(0, 1000),
      long.slice(1000, 4000),
      long.slice(4000) + good[1]! + good[2]!,
    ];
    const rs = await collect(chunks, { maxLineBytes: 2000, checkSequence: false });
    expect(summary(rs)).toEqual([
      `ok:1@0`,
      `LINE_TOO_LONG:2@${good[0]!.length}`,
      `ok:3@${good[0]!.length + long.length}`,
      `ok:4@${good[0]!.length + long.length + good[1]!.length}`,
    ]);
  });

  it('reports MISSING_NEWLINE for a stream that ends inside a line (truncated evidence)', async () => {
    const good = lines(2);
    const rs = await collect([good[0]! + good[1]!.slice(0, -1)]);
    expect(summary(rs)).toEqual(['ok:1@0', `MISSING_NEWLINE:2@${good[0]!.length}`]);
    await expect(async () => {
      for await (const _ of decodeStream([good[0]!.slice(0, 10)])) {
        // drain
      }
    }).rejects.toThrow(/MISSING_NEWLINE: line 1, byte offset 0: the stream ends inside line 1/);
  });

  it('checks that seq grows by exactly one and says what happened', async () => {
    const text = [1, 2, 4, 4, 3, 5].map((s) => encodeRecord(withSeq(s))).join('');
    const rs = await collect([text]);
    expect(rs.map((r) => (r.ok ? 'ok' : r.error.reason))).toEqual([
      'ok',
      'ok',
      'seq 4 skips 1 record(s): expected 3 after 2',
      'seq 4 repeats or goes back: expected 5 after 4',
      'seq 3 repeats or goes back: expected 5 after 4',
      'seq 5 skips 1 record(s): expected 4 after 3',
    ]);
    const gap = rs[2]!;
    if (!gap.ok) {
      expect(gap.error.path).toBe('$.seq');
      expect(gap.record?.seq).toBe('4');
    }
    expect((await collect([text], { checkSequence: false })).every((r) => r.ok)).toBe(true);
  });

  it('reads a web ReadableStream', async () => {
    const text = lines(3).join('');
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(text);
        controller.enqueue(bytes.subarray(0, 700));
        controller.enqueue(bytes.subarray(700));
        controller.close();
      },
    });
    expect(summary(await collect(web))).toEqual(summary(await collect([text])));
  });

  it('handles a multi-byte character split across chunks', async () => {
    const line = Buffer.from(encodeRecord(withSeq(1, VALID_CASES[3]!.record)));
    const at = line.indexOf(Buffer.from('😀')) + 2;
    const rs = await collect([line.subarray(0, at), line.subarray(at)]);
    expect(rs.map((r) => r.ok)).toEqual([true]);
  });

  describe('with a real file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ndjson-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reads a Node file stream in small chunks', async () => {
      const file = join(dir, 'e.ndjson');
      writeFileSync(file, lines(500).join(''));
      const rs = await collect(createReadStream(file, { highWaterMark: 113 }));
      expect(rs).toHaveLength(500);
      expect(rs.every((r) => r.ok)).toBe(true);
    });

    it('closes the file stream when the consumer stops early', async () => {
      const file = join(dir, 'f.ndjson');
      writeFileSync(file, lines(1000).join(''));
      const stream = createReadStream(file, { highWaterMark: 256 });
      let n = 0;
      for await (const r of decodeStream(stream)) {
        expect(r.ok).toBe(true);
        if (++n === 3) break;
      }
      expect(stream.destroyed).toBe(true);
    });
  });

  it('applies backpressure: a paused consumer stops the source from being read', async () => {
    const line = lines(1)[0]!;
    let produced = 0;
    const source = new Readable({
      highWaterMark: 4 * line.length,
      read() {
        produced++;
        this.push(encodeRecord(withSeq(produced)));
        if (produced === 100_000) this.push(null);
      },
    });
    const it = decodeStream(source)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    // Give the stream every chance to run ahead while nobody pulls.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    const whilePaused = produced;
    expect(whilePaused).toBeLessThan(40);
    for (let i = 0; i < 200; i++) expect((await it.next()).done).toBe(false);
    expect(produced).toBeGreaterThan(200);
    expect(produced).toBeLessThan(260);
    await it.return?.();
    expect(source.destroyed).toBe(true);
  });

  it('rejects bad options and sources with precise TypeError / RangeError', async () => {
    const drain = async (...args: Parameters<typeof decodeStream>) => {
      for await (const _ of decodeStream(...args)) {
        // drain
      }
    };
    await expect(drain([], { mode: 'lenient' as never })).rejects.toThrow(TypeError);
    await expect(drain([], { maxLineBytes: 0 })).rejects.toThrow(RangeError);
    await expect(drain(42 as never)).rejects.toThrow(/source must be a readable stream/);
    await expect(drain([42 as never])).rejects.toThrow(/chunks must be Uint8Array/);
  });
});

describe('nextU64', () => {
  it('adds one to any u64 decimal string', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => {
        expect(nextU64(n.toString())).toBe((n + 1n).toString());
      }),
      { numRuns: 1000 },
    );
    expect(nextU64('9')).toBe('10');
    expect(nextU64('1999')).toBe('2000');
  });
});

describe('decodeLines', () => {
  it('decodes a node:readline line source with the same results and offsets as decodeStream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ndjson-lines-'));
    try {
      const file = join(dir, 'e.ndjson');
      const text = [...lines(3), 'garbage\n', ...lines(2, 4)].join('');
      writeFileSync(file, text);
      const viaLines: DecodeResult[] = [];
      const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
      for await (const r of decodeLines(rl, { mode: 'collect' })) viaLines.push(r);
      expect(summary(viaLines)).toEqual(summary(await collect([text])));
      expect(summary(viaLines)[3]).toBe(`INVALID_JSON:4@${Buffer.byteLength(lines(3).join(''))}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts items with their newline, and reports an item holding two lines or too many bytes', async () => {
    const [a, b, c] = lines(3);
    const rs: DecodeResult[] = [];
    for await (const r of decodeLines([a!, b! + c!, 'x'.repeat(50)], {
      mode: 'collect',
      maxLineBytes: 40,
      checkSequence: false,
    })) {
      rs.push(r);
    }
    expect(rs.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'LINE_TOO_LONG',
      'INVALID_JSON',
      'LINE_TOO_LONG',
    ]);
    const ok: DecodeResult[] = [];
    for await (const r of decodeLines([a!, b!.slice(0, -1), Buffer.from(c!)])) ok.push(r);
    expect(ok.map((r) => r.ok)).toEqual([true, true, true]);
    expect(ok.map((r) => r.byteOffset)).toEqual([0, a!.length, a!.length + b!.length]);
  });
});
