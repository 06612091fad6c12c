import { describe, expect, it } from 'vitest';
import { kernelString } from './kernel-string.js';

describe('kernelString', () => {
  it('keeps valid UTF-8, control characters included, as a string', () => {
    expect(kernelString(Buffer.from('/tmp/é\nx', 'utf8'))).toBe('/tmp/é\nx');
  });
  it('turns invalid UTF-8 into standard base64 of the raw bytes', () => {
    const raw = Buffer.from([0x2f, 0x74, 0xff, 0xfe]);
    expect(kernelString(raw)).toEqual({ b64: raw.toString('base64') });
  });
});
