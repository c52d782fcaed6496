/* sm_stream's fd passing and peer credentials (unix.h). Receiving reuses
 * sm_conn's queue (fd_queue.c): fds are tagged with the stream offset of
 * the last byte of the read they came with and claimed by the message
 * whose frame holds that byte. Sending keeps the fds beside the write
 * queue, by the stream offset of their message's first byte, and
 * sm__sfds_send cuts the queue's gather writes there. */
#include "stream_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/error.h>
#include <sockmsg/unix.h>

#include "internal.h"
#include "transport.h"

/* Pieces of one sendmsg; a longer write continues in the next one. */
#define SEG_IOV 64

int
sm__sfds_open(sm_stream *s, int fd)
{
    if (!s->sx && !(s->sx = calloc(1, sizeof *s->sx))) return -ENOMEM;
    sm__sfds *f = calloc(1, sizeof *f);
    if (!f) return -ENOMEM;
    int rc = sm__fdq_init(&f->rq, s->opts->max_fds);
    if (rc < 0) {
        free(f);
        return rc;
    }
    if (s->opts->pass_cred) {
        /* Before the first read: bytes read earlier have no known sender. */
        int on = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) {
            rc = -errno;
            sm__fdq_free(&f->rq);
            free(f);
            return rc;
        }
        f->rq.cred_on = true;
    }
    s->sx->fds = f;
    return 0;
}

static void
out_free(sm__fds_out *e)
{
    for (int i = 0; i < e->n; i++)
        close(e->fds[i]);
    free(e);
}

void
sm__sfds_free(sm_stream *s)
{
    sm__sfds *f = s->sx ? s->sx->fds : NULL;
    if (!f) return;
    sm__fdq_free(&f->rq);
    for (sm__fds_out *e = f->out, *next; e; e = next) {
        next = e->next;
        out_free(e);
    }
    free(f);
    s->sx->fds = NULL;
}

/* The head entry went out (or can never go): its copies are closed. */
static void
out_pop(sm__sfds *f)
{
    sm__fds_out *e = f->out;
    f->out = e->next;
    if (!f->out) f->out_tail = NULL;
    out_free(e);
}

/* One sendmsg of at most limit bytes of iov[*i] + *ioff onwards, with fds
 * when nfds > 0. Bytes sent, or -errno. */
static ssize_t
send_seg(int fd, const struct iovec *iov, int iovcnt, int i, size_t ioff, uint64_t limit,
         const int *fds, int nfds, size_t *seglen)
{
    struct iovec seg[SEG_IOV];
    int k = 0;
    size_t len = 0;
    for (; i < iovcnt && k < SEG_IOV && len < limit; i++, ioff = 0) {
        size_t n = iov[i].iov_len - ioff;
        if (n == 0) continue;
        if (n > limit - len) n = (size_t)(limit - len);
        seg[k++] = (struct iovec){.iov_base = (char *)iov[i].iov_base + ioff, .iov_len = n};
        len += n;
    }
    *seglen = len;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * SM_FDS_MAX)];
    } cb;
    struct msghdr mh = {.msg_iov = seg, .msg_iovlen = (size_t)k};
    if (nfds > 0) {
        memset(&cb, 0, sizeof cb);
        mh.msg_control = cb.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno != EINTR) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

ssize_t
sm__sfds_send(sm_stream *s, const struct iovec *iov, int iovcnt)
{
    sm__sfds *f = s->sx->fds;
    size_t total = 0, ioff = 0;
    int i = 0;
    for (;;) {
        while (i < iovcnt && ioff == iov[i].iov_len) {
            i++;
            ioff = 0;
        }
        if (i == iovcnt) return (ssize_t)total;
        /* Up to the next message with fds; or that message alone, with
         * them: the kernel hands them over with a byte of this sendmsg,
         * which must be a byte of that message. */
        sm__fds_out *e = f->out;
        uint64_t limit = UINT64_MAX;
        const int *fds = NULL;
        int nfds = 0;
        if (e && e->at > f->tx) {
            limit = e->at - f->tx;
        } else if (e) {
            fds = e->fds;
            nfds = e->n;
            limit = e->len;
        }
        size_t seglen;
        ssize_t n = send_seg(s->io.fd, iov, iovcnt, i, ioff, limit, fds, nfds, &seglen);
        if (n < 0) return total ? (ssize_t)total : n; /* an error shows again next time */
        f->tx += (uint64_t)n;
        total += (size_t)n;
        if (nfds && n > 0) out_pop(f); /* the rest of it goes without them */
        for (size_t left = (size_t)n; left;) {
            size_t step = iov[i].iov_len - ioff < left ? iov[i].iov_len - ioff : left;
            ioff += step;
            left -= step;
            if (ioff == iov[i].iov_len && left) {
                i++;
                ioff = 0;
            }
        }
        if ((size_t)n < seglen) return (ssize_t)total; /* the kernel is full */
    }
}

int
sm__sfds_deliver_slow(sm_stream *s, const sm_frame_msg *m, uint64_t from, uint64_t to)
{
    sm__fdq *q = &s->sx->fds->rq;
    if (sm__fdq_bind(q, from, to) < 0) {
        sm__stream_fail(s, q->err, "%s", q->why);
        return -1;
    }
    s->opts->on_message(s, m);
    /* The stream may be closed, but its state lives until the loop frees
     * it; a dialed stream's drop frees it (sx->fds NULL then). */
    if (s->sx && s->sx->fds) {
        sm__fdq_release(&s->sx->fds->rq);
        s->sx->fds->rq.msg_cred_ok = false; /* sm_stream_msg_cred: on_message only */
    }
    return 1;
}

static size_t
queued_bytes(const sm_stream *s)
{
    return s->wq ? s->wq->bytes : 0;
}

int
sm_stream_send_fds(sm_stream *s, const void *msg, size_t len, const int *fds, int nfds)
{
    if (!s || nfds < 0 || nfds > SM_FDS_MAX || (nfds && !fds)) return -EINVAL;
    if (nfds == 0) return sm_stream_send(s, msg, len);
    sm__sfds *f = s->sx ? s->sx->fds : NULL;
    if (!f) {
        if (!sm__stream_live(s)) return s->flags & SM__S_CLOSING ? SM_ERR_CLOSED : -ENOTCONN;
        int rc = sm__fds_check_unix(s->io.fd);
        return rc < 0 ? rc : -EINVAL; /* a Unix stream without opts.max_fds */
    }
    sm__fds_out *e = malloc(sizeof *e + sizeof(int) * (size_t)nfds);
    if (!e) return -ENOMEM;
    e->next = NULL;
    e->n = 0;
    for (; e->n < nfds; e->n++) {
        int d = fcntl(fds[e->n], F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            int err = -errno;
            out_free(e);
            return err;
        }
        e->fds[e->n] = d;
    }
    /* Messages are queued at the tail: this one starts after every byte
     * written or waiting. Its length is known once it is queued; a write
     * inside sm_stream_send (write_now) ends with it, so until then its
     * fds go with whatever of the write reaches them. */
    e->at = f->tx + queued_bytes(s);
    e->len = UINT64_MAX;
    if (f->out_tail)
        f->out_tail->next = e;
    else
        f->out = e;
    f->out_tail = e;
    int rc = sm_stream_send(s, msg, len);
    if (!s->sx || s->sx->fds != f || f->out_tail != e) return rc; /* sent, or dropped with f */
    uint64_t end = f->tx + queued_bytes(s);
    if (rc >= 0 && end > e->at) {
        e->len = end - e->at;
        return rc;
    }
    /* Nothing queued (an error, or an empty eof-framed message): unlink. */
    sm__fds_out **pp = &f->out;
    sm__fds_out *prev = NULL;
    while (*pp != e) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = NULL;
    f->out_tail = prev;
    out_free(e);
    return rc < 0 ? rc : -EINVAL;
}

int
sm_stream_take_fds(sm_stream *s, int *fds, int cap)
{
    if (!s || !fds || cap <= 0) return -EINVAL;
    sm__sfds *f = s->sx ? s->sx->fds : NULL;
    return f ? sm__fdq_take(&f->rq, fds, cap) : 0;
}

int
sm_stream_msg_cred(sm_stream *s, sm_cred *out)
{
    if (!s || !out) return -EINVAL;
    sm__sfds *f = s->sx ? s->sx->fds : NULL;
    if (!f || !f->rq.msg_cred_ok) return 0;
    *out = f->rq.msg_cred;
    return 1;
}

int
sm_stream_peer_cred(const sm_stream *s, sm_cred *out)
{
    if (!s || !out) return -EINVAL;
    if (!(s->flags & SM__S_CONNECTED)) return -ENOTCONN;
    if (s->tp == SM__TP_TLS) return -EINVAL;
    int fd = s->io.fd;
    int rc = sm__fds_check_unix(fd);
    if (rc < 0) return rc;
    struct ucred u;
    socklen_t ul = sizeof u;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &ul) < 0) return -errno;
    *out = (sm_cred){.pid = u.pid, .uid = u.uid, .gid = u.gid};
    return 0;
}
