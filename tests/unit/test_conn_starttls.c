/* A STARTTLS-like switch with sm_conn_detach: both sides talk in CRLF
 * lines, the client asks for TLS, the server agrees, and each side hands
 * its socket (and the bytes it read ahead) to sm_conn_new_tls, then the
 * same connection carries length-prefixed messages over TLS. Certificates
 * from tests/support/tls_test.h. */
#include "tls_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>
#include <sockmsg/tls.h>

#define T 10000

static sm_frame_spec
spec_of(const char *str)
{
    sm_frame_spec s;
    if (sm_frame_spec_parse(&s, str, NULL, 0) < 0) fail_msg("bad spec %s", str);
    return s;
}

typedef struct srv {
    int lfd;
    int result; /* 0, or where it failed (a negative error) */
    size_t rest_len;
    char detail[256];
} srv;

/* The server side, on a thread: lines until STARTTLS, then TLS, then echo
 * one len32be message. Reports instead of asserting (not the test thread). */
static void *
srv_main(void *arg)
{
    srv *v = arg;
    sm_frame_spec crlf = spec_of("crlf"), len32 = spec_of("len32be");
    int fd = sm_accept(v->lfd, T, NULL);
    sm_conn *c = NULL;
    if (fd < 0 || (v->result = sm_conn_new_take(&c, fd, &crlf)) < 0) {
        v->result = fd < 0 ? fd : v->result;
        return NULL;
    }
    sm_conn_set_timeout(c, T);
    for (;;) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (rc != 1) {
            v->result = rc < 0 ? rc : -ECONNRESET;
            sm_conn_free(c);
            return NULL;
        }
        bool tls = m.len == 8 && memcmp(m.data, "STARTTLS", 8) == 0;
        const char *reply = tls ? "220 go ahead" : "250 ok";
        if (sm_conn_send(c, reply, strlen(reply), SM_CONN_DEFAULT) < 0) v->result = -EIO;
        if (tls) break;
    }
    uint8_t *rest;
    if ((v->result = sm_conn_detach(c, &fd, &rest, &v->rest_len)) < 0) {
        sm_conn_free(c); /* a failed detach leaves the conn as it was */
        return NULL;
    }
    free(rest); /* the client waits for "220" before its handshake: nothing */
    sm_tls_config *cfg;
    char why[256];
    if ((v->result = sm_tls_config_new(&cfg, SM_TLS_SERVER, why, sizeof why)) < 0 ||
        (v->result = sm_tls_config_set_cert(cfg, sm_test_cert("chain.pem"),
                                            sm_test_cert("leaf.key"), why, sizeof why)) < 0)
        return NULL;
    v->result = sm_conn_new_tls(&c, fd, &len32, cfg, NULL, T, v->detail, sizeof v->detail);
    if (v->result == 0) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, T);
        v->result = rc == 1 ? (int)sm_conn_send_frame(c, &m, T) : rc < 0 ? rc : -ECONNRESET;
        if (v->result > 0) v->result = 0;
        sm_conn_free(c);
    }
    sm_tls_config_free(cfg);
    return NULL;
}

static void
test_starttls_handoff(void **state)
{
    (void)state;
    sm_endpoint ep, bound;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
    srv v = {.lfd = (int)SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 0, &bound, NULL, 0))};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, srv_main, &v), 0);
    char where[64];
    snprintf(where, sizeof where, "tcp://127.0.0.1:%u", (unsigned)bound.port);
    sm_conn *c;
    char why[256];
    SM_ASSERT_OK(sm_conn_dial(&c, where, "crlf", T, why, sizeof why));
    sm_conn_set_timeout(c, T);
    /* Both lines in one write: the server reads them together. */
    assert_int_equal(sm_conn_send_raw(c, "EHLO me\r\nSTARTTLS\r\n", 19, SM_CONN_DEFAULT), 19);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "250 ok", 6);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "220 go ahead", 12);
    int fd;
    uint8_t *rest;
    size_t rest_len;
    SM_ASSERT_OK(sm_conn_detach(c, &fd, &rest, &rest_len));
    assert_int_equal(rest_len, 0);
    assert_null(rest);
    sm_tls_config *cfg;
    SM_ASSERT_OK(sm_tls_config_new(&cfg, SM_TLS_CLIENT, why, sizeof why));
    SM_ASSERT_OK(sm_tls_config_set_ca(cfg, sm_test_cert("ca.pem"), NULL, why, sizeof why));
    sm_frame_spec len32 = spec_of("len32be");
    int rc = sm_conn_new_tls(&c, fd, &len32, cfg, "localhost", T, why, sizeof why);
    if (rc < 0) fail_msg("client TLS: %s", why);
    assert_int_equal(sm_conn_send(c, "secret", 6, SM_CONN_DEFAULT), 6);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "secret", 6);
    /* A TLS connection cannot be detached: its session goes with it. */
    SM_ASSERT_ERR(sm_conn_detach(c, &fd, &rest, &rest_len), -EOPNOTSUPP);
    sm_conn_free(c);
    sm_tls_config_free(cfg);
    pthread_join(th, NULL);
    close(v.lfd);
    if (v.result < 0) fail_msg("server: %s %s", sm_err_name(v.result), v.detail);
    assert_int_equal(v.rest_len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starttls_handoff),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
