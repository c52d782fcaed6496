/* loop module, part 1: backend choice, io watchers, closing from callbacks,
 * deferred callbacks, run modes, stop and wake-up across threads, many fds.
 * Runs once per backend (SOCKMSG_BACKEND=epoll / poll, see CMakeLists.txt).
 * Timers are in test_loop_timer.c, signals in test_loop_signal.c. */
#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/loop.h>

#include "loop_internal.h" /* sm__loop_ctl_calls */

/* ---- fixtures ---------------------------------------------------------- */

static sm_loop *
loop_new_opts(const sm_loop_opts *o)
{
    sm_loop *l = NULL;
    SM_ASSERT_OK(sm_loop_new(&l, o));
    assert_non_null(l);
    return l;
}

static sm_loop *
loop_new(void)
{
    return loop_new_opts(NULL);
}

/* Deliver what is still queued (on_close calls), then free: must succeed. */
static void
loop_free(sm_loop *l)
{
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 0);
    SM_ASSERT_ERR(sm_loop_free(l), 0);
}

static void
pair(int sv[2])
{
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
}

static void
put(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* A timer that bounds a run: it stops the loop and says it did. */
typedef struct guard {
    sm_timer t;
    bool fired;
} guard;

static void
guard_cb(sm_timer *t)
{
    guard *g = (guard *)t;
    g->fired = true;
    sm_loop_stop(t->loop);
}

static void
guard_start(sm_loop *l, guard *g, uint64_t ms)
{
    g->fired = false;
    sm_timer_init(l, &g->t, guard_cb);
    SM_ASSERT_OK(sm_timer_start(&g->t, ms, 0));
}

/* An io watcher that records its calls and reads what is there. */
typedef struct rec {
    sm_io w;
    int calls;
    unsigned last;
    bool drain;
    char buf[256];
    size_t got;
    bool eof;
} rec;

static void
rec_cb(sm_io *w, unsigned events)
{
    rec *r = (rec *)w;
    r->calls++;
    r->last = events;
    if (!r->drain || !(events & SM_READ)) return;
    for (;;) {
        ssize_t n = read(w->fd, r->buf + r->got, sizeof r->buf - r->got);
        if (n > 0) {
            r->got += (size_t)n;
            continue;
        }
        if (n == 0) r->eof = true;
        break;
    }
}

static void
rec_init(sm_loop *l, rec *r, int fd, bool drain)
{
    memset(r, 0, sizeof *r);
    r->drain = drain;
    sm_io_init(l, &r->w, fd, rec_cb);
}

/* ---- backend choice ---------------------------------------------------- */

static void
test_backend_choice(void **state)
{
    (void)state;
    const char *env = getenv("SOCKMSG_BACKEND");
    char saved[64] = "";
    if (env) snprintf(saved, sizeof saved, "%s", env);

    sm_loop *l = loop_new();
    print_message("backend: %s\n", sm_loop_backend_name(l));
    assert_string_equal(sm_loop_backend_name(l), *saved ? saved : "epoll");
    loop_free(l);

    /* Explicit options win over the environment. */
    l = loop_new_opts(&(sm_loop_opts){.backend = SM_BACKEND_POLL});
    assert_string_equal(sm_loop_backend_name(l), "poll");
    loop_free(l);
    l = loop_new_opts(&(sm_loop_opts){.backend = SM_BACKEND_EPOLL});
    assert_string_equal(sm_loop_backend_name(l), "epoll");
    loop_free(l);

    SM_ASSERT_ERR(sm_loop_new(&l, &(sm_loop_opts){.backend = (sm_loop_backend)7}), -EINVAL);
    setenv("SOCKMSG_BACKEND", "kqueue", 1);
    SM_ASSERT_ERR(sm_loop_new(&l, NULL), SM_ERR_BACKEND);
    assert_non_null(strstr(sm_strerror(SM_ERR_BACKEND), "SOCKMSG_BACKEND"));
    l = loop_new_opts(&(sm_loop_opts){.backend = SM_BACKEND_POLL});
    loop_free(l);
    setenv("SOCKMSG_BACKEND", "poll", 1);
    l = loop_new();
    assert_string_equal(sm_loop_backend_name(l), "poll");
    assert_null(sm_loop_backend_why(l));
    loop_free(l);

    /* io_uring, by name or by option: on this kernel it runs (the build
     * has liburing), or the loop is on epoll and says why. */
    setenv("SOCKMSG_BACKEND", "io_uring", 1);
    for (int i = 0; i < 2; i++) {
        l = i ? loop_new_opts(&(sm_loop_opts){.backend = SM_BACKEND_IO_URING}) : loop_new();
#ifdef SM_HAVE_URING
        assert_string_equal(sm_loop_backend_name(l), "io_uring");
        assert_null(sm_loop_backend_why(l));
#else
        assert_string_equal(sm_loop_backend_name(l), "epoll");
        assert_non_null(strstr(sm_loop_backend_why(l), "built without liburing"));
#endif
        loop_free(l);
    }
    if (env)
        setenv("SOCKMSG_BACKEND", saved, 1);
    else
        unsetenv("SOCKMSG_BACKEND");

    /* data */
    int x;
    l = loop_new_opts(&(sm_loop_opts){.data = &x});
    assert_ptr_equal(sm_loop_get_data(l), &x);
    sm_loop_set_data(l, NULL);
    assert_null(sm_loop_get_data(l));
    loop_free(l);
    SM_ASSERT_ERR(sm_loop_free(NULL), 0);
}

static void
test_watcher_sizes(void **state)
{
    (void)state;
    /* An idle stream embeds these: they must stay small. */
    print_message("sizeof sm_io %zu, sm_timer %zu, sm_signal %zu, sm_defer %zu\n", sizeof(sm_io),
                  sizeof(sm_timer), sizeof(sm_signal), sizeof(sm_defer));
    assert_true(sizeof(sm_io) <= 40);
    /* Its heap links are inside it (starting one never allocates); no
     * per-connection object embeds one. */
    assert_true(sizeof(sm_timer) <= 72);
    assert_true(sizeof(sm_signal) <= 40);
    assert_true(sizeof(sm_defer) <= 40);
}

/* ---- run modes ---------------------------------------------------------- */

static void
test_run_empty(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 0);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 0);
    SM_ASSERT_ERR(sm_loop_run(l, (sm_run_mode)9), -EINVAL);
    loop_free(l);
}

static int tick_calls;
static int64_t tick_now, tick_due; /* the loop's clock at the last call; its due */
static void
tick_cb(sm_timer *t)
{
    tick_calls++;
    tick_now = sm_loop_now(t->loop);
    tick_due = t->due;
}

static void
test_run_modes(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    sm_timer far, near1, near2;
    tick_calls = 0;

    /* NOWAIT: one pass, no wait, the far timer stays. */
    sm_timer_init(l, &far, tick_cb);
    SM_ASSERT_OK(sm_timer_start(&far, 100000, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    /* It did not wait for the timer: by the loop's own clock (refreshed by
     * the run) the timer is not due yet, and it did not fire. */
    assert_true(sm_loop_now(l) < far.due);
    assert_int_equal(tick_calls, 0);
    sm_timer_stop(&far);

    /* ONCE waits for the timer and returns 0: nothing is left. */
    sm_timer_init(l, &near1, tick_cb);
    SM_ASSERT_OK(sm_timer_start(&near1, 20, 0));
    int64_t started = sm_loop_now(l);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 0);
    assert_int_equal(tick_calls, 1);
    /* It fired once the loop's clock had reached its deadline, 20 ms on. */
    assert_int_equal(tick_due, started + 20);
    assert_true(tick_now >= tick_due);

    /* ONCE with a repeating timer: still active. */
    SM_ASSERT_OK(sm_timer_start(&near1, 1, 1));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(tick_calls, 2);
    sm_timer_stop(&near1);

    /* DEFAULT returns 0 once the last watcher is done. */
    sm_timer_init(l, &near2, tick_cb);
    SM_ASSERT_OK(sm_timer_start(&near1, 10, 0));
    SM_ASSERT_OK(sm_timer_start(&near2, 20, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(tick_calls, 4);
    loop_free(l);
}

static int reentry_rc, free_rc;
static void
reenter_cb(sm_timer *t)
{
    reentry_rc = sm_loop_run(t->loop, SM_RUN_NOWAIT);
    free_rc = sm_loop_free(t->loop);
}

static void
test_run_reentry_and_busy_free(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    sm_timer t;
    sm_timer_init(l, &t, reenter_cb);
    SM_ASSERT_OK(sm_timer_start(&t, 0, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    SM_ASSERT_ERR(reentry_rc, -EBUSY);
    SM_ASSERT_ERR(free_rc, -EBUSY);

    /* Not while something is active or an on_close is owed. */
    SM_ASSERT_OK(sm_timer_start(&t, 1000, 0));
    SM_ASSERT_ERR(sm_loop_free(l), -EBUSY);
    sm_timer_stop(&t);
    int sv[2];
    pair(sv);
    sm_io w;
    sm_io_init(l, &w, sv[0], NULL);
    SM_ASSERT_OK(sm_io_close(&w, NULL));
    SM_ASSERT_ERR(sm_loop_free(l), -EBUSY);
    close(sv[1]);
    loop_free(l);
}

/* ---- io readiness -------------------------------------------------------- */

static void
test_io_read_write(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    pair(sv);
    rec r;
    rec_init(l, &r, sv[0], true);
    SM_ASSERT_OK(sm_io_start(&r.w, SM_READ));
    assert_true(sm_io_is_active(&r.w));
    assert_int_equal(sm_io_get_events(&r.w), SM_READ);

    /* Nothing to read: no call. */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(r.calls, 0);

    put(sv[1], "hello");
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, SM_READ);
    assert_int_equal(r.got, 5);
    assert_memory_equal(r.buf, "hello", 5);

    /* A socket is writable at once; both events come in one call. */
    put(sv[1], "!");
    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ | SM_WRITE));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.last, SM_READ | SM_WRITE);
    assert_int_equal(r.got, 6);

    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_WRITE));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.last, SM_WRITE);

    sm_io_stop(&r.w);
    assert_false(sm_io_is_active(&r.w));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void
test_io_level_triggered(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    pair(sv);
    rec r;
    rec_init(l, &r, sv[0], false); /* never reads */
    SM_ASSERT_OK(sm_io_start(&r.w, SM_READ));
    put(sv[1], "x");
    for (int i = 1; i <= 3; i++) {
        SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
        assert_int_equal(r.calls, i);
    }
    sm_io_stop(&r.w);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void
test_io_hangup(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    pair(sv);
    rec r;
    rec_init(l, &r, sv[0], true);
    SM_ASSERT_OK(sm_io_start(&r.w, SM_READ));
    put(sv[1], "bye");
    close(sv[1]);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_true(r.last & SM_READ);
    assert_int_equal(r.got, 3);
    assert_true(r.eof);
    sm_io_stop(&r.w);
    close(sv[0]);
    loop_free(l);
}

/* Interest changes: adding costs at most one backend call, removing is
 * deferred to the end of the iteration and dropped if undone. */
static void
test_io_interest_changes(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    pair(sv);
    rec r;
    rec_init(l, &r, sv[0], true);
    uint64_t c0 = sm__loop_ctl_calls(l);

    SM_ASSERT_OK(sm_io_start(&r.w, SM_READ));
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 1);
    SM_ASSERT_OK(sm_io_start(&r.w, SM_READ)); /* same interest: nothing */
    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 1);
    assert_int_equal(r.calls, 0);

    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ | SM_WRITE));
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 2);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, SM_WRITE);

    /* Toggle within one iteration: no backend call at all. */
    for (int i = 0; i < 10; i++) {
        SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ));
        SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ | SM_WRITE));
    }
    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ));
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 2);
    /* The removal is carried out before the wait, and the callback is not
     * called for the event no longer wanted. */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 3);
    assert_int_equal(r.calls, 1);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 3);

    /* No interest: the fd leaves the backend; data does not call back. */
    SM_ASSERT_OK(sm_io_set_events(&r.w, 0));
    put(sv[1], "abc");
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 4);
    assert_int_equal(r.calls, 1);
    assert_true(sm_io_is_active(&r.w));
    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_READ));
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 5);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.got, 3);

    /* Removing an event unwanted in the same callback where it is
     * reported: the watcher sees only what it still wants. */
    SM_ASSERT_ERR(sm_io_set_events(&r.w, 4), -EINVAL);
    SM_ASSERT_ERR(sm_io_start(&r.w, 8), -EINVAL);
    sm_io_stop(&r.w);
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 6);
    /* Inactive: only recorded. */
    SM_ASSERT_OK(sm_io_set_events(&r.w, SM_WRITE));
    assert_int_equal(sm_io_get_events(&r.w), SM_WRITE);
    assert_int_equal(sm__loop_ctl_calls(l) - c0, 6);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void
test_io_errors(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    sm_io a, b;
    sm_io_init(l, &a, -1, rec_cb);
    SM_ASSERT_ERR(sm_io_start(&a, SM_READ), -EBADF);
    assert_false(sm_io_is_active(&a));

    int sv[2];
    pair(sv);
    sm_io_init(l, &a, sv[0], rec_cb);
    sm_io_init(l, &b, sv[0], rec_cb);
    SM_ASSERT_OK(sm_io_start(&a, SM_READ));
    SM_ASSERT_ERR(sm_io_start(&b, SM_READ), -EEXIST);
    assert_false(sm_io_is_active(&b));
    sm_io_stop(&a);
    SM_ASSERT_OK(sm_io_start(&b, SM_READ)); /* free again */
    sm_io_stop(&b);

    /* A regular file: epoll refuses it, poll reports it always ready. */
    char dir[256], path[300];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/f", dir);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(f >= 0);
    sm_io_init(l, &a, f, rec_cb);
    if (!strcmp(sm_loop_backend_name(l), "epoll")) {
        SM_ASSERT_ERR(sm_io_start(&a, SM_READ), -EPERM);
        assert_false(sm_io_is_active(&a));
    } else {
        SM_ASSERT_OK(sm_io_start(&a, SM_READ));
        sm_io_stop(&a);
    }
    close(f);
    sm_test_rmdir(dir);

    /* Closed: no more starts; a second close fails and its callback never
     * runs. */
    sm_io_init(l, &a, sv[0], rec_cb);
    SM_ASSERT_OK(sm_io_close(&a, NULL));
    assert_int_equal(a.fd, -1);
    assert_int_equal(fcntl(sv[0], F_GETFD), -1); /* the fd is closed */
    SM_ASSERT_ERR(sm_io_start(&a, SM_READ), SM_ERR_CLOSED);
    SM_ASSERT_ERR(sm_io_close(&a, NULL), SM_ERR_CLOSED);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 0);
    close(sv[1]);
    loop_free(l);
}

/* Two watchers writable in one iteration; the first to run removes the
 * other's interest: the other is not called for the event it no longer
 * wants. */
typedef struct narrower {
    sm_io w;
    struct narrower *other;
    int calls;
} narrower;

static void
narrower_cb(sm_io *w, unsigned events)
{
    narrower *n = (narrower *)w;
    (void)events;
    n->calls++;
    SM_ASSERT_OK(sm_io_set_events(&n->other->w, SM_READ));
    SM_ASSERT_OK(sm_io_set_events(w, SM_READ));
}

static void
test_io_interest_removed_while_pending(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int a[2], b[2];
    pair(a);
    pair(b);
    narrower x = {0}, y = {0};
    x.other = &y;
    y.other = &x;
    sm_io_init(l, &x.w, a[0], narrower_cb);
    sm_io_init(l, &y.w, b[0], narrower_cb);
    SM_ASSERT_OK(sm_io_start(&x.w, SM_WRITE));
    SM_ASSERT_OK(sm_io_start(&y.w, SM_WRITE));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(x.calls + y.calls, 1);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(x.calls + y.calls, 1);
    sm_io_stop(&x.w);
    sm_io_stop(&y.w);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    loop_free(l);
}

/* ---- loopback TCP: accept, connect, echo, close --------------------------- */

typedef struct tcp_t {
    sm_io listener, server, client;
    bool connected;
    char srv_buf[16], cli_buf[16];
    size_t srv_got, cli_got;
    bool cli_eof;
    int closes;
} tcp_t;

static void
tcp_on_close(sm_io *w)
{
    tcp_t *t = w->data;
    if (++t->closes == 3) sm_loop_stop(w->loop);
}

static void
server_cb(sm_io *w, unsigned events)
{
    tcp_t *t = w->data;
    (void)events;
    ssize_t n = read(w->fd, t->srv_buf + t->srv_got, sizeof t->srv_buf - t->srv_got);
    if (n > 0) t->srv_got += (size_t)n;
    if (t->srv_got == 4) {
        assert_memory_equal(t->srv_buf, "ping", 4);
        assert_int_equal(write(w->fd, "pong", 4), 4);
        /* Closing from its own callback: the client sees the reply, then
         * EOF. */
        SM_ASSERT_OK(sm_io_close(w, tcp_on_close));
    }
}

static void
listener_cb(sm_io *w, unsigned events)
{
    tcp_t *t = w->data;
    assert_int_equal(events, SM_READ);
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(fd >= 0);
    sm_io_init(w->loop, &t->server, fd, server_cb);
    t->server.data = t;
    SM_ASSERT_OK(sm_io_start(&t->server, SM_READ));
    SM_ASSERT_OK(sm_io_close(w, tcp_on_close)); /* one connection is all */
}

static void
client_cb(sm_io *w, unsigned events)
{
    tcp_t *t = w->data;
    if (!t->connected) {
        assert_true(events & SM_WRITE);
        int err = -1;
        socklen_t len = sizeof err;
        assert_int_equal(getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
        assert_int_equal(err, 0);
        t->connected = true;
        assert_int_equal(write(w->fd, "ping", 4), 4);
        SM_ASSERT_OK(sm_io_set_events(w, SM_READ));
        return;
    }
    assert_int_equal(events, SM_READ);
    for (;;) {
        ssize_t n = read(w->fd, t->cli_buf + t->cli_got, sizeof t->cli_buf - t->cli_got);
        if (n > 0) {
            t->cli_got += (size_t)n;
            continue;
        }
        if (n == 0) {
            t->cli_eof = true;
            SM_ASSERT_OK(sm_io_close(w, tcp_on_close));
        }
        return;
    }
}

static void
test_tcp_echo(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    tcp_t t = {0};
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    SM_ASSERT_OK(bind(lfd, (struct sockaddr *)&sa, sizeof sa));
    SM_ASSERT_OK(listen(lfd, 8));
    SM_ASSERT_OK(getsockname(lfd, (struct sockaddr *)&sa, &salen));
    assert_int_not_equal(sa.sin_port, 0);
    sm_io_init(l, &t.listener, lfd, listener_cb);
    t.listener.data = &t;
    SM_ASSERT_OK(sm_io_start(&t.listener, SM_READ));

    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(cfd >= 0);
    int rc = connect(cfd, (struct sockaddr *)&sa, sizeof sa);
    assert_true(rc == 0 || errno == EINPROGRESS);
    sm_io_init(l, &t.client, cfd, client_cb);
    t.client.data = &t;
    SM_ASSERT_OK(sm_io_start(&t.client, SM_WRITE));

    guard g;
    guard_start(l, &g, 10000);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 1); /* the guard remains */
    assert_false(g.fired);
    assert_int_equal(t.cli_got, 4);
    assert_memory_equal(t.cli_buf, "pong", 4);
    assert_true(t.cli_eof);
    assert_int_equal(t.closes, 3);
    sm_timer_stop(&g.t);
    loop_free(l);
}

/* ---- closing and stopping from callbacks --------------------------------- */

/* Two watchers readable in the same iteration; whichever runs first stops
 * (or closes) and frees the other. ASan proves the other is never touched. */
typedef struct duo duo;
typedef struct member {
    sm_io w;
    duo *d;
} member;

struct duo {
    member *m[2];
    int calls;
    int closes;
    bool in_close_call;
    bool close_mode;
    /* fd reuse: a third watcher on the victim's fd number */
    sm_io late;
    int late_calls;
    int late_pair[2];
    bool reuse;
};

static void
member_on_close(sm_io *w)
{
    member *m = (member *)w;
    assert_false(m->d->in_close_call);
    m->d->closes++;
    free(m);
}

static void
late_cb(sm_io *w, unsigned events)
{
    duo *d = w->data;
    (void)events;
    d->late_calls++;
}

static void
member_cb(sm_io *w, unsigned events)
{
    member *m = (member *)w;
    duo *d = m->d;
    (void)events;
    d->calls++;
    member *other = d->m[0] == m ? d->m[1] : d->m[0];
    if (!other) return;
    d->m[d->m[0] == m ? 1 : 0] = NULL;
    int victim_fd = other->w.fd;
    if (d->close_mode) {
        d->in_close_call = true;
        SM_ASSERT_OK(sm_io_close(&other->w, member_on_close));
        d->in_close_call = false;
        assert_int_equal(d->closes, 0);
    } else {
        sm_io_stop(&other->w);
        close(victim_fd);
        free(other);
    }
    if (d->reuse) {
        /* The victim's fd number now names a socket with nothing to read;
         * its event already fetched in this batch must not reach it. */
        pair(d->late_pair);
        if (d->late_pair[1] == victim_fd) {
            d->late_pair[1] = d->late_pair[0];
            d->late_pair[0] = victim_fd;
        }
        if (d->late_pair[0] != victim_fd) {
            assert_int_equal(dup3(d->late_pair[0], victim_fd, O_CLOEXEC), victim_fd);
            close(d->late_pair[0]);
            d->late_pair[0] = victim_fd;
        }
        sm_io_init(w->loop, &d->late, victim_fd, late_cb);
        d->late.data = d;
        SM_ASSERT_OK(sm_io_start(&d->late, SM_READ));
    }
}

static void
run_duo(bool close_mode, bool reuse)
{
    sm_loop *l = loop_new();
    duo d = {.close_mode = close_mode, .reuse = reuse};
    int peer[2];
    for (int i = 0; i < 2; i++) {
        int sv[2];
        pair(sv);
        member *m = calloc(1, sizeof *m);
        assert_non_null(m);
        m->d = &d;
        sm_io_init(l, &m->w, sv[0], member_cb);
        SM_ASSERT_OK(sm_io_start(&m->w, SM_READ));
        put(sv[1], "x");
        peer[i] = sv[1];
        d.m[i] = m;
    }
    SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.late_calls, 0);
    assert_int_equal(d.closes, close_mode ? 1 : 0);

    /* The survivor goes the same way. */
    member *s = d.m[0] ? d.m[0] : d.m[1];
    assert_non_null(s);
    if (close_mode) {
        d.in_close_call = true;
        SM_ASSERT_OK(sm_io_close(&s->w, member_on_close));
        d.in_close_call = false;
    } else {
        int fd = s->w.fd;
        sm_io_stop(&s->w);
        close(fd);
        free(s);
    }
    if (reuse) {
        sm_io_stop(&d.late);
        close(d.late_pair[0]);
        close(d.late_pair[1]);
    }
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(d.closes, close_mode ? 2 : 0);
    assert_int_equal(d.late_calls, 0);
    close(peer[0]);
    close(peer[1]);
    loop_free(l);
}

static void
test_stop_other_pending(void **state)
{
    (void)state;
    run_duo(false, false);
    run_duo(false, true);
}

static void
test_close_other_pending(void **state)
{
    (void)state;
    run_duo(true, false);
    run_duo(true, true);
}

typedef struct self_closer {
    sm_io w;
    int *calls, *closes;
    bool *inside;
} self_closer;

static void
self_on_close(sm_io *w)
{
    self_closer *s = (self_closer *)w;
    assert_false(*s->inside);
    (*s->closes)++;
    free(s);
}

static void
self_cb(sm_io *w, unsigned events)
{
    self_closer *s = (self_closer *)w;
    (void)events;
    (*s->calls)++;
    *s->inside = true;
    SM_ASSERT_OK(sm_io_close(w, self_on_close));
    SM_ASSERT_ERR(sm_io_close(w, self_on_close), SM_ERR_CLOSED);
    SM_ASSERT_ERR(sm_io_start(w, SM_READ), SM_ERR_CLOSED);
    *s->inside = false;
    assert_int_equal(*s->closes, 0);
}

static void
test_close_self(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int calls = 0, closes = 0;
    bool inside = false;
    int sv[2];
    pair(sv);
    self_closer *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->calls = &calls;
    s->closes = &closes;
    s->inside = &inside;
    sm_io_init(l, &s->w, sv[0], self_cb);
    SM_ASSERT_OK(sm_io_start(&s->w, SM_READ | SM_WRITE));
    /* ONCE: the callback and the on_close in the same iteration. */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(closes, 1);
    /* The peer sees the close. */
    char c;
    assert_int_equal(read(sv[1], &c, 1), 0);
    close(sv[1]);
    loop_free(l);
}

/* A stop (not a close) of the own watcher, then freeing it in the callback. */
static void
stop_free_cb(sm_io *w, unsigned events)
{
    int *calls = w->data;
    (void)events;
    (*calls)++;
    sm_io_stop(w);
    free(w);
}

static void
test_stop_free_self(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int calls = 0, sv[2];
    pair(sv);
    sm_io *w = malloc(sizeof *w);
    assert_non_null(w);
    w->data = &calls;
    sm_io_init(l, w, sv[0], stop_free_cb);
    SM_ASSERT_OK(sm_io_start(w, SM_WRITE));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(calls, 1);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

/* Closing outside a run: on_close comes with the next run, not before. */
static int outside_closes;
static void
outside_on_close(sm_io *w)
{
    (void)w;
    outside_closes++;
}

static void
test_close_outside_run(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    pair(sv);
    sm_io w;
    sm_io_init(l, &w, sv[0], rec_cb);
    SM_ASSERT_OK(sm_io_start(&w, SM_READ));
    outside_closes = 0;
    SM_ASSERT_OK(sm_io_close(&w, outside_on_close));
    assert_int_equal(outside_closes, 0);
    assert_false(sm_io_is_active(&w));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(outside_closes, 1);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(outside_closes, 1);
    close(sv[1]);
    loop_free(l);
}

/* ---- deferred callbacks ------------------------------------------------- */

typedef struct drec {
    sm_defer d;
    int id;
    struct dlog *log;
    struct drec *start_other; /* queue this one from the callback */
    struct drec *stop_other;  /* unqueue this one from the callback */
} drec;

typedef struct dlog {
    int ids[32];
    int n;
    bool inside_start;
} dlog;

static void
drec_cb(sm_defer *d)
{
    drec *r = (drec *)d;
    assert_false(r->log->inside_start);
    assert_false(sm_defer_is_active(d));
    r->log->ids[r->log->n++] = r->id;
    if (r->start_other) sm_defer_start(&r->start_other->d);
    if (r->stop_other) sm_defer_stop(&r->stop_other->d);
}

static void
drec_init(sm_loop *l, drec *r, int id, dlog *log)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->log = log;
    sm_defer_init(l, &r->d, drec_cb);
}

static void
defer_from_io_cb(sm_io *w, unsigned events)
{
    drec *r = w->data;
    (void)events;
    r->log->ids[r->log->n++] = 100;
    sm_defer_start(&r->d);
    sm_io_stop(w);
}

static void
test_defer(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    dlog log = {0};
    drec r[4];
    for (int i = 0; i < 4; i++)
        drec_init(l, &r[i], i, &log);

    /* FIFO; a second start keeps the first place; never inside start. */
    log.inside_start = true;
    sm_defer_start(&r[2].d);
    sm_defer_start(&r[0].d);
    sm_defer_start(&r[1].d);
    sm_defer_start(&r[2].d);
    log.inside_start = false;
    assert_true(sm_defer_is_active(&r[2].d));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 0);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.ids[0], 2);
    assert_int_equal(log.ids[1], 0);
    assert_int_equal(log.ids[2], 1);

    /* Stop unqueues, also from another deferred callback of the batch. */
    log.n = 0;
    sm_defer_start(&r[0].d);
    sm_defer_start(&r[1].d);
    sm_defer_start(&r[2].d);
    sm_defer_stop(&r[0].d);
    sm_defer_stop(&r[0].d);
    r[1].stop_other = &r[2];
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.ids[0], 1);
    r[1].stop_other = NULL;

    /* Queued from a deferred callback: the next iteration, which does not
     * wait even though an idle io watcher keeps the loop alive. */
    int sv[2];
    pair(sv);
    rec idle;
    rec_init(l, &idle, sv[0], false);
    SM_ASSERT_OK(sm_io_start(&idle.w, SM_READ));
    guard g;
    guard_start(l, &g, 10000);
    log.n = 0;
    r[0].start_other = &r[1];
    sm_defer_start(&r[0].d);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(log.n, 1);
    assert_true(sm_defer_is_active(&r[1].d));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[1], 1);
    assert_false(g.fired);
    r[0].start_other = NULL;
    sm_io_stop(&idle.w);

    /* Queued from an io callback: the same iteration, after it. */
    log.n = 0;
    sm_io w;
    sm_io_init(l, &w, sv[0], defer_from_io_cb);
    w.data = &r[3];
    SM_ASSERT_OK(sm_io_start(&w, SM_WRITE));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1); /* the guard remains */
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 100);
    assert_int_equal(log.ids[1], 3);
    sm_timer_stop(&g.t);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

/* ---- stop ------------------------------------------------------------------ */

static int stop_ticks;
static void
stop_tick_cb(sm_timer *t)
{
    if (++stop_ticks % 3 == 0) sm_loop_stop(t->loop);
}

static void
test_stop_from_callback(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    pair(sv);
    rec idle;
    rec_init(l, &idle, sv[0], false);
    SM_ASSERT_OK(sm_io_start(&idle.w, SM_READ));
    sm_timer t;
    sm_timer_init(l, &t, stop_tick_cb);
    stop_ticks = 0;
    SM_ASSERT_OK(sm_timer_start(&t, 1, 1));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 1);
    assert_int_equal(stop_ticks, 3);
    /* The stop is spent: the next run goes on until stopped again. */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 1);
    assert_int_equal(stop_ticks, 6);
    sm_timer_stop(&t);
    sm_io_stop(&idle.w);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void
test_stop_before_run(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    sm_timer t;
    sm_timer_init(l, &t, tick_cb);
    tick_calls = 0;
    SM_ASSERT_OK(sm_timer_start(&t, 0, 0));
    sm_loop_stop(l);
    sm_loop_stop(l); /* counts as one */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 1);
    assert_int_equal(tick_calls, 0);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(tick_calls, 1);
    loop_free(l);
}

/* Another thread stops a loop blocked in its wait. The loop tells the thread
 * it is running through a pipe (a timer callback writes it). */
typedef struct stopper {
    sm_loop *loop;
    int ready_rd;
} stopper;

static void *
stopper_main(void *arg)
{
    stopper *s = arg;
    struct pollfd p = {.fd = s->ready_rd, .events = POLLIN};
    if (poll(&p, 1, 10000) == 1) sm_loop_stop(s->loop);
    return NULL;
}

static void
ready_cb(sm_timer *t)
{
    int *wr = t->data;
    put(*wr, "r");
}

static void
test_stop_from_thread(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        sm_loop *l = loop_new();
        int sv[2], pp[2];
        pair(sv);
        SM_ASSERT_OK(pipe2(pp, O_CLOEXEC));
        rec idle;
        rec_init(l, &idle, sv[0], false);
        SM_ASSERT_OK(sm_io_start(&idle.w, SM_READ));
        sm_timer ready;
        sm_timer_init(l, &ready, ready_cb);
        ready.data = &pp[1];
        SM_ASSERT_OK(sm_timer_start(&ready, 0, 0));
        stopper s = {.loop = l, .ready_rd = pp[0]};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, stopper_main, &s), 0);
        /* Returning at all is the point (the stop woke the wait); the test's
         * timeout bounds how long that may take, not a wall-clock assertion. */
        SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 1);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(idle.calls, 0);
        sm_io_stop(&idle.w);
        close(sv[0]);
        close(sv[1]);
        close(pp[0]);
        close(pp[1]);
        loop_free(l);
    }
}

/* ---- wake-up ------------------------------------------------------------- */

#define WAKE_ITEMS 2000

typedef struct wq {
    pthread_mutex_t mu;
    int queued;   /* items pushed, not yet taken */
    bool done;    /* the producer has pushed its last */
    int received; /* loop thread only */
    int wakeups;  /* loop thread only */
    sm_loop *loop;
} wq;

static void
wq_on_wakeup(sm_loop *l)
{
    wq *q = sm_loop_get_data(l);
    pthread_mutex_lock(&q->mu);
    q->received += q->queued;
    q->queued = 0;
    bool done = q->done;
    pthread_mutex_unlock(&q->mu);
    q->wakeups++;
    if (done) sm_loop_stop(l);
}

static void *
producer_main(void *arg)
{
    wq *q = arg;
    for (int i = 0; i < WAKE_ITEMS; i++) {
        pthread_mutex_lock(&q->mu);
        q->queued++;
        if (i == WAKE_ITEMS - 1) q->done = true;
        pthread_mutex_unlock(&q->mu);
        sm_loop_wakeup(q->loop);
    }
    return NULL;
}

static void
test_wakeup_from_thread(void **state)
{
    (void)state;
    wq q = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sm_loop *l = loop_new_opts(&(sm_loop_opts){.on_wakeup = wq_on_wakeup, .data = &q});
    q.loop = l;
    int sv[2];
    pair(sv);
    rec idle;
    rec_init(l, &idle, sv[0], false);
    SM_ASSERT_OK(sm_io_start(&idle.w, SM_READ));
    guard g;
    guard_start(l, &g, 20000);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer_main, &q), 0);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_false(g.fired);
    assert_int_equal(q.received, WAKE_ITEMS);
    assert_true(q.wakeups >= 1 && q.wakeups <= WAKE_ITEMS);
    print_message("%d wake-ups for %d sm_loop_wakeup calls\n", q.wakeups, WAKE_ITEMS);
    sm_timer_stop(&g.t);
    sm_io_stop(&idle.w);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static int plain_wakeups;
static void
count_wakeup(sm_loop *l)
{
    (void)l;
    plain_wakeups++;
}

static void
test_wakeup_coalesces(void **state)
{
    (void)state;
    sm_loop *l = loop_new_opts(&(sm_loop_opts){.on_wakeup = count_wakeup});
    int sv[2];
    pair(sv);
    rec idle;
    rec_init(l, &idle, sv[0], false);
    SM_ASSERT_OK(sm_io_start(&idle.w, SM_READ));
    plain_wakeups = 0;
    for (int i = 0; i < 100; i++)
        sm_loop_wakeup(l);
    /* ONCE does not wait: a wake-up is owed. */
    guard g;
    guard_start(l, &g, 10000);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
    assert_int_equal(plain_wakeups, 1);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(plain_wakeups, 1);
    assert_false(g.fired);
    sm_timer_stop(&g.t);
    sm_io_stop(&idle.w);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

/* ---- many fds --------------------------------------------------------------- */

#define MANY 1000

typedef struct many {
    sm_io w;
    int calls, idx;
    int *done, *closes;
} many;

static void
many_on_close(sm_io *w)
{
    many *m = (many *)w;
    (*m->closes)++;
}

static void
many_cb(sm_io *w, unsigned events)
{
    many *m = (many *)w;
    char c;
    assert_true(events & SM_READ);
    assert_int_equal(read(w->fd, &c, 1), 1);
    m->calls++;
    (*m->done)++;
    /* Half close (fd closed, on_close later), half only stop. By index, not
     * by fd parity: a socketpair's first fd always has the same parity, which
     * depends on how many fds the test inherited. */
    if (m->idx % 2)
        SM_ASSERT_OK(sm_io_close(w, many_on_close));
    else
        sm_io_stop(w);
}

static void
test_many_fds(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * MANY + 64 && rl.rlim_max >= 2 * MANY + 64) {
        rl.rlim_cur = 2 * MANY + 64;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < 2 * MANY + 64) skip();

    sm_loop *l = loop_new();
    many *m = calloc(MANY, sizeof *m);
    int *peer = calloc(MANY, sizeof *peer);
    assert_non_null(m);
    assert_non_null(peer);
    int done = 0, closes = 0, stopped_fds[MANY], nstopped = 0;
    for (int i = 0; i < MANY; i++) {
        int sv[2];
        pair(sv);
        peer[i] = sv[1];
        m[i].idx = i;
        m[i].done = &done;
        m[i].closes = &closes;
        sm_io_init(l, &m[i].w, sv[0], many_cb);
        SM_ASSERT_OK(sm_io_start(&m[i].w, SM_READ));
    }
    /* All ready at once: more than one wait's batch. */
    for (int i = 0; i < MANY; i++)
        put(peer[i], "m");
    guard g;
    guard_start(l, &g, 30000);
    int64_t t0 = sm_test_now_ms();
    for (int it = 0; it < 100 && done < MANY; it++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    print_message("%d fds served in %lld ms\n", done, (long long)(sm_test_now_ms() - t0));
    assert_false(g.fired);
    assert_int_equal(done, MANY);
    sm_timer_stop(&g.t);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(m[i].calls, 1);
        assert_false(sm_io_is_active(&m[i].w));
        if (m[i].w.fd >= 0) stopped_fds[nstopped++] = m[i].w.fd;
    }
    assert_int_equal(closes + nstopped, MANY);
    assert_true(closes > 0 && nstopped > 0);
    for (int i = 0; i < nstopped; i++)
        close(stopped_fds[i]);
    for (int i = 0; i < MANY; i++)
        close(peer[i]);
    free(m);
    free(peer);
    loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_choice),
        cmocka_unit_test(test_watcher_sizes),
        cmocka_unit_test(test_run_empty),
        cmocka_unit_test(test_run_modes),
        cmocka_unit_test(test_run_reentry_and_busy_free),
        cmocka_unit_test(test_io_read_write),
        cmocka_unit_test(test_io_level_triggered),
        cmocka_unit_test(test_io_hangup),
        cmocka_unit_test(test_io_interest_changes),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_io_interest_removed_while_pending),
        cmocka_unit_test(test_tcp_echo),
        cmocka_unit_test(test_stop_other_pending),
        cmocka_unit_test(test_close_other_pending),
        cmocka_unit_test(test_close_self),
        cmocka_unit_test(test_stop_free_self),
        cmocka_unit_test(test_close_outside_run),
        cmocka_unit_test(test_defer),
        cmocka_unit_test(test_stop_from_callback),
        cmocka_unit_test(test_stop_before_run),
        cmocka_unit_test(test_stop_from_thread),
        cmocka_unit_test(test_wakeup_from_thread),
        cmocka_unit_test(test_wakeup_coalesces),
        cmocka_unit_test(test_many_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
