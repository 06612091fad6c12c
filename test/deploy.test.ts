import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../packages/cli/src/config.js';
import { repoRoot } from '../scripts/packages.js';

const deploy = (p: string) => join(repoRoot, 'deploy', p);

/**
 * Check a manifest against the Kubernetes API types (kubernetes-types): the
 * object is type-checked as a literal with `satisfies`, so a misspelt or
 * misplaced field is an excess-property error, a wrong type a type error.
 */
function kubeTypeErrors(manifest: unknown, typeImport: string, typeName: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'stella-k8s-'));
  const file = join(dir, 'manifest.ts');
  writeFileSync(
    file,
    `import type { ${typeName} } from '${typeImport}';\nexport const m = ${JSON.stringify(manifest, null, 2)} satisfies ${typeName};\n`,
  );
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    typeRoots: [],
    types: [],
    baseUrl: repoRoot,
    paths: { 'kubernetes-types/*': [join(repoRoot, 'node_modules/kubernetes-types/*')] },
  });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('deployment manifests', () => {
  const ds = parse(readFileSync(deploy('kubernetes/daemonset.yaml'), 'utf8'));

  it('the DaemonSet is a valid apps/v1 DaemonSet', () => {
    expect(ds.apiVersion).toBe('apps/v1');
    expect(ds.kind).toBe('DaemonSet');
    expect(kubeTypeErrors(ds, 'kubernetes-types/apps/v1', 'DaemonSet')).toEqual([]);
    expect(ds.spec.selector.matchLabels).toEqual(
      expect.objectContaining({
        'app.kubernetes.io/name': ds.spec.template.metadata.labels['app.kubernetes.io/name'],
      }),
    );
  }, 60_000);

  it('the type check catches a misspelt field (so it can fail)', () => {
    const broken = structuredClone(ds);
    broken.spec.template.spec.hostPid = true;
    expect(kubeTypeErrors(broken, 'kubernetes-types/apps/v1', 'DaemonSet').join('\n')).toMatch(/hostPid/);
  }, 60_000);

  it('mounts the signing key as a plain file (subPath), where the collector looks for it', () => {
    const c = ds.spec.template.spec.containers[0];
    const keyPath = c.env.find((e: { name: string }) => e.name === 'STELLA_SIGNING_KEY_PATH').value;
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === 'signing-key');
    // Secret volumes present files as symlinks; the signer refuses symlinked keys.
    expect(mount).toMatchObject({ mountPath: keyPath, subPath: 'signals-key.pem', readOnly: true });
  });

  it('every mounted volume is declared', () => {
    const declared = new Set(ds.spec.template.spec.volumes.map((v: { name: string }) => v.name));
    for (const m of ds.spec.template.spec.containers[0].volumeMounts) expect(declared).toContain(m.name);
  });

  it('the DaemonSet and the systemd unit grant the same capabilities', () => {
    const unit = readFileSync(deploy('systemd/stella-signals.service'), 'utf8');
    const ambient = /^AmbientCapabilities=(.*)$/m
      .exec(unit)?.[1]
      ?.split(/\s+/)
      .map((c) => c.replace(/^CAP_/, ''));
    const bounding = /^CapabilityBoundingSet=(.*)$/m
      .exec(unit)?.[1]
      ?.split(/\s+/)
      .map((c) => c.replace(/^CAP_/, ''));
    const added = ds.spec.template.spec.containers[0].securityContext.capabilities.add;
    expect(ambient?.sort()).toEqual([...added].sort());
    expect(bounding?.sort()).toEqual([...added].sort());
  });

  it('a Namespace object creates the namespace every other manifest uses, and admits privileged pods', () => {
    const docs = readdirSync(deploy('kubernetes'))
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) =>
        parseAllDocuments(readFileSync(deploy(`kubernetes/${f}`), 'utf8')).map((d) => ({
          file: f,
          m: d.toJS(),
        })),
      );
    const namespaces = docs.filter((d) => d.m.kind === 'Namespace');
    expect(namespaces.map((d) => d.file)).toEqual(['namespace.yaml']);
    const ns = namespaces[0]!.m;
    expect(kubeTypeErrors(ns, 'kubernetes-types/core/v1', 'Namespace')).toEqual([]);
    for (const d of docs.filter((x) => x.m.kind !== 'Namespace')) {
      expect(d.m.metadata.namespace, `${d.file} ${d.m.kind}`).toBe(ns.metadata.name);
    }
    // hostPID and hostPath volumes are refused by the baseline and restricted Pod Security Standards.
    expect(ds.spec.template.spec.hostPID).toBe(true);
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
  }, 60_000);

  it('the ConfigMap carries a stellaops.yaml the collector accepts', () => {
    const [cm] = parseAllDocuments(readFileSync(deploy('kubernetes/configmap.yaml'), 'utf8')).map((d) =>
      d.toJS(),
    );
    expect(kubeTypeErrors(cm, 'kubernetes-types/core/v1', 'ConfigMap')).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'stella-cm-'));
    writeFileSync(join(dir, 'stellaops.yaml'), cm.data['stellaops.yaml']);
    const cfg = loadConfig({ file: join(dir, 'stellaops.yaml') });
    expect(cfg.get('output_directory')).toBe('/var/lib/stellaops/evidence');
    expect(cfg.get('filters.path_denylist')).toEqual(['/proc/**', '/sys/**']);
  }, 60_000);
});
