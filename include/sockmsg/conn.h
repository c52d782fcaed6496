/**
 * @file
 * @brief Blocking message connection: the HOWTO's MySocket, done right.
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
 * @code
 *     sm_conn *c;
 *     if (sm_conn_dial(&c, "tcp://127.0.0.1:7000", "len32be", 5000, NULL, 0) < 0) ...
 *     sm_conn_send(c, "ping", 4, SM_CONN_DEFAULT);
 *     sm_frame_msg m;
 *     if (sm_conn_recv(c, &m, SM_CONN_DEFAULT) == 1) use(m.data, m.len);
 *     sm_conn_free(c);
 * @endcode
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
 *
 * @threads One thread may send while another receives; two threads must not
 * send (or receive) on one sm_conn at once, and sm_conn_free() must not race
 * with any other call on it. Distinct connections are independent.
 *
 * @callbacks The calls block (up to their timeout): not for an event loop's
 * callbacks (use sm_stream, stream.h).
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

/** A blocking message connection (opaque). */
typedef struct sm_conn sm_conn;

/** As a timeout_ms: use the connection's default (sm_conn_set_timeout()). */
#define SM_CONN_DEFAULT (-2)

/**
 * Wrap a connected stream socket (TCP or Unix) with a frame spec.
 *
 * Takes ownership of fd: sm_conn_free() closes it, and so does a failure
 * here. The fd may be blocking or not.
 *
 * @param out   receives the connection
 * @param fd    the connected socket, now the connection's
 * @param spec  the framing; copied
 * @retval 0            *out is set
 * @retval -EINVAL      NULL out or spec, or fd < 0
 * @retval SM_ERR_SPEC  the spec fails sm_frame_spec_check()
 * @retval -ENOMEM      out of memory
 */
SM_API int sm_conn_new_take(sm_conn **out, int fd, const sm_frame_spec *spec);

/**
 * Connect (sm_dial(), with its address racing) and wrap.
 *
 * @param out         receives the connection
 * @param endpoint    an endpoint string (endpoint.h)
 * @param spec        a spec string ("len32be", "line,max=4096"; frame.h)
 * @param timeout_ms  the deadline for connecting (resolution included)
 * @param why         NULL, or a buffer for a one-line explanation of an error
 * @param why_len     the size of @p why
 * @return 0 with *out set, or the error of sm_frame_spec_parse(),
 *         sm_endpoint_parse(), sm_dial_endpoint() or sm_conn_new_take()
 */
SM_API int sm_conn_dial(sm_conn **out, const char *endpoint, const char *spec, int timeout_ms,
                        char *why, size_t why_len);

/**
 * sm_conn_dial() with TLS: connect, handshake as a client of cfg, wrap.
 *
 * The endpoint may be tcp:// or tls://: TLS either way. The handshake
 * verifies the host of the endpoint unless cfg names another
 * (sm_tls_config_set_server_name()).
 *
 * @param out         receives the connection
 * @param endpoint    a tcp:// or tls:// endpoint string (endpoint.h)
 * @param spec        a spec string (frame.h)
 * @param cfg         an SM_TLS_CLIENT configuration (tls.h); referenced, not
 *                    copied: reuse it for session resumption
 * @param timeout_ms  the deadline for the connect and the handshake together
 * @param why         NULL, or a buffer for a one-line explanation of an error
 *                    ("host name mismatch: cert is for ...")
 * @param why_len     the size of @p why
 * @return 0 with *out set, or the errors of sm_conn_dial() (-EINVAL also for
 *         a NULL cfg, SM_ERR_ENDPOINT for an endpoint that is not TCP) and
 *         the SM_ERR_TLS_* codes
 */
SM_API int sm_conn_dial_tls(sm_conn **out, const char *endpoint, const char *spec,
                            sm_tls_config *cfg, int timeout_ms, char *why, size_t why_len);

/**
 * sm_conn_new_take(), then a TLS handshake on fd within timeout_ms.
 *
 * Takes ownership of fd, also on failure.
 *
 * @param out         receives the connection
 * @param fd          the connected socket, now the connection's
 * @param spec        the framing; copied
 * @param cfg         the configuration (tls.h): SM_TLS_SERVER handshakes as a
 *                    server (an accepted socket), else as a client
 * @param host        a client's host to verify; NULL: the config's server
 *                    name. Not used by a server
 * @param timeout_ms  the deadline for the handshake
 * @param why         NULL, or a buffer for a one-line explanation of an error
 * @param why_len     the size of @p why
 * @return 0 with *out set, or an error as sm_conn_dial_tls() (-EINVAL for a
 *         NULL cfg; the errors of sm_conn_new_take())
 */
SM_API int sm_conn_new_tls(sm_conn **out, int fd, const sm_frame_spec *spec, sm_tls_config *cfg,
                           const char *host, int timeout_ms, char *why, size_t why_len);

/**
 * Send bytes as they are, without the spec's framing (a relay, a protocol
 * of its own, an HTTP client), over the connection's transport: encrypted
 * over TLS.
 *
 * @param c           the connection
 * @param buf         the bytes (may be NULL when len is 0)
 * @param len         how many: all of buf[0..len) is written
 * @param timeout_ms  as for sm_conn_send()
 * @return len, or an error as sm_conn_send() (-EINVAL for a NULL c, or a
 *         NULL buf with len > 0)
 */
SM_API ssize_t sm_conn_send_raw(sm_conn *c, const void *buf, size_t len, int timeout_ms);

/**
 * Receive bytes as they arrive, without the spec's framing, over the
 * connection's transport (decrypted over TLS). Do not mix with
 * sm_conn_recv() on one connection (the latter buffers ahead).
 *
 * @param c           the connection
 * @param buf         where the bytes go
 * @param len         its size: at most this many are returned
 * @param timeout_ms  as for sm_conn_recv()
 * @return what arrived (> 0, at most len), or:
 * @retval 0               EOF (TLS: the peer's close_notify)
 * @retval SM_ERR_TLS_EOF  TLS: EOF without close_notify
 * @retval -ETIMEDOUT      nothing arrived in time
 * @retval -EINVAL         a NULL c or buf, or len 0
 * @retval <0              another error (a negated errno, an SM_ERR_TLS_* code)
 */
SM_API ssize_t sm_conn_recv_raw(sm_conn *c, void *buf, size_t len, int timeout_ms);

/**
 * The ALPN protocol agreed in the TLS handshake.
 *
 * @param c    the connection
 * @param len  NULL, or receives the protocol's length (0 when there is none)
 * @return the protocol, not NUL-terminated (*len bytes), or NULL (none, or
 *         not TLS)
 */
SM_API const char *sm_conn_tls_alpn(const sm_conn *c, size_t *len);

/**
 * Whether the TLS handshake resumed a session.
 *
 * @param c  the connection
 * @return true when it did; false otherwise, also for a connection that is
 *         not TLS
 */
SM_API bool sm_conn_tls_resumed(const sm_conn *c);

/**
 * Close the socket and free everything. Messages returned by sm_conn_recv()
 * are invalid afterwards.
 *
 * @param c  the connection, or NULL (a no-op)
 */
SM_API void sm_conn_free(sm_conn *c);

/**
 * Set the default timeout, used by calls given SM_CONN_DEFAULT.
 *
 * @param c           the connection
 * @param timeout_ms  SM_FOREVER (the initial default), 0, or milliseconds
 */
SM_API void sm_conn_set_timeout(sm_conn *c, int timeout_ms);

/**
 * The socket, still owned by the connection (do not close it; reading from
 * it behind the connection's back loses bytes).
 *
 * @param c  the connection
 * @return the fd
 */
SM_API int sm_conn_fd(const sm_conn *c);

/**
 * Send one message: header, payload and trailer in one gather write.
 *
 * With eof framing a message is just bytes; call sm_conn_shutdown() after
 * the last.
 *
 * @param c           the connection
 * @param msg         the payload (may be NULL when len is 0)
 * @param len         its length
 * @param timeout_ms  SM_CONN_DEFAULT, SM_FOREVER, 0, or milliseconds
 * @return len, or an error:
 * @retval -EMSGSIZE, -EINVAL  the spec cannot frame it (over max, a
 *                             delimiter inside a delimited payload), or msg
 *                             is NULL with len > 0: nothing sent
 * @retval -EPROTO     a type: spec (use sm_conn_send_type())
 * @retval -ETIMEDOUT  part of the message may have gone out: the stream is
 *                     then unusable for framing and should be closed
 * @retval -EPIPE, -ECONNRESET  the peer is gone
 */
SM_API ssize_t sm_conn_send(sm_conn *c, const void *msg, size_t len, int timeout_ms);

/**
 * Send one message made of iovcnt pieces, without joining them.
 *
 * @param c           the connection
 * @param iov         the pieces of the payload; not modified
 * @param iovcnt      how many: at most IOV_MAX - 2 (-EINVAL past that, or for
 *                    a piece with a NULL base and a nonzero length)
 * @param timeout_ms  as for sm_conn_send()
 * @return the payload length, or an error as sm_conn_send() (-ENOMEM for
 *         more than 6 pieces when memory runs out)
 */
SM_API ssize_t sm_conn_sendv(sm_conn *c, const struct iovec *iov, int iovcnt, int timeout_ms);

/**
 * Send one message of a type: spec. sm_conn_send() on a type: spec fails
 * with -EPROTO: the type byte is part of every message there.
 *
 * @param c           the connection
 * @param type        the type byte, which the spec must map (-EPROTO
 *                    otherwise)
 * @param msg         the payload after the type byte (may be NULL when len
 *                    is 0)
 * @param len         its length
 * @param timeout_ms  as for sm_conn_send()
 * @return len, or an error as sm_conn_send()
 */
SM_API ssize_t sm_conn_send_type(sm_conn *c, int type, const void *msg, size_t len, int timeout_ms);

/**
 * Send one message with the header bytes the sending spec does not compute
 * given by the caller (sm_frame_encode_hdr()): the offset= bytes before a
 * length field. With "len32be,offset=1,adjust=4" (PostgreSQL's messages
 * after the startup), sm_conn_send_hdr(c, "Q", 1, sql, n, t) sends 'Q', the
 * length n + 4, then sql. sm_conn_send() on such a spec sends the offset
 * bytes as zeros.
 *
 * For a type: spec, hdr starts with the type byte, then the selected
 * entry's offset bytes; for an entry without offset it is the type byte
 * alone, the same as sm_conn_send_type().
 *
 * @param c           the connection
 * @param hdr         the header bytes (may be NULL when hdr_len is 0)
 * @param hdr_len     exactly sm_frame_hdr_len() of the sending spec: the
 *                    spec's offset= (0 without one)
 * @param msg         the payload (may be NULL when len is 0)
 * @param len         its length
 * @param timeout_ms  as for sm_conn_send()
 * @return len, or an error as sm_conn_send(); nothing is sent for:
 * @retval -EINVAL  hdr_len is not what the spec wants, or a NULL hdr with
 *                  hdr_len > 0
 * @retval -EPROTO  a type: spec and hdr[0] is not a mapped type
 */
SM_API ssize_t sm_conn_send_hdr(sm_conn *c, const void *hdr, size_t hdr_len, const void *msg,
                                size_t len, int timeout_ms);

/**
 * Send a received message as it came: msg->frame, header and trailer
 * included, byte for byte (forwarding, or an echo), not re-encoded: the
 * sending spec must frame it the same way as the spec that received it.
 *
 * @param c           the connection
 * @param msg         a message from sm_conn_recv() (of any connection; it is
 *                    sent before this returns, so it may be c's own)
 * @param timeout_ms  as for sm_conn_send()
 * @return msg->frame_len, or an error as sm_conn_send():
 * @retval -EINVAL    a NULL c or msg, or a NULL frame with frame_len > 0
 * @retval -EMSGSIZE  msg->len exceeds the sending spec's max: nothing sent
 */
SM_API ssize_t sm_conn_send_frame(sm_conn *c, const sm_frame_msg *msg, int timeout_ms);

/**
 * Change the framing at a message boundary: rx for what is received from
 * now on, tx for what is sent. A connection starts with one spec for both
 * (sm_conn_new_take()); this sets them apart (PostgreSQL's StartupMessage
 * has no type byte; every later message has one) or changes them mid-stream
 * (a text banner, then binary messages).
 *
 * The boundary for rx is the end of the message sm_conn_recv() returned
 * last (which stays valid): bytes already read beyond it are decoded with
 * the new rx spec, however many arrived in the same read. tx applies to the
 * next send. Both specs are copied: nothing of the caller's is kept.
 * Threads: rx belongs to the receiving side and tx to the sending side (a
 * thread that receives while another sends changes rx only from the
 * former, tx only from the latter).
 *
 * @param c   the connection
 * @param rx  the receiving spec, or NULL to keep it
 * @param tx  the sending spec, or NULL to keep it
 * @retval 0            done
 * @retval -EINVAL      a NULL c
 * @retval SM_ERR_SPEC  rx or tx fails sm_frame_spec_check(): nothing changed
 * @retval -EBUSY       an oversized message is being discarded
 *                      (oversize=skip): not at a boundary, nothing changed
 * @retval -EMSGSIZE, -EPROTO  the receiving side already failed with this
 *                      framing error: nothing changed
 */
SM_API int sm_conn_set_spec(sm_conn *c, const sm_frame_spec *rx, const sm_frame_spec *tx);

/**
 * Take the socket and the bytes read ahead out of the connection, and free
 * it: a raw hand-off (STARTTLS to sm_conn_new_tls(), a splice, another
 * protocol's library).
 *
 * The bytes already read beyond the message sm_conn_recv() returned last
 * (pipelined by the peer after the switch) are handed back in *rest, in
 * order; what has not been read yet is still in the socket. Messages
 * returned by sm_conn_recv() are invalid afterwards. The fd keeps its flags
 * (blocking or not). With fd passing on (unix.h), file descriptors received
 * and not taken with sm_conn_take_fds() are closed.
 *
 * @param c         the connection; freed on success (not on an error)
 * @param fd        receives the socket, now the caller's to close
 * @param rest      receives a malloc'ed copy of the bytes read ahead (the
 *                  caller frees it), or NULL when there are none
 * @param rest_len  receives how many
 * @retval 0             done: c is gone
 * @retval -EINVAL       a NULL argument
 * @retval -EOPNOTSUPP   a TLS connection (its session cannot be handed over)
 * @retval -ENOMEM       out of memory for the copy: c is unchanged
 */
SM_API int sm_conn_detach(sm_conn *c, int *fd, uint8_t **rest, size_t *rest_len);

/**
 * Receive the next whole message into *msg.
 *
 * @param c           the connection
 * @param msg         receives the message: its bytes are borrowed from the
 *                    connection's buffer and valid until the next
 *                    sm_conn_recv() or sm_conn_free()
 * @param timeout_ms  as for sm_conn_send()
 * @retval 1  *msg is set
 * @retval 0  a clean EOF: the peer shut down at a message boundary (with eof
 *            framing the final message comes first with 1, then 0); later
 *            calls return 0 again
 * @retval -ETIMEDOUT        nothing lost: call again
 * @retval SM_ERR_TRUNCATED  the peer closed mid-message
 * @retval -EMSGSIZE, -EPROTO  a bad frame (see sm_conn_error_detail()); the
 *                           connection should be closed
 * @retval -EINVAL           a NULL argument
 * @retval -errno            -ECONNRESET, -ENOMEM, ...
 */
SM_API int sm_conn_recv(sm_conn *c, sm_frame_msg *msg, int timeout_ms);

/**
 * Half-close after the last message: the peer sees EOF; sm_conn_recv() still
 * works.
 *
 * @param c  the connection
 * @retval 0       done
 * @retval -errno  shutdown(2) failed; -EINVAL for NULL
 */
SM_API int sm_conn_shutdown(sm_conn *c);

/**
 * A human-readable explanation of the last framing error ("length 9999999
 * exceeds max 1048576 ..."), or "" if none.
 *
 * @param c  the connection
 * @return a string owned by c, valid until the next call on c
 */
SM_API const char *sm_conn_error_detail(sm_conn *c);

/**
 * The number of messages discarded under oversize=skip so far.
 *
 * @param c  the connection
 * @return the count
 */
SM_API uint64_t sm_conn_skipped(const sm_conn *c);

#ifdef __cplusplus
}
#endif

#endif
