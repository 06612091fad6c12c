/**
 * The network and TLS storm both net benches run: this package's probe-level
 * one (net.bench.ts) and the product path's (packages/signals cli-net.bench.ts).
 * One C program: `server` (accepts and closes, prints its port), `connect PORT
 * N` (connect + RST close N times, prints ns), `tls PORT N CAFILE` (N full
 * TLS 1.3 sessions with SNI, a request and the response; prints ns and its
 * own CPU ns). The TLS peer is `openssl s_server -www` with a fresh P-256
 * certificate for localhost.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../test/net-helpers.js';

const STORM_C = String.raw`
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int dial(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(0x7f000001);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); exit(1); }
  return s;
}
static void rst_close(int s) { struct linger l = {1, 0}; setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l); close(s); }
int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "server")) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0}; socklen_t len = sizeof a;
    a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096)) { perror("listen"); return 1; }
    getsockname(s, (struct sockaddr *)&a, &len);
    printf("%d\n", ntohs(a.sin_port)); fflush(stdout);
    for (;;) { int c = accept(s, NULL, NULL); if (c >= 0) close(c); }
  }
  if (argc == 4 && !strcmp(argv[1], "connect")) {
    int port = atoi(argv[2]), n = atoi(argv[3]);
    long long t0 = now();
    for (int i = 0; i < n; i++) rst_close(dial(port));
    printf("%lld\n", now() - t0);
    return 0;
  }
  if (argc == 5 && !strcmp(argv[1], "tls")) {
    int port = atoi(argv[2]), n = atoi(argv[3]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, argv[4], NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[16384];
    long long t0 = now();
    for (int i = 0; i < n; i++) {
      int s = dial(port);
      SSL *ssl = SSL_new(ctx);
      SSL_set_fd(ssl, s);
      SSL_set_tlsext_host_name(ssl, "localhost");
      if (SSL_connect(ssl) != 1) { fprintf(stderr, "handshake failed\n"); return 1; }
      SSL_write(ssl, req, sizeof req - 1);
      while (SSL_read(ssl, buf, sizeof buf) > 0) {}
      SSL_free(ssl);
      close(s);
    }
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    printf("%lld %lld\n", now() - t0, (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL);
    return 0;
  }
  fprintf(stderr, "usage: storm server | connect PORT N | tls PORT N CAFILE\n");
  return 2;
}
`;

/** Compile the storm program into `dir` (needs gcc and libssl-dev); its path. */
export function buildNetStorm(dir: string): string {
  const storm = join(dir, 'storm');
  writeFileSync(`${storm}.c`, STORM_C);
  execFileSync('gcc', ['-O2', '-o', storm, `${storm}.c`, '-lssl', '-lcrypto']);
  return storm;
}

/** A self-signed P-256 certificate and key for localhost in `dir`. */
export function makeLocalhostCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    // biome-ignore format: one command line
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
     '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** The storm's plain server and an `openssl s_server -www` on free loopback ports, started and settled. */
export async function startNetPeers(
  storm: string,
  cert: string,
  key: string,
): Promise<{ port: number; tlsPort: number; tls: ChildProcess; children: ChildProcess[] }> {
  const server = spawn(storm, ['server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((r) =>
    server.stdout?.once('data', (d) => r(Number(String(d).trim()))),
  );
  const tlsPort = await freePort();
  const tls = spawn(
    'openssl',
    ['s_server', '-accept', `127.0.0.1:${tlsPort}`, '-cert', cert, '-key', key, '-www', '-quiet'],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 500));
  return { port, tlsPort, tls, children: [server, tls] };
}
