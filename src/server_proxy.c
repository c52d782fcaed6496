/* PROXY protocol headers: reading one off a socket without reading past
 * it (both models), logging a failure, and the loop model's handshakes: a
 * connection whose header is being read, watched on its worker's loop
 * under a deadline, becomes a peer once the header is in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"

/* ---- reading a header ----------------------------------------------------------- */

void
sm__proxy_rd_init(sm__proxy_rd *r)
{
    r->buf = r->small;
    r->have = 0;
    r->cap = sizeof r->small;
}

void
sm__proxy_rd_free(sm__proxy_rd *r)
{
    if (r->buf != r->small) free(r->buf);
    r->buf = r->small;
}

/* recv exactly n bytes that a peek has shown to be there. */
static int
consume(int fd, uint8_t *to, size_t n)
{
    while (n > 0) {
        ssize_t got = recv(fd, to, n, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -errno;
        if (got == 0) return SM_ERR_TRUNCATED;
        to += got;
        n -= (size_t)got;
    }
    return 0;
}

/* The bytes after the header belong to the application's framing, and a
 * stream or conn will read the socket next: so peek, decode, and take off
 * the socket only the bytes the decoder has claimed for the header.
 * Returns the header's length (> 0, *info set), -EAGAIN (wait until
 * readable, then call again), SM_ERR_TRUNCATED (EOF first), -EPROTO (why
 * says why), or -errno. */
ssize_t
sm__proxy_read(int fd, sm__proxy_rd *r, sm_proxy_info *info, char *why, size_t why_len)
{
    for (;;) {
        ssize_t n = recv(fd, r->buf + r->have, r->cap - r->have, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        if (n == 0) return SM_ERR_TRUNCATED;
        size_t seen = r->have + (size_t)n;
        ssize_t h = sm_proxy_decode(r->buf, seen, info, why, why_len);
        if (h > 0) {
            int rc = consume(fd, r->buf + r->have, (size_t)h - r->have);
            if (rc < 0) return rc;
            r->have = (size_t)h;
            return h;
        }
        if (h != -EAGAIN) return h;
        /* Everything seen is a prefix of the header: take it off the socket. */
        int rc = consume(fd, r->buf + r->have, (size_t)n);
        if (rc < 0) return rc;
        r->have = seen;
        if (r->have == r->cap) {
            if (r->cap >= SM_PROXY_V2_MAX) {
                snprintf(why, why_len, "header longer than %d bytes", SM_PROXY_V2_MAX);
                return -EPROTO;
            }
            uint8_t *big = malloc(SM_PROXY_V2_MAX);
            if (!big) return -ENOMEM;
            memcpy(big, r->buf, r->have);
            r->buf = big;
            r->cap = SM_PROXY_V2_MAX;
        }
    }
}

sm__proxied *
sm__proxied_new(const sm_proxy_info *info, int *err)
{
    *err = 0;
    if (!info->known) return NULL;
    sm__proxied *px = malloc(sizeof *px);
    if (!px) {
        *err = -ENOMEM;
        return NULL;
    }
    px->src = info->src;
    px->dst = info->dst;
    return px;
}

void
sm__log_proxy_fail(const sm_server *srv, int fd, int err, const char *why)
{
    char where[160];
    sm__sock_peer_name(fd, where, sizeof where);
    /* A forced stop's cancellation is ours, not the client's fault. */
    sm__log(srv, err == -ECANCELED ? SM_LOG_DEBUG : SM_LOG_WARN, "PROXY header from %s: %s", where,
            why && why[0] ? why : sm_strerror(err));
}

/* ---- the loop model's handshakes --------------------------------------------------- */

static void
pend_arm(sm__worker *w)
{
    if (sm__list_empty(&w->pending) || sm_timer_is_active(&w->pend_timer)) return;
    sm__pending *pd = SM__CONTAINER(w->pending.next, sm__pending, link);
    int64_t left = pd->due - sm_loop_now(w->loop);
    sm_timer_start(&w->pend_timer, left > 0 ? (uint64_t)left : 0, 0);
}

/* Forget a handshake; close its fd unless it goes on as a peer. */
static int
pend_end(sm__pending *pd, bool close_fd)
{
    sm__worker *w = pd->w;
    int fd = pd->io.fd;
    sm_io_stop(&pd->io);
    if (close_fd) close(fd);
    sm__list_remove(&pd->link);
    w->npending--;
    sm__proxy_rd_free(&pd->rd);
    free(pd);
    return fd;
}

static void
pend_fail(sm__pending *pd, int err, const char *why)
{
    /* A false positive from the timer's loop below: the analyzer loses
     * track of the list head that sm__list_remove moves, so it takes the
     * next pd for the one just freed (pend_end unlinks pd first). */
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
    sm__worker *w = pd->w;
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
    sm__log_proxy_fail(w->srv, pd->io.fd, err, why);
    pend_end(pd, true);
    sm__count_close(w->srv, &w->ctrs, sm_server_close_kind(err));
}

static void
pend_io_cb(sm_io *io, unsigned events)
{
    (void)events;
    sm__pending *pd = io->data;
    sm__worker *w = pd->w;
    sm_proxy_info info = {0};
    char why[160] = "";
    ssize_t h = sm__proxy_read(io->fd, &pd->rd, &info, why, sizeof why);
    if (h == -EAGAIN) return;
    int err = (int)h;
    sm__proxied *px = h > 0 ? sm__proxied_new(&info, &err) : NULL;
    if (err < 0) {
        pend_fail(pd, err, why);
    } else {
        bool tls = pd->tls;
        int fd = pend_end(pd, false);
        sm__lpeer_open(w, fd, px, tls);
    }
    sm__lmodel_maybe_exit(w);
}

void
sm__lproxy_timer_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    int64_t now = sm_loop_now(w->loop);
    while (!sm__list_empty(&w->pending)) {
        sm__pending *pd = SM__CONTAINER(w->pending.next, sm__pending, link);
        /* pd is the list's new head, not the one freed (see pend_fail). */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        if (pd->due > now) break;
        pend_fail(pd, -ETIMEDOUT, "no complete header in time");
    }
    pend_arm(w);
    sm__lmodel_maybe_exit(w);
}

void
sm__lproxy_start(sm__worker *w, int fd, bool tls)
{
    sm_server *srv = w->srv;
    sm__pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        close(fd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    pd->w = w;
    pd->tls = tls;
    sm__proxy_rd_init(&pd->rd);
    int ms =
        srv->o.first_message_timeout_ms ? srv->o.first_message_timeout_ms : SM__PROXY_DEFAULT_MS;
    pd->due = sm_loop_now(w->loop) + ms;
    sm_io_init(w->loop, &pd->io, fd, pend_io_cb);
    pd->io.data = pd;
    int rc = sm_io_start(&pd->io, SM_READ);
    if (rc < 0) {
        close(fd);
        free(pd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    sm__list_append(&w->pending, &pd->link);
    w->npending++;
    pend_arm(w);
}

void
sm__lproxy_cancel_all(sm__worker *w)
{
    while (!sm__list_empty(&w->pending))
        pend_fail(SM__CONTAINER(w->pending.next, sm__pending, link), -ECANCELED,
                  "closed by the server's stop");
}
