import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIp, isCanonicalIPv6, parseIp } from './ip.js';

describe('IP address text', () => {
  it.each([
    ['::', '0:0:0:0:0:0:0:0'],
    ['::1', '0:0:0:0:0:0:0:1'],
    ['2001:db8::1', '2001:DB8:0:0:0:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['2001:0:0:1::1', '2001:0:0:1:0:0:0:1'], // longest run wins
    ['2001:db8::1:0:0:1', '2001:db8:0:0:1:0:0:1'], // first of two equal runs
    ['::ffff:192.0.2.1', '::ffff:c000:201'], // IPv4-mapped in dotted form
    ['fe80::', 'fe80:0:0:0:0:0:0:0'],
  ])('%s is the RFC 5952 form of %s', (canonical, input) => {
    const bytes = parseIp(input)!;
    expect(formatIp(bytes)).toBe(canonical);
    expect(isCanonicalIPv6(canonical)).toBe(true);
    if (canonical !== input) expect(isCanonicalIPv6(input)).toBe(false);
  });

  it('matches the WHATWG URL serialiser for IPv6 that is not IPv4-mapped, and node:net for validity', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const text = formatIp(b);
        expect(isIPv6(text)).toBe(true);
        expect(Buffer.from(parseIp(text)!).equals(Buffer.from(b))).toBe(true);
        if (!text.startsWith('::ffff:') || text.includes(':', 7)) {
          expect(new URL(`http://[${text}]/`).hostname).toBe(`[${text}]`);
        }
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        const text = formatIp(b);
        expect(isIPv4(text)).toBe(true);
        expect(Buffer.from(parseIp(text)!).equals(Buffer.from(b))).toBe(true);
      }),
    );
  });

  it('rejects what is not an address', () => {
    for (const bad of ['', '1.2.3', '256.0.0.1', '1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '::1.2.3']) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
    expect(() => formatIp(new Uint8Array(5))).toThrow(RangeError);
  });
});
