import { ReachabilityError } from './errors.js';
import type { AnalyzeOptions, ReachabilityReport } from './types.js';

/**
 * Match the evidence of one image against its inventory.
 * @throws ReachabilityError CHAIN_UNVERIFIED, INVALID_OPTION
 */
export async function analyze(_o: AnalyzeOptions): Promise<ReachabilityReport> {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'analyze: not implemented yet');
}
