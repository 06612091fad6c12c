import { preflight } from '@stellaops/bpf-loader';
import type { OptionSpec, Parsed } from '../args.js';
import { type ConfigInputs, DEFAULT_CONFIG_PATH, type EffectiveConfig } from '../config.js';
import { CliError } from '../errors.js';
import type { Io } from '../io.js';

/** `--config FILE` of the commands that read stellaops.yaml where `start` does (see {@link configFileInputs}). */
export const CONFIG_FILE_OPTION: OptionSpec = {
  type: 'string',
  short: 'c',
  value: 'FILE',
  help: 'stellaops.yaml (else $STELLA_CONFIG, else /etc/stellaops/stellaops.yaml if it exists)',
};

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

/**
 * Which stellaops.yaml a command reads, as {@link loadConfig} inputs:
 * `--config FILE`, else `STELLA_CONFIG` (empty counts as unset), else the
 * default location (/etc/stellaops/stellaops.yaml) if it exists. A file named
 * by the flag or the variable must exist; a missing default file means defaults.
 */
export function configFileInputs(p: Parsed, io: Io): Pick<ConfigInputs, 'file' | 'fileVia' | 'defaultFile'> {
  const defaultFile = io.defaultConfigPath ?? DEFAULT_CONFIG_PATH;
  if (typeof p.values.config === 'string') return { file: p.values.config, fileVia: '--config', defaultFile };
  const fromEnv = io.env.STELLA_CONFIG;
  if (fromEnv) return { file: fromEnv, fileVia: 'STELLA_CONFIG', defaultFile };
  return { defaultFile };
}

/** "PATH (via)", or "none: defaults (no DEFAULT)" when no file was read. */
export function describeConfigFile(cfg: EffectiveConfig, io: Io): string {
  return cfg.file
    ? cfg.describeFile()
    : `${cfg.describeFile()} (no ${io.defaultConfigPath ?? DEFAULT_CONFIG_PATH})`;
}

/**
 * Refuses to start tracing where the kernel or the privileges cannot carry it
 * (the loader's preflight): PRIVILEGE for missing capabilities or root,
 * KERNEL otherwise, the first problem in the message and the rest as the hint.
 * `btfCustomPath`: the external kernel BTF the probes will use (btf_custom_path).
 */
export function requireTracing(btfCustomPath?: string): void {
  const pf = preflight(btfCustomPath ? { btfCustomPath } : {});
  if (pf.ok) return;
  throw new CliError(
    pf.problems.some((x) => /CAP_|root/.test(x)) ? 'PRIVILEGE' : 'KERNEL',
    `cannot trace here: ${pf.problems[0]}`,
    {
      hint: pf.problems.slice(1).join('; ') || 'run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN',
    },
  );
}
