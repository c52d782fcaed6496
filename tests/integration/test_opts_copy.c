/* Server and stream options from a spec string, with nothing of the caller's
 * kept: sm_server_opts.frame and sm_stream_opts_new (issue 14). Everything the
 * options point at is allocated here and scribbled over and freed right after
 * the call, so a kept pointer shows up as a wrong echo (or, under ASan, a
 * use after free). Run once per loop backend. */
#include "server_util.h"

#include <stdlib.h>

#include <sockmsg/loop.h>
#include <sockmsg/stream.h>

static char *
dup_str(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void
scribble_free(char *s)
{
    memset(s, 'X', strlen(s));
    free(s);
}

static void
server_from_string(sm_server_model model)
{
    char *frame = dup_str("line,max=4096");
    char *listen0 = dup_str("tcp://127.0.0.1:0");
    char *ping = dup_str("hb");
    sm_sock_opts *sock = calloc(1, sizeof *sock);
    assert_non_null(sock);
    const char *listen[] = {listen0, NULL};
    sm_server_opts o = {
        .listen = listen,
        .frame = frame,
        .model = model,
        .threads = 2,
        .on_message = sm_server_handler_echo,
        .sock = sock,
        .heartbeat_ms = 50,
        .ping = ping,
        .ping_len = 2,
    };
    sm_server *srv;
    char why[256] = "";
    int rc = sm_server_new(&srv, &o, why, sizeof why);
    if (rc < 0) fail_msg("sm_server_new: %s: %s", sm_err_name(rc), why);
    scribble_free(frame);
    scribble_free(listen0);
    scribble_free(ping);
    memset(sock, 0xff, sizeof *sock);
    free(sock);
    memset(&o, 0xa5, sizeof o);

    char ep[128];
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    SM_ASSERT_OK(sm_endpoint_format(&e, ep, sizeof ep));
    SM_ASSERT_OK(sm_server_start(srv));
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_dial(&c, ep, "line", 10000, NULL, 0));
    SM_ASSERT_OK(sm_conn_send(c, "hello", 5, SM_CONN_DEFAULT));
    sm_frame_msg m;
    /* The echo, and then (nothing else being sent) the copied ping. */
    bool echoed = false, pinged = false;
    for (int i = 0; i < 8 && !(echoed && pinged); i++) {
        SM_ASSERT_ERR(sm_conn_recv(c, &m, 10000), 1);
        if (m.len == 5 && !memcmp(m.data, "hello", 5))
            echoed = true;
        else if (m.len == 2 && !memcmp(m.data, "hb", 2))
            pinged = true;
        else
            fail_msg("unexpected message '%.*s'", (int)m.len, (const char *)m.data);
    }
    assert_true(echoed && pinged);
    sm_conn_free(c);
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    sm_server_free(srv);
}

static void
test_server_frame_loop(void **state)
{
    (void)state;
    server_from_string(SM_SERVER_LOOP);
}

static void
test_server_frame_thread(void **state)
{
    (void)state;
    server_from_string(SM_SERVER_THREAD);
}

static void
test_server_frame_errors(void **state)
{
    (void)state;
    const char *listen[] = {"tcp://127.0.0.1:0", NULL};
    sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    sm_server_opts o = {
        .listen = listen, .frame = "line", .spec = &spec, .on_message = sm_server_handler_echo};
    sm_server *srv = NULL;
    char why[256];
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    assert_string_equal(why, "both spec and frame are set: give one");
    o.spec = NULL;
    o.frame = "len24be";
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), SM_ERR_SPEC);
    assert_string_equal(why, "frame 'len24be': unknown codec 'len24be'");
    assert_null(srv);
}

/* ---- streams ------------------------------------------------------------------- */

typedef struct stream_run {
    int got;
    int closed;
} stream_run;

static void
on_connect(sm_stream *s)
{
    SM_ASSERT_OK(sm_stream_send(s, "abc", 3));
}

static void
on_message(sm_stream *s, const sm_frame_msg *m)
{
    stream_run *r = sm_stream_get_data(s);
    if (m->len != 3 || memcmp(m->data, "abc", 3))
        fail_msg("echo came back as '%.*s'", (int)m->len, (const char *)m->data);
    r->got++;
    sm_stream_close(s);
}

static void
on_close(sm_stream *s, int reason)
{
    stream_run *r = sm_stream_get_data(s);
    (void)reason;
    r->closed++;
    sm_loop_stop(sm_stream_loop(s));
}

static void
test_stream_opts_new(void **state)
{
    (void)state;
    const char *listen[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts so = {
        .listen = listen, .frame = "line", .threads = 1, .on_message = sm_server_handler_echo};
    char ep[128];
    sm_server *srv = srv_start(&so, ep, sizeof ep);

    char *frame = dup_str("line,max=64");
    char *ping = dup_str("p");
    sm_stream_opts o = {
        .frame = frame,
        .on_message = on_message,
        .on_connect = on_connect,
        .on_close = on_close,
        .ping = ping,
        .ping_len = 1,
    };
    sm_stream_opts *copy;
    char why[256] = "";
    int rc = sm_stream_opts_new(&copy, &o, why, sizeof why);
    if (rc < 0) fail_msg("sm_stream_opts_new: %s: %s", sm_err_name(rc), why);
    scribble_free(frame);
    scribble_free(ping);
    memset(&o, 0xa5, sizeof o);
    assert_null(copy->frame);
    assert_int_equal(copy->spec->kind, SM_FRAME_DELIM);
    assert_int_equal(copy->spec->max, 64);
    assert_memory_equal(copy->ping, "p", 1);

    sm_loop *loop;
    SM_ASSERT_OK(sm_loop_new(&loop, NULL));
    stream_run r = {0};
    sm_stream *s;
    SM_ASSERT_OK(sm_stream_dial(&s, loop, ep, copy, &r, why, sizeof why));
    /* Bounded: the loop stops at the close, and the stream closes itself
     * after the echo, or with an error. */
    for (int i = 0; i < 1000 && !r.closed; i++)
        SM_ASSERT_OK(sm_loop_run(loop, SM_RUN_ONCE));
    assert_int_equal(r.got, 1);
    assert_int_equal(r.closed, 1);
    sm_loop_free(loop);
    sm_stream_opts_free(copy);
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    sm_server_free(srv);
}

static void
test_stream_opts_errors(void **state)
{
    (void)state;
    sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    sm_stream_opts o = {.on_message = on_message};
    sm_stream_opts *copy = (sm_stream_opts *)&spec;
    char why[256];
    SM_ASSERT_ERR(sm_stream_opts_new(&copy, &o, why, sizeof why), -EINVAL);
    assert_string_equal(why, "no framing: set frame (a spec string) or spec");
    assert_null(copy);
    o.frame = "line";
    o.spec = &spec;
    SM_ASSERT_ERR(sm_stream_opts_new(&copy, &o, why, sizeof why), -EINVAL);
    assert_string_equal(why, "both spec and frame are set: give one");
    o.spec = NULL;
    o.frame = "fixed:0";
    SM_ASSERT_ERR(sm_stream_opts_new(&copy, &o, why, sizeof why), SM_ERR_SPEC);
    assert_true(strncmp(why, "frame 'fixed:0': ", 17) == 0);
    o.frame = "line";
    o.ping_len = 1;
    SM_ASSERT_ERR(sm_stream_opts_new(&copy, &o, why, sizeof why), -EINVAL);
    assert_string_equal(why, "ping_len without ping");
    SM_ASSERT_ERR(sm_stream_opts_new(NULL, &o, NULL, 0), -EINVAL);
    /* A copied spec is checked like any other. */
    o = (sm_stream_opts){.on_message = on_message, .spec = &spec};
    spec.len_width = 3;
    SM_ASSERT_ERR(sm_stream_opts_new(&copy, &o, why, sizeof why), SM_ERR_SPEC);
    spec.len_width = 4;
    SM_ASSERT_OK(sm_stream_opts_new(&copy, &o, why, sizeof why));
    assert_true(copy->spec != &spec);
    assert_null(copy->ping);
    sm_stream_opts_free(copy);
    sm_stream_opts_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_frame_loop),   cmocka_unit_test(test_server_frame_thread),
        cmocka_unit_test(test_server_frame_errors), cmocka_unit_test(test_stream_opts_new),
        cmocka_unit_test(test_stream_opts_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
