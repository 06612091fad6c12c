/**
 * Package inventories from SBOMs as generators write them: CycloneDX
 * 1.4–1.6 JSON and SPDX 2.2/2.3 JSON. A member the parser reads that is not
 * of the shape the spec requires (a component without a name, `components`
 * not an array) is refused with its JSON path, never skipped: a silently
 * dropped package would be signed as absent. Only locations that name a package's own
 * content count: where a generator points at the database it read the
 * package from (`/var/lib/dpkg/status`, `lib/apk/db/installed`, a
 * `dist-info/METADATA`, a lockfile), that is not a file of the package.
 */
import { posix } from 'node:path';
import { getOrAdd } from './collections.js';
import { ReachabilityError } from './errors.js';
import { normalizePath } from './paths.js';
import type { Ecosystem, Inventory, InventoryPackage } from './types.js';

/** Options of the SBOM parsers. */
export interface SbomOptions {
  /**
   * Directory relative locations are taken from (default `/`): for an SBOM of
   * an application directory (e.g. `@cyclonedx/cyclonedx-npm`, whose paths
   * are `node_modules/...`), the directory the application lives at in the
   * image, like `/app`.
   */
  root?: string;
}

function parseDoc(doc: unknown, what: string): Record<string, unknown> {
  let v = doc;
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    try {
      // A UTF-8 byte order mark (some Windows tools write one) is not part of the JSON.
      v = JSON.parse(v.toString().replace(/^\uFEFF/, ''));
    } catch (err) {
      throw new ReachabilityError('SBOM_INVALID', `${what}: not JSON (${(err as Error).message})`, {
        cause: err,
      });
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ReachabilityError('SBOM_INVALID', `${what}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** Refusal of one SBOM member, named by its JSON path. */
function badMember(path: string, problem: string, hint: string): ReachabilityError {
  return new ReachabilityError('SBOM_INVALID', `${path}: ${problem}`, { hint });
}

const typeName = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

/** A JSON path short enough for a message: its head and tail. */
const shortPath = (path: string) => (path.length <= 120 ? path : `${path.slice(0, 50)}…${path.slice(-50)}`);

/** `d[key]` as an array of objects, [] when absent; refuses any other shape with its JSON path. */
function objects(v: unknown, path: string, hint: string): Record<string, unknown>[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw badMember(path, `expected an array, found ${typeName(v)}`, hint);
  return v.map((x, i) => {
    if (typeof x !== 'object' || x === null || Array.isArray(x))
      throw badMember(`${path}[${i}]`, `expected an object, found ${typeName(x)}`, hint);
    return x as Record<string, unknown>;
  });
}

/** A required non-empty string member; refuses a missing or empty one with its JSON path. */
function required(o: Record<string, unknown>, key: string, path: string, hint: string): string {
  const v = o[key];
  if (typeof v === 'string' && v !== '') return v;
  throw badMember(
    `${path}.${key}`,
    v === undefined ? 'missing' : `expected a non-empty string, found ${typeName(v)}`,
    hint,
  );
}

/** An inventory from an SBOM must list packages: an empty one would sign every package as absent. */
function nonEmpty(inv: Inventory, what: string): Inventory {
  if (inv.packages.length > 0) return inv;
  throw new ReachabilityError('SBOM_INVALID', `the ${what} lists no package`, {
    hint: 'generate the SBOM from the image (e.g. syft IMAGE -o cyclonedx-json, or cdxgen -t os), not from an empty directory',
  });
}

const CDX_HINT =
  'every CycloneDX component is an object with a "name" (CycloneDX 1.6 schema): fix or regenerate the SBOM';
const SPDX_HINT =
  'every SPDX package is an object with an "SPDXID" and a "name" (SPDX 2.3 spec): fix or regenerate the SBOM';
const SPDX_SHAPE_HINT =
  'SPDX 2.3 JSON holds files[] and relationships[] as arrays of objects: fix or regenerate the SBOM';

/** Nesting of CycloneDX components deeper than this is refused (generators nest a few levels). */
export const MAX_COMPONENT_DEPTH = 256;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** Ecosystem of a purl (`pkg:<type>/...`). */
export function ecosystemOfPurl(purl: string | undefined): Ecosystem {
  const t = purl?.match(/^pkg:([a-zA-Z0-9.+-]+)\//)?.[1]?.toLowerCase();
  if (t === 'deb' || t === 'apk' || t === 'npm' || t === 'pypi') return t;
  return 'generic';
}

/** Package-database files: where a package was found, not its content. */
const DATABASE_LOCATION =
  /(?:^|\/)(?:var\/lib\/dpkg\/(?:status|status\.d\/[^/]+|info\/[^/]+)|(?:usr\/)?lib\/apk\/db\/installed|var\/lib\/rpm\/[^/]+|[^/]+\.(?:dist|egg)-info(?:\/[^/]+)?|package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|requirements[^/]*\.txt|poetry\.lock|Pipfile\.lock)$/;

function absolute(root: string, p: string): string {
  return normalizePath(p.startsWith('/') ? p : posix.join(root, p));
}

/** Collects one package's files, directories and digests from an SBOM's locations. */
class Owned {
  readonly files = new Set<string>();
  readonly dirs = new Set<string>();
  readonly digests: Record<string, string> = {};

  constructor(
    readonly root: string,
    readonly ecosystem: Ecosystem,
  ) {}

  /** A location the SBOM gives for the package: a file, or (npm) the package directory or its package.json. */
  location(raw: string | undefined, isDir = false): void {
    if (!raw) return;
    const p = absolute(this.root, raw.replace(/^file:\/\//, ''));
    if (this.ecosystem === 'npm' && (isDir || p.endsWith('/package.json'))) {
      const dir = isDir ? p : posix.dirname(p);
      if (/\/node_modules\/(?:@[^/]+\/)?[^/]+$/.test(dir)) this.dirs.add(dir);
      if (!isDir) this.files.add(p);
      return;
    }
    if (isDir || DATABASE_LOCATION.test(p)) return;
    this.files.add(p);
  }

  digest(path: string, sha256: string | undefined): void {
    if (sha256 && /^[0-9a-fA-F]{64}$/.test(sha256))
      this.digests[absolute(this.root, path)] = `sha256:${sha256.toLowerCase()}`;
  }

  finish(pkg: Omit<InventoryPackage, 'files' | 'digests' | 'directories'>): InventoryPackage {
    const out: InventoryPackage = { ...pkg, files: [...this.files].sort() };
    if (this.dirs.size > 0) out.directories = [...this.dirs].sort();
    const digests = Object.fromEntries(Object.entries(this.digests).filter(([p]) => this.files.has(p)));
    if (Object.keys(digests).length > 0) out.digests = digests;
    return out;
  }
}

function cdxSha256(hashes: unknown): string | undefined {
  for (const h of arr(hashes)) {
    const o = obj(h);
    if (String(o.alg).toUpperCase().replace('-', '') === 'SHA256') return str(o.content);
  }
  return undefined;
}

/** Property names that carry a location of the component's content (syft, cdxgen, cyclonedx-npm). */
const LOCATION_PROPERTY =
  /(?:^syft:location:\d+:path$|:file$|:path$|:location$|^aquasecurity:trivy:InstalledCommandPath$)/;

/**
 * The in-image path of a CycloneDX file component: its occurrence location,
 * the `path` qualifier of its purl (cdxgen: `pkg:generic/<name>?path=...`),
 * its `SrcFile` property, or its name when that is absolute.
 */
function cdxFilePath(o: Record<string, unknown>): string | undefined {
  const occ = str(obj(arr(obj(o.evidence).occurrences)[0]).location);
  if (occ) return occ;
  const q = str(o.purl)?.split('?')[1]?.split('#')[0];
  const fromPurl = q ? new URLSearchParams(q).get('path') : null;
  if (fromPurl) return fromPurl;
  const src = arr(o.properties)
    .map(obj)
    .find((p) => p.name === 'SrcFile');
  if (str(src?.value)) return str(src?.value);
  const name = str(o.name);
  return name?.startsWith('/') ? name : undefined;
}

function toolName(tools: unknown): string | undefined {
  const t = obj(tools);
  const list = Array.isArray(tools) ? tools : arr(t.components);
  const names = list
    .map((x) => {
      const o = obj(x);
      return [str(o.name), str(o.version)].filter(Boolean).join(' ');
    })
    .filter((s) => s !== '');
  return names.length > 0 ? names.join(', ') : undefined;
}

/**
 * Inventory from a CycloneDX 1.4–1.6 JSON document (text or parsed). Every
 * non-file component (nested ones too) is a package; its files come from
 * `evidence.occurrences[].location`, location properties
 * (`syft:location:N:path`, `cdx:npm:package:path`, `…:file`, `…:path`) and
 * nested components of type `file` (with their SHA-256 hashes). An npm
 * package's directory (or package.json) makes it own the files under that
 * directory (nested node_modules excluded).
 * @throws ReachabilityError SBOM_INVALID when it is not CycloneDX JSON 1.4–1.6, a
 * component is not an object with a name (the message names its JSON path,
 * e.g. `components[3].name: missing`), components nest deeper than
 * MAX_COMPONENT_DEPTH, or it lists no package
 */
export function parseCycloneDx(doc: unknown, options: SbomOptions = {}): Inventory {
  const d = parseDoc(doc, 'CycloneDX SBOM');
  const specVersion = str(d.specVersion);
  if (d.bomFormat !== 'CycloneDX' || !specVersion) {
    throw new ReachabilityError(
      'SBOM_INVALID',
      'not a CycloneDX JSON document (bomFormat "CycloneDX" and specVersion expected)',
    );
  }
  if (!/^1\.[4-6]$/.test(specVersion)) {
    throw new ReachabilityError(
      'SBOM_INVALID',
      `CycloneDX ${specVersion} is not supported (1.4, 1.5 and 1.6 are)`,
      {
        hint: 'ask the generator for spec version 1.6 (e.g. cyclonedx-npm --spec-version 1.6)',
      },
    );
  }
  const root = normalizePath(options.root ?? '/');
  const found: { owned: Owned; pkg: Omit<InventoryPackage, 'files' | 'digests' | 'directories'> }[] = [];
  const byBomRef = new Map<string, Owned>();
  const fileByBomRef = new Map<string, { path: string; sha256?: string }>();
  // Depth-first in document order with an explicit stack: a deeply nested document must not
  // exhaust the call stack.
  type Item = { o: Record<string, unknown>; path: string; parent: Owned | undefined; depth: number };
  const stack: Item[] = [];
  const push = (components: unknown, path: string, parent: Owned | undefined, depth: number) => {
    const list = objects(components, path, CDX_HINT);
    if (list.length > 0 && depth > MAX_COMPONENT_DEPTH) {
      throw badMember(
        shortPath(path),
        `components nested deeper than ${MAX_COMPONENT_DEPTH} levels`,
        'flatten the SBOM: no generator nests packages that deep',
      );
    }
    for (let i = list.length - 1; i >= 0; i--)
      stack.push({ o: list[i] as Record<string, unknown>, path: `${path}[${i}]`, parent, depth });
  };
  push(d.components, 'components', undefined, 1);
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { o, path: at, parent, depth } = item;
    const name = required(o, 'name', at, CDX_HINT);
    if (o.type === 'file') {
      const path = cdxFilePath(o);
      const sha256 = cdxSha256(o.hashes);
      // A file component inside a package component is one of its files;
      // elsewhere, `dependencies[].provides` may name its package.
      if (parent && path) {
        parent.location(path);
        parent.digest(path, sha256);
      }
      const bomRef = str(o['bom-ref']);
      if (bomRef && path) fileByBomRef.set(bomRef, { path, ...(sha256 ? { sha256 } : {}) });
      push(o.components, `${at}.components`, parent, depth + 1);
      continue;
    }
    const purl = str(o.purl);
    const owned = new Owned(root, ecosystemOfPurl(purl));
    for (const occ of arr(obj(o.evidence).occurrences)) owned.location(str(obj(occ).location));
    for (const p of arr(o.properties)) {
      const po = obj(p);
      const n = str(po.name);
      if (n && LOCATION_PROPERTY.test(n)) owned.location(str(po.value), n === 'cdx:npm:package:path');
    }
    push(o.components, `${at}.components`, owned, depth + 1);
    const bomRef = str(o['bom-ref']);
    if (bomRef) byBomRef.set(bomRef, owned);
    found.push({
      owned,
      pkg: {
        ref: purl ?? bomRef ?? `${name}@${str(o.version) ?? ''}`,
        name: str(o.group) && owned.ecosystem === 'npm' ? `${o.group}/${name}` : name,
        ...(str(o.version) ? { version: str(o.version) } : {}),
        ...(purl ? { purl } : {}),
        ecosystem: owned.ecosystem,
      },
    });
  }
  // CycloneDX 1.6: a package `provides` the file components it installs (cdxgen writes this).
  for (const dep of arr(d.dependencies)) {
    const o = obj(dep);
    const owned = byBomRef.get(str(o.ref) ?? '');
    if (!owned) continue;
    for (const r of arr(o.provides)) {
      const f = typeof r === 'string' ? fileByBomRef.get(r) : undefined;
      if (!f) continue;
      owned.location(f.path);
      owned.digest(f.path, f.sha256);
    }
  }
  const packages = found.map((f) => f.owned.finish(f.pkg));
  const meta = obj(d.metadata);
  const tool = toolName(meta.tools);
  return nonEmpty(
    {
      source: {
        kind: 'cyclonedx',
        specVersion,
        ...(tool ? { tool } : {}),
        ...(str(d.serialNumber) ? { serialNumber: str(d.serialNumber) } : {}),
      },
      packages: uniqueRefs(packages),
    },
    'CycloneDX SBOM',
  );
}

/** Refs must be unique in a report: a duplicate gets `#2`, `#3`, ... */
function uniqueRefs(packages: InventoryPackage[]): InventoryPackage[] {
  const seen = new Map<string, number>();
  for (const p of packages) {
    const n = (seen.get(p.ref) ?? 0) + 1;
    seen.set(p.ref, n);
    if (n > 1) p.ref = `${p.ref}#${n}`;
  }
  return packages;
}

/**
 * Inventory from an SPDX 2.2 or 2.3 JSON document (text or parsed). Packages are
 * `packages[]` (purl from `externalRefs`); their files are the `files[]`
 * named by `hasFiles` and by `CONTAINS` (or reverse `CONTAINED_BY`)
 * relationships, with their SHA-256 checksums.
 * @throws ReachabilityError SBOM_INVALID when it is not SPDX 2.2/2.3 JSON, a
 * package is not an object with an SPDXID and a name (named by its JSON
 * path, e.g. `packages[2].SPDXID: missing`), or it lists no package
 */
export function parseSpdx(doc: unknown, options: SbomOptions = {}): Inventory {
  const d = parseDoc(doc, 'SPDX SBOM');
  const spdxVersion = str(d.spdxVersion);
  if (spdxVersion !== 'SPDX-2.2' && spdxVersion !== 'SPDX-2.3') {
    throw new ReachabilityError(
      'SBOM_INVALID',
      `not an SPDX 2.2 or 2.3 JSON document (spdxVersion "SPDX-2.2" or "SPDX-2.3" expected, found ${JSON.stringify(d.spdxVersion)})`,
      {
        hint: 'SPDX 3 JSON-LD and tag-value documents are not read: ask the generator for SPDX 2.3 JSON',
      },
    );
  }
  const root = normalizePath(options.root ?? '/');
  const files = new Map<string, { name: string; sha256?: string }>();
  for (const o of objects(d.files, 'files', SPDX_SHAPE_HINT)) {
    const id = str(o.SPDXID);
    const name = str(o.fileName);
    if (!id || !name) continue;
    let sha256: string | undefined;
    for (const c of arr(o.checksums)) {
      const co = obj(c);
      if (String(co.algorithm).toUpperCase().replace('-', '') === 'SHA256') sha256 = str(co.checksumValue);
    }
    files.set(id, { name, ...(sha256 ? { sha256 } : {}) });
  }
  const contains = new Map<string, Set<string>>();
  const link = (pkg: string, file: string) => {
    getOrAdd(contains, pkg, () => new Set<string>()).add(file);
  };
  for (const o of objects(d.relationships, 'relationships', SPDX_SHAPE_HINT)) {
    const a = str(o.spdxElementId);
    const b = str(o.relatedSpdxElement);
    if (!a || !b) continue;
    if (o.relationshipType === 'CONTAINS') link(a, b);
    else if (o.relationshipType === 'CONTAINED_BY') link(b, a);
  }
  const packages: InventoryPackage[] = [];
  for (const [i, o] of objects(d.packages, 'packages', SPDX_HINT).entries()) {
    const id = required(o, 'SPDXID', `packages[${i}]`, SPDX_HINT);
    const name = required(o, 'name', `packages[${i}]`, SPDX_HINT);
    const purl = arr(o.externalRefs)
      .map(obj)
      .find((r) => r.referenceType === 'purl')?.referenceLocator as string | undefined;
    const owned = new Owned(root, ecosystemOfPurl(purl));
    for (const fid of [...arr(o.hasFiles), ...(contains.get(id) ?? [])]) {
      const f = typeof fid === 'string' ? files.get(fid) : undefined;
      if (!f) continue;
      owned.location(f.name);
      owned.digest(f.name, f.sha256);
    }
    packages.push(
      owned.finish({
        ref: purl ?? id,
        name,
        ...(str(o.versionInfo) ? { version: str(o.versionInfo) } : {}),
        ...(purl ? { purl } : {}),
        ecosystem: owned.ecosystem,
      }),
    );
  }
  const creators = arr(obj(d.creationInfo).creators)
    .filter((c): c is string => typeof c === 'string' && c.startsWith('Tool:'))
    .map((c) => c.slice(5).trim());
  return nonEmpty(
    {
      source: {
        kind: 'spdx',
        spdxVersion,
        ...(creators.length > 0 ? { tool: creators.join(', ') } : {}),
        ...(str(d.documentNamespace) ? { documentNamespace: str(d.documentNamespace) } : {}),
      },
      packages: uniqueRefs(packages),
    },
    'SPDX SBOM',
  );
}

/**
 * Inventory from a CycloneDX or SPDX JSON document, whichever it is (by
 * `bomFormat` / `spdxVersion`).
 * @throws ReachabilityError SBOM_INVALID when it is neither
 */
export function parseSbom(doc: unknown, options: SbomOptions = {}): Inventory {
  const d = parseDoc(doc, 'SBOM');
  if (d.bomFormat === 'CycloneDX') return parseCycloneDx(d, options);
  if (typeof d.spdxVersion === 'string') return parseSpdx(d, options);
  throw new ReachabilityError(
    'SBOM_INVALID',
    'the SBOM is neither CycloneDX JSON (bomFormat) nor SPDX JSON (spdxVersion)',
    { hint: 'give a CycloneDX 1.4-1.6 or SPDX 2.2/2.3 document in JSON' },
  );
}
