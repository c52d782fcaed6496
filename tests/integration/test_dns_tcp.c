/* examples/dns_tcp.c against a real dnsmasq, and against a scripted server
 * for what dnsmasq never does (replies out of order, TC, bad replies); and
 * the example's codec (examples/dns_wire.c) on its own.
 *
 * dnsmasq cannot listen on port 0 and tell us the port, so the whole test
 * process moves into a network namespace of its own first
 * (sm_test_private_net): dnsmasq listens on 127.0.0.1:53 there, where nothing
 * else can be, and the namespace ends with the test, even a killed one
 * (dnsmasq gets SIGKILL when the test dies: PR_SET_PDEATHSIG). */
#include "smtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>

#include "../../examples/dns_wire.h"
#include "netns_util.h"

static char dir[256];
static int dnsmasq_pid = -1, dnsmasq_err = -1;
static bool real_root; /* else root only in a user namespace of ours */

/* dnsmasq in the foreground, logging to stderr, serving only the names of
 * its hosts file (no upstream, no /etc/hosts) and NXDOMAIN for nx.test. */
static int
start_dnsmasq(void)
{
    char hosts[300], hosts_opt[320];
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    FILE *f = fopen(hosts, "w");
    if (!f) return -1;
    fputs("192.0.2.7 www.example.test\n192.0.2.8 www.example.test\n"
          "2001:db8::7 www.example.test\n198.51.100.1 one.example.test\n",
          f);
    if (fclose(f) != 0) return -1;
    snprintf(hosts_opt, sizeof hosts_opt, "--addn-hosts=%s", hosts);
    /* In a user namespace dnsmasq cannot drop its groups (setgroups is
     * denied there), and only its debug mode (--no-daemon) does not try. */
    char *argv[] = {SM_DNSMASQ,
                    real_root ? "--keep-in-foreground" : "--no-daemon",
                    "--log-facility=-",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    hosts_opt,
                    "--address=/nx.test/",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--port=53",
                    "--pid-file=",
                    "--user=root",
                    "--group=root",
                    NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    int pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* Dies with the test, whatever kills the test. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(126);
        dup2(p[1], 2);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s (scripts/deps.sh test installs dnsmasq-base)\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(p[1]);
    dnsmasq_pid = pid;
    dnsmasq_err = p[0];
    /* dnsmasq says "started" after it has bound its sockets. */
    char line[512];
    for (int i = 0; i < 20; i++) {
        if (sm_test_read_line(dnsmasq_err, line, sizeof line, 10000) < 0) break;
        if (strstr(line, "started, version")) return 0;
        fprintf(stderr, "dnsmasq: %s\n", line);
    }
    fprintf(stderr, "dnsmasq did not start\n");
    return -1;
}

static int
setup(void **state)
{
    (void)state;
    char why[256];
    real_root = geteuid() == 0;
    if (sm_test_private_net(why, sizeof why) != 0) {
        fprintf(stderr, "no network namespace of our own: %s\n", why);
        return -1;
    }
    sm_test_mkdtemp(dir, sizeof dir);
    return start_dnsmasq();
}

static int
teardown(void **state)
{
    (void)state;
    if (dnsmasq_pid > 0) {
        kill(dnsmasq_pid, SIGTERM);
        sm_test_wait(dnsmasq_pid, 5000);
    }
    if (dnsmasq_err >= 0) close(dnsmasq_err);
    sm_test_rmdir(dir);
    return 0;
}

/* Run dns_tcp with args; its stdout in out, stderr in err; its status. */
static int
run_dns(char **args, int nargs, char *out, size_t out_len, char *err, size_t err_len)
{
    char *argv[80];
    assert_true(nargs + 2 <= (int)(sizeof argv / sizeof argv[0]));
    argv[0] = DNS_TCP;
    for (int i = 0; i < nargs; i++)
        argv[1 + i] = args[i];
    argv[1 + nargs] = NULL;
    int o, e;
    int pid = sm_test_spawn2(argv, NULL, &o, &e);
    sm_test_read_all(o, out, out_len, 20000);
    sm_test_read_all(e, err, err_len, 20000);
    close(o);
    close(e);
    return sm_test_wait(pid, 20000);
}

static void
test_dnsmasq_pipelined(void **state)
{
    (void)state;
    char *args[] = {
        "tcp://127.0.0.1:53", "www.example.test",   "www.example.test/AAAA", "nx.test", "other.org",
        "WWW.Example.Test.",  "one.example.test/A", "one.example.test/AAAA"};
    char out[4096], err[4096];
    int rc = run_dns(args, 8, out, sizeof out, err, sizeof err);
    if (rc != 0) fail_msg("dns_tcp exited %d: %s", rc, err);
    char *line[7], *save = NULL, *p = out;
    for (int i = 0; i < 7; i++, p = NULL) {
        line[i] = strtok_r(p, "\n", &save);
        assert_non_null(line[i]);
    }
    assert_null(strtok_r(NULL, "\n", &save));
    /* The hosts file's two A records, in either order. */
    assert_true(strncmp(line[0], "www.example.test A NOERROR ", 27) == 0);
    assert_non_null(strstr(line[0], " 192.0.2.7"));
    assert_non_null(strstr(line[0], " 192.0.2.8"));
    assert_string_equal(line[1], "www.example.test AAAA NOERROR 2001:db8::7");
    assert_string_equal(line[2], "nx.test A NXDOMAIN");
    assert_string_equal(line[3], "other.org A REFUSED"); /* no upstream to ask */
    assert_true(strncmp(line[4], "WWW.Example.Test. A NOERROR ", 28) == 0);
    assert_string_equal(line[5], "one.example.test A NOERROR 198.51.100.1");
    /* No AAAA in the hosts file: dnsmasq would ask upstream, and has none. */
    assert_string_equal(line[6], "one.example.test AAAA REFUSED");
    assert_string_equal(err, "");
}

/* The example's limit of 64 queries, all in flight on one connection. */
static void
test_dnsmasq_many(void **state)
{
    (void)state;
    char *args[65];
    args[0] = "tcp://127.0.0.1:53";
    for (int i = 0; i < 64; i++)
        args[1 + i] = i % 2 ? "one.example.test" : "nx.test";
    char out[8192], err[4096];
    int rc = run_dns(args, 65, out, sizeof out, err, sizeof err);
    if (rc != 0) fail_msg("dns_tcp exited %d: %s", rc, err);
    char *p = out;
    for (int i = 0; i < 64; i++) {
        const char *want =
            i % 2 ? "one.example.test A NOERROR 198.51.100.1\n" : "nx.test A NXDOMAIN\n";
        if (strncmp(p, want, strlen(want)) != 0) fail_msg("line %d: %.60s", i, p);
        p += strlen(want);
    }
    assert_string_equal(p, "");
}

/* A scripted server: takes `n` queries, then sends what make_reply builds
 * for each, in the order of `order`. */
typedef size_t (*reply_fn)(const sm_frame_msg *q, int i, uint8_t *out);

static int
scripted(char **names, int n, const int *order, reply_fn make_reply, char *out, size_t out_len,
         char *err, size_t err_len)
{
    uint16_t port;
    int l = sm_test_listen_loopback(1, &port);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", port);
    char *argv[12] = {DNS_TCP, "-t", "5000", ep};
    for (int i = 0; i < n; i++)
        argv[4 + i] = names[i];
    int o, e;
    int pid = sm_test_spawn2(argv, NULL, &o, &e);
    struct pollfd pfd = {.fd = l, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    close(l);
    sm_frame_spec spec;
    assert_int_equal(sm_frame_spec_parse(&spec, "len16be", NULL, 0), 0);
    sm_conn *c;
    assert_int_equal(sm_conn_new_take(&c, fd, &spec), 0);
    sm_conn_set_timeout(c, 10000);
    static uint8_t q[8][512], r[8][1024];
    size_t rlen[8];
    for (int i = 0; i < n; i++) {
        sm_frame_msg m;
        assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
        assert_true(m.len <= sizeof q[i]);
        memcpy(q[i], m.data, m.len);
        sm_frame_msg copy = m;
        copy.data = q[i];
        rlen[i] = make_reply(&copy, i, r[i]);
    }
    for (int k = 0; k < n; k++) {
        int i = order[k];
        if (rlen[i])
            assert_int_equal(sm_conn_send(c, r[i], rlen[i], SM_CONN_DEFAULT), (ssize_t)rlen[i]);
    }
    sm_conn_shutdown(c);
    sm_test_read_all(o, out, out_len, 10000);
    sm_test_read_all(e, err, err_len, 10000);
    close(o);
    close(e);
    sm_conn_free(c);
    return sm_test_wait(pid, 10000);
}

/* The query turned into a reply: QR set, `flags` or'ed in, then `an`
 * answers of type `type` whose name is a pointer to the question's. */
static size_t
reply_with(const sm_frame_msg *q, uint16_t flags, uint16_t type, int an, uint8_t *out)
{
    memcpy(out, q->data, q->len);
    out[2] |= (uint8_t)(0x80 | flags >> 8);
    out[3] |= (uint8_t)flags;
    out[7] = (uint8_t)an;
    size_t n = q->len;
    for (int i = 0; i < an; i++) {
        size_t rd = type == DNS_A ? 4 : 16;
        uint8_t rr[10] = {0xC0, 12, 0, (uint8_t)type, 0, 1, 0, 0, 0, 60};
        memcpy(out + n, rr, sizeof rr);
        n += sizeof rr;
        out[n++] = 0;
        out[n++] = (uint8_t)rd;
        memset(out + n, 0, rd);
        out[n + rd - 1] = (uint8_t)(i + 1);
        if (type == DNS_A) out[n] = 10;
        n += rd;
    }
    return n;
}

static size_t
mixed_reply(const sm_frame_msg *q, int i, uint8_t *out)
{
    if (i == 0) return reply_with(q, 0x0200, DNS_A, 2, out); /* TC */
    if (i == 1) return reply_with(q, 0, DNS_AAAA, 1, out);
    return reply_with(q, 2, DNS_A, 0, out); /* SERVFAIL */
}

static void
test_out_of_order_and_truncated(void **state)
{
    (void)state;
    char *names[] = {"a.test", "b.test/AAAA", "c.test"};
    const int order[] = {2, 0, 1};
    char out[1024], err[1024];
    int rc = scripted(names, 3, order, mixed_reply, out, sizeof out, err, sizeof err);
    if (rc != 0) fail_msg("dns_tcp exited %d: %s", rc, err);
    assert_string_equal(out, "a.test A NOERROR 10.0.0.1 10.0.0.2 (truncated)\n"
                             "b.test AAAA NOERROR ::1\n"
                             "c.test A SERVFAIL\n");
}

static size_t
stranger_reply(const sm_frame_msg *q, int i, uint8_t *out)
{
    size_t n = reply_with(q, 0, DNS_A, 1, out);
    if (i == 1) out[1] ^= 0x55; /* an ID nobody asked for */
    return n;
}

static size_t
short_reply(const sm_frame_msg *q, int i, uint8_t *out)
{
    (void)i;
    return reply_with(q, 0, DNS_A, 1, out) - 1; /* the address one byte short */
}

static size_t
other_question_reply(const sm_frame_msg *q, int i, uint8_t *out)
{
    (void)i;
    size_t n = reply_with(q, 0, DNS_A, 0, out);
    out[13] = 'z'; /* "a.test" answered as "z.test" */
    return n;
}

static size_t
no_reply(const sm_frame_msg *q, int i, uint8_t *out)
{
    return i == 0 ? reply_with(q, 0, DNS_A, 0, out) : 0;
}

static void
test_bad_replies(void **state)
{
    (void)state;
    static const struct {
        reply_fn fn;
        const char *says;
    } cases[] = {
        {stranger_reply, "matches no query"},
        {short_reply, "answer data past the end"},
        {other_question_reply, "answers z.test, not a.test"},
        {no_reply, "1 of 2 replies, then the server closed"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *names[] = {"a.test", "a.test"};
        const int order[] = {0, 1};
        char out[1024], err[1024];
        int rc = scripted(names, 2, order, cases[k].fn, out, sizeof out, err, sizeof err);
        if (rc != 1 || !strstr(err, cases[k].says))
            fail_msg("case %zu: exit %d, stderr '%s', wanted '%s'", k, rc, err, cases[k].says);
        assert_string_equal(out, ""); /* nothing half-printed */
    }
}

static void
test_codec(void **state)
{
    (void)state;
    uint8_t q[600];
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0, 0,  0, 3,
                                   'w',  'w',  'w',  4,    'T', 'e', 's', 't', 0, 0, 28, 0, 1};
    assert_int_equal(dns_query_encode(q, sizeof q, 0x1234, "www.Test.", DNS_AAAA), sizeof want);
    assert_memory_equal(q, want, sizeof want);
    assert_int_equal(dns_query_encode(q, sizeof want - 1, 0x1234, "www.Test", DNS_AAAA), -1);
    char name[300];
    memset(name, 'a', 64);
    name[64] = '\0';
    assert_int_equal(dns_query_encode(q, sizeof q, 1, name, DNS_A), -1); /* label of 64 */
    name[63] = '\0';
    assert_true(dns_query_encode(q, sizeof q, 1, name, DNS_A) > 0);
    static const char *const bad[] = {"", ".", "a..b", ".a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dns_query_encode(q, sizeof q, 1, bad[i], DNS_A), -1);
    /* 253 characters is the longest name (255 on the wire); 254 is too long. */
    for (int i = 0; i < 254; i++)
        name[i] = i % 2 ? '.' : 'x';
    name[253] = '\0';
    assert_true(dns_query_encode(q, sizeof q, 1, name, DNS_A) > 0);
    name[253] = 'x';
    name[254] = '\0';
    assert_int_equal(dns_query_encode(q, sizeof q, 1, name, DNS_A), -1);

    /* Every cut of a good reply is an error, never a read past the end. */
    int ql = dns_query_encode(q, sizeof q, 7, "a.test", DNS_A);
    sm_frame_msg m = {.data = q, .len = (size_t)ql};
    uint8_t r[256];
    size_t rl = reply_with(&m, 0, DNS_A, 2, r);
    dns_reply rep;
    const char *why = NULL;
    assert_int_equal(dns_reply_parse(r, rl, &rep, &why), 0);
    assert_int_equal(rep.id, 7);
    assert_string_equal(rep.qname, "a.test");
    assert_int_equal(rep.naddrs, 2);
    assert_int_equal(rep.addrs[1].ttl, 60);
    for (size_t cut = 0; cut < rl; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees any overread */
        assert_non_null(copy);
        memcpy(copy, r, cut);
        assert_int_equal(dns_reply_parse(copy, cut, &rep, &why), -1);
        free(copy);
    }
    r[2] &= 0x7F; /* QR clear: a query */
    assert_int_equal(dns_reply_parse(r, rl, &rep, &why), -1);
    assert_string_equal(why, "a query, not a reply");
    char buf[16];
    assert_string_equal(dns_rcode_name(3, buf, sizeof buf), "NXDOMAIN");
    assert_string_equal(dns_rcode_name(9, buf, sizeof buf), "RCODE9");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),        cmocka_unit_test(test_dnsmasq_pipelined),
        cmocka_unit_test(test_dnsmasq_many), cmocka_unit_test(test_out_of_order_and_truncated),
        cmocka_unit_test(test_bad_replies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
