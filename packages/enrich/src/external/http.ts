import { request } from 'node:http';
import { EnrichError } from '../errors.js';

/** A JSON HTTP GET over a unix socket. `undefined` on 404; throws EnrichError otherwise. */
export function getJson(socket: string, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, path, method: 'GET', headers: { host: 'localhost' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(unavailable(socket, err)));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 404) return resolve(undefined);
          if (res.statusCode !== 200) {
            return reject(
              new EnrichError(
                'RUNTIME_ERROR',
                `GET ${path} on ${socket}: HTTP ${res.statusCode}: ${body.slice(0, 300)}`,
              ),
            );
          }
          try {
            resolve(JSON.parse(body));
          } catch (err) {
            reject(
              new EnrichError('RUNTIME_ERROR', `GET ${path} on ${socket}: reply is not JSON`, { cause: err }),
            );
          }
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no reply within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(unavailable(socket, err)));
    req.end();
  });
}

function unavailable(socket: string, err: Error): EnrichError {
  return new EnrichError(
    'RUNTIME_UNAVAILABLE',
    `cannot talk to ${socket}: ${err.message} (is the daemon running? pass its socket path in the options)`,
    { cause: err },
  );
}

/**
 * A streaming GET whose body is a sequence of JSON objects (Docker and podman
 * `/events`). Calls `onObject` per object; returns a function that aborts.
 */
export function streamJson(
  socket: string,
  path: string,
  onObject: (o: unknown) => void,
  onError: (err: Error) => void,
): () => void {
  let stopped = false;
  const req = request({ socketPath: socket, path, method: 'GET', headers: { host: 'localhost' } }, (res) => {
    if (res.statusCode !== 200) {
      onError(new EnrichError('RUNTIME_ERROR', `GET ${path} on ${socket}: HTTP ${res.statusCode}`));
      res.resume();
      return;
    }
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.length > 0) {
          try {
            onObject(JSON.parse(line));
          } catch {
            // A malformed event line is skipped; the next one is independent.
          }
        }
        nl = buf.indexOf('\n');
      }
    });
    res.on('end', () => {
      if (!stopped)
        onError(new EnrichError('RUNTIME_UNAVAILABLE', `event stream ${path} on ${socket} ended`));
    });
  });
  req.on('error', (err) => {
    if (!stopped) onError(unavailable(socket, err));
  });
  req.end();
  return () => {
    stopped = true;
    req.destroy();
  };
}
