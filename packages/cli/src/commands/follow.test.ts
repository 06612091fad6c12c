import type { EvidenceRecord } from '@stellaops/ndjson';
import { validateRecord } from '@stellaops/ndjson';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../args.js';
import { followKeeps, followSpec, parseFollowFilter, textLine } from './follow.js';

const MANIFEST = `sha256:${'ab'.repeat(32)}`;
const CONFIG = `sha256:${'cd'.repeat(32)}`;
const ID = `3f1c2a${'0'.repeat(58)}`;

function fileOpen(path: string, container?: Record<string, unknown>): EvidenceRecord {
  const r = {
    schema_version: 1,
    type: 'file_open',
    seq: '1',
    mono_ns: '1',
    wall_ns: '1796188707437369019',
    host_id: 'h',
    pid: 42,
    tid: 42,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'cat',
    cgroup_id: '7',
    ...(container ? { container } : {}),
    path,
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0,
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
  } as unknown as EvidenceRecord;
  // The filters are tested on records the schema accepts.
  expect(validateRecord(r)).toEqual([]);
  return r;
}

const inContainer = {
  id: ID,
  runtime: 'containerd',
  image_ref: 'docker.io/library/nginx:1',
  image_manifest_digest: MANIFEST,
  image_config_digest: CONFIG,
  status: 'resolved',
};

const filter = (...argv: string[]) => parseFollowFilter(parseCommand(followSpec, argv));

describe('follow filters', () => {
  const host = fileOpen('/etc/passwd');
  const cont = fileOpen('/etc/nginx/nginx.conf', inContainer);

  it('--container keeps the container (by id prefix) and drops the host', () => {
    const f = filter('--container', '3f1c2a');
    expect(followKeeps(f, cont)).toBe(true);
    expect(followKeeps(f, host)).toBe(false);
    expect(followKeeps(filter('--container', '3f1c2b'), cont)).toBe(false);
  });

  it('--image matches the manifest or the config digest, or a prefix of either', () => {
    expect(followKeeps(filter('--image', MANIFEST), cont)).toBe(true);
    expect(followKeeps(filter('--image', CONFIG.slice(0, 14)), cont)).toBe(true);
    expect(followKeeps(filter('--image', `sha256:${'ef'.repeat(32)}`), cont)).toBe(false);
    expect(followKeeps(filter('--image', MANIFEST), host)).toBe(false);
  });

  it('--path is a prefix of the path; kinds combine with AND, values of one kind with OR', () => {
    expect(followKeeps(filter('--path', '/etc/nginx/'), cont)).toBe(true);
    expect(followKeeps(filter('--path', '/etc/nginx/'), host)).toBe(false);
    expect(followKeeps(filter('--path', '/var/', '--path', '/etc/pass'), host)).toBe(true);
    expect(followKeeps(filter('--type', 'process_exec', '--path', '/etc/'), host)).toBe(false);
    expect(
      followKeeps(filter('--type', 'file_open', '--container', '3f1c', '--path', '/etc/passwd'), cont),
    ).toBe(false);
  });

  it('the text line shows time, type, process, container and path', () => {
    expect(textLine(cont)).toBe(
      `${new Date(1796188707437).toISOString().slice(11, 23)} file_open     cat[42] 3f1c2a000000(docker.io/library/nginx:1) /etc/nginx/nginx.conf`,
    );
    expect(textLine(host)).toMatch(/ file_open +cat\[42\] host \/etc\/passwd$/);
  });
});
