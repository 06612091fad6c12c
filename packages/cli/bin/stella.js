#!/usr/bin/env node
// The `stella` command. This file is committed rather than generated so that
// npm links it into node_modules/.bin at install time, also in a fresh clone
// where dist/ is built only after `npm ci`; it runs the built CLI.
import { existsSync } from 'node:fs';

const built = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    `stella: the CLI is not built (${built.pathname} is missing); build it with: npx nx run @stellaops/cli:build\n`,
  );
  process.exit(3);
}
// `stella signals start` caps its heap by re-executing itself (src/heap-cap.ts).
// Deciding here, before the CLI and its dependencies load, makes the re-exec
// cost one small module instead of loading the whole CLI twice; dist/bin.js
// still checks for itself when it is run directly.
const cap = new URL('../dist/heap-cap.js', import.meta.url);
let capDecided = false;
if (existsSync(cap)) {
  const { cgroupMemoryLimit, heapCapArgs } = await import(cap.href);
  const capped = heapCapArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS, cgroupMemoryLimit);
  if (capped && typeof process.execve === 'function') process.execve(process.execPath, capped, process.env);
  capDecided = true;
}

// `stella signals start` stops and seals on a signal that comes while it is
// still starting (src/commands/start.ts), but loading the CLI takes 0.2-1.5 s
// before that handler exists. From here on (the image that loads the CLI,
// after any re-exec: a signal caught before an execve would be lost with the
// old image) SIGINT/SIGTERM/SIGHUP are caught and handed to the start
// command. Before this line the signal's default action ends the process
// (143 for SIGTERM) with nothing read or written.
const argv = process.argv.slice(2);
if (
  capDecided &&
  argv[0] === 'signals' &&
  argv[1] === 'start' &&
  !argv.includes('--help') &&
  !argv.includes('-h')
) {
  const early = { signals: [], listener: undefined };
  early.listener = (sig) => {
    early.signals.push(sig);
    if (early.signals.length >= 3) {
      process.stderr.write('stella: third signal: exiting now, before collection started\n');
      process.exit(130);
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, early.listener);
  process[Symbol.for('stellaops.cli.earlySignals')] = early;
}
await import(built.href);
