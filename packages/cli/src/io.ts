/** The process surface a command touches, injectable for tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** stdout is a terminal: output meant for a reader (tables, colours) rather than a pipe. */
  isTTY: boolean;
  /**
   * stderr is a terminal: start's log lines and live status line (written to
   * stderr) are human text rather than JSON lines. Absent means not a terminal.
   */
  errIsTTY?: boolean;
  /**
   * The stellaops.yaml read when neither --config nor STELLA_CONFIG names one;
   * DEFAULT_CONFIG_PATH when absent. Not a user setting: tests point it at a
   * temporary directory instead of /etc.
   */
  defaultConfigPath?: string;
}

/** The real process: stdout, stderr, the environment and their terminals. */
export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  isTTY: Boolean(process.stdout.isTTY),
  errIsTTY: Boolean(process.stderr.isTTY),
};
