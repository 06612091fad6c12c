import { ReachabilityError } from './errors.js';
import type { ImageInventoryOptions, Inventory } from './types.js';

/** Inventory of an image read from containerd's content store. */
export async function inventoryFromImage(_o: ImageInventoryOptions): Promise<Inventory> {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'inventoryFromImage: not implemented yet');
}

/** Inventory of an unpacked root filesystem. */
export async function inventoryFromRootfs(_dir: string): Promise<Inventory> {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'inventoryFromRootfs: not implemented yet');
}
