/**
 * Regenerates schema/reachability-v1.schema.json from src/schema.ts (the one source).
 * Run: npm run gen -w @stellaops/reachability
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { schemaFileText } from '../src/schema.js';

const file = fileURLToPath(new URL('../schema/reachability-v1.schema.json', import.meta.url));
writeFileSync(file, schemaFileText());
// House formatting for the committed JSON (the drift test compares it parsed, not as text).
execFileSync('npx', ['biome', 'format', '--write', file], { stdio: 'inherit' });
console.log(`wrote ${file}`);
