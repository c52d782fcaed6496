/* Accepting under limits (max_conns, thread limit, file descriptors), and
 * setting accepted sockets' options. Shared by both models. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "loop_internal.h"
#include "server_internal.h"

/* ---- limits -------------------------------------------------------------------- */

int
sm__spare_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* A flood of refusals must not become a flood of log lines: one a second,
 * with the count of those left out. */
void
sm__warn_limited(sm__worker *w, int64_t *last, uint64_t *unlogged, const char *what)
{
    int64_t now = sm__now_ms();
    if (*last && now - *last < 1000) {
        (*unlogged)++;
        return;
    }
    if (*unlogged)
        sm__log(w->srv, SM_LOG_WARN, "%s (and %llu more in the last second)", what,
                (unsigned long long)*unlogged);
    else
        sm__log(w->srv, SM_LOG_WARN, "%s", what);
    *last = now;
    *unlogged = 0;
}

static void
set_listening(sm__worker *w, unsigned events)
{
    for (int i = 0; i < w->nlst; i++)
        if (sm_io_is_active(&w->lst[i].io)) sm_io_set_events(&w->lst[i].io, events);
}

void
sm__pause_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    if (w->spare_fd < 0) w->spare_fd = sm__spare_open();
    set_listening(w, SM_READ);
}

/* Out of fds with connections waiting: without action the listener stays
 * readable and the loop spins. Spend the spare fd to take one connection off
 * the backlog and close it (the client learns at once), then take the spare
 * back. Returns false when there is no spare to spend. */
static bool
shed_one(sm__worker *w, int lfd)
{
    if (w->spare_fd < 0) return false;
    close(w->spare_fd);
    w->spare_fd = -1;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        sm__ctr_add(&w->ctrs.accepted, 1);
        sm__ctr_add(&w->ctrs.closes[SM_CLOSE_REFUSED], 1);
        close(fd);
    }
    w->spare_fd = sm__spare_open();
    return fd >= 0 && w->spare_fd >= 0;
}

static void
pause_accepting(sm__worker *w)
{
    set_listening(w, 0);
    sm_timer_start(&w->pause, SM__EMFILE_PAUSE_MS, 0);
}

bool
sm__accept_batch(sm__worker *w, sm__listener *l, bool drain_all, sm__take_fn take)
{
    sm_server *srv = w->srv;
    int limit = drain_all ? 1 << 20 : SM__ACCEPT_BATCH;
    for (int i = 0; i < limit; i++) {
        int fd = sm__io_accept(&l->io);
        if (fd < 0) {
            int err = -fd;
            /* A client that gave up between its handshake and our accept. */
            if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
            if (err == EAGAIN || err == EWOULDBLOCK) return true;
            sm__ctr_add(&w->ctrs.accept_errors, 1);
            char what[160];
            snprintf(what, sizeof what, "accept: %s: refusing connections%s", sm_strerror(-err),
                     err == EMFILE || err == ENFILE ? " until descriptors are free" : "");
            sm__warn_limited(w, &w->emfile_logged_ms, &w->emfile_unlogged, what);
            if ((err == EMFILE || err == ENFILE) && shed_one(w, l->io.fd)) continue;
            if (!drain_all) pause_accepting(w);
            return false;
        }
        sm__ctr_add(&w->ctrs.accepted, 1);
        if (!sm__admit(srv)) {
            /* Counted and logged before the client can see the close. */
            sm__ctr_add(&w->ctrs.closes[SM_CLOSE_REFUSED], 1);
            char what[120];
            snprintf(what, sizeof what, "connection refused: %d connections open (the limit)",
                     srv->limit);
            sm__warn_limited(w, &w->refuse_logged_ms, &w->refuse_unlogged, what);
            close(fd);
            continue;
        }
        take(w, l, fd);
    }
    return true;
}

bool
sm__accepted_setup(sm__worker *w, int ep, int fd)
{
    sm_server *srv = w->srv;
    int rc = 0;
    if (srv->o.sock)
        rc = sm_sock_set_opts(fd, srv->o.sock); /* TCP options only on TCP sockets */
    else if (!srv->eps[ep].is_unix)
        rc = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) < 0 ? -errno : 0;
    if (rc == 0) return true;
    /* A connection without the options asked for is not what was
     * configured (no keepalive: a dead client never found): refuse it, as
     * the dial path fails a socket whose options do not take. */
    char where[160], what[300];
    sm__sock_peer_name(fd, where, sizeof where);
    snprintf(what, sizeof what, "connection from %s closed: cannot set its socket options: %s",
             where, sm_strerror(rc));
    /* Counted and logged before the client can see the close. */
    sm__ctr_add(&w->ctrs.accept_errors, 1);
    sm__count_close(srv, &w->ctrs, sm_server_close_kind(rc));
    sm__warn_limited(w, &w->sockopt_logged_ms, &w->sockopt_unlogged, what);
    close(fd);
    return false;
}
