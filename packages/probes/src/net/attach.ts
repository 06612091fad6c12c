/**
 * Attaches the net object's uprobes to discovered library files, once per
 * file (device + inode), at offsets read from the file's .dynsym.
 */
import type { AttachSpec, BpfLink } from '@stellaops/bpf-loader';
import type { LibraryKind, LibraryTarget } from './discovery.js';
import { dynamicFunctions } from './elf.js';

/** One probed function: its entry program and, when it has one, its return program. */
export interface UprobeSpec {
  readonly symbol: string;
  readonly enter: string;
  readonly exit?: string;
}

/** libc functions probed for net_connect / net_accept. */
export const LIBC_UPROBES: readonly UprobeSpec[] = [
  { symbol: 'connect', enter: 'net_connect_enter', exit: 'net_sock_exit' },
  { symbol: 'accept', enter: 'net_accept_enter', exit: 'net_sock_exit' },
  { symbol: 'accept4', enter: 'net_accept4_enter', exit: 'net_sock_exit' },
];

/**
 * OpenSSL functions probed for tls_io / tls_handshake. Buffers are never read.
 * SSL_connect and SSL_accept are not probed: both are SSL_set_*_state +
 * SSL_do_handshake (ssl/ssl_lib.c in 1.1.1 and 3.x), whose probes already see
 * the role and the result, and every probe hit is a trap (~16 µs on a VM).
 * Nor are SSL_ctrl, SSL_set_connect_state and SSL_set_accept_state: the
 * role and the server name come from the first handshake message the process
 * writes (ClientHello or ServerHello, seen by the net object's sys_enter
 * program), and SSL_ctrl alone, OpenSSL's catch-all setter and getter, is 15
 * traps per session in `openssl s_server -www`.
 */
export const SSL_UPROBES: readonly UprobeSpec[] = [
  { symbol: 'SSL_read', enter: 'net_ssl_read_enter', exit: 'net_ssl_exit' },
  { symbol: 'SSL_write', enter: 'net_ssl_write_enter', exit: 'net_ssl_exit' },
  { symbol: 'SSL_read_ex', enter: 'net_ssl_read_ex_enter', exit: 'net_ssl_exit' },
  { symbol: 'SSL_write_ex', enter: 'net_ssl_write_ex_enter', exit: 'net_ssl_exit' },
  { symbol: 'SSL_do_handshake', enter: 'net_ssl_do_handshake_enter', exit: 'net_ssl_exit' },
  // Only on kernels where the net object cannot name the descriptor from the session's socket I/O.
  { symbol: 'SSL_set_fd', enter: 'net_ssl_set_fd_enter' },
  { symbol: 'SSL_free', enter: 'net_ssl_free_enter' },
];

/** OpenSSL functions only the tls_io probe needs (each call is two traps). */
export const SSL_IO_SYMBOLS: ReadonlySet<string> = new Set([
  'SSL_read',
  'SSL_write',
  'SSL_read_ex',
  'SSL_write_ex',
]);

/** Symbols without which a file is not probed at all. */
const REQUIRED: Record<LibraryKind, readonly string[]> = {
  libc: ['connect'],
  libssl: ['SSL_read', 'SSL_write'],
  'ssl-static': ['SSL_read', 'SSL_write'],
};

/** The part of BpfObject the attacher uses. */
export interface UprobeHost {
  attach(program: string, spec?: AttachSpec): BpfLink;
}

/** What happened to one target file. */
export interface AttachedLibrary {
  readonly target: LibraryTarget;
  /** Functions probed. */
  readonly symbols: readonly string[];
  /** Functions the file does not export (e.g. SSL_read_ex in OpenSSL 1.1.0). */
  readonly missing: readonly string[];
  /** Why the file is not (fully) probed, when attaching failed. */
  readonly error?: string;
  readonly links: readonly BpfLink[];
}

/** Attaches once per file key; remembers failures so a bad file is not retried every scan. */
export class UprobeAttacher {
  readonly #host: UprobeHost;
  readonly #done = new Map<string, AttachedLibrary>();
  readonly #kinds: ReadonlySet<LibraryKind>;

  readonly #ssl: readonly UprobeSpec[];

  /**
   * @param kinds which target kinds to probe
   * @param sslSpecs the OpenSSL functions to probe (default all of SSL_UPROBES;
   *   a handshake-only collector leaves out SSL_read/SSL_write and their traps)
   */
  constructor(
    host: UprobeHost,
    kinds: Iterable<LibraryKind> = ['libc', 'libssl', 'ssl-static'],
    sslSpecs: readonly UprobeSpec[] = SSL_UPROBES,
  ) {
    this.#host = host;
    this.#kinds = new Set(kinds);
    this.#ssl = sslSpecs;
  }

  /** Files handled so far, by key. */
  get libraries(): ReadonlyMap<string, AttachedLibrary> {
    return this.#done;
  }

  /** Attach to a target unless its file was handled already. Returns the new entry, or undefined. */
  attach(target: LibraryTarget): AttachedLibrary | undefined {
    if (!this.#kinds.has(target.kind) || this.#done.has(target.key)) return undefined;
    const specs = target.kind === 'libc' ? LIBC_UPROBES : this.#ssl;
    const links: BpfLink[] = [];
    const symbols: string[] = [];
    let missing: string[] = [];
    let error: string | undefined;
    try {
      const funcs = dynamicFunctions(
        target.path,
        new Set([...specs.map((s) => s.symbol), ...REQUIRED[target.kind]]),
      );
      missing = specs.filter((s) => !funcs.has(s.symbol)).map((s) => s.symbol);
      const lacking = REQUIRED[target.kind].filter((s) => !funcs.has(s));
      if (lacking.length > 0) {
        error = `does not export ${lacking.join(', ')}`;
      } else {
        for (const s of specs) {
          const f = funcs.get(s.symbol);
          if (!f) continue;
          links.push(
            this.#host.attach(s.enter, { kind: 'uprobe', binaryPath: target.path, offset: f.fileOffset }),
          );
          if (s.exit) {
            links.push(
              this.#host.attach(s.exit, { kind: 'uretprobe', binaryPath: target.path, offset: f.fileOffset }),
            );
          }
          symbols.push(s.symbol);
        }
      }
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      // Half-probed files would report some calls and not others: all or nothing.
      for (const l of links) l.close();
      links.length = 0;
      symbols.length = 0;
    }
    const entry: AttachedLibrary = { target, symbols, missing, links, ...(error ? { error } : {}) };
    this.#done.set(target.key, entry);
    return entry;
  }

  /** Detach everything. */
  close(): void {
    for (const e of this.#done.values()) for (const l of e.links) if (!l.closed) l.close();
  }

  /**
   * Detach everything, letting the event loop run between links: the kernel
   * takes up to tens of ms to unregister one uprobe, and a stop detaches
   * dozens, so a synchronous loop would hold off signals and the status
   * socket for seconds.
   */
  async closeYielding(): Promise<void> {
    for (const e of this.#done.values()) {
      for (const l of e.links) {
        if (l.closed) continue;
        l.close();
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  }
}
