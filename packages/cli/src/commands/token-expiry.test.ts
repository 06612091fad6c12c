import { afterEach, describe, expect, it, vi } from 'vitest';
import { remindBeforeExpiry, TOKEN_REMINDER_MS, tokenExpiryWarning } from './token-expiry.js';

const now = Date.UTC(2026, 11, 2, 9, 0, 0);
const exp = now / 1000 + 30 * 60; // 09:30

describe('the Fulcio token expiry warning at start', () => {
  it('warns when a --duration run ends after the token expires, with the time and what to do', () => {
    const w = tokenExpiryWarning(exp, now, 60 * 60_000);
    expect(w).toContain(
      'SIGSTORE_ID_TOKEN expires at 2026-12-02T09:30:00.000Z (in 30 minutes), before --duration ends',
    );
    expect(w).toMatch(/fresh SIGSTORE_ID_TOKEN .*\(signing\.key_id: local\)/);
  });

  it('warns for a run without --duration (it runs until stopped)', () => {
    expect(tokenExpiryWarning(exp, now)).toContain('this run has no --duration');
  });

  it('says nothing when the run ends before the token expires', () => {
    expect(tokenExpiryWarning(exp, now, 10 * 60_000)).toBeUndefined();
  });

  it('says "less than a minute" for a token about to expire', () => {
    expect(tokenExpiryWarning(now / 1000 + 20, now)).toContain('(in less than a minute)');
  });
});

describe('the reminder before the token expires', () => {
  afterEach(() => vi.useRealTimers());

  it(`logs ${TOKEN_REMINDER_MS / 60_000} minutes before the expiry, not earlier, and cancel stops it`, () => {
    vi.useFakeTimers({ now });
    const lines: string[] = [];
    remindBeforeExpiry(exp, now, (m) => lines.push(m));
    vi.advanceTimersByTime(30 * 60_000 - TOKEN_REMINDER_MS - 1);
    expect(lines).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^SIGSTORE_ID_TOKEN expires in 5 minutes: chunks sealed after that cannot be signed/,
    );

    const cancelled: string[] = [];
    remindBeforeExpiry(exp + 3600, now, (m) => cancelled.push(m))();
    vi.advanceTimersByTime(2 * 3600_000);
    expect(cancelled).toEqual([]);
  });
});
