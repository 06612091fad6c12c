/**
 * Regenerates the files derived from src/schema/v1.ts:
 *   schema/evidence-v1.schema.json, the member tables in
 *   docs/evidence-schema.md, and the golden vectors under test/vectors/.
 * Run: npm run gen -w @stellaops/ndjson
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DOC_BEGIN, DOC_END, renderDocTables } from '../src/schema/docs.js';
import { renderJsonSchema } from '../src/schema/json-schema.js';
import { renderVectorFiles } from '../test/golden-cases.js';

const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const schemaPath = at('../schema/evidence-v1.schema.json');
writeFileSync(schemaPath, renderJsonSchema());
// House formatting for the committed JSON (tests compare it parsed, not as text).
execFileSync('npx', ['biome', 'format', '--write', schemaPath], { stdio: 'inherit' });

const docPath = at('../../../docs/evidence-schema.md');
const doc = readFileSync(docPath, 'utf8');
const begin = doc.indexOf(DOC_BEGIN);
const end = doc.indexOf(DOC_END);
if (begin < 0 || end < begin) throw new Error(`${docPath}: GENERATED markers not found`);
writeFileSync(docPath, doc.slice(0, begin) + renderDocTables() + doc.slice(end + DOC_END.length));

for (const [name, text] of Object.entries(renderVectorFiles())) {
  writeFileSync(at(`../test/vectors/${name}`), text);
}
console.log('generated schema, doc tables and vectors');
