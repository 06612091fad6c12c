import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const pkg = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests run from src through these aliases: no build is needed to test.
const alias = {
  '@stellaops/ndjson': pkg('./packages/ndjson/src/index.ts'),
  '@stellaops/bpf-loader': pkg('./packages/bpf-loader/src/index.ts'),
  '@stellaops/probes': pkg('./packages/probes/src/index.ts'),
  '@stellaops/enrich': pkg('./packages/enrich/src/index.ts'),
  '@stellaops/evidence-chain': pkg('./packages/evidence-chain/src/index.ts'),
  '@stellaops/reachability': pkg('./packages/reachability/src/index.ts'),
  '@stellaops/signals': pkg('./packages/signals/src/index.ts'),
  '@stellaops/cli': pkg('./packages/cli/src/index.ts'),
  '@stellaops/testing': pkg('./tools/testing/src/index.ts'),
};

export default defineConfig({
  resolve: { alias },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'examples/*/**/*.test.ts',
      'tools/*/src/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Native addon and kernel tests: one process per file, files in sequence
    // on a 2-core machine, so kernel tests do not perturb each other.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './tools/testing/src/summary-reporter.ts'],
  },
});
