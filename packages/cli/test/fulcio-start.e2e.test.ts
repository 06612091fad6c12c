import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canRunBpf } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Issue 14: `key_id: fulcio` with a malformed or expired SIGSTORE_ID_TOKEN
// fails at start, before anything is collected (it used to collect for the
// whole run and fail only at the first seal, leaving the chunk unsealed).
// The check is offline: no Fulcio is contacted (none is reachable here).

const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'dist/bin.js');
const root = join(pkg, '../..');

beforeAll(() => {
  if (!existsSync(bin)) {
    execFileSync('npx', ['nx', 'run', '@stellaops/cli:build'], { cwd: root, stdio: 'ignore' });
  }
}, 300_000);

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: Record<string, unknown>) => `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;

// Start checks privileges before the key: without them the order of errors differs.
describe.runIf(canRunBpf('stella signals start with key_id fulcio'))(
  'stella signals start with key_id fulcio: the token is checked at start',
  () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-fulcio-start-'));
    afterAll(() => rmSync(base, { recursive: true, force: true }));

    it.each([
      [
        'expired',
        jwt({ iss: 'https://oidc.example.com', aud: 'sigstore', sub: 'ci', exp: 1_600_000_000 }),
        'stella: SIGSTORE_ID_TOKEN: expired at 2020-09-13T12:26:40.000Z',
      ],
      ['malformed', 'ghp_notajwt', 'stella: SIGSTORE_ID_TOKEN: is not a JWT: it has 1 dot-separated part'],
      [
        'without an issuer',
        jwt({ aud: 'sigstore', exp: Math.floor(Date.now() / 1000) + 3600 }),
        'stella: SIGSTORE_ID_TOKEN: has no issuer ("iss" claim)',
      ],
    ])(
      'an %s token: exit 2 before collecting, naming the variable and the config key; no chain written',
      (what, token, message) => {
        const target = join(base, `ev-${what.replace(/\W+/g, '-')}`);
        const r = spawnSync(
          process.execPath,
          [
            bin,
            'signals',
            'start',
            '--target',
            target,
            '--set',
            'signing.key_id=fulcio',
            '--duration',
            '10m',
          ],
          { encoding: 'utf8', env: { ...process.env, SIGSTORE_ID_TOKEN: token }, timeout: 120_000 },
        );
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr).toContain(message);
        expect(r.stderr).toContain('(keyless signing: signing.key_id "fulcio", --set signing.key_id)');
        expect(r.stderr).toMatch(/ {2}hint: .*SIGSTORE_ID_TOKEN.*signing\.key_id: local/);
        expect(r.stderr).not.toContain(token);
        expect(r.stderr).not.toContain('collector started');
        expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
        // Nothing collected, nothing written: the evidence directory was not even created.
        expect(existsSync(target)).toBe(false);
      },
    );
  },
);
