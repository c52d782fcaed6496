/* sm_conn over TLS against real peers: sockmsg itself, `openssl s_server`
 * and Python's ssl module, with certificates made for the run
 * (tests/support/tls_certs.sh): verification and its errors, framing,
 * close_notify against truncation, deadlines, ALPN, mutual TLS,
 * resumption, key logging, and ports that do not speak TLS. */
#include "tls_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a sockmsg TLS echo server on a thread ------------------------------ */

typedef struct srv {
    int lfd;
    uint16_t port;
    sm_tls_config *cfg;
    const char *spec;
    int conns;
    int rc[4];           /* per connection: handshake or last recv result */
    char detail[4][256]; /* its why / detail */
    bool resumed[4];
    pthread_t th;
} srv;

static void *
srv_main(void *arg)
{
    srv *s = arg;
    sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, s->spec, NULL, 0));
    for (int i = 0; i < s->conns; i++) {
        int fd = sm_accept(s->lfd, 10000, NULL);
        if (fd < 0) {
            s->rc[i] = fd;
            continue;
        }
        sm_conn *c;
        int rc =
            sm_conn_new_tls(&c, fd, &spec, s->cfg, NULL, 5000, s->detail[i], sizeof s->detail[i]);
        if (rc < 0) {
            s->rc[i] = rc;
            continue;
        }
        s->resumed[i] = sm_conn_tls_resumed(c);
        sm_frame_msg m;
        while ((rc = sm_conn_recv(c, &m, 10000)) == 1)
            if (sm_conn_send(c, m.data, m.len, 10000) < 0) break;
        s->rc[i] = rc;
        snprintf(s->detail[i], sizeof s->detail[i], "%s", sm_conn_error_detail(c));
        if (rc == 0) sm_conn_shutdown(c); /* answer the peer's close_notify with ours */
        sm_conn_free(c);
    }
    return NULL;
}

static void
srv_start(srv *s, sm_tls_config *cfg, const char *spec, int conns)
{
    memset(s, 0, sizeof *s);
    sm_endpoint ep, bound;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
    s->lfd = SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 16, &bound, NULL, 0));
    s->port = bound.port;
    s->cfg = cfg;
    s->spec = spec;
    s->conns = conns;
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_join(srv *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static void
url(char *out, size_t cap, const char *host, uint16_t port)
{
    snprintf(out, cap, "tls://%s:%u", host, (unsigned)port);
}

/* ---- sockmsg to sockmsg ------------------------------------------------ */

static void
test_echo_framings_and_resumption(void **state)
{
    (void)state;
    static const char *specs[] = {"len32be", "line", "len16le,max=70000", "varint"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
        sm_tls_config *cc = sm_test_tls_client(true);
        srv s;
        srv_start(&s, sc, specs[k], 2);
        char ep[64], why[256];
        url(ep, sizeof ep, "localhost", s.port);
        for (int round = 0; round < 2; round++) {
            sm_conn *c;
            int rc = sm_conn_dial_tls(&c, ep, specs[k], cc, 5000, why, sizeof why);
            if (rc < 0) fail_msg("%s: %s: %s", specs[k], sm_err_name(rc), why);
            /* TLS 1.3 tickets come after the handshake: the second
             * connection resumes. */
            assert_int_equal(sm_conn_tls_resumed(c), round == 1);
            static uint8_t big[65000];
            for (size_t i = 0; i < sizeof big; i++)
                big[i] = (uint8_t)('a' + i % 26);
            size_t sizes[] = {0, 1, 7, 300, 16384, 16385, 65000};
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                if (!strcmp(specs[k], "line") && sizes[i] == 0) continue;
                SM_ASSERT_OK(sm_conn_send(c, big, sizes[i], 5000));
                sm_frame_msg m;
                assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
                assert_int_equal(m.len, sizes[i]);
                assert_memory_equal(m.data, big, sizes[i]);
            }
            /* Many messages in few records: sent back to back, then read. */
            for (int i = 0; i < 200; i++)
                SM_ASSERT_OK(sm_conn_send(c, big, (size_t)i % 50 + 1, 5000));
            for (int i = 0; i < 200; i++) {
                sm_frame_msg m;
                assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
                assert_int_equal(m.len, (size_t)i % 50 + 1);
            }
            /* Half-close: close_notify; replies still come, then a clean 0. */
            SM_ASSERT_OK(sm_conn_send(c, "last", 4, 5000));
            SM_ASSERT_OK(sm_conn_shutdown(c));
            sm_frame_msg m;
            assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
            assert_memory_equal(m.data, "last", 4);
            assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 0);
            sm_conn_free(c);
        }
        srv_join(&s);
        for (int i = 0; i < 2; i++) {
            if (s.rc[i] != 0) fail_msg("server %d: %s %s", i, sm_err_name(s.rc[i]), s.detail[i]);
        }
        assert_true(s.resumed[1]);
        sm_tls_config_free(cc);
        sm_tls_config_free(sc);
    }
}

static void
test_default_dial_verifies(void **state)
{
    (void)state;
    /* sm_conn_dial on tls:// trusts the system's CAs only: ours is not one. */
    sm_tls_config *sc = sm_test_tls_server("chain.pem", "leaf.key");
    srv s;
    srv_start(&s, sc, "len32be", 1);
    char ep[64], why[256];
    url(ep, sizeof ep, "127.0.0.1", s.port);
    sm_conn *c;
    SM_ASSERT_ERR(sm_conn_dial(&c, ep, "len32be", 5000, why, sizeof why), SM_ERR_TLS_UNKNOWN_CA);
    assert_non_null(strstr(why, "unknown CA"));
    srv_join(&s);
    assert_true(s.rc[0] < 0); /* the client's alert ends the server's handshake */
    sm_tls_config_free(sc);
}

static void
test_mutual_tls(void **state)
{
    (void)state;
    char why[256];
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    SM_ASSERT_OK(sm_tls_config_set_ca(sc, sm_test_cert("ca.pem"), NULL, why, sizeof why));
    srv s;
    srv_start(&s, sc, "len32be", 2);
    char ep[64];
    url(ep, sizeof ep, "localhost", s.port);
    /* Without a certificate: TLS 1.3 tells the client at its first read. */
    sm_tls_config *cc = sm_test_tls_client(true);
    sm_conn *c;
    int rc = sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why);
    if (rc == 0) {
        sm_frame_msg m;
        sm_conn_send(c, "x", 1, 5000);
        rc = sm_conn_recv(c, &m, 5000);
        snprintf(why, sizeof why, "%s", sm_conn_error_detail(c));
        sm_conn_free(c);
    }
    SM_ASSERT_ERR(rc, SM_ERR_TLS_VERIFY);
    assert_non_null(strstr(why, "peer rejected our certificate"));
    /* With one. */
    SM_ASSERT_OK(sm_tls_config_set_cert(cc, sm_test_cert("client.pem"), sm_test_cert("client.key"),
                                        why, sizeof why));
    SM_ASSERT_OK(sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why));
    SM_ASSERT_OK(sm_conn_send(c, "hi", 2, 5000));
    sm_frame_msg m;
    assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
    sm_conn_free(c);
    srv_join(&s);
    SM_ASSERT_ERR(s.rc[0], SM_ERR_TLS_VERIFY);
    assert_non_null(strstr(s.detail[0], "certificate"));
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

static void
test_alpn(void **state)
{
    (void)state;
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    SM_ASSERT_OK(sm_tls_config_set_alpn(sc, "h2"));
    srv s;
    srv_start(&s, sc, "len32be", 2);
    char ep[64], why[256];
    url(ep, sizeof ep, "localhost", s.port);
    sm_tls_config *cc = sm_test_tls_client(true);
    SM_ASSERT_OK(sm_tls_config_set_alpn(cc, "http/1.1"));
    sm_conn *c;
    SM_ASSERT_ERR(sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why), SM_ERR_TLS_ALPN);
    SM_ASSERT_OK(sm_tls_config_set_alpn(cc, "spdy/1,h2"));
    SM_ASSERT_OK(sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why));
    size_t n;
    const char *p = sm_conn_tls_alpn(c, &n);
    assert_non_null(p);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "h2", 2);
    sm_conn_free(c);
    srv_join(&s);
    SM_ASSERT_ERR(s.rc[0], SM_ERR_TLS_ALPN);
    assert_non_null(strstr(s.detail[0], "peer did not offer ALPN h2"));
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

static void
test_keylog(void **state)
{
    (void)state;
    /* Its own directory: the certificates' may be shared with other tests. */
    char dir[256], path[320], why[256];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/keys.log", dir);
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    setenv("SSLKEYLOGFILE", path, 1);
    sm_tls_config *cc = sm_test_tls_client(true);
    unsetenv("SSLKEYLOGFILE");
    srv s;
    srv_start(&s, sc, "len32be", 1);
    char ep[64];
    url(ep, sizeof ep, "localhost", s.port);
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why));
    sm_conn_free(c);
    srv_join(&s);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    bool seen = false;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24)) seen = true;
    fclose(f);
    sm_test_rmdir(dir);
    assert_true(seen);
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

/* ---- openssl s_server ----------------------------------------------------- */

typedef struct peer {
    int pid, out;
    uint16_t port;
} peer;

static void
s_server(peer *p, const char *crt, const char *key)
{
    char *argv[] = {SM_OPENSSL, "s_server",
                    "-accept",  "127.0.0.1:0",
                    "-cert",    (char *)sm_test_cert(crt),
                    "-key",     (char *)sm_test_cert(key),
                    "-rev",     "-naccept",
                    "1",        NULL};
    p->pid = sm_test_spawn(argv, &p->out, true);
    char line[256];
    for (;;) {
        assert_true(sm_test_read_line(p->out, line, sizeof line, 10000) >= 0);
        if (!strncmp(line, "ACCEPT 127.0.0.1:", 17)) break;
    }
    p->port = (uint16_t)atoi(line + 17);
}

static void
peer_end(peer *p)
{
    kill(p->pid, SIGTERM);
    sm_test_wait(p->pid, 10000);
    close(p->out);
}

static void
expect_dial_error(const char *crt, const char *key, const char *name, bool trust, int want,
                  const char *text)
{
    peer p;
    s_server(&p, crt, key);
    sm_tls_config *cc = sm_test_tls_client(trust);
    if (name) SM_ASSERT_OK(sm_tls_config_set_server_name(cc, name));
    char ep[64], why[256];
    url(ep, sizeof ep, "localhost", p.port);
    sm_conn *c = NULL;
    int rc = sm_conn_dial_tls(&c, ep, "line", cc, 5000, why, sizeof why);
    if (rc != want)
        fail_msg("%s: got %s (%s), want %s", crt, sm_err_name(rc), why, sm_err_name(want));
    if (!strstr(why, text)) fail_msg("%s: '%s' lacks '%s'", crt, why, text);
    sm_conn_free(c);
    sm_tls_config_free(cc);
    peer_end(&p);
}

static void
test_s_server_verify_errors(void **state)
{
    (void)state;
    expect_dial_error("expired.pem", "leaf.key", NULL, true, SM_ERR_TLS_EXPIRED,
                      "certificate has expired");
    expect_dial_error("wronghost.pem", "leaf.key", NULL, true, SM_ERR_TLS_HOSTNAME,
                      "host name mismatch: cert is for other.example, www.other.example");
    /* The name checked is the configured one: here an address. */
    expect_dial_error("leaf.pem", "leaf.key", "10.1.2.3", true, SM_ERR_TLS_HOSTNAME,
                      "cert is for localhost, 127.0.0.1, ::1 (dialed 10.1.2.3)");
    expect_dial_error("self.pem", "self.key", NULL, true, SM_ERR_TLS_UNKNOWN_CA,
                      "unknown CA: self-signed certificate");
    expect_dial_error("leaf.pem", "leaf.key", NULL, false, SM_ERR_TLS_UNKNOWN_CA, "unknown CA");
}

static void
test_s_server_insecure_and_lines(void **state)
{
    (void)state;
    peer p;
    s_server(&p, "self.pem", "self.key");
    sm_tls_config *cc = sm_test_tls_client(true);
    SM_ASSERT_OK(sm_tls_config_insecure_skip_verify(cc, true));
    char ep[64], why[256];
    url(ep, sizeof ep, "127.0.0.1", p.port);
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_dial_tls(&c, ep, "line", cc, 5000, why, sizeof why));
    SM_ASSERT_OK(sm_conn_send(c, "hello tls", 9, 5000));
    sm_frame_msg m;
    assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
    assert_int_equal(m.len, 9);
    assert_memory_equal(m.data, "slt olleh", 9);
    sm_conn_free(c);
    sm_tls_config_free(cc);
    peer_end(&p);
}

/* ---- Python's ssl module ------------------------------------------------ */

static void
py_server(peer *p, const char *ca)
{
    char *argv[] = {SM_PYTHON3,
                    SM_TLS_PEER,
                    "server",
                    (char *)sm_test_cert("leaf.pem"),
                    (char *)sm_test_cert("leaf.key"),
                    (char *)ca,
                    NULL};
    p->pid = sm_test_spawn(argv, &p->out, false);
    char line[64];
    assert_true(sm_test_read_line(p->out, line, sizeof line, 10000) > 0);
    p->port = (uint16_t)atoi(line);
}

static int
py_session(const char *last, char *detail, size_t cap)
{
    peer p;
    py_server(&p, NULL);
    sm_tls_config *cc = sm_test_tls_client(true);
    char ep[64], why[256];
    url(ep, sizeof ep, "localhost", p.port);
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why));
    SM_ASSERT_OK(sm_conn_send(c, "echo", 4, 5000));
    sm_frame_msg m;
    assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
    assert_memory_equal(m.data, "echo", 4);
    SM_ASSERT_OK(sm_conn_send(c, last, strlen(last), 5000));
    int rc = sm_conn_recv(c, &m, 5000);
    snprintf(detail, cap, "%s", sm_conn_error_detail(c));
    assert_int_equal(sm_conn_recv(c, &m, 5000), rc); /* and it stays so */
    sm_conn_free(c);
    sm_tls_config_free(cc);
    assert_int_equal(sm_test_wait(p.pid, 10000), 0);
    close(p.out);
    return rc;
}

static void
test_python_close_notify_vs_truncation(void **state)
{
    (void)state;
    char d[256];
    assert_int_equal(py_session("bye", d, sizeof d), 0);
    SM_ASSERT_ERR(py_session("trunc", d, sizeof d), SM_ERR_TRUNCATED);
    assert_non_null(strstr(d, "without close_notify in the middle"));
    SM_ASSERT_ERR(py_session("eof", d, sizeof d), SM_ERR_TLS_EOF);
    assert_non_null(strstr(d, "at a message boundary"));
}

static void
test_python_client(void **state)
{
    (void)state;
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    srv s;
    srv_start(&s, sc, "len32be", 1);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)s.port);
    char *argv[] = {SM_PYTHON3, SM_TLS_PEER, "client", port, (char *)sm_test_cert("ca.pem"),
                    "24",       NULL};
    int out;
    int pid = sm_test_spawn(argv, &out, true);
    char text[512];
    sm_test_read_all(out, text, sizeof text, 30000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    assert_string_equal(text, "ok\n");
    srv_join(&s);
    if (s.rc[0] != 0) fail_msg("server: %s %s", sm_err_name(s.rc[0]), s.detail[0]);
    sm_tls_config_free(sc);
}

/* ---- not TLS, silence ------------------------------------------------------ */

static void *
plain_http_main(void *arg)
{
    int lfd = *(int *)arg;
    int fd = sm_accept(lfd, 10000, NULL);
    if (fd >= 0) {
        char buf[512];
        sm_recv_some(fd, buf, sizeof buf, 5000);
        const char *r = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        sm_send_all(fd, r, strlen(r), 5000, NULL);
        close(fd);
    }
    return NULL;
}

static void
test_not_tls(void **state)
{
    (void)state;
    /* A TLS client at a plain HTTP server. */
    sm_endpoint ep, bound;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
    int lfd = SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 4, &bound, NULL, 0));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, plain_http_main, &lfd), 0);
    sm_tls_config *cc = sm_test_tls_client(true);
    char u[64], why[256];
    url(u, sizeof u, "localhost", bound.port);
    sm_conn *c;
    SM_ASSERT_ERR(sm_conn_dial_tls(&c, u, "len32be", cc, 5000, why, sizeof why),
                  SM_ERR_TLS_NOT_TLS);
    assert_non_null(strstr(why, "not TLS (plain HTTP on a TLS port?)"));
    pthread_join(th, NULL);
    close(lfd);

    /* Plain bytes at a TLS server: an HTTP request, garbage, a ClientHello
     * cut short. */
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    srv s;
    srv_start(&s, sc, "len32be", 3);
    static const struct {
        const char *bytes;
        size_t len;
    } sends[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},
        {"\x00\x01\x02garbage garbage garbage\n", 28},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11},
    };
    for (int i = 0; i < 3; i++) {
        SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
        ep.port = s.port;
        int fd = SM_ASSERT_OK(sm_dial_endpoint(&ep, NULL, 5000, NULL, 0));
        SM_ASSERT_OK(sm_send_all(fd, sends[i].bytes, sends[i].len, 5000, NULL));
        shutdown(fd, SHUT_WR);
        char buf[256];
        while (sm_recv_some(fd, buf, sizeof buf, 5000) > 0) {
        }
        close(fd);
    }
    srv_join(&s);
    SM_ASSERT_ERR(s.rc[0], SM_ERR_TLS_NOT_TLS);
    assert_non_null(strstr(s.detail[0], "not TLS"));
    SM_ASSERT_ERR(s.rc[1], SM_ERR_TLS_NOT_TLS);
    SM_ASSERT_ERR(s.rc[2], SM_ERR_TLS);
    assert_non_null(strstr(s.detail[2], "closed the connection during the handshake"));
    sm_tls_config_free(sc);
    sm_tls_config_free(cc);
}

static void
test_handshake_deadline(void **state)
{
    (void)state;
    /* A listener nobody accepts on: the connect completes, the handshake
     * never does. */
    sm_endpoint ep, bound;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
    int lfd = SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 4, &bound, NULL, 0));
    sm_tls_config *cc = sm_test_tls_client(true);
    char u[64], why[256];
    url(u, sizeof u, "localhost", bound.port);
    sm_conn *c;
    SM_ASSERT_ERR(sm_conn_dial_tls(&c, u, "len32be", cc, 200, why, sizeof why), -ETIMEDOUT);
    assert_non_null(strstr(why, "handshake timed out"));
    close(lfd);
    /* A server whose client says nothing. */
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    lfd = SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 4, &bound, NULL, 0));
    ep.port = bound.port;
    int cfd = SM_ASSERT_OK(sm_dial_endpoint(&ep, NULL, 5000, NULL, 0));
    int fd = SM_ASSERT_OK(sm_accept(lfd, 5000, NULL));
    sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, "len32be", NULL, 0));
    SM_ASSERT_ERR(sm_conn_new_tls(&c, fd, &spec, sc, NULL, 200, why, sizeof why), -ETIMEDOUT);
    close(cfd);
    close(lfd);
    sm_tls_config_free(sc);
    sm_tls_config_free(cc);
}

static void
test_config_errors(void **state)
{
    (void)state;
    sm_tls_config *c;
    char why[256];
    SM_ASSERT_OK(sm_tls_config_new(&c, SM_TLS_SERVER, why, sizeof why));
    SM_ASSERT_ERR(sm_tls_config_set_cert(c, sm_test_cert("nope.pem"), sm_test_cert("leaf.key"), why,
                                         sizeof why),
                  SM_ERR_TLS);
    assert_non_null(strstr(why, "nope.pem"));
    SM_ASSERT_ERR(sm_tls_config_set_cert(c, sm_test_cert("leaf.pem"), sm_test_cert("self.key"), why,
                                         sizeof why),
                  SM_ERR_TLS);
    assert_non_null(strstr(why, "does not match"));
    SM_ASSERT_ERR(sm_tls_config_set_alpn(c, "h2,,x"), -EINVAL);
    SM_ASSERT_ERR(sm_tls_config_set_min_version(c, 0x0301), -EINVAL);
    SM_ASSERT_OK(sm_tls_config_set_min_version(c, SM_TLS_1_3));
    /* No certificate: a server cannot start a handshake. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, "len32be", NULL, 0));
    sm_conn *conn;
    SM_ASSERT_ERR(sm_conn_new_tls(&conn, sv[0], &spec, c, NULL, 100, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "no certificate"));
    close(sv[1]);
    sm_tls_config_free(c);
    assert_true(sm_tls_available());
    sm_endpoint ep;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tls://[::1]:443", NULL, 0));
    assert_int_equal(ep.tls, 1);
    char out[64];
    SM_ASSERT_OK(sm_endpoint_format(&ep, out, sizeof out));
    assert_string_equal(out, "tls://[::1]:443");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_echo_framings_and_resumption),
        cmocka_unit_test(test_default_dial_verifies),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_keylog),
        cmocka_unit_test(test_s_server_verify_errors),
        cmocka_unit_test(test_s_server_insecure_and_lines),
        cmocka_unit_test(test_python_close_notify_vs_truncation),
        cmocka_unit_test(test_python_client),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_handshake_deadline),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
