/* sockmsg — blocking message connection: the HOWTO's MySocket, done right.
 *
 * An sm_conn pairs a connected stream socket with a frame spec. sm_conn_send
 * writes one whole message (header, payload and trailer in one gather write,
 * looping over partial sends); sm_conn_recv returns one whole message however
 * the bytes were split or joined on the way: many messages arriving in one
 * recv(2) are returned one per call without another syscall, and one message
 * split over many recv(2)s is reassembled. The read buffer is reused, grown by
 * doubling only up to the spec's max plus a small header allowance, and never
 * sized by what a peer announces.
 *
 *     sm_conn *c;
 *     if (sm_conn_dial(&c, "tcp://127.0.0.1:7000", "len32be", 5000, NULL, 0) < 0) ...
 *     sm_conn_send(c, "ping", 4, SM_CONN_DEFAULT);
 *     sm_frame_msg m;
 *     if (sm_conn_recv(c, &m, SM_CONN_DEFAULT) == 1) use(m.data, m.len);
 *     sm_conn_free(c);
 *
 * Timeouts: each call takes timeout_ms (SM_FOREVER, 0 for "don't wait", or
 * ms) or SM_CONN_DEFAULT for the connection's default (SM_FOREVER unless set
 * with sm_conn_set_timeout). A timeout covers the whole call, also against a
 * peer that keeps sending without completing a message: once it has passed,
 * the call returns -ETIMEDOUT even if more bytes are queued (nothing is lost:
 * what was read stays buffered for the next call). With 0 a receive reads
 * what is queued without waiting, at most one buffer's worth (max plus a
 * read chunk) per call.
 *
 * Thread-safety: one thread may send while another receives; two threads
 * must not send (or receive) on one sm_conn at once.
 *
 * TLS (tls.h): sm_conn_dial on a tls:// endpoint, sm_conn_dial_tls with a
 * configuration, or sm_conn_new_tls on an accepted socket. The handshake
 * happens inside the call, within its timeout; then everything works as
 * over TCP, with these differences: sm_conn_shutdown sends close_notify
 * (then the TCP FIN) and reading goes on; sm_conn_free sends close_notify
 * if the kernel takes it at once; a peer's EOF without close_notify is
 * SM_ERR_TRUNCATED in the middle of a message (and with eof framing, whose
 * last message it may have cut), and SM_ERR_TLS_EOF at a message boundary
 * (returned instead of 0, so a caller decides whether to accept it); the
 * socket is made non-blocking. TLS errors are the SM_ERR_TLS_* codes, with
 * sm_conn_error_detail saying what OpenSSL said.
 */
#ifndef SOCKMSG_CONN_H
#define SOCKMSG_CONN_H

#include <sys/uio.h>

#include "api.h"
#include "error.h"
#include "frame.h"
#include "tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_conn sm_conn;

/* Use the connection's default timeout. */
#define SM_CONN_DEFAULT (-2)

/* sm_conn_new_take - wrap a connected stream socket (TCP or Unix) with a spec.
 * Takes ownership of fd: sm_conn_free closes it, and so does a failure here.
 * The spec is copied. The fd may be blocking or not. Returns 0 and sets *out,
 * or -ENOMEM / -EINVAL / SM_ERR_SPEC (an unchecked, bad spec). */
SM_API int sm_conn_new_take(sm_conn **out, int fd, const sm_frame_spec *spec);

/* sm_conn_dial - connect (sm_dial, with its address racing) and wrap.
 * spec is a spec string ("len32be", "line,max=4096"). Returns 0 or the error
 * of sm_frame_spec_parse / sm_dial_endpoint; `why` explains it when not NULL. */
SM_API int sm_conn_dial(sm_conn **out, const char *endpoint, const char *spec, int timeout_ms,
                        char *why, size_t why_len);

/* sm_conn_dial_tls - sm_conn_dial with TLS: connect to endpoint (tcp:// or
 * tls://: TLS either way), handshake as a client of cfg (verifying the
 * host of the endpoint unless cfg names another), wrap. timeout_ms covers
 * the connect and the handshake. cfg is referenced, not copied: reuse it
 * for session resumption. Returns 0 or the errors of sm_conn_dial and the
 * SM_ERR_TLS_* codes (`why`: "host name mismatch: cert is for ..."). */
SM_API int sm_conn_dial_tls(sm_conn **out, const char *endpoint, const char *spec,
                            sm_tls_config *cfg, int timeout_ms, char *why, size_t why_len);

/* sm_conn_new_tls - sm_conn_new_take, then a TLS handshake on fd within
 * timeout_ms: as a server when cfg is SM_TLS_SERVER (an accepted socket),
 * else as a client verifying `host` (NULL: the config's server name).
 * Takes fd, also on failure. Returns 0 or an error as sm_conn_dial_tls. */
SM_API int sm_conn_new_tls(sm_conn **out, int fd, const sm_frame_spec *spec, sm_tls_config *cfg,
                           const char *host, int timeout_ms, char *why, size_t why_len);

/* sm_conn_send_raw / sm_conn_recv_raw - bytes as they are, without the
 * spec's framing (a relay, a protocol of its own, an HTTP client), over
 * the connection's transport: encrypted over TLS. send_raw writes all of
 * buf[0..len) within timeout_ms and returns len or an error as
 * sm_conn_send; recv_raw returns what arrived (> 0, at most len), 0 at
 * EOF (TLS: the peer's close_notify), SM_ERR_TLS_EOF (TLS: EOF without
 * close_notify), -ETIMEDOUT, or an error. Do not mix recv_raw with
 * sm_conn_recv on one connection (the latter buffers ahead). */
SM_API ssize_t sm_conn_send_raw(sm_conn *c, const void *buf, size_t len, int timeout_ms);
SM_API ssize_t sm_conn_recv_raw(sm_conn *c, void *buf, size_t len, int timeout_ms);

/* sm_conn_tls_alpn - the ALPN protocol agreed (not NUL-terminated: *len
 * bytes), or NULL (none, or not TLS). */
SM_API const char *sm_conn_tls_alpn(const sm_conn *c, size_t *len);

/* sm_conn_tls_resumed - true when the TLS handshake resumed a session. */
SM_API bool sm_conn_tls_resumed(const sm_conn *c);

/* sm_conn_free - close the socket and free everything. NULL is a no-op. */
SM_API void sm_conn_free(sm_conn *c);

/* sm_conn_set_timeout - the default for calls given SM_CONN_DEFAULT. */
SM_API void sm_conn_set_timeout(sm_conn *c, int timeout_ms);

/* sm_conn_fd - the socket, still owned by the connection. */
SM_API int sm_conn_fd(const sm_conn *c);

/* sm_conn_send - send one message. Returns len, or an error: -EMSGSIZE or
 * -EINVAL when the spec cannot frame it or msg is NULL with len > 0 (nothing
 * sent), -ETIMEDOUT (part of
 * the message may have gone out: the stream is then unusable for framing and
 * should be closed), -EPIPE, -ECONNRESET. With eof framing a message is just
 * bytes; call sm_conn_shutdown after the last. */
SM_API ssize_t sm_conn_send(sm_conn *c, const void *msg, size_t len, int timeout_ms);

/* sm_conn_sendv - send one message made of iovcnt pieces (at most
 * IOV_MAX - 2; -EINVAL past that, or for a piece with a NULL base and a
 * nonzero length), without joining them. Returns the payload length or an
 * error as sm_conn_send. */
SM_API ssize_t sm_conn_sendv(sm_conn *c, const struct iovec *iov, int iovcnt, int timeout_ms);

/* sm_conn_send_type - send one message of a type: spec with type byte `type`
 * (which the spec must map; -EPROTO otherwise). sm_conn_send on a type: spec
 * fails with -EPROTO: the type byte is part of every message there. */
SM_API ssize_t sm_conn_send_type(sm_conn *c, int type, const void *msg, size_t len, int timeout_ms);

/* sm_conn_recv - receive the next whole message into *msg.
 * Returns 1 with *msg set: its bytes are borrowed from the connection's buffer
 * and valid until the next sm_conn_recv or sm_conn_free. Returns 0 at a clean
 * EOF (the peer shut down at a message boundary; with eof framing the final
 * message comes first with 1, then 0). Errors: -ETIMEDOUT (nothing lost: call
 * again), SM_ERR_TRUNCATED (peer closed mid-message), -EMSGSIZE / -EPROTO (bad
 * frame; see sm_conn_error_detail; the connection should be closed),
 * -ECONNRESET, ... */
SM_API int sm_conn_recv(sm_conn *c, sm_frame_msg *msg, int timeout_ms);

/* sm_conn_shutdown - half-close after the last message: the peer sees EOF;
 * sm_conn_recv still works. Returns 0 or -errno. */
SM_API int sm_conn_shutdown(sm_conn *c);

/* sm_conn_error_detail - a human-readable explanation of the last framing
 * error ("length 9999999 exceeds max 1048576 ..."), or "" if none. Valid until
 * the next call on c. */
SM_API const char *sm_conn_error_detail(sm_conn *c);

/* sm_conn_skipped - messages discarded under oversize=skip so far. */
SM_API uint64_t sm_conn_skipped(const sm_conn *c);

#ifdef __cplusplus
}
#endif

#endif
