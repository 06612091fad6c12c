import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

/** Entry points; package.json `exports` is derived from this list. */
export const entry = { index: 'src/index.ts' };

// shims: the containerd client finds the vendored protos from import.meta.url, in the CJS build too.
export default defineConfig(packageBuild(entry, { shims: true }));
