/* examples/starttls_server, run as the program it is: a client talks lines,
 * switches with STARTTLS (sm_conn_detach on its side), makes its TLS
 * handshake on the same socket and gets its message echoed over TLS; a
 * client that pipelines plaintext behind STARTTLS is refused. */
#include "tls_test.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/conn.h>

#define T 10000

static void
test_starttls_example(void **state)
{
    (void)state;
    int out, err;
    char *argv[] = {STARTTLS_SERVER, "tcp://127.0.0.1:0", (char *)sm_test_cert("chain.pem"),
                    (char *)sm_test_cert("leaf.key"), NULL};
    int srv = sm_test_spawn2(argv, NULL, &out, &err);
    char line[256];
    assert_true(sm_test_read_line(out, line, sizeof line, T) > 0);
    const char *addr = strstr(line, "tcp://");
    if (!addr) fail_msg("starttls_server said '%s'", line);
    sm_tls_config *ccfg = sm_test_tls_client(true);
    sm_frame_spec len32;
    SM_ASSERT_OK(sm_frame_spec_parse(&len32, "len32be", NULL, 0));

    sm_conn *c;
    char why[256];
    SM_ASSERT_OK(sm_conn_dial(&c, addr, "line", T, why, sizeof why));
    assert_int_equal(sm_conn_send_raw(c, "EHLO me\nSTARTTLS\n", 17, T), 17);
    sm_test_expect_msg(c, "250 ok", T);
    sm_test_expect_msg(c, "220 go ahead", T);
    int fd;
    uint8_t *rest;
    size_t rest_len;
    SM_ASSERT_OK(sm_conn_detach(c, &fd, &rest, &rest_len));
    assert_int_equal(rest_len, 0);
    int rc = sm_conn_new_tls(&c, fd, &len32, ccfg, "localhost", T, why, sizeof why);
    if (rc < 0) fail_msg("client TLS: %s", why);
    assert_int_equal(sm_conn_send(c, "secret", 6, T), 6);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, T), 1);
    assert_memory_equal(m.data, "secret", 6);
    sm_conn_free(c);

    /* Plaintext behind STARTTLS: the server hands off, then refuses. */
    SM_ASSERT_OK(sm_conn_dial(&c, addr, "line", T, why, sizeof why));
    assert_int_equal(sm_conn_send_raw(c, "STARTTLS\nINJECTED\n", 18, T), 18);
    sm_test_expect_msg(c, "220 go ahead", T);
    rc = sm_conn_recv(c, &m, T);
    assert_true(rc == 0 || rc == -ECONNRESET);
    sm_conn_free(c);

    SM_ASSERT_OK(kill(srv, SIGTERM));
    assert_int_equal(sm_test_wait(srv, T), 0);
    close(out);
    close(err);
    sm_tls_config_free(ccfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_starttls_example)};
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
