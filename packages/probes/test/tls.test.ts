import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canRunBpf, commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetEvent, SockEvent, TcpStateEvent, TlsEvent } from '../src/net/index.js';
import { TlsCorrelator } from '../src/net/index.js';
import {
  type Collector,
  collect,
  freePort,
  PYTHON,
  run,
  type Started,
  start,
  stopChild,
  waitFor,
} from './net-helpers.js';

/** A random marker sent as payload through every TLS session of this file; it must appear in no record. */
const MARKER = `stella-payload-${randomBytes(16).toString('hex')}`;

const isTls =
  (type: 'tls_io' | 'tls_handshake', pid: number) =>
  (e: NetEvent): e is TlsEvent =>
    e.type === type && e.header.pid === pid;

const PY_CLIENT = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(('127.0.0.1', int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname='localhost') as s:
        req = ('GET /' + sys.argv[3] + ' HTTP/1.0\\r\\n\\r\\n').encode()
        s.sendall(req)
        n = 0
        while True:
            d = s.recv(65536)
            if not d: break
            n += len(d)
        print(len(req), n, s.getsockname()[1], s.fileno())
`;

/**
 * Python asyncio TLS client: its ssl module drives OpenSSL through memory
 * BIOs (SSLObject), so no socket is written inside an SSL call and the
 * ClientHello leaves through the event loop's own send.
 */
const PY_ASYNC_CLIENT = `
import asyncio, ssl, sys
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    r, w = await asyncio.open_connection('127.0.0.1', int(sys.argv[2]), ssl=ctx, server_hostname='localhost')
    w.write(('GET /' + sys.argv[3] + ' HTTP/1.0\\r\\n\\r\\n').encode())
    n = len(await r.read())
    w.close()
    print(n)
asyncio.run(main())
`;

/** Python asyncio TLS server (memory BIOs): prints its port, answers one request, exits. */
const PY_ASYNC_SERVER = `
import asyncio, ssl, sys
async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    done = asyncio.Event()
    async def serve(r, w):
        await r.readuntil(b'\\r\\n\\r\\n')
        w.write(b'HTTP/1.0 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok')
        await w.drain()
        w.close()
        done.set()
    srv = await asyncio.start_server(serve, '127.0.0.1', 0, ssl=ctx)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    srv.close()
asyncio.run(main())
`;

/** TLS server: prints its port, serves one HTTP/1.0 request. */
const PY_SERVER = `
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s = socket.socket()
s.bind(('127.0.0.1', 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
c, a = s.accept()
t = ctx.wrap_socket(c, server_side=True)
req = t.recv(65536)
t.sendall(b'HTTP/1.0 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok')
t.close()
print(len(req), flush=True)
`;

const NODE_CLIENT = `
const https = require('node:https');
const fs = require('node:fs');
const [ca, port, marker] = process.argv.slice(1);
console.log('waiting');
process.stdin.once('data', () => {
  const req = https.request({ host: '127.0.0.1', port: Number(port), servername: 'localhost', ca: fs.readFileSync(ca), path: '/' + marker }, (res) => {
    let n = 0;
    res.on('data', (d) => { n += d.length; });
    res.on('end', () => { console.log('done', res.statusCode, n); process.exit(0); });
  });
  req.on('error', (e) => { console.log('error', e.message); process.exit(1); });
  req.end();
});
`;

const reasons = [
  commandUnavailableReason('openssl'),
  commandUnavailableReason('curl'),
  commandUnavailableReason(PYTHON),
];

/**
 * Whether this kernel has the sock_send_length/sock_recv_length tracepoints
 * that give a TLS session its socket tuple (read from tracefs, not from the
 * probes). Without them (6.1 and older, run in tools/kernel-vm) the records
 * carry no tuple and the TLS probes' status says so.
 */
const sockIo = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].some((t) =>
  existsSync(`${t}/events/sock/sock_send_length`),
);

describe.runIf(canRunBpf('TLS probes with real peers') && gate('TLS probes: tools', reasons.find(Boolean)))(
  'TLS probes (kernel, real peers on loopback)',
  () => {
    let dir: string;
    let cert: string;
    let c: Collector;
    const servers: Record<'4' | '6', { s: Started; port: number } | undefined> = {
      '4': undefined,
      '6': undefined,
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'stella-tls-'));
      cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      execFileSync(
        'openssl',
        // biome-ignore format: the command as one would type it
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
         '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', key, '-out', cert],
        { stdio: 'ignore' },
      );
      for (const [fam, host] of [
        ['4', '127.0.0.1'],
        ['6', '[::1]'],
      ] as const) {
        const port = await freePort(fam === '4' ? '127.0.0.1' : '::1');
        const s = await start(
          'openssl',
          ['s_server', '-accept', `${host}:${port}`, '-cert', cert, '-key', key, '-www'],
          /ACCEPT/,
        );
        servers[fam] = { s, port };
      }
      c = collect();
    });

    afterAll(async () => {
      stopChild(servers['4']?.s);
      stopChild(servers['6']?.s);
      await c?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('libssl.so.3 and the static OpenSSL of this Node binary are probed', () => {
      const libs = c.probes.libraries();
      expect(libs.find((l) => l.target.kind === 'libssl')?.symbols).toContain('SSL_read');
      const node = libs.find(
        (l) => l.target.kind === 'ssl-static' && l.target.mappedPath === process.execPath,
      );
      expect(node?.symbols).toEqual(expect.arrayContaining(['SSL_read', 'SSL_write', 'SSL_do_handshake']));
      // Role and server name come from the hello on the wire, the descriptor from the socket I/O:
      // SSL_ctrl (15 calls per session in `openssl s_server -www`) and the set-up calls cost no trap.
      for (const l of libs) {
        for (const f of ['SSL_ctrl', 'SSL_set_connect_state', 'SSL_set_accept_state']) {
          expect(l.symbols).not.toContain(f);
        }
        if (sockIo) expect(l.symbols).not.toContain('SSL_set_fd');
      }
      expect(c.probes.status.find((s) => s.name === 'tls_handshake')).toMatchObject({
        attached: true,
        attachType: 'uprobe',
      });
    });

    for (const fam of ['4', '6'] as const) {
      it(`curl over IPv${fam} with SNI: tcp_state + net_connect + tls_handshake(SNI) + tls_io with pid, addresses, byte counts`, async () => {
        const srv = servers[fam];
        if (!srv) throw new Error('server not started');
        const addr = fam === '4' ? '127.0.0.1' : '::1';
        const resolveTo = fam === '4' ? addr : `[${addr}]`;
        const curl = await run('curl', [
          '-sS',
          '--cacert',
          cert,
          '--resolve',
          `localhost:${srv.port}:${resolveTo}`,
          `https://localhost:${srv.port}/${MARKER}`,
        ]);
        expect(curl.code, curl.stderr).toBe(0);
        const pid = curl.pid;
        const family = fam === '4' ? 'inet' : 'inet6';

        const [conn] = await waitFor(
          c,
          'curl net_connect',
          (e): e is SockEvent =>
            e.type === 'net_connect' && e.header.pid === pid && e.address?.family === family,
        );
        expect(conn?.address).toMatchObject({ address: addr, port: srv.port });
        const lport = conn?.tuple?.local.port;
        expect(lport).toBeGreaterThan(0);
        const [syn] = await waitFor(
          c,
          'curl tcp_state connect',
          (e): e is TcpStateEvent => e.type === 'tcp_state' && e.event === 'connect' && e.header.pid === pid,
        );
        expect(syn?.tuple).toMatchObject({ family, remote: { address: addr, port: srv.port } });

        const [hs] = await waitFor(c, 'curl tls_handshake', isTls('tls_handshake', pid));
        expect(hs).toMatchObject({ result: 'ok', role: 'client' });
        expect(hs?.sni?.toString()).toBe('localhost');
        if (sockIo) {
          expect(hs?.tuple).toMatchObject({
            family,
            local: { port: lport },
            remote: { address: addr, port: srv.port },
          });
        } else {
          expect(hs?.tuple).toBeUndefined();
          expect(c.probes.status.find((s) => s.name === 'tls_handshake')?.reason).toMatch(
            /carry no socket tuple/,
          );
        }

        await waitFor(
          c,
          'curl reads',
          (e): e is TlsEvent => isTls('tls_io', pid)(e) && e.op.startsWith('SSL_read') && e.bytes > 0n,
        );
        const io = c.events.filter(isTls('tls_io', pid));
        const writes = io.filter((e) => e.op.startsWith('SSL_write'));
        const request = `GET /${MARKER} HTTP/1.1\r\n`.length;
        expect(writes.length).toBeGreaterThan(0);
        for (const w of writes) expect(w.bytes).toBe(w.requested);
        expect(Number(writes[0]?.bytes)).toBeGreaterThan(request);
        const readBytes = io
          .filter((e) => e.op.startsWith('SSL_read'))
          .reduce((n, e) => n + Number(e.bytes), 0);
        expect(readBytes).toBeGreaterThanOrEqual(curl.stdout.length);
        for (const e of io) expect(e.tuple?.remote.port).toBe(sockIo ? srv.port : undefined);
      });
    }

    it('a Python ssl client (dynamic libssl): handshake with SNI, exact write size, tuple from the socket', async () => {
      const srv = servers['4'];
      if (!srv) throw new Error('server not started');
      const py = await run(PYTHON, ['-c', PY_CLIENT, cert, String(srv.port), MARKER]);
      expect(py.code, py.stderr).toBe(0);
      const [reqLen, got, lport, fd] = py.stdout.trim().split(' ').map(Number);
      const [hs] = await waitFor(c, 'python handshake', isTls('tls_handshake', py.pid));
      expect(hs?.sni?.toString()).toBe('localhost');
      expect(hs?.result).toBe('ok');
      expect(hs?.tuple).toMatchObject({ local: { port: lport }, remote: { port: srv.port } });
      // The descriptor, from the socket I/O inside the handshake (no SSL_set_fd probe on this kernel).
      if (sockIo) expect(hs?.fd).toBe(fd);
      const io = await waitFor(
        c,
        'python write',
        (e): e is TlsEvent => isTls('tls_io', py.pid)(e) && e.op.startsWith('SSL_write'),
      );
      expect(Number(io[0]?.bytes)).toBe(reqLen);
      const reads = c.events.filter(isTls('tls_io', py.pid)).filter((e) => e.op.startsWith('SSL_read'));
      expect(reads.reduce((n, e) => n + Number(e.bytes), 0)).toBe(got);
    });

    it('a Python asyncio client (memory BIOs over libssl): SNI from the ClientHello it sends, handshake ok', async () => {
      const srv = servers['4'];
      if (!srv) throw new Error('server not started');
      const py = await run(PYTHON, ['-c', PY_ASYNC_CLIENT, cert, String(srv.port), MARKER]);
      expect(py.code, py.stderr).toBe(0);
      expect(Number(py.stdout.trim())).toBeGreaterThan(0);
      const [hs] = await waitFor(c, 'python asyncio handshake', isTls('tls_handshake', py.pid));
      expect(hs).toMatchObject({ role: 'client' });
      expect(['ok', 'implicit']).toContain(hs?.result);
      expect(hs?.sni?.toString()).toBe('localhost');
    });

    it('a Python asyncio server (memory BIOs): server role from the ServerHello it sends, no SNI', async () => {
      const srv = await start(PYTHON, ['-u', '-c', PY_ASYNC_SERVER, cert, join(dir, 'key.pem')], /^\d+\n/);
      const port = Number(srv.out.trim());
      const curl = await run('curl', [
        '-sS',
        '--cacert',
        cert,
        '--resolve',
        `localhost:${port}:127.0.0.1`,
        `https://localhost:${port}/${MARKER}`,
      ]);
      expect(curl.code, curl.stderr).toBe(0);
      expect(curl.stdout).toBe('ok');
      const [hs] = await waitFor(c, 'asyncio server handshake', isTls('tls_handshake', srv.pid));
      expect(hs).toMatchObject({ role: 'server' });
      expect(['ok', 'implicit']).toContain(hs?.result);
      expect(hs?.sni).toBeUndefined();
      stopChild(srv);
    });

    it('a Python ssl server accepting curl: net_accept, server-role handshake, request bytes read', async () => {
      const srv = await start(PYTHON, ['-u', '-c', PY_SERVER, cert, join(dir, 'key.pem')], /^\d+\n/);
      const port = Number(srv.out.trim());
      let out = srv.out;
      srv.child.stdout?.on('data', (d) => {
        out += d;
      });
      // 'close', not 'exit': the server's last line may still be in the pipe at exit.
      const closed = new Promise((r) => srv.child.on('close', r));
      const curl = await run('curl', [
        '-sS',
        '--cacert',
        cert,
        '--resolve',
        `localhost:${port}:127.0.0.1`,
        `https://localhost:${port}/${MARKER}`,
      ]);
      expect(curl.code, curl.stderr).toBe(0);
      expect(curl.stdout).toBe('ok');
      await closed;
      const reqLen = Number(out.trim().split('\n')[1]);
      const [acc] = await waitFor(
        c,
        'python net_accept',
        (e): e is SockEvent => e.type === 'net_accept' && e.header.pid === srv.pid,
      );
      const [hs] = await waitFor(c, 'server handshake', isTls('tls_handshake', srv.pid));
      expect(hs).toMatchObject({ role: 'server', result: 'ok', op: 'SSL_do_handshake' });
      expect(hs?.sni).toBeUndefined();
      expect(hs?.tuple).toMatchObject({ local: { port }, remote: { port: acc?.tuple?.remote.port } });
      const reads = await waitFor(
        c,
        'server read',
        (e): e is TlsEvent => isTls('tls_io', srv.pid)(e) && e.op.startsWith('SSL_read') && e.bytes > 0n,
      );
      expect(Number(reads[0]?.bytes)).toBe(reqLen);
      const curlWrites = c.events
        .filter(isTls('tls_io', curl.pid))
        .filter((e) => e.op.startsWith('SSL_write'));
      expect(curlWrites.reduce((n, e) => n + Number(e.bytes), 0)).toBe(reqLen);
    });

    for (const node of ['/usr/bin/node', process.execPath]) {
      it(`a Node https client with static OpenSSL (${node}): SNI from the ClientHello it writes through memory BIOs, handshake, writes`, async (ctx) => {
        if (!existsSync(node) && !gate(`TLS probes: ${node}`, `${node} not installed`)) return ctx.skip();
        const srv = servers['4'];
        if (!srv) throw new Error('server not started');
        const child = spawn(node, ['-e', NODE_CLIENT, cert, String(srv.port), MARKER], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        while (!out.includes('waiting')) await new Promise((r) => setTimeout(r, 10));
        const pid = child.pid ?? 0;
        c.probes.rescan([pid]); // a binary not mapped when the probes started is found by the scan
        const lib = c.probes
          .libraries()
          .find(
            (l) =>
              l.target.kind === 'ssl-static' &&
              l.target.pid !== 0 &&
              (l.target.mappedPath === node || l.target.path === node),
          );
        expect(lib?.symbols).toContain('SSL_write');
        const exited = new Promise((r) => child.on('close', r));
        child.stdin.end('go');
        await exited;
        expect(out).toMatch(/done 200 \d+/);
        const [hs] = await waitFor(c, 'node handshake', isTls('tls_handshake', pid));
        expect(hs?.sni?.toString()).toBe('localhost');
        expect(['ok', 'implicit']).toContain(hs?.result);
        const writes = await waitFor(
          c,
          'node write',
          (e): e is TlsEvent => isTls('tls_io', pid)(e) && e.op.startsWith('SSL_write') && e.bytes > 0n,
        );
        expect(writes[0]?.bytes).toBe(writes[0]?.requested);
      });
    }

    it('handshake-only collection probes no SSL_read/SSL_write and still reports SNI, peer and result', async () => {
      const srv = servers['4'];
      if (!srv) throw new Error('server not started');
      const h = collect({ probes: ['tls_handshake'] });
      try {
        const lib = h.probes.libraries().find((l) => l.target.kind === 'libssl');
        expect(lib?.symbols).toContain('SSL_do_handshake');
        expect(lib?.symbols).not.toContain('SSL_read');
        expect(lib?.symbols).not.toContain('SSL_write');
        const curl = await run('curl', [
          '-sS',
          '-o',
          '/dev/null',
          '--cacert',
          cert,
          '--resolve',
          `localhost:${srv.port}:127.0.0.1`,
          `https://localhost:${srv.port}/${MARKER}`,
        ]);
        expect(curl.code, curl.stderr).toBe(0);
        const [hs] = await waitFor(h, 'handshake-only record', isTls('tls_handshake', curl.pid));
        expect(hs).toMatchObject({
          result: 'ok',
          role: 'client',
          ...(sockIo ? { tuple: { remote: { port: srv.port } } } : {}),
        });
        expect(hs?.sni?.toString()).toBe('localhost');
        expect(h.events.filter((e) => e.type === 'tls_io')).toEqual([]);
      } finally {
        await h.stop();
      }
    });

    it('no payload byte reaches any record: the marker is in no raw ring record and no JSON record', async () => {
      // The marker really went through the probed calls (so this test can fail).
      const wrote = c.events.filter(
        (e): e is TlsEvent =>
          e.type === 'tls_io' && e.op.startsWith('SSL_write') && e.bytes > BigInt(MARKER.length),
      );
      expect(new Set(wrote.map((e) => e.header.pid)).size).toBeGreaterThanOrEqual(3);
      const marker = Buffer.from(MARKER);
      const half = Buffer.from(MARKER.slice(15, 31)); // any 16-byte slice of it, too
      expect(c.raw.length).toBeGreaterThan(0);
      for (const r of c.raw) {
        expect(r.includes(marker)).toBe(false);
        expect(r.includes(half)).toBe(false);
      }
      // Nor in any decoded event, whatever field it could hide in (records are built from these).
      const corr = new TlsCorrelator();
      for (const e of c.events) {
        const session = corr.observe(e);
        const text = JSON.stringify({ e, session }, (_k, v) =>
          typeof v === 'bigint'
            ? v.toString()
            : v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)
              ? Buffer.from(v.data).toString('latin1')
              : v,
        );
        expect(text.includes(MARKER.slice(15, 31))).toBe(false);
      }
    });
  },
);
