/* A real HAProxy in front of a server that expects PROXY headers: clients
 * connect to HAProxy on loopback, HAProxy relays to us with send-proxy (v1)
 * or send-proxy-v2, and the server must see each client's own address and
 * port. Skipped (with a message) when haproxy is not installed. */
#include "server_util.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

/* "addr": reply with the client's address as the server sees it; anything
 * else is echoed. */
static void
addr_or_echo(sm_peer *p, const sm_frame_msg *m)
{
    if (m->len != 4 || memcmp(m->data, "addr", 4)) {
        sm_server_handler_echo(p, m);
        return;
    }
    sm_addr a, d;
    char out[300];
    int src = sm_peer_addr(p, &a), dst = sm_peer_local_addr(p, &d);
    int n = 0;
    if (src < 0 || dst < 0) {
        n = snprintf(out, sizeof out, "error");
    } else {
        n = sm_addr_format((const struct sockaddr *)&a.ss, a.len, out, sizeof out);
        n += snprintf(out + n, sizeof out - (size_t)n, " %s to ", src ? "proxy" : "socket");
        n += sm_addr_format((const struct sockaddr *)&d.ss, d.len, out + n, sizeof out - (size_t)n);
    }
    sm_peer_send(p, out, (size_t)n);
}

/* A port free right now on 127.0.0.1 (for HAProxy's frontends). */
static unsigned
free_port(void)
{
    int fd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 1));
    sm_endpoint e;
    SM_ASSERT_OK(sm_sock_local(fd, &e));
    close(fd);
    return e.port;
}

static void
test_haproxy(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    if (!SM_HAPROXY[0] || access(SM_HAPROXY, X_OK) != 0) {
        fprintf(stderr, "# haproxy not found (install the Debian package haproxy): skipped\n");
        skip();
    }
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one, .on_message = addr_or_echo, .proxy_protocol = true};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_endpoint me;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &me));

    char dir[256], cfg[300];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/haproxy.cfg", dir);
    unsigned port[2] = {free_port(), free_port()};
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "global\n"
               "    maxconn 100\n"
               "defaults\n"
               "    mode tcp\n"
               "    timeout connect 5s\n"
               "    timeout client 30s\n"
               "    timeout server 30s\n");
    static const char *const how[2] = {"send-proxy", "send-proxy-v2"};
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "frontend fe%d\n"
                "    bind 127.0.0.1:%u\n"
                "    default_backend be%d\n"
                "backend be%d\n"
                "    server s 127.0.0.1:%u %s\n",
                i, port[i], i, i, me.port, how[i]);
    fclose(f);

    int out;
    char *argv[] = {SM_HAPROXY, "-f", cfg, "-db", NULL};
    int pid = sm_test_spawn(argv, &out, true);

    for (int i = 0; i < 2; i++) {
        char front[64];
        snprintf(front, sizeof front, "tcp://127.0.0.1:%u", port[i]);
        /* Bounded wait until HAProxy accepts on its frontend. */
        sm_conn *c = NULL;
        char why[200];
        for (int64_t end = sm_test_now_ms() + 10000; !c && sm_test_now_ms() < end;) {
            if (sm_conn_dial(&c, front, "len32be", 1000, why, sizeof why) < 0) {
                c = NULL;
                nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
            }
        }
        if (!c) {
            char text[2048] = "";
            kill(pid, SIGTERM);
            sm_test_read_all(out, text, sizeof text, 2000);
            fail_msg("haproxy does not accept on %s: %s\nhaproxy said:\n%s", front, why, text);
        }
        sm_endpoint mine;
        SM_ASSERT_OK(sm_sock_local(sm_conn_fd(c), &mine));
        char want[200], got[300];
        snprintf(want, sizeof want, "tcp://127.0.0.1:%u proxy to tcp://127.0.0.1:%u", mine.port,
                 port[i]);
        SM_ASSERT_OK(sm_conn_send(c, "addr", 4, SM_CONN_DEFAULT));
        sm_frame_msg m;
        assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
        snprintf(got, sizeof got, "%.*s", (int)m.len, (const char *)m.data);
        assert_string_equal(got, want);
        cli_echo(c, "through haproxy");
        cli_echo(c, "and back");
        sm_conn_free(c);
    }

    kill(pid, SIGTERM);
    sm_test_wait(pid, 10000);
    close(out);
    sm_server_stats st = srv_stats(srv);
    assert_true(st.opened >= 2);
    assert_int_equal(st.closes[SM_CLOSE_MALFORMED], 0);
    sm_server_free(srv);
    unlink(cfg);
    sm_test_rmdir(dir);
}

static const srv_variant loop_model = {SM_SERVER_LOOP, SM_ACCEPT_DEFAULT, 2};
static const srv_variant thread_model = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_haproxy, (void *)&loop_model),
        cmocka_unit_test_prestate(test_haproxy, (void *)&thread_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
