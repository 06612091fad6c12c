import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isU64, U64_MAX, U64_PATTERN } from '../validate.js';
import type { FieldType, PatternType } from './dsl.js';
import { RECORD_SCHEMAS } from './v1.js';

function patterns(t: FieldType, out: Map<string, PatternType>): void {
  if (t.kind === 'pattern') out.set(t.name, t);
  if (t.kind === 'array') patterns(t.items, out);
  if (t.kind === 'object') {
    for (const f of Object.values(t.fields)) patterns(f.type, out);
    for (const r of t.rules) for (const n of Object.values(r.narrow ?? {})) patterns(n, out);
  }
}

/** Strings near a valid one: a character replaced, removed or added, case flipped. */
const near = (valid: fc.Arbitrary<string>) =>
  fc
    .tuple(valid, fc.nat(80), fc.constantFrom('', '0', 'A', 'g', ':', ' ', '-', 'é'), fc.nat(3))
    .map(([s, i, c, op]) => {
      const at = i % (s.length + 1);
      if (op === 0) return s.slice(0, at) + c + s.slice(at + 1);
      if (op === 1) return s.slice(0, at) + c + s.slice(at);
      if (op === 2) return s.toUpperCase();
      return s;
    });

describe('hand-written fast checks equal their regular expressions', () => {
  const all = new Map<string, PatternType>();
  for (const t of Object.values(RECORD_SCHEMAS)) patterns(t, all);

  it('covers the patterns that have one', () => {
    expect([...all.values()].filter((p) => p.fast).map((p) => p.name)).toEqual(['digest']);
  });

  for (const p of all.values()) {
    if (!p.fast) continue;
    it(`${p.name}`, () => {
      const valid = fc.stringMatching(p.pattern);
      fc.assert(
        fc.property(fc.oneof(valid, near(valid), fc.string()), (s) => {
          expect(p.fast!(s)).toBe(p.pattern.test(s) && (p.check === undefined || p.check(s)));
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('isU64', () => {
    const valid = fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String);
    fc.assert(
      fc.property(fc.oneof(valid, near(valid), fc.string()), (s) => {
        const expected = U64_PATTERN.test(s) && (s.length < 20 || s <= U64_MAX);
        expect(isU64(s)).toBe(expected);
        if (expected) expect(BigInt(s) < 2n ** 64n).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
