import { describe, expect, it } from 'vitest';
import { normalizePath, PathResolver } from './paths.js';

describe('normalizePath', () => {
  it('makes paths absolute and removes ., .., repeated and trailing slashes', () => {
    expect(normalizePath('./usr/bin/ls')).toBe('/usr/bin/ls');
    expect(normalizePath('usr//lib/../bin/')).toBe('/usr/bin');
    expect(normalizePath('/a/./b/.hidden')).toBe('/a/b/.hidden');
    expect(normalizePath('/../x')).toBe('/x');
    expect(normalizePath('/')).toBe('/');
  });
});

describe('PathResolver: the image view', () => {
  const r = new PathResolver({
    '/bin': 'usr/bin', // usr-merge, relative
    '/lib': '/usr/lib', // absolute
    '/usr/bin/sh': 'dash', // same directory
    '/usr/bin/python3': '../local/bin/python3.11', // up and over
    '/usr/local/bin/python3.11': '/opt/py/bin/python', // chain
    '/etc/alternatives/x': '/bin/sh', // through a symlinked directory
    '/loop/a': 'b',
    '/loop/b': 'a',
  });

  it('follows directory links and, for real(), the last component', () => {
    expect(r.real('/bin/sh')).toBe('/usr/bin/dash');
    expect(r.parentReal('/bin/sh')).toBe('/usr/bin/sh');
    expect(r.real('/lib/x86_64-linux-gnu/libc.so.6')).toBe('/usr/lib/x86_64-linux-gnu/libc.so.6');
    expect(r.real('/bin/python3')).toBe('/opt/py/bin/python');
    expect(r.real('/etc/alternatives/x')).toBe('/usr/bin/dash');
    expect(r.real('/usr/bin/ls')).toBe('/usr/bin/ls');
    expect(r.real('/bin')).toBe('/usr/bin');
  });

  it('stops at a loop instead of hanging (the kernel says ELOOP)', () => {
    expect(['/loop/a', '/loop/b']).toContain(r.real('/loop/a'));
  });

  it('without links, paths are only normalised', () => {
    const none = new PathResolver(undefined);
    expect(none.empty).toBe(true);
    expect(none.real('//bin/./sh')).toBe('/bin/sh');
  });
});
