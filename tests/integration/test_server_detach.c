/* Servers: sm_peer_detach. A loop-model peer says "220 go ahead" to a
 * STARTTLS-style line and hands its socket off with the bytes the client
 * pipelined behind that line; the test thread then speaks raw on the
 * socket. The peer ends as SM_CLOSE_DETACHED: no longer counted, its fd
 * not closed by the server. Both models: a loop peer's stream, a
 * connection thread's sm_conn. */
#include "server_util.h"

#include <stdatomic.h>
#include <stdlib.h>

static const srv_variant loop_reuseport = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

static _Atomic int handler_err;
static _Atomic int detach_rc;    /* what sm_peer_detach returned */
static _Atomic int handed_fd;    /* -2: not yet */
static _Atomic int close_reason; /* on_close's, or 1: not yet */
static _Atomic bool cb_before_close;
static uint8_t *handed_rest; /* written before handed_fd is stored */
static size_t handed_len;

static void
on_detached(sm_peer *p, int fd, uint8_t *rest, size_t rest_len, int status, void *arg)
{
    (void)p;
    if (status != 0 || arg != &handed_fd) handler_err = status ? status : -EINVAL;
    cb_before_close = atomic_load(&close_reason) == 1;
    handed_rest = rest;
    handed_len = rest_len;
    atomic_store(&handed_fd, fd);
}

static void
on_msg(sm_peer *p, const sm_frame_msg *m)
{
    if (m->len != 8 || memcmp(m->data, "STARTTLS", 8) != 0) {
        if (sm_peer_send(p, "250 ok", 6) < 0) handler_err = -EIO;
        return;
    }
    if (sm_peer_send(p, "220 go ahead", 12) < 0) handler_err = -EIO;
    int rc = sm_peer_detach(p, on_detached, &handed_fd);
    atomic_store(&detach_rc, rc);
    if (rc == 0 && sm_peer_send(p, "late", 4) != -EPIPE) handler_err = -EILSEQ;
    if (rc < 0) handler_err = rc;
    /* Twice is refused. */
    if (rc == 0 && sm_peer_detach(p, on_detached, &handed_fd) != -EALREADY) handler_err = -EILSEQ;
}

static void
on_close(sm_peer *p, int reason)
{
    (void)p;
    atomic_store(&close_reason, reason);
}

static void
test_peer_detach(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    int fds0 = sm_test_count_fds();
    handler_err = 0;
    detach_rc = 1;
    handed_fd = -2;
    close_reason = 1;
    handed_rest = NULL;
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one, .frame = "line", .on_message = on_msg, .on_close = on_close};
    srv_apply(&o, v);
    char ep[128], why[256] = "";
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c;
    int rc = sm_conn_dial(&c, ep, "line", 10000, why, sizeof why);
    if (rc < 0) fail_msg("dial: %s", why);
    sm_conn_set_timeout(c, 10000);
    /* One write: the switch line and raw bytes behind it. */
    assert_int_equal(sm_conn_send_raw(c, "EHLO\nSTARTTLS\nRAW-1", 19, SM_CONN_DEFAULT), 19);
    sm_test_expect_msg(c, "250 ok", SM_CONN_DEFAULT);
    sm_test_expect_msg(c, "220 go ahead", SM_CONN_DEFAULT);
    SM_WAIT_FOR(atomic_load(&detach_rc) != 1, 10000);
    SM_ASSERT_OK(atomic_load(&detach_rc));
    SM_WAIT_FOR(atomic_load(&handed_fd) != -2 && atomic_load(&close_reason) != 1, 10000);
    SM_ASSERT_OK(handler_err);
    assert_true(cb_before_close);
    SM_ASSERT_ERR(atomic_load(&close_reason), SM_ERR_DETACHED);
    int fd = atomic_load(&handed_fd);
    assert_true(fd >= 0);
    /* The pipelined bytes: read ahead (the rest), or still in the socket. */
    uint8_t raw[5];
    assert_true(handed_len <= 5);
    if (handed_len) memcpy(raw, handed_rest, handed_len);
    if (handed_len < 5) sm_test_read_exact(fd, raw + handed_len, 5 - handed_len, 10000);
    assert_memory_equal(raw, "RAW-1", 5);
    free(handed_rest);
    /* The socket is ours: the server neither reads nor closes it. */
    assert_int_equal(write(fd, "raw reply\n", 10), 10);
    sm_test_expect_msg(c, "raw reply", SM_CONN_DEFAULT);
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_DETACHED] == 1, 10000);
    SM_WAIT_FOR(srv_stats(srv).current == 0, 10000);
    assert_string_equal(sm_server_close_kind_name(SM_CLOSE_DETACHED), "detached");
    close(fd);
    assert_int_equal(cli_expect_end(c, 10000), 0);
    sm_conn_free(c);
    sm_server_free(srv);
    assert_int_equal(sm_test_count_fds(), fds0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_peer_detach, (void *)&loop_reuseport),
        cmocka_unit_test_prestate(test_peer_detach, (void *)&threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
