import { canonicalize as jcs } from 'json-canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalize } from './canonical.js';
import type { NdjsonError } from './errors.js';

describe('canonicalize (generic RFC 8785)', () => {
  it('sorts members by UTF-16 code units, as in RFC 8785 section 3.2.3', () => {
    // The RFC's sorting example: keys "\u20ac", "\r", "\ufb33", "1", "\ud83d\ude00", "\u0080", "\u00f6".
    const value = {
      '\u20ac': 'Euro',
      '\r': 'CR',
      '\ufb33': 'Hebrew',
      '1': 'One',
      '\ud83d\ude00': 'Smiley',
      '\u0080': 'Ctl',
      '\u00f6': 'Latin',
    };
    expect(canonicalize(value)).toBe(
      '{"\\r":"CR","1":"One","\u0080":"Ctl","\u00f6":"Latin","\u20ac":"Euro","\ud83d\ude00":"Smiley","\ufb33":"Hebrew"}',
    );
  });

  it('equals json-canonicalize on nested JSON values', () => {
    const v = { b: [1, 'x', null, true, { z: 1, a: [] }], a: { '': 0, ' ': -5 } };
    expect(canonicalize(v)).toBe(jcs(v));
    expect(canonicalize(v)).toBe('{"a":{"":0," ":-5},"b":[1,"x",null,true,{"a":[],"z":1}]}');
  });

  it('refuses values evidence cannot hold, with the path', () => {
    const cases: [unknown, string][] = [
      [{ a: [0, Number.NaN] }, '$.a[1]'],
      [{ a: { b: 0.1 } }, '$.a.b'],
      [{ 'x y': undefined }, '$["x y"]'],
      [{ [Symbol('s')]: 1 }, '$'],
      [{ a: new Map() }, '$.a'],
      [{ a: { toJSON: 'not a function either' } }, '$.a'],
      [{ '\ud800': 1 }, '$["\\ud800"]'],
    ];
    for (const [value, path] of cases) {
      try {
        canonicalize(value);
        expect.unreachable(path);
      } catch (e) {
        expect((e as NdjsonError).code).toBe('UNSUPPORTED_VALUE');
        expect((e as NdjsonError).path).toBe(path);
      }
    }
  });
});
