import { describe, expect, it } from 'vitest';
import { compareRecords } from './order.js';

describe('compareRecords', () => {
  it('orders by host_id, then seq numerically (not as text)', () => {
    const rs = [
      { host_id: 'b', seq: '1' },
      { host_id: 'a', seq: '10' },
      { host_id: 'a', seq: '9' },
      { host_id: 'a', seq: '18446744073709551615' },
      { host_id: 'a', seq: '0' },
    ];
    expect(rs.sort(compareRecords).map((r) => `${r.host_id}/${r.seq}`)).toEqual([
      'a/0',
      'a/9',
      'a/10',
      'a/18446744073709551615',
      'b/1',
    ]);
    expect(compareRecords({ host_id: 'h', seq: '5' }, { host_id: 'h', seq: '5' })).toBe(0);
  });
});
