/**
 * @file
 * @brief Blocking socket helpers with deadlines.
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
 * @threads All functions are thread-safe in the sense of the underlying
 * syscalls: two threads must not use the same fd in the same direction at
 * once.
 *
 * @callbacks These calls block (up to their timeout): in an event loop's
 * callbacks use a loop-driven sm_stream (stream.h) instead, or a timeout of
 * 0.
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

/**
 * Socket options. All-zero means the defaults: TCP_NODELAY on, no keepalive,
 * no TCP_USER_TIMEOUT, the kernel's buffer sizes. Options that do not apply
 * (TCP options on a Unix socket) are ignored.
 */
typedef struct sm_sock_opts {
    int nodelay;           /**< TCP_NODELAY: 0 default (on), 1 on, -1 off */
    bool keepalive;        /**< enable SO_KEEPALIVE with the three values below */
    int keepalive_idle_s;  /**< TCP_KEEPIDLE seconds (0: kernel default) */
    int keepalive_intvl_s; /**< TCP_KEEPINTVL seconds (0: kernel default) */
    int keepalive_cnt;     /**< TCP_KEEPCNT probes (0: kernel default) */
    int user_timeout_ms;   /**< TCP_USER_TIMEOUT (0: not set) */
    int sndbuf;            /**< SO_SNDBUF bytes (0: not set) */
    int rcvbuf;            /**< SO_RCVBUF bytes (0: not set) */
} sm_sock_opts;

/**
 * Apply socket options to a connected or listening socket.
 *
 * @param fd    the socket (still the caller's)
 * @param opts  the options; NULL for the defaults
 * @retval 0       every option set
 * @retval -errno  the error of the first option that failed (later ones are
 *                 not tried), or of finding the socket's domain (-ENOTSOCK)
 */
SM_API int sm_sock_set_opts(int fd, const sm_sock_opts *opts);

/**
 * Set or clear O_NONBLOCK.
 *
 * @param fd  the file descriptor
 * @param on  true to set, false to clear
 * @retval 0       done
 * @retval -errno  fcntl(2) failed (-EBADF)
 */
SM_API int sm_sock_set_nonblock(int fd, bool on);

/**
 * Connect to an endpoint string, within timeout_ms for the whole attempt
 * (resolution, connects, races).
 *
 * When a name resolves to several addresses, they are raced as RFC 8305
 * (Happy Eyeballs v2) describes: IPv6 first, the next attempt started 250 ms
 * later while earlier ones are still pending (or at once when one fails),
 * the first success wins and the others are closed. If all fail, the error
 * returned is the most meaningful one seen (a refusal or unreachable over a
 * timeout). Default options (TCP_NODELAY) are applied. Name resolution is
 * getaddrinfo(3), which cannot be interrupted: a slow resolver can take the
 * call past its deadline.
 *
 * @param endpoint    an endpoint string (endpoint.h)
 * @param timeout_ms  the deadline for the whole call (SM_FOREVER, or ms)
 * @return a connected, blocking, close-on-exec fd the caller owns (close(2)
 *         it), or an error: SM_ERR_ENDPOINT, SM_ERR_RESOLVE, -ETIMEDOUT,
 *         -ECONNREFUSED, -ENETUNREACH, -ENOENT (Unix path missing), ...
 */
SM_API int sm_dial(const char *endpoint, int timeout_ms);

/**
 * sm_dial() with a parsed endpoint and options.
 *
 * @param ep          the endpoint
 * @param opts        socket options for the new socket; NULL for the defaults
 * @param timeout_ms  the deadline for the whole call
 * @param why         NULL, or a buffer for a one-line explanation of an error
 * @param why_len     the size of @p why
 * @return the connected fd (the caller's), or an error as sm_dial()
 *         (-EINVAL for a NULL ep)
 */
SM_API int sm_dial_endpoint(const sm_endpoint *ep, const sm_sock_opts *opts, int timeout_ms,
                            char *why, size_t why_len);

/**
 * Bind and listen on an endpoint string.
 *
 * TCP: SO_REUSEADDR; "*" listens dual-stack (IPv6 socket with IPV6_V6ONLY off,
 * IPv4 any address if the host has no IPv6). Unix path: an existing socket
 * file is removed only if nobody is listening on it (a stale file left by a
 * dead server); a live socket gives -EADDRINUSE, and a file that is not a
 * socket is never removed (-EEXIST).
 *
 * @param endpoint  an endpoint string (endpoint.h)
 * @param backlog   the listen(2) backlog; <= 0 means SOMAXCONN
 * @return the listening fd (blocking, close-on-exec, the caller's), or an
 *         error: SM_ERR_ENDPOINT, SM_ERR_RESOLVE, -EADDRINUSE, -EEXIST,
 *         -EACCES, ...
 */
SM_API int sm_listen(const char *endpoint, int backlog);

/**
 * sm_listen() with a parsed endpoint and options.
 *
 * @param ep       the endpoint
 * @param opts     socket options for the listening socket; NULL for the
 *                 defaults
 * @param backlog  the listen(2) backlog; <= 0 means SOMAXCONN
 * @param bound    NULL, or receives the address actually bound (port 0
 *                 resolved)
 * @param why      NULL, or a buffer for a one-line explanation of an error
 * @param why_len  the size of @p why
 * @return the listening fd (the caller's), or an error as sm_listen()
 *         (-EINVAL for a NULL ep)
 */
SM_API int sm_listen_endpoint(const sm_endpoint *ep, const sm_sock_opts *opts, int backlog,
                              sm_endpoint *bound, char *why, size_t why_len);

/**
 * The local (bound) endpoint of a socket: how a caller learns the port the
 * kernel chose for port 0.
 *
 * @param fd   the socket
 * @param out  receives the endpoint
 * @retval 0       done
 * @retval -errno  getsockname(2) failed, or an error of
 *                 sm_addr_to_endpoint(); -EINVAL for a NULL out
 */
SM_API int sm_sock_local(int fd, sm_endpoint *out);

/**
 * The peer's endpoint of a connected socket.
 *
 * @param fd   the socket
 * @param out  receives the endpoint
 * @retval 0       done
 * @retval -errno  getpeername(2) failed (-ENOTCONN), or an error of
 *                 sm_addr_to_endpoint(); -EINVAL for a NULL out
 */
SM_API int sm_sock_peer(int fd, sm_endpoint *out);

/**
 * Accept one connection within timeout_ms.
 *
 * Works on a blocking or non-blocking listening fd (share a listener between
 * threads only in non-blocking mode: another thread taking the connection
 * between the wait and the accept blocks a blocking one). Transient errors the
 * kernel reports for an already-aborted connection (ECONNABORTED, EPROTO) are
 * skipped and the wait goes on.
 *
 * @param listen_fd   the listening socket
 * @param timeout_ms  the deadline (SM_FOREVER, 0, or ms)
 * @param peer        NULL, or receives the peer's address
 * @return the new fd (blocking, close-on-exec, TCP_NODELAY on for TCP; the
 *         caller's), or an error: -ETIMEDOUT, -EMFILE, -ENFILE, ...
 */
SM_API int sm_accept(int listen_fd, int timeout_ms, sm_addr *peer);

/**
 * Send all len bytes, looping over partial sends, EINTR and EAGAIN, within
 * timeout_ms.
 *
 * @param fd          a connected socket
 * @param buf         the bytes (may be NULL when len is 0)
 * @param len         how many
 * @param timeout_ms  the deadline for the whole call
 * @param done        NULL, or always receives the number of bytes actually
 *                    sent, also on error, so nothing is lost track of
 * @return len, or an error: -ETIMEDOUT, -EPIPE, -ECONNRESET, ...; -EINVAL
 *         for a NULL buf with len > 0 or len > SSIZE_MAX
 */
SM_API ssize_t sm_send_all(int fd, const void *buf, size_t len, int timeout_ms, size_t *done);

/**
 * Gather-send every byte of iov[0..iovcnt) with writev-style calls (sendmsg,
 * MSG_NOSIGNAL), advancing correctly across iovecs on partial sends.
 *
 * @param fd          a connected socket
 * @param iov         the pieces; not modified
 * @param iovcnt      how many (may exceed IOV_MAX)
 * @param timeout_ms  the deadline for the whole call
 * @param done        as for sm_send_all()
 * @return the total, or an error as sm_send_all(); -EINVAL for a negative
 *         iovcnt, a NULL iov with iovcnt > 0, or a total over SSIZE_MAX
 */
SM_API ssize_t sm_sendv_all(int fd, const struct iovec *iov, int iovcnt, int timeout_ms,
                            size_t *done);

/**
 * Receive exactly len bytes within timeout_ms.
 *
 * @param fd          a connected socket
 * @param buf         receives the bytes
 * @param len         how many
 * @param timeout_ms  the deadline for the whole call
 * @param done        NULL, or receives the number of bytes stored in buf, also
 *                    on error
 * @return len; 0 when the peer closed cleanly before the first byte (a clean
 *         EOF at a message boundary; len > 0); or an error:
 * @retval SM_ERR_TRUNCATED  the peer closed after some but not all bytes
 * @retval -ETIMEDOUT        the deadline passed (see done)
 * @retval -EINVAL           a NULL buf with len > 0, or len > SSIZE_MAX
 * @retval -errno            -ECONNRESET, ...
 */
SM_API ssize_t sm_recv_exact(int fd, void *buf, size_t len, int timeout_ms, size_t *done);

/**
 * Receive between 1 and len bytes: whatever is available, after waiting up to
 * timeout_ms for the first.
 *
 * @param fd          a connected socket
 * @param buf         receives the bytes
 * @param len         its size (at least 1)
 * @param timeout_ms  the deadline
 * @return the count, 0 at EOF, or an error: -ETIMEDOUT, -ECONNRESET, ...;
 *         -EINVAL for a NULL buf or len 0
 */
SM_API ssize_t sm_recv_some(int fd, void *buf, size_t len, int timeout_ms);

/**
 * Half-close: tell the peer "I will send no more" (FIN) while still reading
 * its reply.
 *
 * @param fd  a connected socket
 * @retval 0       done
 * @retval -errno  shutdown(2) failed (-ENOTCONN, -EBADF)
 */
SM_API int sm_shutdown_write(int fd);

#ifdef __cplusplus
}
#endif

#endif
