export {
  bpfRequired,
  bpfUnavailableReason,
  canRunBpf,
  commandUnavailableReason,
  gate,
} from './privileges.js';
export { scaled, timeScale } from './time.js';
