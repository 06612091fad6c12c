/**
 * Package databases inside an image: dpkg (`status` + `info/<pkg>[:arch].list`,
 * or distroless `status.d/`), apk (`lib/apk/db/installed`), npm
 * (`node_modules/**\/package.json`) and Python (`*.dist-info/RECORD`).
 */
import { posix } from 'node:path';
import { type FsView, ViewIndex } from './fsview.js';
import { normalizePath } from './paths.js';
import type { InventoryPackage } from './types.js';

/** Stanzas of a Debian control-style file (blank-line separated "Key: value", continuation lines start with a space). */
export function parseControl(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur.size > 0) out.push(cur);
      cur = new Map();
      last = undefined;
    } else if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      cur.set(last, `${cur.get(last)}\n${line.slice(1)}`);
    } else {
      const c = line.indexOf(':');
      if (c <= 0) continue;
      last = line.slice(0, c);
      cur.set(last, line.slice(c + 1).trim());
    }
  }
  if (cur.size > 0) out.push(cur);
  return out;
}

/** The `ID` of os-release (e.g. "debian", "ubuntu", "alpine"), for purl namespaces. */
async function osId(view: FsView): Promise<string | undefined> {
  const text = (await view.read('/etc/os-release')) ?? (await view.read('/usr/lib/os-release'));
  const m = text?.toString('utf8').match(/^ID="?([A-Za-z0-9._-]+)"?\s*$/m);
  return m?.[1]?.toLowerCase();
}

const enc = encodeURIComponent;

function purlOf(type: string, namespace: string | undefined, name: string, version?: string, arch?: string) {
  const ns = namespace ? `${enc(namespace)}/` : '';
  const v = version ? `@${enc(version)}` : '';
  const q = arch ? `?arch=${enc(arch)}` : '';
  return `pkg:${type}/${ns}${enc(name)}${v}${q}`;
}

/** Keep the listed paths that are files (or links to files) of the image, sorted and unique. */
function keep(idx: ViewIndex, paths: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const k = idx.keepFile(p);
    if (k !== undefined) out.add(k);
  }
  return [...out].sort();
}

async function digestsOf(view: FsView, idx: ViewIndex, files: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of files) {
    // A symlink has no content of its own: its target's digest would credit this package for the target's use.
    if (idx.node(f, false)?.kind !== 'file') continue;
    const d = await view.digest(idx.resolver.parentReal(f));
    if (d !== undefined) out[f] = d;
  }
  return out;
}

async function finish(
  view: FsView,
  idx: ViewIndex,
  pkg: Omit<InventoryPackage, 'files' | 'digests'>,
  listed: Iterable<string>,
): Promise<InventoryPackage> {
  const files = keep(idx, listed);
  const digests = await digestsOf(view, idx, files);
  return { ...pkg, files, ...(Object.keys(digests).length > 0 ? { digests } : {}) };
}

/** dpkg: installed packages of `/var/lib/dpkg/status` with their `info/*.list` files, and distroless `status.d/`. */
export async function readDpkg(view: FsView, idx: ViewIndex): Promise<InventoryPackage[]> {
  const ns = await osId(view);
  const out: InventoryPackage[] = [];
  const add = async (st: Map<string, string>, listed: string[]) => {
    const name = st.get('Package');
    if (!name) return;
    const version = st.get('Version');
    const arch = st.get('Architecture');
    const purl = purlOf('deb', ns ?? 'debian', name, version, arch);
    out.push(await finish(view, idx, { ref: purl, name, version, purl, ecosystem: 'deb' }, listed));
  };
  const status = await view.read('/var/lib/dpkg/status');
  if (status) {
    for (const st of parseControl(status.toString('utf8'))) {
      if (!/\binstalled$/.test(st.get('Status') ?? '')) continue;
      const name = st.get('Package') as string;
      const arch = st.get('Architecture');
      const list =
        (arch ? await view.read(`/var/lib/dpkg/info/${name}:${arch}.list`) : undefined) ??
        (await view.read(`/var/lib/dpkg/info/${name}.list`));
      await add(st, list ? list.toString('utf8').split('\n').filter(Boolean) : []);
    }
  }
  // Distroless images: one control stanza per file in status.d, file lists in <name>.md5sums.
  for (const p of [...view.nodes.keys()].filter((k) => k.startsWith('/var/lib/dpkg/status.d/')).sort()) {
    if (p.endsWith('.md5sums')) continue;
    const text = await view.read(p);
    if (!text) continue;
    const sums = await view.read(`${p}.md5sums`);
    const listed = (sums?.toString('utf8') ?? '')
      .split('\n')
      .map((l) => l.replace(/^[0-9a-f]{32}\s+/, ''))
      .filter(Boolean)
      .map((l) => `/${l}`);
    for (const st of parseControl(text.toString('utf8'))) await add(st, listed);
  }
  return out;
}

/** apk: `P:` name, `V:` version, `A:` arch, `F:` directory, `R:` file in the last `F:`. */
export async function readApk(view: FsView, idx: ViewIndex): Promise<InventoryPackage[]> {
  const text = (await view.read('/lib/apk/db/installed')) ?? (await view.read('/usr/lib/apk/db/installed'));
  if (!text) return [];
  const ns = (await osId(view)) ?? 'alpine';
  const out: InventoryPackage[] = [];
  for (const block of text.toString('utf8').split(/\n\s*\n/)) {
    let name: string | undefined;
    let version: string | undefined;
    let arch: string | undefined;
    let dir = '';
    const listed: string[] = [];
    for (const line of block.split('\n')) {
      const key = line.slice(0, 2);
      const val = line.slice(2);
      if (key === 'P:') name = val;
      else if (key === 'V:') version = val;
      else if (key === 'A:') arch = val;
      else if (key === 'F:') dir = val;
      else if (key === 'R:') listed.push(`/${dir}/${val}`);
    }
    if (!name) continue;
    const purl = purlOf('apk', ns, name, version, arch);
    out.push(await finish(view, idx, { ref: purl, name, version, purl, ecosystem: 'apk' }, listed));
  }
  return out;
}

const NPM_MANIFEST = /\/node_modules\/((?:@[^/]+\/)?[^/@][^/]*)\/package\.json$/;

/** npm: every `node_modules/<name>/package.json` (scoped too); files = the package directory minus nested node_modules. */
export async function readNpm(view: FsView, idx: ViewIndex): Promise<InventoryPackage[]> {
  const out: InventoryPackage[] = [];
  const manifests = [...view.nodes.entries()]
    .filter(([p, n]) => n.kind === 'file' && NPM_MANIFEST.test(p))
    .map(([p]) => p)
    .sort();
  for (const m of manifests) {
    let json: { name?: unknown; version?: unknown };
    try {
      json = JSON.parse((await view.read(m))?.toString('utf8') ?? '');
    } catch {
      continue; // test fixtures and templates inside packages are not packages
    }
    const dirName = (m.match(NPM_MANIFEST) as RegExpMatchArray)[1] as string;
    const name = typeof json.name === 'string' && json.name !== '' ? json.name : dirName;
    if (name !== dirName) continue; // a package.json deeper inside a package (its templates), not a package root
    const version = typeof json.version === 'string' ? json.version : undefined;
    const slash = name.startsWith('@') ? name.indexOf('/') : -1;
    const purl =
      slash > 0
        ? purlOf('npm', name.slice(0, slash), name.slice(slash + 1), version)
        : purlOf('npm', undefined, name, version);
    const dir = posix.dirname(m);
    out.push(
      await finish(
        view,
        idx,
        { ref: purl, name, version, purl, ecosystem: 'npm', location: dir },
        idx.filesUnder(dir),
      ),
    );
  }
  return out;
}

/** Split one CSV line (RECORD files quote paths holding commas). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** `sha256=<urlsafe base64>` of a RECORD line as `sha256:<hex>`. */
function recordDigest(field: string | undefined): string | undefined {
  const m = field?.match(/^sha256=([A-Za-z0-9_-]+)=*$/);
  if (!m) return undefined;
  const hex = Buffer.from(m[1] as string, 'base64url').toString('hex');
  return hex.length === 64 ? `sha256:${hex}` : undefined;
}

/** Normalised Python project name (PEP 503). */
function pep503(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** Python: every `*.dist-info/RECORD`; paths are relative to the dist-info's parent (site-packages). */
export async function readPython(view: FsView, idx: ViewIndex): Promise<InventoryPackage[]> {
  const out: InventoryPackage[] = [];
  const records = [...view.nodes.keys()].filter((p) => p.endsWith('.dist-info/RECORD')).sort();
  for (const rec of records) {
    const distInfo = posix.dirname(rec);
    const base = posix.dirname(distInfo);
    const meta = (await view.read(`${distInfo}/METADATA`))?.toString('utf8') ?? '';
    const fromDir = posix.basename(distInfo, '.dist-info').match(/^(.+?)-([^-]+)$/);
    const name = meta.match(/^Name:\s*(.+?)\s*$/m)?.[1] ?? fromDir?.[1];
    if (!name) continue;
    const version = meta.match(/^Version:\s*(.+?)\s*$/m)?.[1] ?? fromDir?.[2];
    const listed: string[] = [];
    const digests: Record<string, string> = {};
    for (const line of ((await view.read(rec))?.toString('utf8') ?? '').split('\n')) {
      if (line.trim() === '') continue;
      const [p, h] = csvFields(line);
      if (!p) continue;
      const abs = normalizePath(p.startsWith('/') ? p : `${base}/${p}`);
      listed.push(abs);
      const d = recordDigest(h);
      if (d) digests[abs] = d;
    }
    const purl = purlOf('pypi', undefined, pep503(name), version);
    const pkg = await finish(
      view,
      idx,
      { ref: purl, name, version, purl, ecosystem: 'pypi', location: distInfo },
      listed,
    );
    for (const f of pkg.files) {
      const d = digests[f];
      if (d !== undefined) pkg.digests = { ...pkg.digests, [f]: d };
    }
    out.push(pkg);
  }
  return out;
}

/** Every package of every database the view holds, sorted by ecosystem, name, version. */
export async function readPackages(view: FsView): Promise<InventoryPackage[]> {
  const idx = new ViewIndex(view);
  const all = [
    ...(await readDpkg(view, idx)),
    ...(await readApk(view, idx)),
    ...(await readNpm(view, idx)),
    ...(await readPython(view, idx)),
  ];
  // The same package version installed in two places (npm trees do this) gets two refs.
  const count = new Map<string, number>();
  for (const p of all) count.set(p.ref, (count.get(p.ref) ?? 0) + 1);
  for (const p of all) if ((count.get(p.ref) ?? 0) > 1 && p.location) p.ref = `${p.ref}#${p.location}`;
  return all.sort(
    (a, b) =>
      a.ecosystem.localeCompare(b.ecosystem) ||
      a.name.localeCompare(b.name) ||
      (a.version ?? '').localeCompare(b.version ?? '') ||
      a.ref.localeCompare(b.ref),
  );
}
