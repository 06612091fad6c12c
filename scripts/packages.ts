import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Entries, exportsMap } from '../tsup.base.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** A published `@stellaops/*` package and the entry list its build declares. */
export interface PublishedPackage {
  dir: string;
  manifestPath: string;
  entry: Entries;
  extraExports: Record<string, string>;
}

/** Every directory under packages/, with the entry list read from its tsup.config.ts. */
export async function publishedPackages(): Promise<PublishedPackage[]> {
  const out: PublishedPackage[] = [];
  for (const name of readdirSync(join(repoRoot, 'packages')).sort()) {
    const dir = join(repoRoot, 'packages', name);
    const config = join(dir, 'tsup.config.ts');
    if (!existsSync(config)) continue;
    const mod = (await import(pathToFileURL(config).href)) as {
      entry: Entries;
      extraExports?: Record<string, string>;
    };
    out.push({
      dir,
      manifestPath: join(dir, 'package.json'),
      entry: mod.entry,
      extraExports: mod.extraExports ?? {},
    });
  }
  return out;
}

/** The package.json fields that are derived from the build's entry list. */
export function expectedManifestFields(pkg: PublishedPackage) {
  return {
    main: './dist/index.cjs',
    module: './dist/index.js',
    types: './dist/index.d.ts',
    exports: exportsMap(pkg.entry, pkg.extraExports),
  };
}
