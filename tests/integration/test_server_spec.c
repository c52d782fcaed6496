/* Servers: a send spec apart from the receiving one (send_frame), replies
 * with the caller's header bytes (sm_peer_send_hdr), and a peer switching
 * its receiving spec from on_message with the next message already read
 * behind the switch line (sm_peer_set_spec), in both models. */
#include "server_util.h"

static const srv_variant loop_reuseport = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

static sm_frame_spec bin_spec;
/* What went wrong in a handler (a server thread must not fail the test
 * itself: the test thread checks this). */
static _Atomic int handler_err;

/* Echo each message behind an 'E' type byte; "BIN" switches the peer's
 * receiving framing to len16be after its reply. */
static void
on_msg(sm_peer *p, const sm_frame_msg *m)
{
    int rc = sm_peer_send_hdr(p, "E", 1, m->data, m->len);
    if (rc < 0) handler_err = rc;
    /* The wrong number of header bytes is refused, nothing sent. */
    if (sm_peer_send_hdr(p, "EE", 2, m->data, m->len) != -EINVAL) handler_err = -EILSEQ;
    if (m->len == 3 && memcmp(m->data, "BIN", 3) == 0 &&
        (rc = sm_peer_set_spec(p, &bin_spec, NULL)) < 0)
        handler_err = rc;
}

static void
expect_reply(sm_conn *c, const char *want)
{
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
    if (rc != 1) fail_msg("recv: %d (%s)", rc, sm_err_name(rc));
    assert_int_equal(m.frame[0], 'E');
    assert_int_equal(m.len, strlen(want));
    assert_memory_equal(m.data, want, m.len);
}

static void
test_switch_and_send_hdr(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    SM_ASSERT_OK(sm_frame_spec_parse(&bin_spec, "len16be", NULL, 0));
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .frame = "line",
                        .send_frame = "len32be,offset=1,adjust=4",
                        .on_message = on_msg};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c;
    char why[256] = "";
    int rc = sm_conn_dial(&c, ep, "len32be,offset=1,adjust=4", 10000, why, sizeof why);
    if (rc < 0) fail_msg("dial: %s", why);
    sm_conn_set_timeout(c, 10000);
    /* Two lines and a binary message in one write: the server reads them
     * together and decodes the last with the spec the second switched to. */
    const char wire[] = "hi\nBIN\n\0\3abc";
    assert_int_equal(sm_conn_send_raw(c, wire, sizeof wire - 1, SM_CONN_DEFAULT),
                     (ssize_t)(sizeof wire - 1));
    expect_reply(c, "hi");
    expect_reply(c, "BIN");
    expect_reply(c, "abc");
    assert_int_equal(sm_conn_send_raw(c, "\0\2de", 4, SM_CONN_DEFAULT), 4);
    expect_reply(c, "de");
    sm_conn_free(c);
    sm_server_free(srv);
    SM_ASSERT_OK(handler_err);
}

static void
test_opts_refused(void **state)
{
    (void)state;
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_frame_spec s = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    sm_server_opts o = {.listen = one, .send_frame = "line", .send_spec = &s, .on_message = on_msg};
    sm_server *srv;
    char why[256] = "";
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "send_spec"));
    o.send_spec = NULL;
    o.send_frame = "len24be";
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), SM_ERR_SPEC);
    assert_non_null(strstr(why, "send_frame"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_switch_and_send_hdr, (void *)&loop_reuseport),
        cmocka_unit_test_prestate(test_switch_and_send_hdr, (void *)&threads),
        cmocka_unit_test(test_opts_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
