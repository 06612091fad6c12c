/**
 * "Never the payload", checked where it can break: user stacks of network
 * and TLS records. A frame-pointer walk through code built without frame
 * pointers reads whatever words lie on the stack, and next to SSL_read and
 * SSL_write those are often the plaintext. This test drives several real
 * TLS stacks in both directions with random markers in requests and
 * responses, then searches every string and every number of every record
 * for any 6 bytes of the plaintext.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readElf } from '@stellaops/enrich';
import { type EvidenceRecord, validateRecord } from '@stellaops/ndjson';
import { canRunBpf, commandUnavailableReason, gate, scaled } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Collection, collect } from '../src/collect.js';

/** Debian's python: its _ssl links the system libssl.so.3 dynamically. */
const PYTHON = '/usr/bin/python3';
const HOST = 'localhost';
const WINDOW = 6;

/** Markers the plaintext carries; random letters never occur in hex or decimal strings, or by chance in names. */
const markers: string[] = [];
const marker = () => {
  const m = [...randomBytes(24)].map((b) => String.fromCharCode(65 + (b % 26))).join('');
  markers.push(m);
  return m;
};

/**
 * The plaintext of every session, as 6-byte windows. A number (or a hex or
 * decimal string read as a number) is searched for every window: that is
 * how a stack word would carry plaintext. A string's bytes are searched for
 * the windows that hold at least 3 bytes of a random marker: fixed protocol
 * text ("HTTP/1", "connec", digits of a timestamp on s_server's status page)
 * is also, legitimately, in names and values a record has anyway.
 */
class Plaintext {
  /** Every window. */
  readonly windows = new Set<string>();
  /** Windows with at least 3 bytes of a marker. */
  readonly secret = new Set<string>();
  readonly texts: Buffer[] = [];

  add(text: string | Buffer): void {
    const b = typeof text === 'string' ? Buffer.from(text) : text;
    this.texts.push(b);
    const inMarker = new Uint8Array(b.length);
    for (const m of markers) {
      for (let at = b.indexOf(m); at >= 0; at = b.indexOf(m, at + 1)) inMarker.fill(1, at, at + m.length);
    }
    for (let i = 0; i + WINDOW <= b.length; i++) {
      const w = b.subarray(i, i + WINDOW).toString('latin1');
      this.windows.add(w);
      let n = 0;
      for (let j = i; j < i + WINDOW; j++) n += inMarker[j]!;
      if (n >= 3) this.secret.add(w);
    }
  }

  /** The first window of `bytes` in `set`, if any. */
  find(bytes: Buffer, set: ReadonlySet<string>): string | undefined {
    for (let i = 0; i + WINDOW <= bytes.length; i++) {
      const w = bytes.subarray(i, i + WINDOW).toString('latin1');
      if (set.has(w)) return w;
    }
    return undefined;
  }
}

function word(n: bigint): Buffer[] {
  const v = BigInt.asUintN(64, n);
  const le = Buffer.alloc(8);
  le.writeBigUInt64LE(v);
  const be = Buffer.alloc(8);
  be.writeBigUInt64BE(v);
  return [le, be];
}

/** Every leak of plaintext in one record: JSON path and what it decodes to. */
function leaks(rec: EvidenceRecord, pt: Plaintext): string[] {
  const out: string[] = [];
  const check = (path: string, bytes: Buffer, how: string) => {
    const w = pt.find(bytes, how === 'string bytes' || how === 'byte string' ? pt.secret : pt.windows);
    if (w !== undefined) out.push(`${rec.type} seq ${rec.seq} ${path} (${how}) holds ${JSON.stringify(w)}`);
  };
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      for (const b of word(BigInt(v))) check(path, b, 'number');
    } else if (typeof v === 'string') {
      check(path, Buffer.from(v), 'string bytes');
      if (/^-?\d+$/.test(v)) for (const b of word(BigInt(v))) check(path, b, 'decimal');
      if (/^0x[0-9a-f]+$/.test(v)) {
        const n = BigInt(v);
        // A word is 8 bytes; a longer hex value is checked as raw bytes too.
        for (const b of word(n)) check(path, b, 'hex');
        const digits = v.slice(2);
        check(path, Buffer.from(digits.length % 2 ? `0${digits}` : digits, 'hex'), 'hex bytes');
      }
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => {
        walk(x, `${path}[${i}]`);
      });
    } else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.b64 === 'string' && Object.keys(o).length === 1) {
        check(path, Buffer.from(o.b64, 'base64'), 'byte string');
        return;
      }
      for (const [k, x] of Object.entries(o)) walk(x, `${path}.${k}`);
    }
  };
  walk(rec, '$');
  return out;
}

interface Proc {
  child: ChildProcess;
  pid: number;
  out: string;
  closed: Promise<unknown>;
}

/** Start a child; resolves once its output matches `ready`. */
function start(cmd: string, args: string[], ready: RegExp, cwd?: string): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    const p: Proc = { child, pid: child.pid ?? 0, out: '', closed: new Promise((r) => child.on('close', r)) };
    const timer = setTimeout(() => reject(new Error(`${cmd} did not get ready: ${p.out}`)), scaled(15_000));
    const check = (d: Buffer) => {
      p.out += d.toString('latin1');
      if (ready.test(p.out)) {
        clearTimeout(timer);
        resolve(p);
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!ready.test(p.out)) reject(new Error(`${cmd} exited (${code}) before ready: ${p.out}`));
    });
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** TLS server: serves HTTP/1.1 requests one connection at a time, prints each request in hex. */
const PY_SERVER = `
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
marker = sys.argv[3]
s = socket.socket()
s.bind(('127.0.0.1', 0)); s.listen(8)
print('port', s.getsockname()[1], flush=True)
while True:
    c, a = s.accept()
    t = ctx.wrap_socket(c, server_side=True)
    req = b''
    while b'\\r\\n\\r\\n' not in req:
        d = t.recv(65536)
        if not d: break
        req += d
    body = ('python body ' + marker + '\\n').encode()
    t.sendall(b'HTTP/1.1 200 OK\\r\\nX-Stella-Resp: ' + marker.encode() + b'\\r\\nContent-Length: ' + str(len(body)).encode() + b'\\r\\n\\r\\n' + body)
    t.close()
    print('req', req.hex(), flush=True)
`;

/** TLS client: one request, prints the response in hex, then waits for stdin to close. */
const PY_CLIENT = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(('127.0.0.1', int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname='${HOST}') as s:
        s.sendall(('GET /' + sys.argv[3] + ' HTTP/1.1\\r\\nHost: ${HOST}\\r\\nX-Stella-Req: ' + sys.argv[3] + '\\r\\n\\r\\n').encode())
        resp = b''
        while True:
            d = s.recv(65536)
            if not d: break
            resp += d
print('resp', resp.hex(), flush=True)
sys.stdin.read()
`;

/** Node https server: answers every request with the marker in a header and the body; prints each request. */
const NODE_SERVER = `
const https = require('node:https');
const fs = require('node:fs');
const [cert, key, marker] = process.argv.slice(1);
const srv = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  let head = req.method + ' ' + req.url + ' HTTP/' + req.httpVersion + '\\r\\n';
  for (let i = 0; i < req.rawHeaders.length; i += 2) head += req.rawHeaders[i] + ': ' + req.rawHeaders[i + 1] + '\\r\\n';
  console.log('req ' + Buffer.from(head + '\\r\\n').toString('hex'));
  res.setHeader('X-Stella-Resp', marker);
  res.end('node body ' + marker + '\\n');
});
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
`;

/** Node https client: requests until stdin closes, prints each response (status line, headers, body). */
const NODE_CLIENT = `
const https = require('node:https');
const fs = require('node:fs');
const [ca, port, marker] = process.argv.slice(1);
let stop = false;
process.stdin.on('data', () => {}).on('end', () => { stop = true; });
const once = () => new Promise((resolve) => {
  const req = https.request({ host: '127.0.0.1', port: Number(port), servername: '${HOST}', ca: fs.readFileSync(ca),
    path: '/' + marker, headers: { 'X-Stella-Req': marker }, agent: false }, (res) => {
    let text = 'HTTP/' + res.httpVersion + ' ' + res.statusCode + ' ' + res.statusMessage + '\\r\\n';
    for (let i = 0; i < res.rawHeaders.length; i += 2) text += res.rawHeaders[i] + ': ' + res.rawHeaders[i + 1] + '\\r\\n';
    text += '\\r\\n';
    res.setEncoding('latin1');
    res.on('data', (d) => { text += d; });
    res.on('end', () => { console.log('resp ' + Buffer.from(text, 'latin1').toString('hex')); resolve(); });
  });
  req.on('error', (e) => { console.log('error ' + e.message); resolve(); });
  req.end();
});
(async () => {
  console.log('started');
  while (!stop) { await once(); await new Promise((r) => setTimeout(r, 50)); }
  process.exit(0);
})();
`;

const reasons = [
  commandUnavailableReason('openssl'),
  commandUnavailableReason('curl'),
  existsSync(PYTHON) ? undefined : `${PYTHON} is not installed`,
];

const NODES = [process.execPath, '/usr/bin/node'].filter(
  (n, i, all) => all.indexOf(n) === i && (existsSync(n) || !gate(`TLS privacy: ${n}`, `${n} not installed`)),
);

describe.runIf(canRunBpf('TLS privacy of collect()') && gate('TLS privacy: tools', reasons.find(Boolean)))(
  'no plaintext in any record, user stacks on for every family (kernel, real TLS peers)',
  // Real peers, a binary probed after its exec, and a scan of every record: on a
  // loaded 2-core VM this takes longer than the default 30 s.
  { timeout: 120_000 },
  () => {
    let dir: string;
    let cert: string;
    let key: string;
    let c: Collection;
    const records: EvidenceRecord[] = [];
    let consumer: Promise<void>;
    const pt = new Plaintext();
    const procs: Proc[] = [];
    /** pid -> workload name and the record types it must have produced, for both sides of every workload. */
    const sides = new Map<number, { what: string; types: readonly string[] }>();
    const side = async (pid: number, what: string, types: readonly string[] = ['tls_io']) => {
      sides.set(pid, { what, types });
      await seen(pid, what, types);
    };

    /** Records of `pid` of the given types. */
    const of = (pid: number, types: readonly string[]) =>
      records.filter((r) => r.type !== 'collector_status' && r.pid === pid && types.includes(r.type));
    /** Wait until the stream has a record of `pid` of one of `types` (the probes saw its traffic). */
    const seen = async (pid: number, what: string, types: readonly string[] = ['tls_io']) => {
      const end = Date.now() + 60_000;
      while (of(pid, types).length === 0) {
        if (Date.now() > end) {
          const got = records
            .filter((r) => r.type !== 'collector_status' && r.pid === pid)
            .map((r) => r.type);
          throw new Error(
            `no ${types.join('/')} record of ${what} (pid ${pid}); its records: ${got.join(', ')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'stella-tls-privacy-'));
      cert = join(dir, 'cert.pem');
      key = join(dir, 'key.pem');
      execFileSync(
        'openssl',
        // biome-ignore format: the command as one would type it
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${HOST}`,
         '-addext', `subjectAltName=DNS:${HOST}`, '-days', '1', '-keyout', key, '-out', cert],
        { stdio: 'ignore' },
      );
      c = collect({
        probes: { file_open: false, exec: false, tcp_state: true, libc_net: true, tls: true },
        // Every stack family on, every call recorded: the most exposed configuration.
        userStacks: true,
        dedup: { enabled: false },
        enrich: false,
        statusIntervalMs: 60_000,
      });
      await c.ready;
      consumer = (async () => {
        for await (const r of c) records.push(r);
      })();
    });

    afterAll(async () => {
      for (const p of procs)
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await c?.close();
      await consumer;
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** curl against `openssl s_server` in `mode`, with the request marker in the path and a header. */
    async function curlAgainstSServer(mode: '-www' | '-WWW'): Promise<void> {
      const req = marker();
      const resp = marker();
      const port = await freePort();
      // -WWW serves files from its working directory: the response body is this file.
      writeFileSync(join(dir, `${req}.txt`), `s_server file body ${resp}\n${resp}\n`);
      const srv = await start(
        'openssl',
        ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', cert, '-key', key, mode],
        /ACCEPT/,
        dir,
      );
      procs.push(srv);
      const url = `https://${HOST}:${port}/${req}.txt`;
      const curl = await start(
        'curl',
        // biome-ignore format: the command as one would type it
        ['-sS', '-D', '-', '--cacert', cert, '--resolve', `${HOST}:${port}:127.0.0.1`, '-H', `X-Stella-Req: ${req}`,
         '-H', `X-Stella-Resp-Expected: ${resp}`, url],
        /HTTP\//,
      );
      procs.push(curl);
      await curl.closed;
      expect(curl.child.exitCode, curl.out).toBe(0);
      if (mode === '-WWW') expect(curl.out).toContain(resp);
      // What curl sent (its fixed headers as curl writes them) and everything it received.
      const version = execFileSync('curl', ['--version']).toString().split(' ')[1];
      pt.add(
        `GET /${req}.txt HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUser-Agent: curl/${version}\r\nAccept: */*\r\n` +
          `X-Stella-Req: ${req}\r\nX-Stella-Resp-Expected: ${resp}\r\n\r\n`,
      );
      pt.add(Buffer.from(curl.out, 'latin1'));
      await side(curl.pid, `curl against s_server ${mode}`);
      // s_server reads and writes through an SSL BIO, which calls OpenSSL's
      // internal functions, not the probed SSL_read/SSL_write: its traced
      // side is the accept (with its stack).
      await side(srv.pid, `s_server ${mode}`, ['net_accept']);
    }

    it('curl against openssl s_server -www (status page response)', async () => {
      await curlAgainstSServer('-www');
    });

    it('curl against openssl s_server -WWW (file response)', async () => {
      await curlAgainstSServer('-WWW');
    });

    it('a Python ssl client against a Python ssl server (system libssl, both sides)', async () => {
      const req = marker();
      const resp = marker();
      const srv = await start(PYTHON, ['-u', '-c', PY_SERVER, cert, key, resp], /port \d+\n/);
      procs.push(srv);
      const port = Number(/port (\d+)/.exec(srv.out)?.[1]);
      const cli = await start(PYTHON, ['-u', '-c', PY_CLIENT, cert, String(port), req], /resp [0-9a-f]+\n/);
      procs.push(cli);
      pt.add(Buffer.from(/resp ([0-9a-f]+)/.exec(cli.out)?.[1] ?? '', 'hex'));
      while (!/req [0-9a-f]+\n/.test(srv.out)) await new Promise((r) => setTimeout(r, 10));
      pt.add(Buffer.from(/req ([0-9a-f]+)/.exec(srv.out)?.[1] ?? '', 'hex'));
      expect(pt.texts.at(-1)?.toString()).toContain(req);
      await side(cli.pid, 'the python client');
      await side(srv.pid, 'the python server');
      cli.child.stdin?.end();
      await cli.closed;
    });

    for (const node of NODES) {
      it(`a Node https client against a Node https server (${node}, static OpenSSL, both sides)`, async () => {
        const req = marker();
        const resp = marker();
        const srv = await start(node, ['-e', NODE_SERVER, cert, key, resp], /port \d+\n/);
        procs.push(srv);
        const port = Number(/port (\d+)/.exec(srv.out)?.[1]);
        // The client repeats its request until both sides are seen: the binary is
        // probed by the scan its exec triggers, which may come after the first call.
        const cli = await start(node, ['-e', NODE_CLIENT, cert, String(port), req], /resp [0-9a-f]+\n/);
        procs.push(cli);
        await side(cli.pid, `the node client ${node}`);
        await side(srv.pid, `the node server ${node}`);
        cli.child.stdin?.end();
        await cli.closed;
        for (const m of cli.out.matchAll(/resp ([0-9a-f]+)/g)) pt.add(Buffer.from(m[1]!, 'hex'));
        for (const m of srv.out.matchAll(/req ([0-9a-f]+)/g)) pt.add(Buffer.from(m[1]!, 'hex'));
        expect(cli.out).toContain(Buffer.from(resp).toString('hex'));
        expect(srv.out).toContain(Buffer.from(req).toString('hex'));
      });
    }

    it('no record holds 6 bytes of any request or response, as a string, a number or a hex word in either byte order', async () => {
      for (const p of procs)
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await c.close();
      await consumer;
      // The scan can fail: plaintext went through probed calls on both sides of every workload.
      expect(pt.windows.size).toBeGreaterThan(1000);
      for (const [pid, s] of sides) expect(of(pid, s.types).length, s.what).toBeGreaterThan(0);
      for (const r of records) expect(validateRecord(r), JSON.stringify(r)).toEqual([]);
      const found = records.flatMap((r) => leaks(r, pt));
      expect(found.slice(0, 20), `${found.length} leaks`).toEqual([]);
    });

    it('every stack frame is a file offset inside an executable segment of the module it names', () => {
      // The workloads' own records: other processes on the host (other tests)
      // may have deleted their binaries by now, so their modules cannot be read back.
      const stacks = records.flatMap((r) =>
        'pid' in r &&
        sides.has(r.pid) &&
        (r.type === 'tls_io' ||
          r.type === 'tls_handshake' ||
          r.type === 'net_connect' ||
          r.type === 'net_accept') &&
        r.stack
          ? [r.stack]
          : [],
      );
      // Stacks were captured and written, TLS ones too (so the checks below can fail).
      expect(stacks.length).toBeGreaterThan(0);
      expect(records.some((r) => r.type === 'tls_io' && r.stack !== undefined)).toBe(true);
      const elves = new Map<string, ReturnType<typeof readElf> | undefined>();
      for (const frame of stacks.flat()) {
        const module = typeof frame.module === 'string' ? frame.module : '';
        expect(module, JSON.stringify(frame)).toMatch(/^\//);
        if (!elves.has(module)) {
          try {
            elves.set(module, readElf(module));
          } catch {
            elves.set(module, undefined);
          }
        }
        const elf = elves.get(module);
        expect(elf, `${module} is a readable ELF file on this host`).toBeDefined();
        const off = Number(BigInt(frame.offset));
        const seg = elf?.segments.find(
          (s) => (s.flags & 1) !== 0 && off >= s.offset && off < s.offset + s.filesz,
        );
        expect(seg, `${JSON.stringify(frame)} is inside an executable PT_LOAD of ${module}`).toBeDefined();
      }
    });
  },
);

describe.runIf(
  canRunBpf('user stack defaults of collect()') && gate('TLS privacy: tools', reasons.find(Boolean)),
)(
  'user stacks by default: connect/accept records carry verified frames, TLS records none (kernel)',
  { timeout: 120_000 },
  () => {
    it('a Python TLS client and server: net_connect has a stack, no tls_io or tls_handshake has one', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'stella-tls-default-'));
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      execFileSync(
        'openssl',
        // biome-ignore format: the command as one would type it
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${HOST}`,
         '-addext', `subjectAltName=DNS:${HOST}`, '-days', '1', '-keyout', key, '-out', cert],
        { stdio: 'ignore' },
      );
      const c = collect({
        probes: { file_open: false, exec: false, tcp_state: false, libc_net: true, tls: true },
        dedup: { enabled: false },
        enrich: false,
      });
      await c.ready;
      const records: EvidenceRecord[] = [];
      const consumer = (async () => {
        for await (const r of c) records.push(r);
      })();
      const procs: Proc[] = [];
      try {
        const srv = await start(PYTHON, ['-u', '-c', PY_SERVER, cert, key, marker()], /port \d+\n/);
        procs.push(srv);
        const port = Number(/port (\d+)/.exec(srv.out)?.[1]);
        const cli = await start(
          PYTHON,
          ['-u', '-c', PY_CLIENT, cert, String(port), marker()],
          /resp [0-9a-f]+\n/,
        );
        procs.push(cli);
        const mine = (r: EvidenceRecord) => r.type !== 'collector_status' && r.pid === cli.pid;
        const end = Date.now() + 60_000;
        // The client waits on stdin, so its maps are there when its records are made.
        while (
          !records.some((r) => mine(r) && r.type === 'tls_io') ||
          !records.some((r) => mine(r) && r.type === 'net_connect')
        ) {
          if (Date.now() > end)
            throw new Error(
              `no tls_io/net_connect of the client: ${records.filter(mine).map((r) => r.type)}`,
            );
          await new Promise((r) => setTimeout(r, 25));
        }
        cli.child.stdin?.end();
        await cli.closed;
      } finally {
        for (const p of procs)
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        await c.close();
        await consumer;
        rmSync(dir, { recursive: true, force: true });
      }
      const tls = records.filter((r) => r.type === 'tls_io' || r.type === 'tls_handshake');
      expect(tls.length).toBeGreaterThan(0);
      expect(tls.filter((r) => 'stack' in r && r.stack !== undefined)).toEqual([]);
      const connect = records.find(
        (r) =>
          r.type === 'net_connect' && procs[1] !== undefined && r.pid === procs[1].pid && r.family === 'inet',
      );
      expect(connect?.type === 'net_connect' ? connect.stack?.[0]?.module : undefined).toMatch(/^\/.*libc/);
    });
  },
);
