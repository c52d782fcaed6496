/* Fuzz target: the sockmsg tool's http:// URLs (tools/sockmsg/http_url.c):
 * parsing, resolving a Location reference against a base, formatting.
 *
 * Input: a base URL up to the first NUL, then a reference (not
 * NUL-terminated, as a Location field value is). Checks:
 *   - results are 0, -EPROTONOSUPPORT, -EINVAL or -ENAMETOOLONG, with an
 *     explanation on every error;
 *   - a parsed or resolved URL: a non-empty host, a port, a target that
 *     starts with '/', holds no SP, control byte, byte >= 0x7f or '#', and no
 *     "/./" or "/../" segment;
 *   - it formats to a URL that parses back to the same URL, and the format
 *     is a fixed point; the authority formats;
 *   - resolving into the base itself gives what resolving into another URL
 *     gives.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

static void
check_rc(int rc, const char *why, const char *what)
{
    FUZZ_CHECK(rc == 0 || rc == -EPROTONOSUPPORT || rc == -EINVAL || rc == -ENAMETOOLONG,
               "%s: result %d", what, rc);
    FUZZ_CHECK((rc == 0) == (why[0] == '\0'), "%s: %d with why '%s'", what, rc, why);
}

static bool
url_same(const http_url *a, const http_url *b)
{
    return a->host_v6 == b->host_v6 && a->port == b->port && strcmp(a->host, b->host) == 0 &&
           strcmp(a->target, b->target) == 0;
}

static bool
has_segment(const char *t, const char *seg)
{
    size_t n = strlen(seg);
    for (const char *p = strstr(t, seg); p; p = strstr(p + 1, seg))
        if (p[n] == '/' || p[n] == '\0' || p[n] == '?') return true;
    return false;
}

static void
check_url(const http_url *u, const char *what)
{
    FUZZ_CHECK(u->host[0] != '\0', "%s: empty host", what);
    FUZZ_CHECK(u->target[0] == '/', "%s: target '%s'", what, u->target);
    const char *q = strchr(u->target, '?');
    size_t path_len = q ? (size_t)(q - u->target) : strlen(u->target);
    for (const unsigned char *p = (const unsigned char *)u->target; *p; p++)
        FUZZ_CHECK(*p > 0x20 && *p < 0x7f && *p != '#', "%s: byte 0x%02x in target '%s'", what, *p,
                   u->target);
    char path[HTTP_TARGET_MAX];
    memcpy(path, u->target, path_len);
    path[path_len] = '\0';
    FUZZ_CHECK(!has_segment(path, "/.") && !has_segment(path, "/.."), "%s: dot segment in '%s'",
               what, u->target);

    char s[HTTP_HOST_MAX + HTTP_TARGET_MAX + 32];
    int n = http_url_format(u, s, sizeof s);
    FUZZ_CHECK(n > 0 && (size_t)n == strlen(s), "%s: format %d", what, n);
    http_url back;
    char why[256];
    int rc = http_url_parse(&back, s, why, sizeof why);
    FUZZ_CHECK(rc == 0, "%s: formats to '%s', which does not parse: %s", what, s, why);
    FUZZ_CHECK(url_same(u, &back), "%s: '%s' parses to another URL (target '%s', not '%s')", what,
               s, back.target, u->target);
    char again[sizeof s];
    FUZZ_CHECK(http_url_format(&back, again, sizeof again) == n && strcmp(again, s) == 0,
               "'%s' is not a fixed point", s);
    char auth[HTTP_HOST_MAX + 16];
    FUZZ_CHECK(http_url_authority(u, auth, sizeof auth) > 0, "%s: no authority", what);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t blen = nul ? (size_t)(nul - data) : size;
    char *base_str = malloc(blen + 1);
    FUZZ_CHECK(base_str != NULL, "out of memory");
    memcpy(base_str, data, blen);
    base_str[blen] = '\0';
    size_t rlen = nul ? size - blen - 1 : 0;
    char *ref = malloc(rlen ? rlen : 1);
    FUZZ_CHECK(ref != NULL, "out of memory");
    if (rlen) memcpy(ref, nul + 1, rlen);

    static http_url base, out, self;
    char why[256] = "x";
    int rc = http_url_parse(&base, base_str, why, sizeof why);
    check_rc(rc, why, "parse");
    if (rc == 0) {
        check_url(&base, "parse");
        if (nul) {
            char why2[256] = "x";
            int r1 = http_url_resolve(&out, &base, ref, rlen, why, sizeof why);
            check_rc(r1, why, "resolve");
            self = base;
            int r2 = http_url_resolve(&self, &self, ref, rlen, why2, sizeof why2);
            FUZZ_CHECK(r1 == r2 && strcmp(why, why2) == 0, "resolve in place: %d, not %d", r2, r1);
            if (r1 == 0) {
                check_url(&out, "resolve");
                FUZZ_CHECK(url_same(&out, &self), "resolve in place gives another URL");
            }
        }
    }
    free(base_str);
    free(ref);
    return 0;
}
