import type { Options } from 'tsup';

/** Entry points of a package: output name (without extension) → source file. */
export type Entries = Record<string, string>;

/**
 * The one build shape every package uses: ESM + CJS + .d.ts for each entry,
 * targeting the oldest Node the project supports.
 */
export function packageBuild(entry: Entries, overrides: Options = {}): Options {
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    platform: 'node',
    splitting: false,
    // import.meta.url in the CJS build (binding and version lookups use it).
    shims: true,
    // Error classes report `name = this.constructor.name`; callers match on it.
    keepNames: true,
    // Sibling packages stay separate: each is installed on its own, and a
    // bundled copy would look for its native addon and BPF objects in the
    // wrong package directory.
    external: [/^@stellaops\//],
    ...overrides,
  };
}

/** Conditional export object for one tsup entry, as package.json must hold it. */
export function exportConditions(name: string) {
  return {
    import: { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` },
    require: { types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` },
  };
}

/**
 * The `exports` map derived from the entry list: `index` is `.`, every other
 * entry is `./<name>`. `extra` adds non-code files (JSON Schema, BPF objects).
 */
export function exportsMap(entry: Entries, extra: Record<string, string> = {}) {
  const map: Record<string, unknown> = {};
  for (const name of Object.keys(entry)) {
    map[name === 'index' ? '.' : `./${name}`] = exportConditions(name);
  }
  for (const [k, v] of Object.entries(extra)) map[k] = v;
  map['./package.json'] = './package.json';
  return map;
}
