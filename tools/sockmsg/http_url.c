/* http:// URLs for `sockmsg get`: parsing, RFC 3986 reference resolution
 * (redirects), and formatting for messages and the Host field (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

static int url_fail(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
url_fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Length of a scheme followed by ':' at the start of s, or 0. */
static size_t
scheme_len(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ':') return i;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || http__is_digit(ch) ||
                  ch == '+' || ch == '-' || ch == '.';
        if (!ok) return 0;
    }
    return 0;
}

static bool
is_host_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || http__is_digit(ch) ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Remove "." and ".." segments (RFC 3986 section 5.2.4). `in` is scratch
 * (modified); out has room for n bytes. Returns the output length. */
static size_t
remove_dots(char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        const char *s = in + i;
        size_t r = n - i;
        bool up = false;
        if (r >= 3 && !memcmp(s, "../", 3)) {
            i += 3;
            /* One branch per case of the RFC's steps: A's "./" and B's "/./"
             * both drop two bytes, but they are different rules. */
            // NOLINTNEXTLINE(bugprone-branch-clone)
        } else if (r >= 2 && !memcmp(s, "./", 2)) {
            i += 2;
        } else if (r >= 3 && !memcmp(s, "/./", 3)) {
            i += 2;
        } else if (r == 2 && !memcmp(s, "/.", 2)) {
            in[i + 1] = '/';
            i += 1;
        } else if (r >= 4 && !memcmp(s, "/../", 4)) {
            i += 3;
            up = true;
        } else if (r == 3 && !memcmp(s, "/..", 3)) {
            in[i + 2] = '/';
            i += 2;
            up = true;
        } else if ((r == 1 && s[0] == '.') || (r == 2 && !memcmp(s, "..", 2))) {
            i = n;
        } else {
            size_t j = i + (in[i] == '/');
            while (j < n && in[j] != '/')
                j++;
            memcpy(out + o, in + i, j - i);
            o += j - i;
            i = j;
        }
        if (up) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0) o--;
        }
    }
    return o;
}

/* Append src[0..n) to out[*o..cap), percent-encoding SP and bytes >= 0x7f. */
static bool
append_encoded(char *out, size_t cap, size_t *o, const char *src, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == ' ' || ch >= 0x7f) {
            if (*o + 3 >= cap) return false;
            out[(*o)++] = '%';
            out[(*o)++] = hex[ch >> 4];
            out[(*o)++] = hex[ch & 15];
        } else {
            if (*o + 1 >= cap) return false;
            out[(*o)++] = (char)ch;
        }
    }
    return true;
}

/* Build an origin-form target from an absolute path (or "") and a query. */
static int
build_target(char *target, const char *path, size_t plen, const char *query, size_t qlen,
             bool has_query, char *why, size_t why_len)
{
    char scratch[HTTP_TARGET_MAX], clean[HTTP_TARGET_MAX];
    if (plen >= sizeof scratch) return url_fail(why, why_len, -ENAMETOOLONG, "URL path too long");
    if (plen == 0) {
        path = "/";
        plen = 1;
    }
    memcpy(scratch, path, plen);
    size_t clen = remove_dots(scratch, plen, clean);
    if (clen == 0) clean[clen++] = '/';
    size_t o = 0;
    bool ok = append_encoded(target, HTTP_TARGET_MAX, &o, clean, clen);
    if (ok && has_query) {
        ok = o + 1 < HTTP_TARGET_MAX;
        if (ok) target[o++] = '?';
        ok = ok && append_encoded(target, HTTP_TARGET_MAX, &o, query, qlen);
    }
    if (!ok) return url_fail(why, why_len, -ENAMETOOLONG, "URL path and query too long");
    target[o] = '\0';
    return 0;
}

static int
parse_port(const char *s, size_t n, uint16_t *port, uint16_t dflt, char *why, size_t why_len)
{
    if (n == 0) {
        *port = dflt;
        return 0;
    }
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!http__is_digit((unsigned char)s[i]) || i >= 5)
            return url_fail(why, why_len, -EINVAL, "bad port '%.*s'", (int)(n > 16 ? 16 : n), s);
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return url_fail(why, why_len, -EINVAL, "port %u out of range (1-65535)", v);
    *port = (uint16_t)v;
    return 0;
}

static int
parse_authority(http_url *u, const char *s, size_t n, char *why, size_t why_len)
{
    if (memchr(s, '@', n))
        return url_fail(why, why_len, -EINVAL, "user credentials in URLs are not supported");
    size_t i = 0, o = 0;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return url_fail(why, why_len, -EINVAL, "unterminated '[' in host");
        size_t end = (size_t)(close - s);
        char addr[INET6_ADDRSTRLEN + 1];
        size_t a = 0;
        for (i = 1; i < end && s[i] != '%'; i++) {
            if (a + 1 >= sizeof addr)
                return url_fail(why, why_len, -EINVAL, "bad IPv6 address in host");
            addr[a++] = s[i];
        }
        addr[a] = '\0';
        struct in6_addr in6;
        if (inet_pton(AF_INET6, addr, &in6) != 1)
            return url_fail(why, why_len, -EINVAL, "bad IPv6 address '%s' in host", addr);
        memcpy(u->host, addr, a);
        o = a;
        if (i < end) {
            /* A zone: "%25lo" as RFC 6874 writes it, or a bare "%lo". */
            i += (end - i >= 3 && !memcmp(s + i, "%25", 3)) ? 3 : 1;
            if (i == end) return url_fail(why, why_len, -EINVAL, "empty IPv6 zone in host");
            u->host[o++] = '%';
            for (; i < end; i++) {
                if (!is_host_char((unsigned char)s[i]) || o + 1 >= HTTP_HOST_MAX)
                    return url_fail(why, why_len, -EINVAL, "bad IPv6 zone in host");
                u->host[o++] = s[i];
            }
        }
        u->host[o] = '\0';
        u->host_v6 = true;
        i = end + 1;
        if (i < n && s[i] != ':')
            return url_fail(why, why_len, -EINVAL, "unexpected characters after ']' in host");
    } else {
        for (; i < n && s[i] != ':'; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (!is_host_char(ch))
                return url_fail(why, why_len, -EINVAL, "invalid character '%c' in host",
                                ch >= 0x20 && ch < 0x7f ? ch : '?');
            if (o + 1 >= HTTP_HOST_MAX)
                return url_fail(why, why_len, -ENAMETOOLONG, "host too long");
            u->host[o++] = (char)ch;
        }
        u->host[o] = '\0';
        u->host_v6 = false;
        if (o == 0) return url_fail(why, why_len, -EINVAL, "missing host");
    }
    uint16_t dflt = u->https ? 443 : 80;
    if (i < n) return parse_port(s + i + 1, n - i - 1, &u->port, dflt, why, why_len);
    u->port = dflt;
    return 0;
}

static int
check_chars(const char *s, size_t n, char *why, size_t why_len)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return url_fail(why, why_len, -EINVAL, "control character in URL");
    }
    return 0;
}

/* Split "path[?query][#fragment]" into its parts. */
static void
split_path(const char *s, size_t n, size_t *plen, const char **query, size_t *qlen, bool *has_q)
{
    size_t end = n;
    const char *hash = memchr(s, '#', n);
    if (hash) end = (size_t)(hash - s);
    const char *q = memchr(s, '?', end);
    *has_q = q != NULL;
    *plen = q ? (size_t)(q - s) : end;
    *query = q ? q + 1 : s + end;
    *qlen = q ? (size_t)(s + end - (q + 1)) : 0;
}

int
http_url_parse(http_url *u, const char *str, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!u || !str) return -EINVAL;
    size_t n = strlen(str);
    int rc = check_chars(str, n, why, why_len);
    if (rc < 0) return rc;
    size_t sl = scheme_len(str, n);
    const char *p = str + sl + 1;
    bool slashes = sl > 0 && !strncmp(p, "//", 2);
    bool https = sl > 0 && http__span_ieq(str, sl, "https");
    if (sl > 0 && (https || http__span_ieq(str, sl, "http"))) {
        if (!slashes)
            return url_fail(why, why_len, -EINVAL, "expected '//' after '%.*s:' in URL", (int)sl,
                            str);
    } else if (slashes) {
        return url_fail(why, why_len, -EPROTONOSUPPORT,
                        "unsupported URL scheme '%.*s' (only http:// and https://)", (int)sl, str);
    } else {
        return url_fail(why, why_len, -EINVAL, "missing 'http://' in URL '%.200s'", str);
    }
    p += 2;
    size_t alen = strcspn(p, "/?#");
    http_url t;
    t.https = https;
    rc = parse_authority(&t, p, alen, why, why_len);
    if (rc < 0) return rc;
    const char *rest = p + alen, *query;
    size_t plen, qlen;
    bool has_q;
    split_path(rest, strlen(rest), &plen, &query, &qlen, &has_q);
    rc = build_target(t.target, rest, plen, query, qlen, has_q, why, why_len);
    if (rc < 0) return rc;
    *u = t;
    return 0;
}

int
http_url_resolve(http_url *out, const http_url *base, const char *ref, size_t ref_len, char *why,
                 size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!out || !base || (!ref && ref_len)) return -EINVAL;
    if (!ref) ref = "";
    char abs[HTTP_TARGET_MAX + HTTP_HOST_MAX + 32];
    int rc = check_chars(ref, ref_len, why, why_len);
    if (rc < 0) return rc;
    if (scheme_len(ref, ref_len) > 0 || (ref_len >= 2 && !memcmp(ref, "//", 2))) {
        const char *prefix = ref[0] != '/' ? "" : base->https ? "https:" : "http:";
        if (ref_len + strlen(prefix) >= sizeof abs)
            return url_fail(why, why_len, -ENAMETOOLONG, "redirect URL too long");
        snprintf(abs, sizeof abs, "%s%.*s", prefix, (int)ref_len, ref);
        return http_url_parse(out, abs, why, why_len);
    }

    const char *query;
    size_t plen, qlen;
    bool has_q;
    split_path(ref, ref_len, &plen, &query, &qlen, &has_q);
    const char *bpath = base->target, *bq = strchr(base->target, '?');
    size_t bplen = bq ? (size_t)(bq - bpath) : strlen(bpath);

    http_url t;
    memcpy(t.host, base->host, sizeof t.host);
    t.host_v6 = base->host_v6;
    t.port = base->port;
    t.https = base->https;
    if (plen == 0) {
        if (!has_q && bq) {
            has_q = true;
            query = bq + 1;
            qlen = strlen(query);
        }
        rc = build_target(t.target, bpath, bplen, query, qlen, has_q, why, why_len);
    } else if (ref[0] == '/') {
        rc = build_target(t.target, ref, plen, query, qlen, has_q, why, why_len);
    } else {
        /* Merge: the base path up to its last '/', then the reference. */
        size_t keep = bplen;
        while (keep > 0 && bpath[keep - 1] != '/')
            keep--;
        if (keep + plen >= sizeof abs)
            return url_fail(why, why_len, -ENAMETOOLONG, "redirect URL too long");
        memcpy(abs, bpath, keep);
        memcpy(abs + keep, ref, plen);
        rc = build_target(t.target, abs, keep + plen, query, qlen, has_q, why, why_len);
    }
    if (rc < 0) return rc;
    *out = t;
    return 0;
}

int
http_url_authority(const http_url *u, char *out, size_t out_len)
{
    char host[HTTP_HOST_MAX + 8];
    if (u->host_v6) {
        /* A zone is written "%25zone" inside brackets (RFC 6874). */
        const char *pct = strchr(u->host, '%');
        if (pct)
            snprintf(host, sizeof host, "[%.*s%%25%s]", (int)(pct - u->host), u->host, pct + 1);
        else
            snprintf(host, sizeof host, "[%s]", u->host);
    } else {
        snprintf(host, sizeof host, "%s", u->host);
    }
    int n = u->port == (u->https ? 443 : 80)
                ? snprintf(out, out_len, "%s", host)
                : snprintf(out, out_len, "%s:%u", host, (unsigned)u->port);
    return n < 0 || (size_t)n >= out_len ? -ENOSPC : n;
}

int
http_url_format(const http_url *u, char *out, size_t out_len)
{
    char auth[HTTP_HOST_MAX + 16];
    int rc = http_url_authority(u, auth, sizeof auth);
    if (rc < 0) return rc;
    int n = snprintf(out, out_len, "%s://%s%s", u->https ? "https" : "http", auth, u->target);
    return n < 0 || (size_t)n >= out_len ? -ENOSPC : n;
}
