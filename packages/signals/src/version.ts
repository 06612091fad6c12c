import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** This package's version, as published; it goes into every sealed statement. */
export const VERSION: string = (require('../package.json') as { version: string }).version;
