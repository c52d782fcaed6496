/* Fuzz target: the PROXY protocol decoder on arbitrary bytes.
 *
 * Input: byte 0 picks a chunking, the rest is what a peer sent. The bytes are
 * decoded all at once, then fed as a growing buffer in the chosen chunks, each
 * time from an exact-size copy (so a read past len is caught), stopping at the
 * first answer that is not -EAGAIN, as a server would. Checks:
 *   - both agree: same result, same detail, same decoded header;
 *   - consumed <= len; v1 headers <= 107 bytes, v2 headers 16..4096 bytes;
 *     -EAGAIN only while fewer than SM_PROXY_V2_MAX bytes are present;
 *   - a header is self-contained: exactly its bytes decode to it, one byte
 *     fewer is -EAGAIN;
 *   - a detail on every -EPROTO, none otherwise;
 *   - decoded addresses are of one known family; the TLV area lies inside the
 *     header and walks to its end;
 *   - a decoded header re-encodes (v1 or v2, with its TLVs) into one that
 *     decodes to the same addresses, transport and TLVs.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <sockmsg/proxy.h>

#include "fuzz.h"

#define TLV_MAX (SM_PROXY_V2_MAX / 3 + 1)

static ssize_t
decode_copy(const uint8_t *buf, size_t len, sm_proxy_info *info, char *why, size_t why_len)
{
    uint8_t *copy = malloc(len ? len : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    if (len) memcpy(copy, buf, len);
    ssize_t rc = sm_proxy_decode(copy, len, info, why, why_len);
    free(copy);
    return rc;
}

/* Member by member: the structs have padding, which memcmp would compare too. */
static bool
addr_same(const sm_addr *a, const sm_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, sizeof a->ss) == 0;
}

static bool
info_same(const sm_proxy_info *a, const sm_proxy_info *b)
{
    return a->version == b->version && a->command == b->command && a->known == b->known &&
           a->socktype == b->socktype && addr_same(&a->src, &b->src) &&
           addr_same(&a->dst, &b->dst) && a->tlv_off == b->tlv_off && a->tlv_len == b->tlv_len;
}

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static bool
addr_equal(const sm_addr *a, const sm_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static void
check_header(const uint8_t *buf, size_t n, ssize_t rc, const sm_proxy_info *info)
{
    size_t hl = (size_t)rc;
    FUZZ_CHECK(hl <= n, "consumed %zu of %zu", hl, n);
    FUZZ_CHECK(info->version == 1 || info->version == 2, "version %d", info->version);
    if (info->version == 1)
        FUZZ_CHECK(hl <= SM_PROXY_V1_MAX && info->command == SM_PROXY_PROXY, "v1 of %zu bytes", hl);
    else
        FUZZ_CHECK(hl >= 16 && hl <= SM_PROXY_V2_MAX, "v2 of %zu bytes", hl);
    if (info->known) {
        int f = info->src.ss.ss_family;
        FUZZ_CHECK(f == AF_INET || f == AF_INET6 || f == AF_UNIX, "family %d", f);
        FUZZ_CHECK(info->dst.ss.ss_family == f, "families %d and %d", f, info->dst.ss.ss_family);
        FUZZ_CHECK(info->src.len > 0 && info->src.len <= sizeof(struct sockaddr_un) &&
                       info->dst.len > 0 && info->dst.len <= sizeof(struct sockaddr_un),
                   "address lengths %u %u", (unsigned)info->src.len, (unsigned)info->dst.len);
        FUZZ_CHECK(info->socktype == SOCK_STREAM || info->socktype == SOCK_DGRAM, "socktype %d",
                   info->socktype);
    } else {
        FUZZ_CHECK(info->src.len == 0 && info->dst.len == 0 && info->socktype == 0,
                   "addresses on an unknown header");
    }
    FUZZ_CHECK(info->tlv_len <= hl && info->tlv_off <= hl - info->tlv_len, "TLVs outside");
    size_t off = 0;
    sm_proxy_tlv t;
    int trc;
    while ((trc = sm_proxy_tlv_next(buf + info->tlv_off, info->tlv_len, &off, &t)) == 1)
        ;
    FUZZ_CHECK(trc == 0 && off == info->tlv_len, "TLV walk %d at %zu of %zu", trc, off,
               info->tlv_len);

    sm_proxy_info again;
    FUZZ_CHECK(decode_copy(buf, hl, &again, NULL, 0) == rc, "header alone decodes differently");
    FUZZ_CHECK(info_same(&again, info), "header alone gives another header");
    FUZZ_CHECK(decode_copy(buf, hl - 1, NULL, NULL, 0) == -EAGAIN, "header less a byte");
}

static void
check_reencode(const uint8_t *buf, const sm_proxy_info *info)
{
    uint8_t out[SM_PROXY_V2_MAX];
    sm_proxy_tlv tlvs[TLV_MAX];
    size_t ntlv = 0, off = 0;
    while (sm_proxy_tlv_next(buf + info->tlv_off, info->tlv_len, &off, &tlvs[ntlv]) == 1)
        ntlv++;
    const sm_addr *src = info->known ? &info->src : NULL;
    const sm_addr *dst = info->known ? &info->dst : NULL;
    ssize_t n;
    if (info->version == 1) {
        n = sm_proxy_encode_v1(src, dst, out, sizeof out);
    } else if (info->command == SM_PROXY_LOCAL || info->known) {
        n = sm_proxy_encode_v2(src, dst, info->socktype, tlvs, ntlv, out, sizeof out);
    } else {
        return; /* PROXY over UNSPEC: the encoder never writes it */
    }
    FUZZ_CHECK(n > 0, "re-encoding v%d failed: %s", info->version, sm_err_name((int)n));
    sm_proxy_info back;
    char why[256];
    ssize_t rc = decode_copy(out, (size_t)n, &back, why, sizeof why);
    FUZZ_CHECK(rc == n, "re-encoded v%d header: %zd (%s) of %zd: %s", info->version, rc,
               sm_err_name((int)rc), n, why);
    FUZZ_CHECK(back.version == info->version && back.command == info->command &&
                   back.known == info->known && back.socktype == info->socktype,
               "re-encoded v%d header differs", info->version);
    FUZZ_CHECK(addr_equal(&back.src, &info->src) && addr_equal(&back.dst, &info->dst),
               "re-encoded v%d addresses differ", info->version);
    if (info->version == 2 && info->known)
        FUZZ_CHECK(back.tlv_len == info->tlv_len &&
                       memcmp(out + back.tlv_off, buf + info->tlv_off, info->tlv_len) == 0,
                   "re-encoded TLVs differ");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const uint8_t *buf = data + 1;
    size_t n = size - 1;

    sm_proxy_info all;
    char why_all[256];
    ssize_t rc_all = decode_copy(buf, n, &all, why_all, sizeof why_all);
    FUZZ_CHECK(rc_all > 0 || rc_all == -EAGAIN || rc_all == -EPROTO, "result %zd (%s)", rc_all,
               sm_err_name((int)rc_all));
    FUZZ_CHECK((rc_all == -EPROTO) == (why_all[0] != '\0'), "detail '%s' with %s", why_all,
               sm_err_name((int)rc_all));
    if (rc_all == -EAGAIN) FUZZ_CHECK(n < SM_PROXY_V2_MAX, "-EAGAIN with %zu bytes", n);

    /* The same bytes as they might arrive: chunks of 1 byte, of up to
     * (mode >> 2) + 1 bytes at random, or a single split. */
    uint64_t rng = mode * 0x9e3779b97f4a7c15ull + 1;
    size_t have = 0, split = n ? (size_t)(mode >> 2) % (n + 1) : 0;
    sm_proxy_info part;
    char why_part[256] = "";
    ssize_t rc = -EAGAIN;
    while (rc == -EAGAIN && have < n) {
        size_t step;
        switch (mode & 3) {
        case 0:
            step = 1;
            break;
        case 1:
            step = have < split ? split - have : n - have;
            break;
        default:
            step = 1 + (size_t)(next_rand(&rng) % ((mode >> 2) + 1u));
            break;
        }
        have = have + step < n ? have + step : n;
        rc = decode_copy(buf, have, &part, why_part, sizeof why_part);
        if (rc == -EAGAIN) FUZZ_CHECK(why_part[0] == '\0', "detail '%s' with EAGAIN", why_part);
    }
    if (n == 0) rc = decode_copy(buf, 0, &part, why_part, sizeof why_part);
    FUZZ_CHECK(rc == rc_all, "chunked %zd (%s) after %zu bytes, whole %zd (%s)", rc,
               sm_err_name((int)rc), have, rc_all, sm_err_name((int)rc_all));
    FUZZ_CHECK(strcmp(why_part, why_all) == 0, "chunked '%s', whole '%s'", why_part, why_all);
    if (rc_all < 0) return 0;

    FUZZ_CHECK(info_same(&part, &all), "chunked and whole headers differ");
    check_header(buf, n, rc_all, &all);
    check_reencode(buf, &all);
    return 0;
}
