/* socket module, part 2: dialing (Happy Eyeballs included) and listening on
 * TCP (IPv4, IPv6, dual-stack) and Unix (path, abstract) endpoints, on real
 * loopback sockets. */
#include "smtest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sockmsg/socket.h>

#include "internal.h"

/* ---- fixtures ---------------------------------------------------------- */

static int64_t
elapsed_since(int64_t t0)
{
    return sm_test_now_ms() - t0;
}

/* Listen on `spec` and return the fd; *bound gets the bound address. */
static int
listen_on(const char *spec, sm_endpoint *bound)
{
    sm_endpoint ep;
    char why[256] = "";
    SM_ASSERT_OK(sm_endpoint_parse(&ep, spec, NULL, 0));
    int l = (int)sm_listen_endpoint(&ep, NULL, 0, bound, why, sizeof why);
    if (l < 0) print_error("listen %s: %s\n", spec, why);
    return (int)SM_ASSERT_OK(l);
}

static void
format(const sm_endpoint *ep, char *out, size_t len)
{
    SM_ASSERT_OK(sm_endpoint_format(ep, out, len));
}

static void
assert_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    assert_true(flags >= 0 && (flags & FD_CLOEXEC));
}

/* One round trip through a connected pair, both ways. */
static void
echo(int c, int s)
{
    char buf[8];
    assert_int_equal(sm_send_all(c, "ping", 4, 2000, NULL), 4);
    assert_int_equal(sm_recv_exact(s, buf, 4, 2000, NULL), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(sm_send_all(s, "pong", 4, 2000, NULL), 4);
    assert_int_equal(sm_recv_exact(c, buf, 4, 2000, NULL), 4);
    assert_memory_equal(buf, "pong", 4);
}

/* Dial `to`, accept on l, check flags and exchange a message. */
static void
dial_accept_echo(int l, const char *to)
{
    int c = (int)SM_ASSERT_OK(sm_dial(to, 5000));
    int s = (int)SM_ASSERT_OK(sm_accept(l, 5000, NULL));
    assert_cloexec(c);
    assert_cloexec(s);
    assert_int_equal(fcntl(c, F_GETFL) & O_NONBLOCK, 0);
    echo(c, s);
    close(c);
    close(s);
}

static sm_addr
addr_of(const char *ip, uint16_t port)
{
    sm_addr a;
    memset(&a, 0, sizeof a);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a.ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
        a.len = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&a.ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &a4->sin_addr), 1);
        a.len = sizeof *a4;
    }
    return a;
}

/* A TCP port on `ip` that refuses connections: bound but not listening, so
 * no one else can take it while the test runs. */
static int
refusing_port(const char *ip, uint16_t port, uint16_t *got)
{
    sm_addr a = addr_of(ip, port);
    int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
        close(fd);
        return -errno;
    }
    sm_endpoint ep;
    SM_ASSERT_OK(sm_sock_local(fd, &ep));
    if (got) *got = ep.port;
    return fd;
}

/* A listener on `ip` port 0 whose port also refuses on `twin_ip` (the other
 * family). Another process may hold that port on the other family: then try
 * another port, a bounded number of times. */
static int
listen_with_twin(const char *ip, const char *twin_ip, int *hold, uint16_t *port)
{
    char spec[64];
    snprintf(spec, sizeof spec, strchr(ip, ':') ? "tcp://[%s]:0" : "tcp://%s:0", ip);
    for (int i = 0; i < 50; i++) {
        sm_endpoint bound;
        int l = listen_on(spec, &bound);
        *hold = refusing_port(twin_ip, bound.port, NULL);
        if (*hold >= 0) {
            *port = bound.port;
            return l;
        }
        close(l);
    }
    fail_msg("no port free on both %s and %s", ip, twin_ip);
    return -1;
}

static uint16_t
peer_port(int fd)
{
    sm_endpoint ep;
    SM_ASSERT_OK(sm_sock_peer(fd, &ep));
    return ep.port;
}

/* ---- TCP ----------------------------------------------------------------- */

static void
test_ipv4_listen_dial_echo(void **state)
{
    (void)state;
    sm_endpoint bound, local, peer;
    char to[300];
    int l = listen_on("tcp://127.0.0.1:0", &bound);
    assert_cloexec(l);
    assert_int_equal(bound.kind, SM_ENDPOINT_TCP);
    assert_string_equal(bound.host, "127.0.0.1");
    assert_int_not_equal(bound.port, 0);
    SM_ASSERT_OK(sm_sock_local(l, &local));
    assert_int_equal(local.port, bound.port);
    format(&bound, to, sizeof to);
    dial_accept_echo(l, to);

    /* Local and peer addresses agree across the connection. */
    int c = (int)SM_ASSERT_OK(sm_dial(to, 5000));
    sm_addr from;
    int s = (int)SM_ASSERT_OK(sm_accept(l, 5000, &from));
    SM_ASSERT_OK(sm_sock_local(c, &local));
    SM_ASSERT_OK(sm_sock_peer(s, &peer));
    assert_string_equal(local.host, peer.host);
    assert_int_equal(local.port, peer.port);
    SM_ASSERT_OK(sm_sock_peer(c, &peer));
    assert_int_equal(peer.port, bound.port);
    SM_ASSERT_ERR(sm_sock_peer(l, &peer), -ENOTCONN);
    close(c);
    close(s);

    /* sm_listen with the plain string form and the default backlog. */
    int l2 = (int)SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", -1));
    SM_ASSERT_OK(sm_sock_local(l2, &local));
    assert_int_not_equal(local.port, 0);
    /* A port in use is reported, not worked around. */
    char busy[300];
    format(&local, busy, sizeof busy);
    SM_ASSERT_ERR(sm_listen(busy, 0), -EADDRINUSE);
    close(l2);
    close(l);
}

static void
test_ipv6_listen_dial_echo(void **state)
{
    (void)state;
    sm_endpoint bound;
    char to[300];
    int l = listen_on("tcp://[::1]:0", &bound);
    assert_string_equal(bound.host, "::1");
    format(&bound, to, sizeof to);
    assert_memory_equal(to, "tcp://[::1]:", 12);
    dial_accept_echo(l, to);
    close(l);
}

static void
test_dual_stack_any(void **state)
{
    (void)state;
    sm_endpoint bound;
    char to[300];
    int l = listen_on("tcp://*:0", &bound);
    assert_string_equal(bound.host, "::");
    int v6only = 1;
    socklen_t len = sizeof v6only;
    assert_int_equal(getsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    assert_int_equal(v6only, 0);

    /* An IPv4 client reaches the IPv6 socket and is seen as the IPv4 address. */
    snprintf(to, sizeof to, "tcp://127.0.0.1:%u", bound.port);
    int c = (int)SM_ASSERT_OK(sm_dial(to, 5000));
    sm_addr from;
    int s = (int)SM_ASSERT_OK(sm_accept(l, 5000, &from));
    sm_endpoint peer;
    SM_ASSERT_OK(sm_addr_to_endpoint((struct sockaddr *)&from.ss, from.len, &peer));
    assert_string_equal(peer.host, "127.0.0.1");
    echo(c, s);
    close(c);
    close(s);

    snprintf(to, sizeof to, "tcp://[::1]:%u", bound.port);
    dial_accept_echo(l, to);
    close(l);
}

static void
test_dial_errors(void **state)
{
    (void)state;
    char why[256];
    static const char *const bad[] = {
        "",
        "bogus",
        "127.0.0.1:80",
        "tcp://127.0.0.1",
        "tcp://h:70000",
        "tcp://[::1:80",
        "tcp://:80",
        "udp://127.0.0.1:80",
        "unix:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        SM_ASSERT_ERR(sm_dial(bad[i], 1000), SM_ERR_ENDPOINT);
        SM_ASSERT_ERR(sm_listen(bad[i], 0), SM_ERR_ENDPOINT);
    }
    SM_ASSERT_ERR(sm_dial(NULL, 1000), -EINVAL);
    SM_ASSERT_ERR(sm_dial("tcp://*:80", 1000), SM_ERR_ENDPOINT);
    SM_ASSERT_ERR(sm_dial_endpoint(NULL, NULL, 1000, why, sizeof why), -EINVAL);

    /* Refused, with an explanation naming the address. */
    uint16_t port = 0;
    int hold = refusing_port("127.0.0.1", 0, &port);
    assert_true(hold >= 0);
    char to[64];
    snprintf(to, sizeof to, "tcp://127.0.0.1:%u", port);
    SM_ASSERT_ERR(sm_dial(to, 5000), -ECONNREFUSED);
    sm_endpoint ep;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, to, NULL, 0));
    SM_ASSERT_ERR(sm_dial_endpoint(&ep, NULL, 5000, why, sizeof why), -ECONNREFUSED);
    assert_non_null(strstr(why, to));
    close(hold);
}

/* `localhost` with only one family listening. This host's resolver may give
 * one or both families; whichever it gives must work through sm_dial. */
static void
test_dial_localhost(void **state)
{
    (void)state;
    sm_endpoint ep;
    sm_addr addrs[8];
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://localhost:1", NULL, 0));
    int n = (int)SM_ASSERT_OK(sm_endpoint_resolve(&ep, false, addrs, 8, NULL, 0));
    bool has4 = false, has6 = false;
    for (int i = 0; i < n; i++) {
        has4 |= addrs[i].ss.ss_family == AF_INET;
        has6 |= addrs[i].ss.ss_family == AF_INET6;
    }
    static const char *const sides[2] = {"127.0.0.1", "::1"};
    for (int v6 = 0; v6 < 2; v6++) {
        if (!(v6 ? has6 : has4)) {
            print_message("localhost has no %s address here; covered by "
                          "test_happy_eyeballs_one_side\n",
                          v6 ? "IPv6" : "IPv4");
            continue;
        }
        char to[64];
        int hold;
        uint16_t port;
        int l = listen_with_twin(sides[v6], sides[!v6], &hold, &port);
        snprintf(to, sizeof to, "tcp://localhost:%u", port);
        dial_accept_echo(l, to);
        close(hold);
        close(l);
    }
}

/* ---- Happy Eyeballs, on address lists -------------------------------------- */

/* [::1]:p and 127.0.0.1:p with only one side listening, the other refusing
 * on the same port: the listening side wins, and a refusal does not wait for
 * the stagger delay. */
static void
test_happy_eyeballs_one_side(void **state)
{
    (void)state;
    for (int v6 = 0; v6 < 2; v6++) {
        int hold;
        uint16_t port;
        int l = v6 ? listen_with_twin("::1", "127.0.0.1", &hold, &port)
                   : listen_with_twin("127.0.0.1", "::1", &hold, &port);
        sm_addr list[2] = {addr_of("::1", port), addr_of("127.0.0.1", port)};
        char why[256];
        int c = (int)SM_ASSERT_OK(
            sm__dial_addrs(list, 2, NULL, sm_test_now_ms() + 5000, why, sizeof why));
        int s = (int)SM_ASSERT_OK(sm_accept(l, 5000, NULL));
        sm_endpoint local;
        SM_ASSERT_OK(sm_sock_local(c, &local));
        assert_int_equal(strchr(local.host, ':') != NULL, v6);
        assert_cloexec(c);
        echo(c, s);
        close(c);
        close(s);
        close(hold);
        close(l);
    }
}

/* Several refusals in a row, then a listener: each failure starts the next
 * attempt at once. Waiting out the stagger delay instead would take
 * REFUSALS * 250 ms (3.75 s) before the listener is tried; the dial's
 * deadline is half that, so such a dial fails, while a working one needs a
 * few ms (the deadline is 100s of times that: far from noise either way).
 * The list is as long as a dial takes (SM__DIAL_MAX_ADDRS). */
static void
test_happy_eyeballs_failure_starts_next(void **state)
{
    (void)state;
    enum { REFUSALS = SM__DIAL_MAX_ADDRS - 1 };
    sm_endpoint bound;
    int l = listen_on("tcp://127.0.0.1:0", &bound);
    int holds[REFUSALS];
    sm_addr list[REFUSALS + 1];
    for (int i = 0; i < REFUSALS; i++) {
        uint16_t port = 0;
        holds[i] = refusing_port(i % 2 ? "127.0.0.1" : "::1", 0, &port);
        assert_true(holds[i] >= 0);
        list[i] = addr_of(i % 2 ? "127.0.0.1" : "::1", port);
    }
    list[REFUSALS] = addr_of("127.0.0.1", bound.port);
    int64_t t0 = sm_test_now_ms();
    int c = (int)SM_ASSERT_OK(
        sm__dial_addrs(list, REFUSALS + 1, NULL, t0 + REFUSALS * SM__DIAL_STAGGER_MS / 2, NULL, 0));
    print_message("%d refusals, then connected after %lld ms\n", REFUSALS,
                  (long long)elapsed_since(t0));
    assert_int_equal(peer_port(c), bound.port);
    close(c);

    /* All refused: the error is the refusal. */
    char why[256];
    SM_ASSERT_ERR(sm__dial_addrs(list, REFUSALS, NULL, sm_test_now_ms() + 5000, why, sizeof why),
                  -ECONNREFUSED);
    assert_non_null(strstr(why, "refused"));
    for (int i = 0; i < REFUSALS; i++)
        close(holds[i]);
    close(l);
}

static void
test_happy_eyeballs_black_hole(void **state)
{
    (void)state;
    int filler;
    uint16_t hole_port;
    int hole = sm_test_black_hole(&filler, &hole_port);
    if (hole < 0) {
        skip();
        return;
    }
    sm_endpoint bound;
    int l = listen_on("tcp://127.0.0.1:0", &bound);

    /* The first attempt hangs; the second starts after the stagger delay and
     * wins; the hanging one is closed (no fd left behind). */
    sm_addr list[2] = {addr_of("127.0.0.1", hole_port), addr_of("127.0.0.1", bound.port)};
    int fds = sm_test_count_fds();
    int64_t t0 = sm_test_now_ms();
    int c = (int)SM_ASSERT_OK(sm__dial_addrs(list, 2, NULL, t0 + 10000, NULL, 0));
    int64_t ms = elapsed_since(t0);
    assert_true(ms >= SM__DIAL_STAGGER_MS - 10); /* never early; how late is load's */
    assert_int_equal(peer_port(c), bound.port);
    assert_int_equal(sm_test_count_fds(), fds + 1);
    close(c);

    /* Only the black hole: a timeout within generous bounds. */
    t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm__dial_addrs(list, 1, NULL, t0 + 150, NULL, 0), -ETIMEDOUT);
    ms = elapsed_since(t0);
    assert_true(ms >= 140); /* never early; how late is load's */
    assert_int_equal(sm_test_count_fds(), fds);
    char to[64];
    snprintf(to, sizeof to, "tcp://127.0.0.1:%u", hole_port);
    t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_dial(to, 100), -ETIMEDOUT);
    ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */

    /* A black hole and a refusal: the refusal is the more meaningful error.
     * The refused attempt starts after the stagger delay; the deadline is
     * 10 times that, so a late timer still makes it in time. */
    uint16_t refused_port = 0;
    int hold = refusing_port("127.0.0.1", 0, &refused_port);
    assert_true(hold >= 0);
    list[1] = addr_of("127.0.0.1", refused_port);
    SM_ASSERT_ERR(
        sm__dial_addrs(list, 2, NULL, sm_test_now_ms() + 10 * SM__DIAL_STAGGER_MS, NULL, 0),
        -ECONNREFUSED);
    assert_int_equal(sm_test_count_fds(), fds + 1);

    close(hold);
    close(l);
    close(filler);
    close(hole);
}

/* ---- Unix ------------------------------------------------------------------ */

static void
test_unix_path(void **state)
{
    (void)state;
    char dir[256], spec[400];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(spec, sizeof spec, "unix:%s/s", dir);
    sm_endpoint bound;
    int l = listen_on(spec, &bound);
    assert_cloexec(l);
    assert_int_equal(bound.kind, SM_ENDPOINT_UNIX);
    assert_string_equal(bound.path, spec + 5);
    dial_accept_echo(l, spec);

    int c = (int)SM_ASSERT_OK(sm_dial(spec, 5000));
    sm_addr from;
    int s = (int)SM_ASSERT_OK(sm_accept(l, 5000, &from));
    sm_endpoint peer;
    SM_ASSERT_OK(sm_sock_peer(c, &peer));
    assert_string_equal(peer.path, spec + 5);
    /* The client is unnamed. */
    SM_ASSERT_OK(sm_addr_to_endpoint((struct sockaddr *)&from.ss, from.len, &peer));
    assert_int_equal(peer.kind, SM_ENDPOINT_UNIX);
    assert_string_equal(peer.path, "");
    close(c);
    close(s);
    close(l);

    /* Missing path, and a stale file with nobody listening. */
    char missing[400];
    snprintf(missing, sizeof missing, "unix:%s/nothing", dir);
    SM_ASSERT_ERR(sm_dial(missing, 1000), -ENOENT);
    SM_ASSERT_ERR(sm_dial(spec, 1000), -ECONNREFUSED);
    sm_test_rmdir(dir);
}

static void
test_unix_stale_live_and_regular_files(void **state)
{
    (void)state;
    char dir[80], spec[100], path[90];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);

    /* A dead server's file: bound, listened, closed, never unlinked. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    memcpy(un.sun_path, path, strlen(path) + 1);
    int dead = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(dead, (struct sockaddr *)&un, sizeof un), 0);
    assert_int_equal(listen(dead, 1), 0);
    close(dead);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    int l = (int)SM_ASSERT_OK(sm_listen(spec, 0));
    dial_accept_echo(l, spec);

    /* A live server's file is left alone. The liveness probe is a connect,
     * so the live server sees one connection that closes at once. */
    SM_ASSERT_ERR(sm_listen(spec, 0), -EADDRINUSE);
    assert_int_equal(lstat(path, &st), 0);
    int probe = (int)SM_ASSERT_OK(sm_accept(l, 1000, NULL));
    char b;
    assert_int_equal(sm_recv_some(probe, &b, 1, 1000), 0);
    close(probe);
    dial_accept_echo(l, spec);
    close(l);
    assert_int_equal(unlink(path), 0);

    /* A file that is not a socket is never removed. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    SM_ASSERT_ERR(sm_listen(spec, 0), -EEXIST);
    char buf[16] = "";
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "precious");
    sm_test_rmdir(dir);
}

static void
test_unix_abstract(void **state)
{
    (void)state;
    static int counter;
    char spec[128];
    snprintf(spec, sizeof spec, "unix:@smtest-socket-%d-%d", (int)getpid(), ++counter);
    sm_endpoint bound;
    int l = listen_on(spec, &bound);
    assert_int_equal(bound.kind, SM_ENDPOINT_UNIX_ABSTRACT);
    assert_string_equal(bound.path, spec + 6);
    dial_accept_echo(l, spec);
    SM_ASSERT_ERR(sm_listen(spec, 0), -EADDRINUSE);
    close(l);
    SM_ASSERT_ERR(sm_dial(spec, 1000), -ECONNREFUSED);
}

/* A Unix listener whose backlog is full: connects wait in the kernel, bounded
 * by the deadline. */
static void
test_unix_full_backlog_deadline(void **state)
{
    (void)state;
    static int counter;
    char spec[128];
    snprintf(spec, sizeof spec, "unix:@smtest-backlog-%d-%d", (int)getpid(), ++counter);
    int l = (int)SM_ASSERT_OK(sm_listen(spec, 1));
    int queued[16], nq = 0, rc = 0;
    while (nq < 16 && (rc = sm_dial(spec, 0)) >= 0)
        queued[nq++] = rc;
    SM_ASSERT_ERR(rc, -ETIMEDOUT);
    assert_true(nq >= 1);
    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_dial(spec, 100), -ETIMEDOUT);
    int64_t ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */

    /* Room made by an accept lets the next dial through. */
    int s = (int)SM_ASSERT_OK(sm_accept(l, 1000, NULL));
    int c = (int)SM_ASSERT_OK(sm_dial(spec, 2000));
    close(c);
    close(s);
    for (int i = 0; i < nq; i++)
        close(queued[i]);
    close(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_listen_dial_echo),
        cmocka_unit_test(test_ipv6_listen_dial_echo),
        cmocka_unit_test(test_dual_stack_any),
        cmocka_unit_test(test_dial_errors),
        cmocka_unit_test(test_dial_localhost),
        cmocka_unit_test(test_happy_eyeballs_one_side),
        cmocka_unit_test(test_happy_eyeballs_failure_starts_next),
        cmocka_unit_test(test_happy_eyeballs_black_hole),
        cmocka_unit_test(test_unix_path),
        cmocka_unit_test(test_unix_stale_live_and_regular_files),
        cmocka_unit_test(test_unix_abstract),
        cmocka_unit_test(test_unix_full_backlog_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
