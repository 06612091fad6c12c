import { validateRecord } from '@stellaops/ndjson';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KernelEvent, probeNameOf, type RecordEnvelope, recordTypeOf, toRecord } from './records.js';

const header = {
  pid: 4242,
  tid: 4243,
  ppid: 1,
  uid: 1000,
  gid: 1000,
  comm: Buffer.from('curl'),
  cgroupId: 123456789n,
  monoNs: 5_000_000_000n,
};
const env: RecordEnvelope = {
  seq: 7n,
  wallNs: 1_764_000_000_000_000_000n,
  hostId: 'host-a',
  container: {
    id: 'a'.repeat(64),
    runtime: 'containerd',
    image_ref: 'docker.io/library/busybox:1.36',
    image_manifest_digest: `sha256:${'1'.repeat(64)}`,
    image_config_digest: `sha256:${'2'.repeat(64)}`,
    cgroup_path: '/default/abc',
    status: 'resolved',
  },
};
const tuple = {
  family: 'inet6' as const,
  local: { address: '::1', port: 50000 },
  remote: { address: '::1', port: 8443 },
};

function valid(k: KernelEvent, e: RecordEnvelope = env) {
  const rec = toRecord(k, e);
  expect(rec).toBeDefined();
  expect(validateRecord(rec)).toEqual([]);
  expect(rec!.type).toBe(recordTypeOf(k));
  return rec as unknown as Record<string, unknown>;
}

describe('kernel events become schema-valid evidence records', () => {
  it('file_open keeps flags, dirfd, return value, resolution, and the container', () => {
    const rec = valid({
      source: 'fileexec',
      event: {
        ...header,
        kind: 'file_open',
        probe: 'file_open',
        syscall: 'openat',
        path: Buffer.from('/etc/ssl/openssl.cnf'),
        flags: 0o2000000,
        mode: 0,
        dirfd: -100,
        ret: 3,
        resolution: 'absolute',
        truncated: false,
        pathFault: false,
      },
    });
    expect(rec).toMatchObject({
      path: '/etc/ssl/openssl.cnf',
      ret: 3,
      dirfd: -100,
      seq: '7',
      cgroup_id: '123456789',
      container: { image_manifest_digest: `sha256:${'1'.repeat(64)}` },
    });
  });

  it('file_open paths that are not UTF-8 round-trip as base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (bytes) => {
        const path = Buffer.concat([Buffer.from('/'), Buffer.from(bytes)]);
        const rec = valid(
          {
            source: 'fileexec',
            event: {
              ...header,
              kind: 'file_open',
              probe: 'file_open',
              syscall: 'open',
              path,
              flags: 0,
              mode: 0,
              dirfd: -100,
              ret: -2,
              resolution: 'absolute',
              truncated: false,
              pathFault: false,
            },
          },
          { ...env, container: undefined },
        );
        const p = rec.path as string | { b64: string };
        const back = typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p.b64, 'base64');
        expect(back.equals(path)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('process_exec and process_exit', () => {
    valid({
      source: 'fileexec',
      event: {
        ...header,
        kind: 'exec',
        filename: Buffer.from('/usr/bin/curl'),
        filenameTruncated: false,
        argv: [Buffer.from('curl'), Buffer.from('https://localhost')],
        argc: 2,
        argvTruncated: false,
        exePath: Buffer.from('/usr/bin/curl'),
        exePathTruncated: false,
        interpreterTruncated: false,
        exeDev: 2049n,
        exeIno: 131_000n,
        oldPid: 4242,
      },
    });
    const exit = valid({
      source: 'fileexec',
      event: {
        ...header,
        kind: 'exit',
        exitCode: 0,
        signal: 9,
        coreDumped: false,
        status: 9,
        startNs: 4_000_000_000n,
      },
    });
    expect(exit.duration_ns).toBe('1000000000');
    expect(exit).not.toHaveProperty('runtime_setup');
    const setupExit = toRecord(
      {
        source: 'fileexec',
        event: { ...header, kind: 'exit', exitCode: 0, signal: 0, coreDumped: false, status: 0, startNs: 0n },
      },
      { ...env, identity: { runtimeSetup: true } },
    );
    expect(validateRecord(setupExit)).toEqual([]);
    expect(setupExit).toMatchObject({ runtime_setup: true });
  });

  it('exec identity: the resolved file, the interpreter, the digest or why not, the runtime set-up mark', () => {
    const script = {
      source: 'fileexec' as const,
      event: {
        ...header,
        kind: 'exec' as const,
        filename: Buffer.from('/entrypoint.sh'),
        filenameTruncated: false,
        argv: [Buffer.from('/bin/sh'), Buffer.from('/entrypoint.sh')],
        argc: 2,
        argvTruncated: false,
        exePath: Buffer.from('/bin/busybox'),
        exePathTruncated: false,
        interpreter: Buffer.from('/bin/sh'),
        interpreterTruncated: false,
        exeDev: 2049n,
        exeIno: 131_000n,
        oldPid: 4242,
      },
    };
    const digest = `sha256:${'ab'.repeat(32)}`;
    const rec = toRecord(script, { ...env, identity: { runtimeSetup: false, digest: { digest } } });
    expect(validateRecord(rec)).toEqual([]);
    expect(rec).toMatchObject({
      filename: '/entrypoint.sh',
      exe_path: '/bin/busybox',
      interpreter: '/bin/sh',
      exe_digest: digest,
    });
    expect(rec).not.toHaveProperty('runtime_setup');
    expect(rec).not.toHaveProperty('exe_digest_unavailable');
    const setup = toRecord(script, {
      ...env,
      identity: { runtimeSetup: true, digest: { unavailable: 'process_exited' } },
    });
    expect(validateRecord(setup)).toEqual([]);
    expect(setup).toMatchObject({ runtime_setup: true, exe_digest_unavailable: 'process_exited' });
    expect(setup).not.toHaveProperty('exe_digest');
    // A path cut in the kernel keeps its end and says so.
    const long = Buffer.from(`/${'d/'.repeat(2100)}busybox`);
    const cut = toRecord(
      { source: 'fileexec', event: { ...script.event, exePath: long, exePathTruncated: false } },
      env,
    ) as { exe_path: string; exe_path_truncated?: boolean };
    expect(cut.exe_path.endsWith('/busybox')).toBe(true);
    expect(cut.exe_path_truncated).toBe(true);
    const open = toRecord(
      {
        source: 'fileexec',
        event: {
          ...header,
          kind: 'file_open',
          probe: 'file_open',
          syscall: 'openat',
          path: Buffer.from('/lib/x86_64-linux-gnu/libc.so.6'),
          flags: 0o2000000,
          mode: 0,
          dirfd: -100,
          ret: 3,
          resolution: 'absolute',
          truncated: false,
          pathFault: false,
        },
      },
      { ...env, identity: { runtimeSetup: false, digest: { digest } } },
    );
    expect(validateRecord(open)).toEqual([]);
    expect(open).toMatchObject({ file_digest: digest });
  });

  it('tcp_state with a tuple; without one there is no record', () => {
    const tcp = {
      type: 'tcp_state' as const,
      header: { ...header, kind: 1 },
      event: 'closed' as const,
      direction: 'outbound' as const,
      attributed: true,
      oldState: 'FIN_WAIT1',
      newState: 'CLOSE',
      tuple,
      durationNs: 1000n,
      bytesAcked: 10n,
      bytesReceived: 20n,
    };
    const rec = valid({ source: 'net', event: tcp });
    expect(rec).toMatchObject({ event: 'closed', saddr: '::1', dport: 8443, bytes_received: '20' });
    expect(toRecord({ source: 'net', event: { ...tcp, tuple: undefined } }, env)).toBeUndefined();
    expect(valid({ source: 'net', event: { ...tcp, event: 'connect' } }).event).toBe('connect_attempt');
  });

  it('net_connect over AF_UNIX abstract and AF_INET with a stack', () => {
    const sock = {
      type: 'net_connect' as const,
      header: { ...header, kind: 2 },
      call: 'connect' as const,
      fd: 5,
      ret: -1,
      errno: 111,
      address: { family: 'unix' as const, path: Buffer.from('stella'), abstract: true, unnamed: false },
      addressTruncated: false,
      addressFault: false,
      tuple: undefined,
      acceptFlags: 0,
      durationNs: 10n,
      stack: [0x401000n],
    };
    expect(valid({ source: 'net', event: sock })).toMatchObject({
      family: 'unix',
      unix_abstract: true,
      errno: 111,
    });
    const inet = valid(
      { source: 'net', event: { ...sock, address: { family: 'inet', address: '127.0.0.1', port: 9 } } },
      { ...env, stack: [{ module: '/usr/bin/app', offset: '0x1000', symbol: 'do_connect' }] },
    );
    expect(inet).toMatchObject({ addr: '127.0.0.1', port: 9, stack: [{ symbol: 'do_connect' }] });
    expect(probeNameOf({ source: 'net', event: sock })).toBe('net_connect');
  });

  it('tls_io carries byte counts and the session, never payload; SSL_free makes no record', () => {
    const tls = {
      type: 'tls_io' as const,
      header: { ...header, kind: 3 },
      ssl: 0x5555deadbeefn,
      op: 'SSL_write' as const,
      result: undefined,
      role: 'client' as const,
      requested: 100n,
      ret: 100,
      bytes: 100n,
      tuple,
      fd: 3,
      attempts: 1,
      sni: undefined,
      sniTruncated: false,
      durationNs: 5n,
      stack: [],
    };
    const rec = valid({ source: 'net', event: tls }, env);
    expect(rec).toMatchObject({
      direction: 'write',
      ssl_ptr: '0x5555deadbeef',
      requested: '100',
      returned: '100',
    });
    const withSni = toRecord({ source: 'net', event: tls }, env, { sni: Buffer.from('api.example') });
    expect(withSni).toMatchObject({ sni: 'api.example' });
    expect(toRecord({ source: 'net', event: { ...tls, op: 'SSL_free' } }, env)).toBeUndefined();
    const hs = valid({
      source: 'net',
      event: { ...tls, type: 'tls_handshake', op: 'SSL_connect', result: 'ok', ret: 1 },
    });
    expect(hs).toMatchObject({ result: 'ok', function: 'SSL_connect' });
    // A client that writes before handshaking completes the handshake inside SSL_write_ex.
    const implicit = valid({
      source: 'net',
      event: { ...tls, type: 'tls_handshake', op: 'SSL_write_ex', result: 'implicit', ret: 1 },
    });
    expect(implicit).toMatchObject({ result: 'ok', function: 'SSL_write_ex' });
  });
});

describe('values longer than the schema allows are cut to fit and flagged, never refused', () => {
  const open = (
    path: Buffer,
    over: { resolution?: 'absolute' | 'cwd' | 'dirfd'; truncated?: boolean; pathFault?: boolean } = {},
  ) =>
    valid({
      source: 'fileexec',
      event: {
        ...header,
        kind: 'file_open',
        probe: 'file_open',
        syscall: 'openat',
        path,
        flags: 0,
        mode: 0,
        dirfd: 5,
        ret: 3,
        resolution: over.resolution ?? 'dirfd',
        truncated: over.truncated ?? false,
        pathFault: over.pathFault ?? false,
      },
    });
  const exec = (argv: Buffer[], argvTruncated = false) =>
    valid({
      source: 'fileexec',
      event: {
        ...header,
        kind: 'exec',
        filename: Buffer.from('/bin/echo'),
        filenameTruncated: false,
        argv,
        argc: argv.length,
        argvTruncated,
        exePath: Buffer.from('/bin/echo'),
        exePathTruncated: false,
        interpreterTruncated: false,
        exeDev: 2049n,
        exeIno: 131_000n,
        oldPid: 4242,
      },
    });

  it('a joined dirfd path of 4305 bytes becomes its first 4096 bytes with path_truncated', () => {
    const dir = `/${'d'.repeat(250)}`.repeat(15); // 3765 bytes, like a deep working tree
    const full = Buffer.from(`${dir}/${'r'.repeat(480)}/hostname`);
    expect(full.length).toBeGreaterThan(4096);
    const rec = open(full);
    expect(Buffer.byteLength(rec.path as string)).toBe(4096);
    expect(rec.path).toBe(full.subarray(0, 4096).toString());
    expect(rec).toMatchObject({ path_truncated: true, path_resolution: 'dirfd' });
  });

  it('a path of exactly the limit is kept whole and not flagged', () => {
    const rec = open(Buffer.from(`/${'x'.repeat(4095)}`), { resolution: 'absolute' });
    expect(rec).toMatchObject({ path_truncated: false });
    expect((rec.path as string).length).toBe(4096);
  });

  it('a cut never splits a UTF-8 character of a text path', () => {
    const rec = open(Buffer.from(`/${'é'.repeat(3000)}`), { resolution: 'cwd' });
    expect(typeof rec.path).toBe('string'); // still text, not base64 bytes
    expect(rec.path).toBe(`/${'é'.repeat(2047)}`);
    expect(rec.path_truncated).toBe(true);
  });

  it('a path string the probe could not read says so: truncated, and unresolved when nothing is known', () => {
    expect(open(Buffer.alloc(0), { resolution: 'absolute', pathFault: true })).toMatchObject({
      path: '',
      path_resolution: 'unresolved',
      path_truncated: true,
    });
    expect(open(Buffer.from('/work/'), { resolution: 'cwd', pathFault: true })).toMatchObject({
      path: '/work/',
      path_resolution: 'cwd',
      path_truncated: true,
    });
  });

  it('an argv of 1500 entries keeps the first 1024 with argv_truncated', () => {
    const argv = Array.from({ length: 1500 }, (_, i) => Buffer.from(String(i)));
    const rec = exec(argv);
    expect(rec.argv).toEqual(argv.slice(0, 1024).map((a) => a.toString()));
    expect(rec.argv_truncated).toBe(true);
  });

  it('an argv of exactly 1024 entries is kept whole and not flagged', () => {
    const argv = Array.from({ length: 1024 }, (_, i) => Buffer.from(`a${i}`));
    const rec = exec(argv);
    expect((rec.argv as string[]).length).toBe(1024);
    expect(rec.argv_truncated).toBe(false);
  });
});
