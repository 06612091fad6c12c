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
await import(built.href);
