import type { ReachabilityReport } from './types.js';

/** A human-readable table of a report. */
export function formatTable(_report: ReachabilityReport): string {
  return '';
}
