import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** BPF objects shipped in this package (bpf/<name>.bpf.o). */
export type ObjectName = 'fileexec';

const OBJECTS: readonly ObjectName[] = ['fileexec'];

// src/ (tests, tsx) and dist/ (published) both sit one level below the package root.
const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));

/**
 * Absolute path of a shipped BPF object. Does not check that it was built:
 * openProbeSet() does, with a hint to run `npm run build:native`.
 * @throws TypeError for an unknown object name.
 */
export function objectPath(name: ObjectName): string {
  if (!OBJECTS.includes(name)) {
    throw new TypeError(`objectPath: unknown BPF object '${String(name)}' (known: ${OBJECTS.join(', ')})`);
  }
  return join(here, '..', 'bpf', `${name}.bpf.o`);
}
