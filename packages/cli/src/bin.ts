#!/usr/bin/env node
import { cgroupMemoryLimit, heapCapArgs } from './heap-cap.js';
import { main } from './main.js';

// `stella signals start` runs with a bounded heap unless the user chose one:
// re-executed once, same pid, with node flags (see heap-cap.ts for why).
// bin/stella.js decides before the CLI loads and, when it catches signals
// for the start command, says so here: a re-exec then would drop them.
const caught = Symbol.for('stellaops.cli.earlySignals') in process;
const capped = caught
  ? undefined
  : heapCapArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS, cgroupMemoryLimit);
if (capped && typeof process.execve === 'function') process.execve(process.execPath, capped, process.env);

const argv = process.argv.slice(2);
main(argv).then((code) => {
  process.exitCode = code;
  // `signals start` is done: its chain is sealed and its last log line
  // written (stderr writes are synchronous on Linux). Exit now: ending by an
  // empty event loop, node first puts its signal handlers back to the
  // default, and a SIGTERM in those last milliseconds turned a clean stop
  // into a kill (143) for the supervisor.
  if (argv[0] === 'signals' && argv[1] === 'start') process.exit(code);
  // A library handle left open after a fatal error (a runtime event stream, a
  // timer) must not keep a finished command alive: exit once output drains.
  setTimeout(() => process.exit(code), 500).unref();
});
