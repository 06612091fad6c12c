import { lstatSync } from 'node:fs';
import {
  checkIdentityToken,
  ensureEvidenceDir,
  FulcioSigner,
  LocalKeySigner,
  RekorV1Witness,
  type Signer,
  type Witness,
} from '@stellaops/evidence-chain';
import { type CollectOptions, Collector, type CollectorSnapshot, STOP_BUDGET_MS } from '@stellaops/signals';
import { type CommandSpec, type Parsed, parseDuration } from '../args.js';
import { type EffectiveConfig, loadConfig, settingOrigin } from '../config.js';
import { runtimeEndpoints } from '../config-runtimes.js';
import { CliError, EXIT } from '../errors.js';
import type { Io } from '../io.js';
import { pendingAtStop, watchLogOutages } from './flush.js';
import {
  CONFIG_FILE_OPTION,
  configFileInputs,
  configFlags,
  describeConfigFile,
  requireTracing,
} from './shared.js';
import { remindBeforeExpiry, tokenExpiryWarning } from './token-expiry.js';

export const startSpec: CommandSpec = {
  name: 'start',
  summary:
    'Run the collector in the foreground until SIGINT/SIGTERM/SIGHUP (or --duration), sealing signed chunks.',
  usage: 'stella signals start [--target DIR] [--config FILE] [--set KEY=VALUE]... [--duration 30s]',
  options: {
    target: { type: 'string', short: 't', value: 'DIR', help: 'output directory (signals.output_directory)' },
    config: CONFIG_FILE_OPTION,
    set: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'override one config key' },
    key: { type: 'string', value: 'PEM', help: 'private signing key (signals.signing.key_path)' },
    duration: { type: 'string', value: 'TIME', help: 'stop by itself after this long (30s, 5m, 1h)' },
  },
  positionals: [],
  examples: [
    'stella signals start --target /var/lib/stellaops/evidence',
    'stella signals start --config /etc/stellaops/stellaops.yaml --duration 10m',
    'stella signals start -t ./evidence --key ./signals-key.pem --set filters.path_denylist=/proc/**,/sys/**',
  ],
  exitCodes: [
    '0  stopped cleanly: drained, final status written, last chunk and end-of-stream statement sealed',
    `   (a stop takes at most ${STOP_BUDGET_MS / 1000} s; a second signal skips the rest of the drain but still seals)`,
    '   (a signal while starting, before collection began, is logged; start stops and seals as soon as the probes are attached)',
    '2  bad flags or configuration, unusable --target, or no signing key',
    '3  missing privileges or kernel features (the message says which and how to fix)',
    '4  a stop could not write or seal everything (the disk stayed full); the next start recovers what is on disk',
    '130  a third signal during a stop or while starting: exits as soon as the main thread is free (up to ~3 s while probes load or detach);',
    '     the next start seals the unfinished chunk as recovered (signals sent while the same one is still pending merge into one)',
    "143  SIGTERM (130 SIGINT, 129 SIGHUP) during node's own start-up and the heap-cap re-exec, about the first 0.1-0.2 s: ended by the signal before anything was read or written",
    '     (SIGQUIT and SIGKILL always end it at once; the next start seals the unfinished chunk as recovered)',
  ],
};

/** Map the effective config onto collect() options. */
export function collectOptions(cfg: EffectiveConfig): CollectOptions {
  return {
    probes: {
      file_open: cfg.get<boolean>('probes.file_open'),
      exec: cfg.get<boolean>('probes.exec'),
      tcp_state: cfg.get<boolean>('probes.tcp_state'),
      libc_net: cfg.get<boolean>('probes.libc_net'),
      tls: cfg.get<boolean>('probes.tls'),
    },
    filters: {
      targetContainers: cfg.get<string[]>('filters.target_containers'),
      pathAllowlist: cfg.get<string[]>('filters.path_allowlist'),
      pathDenylist: cfg.get<string[]>('filters.path_denylist'),
    },
    dedup: { enabled: cfg.get<boolean>('dedup.enabled'), maxEntries: cfg.get<number>('dedup.max_entries') },
    ringBufferBytes: cfg.get<number>('ring_buffer.size_mb') * 1024 * 1024,
    drainLatencyMs: cfg.get<number>('ring_buffer.drain_latency_ms'),
    statusIntervalMs: cfg.get<number>('status_interval_seconds') * 1000,
    socketSource: cfg.get<'syscall' | 'libc'>('probes.socket_source'),
    userStacks: { libc_net: cfg.get<boolean>('stacks.libc_net'), tls: cfg.get<boolean>('stacks.tls') },
    enrich: runtimeEndpoints(cfg),
    ...(cfg.get<string>('btf_custom_path') ? { btfCustomPath: cfg.get<string>('btf_custom_path') } : {}),
  };
}

/** The signer the config asks for, or a CliError saying what to fix. */
export async function makeSigner(cfg: EffectiveConfig, env: NodeJS.ProcessEnv): Promise<Signer> {
  if (!cfg.get<boolean>('signing.enabled')) {
    throw new CliError('KEY', 'signing.enabled is false, but evidence is always sealed with a signature', {
      hint: 'enable signing with a local key (stella signals keygen) so verify-chain can check the evidence',
    });
  }
  const keyId = cfg.get<string>('signing.key_id');
  if (keyId === 'fulcio') {
    const token = env.SIGSTORE_ID_TOKEN;
    if (!token) {
      throw new CliError('KEY', 'signing.key_id is "fulcio" but no OIDC token is available', {
        hint: 'set SIGSTORE_ID_TOKEN to an OIDC identity token, or use key_id: local with signing.key_path',
      });
    }
    try {
      // Offline, before anything is collected: a bad token would otherwise fail only at the first seal.
      checkIdentityToken(token, { source: 'SIGSTORE_ID_TOKEN' });
    } catch (e) {
      const hint = (e as { hint?: string }).hint;
      throw new CliError(
        'KEY',
        `${(e as Error).message} (keyless signing: signing.key_id "fulcio", ${settingOrigin(cfg, 'signing.key_id')})`,
        {
          hint: `${hint ? `${hint}, and set SIGSTORE_ID_TOKEN to it` : 'set SIGSTORE_ID_TOKEN to a valid OIDC identity token'}; or sign with a local key: signing.key_id: local and signing.key_path (stella signals keygen)`,
          cause: e,
        },
      );
    }
    return new FulcioSigner({ getToken: async () => token });
  }
  if (keyId !== 'local') {
    throw new CliError('KEY', `signing.key_id "${keyId}": this CLI signs with "local" keys or "fulcio"`, {
      hint: 'KMS keys are plugged in by embedding @stellaops/signals with an ExternalKeySigner',
    });
  }
  const path = cfg.get<string>('signing.key_path');
  // lstat, not existsSync: a key this user may not reach (EACCES) exists, and the loader says so.
  if (lstatCode(path) === 'ENOENT') {
    throw new CliError('KEY', `signing key ${path} does not exist`, {
      hint: `create one: stella signals keygen --out ${path}`,
    });
  }
  try {
    return LocalKeySigner.fromPemFile(path);
  } catch (e) {
    throw withOrigin(e, 'KEY', settingOrigin(cfg, 'signing.key_path'));
  }
}

/** The errno of lstat(path), or undefined when it succeeds. */
function lstatCode(path: string): string | undefined {
  try {
    lstatSync(path);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'EIO';
  }
}

/**
 * A library error about a path the user gave (an EvidenceChainError with a
 * code), as a CliError that also says where the path came from (`--target`,
 * `stellaops.yaml:4`, ...). Anything else is rethrown as it is.
 */
function withOrigin(e: unknown, code: 'TARGET' | 'KEY', origin: string): unknown {
  if (!(e instanceof Error) || e.name !== 'EvidenceChainError') return e;
  const hint = (e as { hint?: unknown }).hint;
  return new CliError(code, `${origin}: ${e.message}`, {
    ...(typeof hint === 'string' ? { hint } : {}),
    cause: e,
  });
}

function witnesses(cfg: EffectiveConfig): Witness[] {
  return cfg.get<boolean>('signing.submit_to_rekor')
    ? [new RekorV1Witness({ baseURL: cfg.get<string>('signing.rekor_url') })]
    : [];
}

function statusLine(s: CollectorSnapshot): string {
  const lost = s.probes.reduce((n, p) => n + BigInt(p.lost), 0n);
  return (
    `records ${s.records} (${s.recordsPerSecond}/s) | lost ${lost} | chunks sealed ${s.writer.sealedChunks}` +
    ` | pending log ${s.writer.pendingSubmissions} | containers ${s.containers.tracked}`
  );
}

function jsonLog(
  io: Io,
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields: Record<string, unknown> = {},
): void {
  io.err(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }, (_k, v) =>
      typeof v === 'bigint' ? v.toString() : v,
    )}\n`,
  );
}

/** What {@link prepareCollector} hands to the running part of start. */
interface Prepared {
  collector: Collector;
  dir: string;
  durationMs: number | undefined;
  tty: boolean;
}

/**
 * The signals that stop and seal. SIGHUP too: a closed terminal sends it, and
 * node resets a `nohup`'s ignore at start-up, so left alone it ends the
 * collector with an unsealed chunk. bin/stella.js catches the same ones.
 */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A failed write of the log (see startCommand): nothing to do but go on. */
function ignoreLogError(): void {}

/** A signal after the collector is done: the process is about to exit with the stop's own code. */
function ignoreLateSignal(): void {}

/** What bin/stella.js caught while the CLI loaded (see there). */
interface LauncherSignals {
  signals: NodeJS.Signals[];
  listener?: (sig: NodeJS.Signals) => void;
}

/**
 * Take over from the launcher's signal listener: `handler` is already
 * installed (so Node keeps its signal handles open), the launcher's is
 * removed, and the signals it caught are handled now, in order.
 */
function takeLauncherSignals(handler: (sig: NodeJS.Signals) => void): void {
  const key = Symbol.for('stellaops.cli.earlySignals');
  const handoff = (process as unknown as Record<symbol, LauncherSignals | undefined>)[key];
  if (!handoff?.listener) return;
  for (const sig of STOP_SIGNALS) process.off(sig, handoff.listener);
  handoff.listener = undefined;
  for (const sig of handoff.signals.splice(0)) handler(sig);
}

/** `stella signals start`: run until a signal or --duration, then stop and seal (exit codes in its help). */
export async function startCommand(p: Parsed, io: Io): Promise<number> {
  // A signal before the collector runs (config, preflight, loading and
  // attaching the probes: 0-2 s) must not kill the process half-way with
  // 143: remember it, and stop and seal as soon as the collector has started.
  const tty = io.errIsTTY === true;
  // The log goes to stderr. A closed terminal (EIO) or a log reader that went
  // away (EPIPE) makes its writes fail; unheard, that error ended the process
  // before it sealed. The log lines are lost then, the evidence is not.
  if (!process.stderr.listeners('error').includes(ignoreLogError)) process.stderr.on('error', ignoreLogError);
  let early: NodeJS.Signals | undefined;
  let signals = 0;
  const onEarlySignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      early = sig;
      const msg = 'stop requested before collection started: stopping as soon as the probes are attached';
      if (tty) io.err(`stella: ${sig}: ${msg}\n`);
      else jsonLog(io, 'info', msg, { signal: sig });
    } else if (signals === 2) {
      io.err('stella: second signal: still starting; a third signal exits at once\n');
    } else {
      io.err('stella: third signal: exiting now, before collection started\n');
      process.exit(130);
    }
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onEarlySignal);
  takeLauncherSignals(onEarlySignal);
  // Removed only once the running handlers are installed: with no listener
  // left Node closes its signal handle, and a signal that arrived while the
  // probes loaded (still queued for that handle) would be dropped.
  const releaseEarly = () => {
    for (const sig of STOP_SIGNALS) process.off(sig, onEarlySignal);
  };
  let prepared: Prepared;
  try {
    prepared = await prepareCollector(p, io, tty);
  } catch (e) {
    releaseEarly();
    throw e;
  }
  return runCollector(p, io, prepared, early, signals, releaseEarly);
}

/** Read the config, check the host, key and directory, and start the collector. */
async function prepareCollector(p: Parsed, io: Io, tty: boolean): Promise<Prepared> {
  const flags = configFlags(p);
  if (typeof p.values.key === 'string')
    flags.push({ key: 'signing.key_path', value: p.values.key, flag: '--key' });
  const cfg = loadConfig({ ...configFileInputs(p, io), env: io.env, flags });
  const durationMs =
    typeof p.values.duration === 'string' ? parseDuration('--duration', p.values.duration) : undefined;
  // Every log line of start goes to stderr: its terminal decides human text or JSON lines.
  // The flags are valid: say which file was read (or that none was) before acting on its values.
  if (tty) io.err(`stella: config file: ${describeConfigFile(cfg, io)}\n`);
  else
    jsonLog(io, 'info', 'config', {
      config_file: cfg.file?.path ?? null,
      via: cfg.file?.via ?? 'none: defaults',
    });
  if (!cfg.get<boolean>('enabled')) {
    throw new CliError('DISABLED', 'signals.enabled is false: nothing to start', {
      hint: 'set signals.enabled: true (or STELLA_ENABLED=true)',
    });
  }
  const dir = cfg.get<string>('output_directory');
  requireTracing(cfg.get<string>('btf_custom_path') || undefined);
  const signer = await makeSigner(cfg, io.env);
  if (cfg.get<string>('signing.key_id') === 'fulcio') {
    // Valid now (makeSigner checked it), but the run may outlast it.
    const { exp } = checkIdentityToken(io.env.SIGSTORE_ID_TOKEN ?? '', { source: 'SIGSTORE_ID_TOKEN' });
    const warn = (msg: string) => (tty ? io.err(`stella: warning: ${msg}\n`) : jsonLog(io, 'warn', msg));
    const expiring = tokenExpiryWarning(exp, Date.now(), durationMs);
    if (expiring) {
      warn(expiring);
      remindBeforeExpiry(exp, Date.now(), warn);
    }
  }
  let target: ReturnType<typeof ensureEvidenceDir>;
  try {
    // Refuses pseudo filesystems, other users' and world-writable places; never chmods what it did not create.
    target = ensureEvidenceDir(dir);
  } catch (e) {
    throw withOrigin(e, 'TARGET', settingOrigin(cfg, 'output_directory'));
  }
  // JSON lines when not on a terminal, like every other log line of start.
  for (const w of target.warnings) {
    if (tty) io.err(`stella: warning: ${w}\n`);
    else jsonLog(io, 'warn', w);
  }

  const collector = await Collector.start({
    dir,
    signer,
    collect: collectOptions(cfg),
    rotation: {
      maxSizeBytes: cfg.get<number>('rotation.max_size_mb') * 1024 * 1024,
      maxAgeMs: Math.round(cfg.get<number>('rotation.max_age_hours') * 3_600_000),
    },
    fsync: { mode: cfg.get<'seal' | 'interval' | 'always'>('rotation.fsync') },
    witnesses: witnesses(cfg),
    // What decides what is (not) looked for: filters, probes and dedup;
    // not paths, keys or rotation, which would change the digest for nothing.
    filterConfig: (({ filters, probes, dedup }) => ({ filters, probes, dedup }))(
      cfg.toObject().signals as Record<string, unknown>,
    ),
  });

  return { collector, dir, durationMs, tty };
}

/**
 * Log, serve the status line and handle signals until the collector is done.
 * `early` is a signal that came while it was starting (`signals` counts them):
 * the stop begins at once.
 */
async function runCollector(
  p: Parsed,
  io: Io,
  { collector, dir, durationMs, tty }: Prepared,
  early: NodeJS.Signals | undefined,
  earlySignals: number,
  releaseEarly: () => void,
): Promise<number> {
  const started = collector.status();
  if (tty) {
    io.err(`stella: collecting into ${dir} (pid ${process.pid}); Ctrl-C stops and seals\n`);
  } else {
    jsonLog(io, 'info', 'collector started', {
      dir,
      pid: process.pid,
      probes: started.probes.map((x) => ({
        name: x.name,
        attached: x.attached,
        attach_type: x.attachType,
        reason: x.reason,
      })),
    });
  }
  for (const r of collector.recovery.recovered) {
    const msg = `recovered ${r.file} (${r.records} records${r.partialLineBytes ? `, a torn last line of ${r.partialLineBytes} bytes kept aside` : ''}) left unsealed by a run that did not stop cleanly`;
    if (tty) io.err(`stella: ${msg}\n`);
    else jsonLog(io, 'warn', msg, { recovered: r });
  }
  for (const probe of started.probes.filter((x) => !x.attached)) {
    if (tty) io.err(`stella: probe ${probe.name}: ${probe.reason ?? 'not attached (no reason given)'}\n`);
  }
  collector.on('sealed', (s) => {
    if (!tty)
      jsonLog(io, 'info', 'chunk sealed', {
        file: s.file,
        records: s.records,
        bytes: s.bytes,
        seal_ms: s.sealMs,
      });
  });
  collector.on('drop', (d) => {
    if (tty) io.err(`\nstella: probe ${d.probe} lost ${d.newlyLost} records (total ${d.totalLost})\n`);
    else
      jsonLog(io, 'warn', 'records lost', {
        probe: d.probe,
        newly_lost: d.newlyLost,
        total_lost: d.totalLost,
      });
  });
  collector.on('warning', (w) => (tty ? io.err(`\nstella: ${w}\n`) : jsonLog(io, 'warn', w)));
  // Rekor unreachable: say once that submissions spool, and once when it answers again.
  const stopLogWatch = watchLogOutages(
    () => collector.status().writer,
    (level, text, fields) => (tty ? io.err(`\nstella: ${text}\n`) : jsonLog(io, level, text, fields)),
  );

  const ticker = setInterval(
    () => {
      const s = collector.status();
      if (tty) io.err(`\r\x1b[K${statusLine(s)}`);
      else
        jsonLog(io, 'info', 'status', {
          records: s.records,
          records_per_second: s.recordsPerSecond,
          sealed: s.writer.sealedChunks,
        });
    },
    tty ? 1000 : 30_000,
  );

  // One stop budget (drain, final status, seal, detach): the collector keeps
  // to STOP_BUDGET_MS; the watchdog below is the last resort if it cannot.
  let signals = earlySignals;
  let watchdog: NodeJS.Timeout | undefined;
  const stop = (why: string, fast = false) => {
    if (watchdog) return;
    if (tty) io.err(`\nstella: ${why}: draining and sealing (at most ${STOP_BUDGET_MS / 1000} s)...\n`);
    else jsonLog(io, 'info', 'stopping', { reason: why, budget_ms: STOP_BUDGET_MS });
    watchdog = setTimeout(() => {
      io.err(
        `stella: the stop did not finish within ${STOP_BUDGET_MS / 1000 + 5} s; exiting; the next start seals the unfinished chunk as recovered\n`,
      );
      process.exit(EXIT.STOP_INCOMPLETE);
    }, STOP_BUDGET_MS + 5000);
    // Errors surface through collector.done below.
    collector.stop(fast ? { fast: true } : undefined).catch(() => undefined);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1 && !watchdog) return stop(sig);
    if (signals <= 2) {
      io.err(
        'stella: second signal: skipping the rest of the drain; still sealing (a third signal exits at once)\n',
      );
      collector.stop({ fast: true }).catch(() => undefined);
      return;
    }
    io.err('stella: third signal: exiting now; the unfinished chunk is recovered on the next start\n');
    process.exit(130);
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  releaseEarly();
  // Nothing the user wanted was collected yet: no drain to wait for, seal at once.
  if (early) stop(`${early} before collection started`, true);
  const timer =
    durationMs !== undefined
      ? setTimeout(() => stop(`--duration ${p.values.duration} elapsed`), durationMs)
      : undefined;
  try {
    await collector.done;
  } finally {
    clearInterval(ticker);
    stopLogWatch();
    if (timer) clearTimeout(timer);
    if (watchdog) clearTimeout(watchdog);
    // Sealed (or as sealed as it gets): a late signal must not turn the
    // exit into a kill while the last lines are written.
    for (const sig of STOP_SIGNALS) {
      if (!process.listeners(sig).includes(ignoreLateSignal)) process.on(sig, ignoreLateSignal);
      process.off(sig, onSignal);
    }
  }
  const end = collector.status();
  // Log submissions left in the spool (Rekor unreachable): said before the last line.
  const pending = pendingAtStop(end.writer);
  if (tty)
    io.err(
      `\r\x1b[K${statusLine(end)}\n${pending ? `stella: ${pending}\n` : ''}stella: stopped; ${end.writer.sealedChunks} chunks sealed in ${dir}\n`,
    );
  else {
    if (pending) jsonLog(io, 'warn', pending, { pending: end.writer.pendingSubmissions });
    jsonLog(io, 'info', 'collector stopped', {
      dir,
      records: end.records,
      sealed: end.writer.sealedChunks,
      pending_submissions: end.writer.pendingSubmissions,
    });
  }
  return EXIT.OK;
}
