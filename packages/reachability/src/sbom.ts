import { ReachabilityError } from './errors.js';
import type { Inventory } from './types.js';

/** Inventory from a CycloneDX 1.4-1.6 JSON document (text or parsed). */
export function parseCycloneDx(_doc: unknown): Inventory {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'parseCycloneDx: not implemented yet');
}

/** Inventory from an SPDX 2.3 JSON document (text or parsed). */
export function parseSpdx(_doc: unknown): Inventory {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'parseSpdx: not implemented yet');
}

/** Inventory from a CycloneDX or SPDX JSON document, whichever it is. */
export function parseSbom(_doc: unknown): Inventory {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'parseSbom: not implemented yet');
}
