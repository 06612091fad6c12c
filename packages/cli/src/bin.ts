#!/usr/bin/env node
import { cgroupMemoryLimit, heapCapArgs } from './heap-cap.js';
import { main } from './main.js';

// `stella signals start` runs with a bounded heap unless the user chose one:
// re-executed once, same pid, with node flags (see heap-cap.ts for why).
// bin/stella.js decides before the CLI loads and, when it catches signals
// for the start command, says so here: a re-exec then would drop them.
const launcher = (process as unknown as Record<symbol, { capDecided: boolean } | undefined>)[
  Symbol.for('stellaops.cli.earlySignals')
];
const capped = launcher?.capDecided
  ? undefined
  : heapCapArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS, cgroupMemoryLimit);
if (capped && typeof process.execve === 'function') process.execve(process.execPath, capped, process.env);

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // A library handle left open after a fatal error (a runtime event stream, a
  // timer) must not keep a finished command alive: exit once output drains.
  setTimeout(() => process.exit(code), 500).unref();
});
