import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// gRPC costs ~15 MiB of RSS in every collector that loads it: a host
// without containerd (no socket, so no client) never should.
const loaded = () =>
  Object.keys(createRequire(import.meta.url).cache).filter((k) =>
    /[\\/]@grpc[\\/](grpc-js|proto-loader)[\\/]/.test(k),
  );

describe('gRPC is loaded only for a containerd client', () => {
  it('importing @stellaops/enrich loads no gRPC; making a containerd client does', async () => {
    const enrich = await import('../index.js');
    expect(loaded()).toEqual([]);
    const client = new enrich.ContainerdClient('/nonexistent/containerd.sock', 100);
    client.close();
    expect(loaded().length).toBeGreaterThan(0);
  });
});
