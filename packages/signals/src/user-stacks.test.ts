import { describe, expect, it } from 'vitest';
import { collect } from './collect.js';
import { CollectError } from './errors.js';

describe('collect() userStacks option', () => {
  it('refuses anything but a boolean or { libc_net, tls } of booleans, with a hint', async () => {
    for (const bad of [{ tls: 'yes' }, { sock: true }, 'tls', 1]) {
      const c = collect({
        probes: { file_open: false, exec: false, tcp_state: true, libc_net: true, tls: true },
        enrich: false,
        userStacks: bad as never,
      });
      const err = await c.ready.then(
        () => undefined,
        (e: unknown) => e,
      );
      await c.close();
      expect(err).toBeInstanceOf(CollectError);
      expect(err).toMatchObject({ code: 'USAGE', hint: expect.stringContaining('libc_net') });
      expect((err as Error).message).toContain('userStacks');
    }
  });
});
