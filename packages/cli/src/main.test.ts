import { describe, expect, it } from 'vitest';
import type { Io } from './io.js';
import { main } from './main.js';

function capture(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env, isTTY: false };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

describe('stella CLI dispatch', () => {
  it('prints the command list for --help', async () => {
    const c = capture();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain('Usage: stella signals <command>');
    expect(c.out()).toContain('config');
  });

  it('rejects an unknown command with exit 2 and a hint, no stack', async () => {
    const c = capture();
    expect(await main(['signals', 'strat'], c.io)).toBe(2);
    expect(c.err()).toMatch(/^stella: unknown command 'signals strat'\n {2}hint: commands: /);
    expect(c.err()).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('rejects an unknown flag and names it', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--effective', '--bogus'], c.io)).toBe(2);
    expect(c.err()).toContain("Unknown option '--bogus'");
    expect(c.err()).toContain("hint: run 'stella signals config --help'");
  });

  it('shows examples and exit codes in command help', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--help'], c.io)).toBe(0);
    expect(c.out()).toContain('Examples:');
    expect(c.out()).toContain('Exit codes:');
  });

  it('prints the effective config with the source of each value', async () => {
    const c = capture({ STELLA_DEDUP_ENABLED: 'false' });
    expect(await main(['signals', 'config', '--effective', '--set', 'rotation.max_size_mb=3'], c.io)).toBe(0);
    expect(c.out()).toMatch(/signals\.rotation\.max_size_mb: 3\s+# flag \(--set rotation\.max_size_mb\)/);
    expect(c.out()).toMatch(/signals\.dedup\.enabled: false\s+# env \(STELLA_DEDUP_ENABLED\)/);
    expect(c.out()).toMatch(/signals\.ring_buffer\.size_mb: 8\s+# default/);
  });

  it('reports a bad --set with the key and the expected type', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--effective', '--set', 'dedup.max_entries=lots'], c.io)).toBe(2);
    expect(c.err()).toContain(
      'stella: --set dedup.max_entries: signals.dedup.max_entries must be an integer',
    );
  });
});
