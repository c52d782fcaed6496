/* Servers at their seams, in both execution models: an accepted socket
 * whose options cannot be set, and a worker whose event loop keeps failing
 * (made to fail through the internal run hook, sm__server_set_run). Run
 * once per loop backend. */
#include "server_util.h"

#include <signal.h>
#include <stdatomic.h>

#include "server_internal.h"

static const srv_variant loop_reuseport = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant loop_dispatch = {SM_SERVER_LOOP, SM_ACCEPT_DISPATCH, 3};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

/* What the handlers saw. */
typedef struct seen {
    atomic_int opens, closes;
    atomic_int reasons[SM_CLOSE_KINDS];
    pthread_mutex_t lock;
    char details[1024]; /* every close's detail, one a line */
} seen;

static void
count_open(sm_peer *p)
{
    seen *s = sm_server_get_data(sm_peer_server(p));
    atomic_fetch_add(&s->opens, 1);
}

static void
count_close(sm_peer *p, int reason)
{
    seen *s = sm_server_get_data(sm_peer_server(p));
    pthread_mutex_lock(&s->lock);
    size_t n = strlen(s->details);
    snprintf(s->details + n, sizeof s->details - n, "%s\n", sm_peer_error_detail(p));
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->reasons[sm_server_close_kind(reason)], 1);
    atomic_fetch_add(&s->closes, 1);
}

static bool
details_have(seen *s, const char *what)
{
    pthread_mutex_lock(&s->lock);
    bool has = strstr(s->details, what) != NULL;
    pthread_mutex_unlock(&s->lock);
    return has;
}

/* ---- accepted sockets ------------------------------------------------------------ */

/* TCP_KEEPCNT takes at most 127: every accepted TCP socket's options fail
 * (EINVAL). Unix sockets take no TCP options, so they are unaffected. */
static void
test_sockopt_failure(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    srv_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    static const sm_sock_opts bad = {.keepalive = true, .keepalive_cnt = 1000};
    char unix_ep[128];
    static atomic_int counter;
    snprintf(unix_ep, sizeof unix_ep, "unix:@sm-seams-%d-%d", (int)getpid(),
             atomic_fetch_add(&counter, 1));
    const char *eps[] = {"tcp://127.0.0.1:0", unix_ep, NULL};
    sm_server_opts o = {.listen = eps,
                        .sock = &bad,
                        .on_open = count_open,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s,
                        .log = srv_log_cb,
                        .log_data = &log};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);

    for (int i = 0; i < 3; i++) {
        sm_conn *c = cli_dial(ep);
        cli_expect_end(c, 5000);
        sm_conn_free(c);
    }
    /* Counted before the close the client saw. */
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.accept_errors, 3);
    assert_int_equal(st.closes[SM_CLOSE_OTHER], 3);
    assert_int_equal(st.opened, 0);
    assert_int_equal(st.current, 0);
    assert_int_equal(atomic_load(&s.opens), 0);
    /* The first is logged; the next ones within a second only counted. */
    assert_true(srv_log_has(&log, "cannot set its socket options"));
    assert_true(srv_log_has(&log, sm_strerror(-EINVAL)));

    sm_conn *u = cli_dial(unix_ep);
    cli_echo(u, "a Unix socket takes no TCP options");
    sm_conn_free(u);
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    st = srv_stats(srv);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.closes[SM_CLOSE_CLEAN], 1);
    assert_int_equal(atomic_load(&s.closes), 1);
    sm_server_free(srv);
}

/* ---- a failing loop ------------------------------------------------------------- */

/* Which workers' runs fail: -1 none, -2 all, else the worker's index. */
static atomic_int fail_worker = -1;

/* One iteration per call, so that a worker notices when it is told to fail. */
static int
flaky_run(sm_loop *loop, sm_run_mode mode)
{
    (void)mode;
    const sm__worker *w = sm_loop_get_data(loop);
    int f = atomic_load(&fail_worker);
    if (f == -2 || f == w->index) return -EIO;
    return sm_loop_run(loop, SM_RUN_ONCE);
}

static sm_server *
start_flaky(sm_server_opts *o, char *ep, size_t cap)
{
    sm_server *srv;
    char why[256] = "";
    int rc = sm_server_new(&srv, o, why, sizeof why);
    if (rc < 0) fail_msg("sm_server_new: %s: %s", sm_err_name(rc), why);
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    SM_ASSERT_OK(sm_endpoint_format(&e, ep, cap));
    sm__server_set_run(srv, flaky_run);
    SM_ASSERT_OK(sm_server_start(srv));
    return srv;
}

/* Read until the server ends the connection (broadcast copies of "wake"
 * may come first); returns how it ended. */
static int
read_to_end(sm_conn *c)
{
    for (int i = 0; i < 10; i++) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, 10000);
        if (rc == -ETIMEDOUT) fail_msg("the server did not end the connection");
        if (rc != 1) return rc;
        if (m.len != 4 || memcmp(m.data, "wake", 4)) fail_msg("unexpected %zu bytes", m.len);
    }
    fail_msg("no end after 10 messages");
    return 0;
}

/* Every worker's loop fails: the server gives up, logs why, closes every
 * connection and sm_server_wait reports the error. */
static void
test_loop_failure(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    srv_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_open = count_open,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s,
                        .log = srv_log_cb,
                        .log_data = &log};
    srv_apply(&o, v);
    atomic_store(&fail_worker, -1);
    char ep[128];
    sm_server *srv = start_flaky(&o, ep, sizeof ep);
    sm_conn *c1 = cli_dial(ep);
    cli_echo(c1, "before");

    atomic_store(&fail_worker, -2);
    /* Wake the workers: a broadcast wakes every loop; the thread model's
     * acceptor wakes for a connection. */
    sm_conn *c2 = NULL;
    if (v->model == SM_SERVER_LOOP)
        SM_ASSERT_OK(sm_server_broadcast(srv, NULL, -1, "wake", 4));
    else
        c2 = cli_dial(ep);
    SM_ASSERT_ERR(sm_server_wait(srv), -EIO);
    SM_ASSERT_ERR(sm_server_wait(srv), -EIO); /* and again */
    int rc = read_to_end(c1);
    assert_true(rc <= 0 && rc != -ETIMEDOUT);
    sm_conn_free(c1);
    if (c2) sm_conn_free(c2);

    assert_true(srv_log_has(&log, "the loop failed 8 times in a row"));
    assert_true(srv_log_has(&log, sm_strerror(-EIO)));
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.current, 0);
    int opens = atomic_load(&s.opens);
    assert_true(opens >= 1);
    assert_int_equal(atomic_load(&s.closes), opens);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_DRAIN]), opens);
    if (v->model == SM_SERVER_LOOP) assert_true(details_have(&s, "loop failed"));
    sm_server_free(srv);
    atomic_store(&fail_worker, -1);
}

/* One of three dispatched loops fails: its connection is closed at once,
 * the others are drained as in a graceful stop. */
static void
test_one_loop_fails(void **state)
{
    (void)state;
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    srv_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_open = count_open,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s,
                        .log = srv_log_cb,
                        .log_data = &log};
    srv_apply(&o, &loop_dispatch);
    atomic_store(&fail_worker, -1);
    char ep[128];
    sm_server *srv = start_flaky(&o, ep, sizeof ep);
    /* Dispatched in turn: c[i] is served by loop i. */
    sm_conn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = cli_dial(ep);
        cli_echo(c[i], "before");
    }
    atomic_store(&fail_worker, 2);
    SM_ASSERT_OK(sm_server_broadcast(srv, NULL, -1, "wake", 4));
    /* Loops 0 and 1 drain: FIN once quiet, then the client's close is a
     * clean end. Loop 2's connection is closed at once. */
    for (int i = 0; i < 3; i++) {
        int rc = read_to_end(c[i]);
        if (i < 2) SM_ASSERT_ERR(rc, 0);
        sm_conn_free(c[i]);
    }
    SM_ASSERT_ERR(sm_server_wait(srv), -EIO);
    assert_true(srv_log_has(&log, "loop 2: the loop failed 8 times in a row"));
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_CLEAN]), 2);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_DRAIN]), 1);
    assert_true(details_have(&s, "loop failed"));
    assert_int_equal(srv_stats(srv).current, 0);
    sm_server_free(srv);
    atomic_store(&fail_worker, -1);
}

#define VARIANTS(fn)                                                                               \
    cmocka_unit_test_prestate(fn, (void *)&loop_reuseport),                                        \
        cmocka_unit_test_prestate(fn, (void *)&loop_dispatch),                                     \
        cmocka_unit_test_prestate(fn, (void *)&threads)

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        VARIANTS(test_sockopt_failure),
        VARIANTS(test_loop_failure),
        cmocka_unit_test(test_one_loop_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
