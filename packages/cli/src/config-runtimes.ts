import { statSync } from 'node:fs';
import { type EffectiveConfig, RUNTIME_SOCKETS, settingOrigin } from './config.js';
import { CliError } from './errors.js';

/** The container tracker's runtime options, as `collect({ enrich })` takes them. */
export type RuntimeEndpointOptions = {
  containerd?: { socket: string } | false;
  docker?: { socket: string } | false;
  podman?: { socket: string } | false;
  crio?: { socket: string } | false;
};

/** `runtimes.<name>` → the tracker's option name (`cri-o` is an identifier there: `crio`). */
const OPTION: Record<(typeof RUNTIME_SOCKETS)[number]['runtime'], keyof RuntimeEndpointOptions> = {
  containerd: 'containerd',
  docker: 'docker',
  podman: 'podman',
  'cri-o': 'crio',
};

/**
 * The runtime sockets of the configuration, as container tracker options:
 * a key left at its default is not passed (the tracker uses that socket when
 * it exists), `"off"` disables the runtime, and a socket the user set must
 * be a socket now.
 *
 * @throws CliError `CONFIG_INVALID` naming the key, where it was set (file
 *   and line, env var or flag), the path and what is wrong with it.
 */
export function runtimeEndpoints(cfg: EffectiveConfig): RuntimeEndpointOptions {
  const out: RuntimeEndpointOptions = {};
  for (const { runtime, socket: def } of RUNTIME_SOCKETS) {
    const key = `runtimes.${runtime}.socket`;
    const value = cfg.get<string>(key);
    const option = OPTION[runtime];
    if (value === 'off') {
      out[option] = false;
      continue;
    }
    if (cfg.settings.get(key)?.source === 'default') continue;
    const problem = socketProblem(value);
    if (problem) {
      throw new CliError('CONFIG_INVALID', `${settingOrigin(cfg, key)}: ${value} ${problem}`, {
        hint: `start ${runtime} or give the path of its API socket (default ${def}); set signals.${key}: off to run without ${runtime} attribution`,
      });
    }
    out[option] = { socket: value };
  }
  return out;
}

/** Why `path` cannot be a runtime's API socket, or undefined when it is a socket. */
function socketProblem(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (st.isSocket()) return undefined;
    return `is not a socket (it is a ${st.isDirectory() ? 'directory' : 'file'})`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be reached (${code ?? String(e)})`;
  }
}
