import { type CollectorSnapshot, queryStatus } from '@stellaops/signals';
import type { CommandSpec, Parsed } from '../args.js';
import { loadConfig } from '../config.js';
import { EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { configFlags } from './shared.js';

export const statusSpec: CommandSpec = {
  name: 'status',
  summary: 'Ask the running collector for uptime, probes and their counters, drops, chunks, log submissions.',
  usage: 'stella signals status [--target DIR] [--config FILE] [--json]',
  options: {
    target: { type: 'string', short: 't', value: 'DIR', help: 'the collector output directory' },
    config: { type: 'string', short: 'c', value: 'FILE', help: 'stellaops.yaml (for output_directory)' },
    json: { type: 'boolean', help: 'machine-readable output' },
  },
  positionals: [],
  examples: ['stella signals status --target /var/lib/stellaops/evidence', 'stella signals status --json'],
  exitCodes: [
    '0  a collector answered',
    '2  bad flags or config',
    '3  no collector is running on that directory',
  ],
};

function formatStatus(s: CollectorSnapshot): string {
  const lines = [
    `collector pid ${s.pid}, version ${s.version}, up ${s.uptimeSeconds}s (since ${s.startedAt})`,
    `state       ${s.state ?? 'running'}${s.state === 'stopping' ? ' (draining, writing the final status, sealing)' : ''}`,
    `output      ${s.dir}`,
    `records     ${s.records} (${s.recordsPerSecond}/s)`,
    `chunks      ${s.writer.sealedChunks} sealed, current ${s.writer.currentChunk ? `${s.writer.currentChunk.file} (${s.writer.currentChunk.records} records, ${s.writer.currentChunk.bytes} bytes)` : 'none'}`,
    `log         ${s.writer.pendingSubmissions} submissions pending${(s.writer.witnessOutages ?? []).map((o) => `; ${o.witness} failing since ${o.since}: ${o.lastError}`).join('')}`,
    `containers  ${s.containers.tracked} tracked${s.containers.runtimes.length ? ` via ${s.containers.runtimes.map((r) => `${r.runtime}${r.error ? ` (error: ${r.error})` : ''}`).join(', ')}` : ''}`,
    '',
    'probe            attach     seen        filtered    dedup       emitted     lost        in flight',
  ];
  for (const p of s.probes) {
    // seen = filtered + dedup + emitted + lost + in flight (in a program, a ring or the pipeline).
    const cols = [p.seen, p.filtered, p.deduplicated, p.emitted, p.lost, p.inFlight ?? 0].map((n) =>
      String(n).padEnd(11),
    );
    lines.push(`${p.name.padEnd(16)} ${(p.attached ? p.attachType : 'NOT').padEnd(10)} ${cols.join(' ')}`);
    if (!p.attached && p.reason) lines.push(`                 ${p.reason}`);
  }
  if (s.lastError) lines.push('', `last error: ${s.lastError}`);
  return `${lines.join('\n')}\n`;
}

export async function statusCommand(p: Parsed, io: Io): Promise<number> {
  const cfg = loadConfig({
    ...(typeof p.values.config === 'string' ? { file: p.values.config } : {}),
    env: io.env,
    flags: configFlags(p),
  });
  const snapshot = (await queryStatus(cfg.get<string>('output_directory'))) as CollectorSnapshot;
  io.out(p.values.json ? `${JSON.stringify(snapshot, null, 2)}\n` : formatStatus(snapshot));
  return EXIT.OK;
}
