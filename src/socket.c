/* Blocking socket helpers: options, listen, accept, and I/O with deadlines.
 * Connecting lives in dial.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "sockmsg/error.h"
#include "sockmsg/socket.h"

/* Sends and receives never block in the kernel, whatever the fd's mode: the
 * waiting happens in poll(2), where the deadline is kept. */
#define SEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

static int
set_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) < 0 ? -errno : 0;
}

int
sm__sock_is_inet(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return -errno;
    return domain == AF_INET || domain == AF_INET6;
}

int
sm_sock_set_opts(int fd, const sm_sock_opts *opts)
{
    static const sm_sock_opts defaults = {0};
    if (!opts) opts = &defaults;
    int rc = sm__sock_is_inet(fd);
    if (rc < 0) return rc;
    bool inet = rc;
    if (opts->sndbuf > 0 && (rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, opts->sndbuf)) < 0) return rc;
    if (opts->rcvbuf > 0 && (rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, opts->rcvbuf)) < 0) return rc;
    if (!inet) return 0;

    if ((rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, opts->nodelay >= 0)) < 0) return rc;
    if (opts->keepalive) {
        if ((rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0) return rc;
        if (opts->keepalive_idle_s > 0 &&
            (rc = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, opts->keepalive_idle_s)) < 0)
            return rc;
        if (opts->keepalive_intvl_s > 0 &&
            (rc = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, opts->keepalive_intvl_s)) < 0)
            return rc;
        if (opts->keepalive_cnt > 0 &&
            (rc = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, opts->keepalive_cnt)) < 0)
            return rc;
    }
    if (opts->user_timeout_ms > 0 &&
        (rc = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, opts->user_timeout_ms)) < 0)
        return rc;
    return 0;
}

int
sm_sock_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    int want = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (want != flags && fcntl(fd, F_SETFL, want) < 0) return -errno;
    return 0;
}

static void
explain(char *why, size_t why_len, int err, const char *what, const sm_addr *a)
{
    if (!why || !why_len) return;
    char where[128] = "?";
    if (a) sm_addr_format((const struct sockaddr *)&a->ss, a->len, where, sizeof where);
    snprintf(why, why_len, "%s %s: %s", what, where, sm_strerror(err));
}

/* bind() said EADDRINUSE on a Unix path. Decide whether the file is a stale
 * socket a dead server left behind: only a socket nobody accepts on (connect
 * is refused) may be removed. Returns 0 after removing it, or the error. */
static int
clear_stale_unix(const sm_addr *a)
{
    const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;
    struct stat st;
    if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) return -EEXIST;

    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0) return -errno;
    int rc = connect(probe, (const struct sockaddr *)&a->ss, a->len) < 0 ? errno : 0;
    close(probe);
    /* Connected, or EAGAIN from a full backlog: someone is listening. */
    if (rc == 0 || rc == EAGAIN) return -EADDRINUSE;
    if (rc == ENOENT) return 0;
    if (rc != ECONNREFUSED) return -rc;
    if (unlink(path) < 0 && errno != ENOENT) return -errno;
    return 0;
}

static int
listen_one(const sm_addr *a, bool any, const sm_sock_opts *opts, int backlog)
{
    int family = a->ss.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = 0;
    if (family != AF_UNIX) rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    /* The system default (net.ipv6.bindv6only) may say otherwise: "*" means
     * both families, so say it explicitly. */
    if (rc == 0 && family == AF_INET6 && any) rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    if (rc == 0) rc = sm_sock_set_opts(fd, opts);
    if (rc == 0 && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        rc = -errno;
        bool path = family == AF_UNIX && ((const struct sockaddr_un *)&a->ss)->sun_path[0];
        if (rc == -EADDRINUSE && path && (rc = clear_stale_unix(a)) == 0)
            rc = bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ? -errno : 0;
    }
    if (rc == 0 && listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int
sm_listen_endpoint(const sm_endpoint *ep, const sm_sock_opts *opts, int backlog, sm_endpoint *bound,
                   char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!ep) return -EINVAL;
    sm_addr addrs[8];
    int n = sm_endpoint_resolve(ep, true, addrs, 8, why, why_len);
    if (n < 0) return n;
    bool any = ep->kind == SM_ENDPOINT_TCP && !strcmp(ep->host, "*");

    int fd = -1, first_err = 0, first_i = 0;
    for (int i = 0; i < n && fd < 0; i++) {
        fd = listen_one(&addrs[i], any, opts, backlog);
        if (fd >= 0) break;
        if (!first_err) {
            first_err = fd;
            first_i = i;
        }
        /* Go on to the next address only when this one's family is missing
         * on the host (no IPv6); a port in use is an answer, not a detour. */
        if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL && fd != -EPROTONOSUPPORT) break;
    }
    if (fd < 0) {
        explain(why, why_len, first_err, "listen on", &addrs[first_i]);
        return first_err;
    }
    if (bound) {
        int rc = sm_sock_local(fd, bound);
        if (rc < 0) {
            close(fd);
            explain(why, why_len, rc, "getsockname of", &addrs[0]);
            return rc;
        }
    }
    return fd;
}

int
sm_listen(const char *endpoint, int backlog)
{
    sm_endpoint ep;
    int rc = sm_endpoint_parse(&ep, endpoint, NULL, 0);
    if (rc < 0) return rc;
    return sm_listen_endpoint(&ep, NULL, backlog, NULL, NULL, 0);
}

static int
sock_name(int fd, sm_endpoint *out, bool peer)
{
    if (!out) return -EINVAL;
    sm_addr a;
    memset(&a, 0, sizeof a);
    a.len = sizeof a.ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&a.ss, &a.len)
                  : getsockname(fd, (struct sockaddr *)&a.ss, &a.len);
    if (rc < 0) return -errno;
    return sm_addr_to_endpoint((const struct sockaddr *)&a.ss, a.len, out);
}

int
sm_sock_local(int fd, sm_endpoint *out)
{
    return sock_name(fd, out, false);
}

int
sm_sock_peer(int fd, sm_endpoint *out)
{
    return sock_name(fd, out, true);
}

int
sm_accept(int listen_fd, int timeout_ms, sm_addr *peer)
{
    int64_t deadline = sm__deadline(timeout_ms);
    for (;;) {
        /* Wait first: on a blocking listener accept4 would ignore the
         * deadline. (Another thread accepting the same connection in between
         * can still make it block; share a listener with a non-blocking fd.) */
        int rc = sm__wait_fd(listen_fd, POLLIN, deadline);
        if (rc < 0) return rc;
        sm_addr a;
        memset(&a, 0, sizeof a);
        a.len = sizeof a.ss;
        int fd = accept4(listen_fd, (struct sockaddr *)&a.ss, &a.len, SOCK_CLOEXEC);
        if (fd >= 0) {
            if (sm__sock_is_inet(fd) > 0 && (rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0) {
                close(fd);
                return rc;
            }
            if (peer) *peer = a;
            return fd;
        }
        /* EAGAIN: someone else took it. The others: a client that gave up
         * between its handshake and our accept; wait for the next one. */
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED && errno != EPROTO)
            return -errno;
        if (deadline >= 0 && sm__remaining_ms(deadline) == 0) return -ETIMEDOUT;
    }
}

/* Advance (*i, *off) by n bytes across iov, skipping empty entries. */
static void
iov_advance(const struct iovec *iov, int iovcnt, int *i, size_t *off, size_t n)
{
    while (*i < iovcnt) {
        size_t left = iov[*i].iov_len - *off;
        if (n < left) {
            *off += n;
            return;
        }
        n -= left;
        (*i)++;
        *off = 0;
    }
}

ssize_t
sm_sendv_all(int fd, const struct iovec *iov, int iovcnt, int timeout_ms, size_t *done)
{
    int64_t deadline = sm__deadline(timeout_ms);
    size_t total = 0, sent = 0;
    if (done) *done = 0;
    if (iovcnt < 0 || (!iov && iovcnt > 0)) return -EINVAL;
    for (int k = 0; k < iovcnt; k++) {
        if (iov[k].iov_len > SSIZE_MAX - total) return -EINVAL;
        total += iov[k].iov_len;
    }

    /* The caller's array stays untouched: each call sends from a window copied
     * into v, its first entry trimmed by what the last call sent. */
    struct iovec v[IOV_MAX];
    int i = 0;
    size_t off = 0;
    ssize_t rc = 0;
    /* A peer that keeps draining keeps sendmsg succeeding: check the
     * deadline every round after the first, not only before a wait. */
    bool check = timeout_ms > 0;
    for (bool first = true; rc == 0 && sent < total; first = false) {
        if (check && !first && sm__expired(deadline)) {
            rc = -ETIMEDOUT;
            break;
        }
        int nv = 0;
        for (int k = i; k < iovcnt && nv < IOV_MAX; k++) {
            if (iov[k].iov_len == 0) continue;
            size_t skip = k == i ? off : 0;
            v[nv].iov_base = (char *)iov[k].iov_base + skip;
            v[nv].iov_len = iov[k].iov_len - skip;
            nv++;
        }
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)nv};
        ssize_t n = sendmsg(fd, &msg, SEND_FLAGS);
        if (n >= 0) {
            sent += (size_t)n;
            iov_advance(iov, iovcnt, &i, &off, (size_t)n);
        } else if (errno == EAGAIN) {
            int w = sm__wait_fd(fd, POLLOUT, deadline);
            if (w < 0) rc = w;
        } else if (errno != EINTR) {
            rc = -errno;
        }
    }
    if (done) *done = sent;
    return rc < 0 ? rc : (ssize_t)sent;
}

ssize_t
sm_send_all(int fd, const void *buf, size_t len, int timeout_ms, size_t *done)
{
    if (len > SSIZE_MAX || (!buf && len)) {
        if (done) *done = 0;
        return -EINVAL;
    }
    /* One piece is a gather of one: a single loop handles partial sends. */
    struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
    return sm_sendv_all(fd, &v, 1, timeout_ms, done);
}

ssize_t
sm_recv_exact(int fd, void *buf, size_t len, int timeout_ms, size_t *done)
{
    int64_t deadline = sm__deadline(timeout_ms);
    char *p = buf;
    size_t got = 0;
    ssize_t rc = 0;
    if (len > SSIZE_MAX || (!buf && len)) rc = -EINVAL;
    /* A peer that trickles bytes in keeps recv succeeding: as in sendv_all. */
    bool check = timeout_ms > 0;
    for (bool first = true; rc == 0 && got < len; first = false) {
        if (check && !first && sm__expired(deadline)) {
            rc = -ETIMEDOUT;
            break;
        }
        ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            rc = got == 0 ? 1 : SM_ERR_TRUNCATED;
        } else if (errno == EAGAIN) {
            int w = sm__wait_fd(fd, POLLIN, deadline);
            if (w < 0) rc = w;
        } else if (errno != EINTR) {
            rc = -errno;
        }
    }
    if (done) *done = got;
    if (rc == 1) return 0; /* clean EOF before the first byte */
    return rc < 0 ? rc : (ssize_t)got;
}

ssize_t
sm_recv_some(int fd, void *buf, size_t len, int timeout_ms)
{
    if (!buf || len == 0) return -EINVAL;
    int64_t deadline = sm__deadline(timeout_ms);
    for (bool first = true;; first = false) {
        /* A wait that ended past the deadline (a signal handler, a descheduled
         * thread) ends the call even though bytes are now ready. */
        if (timeout_ms > 0 && !first && sm__expired(deadline)) return -ETIMEDOUT;
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno == EAGAIN) {
            int w = sm__wait_fd(fd, POLLIN, deadline);
            if (w < 0) return w;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}

int
sm_shutdown_write(int fd)
{
    return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}
