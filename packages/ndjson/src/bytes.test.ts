import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { b64Problem, bytesField, bytesFromField } from './bytes.js';

describe('byte strings', () => {
  it('are plain strings when valid UTF-8 (controls and newlines included)', () => {
    expect(bytesField(Buffer.from('/etc/a\nb\u0001'))).toBe('/etc/a\nb\u0001');
    expect(bytesField(Buffer.from('日本'))).toBe('日本');
    expect(bytesField(new Uint8Array(0))).toBe('');
  });

  it('are {b64} when not UTF-8: overlong forms, surrogates encoded in UTF-8, truncated sequences', () => {
    for (const raw of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]) {
      const field = bytesField(Uint8Array.from(raw));
      expect(field).toEqual({ b64: Buffer.from(raw).toString('base64') });
      expect(b64Problem((field as { b64: string }).b64, 16)).toBeUndefined();
    }
  });

  it('round-trip every byte sequence, including from a subarray view', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(8), (raw, skip) => {
        const view = new Uint8Array([...new Uint8Array(skip), ...raw]).subarray(skip);
        expect(Buffer.compare(bytesFromField(bytesField(view)), Buffer.from(raw))).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('refuse strings that cannot be UTF-8 and malformed fields', () => {
    expect(() => bytesField('a\udc00')).toThrow(TypeError);
    expect(() => bytesFromField({ b64: '!!' })).toThrow(TypeError);
    expect(() => bytesFromField(null as never)).toThrow(TypeError);
  });
});
