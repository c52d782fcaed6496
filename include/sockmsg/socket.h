/* sockmsg — blocking socket helpers with deadlines.
 *
 * Every fd these functions create is close-on-exec. No function here ever
 * raises SIGPIPE (sends use MSG_NOSIGNAL). Timeouts are in milliseconds and
 * cover the whole call: SM_FOREVER waits forever, 0 tries once without
 * waiting (moving whatever the kernel can take or give right now). A timeout
 * > 0 holds also against a peer that never lets the call wait (a sender that
 * keeps bytes coming, a reader that keeps draining): once it has passed, the
 * call returns -ETIMEDOUT at its next round even if more bytes are ready, and
 * `done` reports what was moved. A signal interrupting a wait (EINTR) never
 * fails a call: it goes on with the time that is left.
 *
 * The fd-level I/O functions work on blocking and non-blocking fds alike: they
 * wait with poll(2) when the kernel says EAGAIN.
 *
 * All functions are thread-safe in the sense of the underlying syscalls: two
 * threads must not use the same fd in the same direction at once.
 */
#ifndef SOCKMSG_SOCKET_H
#define SOCKMSG_SOCKET_H

#include <sys/uio.h>

#include "api.h"
#include "error.h"
#include "endpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Socket options. All-zero means the defaults: TCP_NODELAY on, no keepalive,
 * no TCP_USER_TIMEOUT, the kernel's buffer sizes. Options that do not apply
 * (TCP options on a Unix socket) are ignored. */
typedef struct sm_sock_opts {
    int nodelay;          /* 0: default (on), 1: on, -1: off */
    bool keepalive;       /* enable SO_KEEPALIVE with the three values below */
    int keepalive_idle_s; /* TCP_KEEPIDLE (0: kernel default) */
    int keepalive_intvl_s;
    int keepalive_cnt;
    int user_timeout_ms; /* TCP_USER_TIMEOUT (0: not set) */
    int sndbuf;          /* SO_SNDBUF bytes (0: not set) */
    int rcvbuf;          /* SO_RCVBUF bytes (0: not set) */
} sm_sock_opts;

/* sm_sock_set_opts - apply *opts (NULL: defaults) to a connected or listening
 * socket. Returns 0 or -errno of the first option that failed. */
SM_API int sm_sock_set_opts(int fd, const sm_sock_opts *opts);

/* sm_sock_set_nonblock - set or clear O_NONBLOCK. Returns 0 or -errno. */
SM_API int sm_sock_set_nonblock(int fd, bool on);

/* sm_dial - connect to an endpoint string, within timeout_ms for the whole
 * attempt (resolution, connects, races). Returns a connected, blocking fd the
 * caller owns (close(2) it), or an error: SM_ERR_ENDPOINT, SM_ERR_RESOLVE,
 * -ETIMEDOUT, -ECONNREFUSED, -ENETUNREACH, -ENOENT (Unix path missing), ...
 *
 * When a name resolves to several addresses, they are raced as RFC 8305
 * (Happy Eyeballs v2) describes: IPv6 first, the next attempt started 250 ms
 * later while earlier ones are still pending (or at once when one fails),
 * the first success wins and the others are closed. If all fail, the error
 * returned is the most meaningful one seen (a refusal or unreachable over a
 * timeout). Default options (TCP_NODELAY) are applied. */
SM_API int sm_dial(const char *endpoint, int timeout_ms);

/* sm_dial_endpoint - sm_dial with a parsed endpoint and options (NULL:
 * defaults). `why`, when not NULL, receives a one-line explanation of an error. */
SM_API int sm_dial_endpoint(const sm_endpoint *ep, const sm_sock_opts *opts, int timeout_ms,
                            char *why, size_t why_len);

/* sm_listen - bind and listen on an endpoint string. Returns the listening fd
 * (blocking, close-on-exec, caller owns it) or an error.
 *
 * TCP: SO_REUSEADDR; "*" listens dual-stack (IPv6 socket with IPV6_V6ONLY off,
 * IPv4 any address if the host has no IPv6). Unix path: an existing socket
 * file is removed only if nobody is listening on it (a stale file left by a
 * dead server); a live socket gives -EADDRINUSE, and a file that is not a
 * socket is never removed (-EEXIST). backlog <= 0 means SOMAXCONN. */
SM_API int sm_listen(const char *endpoint, int backlog);

/* sm_listen_endpoint - sm_listen with a parsed endpoint and options; if
 * `bound` is not NULL it receives the address actually bound (port 0
 * resolved). */
SM_API int sm_listen_endpoint(const sm_endpoint *ep, const sm_sock_opts *opts, int backlog,
                              sm_endpoint *bound, char *why, size_t why_len);

/* sm_sock_local - the local (bound) endpoint of a socket: how a caller learns
 * the port the kernel chose for port 0. Returns 0 or -errno. */
SM_API int sm_sock_local(int fd, sm_endpoint *out);

/* sm_sock_peer - the peer's endpoint of a connected socket. Returns 0 or -errno. */
SM_API int sm_sock_peer(int fd, sm_endpoint *out);

/* sm_accept - accept one connection within timeout_ms. Returns the new fd
 * (blocking, close-on-exec, TCP_NODELAY on for TCP; caller owns it) or
 * -ETIMEDOUT, -EMFILE, ... ; `peer`, when not NULL, receives the peer's
 * address. Works on a blocking or non-blocking listening fd. Transient errors
 * the kernel reports for an already-aborted connection (ECONNABORTED, EPROTO)
 * are skipped and the wait goes on. */
SM_API int sm_accept(int listen_fd, int timeout_ms, sm_addr *peer);

/* sm_send_all - send all len bytes, looping over partial sends, EINTR and
 * EAGAIN, within timeout_ms. Returns len, or an error (-ETIMEDOUT, -EPIPE,
 * -ECONNRESET, ...). `done`, when not NULL, always receives the number of
 * bytes actually sent, also on error, so nothing is lost track of. */
SM_API ssize_t sm_send_all(int fd, const void *buf, size_t len, int timeout_ms, size_t *done);

/* sm_sendv_all - gather-send every byte of iov[0..iovcnt) with writev-style
 * calls (sendmsg, MSG_NOSIGNAL), advancing correctly across iovecs on partial
 * sends. The caller's iov array is not modified. iovcnt may exceed IOV_MAX.
 * Returns the total or an error; `done` as for sm_send_all. */
SM_API ssize_t sm_sendv_all(int fd, const struct iovec *iov, int iovcnt, int timeout_ms,
                            size_t *done);

/* sm_recv_exact - receive exactly len bytes within timeout_ms.
 * Returns len; 0 when the peer closed cleanly before the first byte (a clean
 * EOF at a message boundary; len > 0); SM_ERR_TRUNCATED when the peer closed
 * after some but not all bytes; -ETIMEDOUT, -ECONNRESET, ... `done`, when not
 * NULL, receives the number of bytes stored in buf, also on error. */
SM_API ssize_t sm_recv_exact(int fd, void *buf, size_t len, int timeout_ms, size_t *done);

/* sm_recv_some - receive between 1 and len bytes: whatever is available, after
 * waiting up to timeout_ms for the first. Returns the count, 0 at EOF, or an
 * error (-ETIMEDOUT, ...). */
SM_API ssize_t sm_recv_some(int fd, void *buf, size_t len, int timeout_ms);

/* sm_shutdown_write - half-close: tell the peer "I will send no more" (FIN)
 * while still reading its reply. Returns 0 or -errno. */
SM_API int sm_shutdown_write(int fd);

#ifdef __cplusplus
}
#endif

#endif
