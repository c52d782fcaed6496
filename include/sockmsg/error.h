/**
 * @file
 * @brief Error codes and their messages.
 *
 * Every function that can fail returns a negative value on error: either a
 * negated errno (-ETIMEDOUT, -ECONNRESET, -EMSGSIZE for an oversized frame,
 * -EPROTO for a malformed one, -EPIPE, ...) or one of the library codes of
 * ::sm_err. Library codes sit below -4095, outside the kernel's errno range,
 * so the two never collide, and above SM_ERR_BASE - 4096 (-8192): values from
 * -8192 down are never returned by the library and are free for an
 * application's own codes (sm_strerror() calls them "unknown error").
 *
 * @threads Every function here is thread-safe and callable from any callback.
 */
#ifndef SOCKMSG_ERROR_H
#define SOCKMSG_ERROR_H

#include "api.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The library's codes are SM_ERR_BASE - 1, SM_ERR_BASE - 2, ... */
#define SM_ERR_BASE (-4096)

/**
 * The library's error codes as an X-macro: X(name, value, message).
 *
 * One table gives ::sm_err, sm_strerror() and sm_err_name(); expand it with
 * your own X to map the codes elsewhere (a language binding, a test). Append
 * only; values are part of the ABI. SM_ERR_BASE - 10 is retired (it was
 * SM_ERR_HTTP, now the sockmsg tool's own code): the next code is
 * SM_ERR_BASE - 23.
 *
 * The TLS codes (SM_ERR_BASE - 11 to - 19) name what a user can act on; the
 * detail string (sm_conn_error_detail, sm_stream_detail, `why`) adds
 * OpenSSL's own reason and the names involved.
 */
#define SM_ERR_TABLE(X)                                                                            \
    X(SM_ERR_TRUNCATED, SM_ERR_BASE - 1, "peer closed in the middle of a message")                 \
    X(SM_ERR_RESOLVE, SM_ERR_BASE - 2, "host name could not be resolved")                          \
    X(SM_ERR_ENDPOINT, SM_ERR_BASE - 3, "malformed endpoint")                                      \
    X(SM_ERR_SPEC, SM_ERR_BASE - 4, "malformed frame spec")                                        \
    X(SM_ERR_FORMAT, SM_ERR_BASE - 5, "malformed pack format")                                     \
    X(SM_ERR_CLOSED, SM_ERR_BASE - 6, "object is closed")                                          \
    X(SM_ERR_SLOW_CONSUMER, SM_ERR_BASE - 7, "peer does not read: output queue limit reached")     \
    X(SM_ERR_HEARTBEAT, SM_ERR_BASE - 8, "heartbeat lost: peer silent too long")                   \
    X(SM_ERR_LIMIT, SM_ERR_BASE - 9, "configured limit reached")                                   \
    X(SM_ERR_TLS_UNAVAILABLE, SM_ERR_BASE - 11,                                                    \
      "built without TLS (OpenSSL 3 not found at build time)")                                     \
    X(SM_ERR_TLS, SM_ERR_BASE - 12, "TLS failure")                                                 \
    X(SM_ERR_TLS_NOT_TLS, SM_ERR_BASE - 13, "not TLS (plain HTTP on a TLS port?)")                 \
    X(SM_ERR_TLS_VERIFY, SM_ERR_BASE - 14, "peer certificate rejected")                            \
    X(SM_ERR_TLS_EXPIRED, SM_ERR_BASE - 15, "certificate has expired")                             \
    X(SM_ERR_TLS_HOSTNAME, SM_ERR_BASE - 16,                                                       \
      "host name mismatch: certificate is for another name")                                       \
    X(SM_ERR_TLS_UNKNOWN_CA, SM_ERR_BASE - 17,                                                     \
      "unknown CA: certificate not signed by a trusted CA")                                        \
    X(SM_ERR_TLS_ALPN, SM_ERR_BASE - 18, "no ALPN protocol in common with the peer")               \
    X(SM_ERR_TLS_EOF, SM_ERR_BASE - 19,                                                            \
      "peer closed without TLS close_notify (possible truncation)")                                \
    X(SM_ERR_BACKEND, SM_ERR_BASE - 20,                                                            \
      "unknown loop backend in $SOCKMSG_BACKEND (use epoll, poll or io_uring)")                    \
    X(SM_ERR_FDS_TRUNCATED, SM_ERR_BASE - 21,                                                      \
      "file descriptors lost: the peer sent more than the receive cap at once")                    \
    X(SM_ERR_DETACHED, SM_ERR_BASE - 22, "socket handed off (detached)")

/**
 * The library's own error codes, returned negated like errno values (they
 * are negative already: compare with `rc == SM_ERR_TRUNCATED`).
 */
enum sm_err {
#define SM__ERR_ENUM(name, value, msg) name = (value),
    SM_ERR_TABLE(SM__ERR_ENUM)
#undef SM__ERR_ENUM
};

/**
 * @var SM_ERR_TRUNCATED
 * The peer closed in the middle of a message: its EOF came after some but
 * not all bytes of a frame (sm_recv_exact(), sm_frame_decode_eof(),
 * sm_conn_recv(), a stream's or a server connection's close reason, or an
 * EOF before a whole PROXY header).
 *
 * @var SM_ERR_RESOLVE
 * A host name could not be resolved (getaddrinfo failed); the functions that
 * take a `why` buffer put the resolver's message there.
 *
 * @var SM_ERR_ENDPOINT
 * A malformed endpoint string (sm_endpoint_parse() explains what is wrong).
 *
 * @var SM_ERR_SPEC
 * A malformed frame spec string, or a hand-filled ::sm_frame_spec that fails
 * sm_frame_spec_check(); also options that a spec cannot serve (a ping that
 * the spec cannot frame, heartbeats with eof framing).
 *
 * @var SM_ERR_FORMAT
 * A malformed sm_pack() / sm_unpack() format string.
 *
 * @var SM_ERR_CLOSED
 * The object is closed or closing: a send, shutdown or close on a stream or
 * peer that is already closing, sm_io_start() after sm_io_close(),
 * sm_server_start() after sm_server_stop(); and the close reason after a
 * local sm_stream_close() or sm_peer_close().
 *
 * @var SM_ERR_SLOW_CONSUMER
 * The peer does not read: a send would take the output queue past its
 * limit (max_queued), or a blocking send to a server peer timed out; the
 * connection is closed with this reason.
 *
 * @var SM_ERR_HEARTBEAT
 * Nothing arrived from the peer within heartbeat_timeout_ms: the close
 * reason of a stream or server connection.
 *
 * @var SM_ERR_LIMIT
 * A configured limit was reached. Reserved: no library function returns it
 * at present (the sockmsg tool's HTTP client uses it).
 *
 * @var SM_ERR_TLS_UNAVAILABLE
 * The library was built without TLS (OpenSSL 3 not found at build time):
 * every function of tls.h returns it, and tls:// endpoints fail with it.
 *
 * @var SM_ERR_TLS
 * A TLS failure that none of the more specific codes below names: OpenSSL
 * could not set up or load a file (sm_tls_config_new(),
 * sm_tls_config_set_ca(), sm_tls_config_set_cert()), the peer closed during
 * the handshake, sent an alert, or shares no TLS version with us; the
 * detail string gives OpenSSL's reason.
 *
 * @var SM_ERR_TLS_NOT_TLS
 * The peer does not speak TLS (plain HTTP on a TLS port, say): what arrived
 * is not a TLS record.
 *
 * @var SM_ERR_TLS_VERIFY
 * A certificate was rejected for a reason other than the three below: ours
 * by the peer (its alert), the peer's by our verification, or a peer that
 * sent none where one is required (mutual TLS).
 *
 * @var SM_ERR_TLS_EXPIRED
 * The peer's certificate has expired.
 *
 * @var SM_ERR_TLS_HOSTNAME
 * Host name mismatch: the peer's certificate is for another name (or IP
 * address) than the one dialed; the detail names both.
 *
 * @var SM_ERR_TLS_UNKNOWN_CA
 * Unknown CA: the peer's certificate (or self-signed chain) is not signed by
 * a CA in the trust store.
 *
 * @var SM_ERR_TLS_ALPN
 * No ALPN protocol in common with the peer (sm_tls_config_set_alpn()): the
 * server picked none of ours, or the client offered none of the server's.
 *
 * @var SM_ERR_TLS_EOF
 * The peer closed after the handshake without a TLS close_notify (possible
 * truncation): returned at a message boundary instead of an EOF, so the
 * caller decides whether to accept it.
 *
 * @var SM_ERR_BACKEND
 * $SOCKMSG_BACKEND names no loop backend: from sm_loop_new() with
 * SM_BACKEND_DEFAULT, and so from sm_server_new().
 *
 * @var SM_ERR_FDS_TRUNCATED
 * File descriptors were lost: a peer sent more in one sendmsg(2) than the
 * receive cap (sm_conn_enable_fds()) holds, and the kernel truncated the
 * control data (MSG_CTRUNC). The fds that did arrive are closed; the error
 * is sticky: close the connection.
 *
 * @var SM_ERR_DETACHED
 * Not a failure: the on_close reason of a stream whose socket was handed
 * off with sm_stream_detach() (or a server peer's, sm_peer_detach()); the
 * socket and the bytes read ahead went to the detach callback.
 */

/**
 * A human-readable message for any code this library returns.
 *
 * Unlike strerror(3), it never writes a shared buffer, so it is thread-safe.
 *
 * @param err  a negative error (library code or negated errno)
 * @return a static string, never NULL: "success" for a non-negative value,
 *         "unknown error" for an unknown code
 */
SM_API const char *sm_strerror(int err);

/**
 * The symbolic name of a code, for logs and test failure messages.
 *
 * @param err  a negative error (library code or negated errno)
 * @return a static string, never NULL: "ETIMEDOUT", "SM_ERR_TRUNCATED", ...;
 *         "OK" for a value >= 0, "E?" for an unknown code
 */
SM_API const char *sm_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif
