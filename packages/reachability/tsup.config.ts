import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

/** Entry points; package.json `exports` is derived from this list. */
export const entry = { index: 'src/index.ts' };

/** Non-code files in `exports`: the JSON Schema of the reachability predicate. */
export const extraExports = { './schema.json': './schema/reachability-v1.schema.json' };

export default defineConfig(packageBuild(entry));
