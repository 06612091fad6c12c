import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

/** Entry points; package.json `exports` is derived from this list. */
export const entry = { index: 'src/index.ts' };

/** Non-code files in `exports`: the JSON Schema of a v1 record. */
export const extraExports = { './schema.json': './schema/evidence-v1.schema.json' };

export default defineConfig(packageBuild(entry));
