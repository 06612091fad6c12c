import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

/** Entry points; package.json `exports` is derived from this list. */
export const entry = { index: 'src/index.ts' };

// The `stella` binary is built beside the library but is not an export, and so
// is the heap-cap check that bin/stella.js runs before it loads the CLI.
export default defineConfig(packageBuild({ ...entry, bin: 'src/bin.ts', 'heap-cap': 'src/heap-cap.ts' }));
