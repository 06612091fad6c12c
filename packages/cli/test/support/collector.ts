import { type ChildProcess, spawn } from 'node:child_process';

/** A `stella signals start` child process and its stderr log so far. */
export interface RunningCollector {
  readonly child: ChildProcess;
  /** Everything it wrote to stderr until now. */
  log(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/**
 * Start the built `stella` (`bin`) with `stella signals start --config cfg`
 * and wait (up to `waitMs`) for its "collector started" log line; the caller
 * asserts it is in `log()`.
 */
export async function startCollector(bin: string, cfg: string, waitMs = 120_000): Promise<RunningCollector> {
  const child = spawn(process.execPath, [bin, 'signals', 'start', '--config', cfg], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (let i = 0; i < waitMs / 100 && !log.includes('"collector started"') && child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 100));
  return {
    child,
    log: () => log,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
