import type { CommandSpec, Parsed } from '../args.js';
import { CONFIG_FIELDS, envName, loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { configFileInputs, configFlags, describeConfigFile } from './shared.js';

export const configSpec: CommandSpec = {
  name: 'config',
  summary:
    'Print the effective configuration (defaults < stellaops.yaml < STELLA_* env < flags) and which file was read.',
  usage: 'stella signals config --effective [--config FILE] [--set KEY=VALUE]... [--json]',
  options: {
    effective: { type: 'boolean', help: 'print every key with its value and where it came from' },
    keys: { type: 'boolean', help: 'list every key, its default, environment name and meaning' },
    config: {
      type: 'string',
      short: 'c',
      value: 'FILE',
      help: 'stellaops.yaml to read (else $STELLA_CONFIG, else /etc/stellaops/stellaops.yaml if it exists)',
    },
    target: { type: 'string', value: 'DIR', help: 'same as --set output_directory=DIR' },
    set: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'override one key' },
    json: { type: 'boolean', help: 'machine-readable output' },
  },
  positionals: [],
  examples: [
    'stella signals config --effective --config /etc/stellaops/stellaops.yaml',
    'STELLA_ROTATION_MAX_SIZE_MB=10 stella signals config --effective --json',
    'stella signals config --keys',
  ],
  exitCodes: [
    '0  printed',
    '2  bad flags or an invalid configuration (the message names file, line and key)',
  ],
};

export async function configCommand(p: Parsed, io: Io): Promise<number> {
  if (p.values.keys) {
    for (const f of CONFIG_FIELDS) {
      io.out(
        `signals.${f.key}  (default ${JSON.stringify(f.default)}, env ${envName(f.key)})\n    ${f.doc}\n`,
      );
    }
    return EXIT.OK;
  }
  if (!p.values.effective) {
    throw new CliError('USAGE', 'stella signals config: say what to print: --effective or --keys', {
      hint: "run 'stella signals config --help'",
    });
  }
  const cfg = loadConfig({ ...configFileInputs(p, io), env: io.env, flags: configFlags(p) });
  if (p.values.json) {
    const signals = Object.fromEntries([...cfg.settings].map(([k, s]) => [k, s]));
    io.out(`${JSON.stringify({ config_file: cfg.file ?? null, signals }, null, 2)}\n`);
    return EXIT.OK;
  }
  // One line per key, with where its value came from, so precedence is visible.
  const rows = [...cfg.settings.values()].map((st) => [
    `signals.${st.key}: ${JSON.stringify(st.value)}`,
    `# ${st.source}${st.origin ? ` (${st.origin})` : ''}`,
  ]);
  const w = Math.max(...rows.map(([a]) => a!.length));
  const out = rows.map(([a, b]) => `${a!.padEnd(w)}  ${b}`);
  io.out(`# config file: ${describeConfigFile(cfg, io)}\n${out.join('\n')}\n`);
  return EXIT.OK;
}
