/* Servers with TLS listeners, in both execution models and on every loop
 * backend: echo over tls://, mutual TLS, and the handshake's limits: a
 * silent client closed at the handshake deadline, a plain-TCP client
 * refused as not TLS, both counted and logged with OpenSSL's reason. */
#include "server_util.h"
#include "tls_test.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

static void
serve_tls(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    char why[256];
    sm_tls_config *sc, *cc;
    sc = sm_test_tls_server("leaf.pem", "leaf.key");
    cc = sm_test_tls_client(true);

    srv_log lg = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .on_message = sm_server_handler_echo,
        .threads = 2,
        .tls = sc,
        .log = srv_log_cb,
        .log_data = &lg,
    };
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    assert_memory_equal(ep, "tls://", 6);

    /* Echo over TLS from several clients, one after the other. */
    for (int i = 0; i < 4; i++) {
        sm_conn *c;
        int rc = sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why);
        if (rc < 0) fail_msg("dial %s: %s: %s", ep, sm_err_name(rc), why);
        for (int k = 0; k < 50; k++)
            cli_echo(c, "over tls");
        SM_ASSERT_OK(sm_conn_shutdown(c));
        sm_frame_msg m;
        assert_int_equal(sm_conn_recv(c, &m, 5000), 0); /* the server's close_notify */
        sm_conn_free(c);
    }
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_CLEAN] == 4, 10000);

    /* Plain TCP at the TLS port. */
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    e.tls = 0;
    int fd = SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
    SM_ASSERT_OK(sm_send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18, 5000, NULL));
    char buf[256];
    while (sm_recv_some(fd, buf, sizeof buf, 5000) > 0) {
    }
    close(fd);
    int64_t until = sm_test_now_ms() + 10000;
    while (srv_stats(srv).closes[SM_CLOSE_TLS] == 0 && sm_test_now_ms() < until)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    sm_server_stats st = srv_stats(srv);
    if (st.closes[SM_CLOSE_TLS] != 1) {
        for (int k = 0; k < SM_CLOSE_KINDS; k++)
            fprintf(stderr, "%s=%llu ", sm_server_close_kind_name(k),
                    (unsigned long long)st.closes[k]);
        fprintf(stderr, "\nmodel %d accept %d log:\n%s\n", v->model, v->accept, lg.text);
        fail();
    }
    SM_WAIT_FOR(srv_log_has(&lg, "TLS handshake failed (SM_ERR_TLS_NOT_TLS): "), 5000);
    assert_true(srv_log_has(&lg, "not TLS (plain HTTP on a TLS port?)"));

    /* A client that connects and says nothing is closed at the deadline
     * (short from here on: before, a loaded machine could reach it). */
    SM_ASSERT_OK(sm_tls_config_set_handshake_timeout(sc, 200));
    fd = SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
    ssize_t n = sm_recv_some(fd, buf, sizeof buf, 10000);
    assert_true(n == 0 || n == -ECONNRESET);
    close(fd);
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_TIMEOUT] == 1, 10000);
    SM_WAIT_FOR(srv_log_has(&lg, "TLS handshake"), 5000);

    sm_server_free(srv);
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

static void
refuses_bad_config(void **state)
{
    (void)state;
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .on_message = sm_server_handler_echo,
    };
    sm_server *srv;
    char why[256];
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "needs opts.tls"));
}

static const srv_variant loop_rp = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant loop_dp = {SM_SERVER_LOOP, SM_ACCEPT_DISPATCH, 2};
static const srv_variant thread_m = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 8};

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(serve_tls, (void *)&loop_rp),
        cmocka_unit_test_prestate(serve_tls, (void *)&loop_dp),
        cmocka_unit_test_prestate(serve_tls, (void *)&thread_m),
        cmocka_unit_test(refuses_bad_config),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
