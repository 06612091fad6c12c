/**
 * Keyless signing (signing.key_id "fulcio") signs each sealed chunk with a
 * certificate Fulcio issues for SIGSTORE_ID_TOKEN; once the token has
 * expired, no chunk sealed later can be signed with it. These say so ahead
 * of time: at start, and again shortly before the expiry.
 */

/** How long before the expiry the reminder is logged. */
export const TOKEN_REMINDER_MS = 5 * 60_000;

function inWords(ms: number): string {
  const min = Math.floor(ms / 60_000);
  if (min < 1) return 'less than a minute';
  if (min < 120) return `${min} minute${min === 1 ? '' : 's'}`;
  return `${Math.floor(min / 60)} hours`;
}

const FRESH =
  'chunks sealed after that cannot be signed with it: restart the collector with a fresh SIGSTORE_ID_TOKEN before then, or sign with a local key (signing.key_id: local)';

/**
 * The start-up warning for a token that expires at `expSeconds` (JWT `exp`):
 * returned when the run can outlast it (no `durationMs`, or a duration that
 * ends after the expiry), undefined when the run ends first.
 */
export function tokenExpiryWarning(expSeconds: number, now: number, durationMs?: number): string | undefined {
  const left = expSeconds * 1000 - now;
  if (durationMs !== undefined && durationMs < left) return undefined;
  const when = new Date(expSeconds * 1000).toISOString();
  const run = durationMs === undefined ? 'this run has no --duration' : 'before --duration ends';
  return `SIGSTORE_ID_TOKEN expires at ${when} (in ${inWords(left)}), ${run}: ${FRESH}`;
}

/**
 * Call `log` with a reminder {@link TOKEN_REMINDER_MS} before the expiry (at
 * once when that is already past). The timer never keeps the process alive;
 * the returned function cancels it.
 */
export function remindBeforeExpiry(expSeconds: number, now: number, log: (msg: string) => void): () => void {
  const at = expSeconds * 1000 - TOKEN_REMINDER_MS;
  const timer = setTimeout(
    () => log(`SIGSTORE_ID_TOKEN expires in ${inWords(expSeconds * 1000 - Date.now())}: ${FRESH}`),
    Math.max(0, at - now),
  );
  timer.unref();
  return () => clearTimeout(timer);
}
