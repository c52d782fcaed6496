#include "smtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <sockmsg/endpoint.h>

/* One row: the input, the expected result, and for good input the parsed
 * fields and the canonical string; for bad input a word the explanation must
 * contain, so the message really names what is wrong. */
struct row {
    const char *in;
    int want;
    sm_endpoint_kind kind;
    const char *host_or_path;
    int port;
    const char *canon; /* NULL: same as in */
};

#define LONG108                                                                                    \
    "/tmp/"                                                                                        \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaa"
#define LONG107                                                                                    \
    "/tmp/"                                                                                        \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaa"

static const struct row good[] = {
    {"tcp://127.0.0.1:8080", 0, SM_ENDPOINT_TCP, "127.0.0.1", 8080, NULL},
    {"tcp://localhost:0", 0, SM_ENDPOINT_TCP, "localhost", 0, NULL},
    {"tcp://example.org:65535", 0, SM_ENDPOINT_TCP, "example.org", 65535, NULL},
    {"tcp://[::1]:9000", 0, SM_ENDPOINT_TCP, "::1", 9000, NULL},
    {"tcp://[::]:1", 0, SM_ENDPOINT_TCP, "::", 1, NULL},
    {"tcp://[fe80::1%lo]:22", 0, SM_ENDPOINT_TCP, "fe80::1%lo", 22, NULL},
    {"tcp://[::ffff:10.0.0.1]:5", 0, SM_ENDPOINT_TCP, "::ffff:10.0.0.1", 5, NULL},
    {"tcp://*:7000", 0, SM_ENDPOINT_TCP, "*", 7000, NULL},
    {"tcp://*:0", 0, SM_ENDPOINT_TCP, "*", 0, NULL},
    {"tcp://my_host-1.lan:80", 0, SM_ENDPOINT_TCP, "my_host-1.lan", 80, NULL},
    {"tcp://h:00080", 0, SM_ENDPOINT_TCP, "h", 80, "tcp://h:80"},
    {"unix:/tmp/sock", 0, SM_ENDPOINT_UNIX, "/tmp/sock", 0, NULL},
    {"unix:relative/sock", 0, SM_ENDPOINT_UNIX, "relative/sock", 0, NULL},
    {"unix:@name", 0, SM_ENDPOINT_UNIX_ABSTRACT, "name", 0, NULL},
    {"unix:@with space", 0, SM_ENDPOINT_UNIX_ABSTRACT, "with space", 0, NULL},
    {"unix:" LONG107, 0, SM_ENDPOINT_UNIX, LONG107, 0, NULL},
};

static const struct row bad[] = {
    {"", SM_ERR_ENDPOINT, 0, "scheme", 0, NULL},
    {"127.0.0.1:80", SM_ERR_ENDPOINT, 0, "scheme", 0, NULL},
    {"localhost", SM_ERR_ENDPOINT, 0, "scheme", 0, NULL},
    {"http://x:80", SM_ERR_ENDPOINT, 0, "'http'", 0, NULL},
    {"udp://x:80", SM_ERR_ENDPOINT, 0, "'udp'", 0, NULL},
    {"tcp:/x:80", SM_ERR_ENDPOINT, 0, "'tcp'", 0, NULL},
    {"tcp://host", SM_ERR_ENDPOINT, 0, "missing port", 0, NULL},
    {"tcp://host:", SM_ERR_ENDPOINT, 0, "missing port", 0, NULL},
    {"tcp://:80", SM_ERR_ENDPOINT, 0, "empty host", 0, NULL},
    {"tcp://host:70000", SM_ERR_ENDPOINT, 0, "70000 out of range", 0, NULL},
    {"tcp://host:65536", SM_ERR_ENDPOINT, 0, "out of range", 0, NULL},
    {"tcp://host:123456", SM_ERR_ENDPOINT, 0, "out of range", 0, NULL},
    {"tcp://host:-1", SM_ERR_ENDPOINT, 0, "not a decimal", 0, NULL},
    {"tcp://host:8o", SM_ERR_ENDPOINT, 0, "not a decimal", 0, NULL},
    {"tcp://host:80/path", SM_ERR_ENDPOINT, 0, "not a decimal", 0, NULL},
    {"tcp://::1:80", SM_ERR_ENDPOINT, 0, "brackets", 0, NULL},
    {"tcp://[::1:80", SM_ERR_ENDPOINT, 0, "without ']'", 0, NULL},
    {"tcp://::1]:80", SM_ERR_ENDPOINT, 0, "brackets", 0, NULL},
    {"tcp://[::1]80", SM_ERR_ENDPOINT, 0, "expected ':'", 0, NULL},
    {"tcp://[::1]", SM_ERR_ENDPOINT, 0, "missing port", 0, NULL},
    {"tcp://[]:80", SM_ERR_ENDPOINT, 0, "empty IPv6", 0, NULL},
    {"tcp://[1.2.3.4]:80", SM_ERR_ENDPOINT, 0, "not an IPv6", 0, NULL},
    {"tcp://[zz::1]:80", SM_ERR_ENDPOINT, 0, "not an IPv6", 0, NULL},
    {"tcp://[fe80::1%]:80", SM_ERR_ENDPOINT, 0, "not an IPv6", 0, NULL},
    {"tcp://ho st:80", SM_ERR_ENDPOINT, 0, "bad character", 0, NULL},
    {"tcp://**:80", SM_ERR_ENDPOINT, 0, "bad character", 0, NULL},
    {"unix:", SM_ERR_ENDPOINT, 0, "empty path", 0, NULL},
    {"unix:@", SM_ERR_ENDPOINT, 0, "empty abstract", 0, NULL},
    {"unix:" LONG108, -ENAMETOOLONG, 0, "sun_path", 0, NULL},
    {"unix:@" LONG108, -ENAMETOOLONG, 0, "sun_path", 0, NULL},
};

static void
test_good_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const struct row *r = &good[i];
        sm_endpoint ep;
        char why[256], out[300];
        int rc = sm_endpoint_parse(&ep, r->in, why, sizeof why);
        if (rc != 0) fail_msg("'%s': %d (%s) %s", r->in, rc, sm_err_name(rc), why);
        assert_int_equal(ep.kind, r->kind);
        if (r->kind == SM_ENDPOINT_TCP) {
            assert_string_equal(ep.host, r->host_or_path);
            assert_int_equal(ep.port, r->port);
        } else {
            assert_string_equal(ep.path, r->host_or_path);
        }
        int n = SM_ASSERT_OK(sm_endpoint_format(&ep, out, sizeof out));
        assert_int_equal((size_t)n, strlen(out));
        assert_string_equal(out, r->canon ? r->canon : r->in);
    }
}

static void
test_bad_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct row *r = &bad[i];
        sm_endpoint ep;
        char why[256] = "";
        int rc = sm_endpoint_parse(&ep, r->in, why, sizeof why);
        if (rc != r->want)
            fail_msg("'%.40s': got %d (%s), want %s; why: %s", r->in, rc, sm_err_name(rc),
                     sm_err_name(r->want), why);
        if (!strstr(why, r->host_or_path))
            fail_msg("'%.40s': explanation '%s' does not mention '%s'", r->in, why,
                     r->host_or_path);
    }
    /* At least 30 strings in all, as the issue asks. */
    assert_true(sizeof good / sizeof good[0] + sizeof bad / sizeof bad[0] >= 30);
}

static void
test_null_and_small_buffers(void **state)
{
    (void)state;
    sm_endpoint ep;
    SM_ASSERT_ERR(sm_endpoint_parse(NULL, "tcp://a:1", NULL, 0), -EINVAL);
    SM_ASSERT_ERR(sm_endpoint_parse(&ep, NULL, NULL, 0), -EINVAL);
    SM_ASSERT_ERR(sm_endpoint_parse(&ep, "tcp://a", NULL, 0), SM_ERR_ENDPOINT);
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://[::1]:80", NULL, 0));
    char out[8];
    SM_ASSERT_ERR(sm_endpoint_format(&ep, out, sizeof out), -ENOSPC);
    assert_int_equal(strlen(out), sizeof out - 1);
    char tiny[4];
    SM_ASSERT_ERR(sm_endpoint_parse(&ep, "bogus", tiny, sizeof tiny), SM_ERR_ENDPOINT);
    assert_int_equal(strlen(tiny), 3);
}

static void
test_resolve_numeric(void **state)
{
    (void)state;
    sm_endpoint ep;
    sm_addr a[4];
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:4242", NULL, 0));
    assert_int_equal(SM_ASSERT_OK(sm_endpoint_resolve(&ep, false, a, 4, NULL, 0)), 1);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a[0].ss;
    assert_int_equal(v4->sin_family, AF_INET);
    assert_int_equal(ntohs(v4->sin_port), 4242);
    assert_int_equal(a[0].len, sizeof *v4);

    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://[::1]:9", NULL, 0));
    assert_int_equal(SM_ASSERT_OK(sm_endpoint_resolve(&ep, false, a, 4, NULL, 0)), 1);
    assert_int_equal(a[0].ss.ss_family, AF_INET6);

    char out[64];
    SM_ASSERT_OK(sm_addr_format((struct sockaddr *)&a[0].ss, a[0].len, out, sizeof out));
    assert_string_equal(out, "tcp://[::1]:9");
}

static void
test_resolve_any_and_localhost(void **state)
{
    (void)state;
    sm_endpoint ep;
    sm_addr a[8];
    char why[128];
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://*:0", NULL, 0));
    assert_int_equal(SM_ASSERT_OK(sm_endpoint_resolve(&ep, true, a, 8, NULL, 0)), 2);
    assert_int_equal(a[0].ss.ss_family, AF_INET6);
    assert_int_equal(a[1].ss.ss_family, AF_INET);
    assert_int_equal(sm_endpoint_resolve(&ep, true, a, 1, NULL, 0), 1);
    SM_ASSERT_ERR(sm_endpoint_resolve(&ep, false, a, 8, why, sizeof why), SM_ERR_ENDPOINT);
    assert_non_null(strstr(why, "'*'"));

    /* localhost: whatever the resolver gives, IPv6 comes first and families alternate. */
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://localhost:1", NULL, 0));
    int n = SM_ASSERT_OK(sm_endpoint_resolve(&ep, false, a, 8, why, sizeof why));
    bool seen6 = false, seen4 = false;
    for (int i = 0; i < n; i++) {
        seen6 |= a[i].ss.ss_family == AF_INET6;
        seen4 |= a[i].ss.ss_family == AF_INET;
    }
    if (seen6 && seen4) {
        assert_int_equal(a[0].ss.ss_family, AF_INET6);
        assert_int_equal(a[1].ss.ss_family, AF_INET);
    }
}

static void
test_resolve_failure_names_host(void **state)
{
    (void)state;
    sm_endpoint ep;
    sm_addr a[2];
    char why[256];
    /* .invalid is reserved (RFC 6761): it never resolves, and glibc answers
     * from its own rules without sending a query anywhere. */
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://no-such-host.invalid:80", NULL, 0));
    int rc = sm_endpoint_resolve(&ep, false, a, 2, why, sizeof why);
    assert_true(rc < 0);
    assert_non_null(strstr(why, "no-such-host.invalid"));
}

static void
test_unix_addresses(void **state)
{
    (void)state;
    sm_endpoint ep, back;
    sm_addr a;
    char out[160];
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "unix:/tmp/x.sock", NULL, 0));
    assert_int_equal(SM_ASSERT_OK(sm_endpoint_resolve(&ep, true, &a, 1, NULL, 0)), 1);
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a.ss;
    assert_string_equal(un->sun_path, "/tmp/x.sock");
    SM_ASSERT_OK(sm_addr_to_endpoint((struct sockaddr *)&a.ss, a.len, &back));
    assert_int_equal(back.kind, SM_ENDPOINT_UNIX);
    assert_string_equal(back.path, "/tmp/x.sock");

    SM_ASSERT_OK(sm_endpoint_parse(&ep, "unix:@abs", NULL, 0));
    SM_ASSERT_OK(sm_endpoint_resolve(&ep, true, &a, 1, NULL, 0));
    assert_int_equal(un->sun_path[0], '\0');
    assert_memory_equal(un->sun_path + 1, "abs", 3);
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 4);
    SM_ASSERT_OK(sm_addr_format((struct sockaddr *)&a.ss, a.len, out, sizeof out));
    assert_string_equal(out, "unix:@abs");

    /* An unnamed Unix address (socketpair) formats as "unix:". */
    struct sockaddr_un unnamed = {.sun_family = AF_UNIX};
    SM_ASSERT_OK(sm_addr_to_endpoint((struct sockaddr *)&unnamed, sizeof(sa_family_t), &back));
    assert_int_equal(back.kind, SM_ENDPOINT_UNIX);
    assert_string_equal(back.path, "");
}

/* Found by fuzz_endpoint: a peer bound to the relative path "@x" formatted as
 * "unix:@x", which parses as the abstract name x, another socket. */
static void
test_unix_path_starting_with_at(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    memcpy(un.sun_path, "@x", 3);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 3);
    char out[64];
    SM_ASSERT_OK(sm_addr_format((struct sockaddr *)&un, len, out, sizeof out));
    assert_string_equal(out, "unix:./@x");
    sm_endpoint ep;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, out, NULL, 0));
    assert_int_equal(ep.kind, SM_ENDPOINT_UNIX);
    assert_string_equal(ep.path, "./@x");
}

static void
test_v4_mapped_shown_as_v4(void **state)
{
    (void)state;
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(77)};
    assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr), 1);
    char out[64];
    SM_ASSERT_OK(sm_addr_format((struct sockaddr *)&a6, sizeof a6, out, sizeof out));
    assert_string_equal(out, "tcp://127.0.0.1:77");
    struct sockaddr sa = {.sa_family = AF_PACKET};
    SM_ASSERT_ERR(sm_addr_format(&sa, sizeof sa, out, sizeof out), -EAFNOSUPPORT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_table),
        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_null_and_small_buffers),
        cmocka_unit_test(test_resolve_numeric),
        cmocka_unit_test(test_resolve_any_and_localhost),
        cmocka_unit_test(test_resolve_failure_names_host),
        cmocka_unit_test(test_unix_addresses),
        cmocka_unit_test(test_unix_path_starting_with_at),
        cmocka_unit_test(test_v4_mapped_shown_as_v4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
