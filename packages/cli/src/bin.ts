#!/usr/bin/env node
import { main } from './main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // A library handle left open after a fatal error (a runtime event stream, a
  // timer) must not keep a finished command alive: exit once output drains.
  setTimeout(() => process.exit(code), 500).unref();
});
