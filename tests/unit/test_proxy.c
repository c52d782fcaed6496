/* PROXY protocol v1 and v2: headers as HAProxy and nginx send them, every
 * split point of each, hostile headers with their errors and details, and
 * encode/decode round trips. Every decode runs on an exact-size heap copy, so
 * ASan catches a read past len. */
#include "smtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <sockmsg/proxy.h>

#define S(x)  (const uint8_t *)(x), sizeof(x) - 1
#define AT(x) (sizeof(x) - 1)
#define SIG   "\r\n\r\n\0\r\nQUIT\n"
#define APP   "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

/* ---- helpers ----------------------------------------------------------- */

static ssize_t
decode_copy(const uint8_t *buf, size_t len, sm_proxy_info *info, char *why, size_t why_len)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, buf, len);
    ssize_t rc = sm_proxy_decode(copy, len, info, why, why_len);
    free(copy);
    return rc;
}

static sm_addr
addr_ip(const char *ip, uint16_t port)
{
    sm_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        a.len = sizeof *s4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        a.len = sizeof *s6;
    }
    return a;
}

static const char *
fmt(const sm_addr *a, char *out, size_t cap)
{
    if (a->len == 0) return "(none)";
    int n = sm_addr_format((const struct sockaddr *)&a->ss, a->len, out, cap);
    assert_true(n >= 0);
    return out;
}

static bool
addr_equal(const sm_addr *a, const sm_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Append bytes to a header under construction. */
typedef struct hbuf {
    uint8_t p[SM_PROXY_V2_MAX + 64];
    size_t n;
} hbuf;

static void
put(hbuf *h, const void *p, size_t n)
{
    assert_true(h->n + n <= sizeof h->p);
    memcpy(h->p + h->n, p, n);
    h->n += n;
}

static void
put_unix_field(hbuf *h, const void *name, size_t n)
{
    uint8_t f[108] = {0};
    memcpy(f, name, n);
    put(h, f, sizeof f);
}

/* A v2 header by hand, not by the encoder: v2_start writes the fixed part,
 * the caller appends the rest, v2_finish fills in the length. */
static void
v2_start(hbuf *h, uint8_t ver_cmd, uint8_t fam)
{
    h->n = 0;
    put(h, SIG, 12);
    put(h, &ver_cmd, 1);
    put(h, &fam, 1);
    put(h, "\0\0", 2);
}

static void
v2_finish(hbuf *h)
{
    size_t len = h->n - 16;
    h->p[14] = (uint8_t)(len >> 8);
    h->p[15] = (uint8_t)len;
}

/* What a good header must decode to. src/dst are sm_addr_format strings
 * (NULL: the caller checks the address itself). */
struct want {
    int version;
    sm_proxy_command command;
    bool known;
    int socktype;
    int family;
    const char *src, *dst;
    size_t ntlv;
};

/* Decode h[0..n) whole, then every prefix (-EAGAIN, nothing else), then
 * with application bytes after it (left unconsumed), and compare to *w. */
static void
check_good(const char *name, const uint8_t *h, size_t n, const struct want *w, sm_proxy_info *out)
{
    char why[256], a[128], b[128];
    sm_proxy_info info;
    ssize_t rc = decode_copy(h, n, &info, why, sizeof why);
    if (rc != (ssize_t)n) {
        print_error("%s: decode = %zd (%s), want %zu; why: %s\n", name, rc, sm_err_name((int)rc), n,
                    why);
        fail();
    }
    assert_string_equal(why, "");
    if (info.version != w->version || info.command != w->command || info.known != w->known ||
        info.socktype != w->socktype) {
        print_error("%s: version %d command %d known %d socktype %d\n", name, info.version,
                    info.command, info.known, info.socktype);
        fail();
    }
    if (w->known) {
        assert_int_equal(info.src.ss.ss_family, w->family);
        assert_int_equal(info.dst.ss.ss_family, w->family);
        if (w->src) assert_string_equal(fmt(&info.src, a, sizeof a), w->src);
        if (w->dst) assert_string_equal(fmt(&info.dst, b, sizeof b), w->dst);
    } else {
        assert_int_equal(info.src.len, 0);
        assert_int_equal(info.dst.len, 0);
    }
    size_t off = 0, count = 0;
    sm_proxy_tlv t;
    int trc;
    while ((trc = sm_proxy_tlv_next(h + info.tlv_off, info.tlv_len, &off, &t)) == 1)
        count++;
    assert_int_equal(trc, 0);
    assert_int_equal(count, w->ntlv);
    assert_true(info.tlv_off + info.tlv_len <= n);

    for (size_t k = 0; k < n; k++) {
        rc = decode_copy(h, k, NULL, why, sizeof why);
        if (rc != -EAGAIN) {
            print_error("%s: prefix of %zu/%zu bytes = %zd (%s), want EAGAIN; why: %s\n", name, k,
                        n, rc, sm_err_name((int)rc), why);
            fail();
        }
        assert_string_equal(why, "");
    }

    uint8_t *more = malloc(n + sizeof APP);
    assert_non_null(more);
    memcpy(more, h, n);
    memcpy(more + n, APP, sizeof APP);
    sm_proxy_info again;
    for (size_t extra = 1; extra <= sizeof APP; extra++) {
        rc = decode_copy(more, n + extra, &again, why, sizeof why);
        assert_int_equal(rc, (ssize_t)n);
        assert_memory_equal(&again, &info, sizeof info);
    }
    free(more);
    if (out) *out = info;
}

/* ---- v1 ----------------------------------------------------------------- */

static void
test_v1_good(void **state)
{
    (void)state;
    struct {
        const char *in;
        struct want w;
    } rows[] = {
        {"PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET, "tcp://192.0.2.1:51234",
          "tcp://198.51.100.7:443", 0}},
        {"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET, "tcp://0.0.0.0:0",
          "tcp://255.255.255.255:65535", 0}},
        {"PROXY TCP4 10.0.0.1 10.0.0.2 00080 08\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET, "tcp://10.0.0.1:80", "tcp://10.0.0.2:8",
          0}},
        {"PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET6, "tcp://[2001:db8::1]:51234",
          "tcp://[2001:db8::2]:443", 0}},
        {"PROXY TCP6 ::1 FE80:0:0:0:0:0:0:AB 1 2\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET6, "tcp://[::1]:1", "tcp://[fe80::ab]:2",
          0}},
        /* IPv4-mapped: still an AF_INET6 address (the formatter shows IPv4). */
        {"PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 5 6\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET6, "tcp://192.0.2.1:5", "tcp://192.0.2.2:6",
          0}},
        /* The longest TCP6 line: 104 bytes. */
        {"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\n",
         {1, SM_PROXY_PROXY, true, SOCK_STREAM, AF_INET6,
          "tcp://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
          "tcp://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535", 0}},
        {"PROXY UNKNOWN\r\n", {1, SM_PROXY_PROXY, false, 0, 0, NULL, NULL, 0}},
        /* UNKNOWN: what follows is ignored up to the CRLF, even garbage. */
        {"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", {1, SM_PROXY_PROXY, false, 0, 0, NULL, NULL, 0}},
        {"PROXY UNKNOWN\r\r\n", {1, SM_PROXY_PROXY, false, 0, 0, NULL, NULL, 0}},
        {"PROXY UNKNOWN \x01\xff\n\r\n", {1, SM_PROXY_PROXY, false, 0, 0, NULL, NULL, 0}},
        /* The spec's worst case: exactly 107 bytes. */
        {"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
         {1, SM_PROXY_PROXY, false, 0, 0, NULL, NULL, 0}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_good(rows[i].in, (const uint8_t *)rows[i].in, strlen(rows[i].in), &rows[i].w, NULL);
    assert_int_equal(strlen(rows[11].in), SM_PROXY_V1_MAX);
}

/* ---- v2 ----------------------------------------------------------------- */

static const uint8_t v4_block[] = {192, 0, 2, 1, 198, 51, 100, 7, 0xc8, 0x22, 0x01, 0xbb};
static const uint8_t v6_block[] = {0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,    0,   0, 0, 0, 0, 0, 0,
                                   0,    1,    0x20, 0x01, 0x0d, 0xb8, 0,    0,   0, 0, 0, 0, 0, 0,
                                   0,    0,    0,    2,    0xc8, 0x22, 0x01, 0xbb};
/* AUTHORITY "example.com", NOOP (empty), UNIQUE_ID 4 bytes. */
static const uint8_t tlv_block[] = {0x02, 0x00, 0x0b, 'e',  'x',  'a',  'm',  'p',
                                    'l',  'e',  '.',  'c',  'o',  'm',  0x04, 0x00,
                                    0x00, 0x05, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};

static void
test_v2_inet(void **state)
{
    (void)state;
    hbuf h;
    sm_proxy_info info;
    struct want w4 = {2,
                      SM_PROXY_PROXY,
                      true,
                      SOCK_STREAM,
                      AF_INET,
                      "tcp://192.0.2.1:51234",
                      "tcp://198.51.100.7:443",
                      0};
    v2_start(&h, 0x21, 0x11);
    put(&h, v4_block, sizeof v4_block);
    v2_finish(&h);
    check_good("v2 tcp4", h.p, h.n, &w4, &info);
    assert_int_equal(h.n, 28);

    w4.ntlv = 3;
    put(&h, tlv_block, sizeof tlv_block);
    v2_finish(&h);
    check_good("v2 tcp4 + tlvs", h.p, h.n, &w4, &info);
    assert_int_equal(info.tlv_off, 28);
    assert_int_equal(info.tlv_len, sizeof tlv_block);

    w4.socktype = SOCK_DGRAM;
    w4.ntlv = 0;
    v2_start(&h, 0x21, 0x12);
    put(&h, v4_block, sizeof v4_block);
    v2_finish(&h);
    check_good("v2 udp4", h.p, h.n, &w4, NULL);

    struct want w6 = {2,
                      SM_PROXY_PROXY,
                      true,
                      SOCK_STREAM,
                      AF_INET6,
                      "tcp://[2001:db8::1]:51234",
                      "tcp://[2001:db8::2]:443",
                      0};
    v2_start(&h, 0x21, 0x21);
    put(&h, v6_block, sizeof v6_block);
    v2_finish(&h);
    check_good("v2 tcp6", h.p, h.n, &w6, NULL);
    assert_int_equal(h.n, 52);

    w6.ntlv = 3;
    put(&h, tlv_block, sizeof tlv_block);
    v2_finish(&h);
    check_good("v2 tcp6 + tlvs", h.p, h.n, &w6, &info);
    assert_int_equal(info.tlv_off, 52);

    w6.socktype = SOCK_DGRAM;
    h.p[13] = 0x22;
    check_good("v2 udp6 + tlvs", h.p, h.n, &w6, NULL);
}

static void
test_v2_unix(void **state)
{
    (void)state;
    hbuf h;
    sm_proxy_info info;
    struct want w = {2,
                     SM_PROXY_PROXY,
                     true,
                     SOCK_STREAM,
                     AF_UNIX,
                     "unix:/run/haproxy/client.sock",
                     "unix:/run/app.sock",
                     0};
    v2_start(&h, 0x21, 0x31);
    put_unix_field(&h, "/run/haproxy/client.sock", 24);
    put_unix_field(&h, "/run/app.sock", 13);
    v2_finish(&h);
    check_good("v2 unix", h.p, h.n, &w, &info);
    assert_int_equal(h.n, 16 + 216);
    size_t off = offsetof(struct sockaddr_un, sun_path);
    assert_int_equal(info.src.len, off + 24 + 1); /* the NUL counts, as from the kernel */

    w.ntlv = 3;
    put(&h, tlv_block, sizeof tlv_block);
    v2_finish(&h);
    check_good("v2 unix + tlvs", h.p, h.n, &w, NULL);

    /* Abstract names (leading NUL; trailing padding dropped), an unnamed
     * client (all zero), and a path that fills all 108 bytes. */
    char full[109];
    memset(full, 'p', 108);
    full[0] = '/';
    full[108] = '\0';
    struct want wa = {2, SM_PROXY_PROXY, true, SOCK_DGRAM, AF_UNIX, "unix:", "unix:@app", 0};
    v2_start(&h, 0x21, 0x32);
    put_unix_field(&h, "", 0);
    put_unix_field(&h, "\0app", 4);
    v2_finish(&h);
    check_good("v2 unix dgram abstract", h.p, h.n, &wa, &info);
    assert_int_equal(info.src.len, off);
    assert_int_equal(info.dst.len, off + 4);

    struct want wf = {2, SM_PROXY_PROXY, true, SOCK_STREAM, AF_UNIX, NULL, NULL, 0};
    v2_start(&h, 0x21, 0x31);
    put_unix_field(&h, full, 108);
    put_unix_field(&h, full, 108);
    v2_finish(&h);
    check_good("v2 unix 108-byte path", h.p, h.n, &wf, &info);
    assert_int_equal(info.src.len, sizeof(struct sockaddr_un));
    assert_memory_equal(((struct sockaddr_un *)&info.src.ss)->sun_path, full, 108);
    assert_memory_equal(((struct sockaddr_un *)&info.dst.ss)->sun_path, full, 108);
}

static void
test_v2_local_unspec(void **state)
{
    (void)state;
    hbuf h;
    sm_proxy_info info;
    struct want local = {2, SM_PROXY_LOCAL, false, 0, 0, NULL, NULL, 0};
    struct want unspec = {2, SM_PROXY_PROXY, false, 0, 0, NULL, NULL, 0};

    v2_start(&h, 0x20, 0x00);
    v2_finish(&h);
    check_good("v2 local", h.p, h.n, &local, NULL);
    assert_int_equal(h.n, 16);

    /* LOCAL with addresses (a proxy's health check): ignored, family too. */
    v2_start(&h, 0x20, 0x11);
    put(&h, v4_block, sizeof v4_block);
    put(&h, tlv_block, sizeof tlv_block);
    v2_finish(&h);
    check_good("v2 local with tcp4 + tlvs", h.p, h.n, &local, &info);
    assert_int_equal(info.tlv_len, 0);
    v2_start(&h, 0x20, 0xff);
    put(&h, "xyz", 3);
    v2_finish(&h);
    check_good("v2 local, family byte ignored", h.p, h.n, &local, NULL);

    v2_start(&h, 0x21, 0x00);
    v2_finish(&h);
    check_good("v2 unspec", h.p, h.n, &unspec, NULL);
    /* UNSPEC: the block is skipped unread, even when it is no TLV list. */
    v2_start(&h, 0x21, 0x00);
    put(&h, "\x02\xff\xff", 3);
    v2_finish(&h);
    check_good("v2 unspec with junk", h.p, h.n, &unspec, NULL);

    /* The largest header accepted. */
    v2_start(&h, 0x21, 0x00);
    static uint8_t pad[SM_PROXY_V2_MAX - 16];
    put(&h, pad, sizeof pad);
    v2_finish(&h);
    assert_int_equal(h.n, SM_PROXY_V2_MAX);
    assert_int_equal(sm_proxy_decode(h.p, h.n, NULL, NULL, 0), SM_PROXY_V2_MAX);
}

static void
test_tlv_walk(void **state)
{
    (void)state;
    hbuf h;
    sm_proxy_info info;
    /* PP2_TYPE_SSL: client 0x01, verify 0, then sub-TLVs VERSION and CN. */
    static const uint8_t ssl[] = {0x20, 0x00, 0x14, 0x01, 0x00, 0x00, 0x00, 0x00,
                                  0x21, 0x00, 0x07, 'T',  'L',  'S',  'v',  '1',
                                  '.',  '3',  0x22, 0x00, 0x02, 'c',  'n'};
    v2_start(&h, 0x21, 0x11);
    put(&h, v4_block, sizeof v4_block);
    put(&h, tlv_block, sizeof tlv_block);
    put(&h, ssl, sizeof ssl);
    v2_finish(&h);
    assert_int_equal(sm_proxy_decode(h.p, h.n, &info, NULL, 0), (ssize_t)h.n);

    const uint8_t *area = h.p + info.tlv_off;
    size_t off = 0;
    sm_proxy_tlv t;
    const char *authority = NULL;
    size_t authority_len = 0, n = 0;
    uint8_t types[8];
    while (sm_proxy_tlv_next(area, info.tlv_len, &off, &t) == 1) {
        assert_true(n < sizeof types);
        types[n++] = t.type;
        if (t.type == SM_PROXY_TLV_AUTHORITY) {
            authority = (const char *)t.value;
            authority_len = t.len;
        }
        if (t.type == SM_PROXY_TLV_SSL) {
            assert_true(t.len >= 5);
            assert_int_equal(t.value[0], 0x01);
            size_t o2 = 0;
            sm_proxy_tlv sub;
            assert_int_equal(sm_proxy_tlv_next(t.value + 5, t.len - 5u, &o2, &sub), 1);
            assert_int_equal(sub.type, 0x21);
            assert_int_equal(sub.len, 7);
            assert_memory_equal(sub.value, "TLSv1.3", 7);
            assert_int_equal(sm_proxy_tlv_next(t.value + 5, t.len - 5u, &o2, &sub), 1);
            assert_int_equal(sub.type, 0x22);
            assert_int_equal(sm_proxy_tlv_next(t.value + 5, t.len - 5u, &o2, &sub), 0);
        }
    }
    assert_int_equal(n, 4);
    assert_int_equal(types[0], SM_PROXY_TLV_AUTHORITY);
    assert_int_equal(types[1], SM_PROXY_TLV_NOOP);
    assert_int_equal(types[2], SM_PROXY_TLV_UNIQUE_ID);
    assert_int_equal(types[3], SM_PROXY_TLV_SSL);
    assert_int_equal(authority_len, 11);
    assert_memory_equal(authority, "example.com", 11);
    assert_int_equal(off, info.tlv_len);

    /* Malformed areas, straight to the walker. */
    off = 0;
    assert_int_equal(sm_proxy_tlv_next((const uint8_t *)"\x01\x00", 2, &off, &t), -EPROTO);
    off = 0;
    assert_int_equal(sm_proxy_tlv_next((const uint8_t *)"\x01\x00\x02z", 4, &off, &t), -EPROTO);
    off = 0;
    assert_int_equal(sm_proxy_tlv_next(NULL, 0, &off, &t), 0);
}

/* ---- hostile headers ---------------------------------------------------- */

/* One malformed header: the detail must contain `why`, and the decoder must
 * say -EPROTO as soon as `at` bytes have arrived (the byte that settles it),
 * -EAGAIN before, and the same error and detail for every longer prefix. */
struct bad {
    const uint8_t *in;
    size_t len;
    const char *why;
    size_t at;
};

#define V1A   "PROXY TCP4 1.2.3.4 5.6.7.8 "
#define LONG6 "0000:0000:0000:0000:0000:ffff:255.255.255.255"
#define X93                                                                                        \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "x"
#define V4B "\xc0\x00\x02\x01\xc6\x33\x64\x07\xc8\x22\x01\xbb"

static const struct bad bad_rows[] = {
    /* Neither signature. */
    {S("GET / HTTP/1.1\r\n"), "not a PROXY protocol header: first byte 0x47", 1},
    {S("\x00PROXY"), "first byte 0x00", 1},
    {S("\x16\x03\x01\x02\x00"), "first byte 0x16", 1},
    /* v1 */
    {S("PROXZ TCP4"), "v1: expected 'PROXY ', got 'PROXZ'", 5},
    {S("PROXY\r\n"), "v1: expected 'PROXY ', got 'PROXY\\r'", 6},
    {S("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "v1: unknown protocol ''", 7},
    {S("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), "v1: unknown protocol 'TCP5'", 10},
    {S("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), "v1: unknown protocol 't'", 7},
    {S("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n"), "v1: unknown protocol 'TCP'", 10},
    {S("PROXY UNKNOWNX\r\n"), "v1: unknown protocol 'UNKNOWNX'", 14},
    {S("PROXY TCP4\r\n"), "v1: line ends after 'TCP4' with no addresses", 11},
    {S("PROXY UNKNOWN " X93 "\r\n"), "v1: no CRLF within the first 107 bytes", 107},
    /* Every field valid, yet the line is over the spec's 107 bytes. */
    {S("PROXY TCP6 " LONG6 " " LONG6 " 65535 65535\r\n"), "v1: no CRLF within the first 107", 107},
    {S(V1A "70000 80\r\n"), "v1: source port 70000 out of range (0-65535)", AT(V1A "70000")},
    {S(V1A "80 65536\r\n"), "v1: destination port 65536 out of range", AT(V1A "80 65536")},
    {S(V1A "99999 80\r\n"), "v1: source port 99999 out of range", AT(V1A "99999")},
    {S(V1A "000001 80\r\n"), "v1: source port '000001' longer than 5 digits", AT(V1A "000001")},
    {S(V1A "8o 80\r\n"), "v1: bad character 'o' in source port '8'", AT(V1A "8o")},
    {S(V1A "-1 80\r\n"), "v1: bad character '-' in source port ''", AT(V1A "-")},
    {S(V1A " 80\r\n"), "v1: empty source port", AT(V1A " ")},
    {S(V1A "80 \r\n"), "v1: empty destination port", AT(V1A "80 \r")},
    {S(V1A "1 2 \r\n"), "v1: bad character ' ' in destination port '2'", AT(V1A "1 2 ")},
    {S(V1A "1 2\n"), "v1: bad character '\\n' in destination port '2'", AT(V1A "1 2\n")},
    {S(V1A "1 2\rX"), "v1: expected '\\n' after '\\r', got 'X'", AT(V1A "1 2\rX")},
    {S("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
     "v1: source address '1.2.3' is not an IPv4 address (TCP4)", AT("PROXY TCP4 1.2.3 ")},
    {S("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), "v1: source address '01.2.3.4' is not an IPv4",
     AT("PROXY TCP4 01.2.3.4 ")},
    {S("PROXY TCP4 1.2.3.4 1.2.3.256 1 2\r\n"),
     "v1: destination address '1.2.3.256' is not an IPv4", AT("PROXY TCP4 1.2.3.4 1.2.3.256 ")},
    {S("PROXY TCP4 ::1 ::1 1 2\r\n"),
     "v1: bad character ':' in source address '' (an IPv6 address in TCP4?)", AT("PROXY TCP4 :")},
    {S("PROXY TCP4 1.2.3.4 ::ffff:1.2.3.4 1 2\r\n"),
     "v1: bad character ':' in destination address ''", AT("PROXY TCP4 1.2.3.4 :")},
    {S("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
     "v1: source address '1.2.3.4' is not an IPv6 address (TCP6)", AT("PROXY TCP6 1.2.3.4 ")},
    {S("PROXY TCP6 fe80::1%lo ::1 1 2\r\n"), "v1: bad character '%' in source address 'fe80::1'",
     AT("PROXY TCP6 fe80::1%")},
    {S("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"), "v1: source address '1:2:3:4:5:6:7:8:9' is not",
     AT("PROXY TCP6 1:2:3:4:5:6:7:8:9 ")},
    {S("PROXY TCP4 1111111111111111 5.6.7.8 1 2\r\n"),
     "v1: source address longer than 15 characters: '1111111111111111'",
     AT("PROXY TCP4 1111111111111111")},
    {S("PROXY TCP4  5.6.7.8 1 2\r\n"), "v1: empty source address", AT("PROXY TCP4  ")},
    {S("PROXY TCP4 1.2.3.4\r\n"), "v1: bad character '\\r' in source address '1.2.3.4'",
     AT("PROXY TCP4 1.2.3.4\r")},
    {S("PROXY TCP4 1.2.3.4 5.6.7.8\x00 1 2\r\n"),
     "v1: bad character '\\x00' in destination address '5.6.7.8'",
     AT("PROXY TCP4 1.2.3.4 5.6.7.8 ")},
    /* v2 */
    {S("\r\n\r\n\0\r\nQUIT\r"), "v2: bad signature byte 11: 0x0d, expected 0x0a", 12},
    {S("\r\n\r\nX"), "v2: bad signature byte 4: 0x58, expected 0x00", 5},
    {S("\r\r"), "v2: bad signature byte 1", 2},
    {S(SIG "\x31\x11\x00\x0c" V4B), "v2: version 3 (only 2 is defined)", 13},
    {S(SIG "\x11\x11\x00\x0c" V4B), "v2: version 1", 13},
    {S(SIG "\x01\x11\x00\x0c" V4B), "v2: version 0", 13},
    {S(SIG "\x2f\x11\x00\x0c" V4B), "v2: unknown command 0xF (0 LOCAL and 1 PROXY are defined)",
     13},
    {S(SIG "\x22\x11\x00\x0c" V4B), "v2: unknown command 0x2", 13},
    {S(SIG "\x21\x41\x00\x0c" V4B), "v2: unknown address family 0x4 in byte 0x41", 14},
    {S(SIG "\x21\xf1\x00\x0c" V4B), "v2: unknown address family 0xF", 14},
    {S(SIG "\x21\x13\x00\x0c" V4B), "v2: unknown transport 0x3 in byte 0x13", 14},
    {S(SIG "\x21\x10\x00\x0c" V4B), "v2: family/transport byte 0x10 mixes UNSPEC", 14},
    {S(SIG "\x21\x01\x00\x00"), "v2: family/transport byte 0x01 mixes UNSPEC", 14},
    {S(SIG "\x21\x11\x00\x0b"
           "0123456789a"),
     "v2: length 11 shorter than the 12-byte address block of family byte 0x11", 16},
    {S(SIG "\x21\x11\x00\x00"), "v2: length 0 shorter than the 12-byte", 16},
    {S(SIG "\x21\x21\x00\x23"), "v2: length 35 shorter than the 36-byte address block", 16},
    {S(SIG "\x21\x32\x00\xd7"), "v2: length 215 shorter than the 216-byte address block", 16},
    {S(SIG "\x21\x11\x0f\xf1"), "v2: length 4081 makes a 4097-byte header, over the limit of 4096",
     16},
    {S(SIG "\x20\x00\xff\xff"), "v2: length 65535 makes a 65551-byte header, over the limit", 16},
    {S(SIG "\x21\x11\x00\x0f" V4B "\x02\x00\x05"),
     "v2: TLV at offset 28 (type 0x02) runs past the end of the header", 31},
    {S(SIG "\x21\x11\x00\x0e" V4B "\x04\x00"), "v2: TLV at offset 28 (type 0x04) runs past", 30},
    {S(SIG "\x21\x11\x00\x13" V4B "\x04\x00\x00\x01\x00\x02z"),
     "v2: TLV at offset 31 (type 0x01) runs past", 35},
};

static void
test_malformed(void **state)
{
    (void)state;
    assert_true(sizeof bad_rows / sizeof bad_rows[0] >= 20);
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        const struct bad *b = &bad_rows[i];
        char why[256], first[256] = "";
        for (size_t k = 0; k <= b->len; k++) {
            ssize_t rc = decode_copy(b->in, k, NULL, why, sizeof why);
            ssize_t want = k < b->at ? -EAGAIN : -EPROTO;
            if (rc != want) {
                print_error("bad[%zu] (want '%s'): prefix %zu/%zu = %zd (%s), want %s; why: %s\n",
                            i, b->why, k, b->len, rc, sm_err_name((int)rc), sm_err_name((int)want),
                            why);
                fail();
            }
            if (k < b->at) continue;
            if (k == b->at) {
                if (!strstr(why, b->why)) {
                    print_error("bad[%zu]: why '%s' lacks '%s'\n", i, why, b->why);
                    fail();
                }
                memcpy(first, why, sizeof why);
            } else {
                assert_string_equal(why, first);
            }
        }
    }
}

static void
test_args_and_detail(void **state)
{
    (void)state;
    char why[8];
    assert_int_equal(sm_proxy_decode(NULL, 0, NULL, NULL, 0), -EAGAIN);
    assert_int_equal(sm_proxy_decode(NULL, 5, NULL, why, sizeof why), -EINVAL);
    /* A short detail buffer: truncated, terminated. */
    memset(why, 'z', sizeof why);
    assert_int_equal(sm_proxy_decode(S("hello"), NULL, why, sizeof why), -EPROTO);
    assert_int_equal(strlen(why), sizeof why - 1);
    memset(why, 'z', sizeof why);
    assert_int_equal(sm_proxy_decode(S("hello"), NULL, why, 1), -EPROTO);
    assert_int_equal(why[0], '\0');
    assert_int_equal(why[1], 'z');
    /* A detail never carries raw control bytes or unbounded input. */
    char big[512];
    uint8_t in[] = "PROXY TCP6 ::\x1b[31m";
    assert_int_equal(sm_proxy_decode(in, sizeof in - 1, NULL, big, sizeof big), -EPROTO);
    assert_non_null(strstr(big, "'\\x1b'"));
    for (const char *p = big; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

/* ---- encoders ----------------------------------------------------------- */

static void
test_encode_exact(void **state)
{
    (void)state;
    uint8_t out[SM_PROXY_V2_MAX];
    sm_addr s4 = addr_ip("192.0.2.1", 51234), d4 = addr_ip("198.51.100.7", 443);
    sm_addr s6 = addr_ip("2001:db8::1", 51234), d6 = addr_ip("2001:db8::2", 443);

    static const char l4[] = "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n";
    assert_int_equal(sm_proxy_encode_v1(&s4, &d4, out, sizeof out), sizeof l4 - 1);
    assert_memory_equal(out, l4, sizeof l4 - 1);
    static const char l6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n";
    assert_int_equal(sm_proxy_encode_v1(&s6, &d6, out, sizeof out), sizeof l6 - 1);
    assert_memory_equal(out, l6, sizeof l6 - 1);
    assert_int_equal(sm_proxy_encode_v1(NULL, NULL, out, sizeof out), 15);
    assert_memory_equal(out, "PROXY UNKNOWN\r\n", 15);

    hbuf h;
    v2_start(&h, 0x21, 0x11);
    put(&h, v4_block, sizeof v4_block);
    v2_finish(&h);
    assert_int_equal(sm_proxy_encode_v2(&s4, &d4, SOCK_STREAM, NULL, 0, out, sizeof out), h.n);
    assert_memory_equal(out, h.p, h.n);
    assert_int_equal(sm_proxy_encode_v2(&s4, &d4, 0, NULL, 0, out, sizeof out), h.n);
    assert_memory_equal(out, h.p, h.n);

    sm_proxy_tlv tl[] = {{SM_PROXY_TLV_AUTHORITY, 11, (const uint8_t *)"example.com"},
                         {SM_PROXY_TLV_NOOP, 0, NULL},
                         {SM_PROXY_TLV_UNIQUE_ID, 4, (const uint8_t *)"\xde\xad\xbe\xef"}};
    v2_start(&h, 0x21, 0x22);
    put(&h, v6_block, sizeof v6_block);
    put(&h, tlv_block, sizeof tlv_block);
    v2_finish(&h);
    assert_int_equal(sm_proxy_encode_v2(&s6, &d6, SOCK_DGRAM, tl, 3, out, sizeof out), h.n);
    assert_memory_equal(out, h.p, h.n);

    v2_start(&h, 0x20, 0x00);
    v2_finish(&h);
    assert_int_equal(sm_proxy_encode_v2(NULL, NULL, 0, NULL, 0, out, sizeof out), 16);
    assert_memory_equal(out, h.p, 16);

    sm_addr su, du;
    memset(&su, 0, sizeof su);
    memset(&du, 0, sizeof du);
    struct sockaddr_un *un = (struct sockaddr_un *)&su.ss;
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, "/run/haproxy/client.sock");
    su.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 25);
    un = (struct sockaddr_un *)&du.ss;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, "\0app", 4);
    du.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 4);
    v2_start(&h, 0x21, 0x31);
    put_unix_field(&h, "/run/haproxy/client.sock", 24);
    put_unix_field(&h, "\0app", 4);
    v2_finish(&h);
    assert_int_equal(sm_proxy_encode_v2(&su, &du, SOCK_STREAM, NULL, 0, out, sizeof out), h.n);
    assert_memory_equal(out, h.p, h.n);
    sm_proxy_info info;
    assert_int_equal(sm_proxy_decode(out, h.n, &info, NULL, 0), h.n);
    assert_true(addr_equal(&info.src, &su));
    assert_true(addr_equal(&info.dst, &du));
}

static void
test_encode_errors(void **state)
{
    (void)state;
    uint8_t out[SM_PROXY_V2_MAX + 16];
    sm_addr s4 = addr_ip("192.0.2.1", 1), d4 = addr_ip("192.0.2.2", 2);
    sm_addr s6 = addr_ip("::1", 1);
    sm_addr su;
    memset(&su, 0, sizeof su);
    su.ss.ss_family = AF_UNIX;
    su.len = sizeof(sa_family_t);
    sm_addr bad = s4;
    bad.ss.ss_family = AF_APPLETALK;
    sm_addr short4 = s4;
    short4.len = 4;

    SM_ASSERT_ERR(sm_proxy_encode_v1(&s4, &s6, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v1(&s4, NULL, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v1(NULL, &s4, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v1(&su, &su, out, sizeof out), -EAFNOSUPPORT);
    SM_ASSERT_ERR(sm_proxy_encode_v1(&bad, &bad, out, sizeof out), -EAFNOSUPPORT);
    SM_ASSERT_ERR(sm_proxy_encode_v1(&short4, &d4, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v1(&s4, &d4, NULL, 10), -EINVAL);
    ssize_t n = sm_proxy_encode_v1(&s4, &d4, out, sizeof out);
    SM_ASSERT_OK(n);
    for (size_t cap = 0; cap < (size_t)n; cap++)
        SM_ASSERT_ERR(sm_proxy_encode_v1(&s4, &d4, cap ? out : NULL, cap), -ENOSPC);
    SM_ASSERT_ERR(sm_proxy_encode_v1(NULL, NULL, out, 14), -ENOSPC);

    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &s6, 0, NULL, 0, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, NULL, 0, NULL, 0, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v2(&bad, &bad, 0, NULL, 0, out, sizeof out), -EAFNOSUPPORT);
    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &d4, SOCK_RAW, NULL, 0, out, sizeof out), -EINVAL);
    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &d4, 0, NULL, 1, out, sizeof out), -EINVAL);
    sm_proxy_tlv nullval = {1, 3, NULL};
    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &d4, 0, &nullval, 1, out, sizeof out), -EINVAL);
    sm_addr longun = su;
    longun.len = sizeof(struct sockaddr_un) + 1;
    SM_ASSERT_ERR(sm_proxy_encode_v2(&longun, &su, 0, NULL, 0, out, sizeof out), -EINVAL);

    /* Size limit: 16 + 12 + 3 + len must stay <= 4096. */
    static uint8_t big[SM_PROXY_V2_MAX];
    sm_proxy_tlv t = {SM_PROXY_TLV_NOOP, SM_PROXY_V2_MAX - 31, big};
    n = sm_proxy_encode_v2(&s4, &d4, 0, &t, 1, out, sizeof out);
    assert_int_equal(n, SM_PROXY_V2_MAX);
    assert_int_equal(sm_proxy_decode(out, (size_t)n, NULL, NULL, 0), n);
    t.len++;
    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &d4, 0, &t, 1, out, sizeof out), -EMSGSIZE);
    sm_proxy_tlv many[3] = {{1, 0xffff, big}, {1, 0xffff, big}, {1, 0xffff, big}};
    SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &d4, 0, many, 3, out, sizeof out), -EMSGSIZE);
    for (size_t cap = 0; cap < 28; cap++)
        SM_ASSERT_ERR(sm_proxy_encode_v2(&s4, &d4, 0, NULL, 0, cap ? out : NULL, cap), -ENOSPC);
}

/* Random addresses, ports, Unix names and TLVs: encode, then decode (whole
 * and with application bytes after) gives back the same. */
static void
random_ip(uint64_t *rng, int family, sm_addr *a)
{
    memset(a, 0, sizeof *a);
    uint64_t r = sm_test_rand(rng);
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&a->ss;
        s->sin_family = AF_INET;
        s->sin_port = (uint16_t)r;
        memcpy(&s->sin_addr, (uint8_t *)&r + 2, 4);
        a->len = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = (uint16_t)r;
        uint64_t r2 = sm_test_rand(rng);
        memcpy(&s->sin6_addr, &r, 8);
        memcpy((uint8_t *)&s->sin6_addr + 8, &r2, 8);
        /* Sometimes runs of zeros (:: compression), sometimes IPv4-mapped. */
        if (r2 % 4 == 0) memset(&s->sin6_addr, 0, (size_t)(r2 >> 8) % 16);
        if (r2 % 7 == 0) {
            memset(&s->sin6_addr, 0, 10);
            memset((uint8_t *)&s->sin6_addr + 10, 0xff, 2);
        }
        a->len = sizeof *s;
    }
}

static void
random_unix(uint64_t *rng, sm_addr *a)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
    un->sun_family = AF_UNIX;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    uint64_t r = sm_test_rand(rng);
    size_t n = 1 + (size_t)(r >> 8) % 108;
    switch (r % 3) {
    case 0: /* a path: non-NUL bytes, then the NUL when there is room */
        for (size_t i = 0; i < n; i++)
            un->sun_path[i] = (char)(1 + sm_test_rand(rng) % 255);
        a->len = (socklen_t)(off + (n < 108 ? n + 1 : 108));
        break;
    case 1: /* abstract: NUL, bytes (NULs allowed inside), last one nonzero */
        for (size_t i = 1; i < n; i++)
            un->sun_path[i] = (char)(sm_test_rand(rng) % 4 ? sm_test_rand(rng) % 256 : 0);
        if (n > 1) un->sun_path[n - 1] = 'x';
        a->len = (socklen_t)(off + (n > 1 ? n : 0));
        break;
    default:
        a->len = (socklen_t)off;
        break;
    }
}

static void
test_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 0x9e0c5eed, rng = seed;
    uint8_t out[SM_PROXY_V2_MAX + sizeof APP];
    static uint8_t vals[8][600];
    int64_t t0 = sm_test_now_ms();
    for (int iter = 0; iter < 3000; iter++) {
        assert_true(sm_test_now_ms() - t0 < 30000);
        sm_addr src, dst;
        uint64_t r = sm_test_rand(&rng);
        int kind = (int)(r % 3);
        if (kind == 2) {
            random_unix(&rng, &src);
            random_unix(&rng, &dst);
        } else {
            int family = kind ? AF_INET6 : AF_INET;
            random_ip(&rng, family, &src);
            random_ip(&rng, family, &dst);
        }
        sm_proxy_info info;
        char why[256];
        ssize_t n;
        if (kind != 2) {
            n = sm_proxy_encode_v1(&src, &dst, out, sizeof out);
            assert_true(n > 0 && n <= SM_PROXY_V1_MAX);
            memcpy(out + n, APP, sizeof APP);
            ssize_t rc = decode_copy(out, (size_t)n + sizeof APP, &info, why, sizeof why);
            if (rc != n || !addr_equal(&info.src, &src) || !addr_equal(&info.dst, &dst)) {
                print_error("seed %#" PRIx64 " iter %d: v1 '%.*s' = %zd: %s\n", seed, iter, (int)n,
                            out, rc, why);
                fail();
            }
        }
        sm_proxy_tlv tl[8];
        size_t ntlv = (size_t)(r >> 8) % 9;
        for (size_t i = 0; i < ntlv; i++) {
            tl[i].type = (uint8_t)sm_test_rand(&rng);
            tl[i].len = (uint16_t)(sm_test_rand(&rng) % (i == 0 ? 600 : 40));
            for (size_t j = 0; j < tl[i].len; j++)
                vals[i][j] = (uint8_t)sm_test_rand(&rng);
            tl[i].value = vals[i];
        }
        int socktype = r & 0x800 ? SOCK_DGRAM : SOCK_STREAM;
        n = sm_proxy_encode_v2(&src, &dst, socktype, tl, ntlv, out, sizeof out);
        assert_true(n > 16);
        memcpy(out + n, APP, sizeof APP);
        ssize_t rc = decode_copy(out, (size_t)n + sizeof APP, &info, why, sizeof why);
        if (rc != n || !addr_equal(&info.src, &src) || !addr_equal(&info.dst, &dst) ||
            info.socktype != socktype) {
            print_error("seed %#" PRIx64 " iter %d: v2 (%zd bytes) = %zd: %s\n", seed, iter, n, rc,
                        why);
            fail();
        }
        size_t off = 0, i = 0;
        sm_proxy_tlv t;
        while (sm_proxy_tlv_next(out + info.tlv_off, info.tlv_len, &off, &t) == 1) {
            assert_true(i < ntlv);
            assert_int_equal(t.type, tl[i].type);
            assert_int_equal(t.len, tl[i].len);
            assert_memory_equal(t.value, tl[i].value, t.len);
            i++;
        }
        assert_int_equal(i, ntlv);
        /* A sampled split point still says "need more". */
        size_t k = (size_t)(sm_test_rand(&rng) % (uint64_t)n);
        assert_int_equal(decode_copy(out, k, NULL, NULL, 0), -EAGAIN);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_good),         cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_unix),         cmocka_unit_test(test_v2_local_unspec),
        cmocka_unit_test(test_tlv_walk),        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_args_and_detail), cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_encode_errors),   cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
