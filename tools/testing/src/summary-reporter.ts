import { readFileSync } from 'node:fs';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

/**
 * Prints one closing line, `vitest: N passed, N failed, N skipped`, that CI
 * reads to know how many tests really ran. Module-level failures (a file that
 * fails to import) count as failed, so a broken file is never invisible.
 *
 * With STELLA_TEST_PROGRESS=1 (the kernel VMs set it) it also prints a line
 * as each test starts, stamped with the kernel's uptime, so a console that
 * ends in a hang or a kernel message shows which tests were running then.
 */
export default class SummaryReporter implements Reporter {
  readonly #progress = process.env.STELLA_TEST_PROGRESS === '1';

  onTestCaseReady(test: TestCase): void {
    if (!this.#progress) return;
    let uptime = '?';
    try {
      uptime = readFileSync('/proc/uptime', 'utf8').split(' ')[0] ?? '?';
    } catch {}
    process.stderr.write(`[test ${uptime}] start ${test.module.moduleId} > ${test.fullName}\n`);
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules) {
      if (mod.state() === 'failed' && mod.errors().length > 0) failed++;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
