import type { Parsed } from '../args.js';
import { CliError } from '../errors.js';

/** Flags that override config keys: `--target DIR` and `--set key=value`. */
export function configFlags(p: Parsed): Array<{ key: string; value: string; flag: string }> {
  const out: Array<{ key: string; value: string; flag: string }> = [];
  if (typeof p.values.target === 'string') {
    out.push({ key: 'output_directory', value: p.values.target, flag: '--target' });
  }
  const sets = p.values.set;
  for (const s of Array.isArray(sets) ? sets : []) {
    const eq = s.indexOf('=');
    if (eq <= 0) {
      throw new CliError('USAGE', `--set '${s}': expected KEY=VALUE`, {
        hint: 'e.g. --set rotation.max_size_mb=10 (see `stella signals config --keys`)',
      });
    }
    out.push({ key: s.slice(0, eq), value: s.slice(eq + 1), flag: `--set ${s.slice(0, eq)}` });
  }
  return out;
}
