/**
 * Prints, one line per probe, how each probe attaches on the running kernel
 * (`name attach_type reason`): tools/kernel-vm/guest.sh runs it in each VM so
 * the matrix says which hooks and fallbacks every kernel took.
 */
import { openNetProbes, openProbeSet } from '../../packages/probes/src/index.js';

const fileexec = openProbeSet();
const net = openNetProbes({ sockSource: 'syscall' });
try {
  for (const s of [...fileexec.status, ...net.status]) {
    const how = s.attached ? (s.attachType ?? '?') : 'none';
    process.stdout.write(`${s.name} ${how}${s.reason ? ` (${s.reason})` : ''}\n`);
  }
} finally {
  await fileexec.close();
  await net.close();
}
