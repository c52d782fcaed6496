/* sm_conn: client/server message exchange over TCP and Unix sockets for every
 * framing, plus bad input, EOF, timeouts and half-close. */
#include "smtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

/* An echo server thread on one accepted connection: it echoes every message
 * (with its type), and when the client shuts down it shuts down too. */
struct echo {
    int lfd;
    sm_frame_spec spec;
    int result; /* 0 on a clean EOF, else the error that stopped it */
    long count; /* messages echoed */
    char detail[200];
    pthread_t th;
};

static void *
echo_main(void *arg)
{
    struct echo *e = arg;
    int fd = sm_accept(e->lfd, 10000, NULL);
    if (fd < 0) {
        e->result = fd;
        return NULL;
    }
    sm_conn *c;
    e->result = sm_conn_new_take(&c, fd, &e->spec);
    if (e->result < 0) return NULL;
    sm_conn_set_timeout(c, 10000);
    for (;;) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (rc <= 0) {
            e->result = rc;
            snprintf(e->detail, sizeof e->detail, "%s", sm_conn_error_detail(c));
            break;
        }
        ssize_t s = e->spec.kind == SM_FRAME_TYPE
                        ? sm_conn_send_type(c, m.type, m.data, m.len, SM_CONN_DEFAULT)
                        : sm_conn_send(c, m.data, m.len, SM_CONN_DEFAULT);
        if (s < 0) {
            e->result = (int)s;
            break;
        }
        e->count++;
    }
    sm_conn_shutdown(c);
    sm_conn_free(c);
    return NULL;
}

/* Listen on `where` (port 0 / a temp path), start the echo thread, and write
 * the address to dial into `addr`. */
static void
echo_start(struct echo *e, const char *where, const char *spec, char *addr, size_t addr_len)
{
    memset(e, 0, sizeof *e);
    char why[200];
    if (sm_frame_spec_parse(&e->spec, spec, why, sizeof why) < 0)
        fail_msg("spec '%s': %s", spec, why);
    e->lfd = SM_ASSERT_OK(sm_listen(where, 8));
    sm_endpoint ep;
    SM_ASSERT_OK(sm_sock_local(e->lfd, &ep));
    SM_ASSERT_OK(sm_endpoint_format(&ep, addr, addr_len));
    assert_int_equal(pthread_create(&e->th, NULL, echo_main, e), 0);
}

static void
echo_join(struct echo *e)
{
    pthread_join(e->th, NULL);
    close(e->lfd);
}

/* A payload for message i that the spec can carry: printable bytes (no
 * delimiter) for delimited specs, any bytes for the others. */
static size_t
make_payload(const sm_frame_spec *spec, uint64_t *seed, uint8_t *out, size_t cap)
{
    size_t n;
    if (spec->kind == SM_FRAME_FIXED)
        n = (size_t)spec->fixed_len;
    else
        n = sm_test_rand(seed) % (cap + 1);
    bool text = spec->kind == SM_FRAME_DELIM || spec->kind == SM_FRAME_TYPE;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)sm_test_rand(seed);
        out[i] = text ? (uint8_t)('a' + b % 26) : b;
    }
    return n;
}

/* The messages of one exchange, regenerated from the seed on both sides. */
struct plan {
    sm_frame_spec spec;
    sm_conn *c;
    int count;
    size_t cap;
    ssize_t result;
};

static const int types[] = {'A', 'B', 'C'};

static size_t
plan_message(const struct plan *p, uint64_t *seed, int i, uint8_t *buf, int *type)
{
    size_t n = make_payload(&p->spec, seed, buf, p->cap);
    *type = types[i % 3];
    if (p->spec.kind == SM_FRAME_TYPE && *type == 'A') n = 4; /* A is a fixed 4-byte type */
    return n;
}

/* The sending half runs in its own thread: a client that pipelines more than
 * the socket buffers hold must read while it writes, or both sides block. */
static void *
sender_main(void *arg)
{
    struct plan *p = arg;
    static uint8_t buf[2000];
    uint64_t seed = 7;
    for (int i = 0; i < p->count; i++) {
        int t;
        size_t n = plan_message(p, &seed, i, buf, &t);
        ssize_t s = p->spec.kind == SM_FRAME_TYPE
                        ? sm_conn_send_type(p->c, t, buf, n, SM_CONN_DEFAULT)
                        : sm_conn_send(p->c, buf, n, SM_CONN_DEFAULT);
        if (s != (ssize_t)n) {
            p->result = s < 0 ? s : -EIO;
            return NULL;
        }
    }
    p->result = sm_conn_shutdown(p->c);
    return NULL;
}

/* Send `count` messages pipelined and half-close, while reading every echo and
 * comparing it; then expect a clean EOF. */
static void
exchange(const char *where, const char *spec_str, int count)
{
    struct echo e;
    char addr[160];
    echo_start(&e, where, spec_str, addr, sizeof addr);

    struct plan p = {.spec = e.spec, .count = count, .cap = 2000};
    if (p.spec.kind == SM_FRAME_EOF) p.count = 1;
    if (p.spec.kind == SM_FRAME_TYPE || (p.spec.kind == SM_FRAME_LENGTH && p.spec.len_width == 1))
        p.cap = 200; /* what len8 and the type: entries here can carry */
    char why[200];
    int rc = sm_conn_dial(&p.c, addr, spec_str, 5000, why, sizeof why);
    if (rc < 0) fail_msg("dial %s: %s (%s)", addr, sm_err_name(rc), why);
    sm_conn_set_timeout(p.c, 10000);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sender_main, &p), 0);

    static uint8_t buf[2000];
    uint64_t seed = 7;
    for (int i = 0; i < p.count; i++) {
        int t;
        size_t n = plan_message(&p, &seed, i, buf, &t);
        sm_frame_msg m;
        rc = sm_conn_recv(p.c, &m, SM_CONN_DEFAULT);
        if (rc != 1)
            fail_msg("%s over %s: recv %d: %d (%s) %s; sender: %s; server: %s %s", spec_str, where,
                     i, rc, sm_err_name(rc), sm_conn_error_detail(p.c), sm_err_name((int)p.result),
                     sm_err_name(e.result), e.detail);
        if (m.len != n || (n && memcmp(m.data, buf, n)))
            fail_msg("%s: message %d differs (len %zu, want %zu)", spec_str, i, m.len, n);
        if (p.spec.kind == SM_FRAME_TYPE) assert_int_equal(m.type, t);
    }
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 0);
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 0); /* EOF stays EOF */
    pthread_join(th, NULL);
    SM_ASSERT_ERR(p.result, 0);
    sm_conn_free(p.c);
    echo_join(&e);
    SM_ASSERT_ERR(e.result, 0);
    assert_int_equal(e.count, p.count);
}

static const char *const specs[] = {
    "fixed:16",
    "line",
    "crlf",
    "nul",
    "delim:\\r\\n\\r\\n",
    "len8",
    "len16le",
    "len16be,adjust=2",
    "len32be",
    "len32le,offset=2",
    "len64be,adjust=8",
    "ascii:5",
    "netstring",
    "varint",
    "type:A=4;B=(len16be);C=(line)",
    "eof",
};

static void
test_every_spec_tcp(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        exchange("tcp://127.0.0.1:0", specs[i], 300);
}

static void
test_every_spec_unix(void **state)
{
    (void)state;
    char dir[256], where[300];
    sm_test_mkdtemp(dir, sizeof dir);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        snprintf(where, sizeof where, "unix:%s/s%zu", dir, i);
        exchange(where, specs[i], 300);
    }
    sm_test_rmdir(dir);
}

static void
test_ipv6_and_abstract(void **state)
{
    (void)state;
    exchange("tcp://[::1]:0", "len32be", 100);
    char where[64];
    snprintf(where, sizeof where, "unix:@smtest-conn-%d", (int)getpid());
    exchange(where, "line", 100);
}

/* A raw client/server pair: the test writes exact bytes, a conn reads them. */
struct pair {
    int raw;
    sm_conn *c;
};

static void
pair_open(struct pair *p, const char *spec)
{
    int lfd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 4));
    sm_endpoint ep;
    char addr[64];
    SM_ASSERT_OK(sm_sock_local(lfd, &ep));
    SM_ASSERT_OK(sm_endpoint_format(&ep, addr, sizeof addr));
    char why[200];
    int rc = sm_conn_dial(&p->c, addr, spec, 5000, why, sizeof why);
    if (rc < 0) fail_msg("dial: %s", why);
    p->raw = SM_ASSERT_OK(sm_accept(lfd, 5000, NULL));
    close(lfd);
    sm_conn_set_timeout(p->c, 5000);
}

static void
pair_close(struct pair *p)
{
    sm_conn_free(p->c);
    close(p->raw);
}

static void
raw_send(struct pair *p, const void *b, size_t n)
{
    assert_int_equal(SM_ASSERT_OK(sm_send_all(p->raw, b, n, 5000, NULL)), n);
}

/* Many messages in one segment, then one message split over many writes. */
static void
test_coalesced_and_split(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "line");
    static char many[1000 * 4];
    for (int i = 0; i < 1000; i++)
        memcpy(many + i * 4, (char[]){(char)('a' + i % 26), 'b', 'c', '\n'}, 4);
    raw_send(&p, many, sizeof many);
    for (int i = 0; i < 1000; i++) {
        sm_frame_msg m;
        SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 1);
        assert_int_equal(m.len, 3);
        assert_int_equal(m.data[0], 'a' + i % 26);
    }
    /* One message a byte at a time: the receiver waits for the whole. */
    const char *msg = "split over many writes\n";
    for (size_t i = 0; msg[i]; i++)
        raw_send(&p, msg + i, 1);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, strlen(msg) - 1);
    assert_memory_equal(m.data, msg, m.len);
    pair_close(&p);
}

struct big_send {
    int fd;
    const char *buf;
    size_t len;
};

static void *
big_send_main(void *arg)
{
    struct big_send *b = arg;
    sm_send_all(b->fd, b->buf, b->len, 10000, NULL);
    return NULL;
}

/* max= at its largest must not wrap the read buffer's limit (it once made
 * every message over ~64 KiB "oversized"): a 1 MB line arrives whole. */
static void
test_max_near_2_64(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "line,max=18446744073709551615");
    size_t n = (size_t)1 << 20;
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    memset(buf, 'x', n);
    buf[n] = '\n';
    struct big_send b = {p.raw, buf, n + 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, big_send_main, &b), 0);
    sm_frame_msg m;
    int rc = sm_conn_recv(p.c, &m, SM_CONN_DEFAULT);
    if (rc != 1) fail_msg("recv: %s (%s)", sm_strerror(rc), sm_conn_error_detail(p.c));
    assert_int_equal(m.len, n);
    assert_int_equal(((const char *)m.data)[n - 1], 'x');
    assert_int_equal(pthread_join(th, NULL), 0);
    free(buf);
    pair_close(&p);
}

static void
test_oversize_rejected_before_payload(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "len32be,max=1K");
    /* The peer announces 2 GB and sends nothing more: the receiver refuses at
     * once from the header, without waiting for (or allocating) the payload. */
    raw_send(&p, "\x7f\xff\xff\xff", 4);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), -EMSGSIZE);
    const char *d = sm_conn_error_detail(p.c);
    if (!strstr(d, "2147483647")) fail_msg("detail '%s' does not name the length", d);
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), -EMSGSIZE); /* sticky */
    pair_close(&p);
}

static void
test_oversize_skip(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "line,max=8,oversize=skip");
    char big[5000];
    memset(big, 'x', sizeof big);
    raw_send(&p, "short\n", 6);
    raw_send(&p, big, sizeof big);
    raw_send(&p, "\nok\n", 4);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 5);
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "ok", 2);
    assert_int_equal(sm_conn_skipped(p.c), 1);
    pair_close(&p);
}

static void
test_truncated_vs_clean_eof(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "len32be");
    raw_send(&p, "\0\0\0\x05hel", 7);
    SM_ASSERT_OK(sm_shutdown_write(p.raw));
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), SM_ERR_TRUNCATED);
    pair_close(&p);

    pair_open(&p, "len32be");
    raw_send(&p, "\0\0\0\x02hi", 6);
    SM_ASSERT_OK(sm_shutdown_write(p.raw));
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 1);
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 0);
    pair_close(&p);
}

static void
test_timeout_loses_nothing(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "len16be");
    raw_send(&p,
             "\0\x04"
             "ab",
             4); /* half a message */
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, 50), -ETIMEDOUT);
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, 0), -ETIMEDOUT);
    raw_send(&p, "cd", 2);
    SM_ASSERT_ERR(sm_conn_recv(p.c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 4);
    assert_memory_equal(m.data, "abcd", 4);
    pair_close(&p);
}

static void
test_send_refusals(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "len8");
    char big[300] = {0};
    SM_ASSERT_ERR(sm_conn_send(p.c, big, sizeof big, SM_CONN_DEFAULT), -EMSGSIZE);
    pair_close(&p);

    pair_open(&p, "delim:\\r\\n");
    SM_ASSERT_ERR(sm_conn_send(p.c, "a\r\nb", 4, SM_CONN_DEFAULT), -EINVAL);
    /* The delimiter split across two pieces is caught too. */
    struct iovec v[3] = {{"ab\r", 3}, {"", 0}, {"\ncd", 3}};
    SM_ASSERT_ERR(sm_conn_sendv(p.c, v, 3, SM_CONN_DEFAULT), -EINVAL);
    struct iovec ok[2] = {{"ab\r", 3}, {"x\ncd", 4}};
    assert_int_equal(SM_ASSERT_OK(sm_conn_sendv(p.c, ok, 2, SM_CONN_DEFAULT)), 7);
    char got[16];
    assert_int_equal(SM_ASSERT_OK(sm_recv_exact(p.raw, got, 9, 5000, NULL)), 9);
    assert_memory_equal(got, "ab\rx\ncd\r\n", 9);
    pair_close(&p);
}

static void
test_sendv_gathers_one_message(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, "len32be");
    struct iovec v[3] = {{"head-", 5}, {"body-", 5}, {"tail", 4}};
    assert_int_equal(SM_ASSERT_OK(sm_conn_sendv(p.c, v, 3, SM_CONN_DEFAULT)), 14);
    char got[18];
    SM_ASSERT_OK(sm_recv_exact(p.raw, got, sizeof got, 5000, NULL));
    assert_memory_equal(got, "\0\0\0\x0ehead-body-tail", 18);
    pair_close(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_spec_tcp),
        cmocka_unit_test(test_every_spec_unix),
        cmocka_unit_test(test_ipv6_and_abstract),
        cmocka_unit_test(test_coalesced_and_split),
        cmocka_unit_test(test_oversize_rejected_before_payload),
        cmocka_unit_test(test_max_near_2_64),
        cmocka_unit_test(test_oversize_skip),
        cmocka_unit_test(test_truncated_vs_clean_eof),
        cmocka_unit_test(test_timeout_loses_nothing),
        cmocka_unit_test(test_send_refusals),
        cmocka_unit_test(test_sendv_gathers_one_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
