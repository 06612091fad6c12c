export type { CommandSpec, OptionSpec, Parsed } from './args.js';
export { helpText, parseCommand, parseDuration } from './args.js';
export type { ConfigInputs, ConfigSource, ConfigValue, EffectiveSetting } from './config.js';
export { CONFIG_FIELDS, EffectiveConfig, envName, loadConfig } from './config.js';
export type { CliErrorCode } from './errors.js';
export { CliError, EXIT } from './errors.js';
export type { Io } from './io.js';
export { main, reportError } from './main.js';
