/* Servers under load, in both execution models: 200 clients x 500 pipelined
 * messages echoed and verified, and a graceful stop with 10,000 messages in
 * flight that loses none. Run once per loop backend. */
#include "server_util.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

static const srv_variant loop_reuseport = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant loop_dispatch = {SM_SERVER_LOOP, SM_ACCEPT_DISPATCH, 2};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

/* Message i of client k: its numbers, then filler of a length that varies. */
static size_t
make_msg(uint8_t *out, uint32_t k, uint32_t i)
{
    size_t len = 8 + (k * 7 + i * 13) % 57;
    memcpy(out, &k, 4);
    memcpy(out + 4, &i, 4);
    for (size_t j = 8; j < len; j++)
        out[j] = (uint8_t)(k + i + j);
    return len;
}

/* All n messages of client k, framed (len32be), back to back in one buffer. */
static size_t
make_batch(uint8_t *buf, uint32_t k, uint32_t n)
{
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = make_msg(buf + at + 4, k, i);
        buf[at] = 0;
        buf[at + 1] = 0;
        buf[at + 2] = (uint8_t)(len >> 8);
        buf[at + 3] = (uint8_t)len;
        at += 4 + len;
    }
    return at;
}

/* Receive the n replies of client k in order and check each; returns the
 * first mismatch as text in err (empty when all is well). */
static void
check_replies(sm_conn *c, uint32_t k, uint32_t n, char *err, size_t cap)
{
    uint8_t want[80];
    for (uint32_t i = 0; i < n; i++) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, 10000);
        if (rc != 1) {
            snprintf(err, cap, "client %u: reply %u: %s", k, i, sm_err_name(rc));
            return;
        }
        size_t len = make_msg(want, k, i);
        if (m.len != len || memcmp(m.data, want, len)) {
            snprintf(err, cap, "client %u: reply %u differs", k, i);
            return;
        }
    }
}

enum { CLIENTS = 200, PER_CLIENT = 500, CLIENT_THREADS = 4 };

typedef struct load_job {
    const char *ep;
    uint32_t first, count;
    char err[160];
} load_job;

/* Connect all clients of the job, pipeline every message of each, then read
 * and check every reply. */
static void *
load_thread(void *arg)
{
    load_job *j = arg;
    sm_conn *c[CLIENTS];
    static _Thread_local uint8_t buf[PER_CLIENT * 72];
    for (uint32_t k = 0; k < j->count; k++) {
        char why[200];
        int rc = sm_conn_dial(&c[k], j->ep, "len32be", 10000, why, sizeof why);
        if (rc < 0) {
            snprintf(j->err, sizeof j->err, "dial: %.150s", why);
            for (uint32_t x = 0; x < k; x++)
                sm_conn_free(c[x]);
            return NULL;
        }
    }
    for (uint32_t k = 0; k < j->count && !j->err[0]; k++) {
        size_t n = make_batch(buf, j->first + k, PER_CLIENT);
        ssize_t rc = sm_send_all(sm_conn_fd(c[k]), buf, n, 10000, NULL);
        if (rc < 0) snprintf(j->err, sizeof j->err, "send: %s", sm_err_name((int)rc));
    }
    for (uint32_t k = 0; k < j->count && !j->err[0]; k++)
        check_replies(c[k], j->first + k, PER_CLIENT, j->err, sizeof j->err);
    for (uint32_t k = 0; k < j->count; k++)
        sm_conn_free(c[k]);
    return NULL;
}

static void
test_echo_200x500(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one, .on_message = sm_server_handler_echo};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    load_job jobs[CLIENT_THREADS];
    pthread_t th[CLIENT_THREADS];
    for (int t = 0; t < CLIENT_THREADS; t++) {
        jobs[t] = (load_job){.ep = ep,
                             .first = (uint32_t)t * (CLIENTS / CLIENT_THREADS),
                             .count = CLIENTS / CLIENT_THREADS};
        assert_int_equal(pthread_create(&th[t], NULL, load_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < CLIENT_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < CLIENT_THREADS; t++)
        if (jobs[t].err[0]) fail_msg("%s", jobs[t].err);
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.opened, CLIENTS);
    assert_int_equal(st.msgs_in, CLIENTS * PER_CLIENT);
    assert_int_equal(st.msgs_out, CLIENTS * PER_CLIENT);
    assert_int_equal(st.current, 0);
    sm_server_free(srv);
}

/* ---- graceful stop -------------------------------------------------------------- */

/* Handlers wait here until the test has stopped the server: so the stop
 * comes while nearly every message is still unread. */
static atomic_bool go;

static void
gated_echo(sm_peer *p, const sm_frame_msg *m)
{
    int64_t end = sm_test_now_ms() + 10000;
    while (!atomic_load(&go) && sm_test_now_ms() < end)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    sm_server_handler_echo(p, m);
}

static void
test_stop_loses_nothing(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    enum { N = 20 };
    atomic_store(&go, false);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one, .on_message = gated_echo, .drain_timeout_ms = 20000};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);

    sm_conn *c[N];
    static uint8_t buf[PER_CLIENT * 72];
    for (uint32_t k = 0; k < N; k++) {
        c[k] = cli_dial(ep);
        size_t n = make_batch(buf, k, PER_CLIENT);
        SM_ASSERT_OK(sm_send_all(sm_conn_fd(c[k]), buf, n, 10000, NULL));
    }
    /* Every message is sent; the handlers have taken at most one each. */
    sm_server_stop(srv);
    sm_server_stats st = srv_stats(srv);
    assert_true(st.msgs_out < N);
    atomic_store(&go, true);

    /* Every reply arrives, then the server's FIN. */
    for (uint32_t k = 0; k < N; k++) {
        char err[160] = "";
        check_replies(c[k], k, PER_CLIENT, err, sizeof err);
        if (err[0]) fail_msg("%s", err);
        sm_frame_msg m;
        int rc = sm_conn_recv(c[k], &m, 10000);
        if (rc != 0) fail_msg("client %u: expected EOF, got %d (%s)", k, rc, sm_err_name(rc));
        sm_conn_free(c[k]);
    }
    SM_ASSERT_OK(sm_server_wait(srv));
    st = srv_stats(srv);
    assert_int_equal(st.msgs_in, N * PER_CLIENT);
    assert_int_equal(st.msgs_out, N * PER_CLIENT);
    assert_int_equal(st.closes[SM_CLOSE_CLEAN], N);
    assert_int_equal(st.current, 0);
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
        VARIANTS(test_echo_200x500),
        VARIANTS(test_stop_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
