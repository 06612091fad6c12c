import { compareU64 } from './validate.js';

/**
 * Stream order of records. Within one stream (one collector run on one host)
 * records are ordered by `seq`, which starts anywhere and grows by exactly one
 * per record; `mono_ns` is NOT an order (events from different CPUs reach the
 * ring buffer slightly out of time order). Across streams the total order is
 * `host_id` (UTF-16 code units, as RFC 8785 sorts), then `seq` numerically.
 *
 * Returns <0, 0 or >0, for Array.prototype.sort. Both records must be valid
 * (seq a u64 decimal string).
 */
export function compareRecords(
  a: { readonly host_id: string; readonly seq: string },
  b: { readonly host_id: string; readonly seq: string },
): number {
  if (a.host_id !== b.host_id) return a.host_id < b.host_id ? -1 : 1;
  return compareU64(a.seq, b.seq);
}
