import { describe, expect, it } from 'vitest';
import * as api from './index.js';

// The public surface, spelled out: a rename or removal must change this list on purpose.
describe('@stellaops/enrich public surface', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'CONTAINERD_SOCKET',
        'CRIO_SOCKET',
        'CgroupResolver',
        'ContainerTracker',
        'ContainerdClient',
        'CrioClient',
        'DOCKER_SOCKET',
        'DockerClient',
        'EnrichError',
        'EnrichmentStage',
        'FileDigests',
        'LruCache',
        'PODMAN_SOCKET',
        'PodmanClient',
        'SymbolResolver',
        'containerField',
        'defaultCgroupRoot',
        'fileOffsetToVaddr',
        'kernelString',
        'matchCgroupPath',
        'parseMaps',
        'parseProcCgroup',
        'readElf',
        'readProcessInfo',
        'releaseInOrder',
        'symbolAt',
      ].sort(),
    );
  });

  it('EnrichError carries a code and its class name', () => {
    const e = new api.EnrichError('CLOSED', 'x');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('EnrichError');
    expect(e.code).toBe('CLOSED');
  });
});
