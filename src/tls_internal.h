/* TLS sessions inside the library: what sm_conn, the stream transport and
 * the servers use. Never installed. Built with OpenSSL, tls_*.c implement
 * it; without, tls_none.c answers SM_ERR_TLS_UNAVAILABLE.
 *
 * A session sits on a non-blocking socket fd and never waits: every call
 * does what it can and says what it needs (SM__TLS_WANT_READ: bytes from
 * the peer). Ciphertext going out is collected in the session's own
 * buffer (a BIO of ours), so a batch of plaintext pieces becomes records
 * sent with one write; sm__tls_flush writes that buffer to the socket
 * (MSG_NOSIGNAL: never SIGPIPE) and says whether it emptied. Reads pull
 * from the socket directly, as OpenSSL asks (one recv per record at most).
 */
#ifndef SM_TLS_INTERNAL_H
#define SM_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sockmsg/tls.h"

typedef struct sm__tls sm__tls;

/* The session's detail buffer: OpenSSL's reason plus the names involved. */
#define SM__TLS_DETAIL 192

/* sm__tls_new - a session over fd (non-blocking; still the caller's to
 * close) with cfg (a reference is taken). host: a client's name to send as
 * SNI and verify (the config's server name, when set, wins); NULL or "" on
 * a server, or for a client that skips verification. port: with host, the
 * key of the client's session cache. 0, -ENOMEM, SM_ERR_TLS (why). */
int sm__tls_new(sm__tls **out, sm_tls_config *cfg, int fd, const char *host, unsigned port,
                char *why, size_t why_len);
/* Free the session (no close_notify: see sm__tls_close_notify). NULL ok. */
void sm__tls_free(sm__tls *t);

/* sm__tls_handshake - advance the handshake: 0 when done, -EAGAIN when it
 * waits for the peer (flush first: there may be bytes to send), or a
 * negative code with sm__tls_detail set. */
int sm__tls_handshake(sm__tls *t);
bool sm__tls_handshake_done(const sm__tls *t);

/* sm__tls_read - decrypt into buf: bytes (> 0), 0 at the peer's
 * close_notify, -EAGAIN (nothing decrypted; wait for readable),
 * SM_ERR_TLS_EOF (the socket's EOF without close_notify), or an error. */
ssize_t sm__tls_read(sm__tls *t, void *buf, size_t len);
/* Plaintext already decrypted and waiting in OpenSSL (no event will say). */
bool sm__tls_read_pending(const sm__tls *t);

/* sm__tls_write - encrypt up to `max` bytes of iov into the out buffer:
 * the plaintext bytes taken (small pieces are joined so a record carries
 * many of them), or an error. Never waits: send the buffer with flush. */
ssize_t sm__tls_write(sm__tls *t, const struct iovec *iov, int iovcnt, size_t max);

/* sm__tls_flush - write the out buffer to the socket: 0 when it is empty,
 * -EAGAIN when the kernel is full (wait for writable), -errno. */
int sm__tls_flush(sm__tls *t);
/* Ciphertext waiting to be written. */
size_t sm__tls_unsent(const sm__tls *t);

/* sm__tls_close_notify - queue a close_notify alert into the out buffer
 * (once; flush to send it). Reading goes on. 0 or an error. */
int sm__tls_close_notify(sm__tls *t);

/* The last error's explanation, or "". */
const char *sm__tls_detail(const sm__tls *t);
/* The ALPN protocol agreed, or NULL. */
const char *sm__tls_alpn(const sm__tls *t, size_t *len);
/* The session is a server's. */
bool sm__tls_is_server(const sm__tls *t);
/* The configuration's role, and its handshake timeout (ms). */
sm_tls_role sm__tls_config_role(const sm_tls_config *cfg);
int sm__tls_config_handshake_timeout(const sm_tls_config *cfg);
/* The config's handshake timeout for event-driven streams (ms). */
int sm__tls_handshake_timeout(const sm__tls *t);
/* True when the handshake resumed a session. */
bool sm__tls_resumed(const sm__tls *t);

/* ---- blocking, with deadlines (tls_block.c), for sm_conn ----------------
 * Each waits in poll(2) on the session's socket; the deadline covers the
 * whole call as sm_sendv_all's does. One thread may send while another
 * receives (a lock guards the session, never held while waiting). */
int sm__tls_handshake_wait(sm__tls *t, int64_t deadline);
/* All of iov, encrypted and written: the bytes (the total) or an error. */
ssize_t sm__tls_sendv_all(sm__tls *t, const struct iovec *iov, int iovcnt, int timeout_ms);
/* As sm_recv_some: bytes, 0 at close_notify, SM_ERR_TLS_EOF, -ETIMEDOUT, ... */
ssize_t sm__tls_recv_some(sm__tls *t, void *buf, size_t len, int timeout_ms);
/* close_notify and the bytes before it, written within timeout_ms. */
int sm__tls_shutdown_wait(sm__tls *t, int timeout_ms);
/* sm__tls_read_pending under the session's lock (another thread may send). */
bool sm__tls_read_pending_locked(sm__tls *t);
/* Closing: close_notify if it was not sent, written if the kernel takes it
 * at once (never waits). */
void sm__tls_goodbye(sm__tls *t);

#endif
