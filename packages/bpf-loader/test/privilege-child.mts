// Run by privilege.test.ts under setpriv as an unprivileged user (with or
// without some capabilities): tries each step and prints what a user would
// see, as JSON.
import { BpfError, BpfObject, preflight } from '../src/index.js';

const [file, target] = process.argv.slice(2) as [string, string];

function attempt(fn: () => unknown): unknown {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof BpfError) {
      return { name: err.name, code: err.code, errno: err.errno, message: err.message, hint: err.hint };
    }
    return { name: (err as Error).name, message: String(err) };
  }
}

const out: Record<string, unknown> = {};
let o: BpfObject | undefined;
out.open = attempt(() => {
  o = BpfObject.open(file);
});
out.load = attempt(() => o?.load());
if (out.load === 'ok' && o) {
  const obj = o;
  out.uprobe = attempt(() =>
    obj.attach('on_tick', { kind: 'uprobe', binaryPath: target, symbol: 'stella_tick' }),
  );
  out.tracepoint = attempt(() =>
    obj.attach('on_getppid_tp', { kind: 'tracepoint', category: 'syscalls', name: 'sys_enter_getppid' }),
  );
  out.tp_btf = attempt(() => obj.attach('on_exec'));
  out.raw_tp = attempt(() => obj.attach('on_sys_enter'));
}
const report = preflight();
out.preflight = {
  ok: report.ok,
  problems: report.problems,
  warnings: report.warnings,
  capabilities: report.capabilities,
};
o?.close();
process.stdout.write(JSON.stringify(out));
