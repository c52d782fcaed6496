/* Servers at their seams, in both execution models: an accepted socket
 * whose options cannot be set. Run once per loop backend. */
#include "server_util.h"

#include <signal.h>
#include <stdatomic.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
