/* The socket side of fd passing: fds ride in SCM_RIGHTS control messages,
 * sent with a message's first byte and tagged on receipt with the stream
 * offset of the last byte read, which the kernel guarantees lies in the
 * bytes of the sendmsg that carried them. */
#include "fd_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/error.h>
#include <sockmsg/socket.h>
#include <sockmsg/unix.h>

#include "internal.h"

/* Room for the most fds one control message can carry, and credentials. */
typedef union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * SM_FDS_MAX) + CMSG_SPACE(sizeof(struct ucred))];
} fds_cmsg;

int
sm__fds_check_unix(int fd)
{
    int domain = -1;
    socklen_t dl = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0) return -errno;
    return domain == AF_UNIX ? 0 : -EAFNOSUPPORT;
}

ssize_t
sm__fds_sendv_all(int fd, struct iovec *v, int k, const int *fds, int nfds, int timeout_ms)
{
    size_t total = 0;
    for (int i = 0; i < k; i++)
        total += v[i].iov_len;
    /* The fds need a byte to ride with: a stream drops an empty sendmsg. */
    if (total == 0 || nfds <= 0 || nfds > SM_FDS_MAX) return -EINVAL;
    int64_t deadline = sm__deadline(timeout_ms);
    fds_cmsg cb;
    memset(&cb, 0, sizeof cb);
    struct msghdr m = {.msg_iov = v,
                       .msg_iovlen = (size_t)k,
                       .msg_control = cb.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)nfds);
    ssize_t n;
    for (;;) {
        n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int w = sm__wait_fd(fd, POLLOUT, deadline);
        if (w < 0) return w;
    }
    /* The fds went with those bytes: the rest goes without them. */
    size_t left = (size_t)n;
    int i = 0;
    while (i < k && left >= v[i].iov_len)
        left -= v[i++].iov_len;
    if (i == k) return (ssize_t)total;
    v[i].iov_base = (char *)v[i].iov_base + left;
    v[i].iov_len -= left;
    ssize_t r = sm_sendv_all(fd, v + i, k - i, sm__remaining_ms(deadline), NULL);
    return r < 0 ? r : (ssize_t)total;
}

/* The fds of every SCM_RIGHTS message in m, into out (room for SM_FDS_MAX),
 * and the sender's credentials, into *cr (*has_cr says whether). */
static int
collect_fds(struct msghdr *m, int *out, sm_cred *cr, bool *has_cr)
{
    int n = 0;
    *has_cr = false;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
        if (h->cmsg_level != SOL_SOCKET) continue;
        if (h->cmsg_type == SCM_CREDENTIALS && h->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred u;
            memcpy(&u, CMSG_DATA(h), sizeof u);
            /* Bytes sent while neither end had SO_PASSCRED (before the
             * receiver turned it on) carry no credentials; Linux then
             * reports pid 0 and the overflow uid/gid: no known sender. */
            *cr = (sm_cred){.pid = u.pid, .uid = u.uid, .gid = u.gid};
            *has_cr = u.pid != 0;
        }
        if (h->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && n < SM_FDS_MAX; i++)
            memcpy(&out[n++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
    }
    return n;
}

ssize_t
sm__fds_recv(sm__fdq *q, int fd, void *buf, size_t len, int timeout_ms, size_t buffered,
             char *detail, size_t detail_len)
{
    if (q->err) {
        snprintf(detail, detail_len, "%s", q->why);
        return q->err;
    }
    sm__fdq_trim(q, q->rx - buffered);
    int64_t deadline = sm__deadline(timeout_ms);
    for (;;) {
        fds_cmsg cb;
        struct iovec v = {.iov_base = buf, .iov_len = len};
        /* Sized by the cap: a peer sending more at once is truncated by the
         * kernel, which then drops the rest itself. */
        struct msghdr m = {.msg_iov = &v,
                           .msg_iovlen = 1,
                           .msg_control = cb.buf,
                           .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)q->cap)};
        if (q->cred_on) m.msg_controllen += CMSG_SPACE(sizeof(struct ucred));
        ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -errno;
            int w = sm__wait_fd(fd, POLLIN, deadline);
            if (w < 0) return w;
            continue;
        }
        int got[SM_FDS_MAX];
        sm_cred cr;
        bool has_cr;
        int ng = collect_fds(&m, got, &cr, &has_cr);
        if (m.msg_flags & MSG_CTRUNC) {
            /* The bytes are kept: the messages before the one that lost
             * fds are whole, and are delivered before the error. */
            for (int i = 0; i < ng; i++)
                close(got[i]);
            q->err = SM_ERR_FDS_TRUNCATED;
            q->err_at = q->rx + (uint64_t)(n > 0 ? n - 1 : 0);
            snprintf(q->why, sizeof q->why,
                     "control data truncated (MSG_CTRUNC): the peer sent more fds at once than "
                     "the receive cap of %d; %d arrived and were closed",
                     q->cap, ng);
            ng = 0;
        }
        if (n == 0) {
            for (int i = 0; i < ng; i++)
                close(got[i]); /* no byte to belong to */
            return 0;
        }
        if (q->cred_on) sm__fdq_read_cred(q, has_cr ? &cr : NULL, q->rx);
        q->rx += (uint64_t)n;
        sm__fdq_push(q, got, ng, q->rx - 1);
        return n;
    }
}
