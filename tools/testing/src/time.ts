/**
 * Multiplier for a test's own deadlines (child-process timeouts, readiness
 * waits): STELLA_TIME_SCALE, default 1. tools/kernel-vm sets it inside its
 * VMs, where TCG emulation runs 10-30x slower than the host. It stretches
 * deadlines only; no assertion about speed depends on it.
 */
export const timeScale: number = (() => {
  const v = Number(process.env.STELLA_TIME_SCALE ?? '1');
  return Number.isFinite(v) && v >= 1 ? v : 1;
})();

/** `ms` stretched by {@link timeScale}. */
export function scaled(ms: number): number {
  return Math.round(ms * timeScale);
}
