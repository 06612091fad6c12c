// Writes <app>/package.json for a project that installs the @stellaops
// packages from their `npm pack` tarballs only, also where they depend on
// each other: `overrides` pin every @stellaops dependency to the root's
// tarball, so npm never asks the registry for an @stellaops name.
// Used by scripts/packed-install-test.sh and deploy/image/build.sh.
//
//   node scripts/tarball-project.cjs <app-dir> <packs-dir> <project-name> <package>...
const fs = require('node:fs');

const [app, packs, name, ...packages] = process.argv.slice(2);
if (!app || !packs || !name || packages.length === 0) {
  process.stderr.write(
    'usage: node scripts/tarball-project.cjs <app-dir> <packs-dir> <project-name> <package>...\n',
  );
  process.exit(2);
}
const dependencies = {};
const overrides = {};
for (const p of packages) {
  const tgz = fs.readdirSync(packs).find((f) => f.startsWith(`stellaops-${p}-`) && f.endsWith('.tgz'));
  if (!tgz) {
    process.stderr.write(`tarball-project: no stellaops-${p}-*.tgz in ${packs}\n`);
    process.exit(1);
  }
  dependencies[`@stellaops/${p}`] = `file:${packs}/${tgz}`;
  overrides[`@stellaops/${p}`] = `$@stellaops/${p}`;
}
const pkg = { name, version: '1.0.0', private: true, dependencies, overrides };
fs.writeFileSync(`${app}/package.json`, `${JSON.stringify(pkg, null, 2)}\n`);
