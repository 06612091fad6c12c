/**
 * The human table of a report: the window and its conditions first (they
 * qualify every "not observed"), then one line per package.
 */
import type { PackageEvidence, PackageReport, ReachabilityReport } from './types.js';

function iso(ns: string | null): string {
  if (ns === null) return '-';
  return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString();
}

function duration(start: string | null, end: string | null): string {
  if (start === null || end === null) return '';
  const s = Number((BigInt(end) - BigInt(start)) / 1_000_000n) / 1000;
  return s >= 120 ? ` (${(s / 60).toFixed(1)} min)` : ` (${s.toFixed(1)} s)`;
}

function pad(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** "exec 1, load 2: /usr/bin/jq +1 more" */
function touchesOf(e: PackageEvidence): string {
  const c = e.counts;
  const parts = [
    c.executed !== '0' ? `exec ${c.executed}` : '',
    c.loaded !== '0' ? `load ${c.loaded}` : '',
    c.opened !== '0' ? `open ${c.opened}` : '',
  ].filter(Boolean);
  const more = e.files.length > 1 ? ` +${e.files.length - 1} more` : '';
  return `${parts.join(', ')}: ${e.files[0]?.path ?? ''}${more}`;
}

function evidenceOf(p: PackageReport): string {
  if (p.unattributed) return `unattributed records: ${touchesOf(p.unattributed)}`;
  if (p.status === 'unknown') return 'no files known for this package';
  if (!p.observed) return `${p.file_count} files, none touched`;
  return touchesOf(p.observed);
}

/** The unattributed containers, for the window's condition line. */
function unattributedLine(w: ReachabilityReport['window']): string {
  if (w.unattributed_records === '0') return '0 records of containers not tied to an image';
  const shown = w.unattributed_containers
    .slice(0, 3)
    .map((c) => `${c.id ?? c.cgroup_path ?? '(no id or cgroup)'} ${c.records}`);
  const more = w.unattributed_containers.length > 3 ? `, +${w.unattributed_containers.length - 3} more` : '';
  return `${w.unattributed_records} records of containers not tied to an image (${shown.join(', ')}${more}): any may have been this image's`;
}

const STATUS_LABEL = { observed: 'observed', not_observed: 'not observed', unknown: 'unknown' } as const;

/** A human-readable table of a report, ending with a newline. */
export function formatTable(report: ReachabilityReport): string {
  const w = report.window;
  const lines: string[] = [];
  lines.push(`image     ${report.image.manifest_digest}`);
  const src = report.inventory.source;
  lines.push(
    `inventory ${src.kind}${'tool' in src && src.tool ? ` (${src.tool})` : ''}, ${report.inventory.packages} packages`,
  );
  const ev = report.evidence;
  lines.push(
    `evidence  ${ev.kind === 'chain' ? `verified chain, ${ev.chunks?.length ?? 0} chunks` : 'records'}, ${ev.records} records, ${ev.image_records} of this image (${ev.containers.length} containers)`,
  );
  lines.push(
    `window    ${iso(w.start_wall_ns)} .. ${iso(w.end_wall_ns)}${duration(w.start_wall_ns, w.end_wall_ns)}, from ${w.source}`,
  );
  if (w.source === 'collector_status') {
    const attached = w.probes.filter((p) => p.attached).map((p) => p.name);
    const detached = w.probes.filter((p) => !p.attached).map((p) => p.name);
    lines.push(
      `probes    ${attached.join(', ') || 'none attached'}${detached.length ? `; NOT attached: ${detached.join(', ')}` : ''}`,
    );
    lines.push(
      `lost      ${w.lost} events${w.final_status ? '' : '; no final collector_status: the run was cut short or is still going'}`,
    );
  } else {
    lines.push(
      'probes    unknown: no collector_status records in the evidence, attachment and losses cannot be stated',
    );
  }
  lines.push(`unattrib  ${unattributedLine(w)}`);
  const gaps =
    w.runs.length > 1 ? `; ${w.runs.length} collector runs, time between them was not watched` : '';
  const unattributed =
    w.unattributed_records !== '0'
      ? `, nor did any of the ${w.unattributed_records} records no image could be tied to`
      : '';
  lines.push(
    `"not observed" means: no record of this image touched the package's files in the window above${unattributed}${gaps}.`,
  );
  lines.push('It is not a verdict that the package is unused or not affected by a vulnerability.');
  lines.push('');
  const rows = [['STATUS', 'PACKAGE', 'VERSION', 'ECOSYSTEM', 'EVIDENCE']];
  const order = { observed: 0, not_observed: 1, unknown: 2 } as const;
  const sorted = [...report.packages].sort((a, b) => order[a.status] - order[b.status]);
  for (const p of sorted)
    rows.push([STATUS_LABEL[p.status], p.name, p.version ?? '-', p.ecosystem, evidenceOf(p)]);
  lines.push(...pad(rows));
  lines.push('');
  const s = report.summary;
  const byUnattributed = s.unattributed > 0 ? ` (${s.unattributed} touched by unattributed records)` : '';
  lines.push(`${s.observed} observed, ${s.not_observed} not observed, ${s.unknown} unknown${byUnattributed}`);
  if (report.unowned_paths.length > 0) {
    lines.push(
      `${report.unowned_paths.length} touched paths belong to no package of the inventory (see unowned_paths)`,
    );
  }
  return `${lines.join('\n')}\n`;
}
