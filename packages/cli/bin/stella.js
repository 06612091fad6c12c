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
if (existsSync(cap)) {
  const { cgroupMemoryLimit, heapCapArgs } = await import(cap.href);
  const capped = heapCapArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS, cgroupMemoryLimit);
  if (capped && typeof process.execve === 'function') process.execve(process.execPath, capped, process.env);
}
await import(built.href);
