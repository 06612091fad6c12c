/** Small Map helpers shared by the readers. */

/** The value at `k`, added by `make` when absent. */
export function getOrAdd<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}
