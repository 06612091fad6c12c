import { describe, expect, it } from 'vitest';
import { collect } from './collect.js';

describe('collect() queue bounds', () => {
  it.each([
    ['maxQueuedRecords', 0],
    ['maxQueuedRecords', 1.5],
    ['maxQueuedBytes', -1],
    ['maxQueuedBytes', Number.NaN],
  ])('refuses %s = %s with USAGE, naming the option, before attaching anything', async (name, value) => {
    const c = collect({ enrich: false, [name]: value });
    await expect(c.ready).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining(name),
      hint: expect.stringContaining('positive integer'),
    });
    expect(c.state).toBe('stopped');
  });
});
