/**
 * @file
 * @brief Unix sockets: file descriptors attached to messages, and the peer's
 *        credentials.
 *
 * Over a Unix stream socket (unix:// endpoints, socketpair(2)) a message can
 * carry open file descriptors (SCM_RIGHTS): a pipe, a socket, a memfd, a
 * file opened with rights the receiver lacks. sockmsg ties them to the
 * framing, so they arrive with the message they were sent with:
 *
 * @code
 *     // sender
 *     int p[2]; pipe(p);
 *     sm_conn_send_fds(c, "log", 3, &p[1], 1, SM_CONN_DEFAULT);
 *     close(p[1]);                    // the receiver holds its own copy
 *     // receiver
 *     sm_conn_enable_fds(c, 0);       // before the first receive
 *     sm_frame_msg m;
 *     if (sm_conn_recv(c, &m, SM_CONN_DEFAULT) == 1) {
 *         int fd;
 *         if (sm_conn_take_fds(c, &fd, 1) == 1) use(m.data, m.len, fd);
 *     }
 * @endcode
 *
 * Contract:
 * - Opt-in per connection on the receiving side: sm_conn_enable_fds(). A
 *   connection without it reads with plain recv(2), and any fds a peer
 *   sends it are closed by the kernel. Sending needs nothing enabled.
 * - Sending: the fds go in the same sendmsg(2) as the first byte of the
 *   message; when that call sends only part of the message, the rest
 *   follows without them (they are never sent twice).
 * - Receiving: fds belong to the message whose frame contains the bytes they
 *   arrived with. The kernel hands over a sendmsg's fds with the last byte
 *   of the read that reaches those bytes, and a read never spans two
 *   sendmsg calls' fds, so a message sent by sm_conn_send_fds() gets exactly
 *   its own fds, however the bytes are split or joined.
 * - Ownership: after sm_conn_recv() returns a message, sm_conn_take_fds()
 *   hands its fds to the caller; those not taken are closed by the next
 *   sm_conn_recv() or by sm_conn_free(). Fds that arrive with bytes no
 *   message claims (skipped by oversize=skip, or part of an incomplete
 *   message at EOF) are closed too, by the next receive or by
 *   sm_conn_free(): none is ever leaked.
 * - A per-message cap (max_fds, default ::SM_FDS_DEFAULT): fds beyond it
 *   in one message are closed. The receive control buffer holds max_fds
 *   fds, so a single sendmsg with more (a peer not using the cap) is
 *   truncated by the kernel (MSG_CTRUNC): the fds that did arrive are
 *   closed, the messages before the one that lost them are still returned,
 *   and the receive of that message fails with ::SM_ERR_FDS_TRUNCATED (with
 *   a detail from sm_conn_error_detail()), as does every later one: close
 *   the connection.
 * - Every received fd is close-on-exec (MSG_CMSG_CLOEXEC).
 * - Unix sockets only: TLS is -EINVAL, a TCP socket -EAFNOSUPPORT.
 *
 * @threads As for the connection (conn.h): the receive-side calls
 * (sm_conn_enable_fds(), sm_conn_take_fds()) belong to the receiving thread.
 */
#ifndef SOCKMSG_UNIX_H
#define SOCKMSG_UNIX_H

#include <sys/types.h>

#include "api.h"
#include "conn.h"
#include "server.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The kernel's limit on fds in one sendmsg(2) (SCM_MAX_FD). */
#define SM_FDS_MAX 253

/** The per-message cap when none is given. */
#define SM_FDS_DEFAULT 8

/** A peer's credentials (SO_PEERCRED), as the kernel reports them. */
typedef struct sm_cred {
    pid_t pid; /**< the peer's process (as seen from our PID namespace) */
    uid_t uid; /**< its effective user id */
    gid_t gid; /**< its effective group id */
} sm_cred;

/**
 * Receive fds with messages on this connection, at most max_fds per message.
 *
 * Call it before the message with fds arrives (before the first
 * sm_conn_recv() that could read its bytes); calling it again changes the
 * cap only while no fd is held (-EBUSY otherwise).
 *
 * @param c        the connection, over a Unix stream socket
 * @param max_fds  1 to ::SM_FDS_MAX, or 0 for ::SM_FDS_DEFAULT
 * @retval 0             done
 * @retval -EINVAL       NULL c, max_fds out of range, or a TLS connection
 * @retval -EAFNOSUPPORT the socket is not a Unix socket
 * @retval -EBUSY        a cap change while fds are held
 * @retval -ENOMEM       out of memory
 */
SM_API int sm_conn_enable_fds(sm_conn *c, int max_fds);

/**
 * sm_conn_send() with nfds open fds attached to the message.
 *
 * The kernel duplicates the fds into the receiver when they arrive: the
 * caller keeps its own and may close them as soon as this returns. Safe
 * while another thread receives (it touches no receive-side state).
 *
 * @param c           the connection, over a Unix stream socket
 * @param msg         the payload (may be NULL when len is 0)
 * @param len         its length; the frame must have at least one byte
 *                    (an empty message of eof framing cannot carry fds)
 * @param fds         the fds to pass (not closed)
 * @param nfds        how many: 0 (a plain send) to ::SM_FDS_MAX
 * @param timeout_ms  as for sm_conn_send()
 * @return len, or an error as sm_conn_send(), and:
 * @retval -EINVAL  nfds out of range, fds NULL with nfds > 0, an empty
 *                  frame, or fds over TLS
 * @retval -EAFNOSUPPORT  fds on a socket that is not a Unix socket
 * @retval -EBADF   one of the fds is not open: nothing was sent
 */
SM_API ssize_t sm_conn_send_fds(sm_conn *c, const void *msg, size_t len, const int *fds, int nfds,
                                int timeout_ms);

/**
 * Take the fds that came with the message sm_conn_recv() last returned.
 *
 * The fds are the caller's from now on (close-on-exec; clear FD_CLOEXEC to
 * hand one to a child). Those not taken, here or in another call before the
 * next receive, are closed by the next sm_conn_recv() or sm_conn_free().
 *
 * @param c    the connection
 * @param fds  receives up to cap fds, in the order they were sent
 * @param cap  the room in fds (> 0)
 * @return how many were stored (0: the message had none, or fd passing is
 *         not enabled), or -EINVAL for a NULL argument or cap <= 0
 */
SM_API int sm_conn_take_fds(sm_conn *c, int *fds, int cap);

/**
 * The credentials of the process that created the peer socket (connect(2),
 * listen(2) or socketpair(2)), from SO_PEERCRED: not necessarily the
 * process that sends now.
 *
 * @param c    the connection, over a Unix socket
 * @param out  receives pid, uid and gid
 * @retval 0             *out is set
 * @retval -EINVAL       a NULL argument, or a TLS connection
 * @retval -EAFNOSUPPORT the socket is not a Unix socket
 * @retval -errno        getsockopt(2) failed
 */
SM_API int sm_conn_peer_cred(const sm_conn *c, sm_cred *out);

/**
 * Learn the sender of each message (SCM_CREDENTIALS): turns SO_PASSCRED on
 * for the socket, and fd passing (sm_conn_enable_fds() with the default
 * cap) if not yet on.
 *
 * Call it before the messages arrive: bytes read before it have no known
 * sender. The kernel stamps every send with the sending process's
 * credentials (checked by the kernel: a process can only claim its own,
 * unless privileged), and never joins two senders' bytes in one read.
 *
 * @param c  the connection, over a Unix stream socket
 * @retval 0             done
 * @retval -EINVAL       NULL c or a TLS connection
 * @retval -EAFNOSUPPORT the socket is not a Unix socket
 * @retval -errno        setsockopt(2) failed; -ENOMEM
 */
SM_API int sm_conn_enable_cred(sm_conn *c);

/**
 * The credentials of the process that sent the message sm_conn_recv() last
 * returned (after sm_conn_enable_cred()).
 *
 * Several processes may share one socket (a forked child, an fd passed on):
 * each message names its own sender, unlike sm_conn_peer_cred().
 *
 * @param c    the connection
 * @param out  receives pid, uid and gid
 * @retval 1        *out is set
 * @retval 0        not known: credentials are not on, no message was
 *                  returned, its bytes came from more than one sender, or
 *                  they were sent while neither end had SO_PASSCRED (before
 *                  this side turned it on: the kernel attached none; a
 *                  sender that sets SO_PASSCRED on its own socket is always
 *                  known)
 * @retval -EINVAL  a NULL argument
 */
SM_API int sm_conn_msg_cred(sm_conn *c, sm_cred *out);

/* ---- event-driven streams (stream.h) --------------------------------------- */

/*
 * A stream passes fds when its opts set max_fds (sm_stream_opts.max_fds,
 * 1 to SM_FDS_MAX) and its socket is a Unix socket: it is then read with
 * recvmsg(2) and written with sendmsg(2) on every backend (on io_uring
 * through poll requests, not the completion transport), and the rules of
 * sm_conn above hold: fds belong to the message whose frame holds the byte
 * they came with, at most max_fds per message (the rest closed), each
 * close-on-exec; those on_message does not take are closed when it
 * returns; more than max_fds in one sendmsg (MSG_CTRUNC) closes the stream
 * with SM_ERR_FDS_TRUNCATED (the reason in sm_stream_error_detail()) after
 * the whole messages before it; other streams are not disturbed. Set
 * max_fds on both sides: the sender needs it too. With opts.pass_cred too,
 * sm_stream_msg_cred() names each message's sender. A dialed stream passes
 * fds per connection: a lost one closes the fds of its unsent messages
 * (sent again, they go without them).
 */

/**
 * sm_stream_send() with nfds open fds attached to the message.
 *
 * The fds are duplicated now (F_DUPFD_CLOEXEC): the caller keeps its own
 * and may close them at once; the copies belong to the queue, which closes
 * them once they are sent or the message is dropped. They go in the
 * sendmsg(2) that starts with the message's first byte and ends within
 * its frame: a write of many queued messages is cut there.
 *
 * @param s     the stream, with opts.max_fds, over a Unix socket
 * @param msg   the payload (may be NULL when len is 0)
 * @param len   its length; the frame must have at least one byte
 * @param fds   the fds to pass (not closed)
 * @param nfds  how many: 0 (a plain sm_stream_send()) to ::SM_FDS_MAX
 * @return as sm_stream_send() (0, or 1 above high water), and:
 * @retval -EINVAL       nfds out of range, fds NULL with nfds > 0, an empty
 *                       frame, or a stream without opts.max_fds
 * @retval -EAFNOSUPPORT the socket is not a Unix socket
 * @retval -ENOTCONN     a dialed stream between connections
 * @retval -EBADF        one of the fds is not open: nothing was queued
 * @retval -EMFILE       no fd left for the copies: nothing was queued
 * @callbacks Callable from callbacks, as sm_stream_send().
 */
SM_API int sm_stream_send_fds(sm_stream *s, const void *msg, size_t len, const int *fds, int nfds);

/**
 * Take the fds of the message being delivered: valid inside on_message
 * only. Those not taken are closed when on_message returns.
 *
 * @param s    the stream
 * @param fds  receives up to cap fds, in the order they were sent
 *             (close-on-exec; the caller's to close)
 * @param cap  the room in fds (> 0)
 * @return how many were stored (0: the message had none, fd passing is
 *         off, or called outside on_message), or -EINVAL for a NULL
 *         argument or cap <= 0
 */
SM_API int sm_stream_take_fds(sm_stream *s, int *fds, int cap);

/**
 * The credentials of the process that created the peer socket
 * (SO_PEERCRED), as sm_conn_peer_cred(). Needs no max_fds.
 *
 * @param s    the stream, connected over a Unix socket
 * @param out  receives pid, uid and gid
 * @retval 0             *out is set
 * @retval -EINVAL       a NULL argument, or a TLS stream
 * @retval -ENOTCONN     not connected (a dialed stream between connections)
 * @retval -EAFNOSUPPORT the socket is not a Unix socket
 * @retval -errno        getsockopt(2) failed
 */
SM_API int sm_stream_peer_cred(const sm_stream *s, sm_cred *out);

/**
 * The credentials of the process that sent the message being delivered
 * (SCM_CREDENTIALS, with opts.pass_cred): valid inside on_message only,
 * as sm_conn_msg_cred() (each message names its own sender; the kernel
 * checks what a sender claims and never joins two senders' bytes in one
 * read).
 *
 * @param s    the stream
 * @param out  receives pid, uid and gid
 * @retval 1        *out is set
 * @retval 0        not known: opts.pass_cred is off, called outside
 *                  on_message, the message's bytes came from more than
 *                  one sender, or they were sent before SO_PASSCRED was on
 *                  at either end (as sm_conn_msg_cred())
 * @retval -EINVAL  a NULL argument
 */
SM_API int sm_stream_msg_cred(sm_stream *s, sm_cred *out);

/* ---- the server's peers (server.h) -------------------------------------------- */

/*
 * A server passes fds when its opts set max_fds (sm_server_opts.max_fds, 1
 * to SM_FDS_MAX): every listener must be a unix: one, and proxy_protocol
 * is refused (sm_server_new() says why). Each peer then follows the rules
 * above, in both models: fds belong to the message they were sent with, at
 * most max_fds per message (the rest closed), close-on-exec, those
 * on_message does not take closed when it returns; more than max_fds in
 * one sendmsg (MSG_CTRUNC) closes that peer with SM_ERR_FDS_TRUNCATED
 * (close kind "other", the reason in sm_peer_error_detail()) after the
 * whole messages before it, and no other peer notices. In the thread model
 * every connection gets its thread at the accept (SM_COMMIT_ACCEPT): the
 * front reads nothing that could carry fds. sm_peer_cred() needs no
 * max_fds.
 */

/**
 * sm_peer_send() with nfds open fds attached to the message.
 *
 * Loop model: sm_stream_send_fds() on the peer's stream: the fds are
 * duplicated now and the copies sent with the message (the caller may
 * close its own at once). Thread model: sm_conn_send_fds() under the
 * peer's send lock, written out before it returns, as sm_peer_send().
 * Either way the caller keeps its fds. Sending needs max_fds in both
 * models (-EINVAL without).
 *
 * @param p     the peer, over a Unix socket
 * @param msg   the payload (may be NULL when len is 0)
 * @param len   its length; the frame must have at least one byte
 * @param fds   the fds to pass (not closed)
 * @param nfds  how many: 0 (a plain sm_peer_send()) to ::SM_FDS_MAX
 * @return as sm_peer_send(), and:
 * @retval -EINVAL       a NULL p, nfds out of range, fds NULL with nfds >
 *                       0, msg NULL with len > 0, an empty frame, or a
 *                       server without max_fds
 * @retval -EAFNOSUPPORT the peer's socket is not a Unix socket
 * @retval -EBADF        one of the fds is not open: nothing was sent
 * @retval -EMFILE       (loop model) no fd left for the copies
 * @threads As sm_peer_send() (see "Handlers and threads" in server.h): the
 * loop model from the peer's loop thread only; the thread model from any
 * thread while the peer is alive.
 */
SM_API int sm_peer_send_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds);

/**
 * Take the fds of the message being delivered: valid inside on_message
 * only, for the message it was called with. Those not taken are closed
 * when on_message returns.
 *
 * @param p    the peer
 * @param fds  receives up to cap fds, in the order they were sent
 *             (close-on-exec; the caller's to close)
 * @param cap  the room in fds (> 0)
 * @return how many were stored (0: the message had none, the server has
 *         no max_fds, or called outside on_message), or -EINVAL for a NULL
 *         argument or cap <= 0
 * @threads From the peer's on_message, on its thread (the loop's, or the
 * connection thread's); another thread of the thread model gets 0.
 */
SM_API int sm_peer_take_fds(sm_peer *p, int *fds, int cap);

/**
 * The credentials of the process that created the client's socket
 * (SO_PEERCRED at connect), as sm_conn_peer_cred(). Needs no max_fds.
 *
 * @param p    the peer, over a Unix socket
 * @param out  receives pid, uid and gid
 * @retval 0             *out is set
 * @retval -EINVAL       a NULL argument
 * @retval -EAFNOSUPPORT the peer's socket is not a Unix socket (TCP)
 * @retval -ENOTCONN     (loop model) the peer is closing: its socket is
 *                       closed
 * @retval -errno        getsockopt(2) failed
 * @threads As sm_peer_addr(): the loop model from the peer's loop thread;
 * the thread model from any thread while the peer is alive.
 */
SM_API int sm_peer_cred(const sm_peer *p, sm_cred *out);

/**
 * The credentials of the process that sent the message being delivered
 * (SCM_CREDENTIALS, with opts.msg_cred): valid inside on_message only, as
 * sm_stream_msg_cred(). Unlike sm_peer_cred(), it names each message's own
 * sender when several processes share the client's socket (a forked
 * child, an fd passed on).
 *
 * @param p    the peer
 * @param out  receives pid, uid and gid
 * @retval 1        *out is set
 * @retval 0        not known: opts.msg_cred is off, called outside
 *                  on_message, the message's bytes came from more than
 *                  one sender, or they were sent before the server's
 *                  socket had SO_PASSCRED (a client may send at once after
 *                  connect, before the server set it: a client that sets
 *                  SO_PASSCRED on its own socket is always known)
 * @retval -EINVAL  a NULL argument
 * @threads From the peer's on_message, on its thread; another thread of
 * the thread model gets 0.
 */
SM_API int sm_peer_msg_cred(sm_peer *p, sm_cred *out);

#ifdef __cplusplus
}
#endif

#endif
