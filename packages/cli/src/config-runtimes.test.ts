import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONTAINERD_SOCKET,
  ContainerdClient,
  CRIO_SOCKET,
  CrioClient,
  DOCKER_SOCKET,
  DockerClient,
  PODMAN_SOCKET,
  PodmanClient,
} from '@stellaops/enrich';
import { EVIDENCE_JSON_SCHEMA } from '@stellaops/ndjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envName, loadConfig, RUNTIME_SOCKETS } from './config.js';
import { runtimeEndpoints } from './config-runtimes.js';
import { CliError } from './errors.js';

const dir = mkdtempSync(join(tmpdir(), 'stella-runtimes-'));
const socket = join(dir, 'docker.sock');
let server: Server;

beforeAll(async () => {
  // A real listening unix socket: what a runtime's API socket is on disk.
  server = createServer();
  await new Promise<void>((r) => server.listen(socket, r));
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function yaml(name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, `signals:\n${lines.join('\n')}\n`);
  return p;
}

function failure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliError) return e;
    throw e;
  }
  throw new Error('expected a CliError');
}

describe('runtime socket keys', () => {
  it("default to the tracker's own sockets, and leave them to the tracker (used when they exist)", () => {
    expect(Object.fromEntries(RUNTIME_SOCKETS.map((r) => [r.runtime, r.socket]))).toEqual({
      containerd: CONTAINERD_SOCKET,
      docker: DOCKER_SOCKET,
      podman: PODMAN_SOCKET,
      'cri-o': CRIO_SOCKET,
    });
    const cfg = loadConfig({});
    expect(cfg.get('runtimes.cri-o.socket')).toBe(CRIO_SOCKET);
    expect(runtimeEndpoints(cfg)).toEqual({});
  });

  it('pass a socket set in the file, and "off" disables a runtime', () => {
    const f = yaml('set.yaml', [
      '  runtimes:',
      '    docker:',
      `      socket: ${socket}`,
      '    containerd:',
      '      socket: "off"',
    ]);
    expect(runtimeEndpoints(loadConfig({ file: f }))).toEqual({
      docker: { socket },
      containerd: false,
    });
  });

  it('are set from the environment, cri-o as STELLA_RUNTIMES_CRI_O_SOCKET', () => {
    expect(envName('runtimes.cri-o.socket')).toBe('STELLA_RUNTIMES_CRI_O_SOCKET');
    const cfg = loadConfig({
      env: { STELLA_RUNTIMES_CRI_O_SOCKET: 'off', STELLA_RUNTIMES_PODMAN_SOCKET: socket },
    });
    expect(runtimeEndpoints(cfg)).toEqual({ crio: false, podman: { socket } });
  });

  it('a socket path that does not exist names the file, line, key and the way out', () => {
    const missing = join(dir, 'absent.sock');
    const f = yaml('missing.yaml', ['  runtimes:', '    docker:', `      socket: ${missing}`]);
    const e = failure(() => runtimeEndpoints(loadConfig({ file: f })));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe(`${f}:4 (signals.runtimes.docker.socket): ${missing} does not exist`);
    expect(e.hint).toContain('set signals.runtimes.docker.socket: off');
  });

  it('a path that is not a socket, from a flag, is named with the flag', () => {
    const plain = join(dir, 'plain');
    writeFileSync(plain, '');
    const cfg = loadConfig({
      flags: [{ key: 'runtimes.podman.socket', value: plain, flag: '--set runtimes.podman.socket' }],
    });
    const e = failure(() => runtimeEndpoints(cfg));
    expect(e.message).toBe(`--set runtimes.podman.socket: ${plain} is not a socket (it is a file)`);
  });

  it('a relative path is refused when the file is read, with its line', () => {
    const f = yaml('relative.yaml', ['  runtimes:', '    cri-o:', '      socket: run/crio.sock']);
    const e = failure(() => loadConfig({ file: f }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toBe(
      `${f}:4:15: signals.runtimes.cri-o.socket must be an absolute socket path or "off", got "run/crio.sock"`,
    );
  });
});

/** Every `description` string of a JSON schema. */
function descriptions(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(descriptions);
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) =>
    k === 'description' && typeof v === 'string' ? [v] : descriptions(v),
  );
}

describe('runtime names', () => {
  it('are spelled alike by the config keys, the records the enrich clients write, and the evidence schema', () => {
    const doc = descriptions(EVIDENCE_JSON_SCHEMA).find((d) =>
      d.startsWith('Runtime that owns the container'),
    );
    const documented = [...(doc ?? '').matchAll(/"([a-z-]+)"/g)].map((m) => m[1]).sort();
    expect(documented).toContain('cri-o');
    expect(RUNTIME_SOCKETS.map((r) => r.runtime).sort()).toEqual(documented);
    const written = [
      new ContainerdClient('/nowhere'),
      new DockerClient('/nowhere'),
      new PodmanClient('/nowhere'),
      new CrioClient('/nowhere'),
    ].map((c) => c.runtime);
    expect(written.sort()).toEqual(documented);
  });
});
