/* The PROXY protocol, versions 1 and 2: decoder and encoders.
 *
 * The decoder carries no state between calls, so being safe to call again on
 * a longer buffer comes down to one rule: every decision (an error or the end
 * of the header) is taken at some byte position from the bytes before and at
 * it alone. The v1 line is therefore read by a byte-at-a-time state machine
 * that fails on the first byte which cannot belong to a valid line, and v2 by
 * checking each fixed field as soon as it has arrived. An error detail quotes
 * only bytes that led up to the decision, so it too is independent of how the
 * bytes were chunked. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <sockmsg/error.h>
#include <sockmsg/proxy.h>

#include "internal.h"

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define V1_SIG_LEN    6
#define V2_FIXED      16 /* signature, version/command, family, length */
#define V2_INET_LEN   12
#define V2_INET6_LEN  36
#define V2_UNIX_PATH  108
#define V2_UNIX_LEN   ((size_t)2 * V2_UNIX_PATH)
#define V4_TEXT_MAX   15 /* "255.255.255.255" */
#define V6_TEXT_MAX   45 /* INET6_ADDRSTRLEN - 1 */
#define PORT_TEXT_MAX 5
#define QUOTE_MAX     48 /* bytes of input quoted in a detail */

/* Input bytes for a detail: printable ASCII as is, the rest escaped, so a
 * binary peer never puts control characters into a log line. Every field
 * quoted is bounded well below QUOTE_MAX by the grammar (an address is at most
 * 45 bytes), so the bound only guards against a future slip. */
static const char *
quote(char *dst, size_t cap, const uint8_t *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < QUOTE_MAX && o + 5 < cap; i++) {
        uint8_t c = p[i];
        if (c == '\r' || c == '\n') {
            dst[o++] = '\\';
            dst[o++] = c == '\r' ? 'r' : 'n';
        } else if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            dst[o++] = (char)c;
        } else {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        }
    }
    dst[o] = '\0';
    return dst;
}

/* ---- v1 ---------------------------------------------------------------- */

enum v1_state {
    V1_SIG,   /* "PROXY " */
    V1_PROTO, /* "TCP4", "TCP6" or "UNKNOWN" */
    V1_SRC,
    V1_DST,
    V1_SPORT,
    V1_DPORT,
    V1_LF,   /* the '\n' after the destination port's '\r' */
    V1_SKIP, /* UNKNOWN: anything up to the first "\r\n" */
};

static const char *const v1_field[] = {
    [V1_SRC] = "source address",
    [V1_DST] = "destination address",
    [V1_SPORT] = "source port",
    [V1_DPORT] = "destination port",
};

static bool
v1_addr_char(int family, uint8_t c)
{
    if ((c >= '0' && c <= '9') || c == '.') return true;
    return family == AF_INET6 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':');
}

/* buf[ts..end) is a complete address field. */
static ssize_t
v1_addr(const uint8_t *buf, size_t ts, size_t end, int family, enum v1_state st, sm_addr *a,
        char *why, size_t why_len)
{
    char text[V6_TEXT_MAX + 1], q[QUOTE_MAX * 4 + 8];
    const char *proto = family == AF_INET ? "TCP4" : "TCP6";
    if (end == ts) return sm__why(why, why_len, -EPROTO, "v1: empty %s", v1_field[st]);
    memcpy(text, buf + ts, end - ts);
    text[end - ts] = '\0';
    void *dst;
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
        s4->sin_family = AF_INET;
        a->len = sizeof *s4;
        dst = &s4->sin_addr;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        s6->sin6_family = AF_INET6;
        a->len = sizeof *s6;
        dst = &s6->sin6_addr;
    }
    if (inet_pton(family, text, dst) != 1)
        return sm__why(why, why_len, -EPROTO, "v1: %s '%s' is not an %s address (%s)", v1_field[st],
                       quote(q, sizeof q, buf + ts, end - ts), family == AF_INET ? "IPv4" : "IPv6",
                       proto);
    return 0;
}

static void
v1_set_port(sm_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

static ssize_t
decode_v1(const uint8_t *buf, size_t len, sm_proxy_info *info, char *why, size_t why_len)
{
    char q[QUOTE_MAX * 4 + 8], q2[QUOTE_MAX * 4 + 8];
    enum v1_state st = V1_SIG;
    size_t ts = 0; /* start of the current field */
    int family = 0;
    uint32_t port = 0;
    info->version = 1;
    info->command = SM_PROXY_PROXY;
    for (size_t i = 0;; i++) {
        /* The spec's bound holds for every line, even one whose fields are
         * each valid: a receiver reads at most 107 bytes looking for CRLF. */
        if (i >= SM_PROXY_V1_MAX)
            return sm__why(why, why_len, -EPROTO, "v1: no CRLF within the first %d bytes",
                           SM_PROXY_V1_MAX);
        if (i >= len) return -EAGAIN;
        uint8_t c = buf[i];
        switch (st) {
        case V1_SIG:
            if (c != (uint8_t)v1_sig[i])
                return sm__why(why, why_len, -EPROTO, "v1: expected 'PROXY ', got '%s'",
                               quote(q, sizeof q, buf, i + 1));
            if (i + 1 == V1_SIG_LEN) {
                st = V1_PROTO;
                ts = i + 1;
            }
            break;
        case V1_PROTO: {
            size_t n = i - ts;
            const uint8_t *tok = buf + ts;
            if (c == ' ' || c == '\r') {
                if (n == 4 && !memcmp(tok, "TCP4", 4) && c == ' ') {
                    family = AF_INET;
                } else if (n == 4 && !memcmp(tok, "TCP6", 4) && c == ' ') {
                    family = AF_INET6;
                } else if (n == 7 && !memcmp(tok, "UNKNOWN", 7)) {
                    /* The terminator may be the CR of the final CRLF. */
                    st = V1_SKIP;
                    break;
                } else if (n == 4 && tok[0] == 'T') {
                    return sm__why(why, why_len, -EPROTO,
                                   "v1: line ends after '%s' with no addresses",
                                   quote(q, sizeof q, tok, n));
                } else {
                    return sm__why(why, why_len, -EPROTO,
                                   "v1: unknown protocol '%s' (expected TCP4, TCP6 or UNKNOWN)",
                                   quote(q, sizeof q, tok, n));
                }
                info->known = true;
                info->socktype = SOCK_STREAM;
                st = V1_SRC;
                ts = i + 1;
                break;
            }
            /* Fail on the first byte that no protocol name continues with. */
            bool ok = false;
            static const char *const names[] = {"TCP4", "TCP6", "UNKNOWN"};
            for (size_t k = 0; k < 3 && !ok; k++)
                ok = n < strlen(names[k]) && !memcmp(tok, names[k], n) && (uint8_t)names[k][n] == c;
            if (!ok)
                return sm__why(why, why_len, -EPROTO,
                               "v1: unknown protocol '%s' (expected TCP4, TCP6 or UNKNOWN)",
                               quote(q, sizeof q, tok, n + 1));
            break;
        }
        case V1_SRC:
        case V1_DST: {
            if (c == ' ') {
                sm_addr *a = st == V1_SRC ? &info->src : &info->dst;
                ssize_t rc = v1_addr(buf, ts, i, family, st, a, why, why_len);
                if (rc < 0) return rc;
                st = st == V1_SRC ? V1_DST : V1_SPORT;
                ts = i + 1;
                port = 0;
                break;
            }
            size_t max = family == AF_INET ? V4_TEXT_MAX : V6_TEXT_MAX;
            if (!v1_addr_char(family, c)) {
                const char *hint =
                    family == AF_INET && c == ':' ? " (an IPv6 address in TCP4?)" : "";
                return sm__why(why, why_len, -EPROTO, "v1: bad character '%s' in %s '%s'%s",
                               quote(q, sizeof q, &c, 1), v1_field[st],
                               quote(q2, sizeof q2, buf + ts, i - ts), hint);
            }
            if (i - ts + 1 > max)
                return sm__why(why, why_len, -EPROTO, "v1: %s longer than %zu characters: '%s'",
                               v1_field[st], max, quote(q, sizeof q, buf + ts, i - ts + 1));
            break;
        }
        case V1_SPORT:
        case V1_DPORT: {
            uint8_t end = st == V1_SPORT ? ' ' : '\r';
            if (c == end) {
                if (i == ts) return sm__why(why, why_len, -EPROTO, "v1: empty %s", v1_field[st]);
                v1_set_port(st == V1_SPORT ? &info->src : &info->dst, (uint16_t)port);
                st = st == V1_SPORT ? V1_DPORT : V1_LF;
                ts = i + 1;
                port = 0;
                break;
            }
            if (c < '0' || c > '9')
                return sm__why(why, why_len, -EPROTO, "v1: bad character '%s' in %s '%s'",
                               quote(q, sizeof q, &c, 1), v1_field[st],
                               quote(q2, sizeof q2, buf + ts, i - ts));
            if (i - ts + 1 > PORT_TEXT_MAX)
                return sm__why(why, why_len, -EPROTO, "v1: %s '%s' longer than %d digits",
                               v1_field[st], quote(q, sizeof q, buf + ts, i - ts + 1),
                               PORT_TEXT_MAX);
            port = port * 10 + (uint32_t)(c - '0');
            /* Five digits cannot overflow; past 65535 no further digit helps. */
            if (port > 65535)
                return sm__why(why, why_len, -EPROTO, "v1: %s %u out of range (0-65535)",
                               v1_field[st], (unsigned)port);
            break;
        }
        case V1_LF:
            if (c != '\n')
                return sm__why(why, why_len, -EPROTO, "v1: expected '\\n' after '\\r', got '%s'",
                               quote(q, sizeof q, &c, 1));
            return (ssize_t)i + 1;
        case V1_SKIP:
            if (c == '\n' && buf[i - 1] == '\r') return (ssize_t)i + 1;
            break;
        }
    }
}

/* ---- v2 ---------------------------------------------------------------- */

static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A 108-byte v2 Unix address field as a sockaddr_un (see proxy.h). */
static void
v2_unix(const uint8_t *field, sm_addr *a)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
    size_t off = offsetof(struct sockaddr_un, sun_path), n;
    un->sun_family = AF_UNIX;
    if (field[0] != 0) {
        n = strnlen((const char *)field, V2_UNIX_PATH);
        memcpy(un->sun_path, field, n);
        if (n < V2_UNIX_PATH) n++; /* count the NUL, as the kernel reports paths */
    } else {
        n = V2_UNIX_PATH;
        while (n > 1 && field[n - 1] == 0)
            n--;
        if (n == 1) n = 0; /* an all-zero field: unnamed */
        memcpy(un->sun_path, field, n);
    }
    a->len = (socklen_t)(off + n);
}

static ssize_t
decode_v2(const uint8_t *buf, size_t len, sm_proxy_info *info, char *why, size_t why_len)
{
    for (size_t i = 0; i < sizeof v2_sig && i < len; i++)
        if (buf[i] != v2_sig[i])
            return sm__why(why, why_len, -EPROTO,
                           "v2: bad signature byte %zu: 0x%02x, expected 0x%02x", i, buf[i],
                           v2_sig[i]);
    if (len <= 12) return -EAGAIN;
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
    if (ver != 2) return sm__why(why, why_len, -EPROTO, "v2: version %u (only 2 is defined)", ver);
    if (cmd > 1)
        return sm__why(why, why_len, -EPROTO,
                       "v2: unknown command 0x%X (0 LOCAL and 1 PROXY are defined)", cmd);
    info->version = 2;
    info->command = cmd ? SM_PROXY_PROXY : SM_PROXY_LOCAL;
    if (len <= 13) return -EAGAIN;
    unsigned fam = buf[13];
    size_t alen = 0;
    if (cmd == SM_PROXY_PROXY) {
        unsigned af = fam >> 4, tp = fam & 0x0f;
        if (af > 3)
            return sm__why(why, why_len, -EPROTO,
                           "v2: unknown address family 0x%X in byte 0x%02X (0-3 are defined)", af,
                           fam);
        if (tp > 2)
            return sm__why(why, why_len, -EPROTO,
                           "v2: unknown transport 0x%X in byte 0x%02X (0-2 are defined)", tp, fam);
        if ((af == 0) != (tp == 0))
            return sm__why(why, why_len, -EPROTO,
                           "v2: family/transport byte 0x%02X mixes UNSPEC with a defined value",
                           fam);
        static const size_t alens[] = {0, V2_INET_LEN, V2_INET6_LEN, V2_UNIX_LEN};
        alen = alens[af];
    }
    if (len < V2_FIXED) return -EAGAIN;
    size_t hl = get16(buf + 14), total = V2_FIXED + hl;
    if (total > SM_PROXY_V2_MAX)
        return sm__why(why, why_len, -EPROTO,
                       "v2: length %zu makes a %zu-byte header, over the limit of %d", hl, total,
                       SM_PROXY_V2_MAX);
    if (hl < alen)
        return sm__why(
            why, why_len, -EPROTO,
            "v2: length %zu shorter than the %zu-byte address block of family byte 0x%02X", hl,
            alen, fam);
    if (len < total) return -EAGAIN;

    unsigned af = fam >> 4;
    if (cmd == SM_PROXY_LOCAL || af == 0) return (ssize_t)total;
    const uint8_t *p = buf + V2_FIXED;
    if (af == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&info->src.ss;
        struct sockaddr_in *d = (struct sockaddr_in *)&info->dst.ss;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p, 4);
        memcpy(&d->sin_addr, p + 4, 4);
        memcpy(&s->sin_port, p + 8, 2);
        memcpy(&d->sin_port, p + 10, 2);
        info->src.len = info->dst.len = sizeof *s;
    } else if (af == 2) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src.ss;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst.ss;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p, 16);
        memcpy(&d->sin6_addr, p + 16, 16);
        memcpy(&s->sin6_port, p + 32, 2);
        memcpy(&d->sin6_port, p + 34, 2);
        info->src.len = info->dst.len = sizeof *s;
    } else {
        v2_unix(p, &info->src);
        v2_unix(p + V2_UNIX_PATH, &info->dst);
    }
    info->known = true;
    info->socktype = (fam & 0x0f) == 1 ? SOCK_STREAM : SOCK_DGRAM;

    /* A TLV overrunning the header would make a consumer of the TLVs read
     * into the application's bytes: refuse the header instead. */
    size_t off = 0;
    sm_proxy_tlv t;
    int rc;
    while ((rc = sm_proxy_tlv_next(p + alen, hl - alen, &off, &t)) == 1)
        ;
    if (rc < 0)
        return sm__why(why, why_len, -EPROTO,
                       "v2: TLV at offset %zu (type 0x%02X) runs past the end of the header",
                       V2_FIXED + alen + off, p[alen + off]);
    info->tlv_off = V2_FIXED + alen;
    info->tlv_len = hl - alen;
    return (ssize_t)total;
}

/* ---- public ------------------------------------------------------------- */

ssize_t
sm_proxy_decode(const uint8_t *buf, size_t len, sm_proxy_info *out, char *why, size_t why_len)
{
    sm_proxy_info tmp;
    sm_proxy_info *info = out ? out : &tmp;
    if (why && why_len) why[0] = '\0';
    if (!buf && len > 0) return -EINVAL;
    memset(info, 0, sizeof *info);
    if (len == 0) return -EAGAIN;
    if (buf[0] == (uint8_t)v1_sig[0]) return decode_v1(buf, len, info, why, why_len);
    if (buf[0] == v2_sig[0]) return decode_v2(buf, len, info, why, why_len);
    return sm__why(why, why_len, -EPROTO, "not a PROXY protocol header: first byte 0x%02x", buf[0]);
}

int
sm_proxy_tlv_next(const uint8_t *tlvs, size_t len, size_t *off, sm_proxy_tlv *tlv)
{
    size_t o = *off;
    if (o >= len) return 0;
    if (len - o < 3) return -EPROTO;
    size_t n = get16(tlvs + o + 1);
    if (len - o - 3 < n) return -EPROTO;
    tlv->type = tlvs[o];
    tlv->len = (uint16_t)n;
    tlv->value = tlvs + o + 3;
    *off = o + 3 + n;
    return 1;
}

/* Both addresses given and of one family, or both NULL (family 0). */
static int
pair_family(const sm_addr *src, const sm_addr *dst)
{
    if (!src && !dst) return 0;
    if (!src || !dst || src->ss.ss_family != dst->ss.ss_family) return -EINVAL;
    const sm_addr *a[2] = {src, dst};
    for (int i = 0; i < 2; i++) {
        size_t need;
        switch (a[i]->ss.ss_family) {
        case AF_INET:
            need = sizeof(struct sockaddr_in);
            break;
        case AF_INET6:
            need = sizeof(struct sockaddr_in6);
            break;
        case AF_UNIX:
            need = offsetof(struct sockaddr_un, sun_path);
            if (a[i]->len > sizeof(struct sockaddr_un)) return -EINVAL;
            break;
        default:
            return -EAFNOSUPPORT;
        }
        if (a[i]->len < need) return -EINVAL;
    }
    return src->ss.ss_family;
}

ssize_t
sm_proxy_encode_v1(const sm_addr *src, const sm_addr *dst, uint8_t *out, size_t cap)
{
    if (!out && cap > 0) return -EINVAL;
    int family = pair_family(src, dst);
    if (family < 0) return family;
    if (family == AF_UNIX) return -EAFNOSUPPORT;
    char line[160]; /* room for any snprintf below; the length is checked after */
    int n;
    if (family == 0) {
        n = snprintf(line, sizeof line, "PROXY UNKNOWN\r\n");
    } else {
        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
        unsigned sp, dp;
        if (family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&src->ss;
            const struct sockaddr_in *b = (const struct sockaddr_in *)&dst->ss;
            inet_ntop(AF_INET, &a->sin_addr, s, sizeof s);
            inet_ntop(AF_INET, &b->sin_addr, d, sizeof d);
            sp = ntohs(a->sin_port);
            dp = ntohs(b->sin_port);
        } else {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&src->ss;
            const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&dst->ss;
            inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof s);
            inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof d);
            sp = ntohs(a->sin6_port);
            dp = ntohs(b->sin6_port);
        }
        /* At most 11 + 2 * 39 + 2 * 5 + 3 + 2 = 104 bytes: inet_ntop writes
         * IPv4-mapped addresses as ::ffff:a.b.c.d, never the 45-byte form. */
        n = snprintf(line, sizeof line, "PROXY %s %s %s %u %u\r\n",
                     family == AF_INET ? "TCP4" : "TCP6", s, d, sp, dp);
    }
    if (n < 0 || (size_t)n > SM_PROXY_V1_MAX) return -EINVAL;
    /* out is NULL only with cap 0, which no header fits. */
    if ((size_t)n > cap || !out) return -ENOSPC;
    memcpy(out, line, (size_t)n);
    return n;
}

ssize_t
sm_proxy_encode_v2(const sm_addr *src, const sm_addr *dst, int socktype, const sm_proxy_tlv *tlvs,
                   size_t ntlv, uint8_t *out, size_t cap)
{
    if ((!out && cap > 0) || (!tlvs && ntlv > 0)) return -EINVAL;
    int family = pair_family(src, dst);
    if (family < 0) return family;
    if (family != 0 && socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
        return -EINVAL;
    size_t alen = family == AF_INET    ? V2_INET_LEN
                  : family == AF_INET6 ? V2_INET6_LEN
                  : family == AF_UNIX  ? V2_UNIX_LEN
                                       : 0;
    size_t total = V2_FIXED + alen;
    for (size_t i = 0; i < ntlv; i++) {
        if (!tlvs[i].value && tlvs[i].len > 0) return -EINVAL;
        total += 3 + (size_t)tlvs[i].len;
        if (total > SM_PROXY_V2_MAX) return -EMSGSIZE;
    }
    if (total > SM_PROXY_V2_MAX) return -EMSGSIZE;
    /* out is NULL only with cap 0, which no header fits. */
    if (total > cap || !out) return -ENOSPC;

    memcpy(out, v2_sig, sizeof v2_sig);
    out[12] = family ? 0x21 : 0x20;
    unsigned af = family == AF_INET ? 1 : family == AF_INET6 ? 2 : family == AF_UNIX ? 3 : 0;
    out[13] = (uint8_t)(family ? af << 4 | (socktype == SOCK_DGRAM ? 2 : 1) : 0);
    put16(out + 14, (uint16_t)(total - V2_FIXED));
    uint8_t *p = out + V2_FIXED;
    if (family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&src->ss;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&dst->ss;
        memcpy(p, &a->sin_addr, 4);
        memcpy(p + 4, &b->sin_addr, 4);
        memcpy(p + 8, &a->sin_port, 2);
        memcpy(p + 10, &b->sin_port, 2);
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&src->ss;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&dst->ss;
        memcpy(p, &a->sin6_addr, 16);
        memcpy(p + 16, &b->sin6_addr, 16);
        memcpy(p + 32, &a->sin6_port, 2);
        memcpy(p + 34, &b->sin6_port, 2);
    } else if (family == AF_UNIX) {
        const sm_addr *ab[2] = {src, dst};
        size_t off = offsetof(struct sockaddr_un, sun_path);
        for (size_t i = 0; i < 2; i++) {
            const struct sockaddr_un *un = (const struct sockaddr_un *)&ab[i]->ss;
            size_t n = SM__MIN((size_t)ab[i]->len - off, (size_t)V2_UNIX_PATH);
            memset(p + i * V2_UNIX_PATH, 0, V2_UNIX_PATH);
            memcpy(p + i * V2_UNIX_PATH, un->sun_path, n);
        }
    }
    p += alen;
    for (size_t i = 0; i < ntlv; i++) {
        p[0] = tlvs[i].type;
        put16(p + 1, tlvs[i].len);
        if (tlvs[i].len) memcpy(p + 3, tlvs[i].value, tlvs[i].len);
        p += 3 + tlvs[i].len;
    }
    return (ssize_t)total;
}
