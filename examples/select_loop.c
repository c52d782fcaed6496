/* The HOWTO's select() program, on sm_loop.
 *
 *   select_loop [ENDPOINT] [--clients N]
 *
 * An echo server written at the level the HOWTO's last chapter works at:
 * the listening socket and every client are io watchers (select's list of
 * potential readers), a timer plays select's timeout, and each watcher asks
 * for write readiness only while it has bytes the kernel did not take
 * (readiness says a call will not block, not that it will move everything).
 * The first line printed is the bound address. With --clients N it exits
 * after N clients have come and gone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/loop.h>
#include <sockmsg/socket.h>

struct client {
    sm_io io;
    size_t pending, off; /* echo bytes the kernel has not taken yet */
    char buf[4096];
};

struct server {
    sm_io listener;
    sm_timer tick;
    long clients_left; /* < 0: forever */
    long active;
};

static void
client_done(sm_io *w)
{
    /* w lives inside the client: take what we need from it before freeing. */
    sm_loop *loop = w->loop;
    struct server *srv = sm_loop_get_data(loop);
    free(w->data);
    srv->active--;
    if (srv->clients_left == 0 && srv->active == 0) sm_loop_stop(loop);
}

static void
on_client(sm_io *w, unsigned events)
{
    struct client *c = w->data;
    if ((events & SM_WRITE) && c->pending) {
        ssize_t n = send(w->fd, c->buf + c->off, c->pending, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            sm_io_close(w, client_done);
            return;
        }
        if (n > 0) {
            c->off += (size_t)n;
            c->pending -= (size_t)n;
        }
        if (c->pending == 0) /* everything written: back to reading only */
            sm_io_set_events(w, SM_READ);
        return;
    }
    if (!(events & SM_READ) || c->pending) return;
    ssize_t n = recv(w->fd, c->buf, sizeof c->buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        sm_io_close(w, client_done); /* peer closed (or failed): clean up */
        return;
    }
    if (n < 0) return;
    ssize_t s = send(w->fd, c->buf, (size_t)n, MSG_NOSIGNAL);
    if (s < 0 && errno != EAGAIN) {
        sm_io_close(w, client_done);
        return;
    }
    /* guide: partial */
    size_t sent = s > 0 ? (size_t)s : 0;
    if (sent < (size_t)n) {
        /* The kernel took part of it: keep the rest, wait for writability,
         * and stop reading until it is out (our own backpressure). */
        c->off = sent;
        c->pending = (size_t)n - sent;
        sm_io_set_events(w, SM_WRITE);
    }
    /* guide: end */
}

static void
on_listener(sm_io *w, unsigned events)
{
    (void)events;
    struct server *srv = w->data;
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    /* guide: watch */
    sm_io_init(w->loop, &c->io, fd, on_client);
    c->io.data = c;
    if (sm_io_start(&c->io, SM_READ) < 0) {
        close(fd);
        free(c);
        return;
    }
    /* guide: end */
    srv->active++;
    if (srv->clients_left > 0 && --srv->clients_left == 0)
        sm_io_stop(w); /* no more clients wanted: stop listening */
}

static void
on_tick(sm_timer *t)
{
    /* select()'s timeout: a chance to do periodic work while nothing happens. */
    struct server *srv = t->data;
    fprintf(stderr, "select_loop: %ld clients connected\n", srv->active);
}

int
main(int argc, char **argv)
{
    const char *where = "tcp://127.0.0.1:0";
    struct server srv = {.clients_left = -1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            srv.clients_left = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-')
            where = argv[i];
        else {
            fprintf(stderr, "usage: select_loop [ENDPOINT] [--clients N]\n");
            return 2;
        }
    }
    sm_endpoint ep, bound;
    char why[256] = "", addr[256];
    int lfd = sm_endpoint_parse(&ep, where, why, sizeof why);
    if (lfd >= 0) lfd = sm_listen_endpoint(&ep, NULL, 0, &bound, why, sizeof why);
    sm_loop *loop;
    if (lfd < 0 || sm_sock_set_nonblock(lfd, true) < 0 || sm_loop_new(&loop, NULL) < 0) {
        fprintf(stderr, "select_loop: %s\n", why[0] ? why : sm_strerror(lfd));
        return 1;
    }
    sm_loop_set_data(loop, &srv);
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);

    sm_io_init(loop, &srv.listener, lfd, on_listener);
    srv.listener.data = &srv;
    sm_io_start(&srv.listener, SM_READ);
    sm_timer_init(loop, &srv.tick, on_tick);
    srv.tick.data = &srv;
    sm_timer_start(&srv.tick, 5000, 5000);

    sm_loop_run(loop, SM_RUN_DEFAULT);
    sm_timer_stop(&srv.tick);
    sm_io_stop(&srv.listener);
    close(lfd);
    sm_loop_run(loop, SM_RUN_NOWAIT); /* let pending closes finish */
    return sm_loop_free(loop) < 0 ? 1 : 0;
}
