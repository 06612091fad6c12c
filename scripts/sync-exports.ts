/**
 * Rewrites every package's `exports` (and main/module/types) from the entry
 * list in its tsup.config.ts, so the map is never edited by hand in several
 * places. `test/packages.test.ts` fails when a package.json is out of sync.
 *
 *   npx tsx scripts/sync-exports.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { expectedManifestFields, publishedPackages } from './packages.js';

for (const pkg of await publishedPackages()) {
  const manifest = JSON.parse(readFileSync(pkg.manifestPath, 'utf8'));
  Object.assign(manifest, expectedManifestFields(pkg));
  writeFileSync(pkg.manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  process.stdout.write(`synced ${manifest.name}\n`);
}
