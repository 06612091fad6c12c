#!/usr/bin/env node
// The `stella` command. This file is committed rather than generated so that
// npm links it into node_modules/.bin at install time, also in a fresh clone
// where dist/ is built only after `npm ci`; it runs the built CLI.
import { existsSync } from 'node:fs';

// `stella signals start` stops and seals on a signal that comes while it is
// still starting (src/commands/start.ts), but loading the CLI takes 0.2-1.5 s
// before that handler exists. Catch SIGINT/SIGTERM from here on and hand
// what came to the start command; only node's own start-up is left, where a
// signal ends the process (143/130) before anything is read or written.
const early = { signals: [], listener: undefined, capDecided: false };
if (process.argv[2] === 'signals' && process.argv[3] === 'start') {
  early.listener = (sig) => {
    early.signals.push(sig);
    if (early.signals.length >= 3) {
      process.stderr.write('stella: third signal: exiting now, before collection started\n');
      process.exit(130);
    }
  };
  process.on('SIGINT', early.listener);
  process.on('SIGTERM', early.listener);
  process[Symbol.for('stellaops.cli.earlySignals')] = early;
}

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
if (existsSync(cap)) {
  const { cgroupMemoryLimit, heapCapArgs } = await import(cap.href);
  const capped = heapCapArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS, cgroupMemoryLimit);
  if (capped && typeof process.execve === 'function') {
    // A signal already taken by the handler above would die with this image:
    // let pending signal callbacks run (libuv delivers them in its poll phase,
    // before setImmediate's), and skip the cap rather than drop a stop.
    await new Promise((r) => setImmediate(r));
    if (early.signals.length === 0) process.execve(process.execPath, capped, process.env);
  }
  early.capDecided = true;
}
await import(built.href);
