// Run by privilege.test.ts under setpriv as an unprivileged user: tries to
// load the fixture and prints what a user would see, as JSON.
import { BpfError, BpfObject, preflight } from '../src/index.js';

const file = process.argv[2]!;
const out: Record<string, unknown> = {};
try {
  const o = BpfObject.open(file);
  out.opened = true;
  o.load();
  out.loaded = true;
} catch (err) {
  if (err instanceof BpfError) {
    out.error = { name: err.name, code: err.code, errno: err.errno, message: err.message, hint: err.hint };
  } else {
    out.error = { name: (err as Error).name, message: String(err) };
  }
}
const report = preflight();
out.preflight = { ok: report.ok, problems: report.problems, capabilities: report.capabilities };
process.stdout.write(JSON.stringify(out));
