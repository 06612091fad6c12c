/**
 * TLS ↔ TCP correlation in user space, for what the kernel side could not
 * tie itself: a session's server name on its later tls_io records, and the
 * 4-tuple of a session whose fd is known (SSL_set_fd) from the pid+fd of a
 * connect/accept record. Nothing is guessed: with no exact key, nothing is
 * added.
 */
import type { NetEvent, SocketTuple } from './decode.js';

interface Session {
  sni: Buffer | undefined;
  tuple: SocketTuple | undefined;
  tupleSource: 'socket' | 'fd' | undefined;
}

export interface TlsSessionInfo {
  readonly sni?: Buffer | undefined;
  readonly tuple?: SocketTuple | undefined;
  /** How the tuple was found: 'socket' (seen in-kernel during an SSL call), 'fd' (pid+fd of a connect/accept record). */
  readonly tupleSource?: 'socket' | 'fd' | undefined;
}

/** Bounded maps of sessions (pid+SSL*) and sockets (pid+fd), oldest evicted first. */
export class TlsCorrelator {
  readonly #sessions = new Map<string, Session>();
  readonly #sockets = new Map<string, SocketTuple>();
  readonly #max: number;

  /** @param maxEntries bound of each map (default 65536). */
  constructor(maxEntries = 65536) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.#max = maxEntries;
  }

  /** Number of sessions tracked. */
  get sessions(): number {
    return this.#sessions.size;
  }

  #put<V>(m: Map<string, V>, k: string, v: V): void {
    m.delete(k);
    m.set(k, v);
    if (m.size > this.#max) {
      const first = m.keys().next();
      if (!first.done) m.delete(first.value);
    }
  }

  /**
   * Feed one event (in ring order) and get what is known about its TLS
   * session (undefined for non-TLS events).
   */
  observe(ev: NetEvent): TlsSessionInfo | undefined {
    const pid = ev.header.pid;
    if (ev.type === 'tcp_state') return undefined;
    if (!('ssl' in ev)) {
      // A non-blocking connect returns -1/EINPROGRESS with the socket already bound: still exact.
      if (ev.tuple && ev.fd >= 0) this.#put(this.#sockets, `${pid}:${ev.fd}`, ev.tuple);
      return undefined;
    }
    const key = `${pid}:${ev.ssl}`;
    const s: Session = this.#sessions.get(key) ?? {
      sni: undefined,
      tuple: undefined,
      tupleSource: undefined,
    };
    if (ev.sni) s.sni = ev.sni;
    if (ev.tuple) {
      s.tuple = ev.tuple;
      s.tupleSource = 'socket';
    } else if (!s.tuple && ev.fd !== undefined) {
      const t = this.#sockets.get(`${pid}:${ev.fd}`);
      if (t) {
        s.tuple = t;
        s.tupleSource = 'fd';
      }
    }
    if (ev.op === 'SSL_free') {
      this.#sessions.delete(key);
    } else {
      this.#put(this.#sessions, key, s);
    }
    return { sni: s.sni, tuple: s.tuple, tupleSource: s.tupleSource };
  }
}
