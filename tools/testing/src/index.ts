export {
  bpfRequired,
  bpfUnavailableReason,
  canRunBpf,
  commandUnavailableReason,
  gate,
} from './privileges.js';
