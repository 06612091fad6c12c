import { describe, expect, it } from 'vitest';
import { matchCgroupPath } from './matchers.js';

const ID = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

describe('matchCgroupPath', () => {
  it.each([
    ['/system.slice/docker-' + ID + '.scope', 'docker', ID, 'docker-systemd'],
    ['/docker/' + ID, 'docker', ID, 'docker-cgroupfs'],
    ['/docker/' + ID + '/nested/child', 'docker', ID, 'docker-cgroupfs'],
    ['/system.slice/crio-' + ID + '.scope', 'cri-o', ID, 'crio'],
    ['/machine.slice/libpod-' + ID + '.scope', 'podman', ID, 'podman'],
    ['/machine.slice/libpod-' + ID + '.scope/container', 'podman', ID, 'podman'],
    ['/libpod_parent/libpod-' + ID, 'podman', ID, 'podman'],
  ])('%s → %s', (path, runtime, id, rule) => {
    const m = matchCgroupPath(path);
    expect(m).toMatchObject({ runtime, id, rule, confirm: false });
  });

  it('names the container cgroup, not the nested leaf', () => {
    expect(matchCgroupPath('/machine.slice/libpod-' + ID + '.scope/container')?.containerCgroup).toBe(
      '/machine.slice/libpod-' + ID + '.scope',
    );
  });

  it('reads pod uid and QoS from a systemd kubepods slice, undoing _ for -', () => {
    const m = matchCgroupPath(
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_5678_9abc.slice/cri-containerd-' +
        ID +
        '.scope',
    );
    expect(m).toMatchObject({
      runtime: 'containerd',
      id: ID,
      namespace: 'k8s.io',
      podUid: '1234-5678-9abc',
      qos: 'besteffort',
    });
  });

  it('matches the cgroupfs-driver systemd-style cri-containerd leaf', () => {
    const m = matchCgroupPath('/kubepods-burstable-podaa_bb.slice:cri-containerd:' + ID);
    expect(m).toMatchObject({
      runtime: 'containerd',
      id: ID,
      podUid: 'aa-bb',
      qos: 'burstable',
      confirm: false,
    });
  });

  it('matches the kubepods cgroupfs layout and asks for confirmation', () => {
    expect(matchCgroupPath('/kubepods/besteffort/pod1234-5678/c1')).toMatchObject({
      runtime: 'cri',
      id: 'c1',
      podUid: '1234-5678',
      qos: 'besteffort',
      confirm: true,
    });
    expect(matchCgroupPath('/kubepods/pod77/' + ID)).toMatchObject({
      runtime: 'cri',
      id: ID,
      qos: 'guaranteed',
      podUid: '77',
    });
  });

  it('matches ctr /<namespace>/<id> only as a candidate to confirm', () => {
    expect(matchCgroupPath('/stella/web-1')).toMatchObject({
      runtime: 'containerd',
      namespace: 'stella',
      id: 'web-1',
      confirm: true,
    });
    expect(matchCgroupPath('/stella/web-1/sub')).toMatchObject({
      id: 'web-1',
      containerCgroup: '/stella/web-1',
    });
  });

  it.each([
    ['/'],
    ['/init.scope'],
    ['/system.slice/containerd.service'],
    ['/user.slice/user-0.slice/session-1.scope'],
    ['/machine.slice/libpod-conmon-' + ID + '.scope'],
    ['/system.slice/crio-conmon-' + ID + '.scope'],
    ['/docker/not-hex'],
    ['/kubepods/besteffort'],
  ])('host or helper cgroup %s → no container', (path) => {
    expect(matchCgroupPath(path)).toBeUndefined();
  });
});
