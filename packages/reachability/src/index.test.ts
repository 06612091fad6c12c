import { describe, expect, it } from 'vitest';
import * as api from './index.js';

describe('public surface of @stellaops/reachability', () => {
  it('exports exactly these runtime names (a rename must be deliberate)', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'DEFAULT_CONTENT_STORE',
        'REACHABILITY_PREDICATE_SCHEMA',
        'REACHABILITY_PREDICATE_TYPE',
        'ReachabilityError',
        'analyze',
        'formatTable',
        'inventoryFromImage',
        'inventoryFromRootfs',
        'parseCycloneDx',
        'parseSbom',
        'parseSpdx',
        'signStatement',
        'statementBytes',
        'toStatement',
        'verifyStatement',
      ].sort(),
    );
  });

  it('names the predicate type and the content store it reads by default', () => {
    expect(api.REACHABILITY_PREDICATE_TYPE).toBe('https://stellaops.dev/attestations/reachability/v1');
    expect(api.DEFAULT_CONTENT_STORE).toBe('/var/lib/containerd/io.containerd.content.v1.content');
  });

  it('errors carry a code and their class name', () => {
    const e = new api.ReachabilityError('CHAIN_UNVERIFIED', 'x');
    expect(e.name).toBe('ReachabilityError');
    expect(e.code).toBe('CHAIN_UNVERIFIED');
  });
});
