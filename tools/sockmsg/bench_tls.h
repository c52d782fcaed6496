/* sockmsg bench over tls:// (bench_tls.c): the client context from --ca,
 * --insecure and --tls-ciphersuites, a handshake per connection, and the
 * non-blocking I/O that replaces send and read on a TLS connection. */
#ifndef SOCKMSG_TOOL_BENCH_TLS_H
#define SOCKMSG_TOOL_BENCH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "bench.h"

/* Make cfg->tls_ctx. 0, or -1 with the reason in why. */
int bench_tls_init(bench_cfg *cfg, char *why, size_t len);
void bench_tls_free(bench_cfg *cfg);

/* Shake hands on the connected socket fd (blocking, within timeout_ms),
 * verifying cfg->ep.host unless --insecure. The session goes to *out; the
 * fd stays the caller's. 0, or -1 with the reason in why. */
int bench_tls_connect(const bench_cfg *cfg, int fd, int timeout_ms, void **out, char *why,
                      size_t len);

/* As send and read on a non-blocking socket: bytes, 0 at the peer's
 * close_notify (read), -1 with errno (EAGAIN, ECONNRESET, EPROTO). */
ssize_t bench_tls_send(void *ssl, const void *buf, size_t len);
ssize_t bench_tls_read(void *ssl, void *buf, size_t len);
/* Bytes OpenSSL holds that no socket event will announce. */
bool bench_tls_pending(void *ssl);
/* close_notify if the socket takes it, then free the session. */
void bench_tls_close(void *ssl);

#endif
