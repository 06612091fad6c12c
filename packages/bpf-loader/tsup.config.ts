import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

/** Entry points; package.json `exports` is derived from this list. */
export const entry = { index: 'src/index.ts' };

// shims: the addon is located from import.meta.url, which the CJS output
// needs shimmed (and __dirname in ESM).
export default defineConfig(packageBuild(entry, { shims: true }));
