/* Fuzz target: the endpoint parser and the socket-address formatter.
 *
 * Input: byte 0 picks a mode and a size for the caller's buffers, the rest is
 * the data.
 *   Mode 0 (even byte 0): the rest is an endpoint string. Checks: the result is
 *   0, SM_ERR_ENDPOINT or -ENAMETOOLONG; an error has a NUL-terminated
 *   explanation that stays inside the caller's `why` buffer, however small; a
 *   parsed endpoint is of a known kind with a host or path that the string
 *   named, formats to a canonical string that parses back to the same
 *   endpoint and formats to itself; a format into a short buffer is -ENOSPC
 *   with a terminated prefix, never a write past it.
 *   Mode 1 (odd byte 0): the rest is a socket address as accept() might hand
 *   it back, with any family and length. Checks: sm_addr_format answers
 *   without reading past the length; a TCP or named Unix result is an
 *   endpoint string that parses.
 */
#include <errno.h>
#include <string.h>

#include <sockmsg/endpoint.h>

#include "fuzz.h"

#define CANARY 0x5a

/* out[0..cap) holds a terminated string and out[cap..cap + 8) is untouched. */
static void
check_bounded(const char *what, const char *out, size_t cap)
{
    FUZZ_CHECK(cap == 0 || memchr(out, '\0', cap) != NULL, "%s not terminated in %zu bytes", what,
               cap);
    for (size_t i = cap; i < cap + 8; i++)
        FUZZ_CHECK((unsigned char)out[i] == CANARY, "%s written past %zu bytes", what, cap);
}

/* b (parsed from a's string) names what a names: the same host and port, the
 * same abstract name, the same file ("@x" is written as "./@x"). */
static bool
endpoint_same(const sm_endpoint *a, const sm_endpoint *b)
{
    if (a->kind != b->kind) return false;
    if (a->kind == SM_ENDPOINT_TCP) return a->port == b->port && strcmp(a->host, b->host) == 0;
    const char *bp = b->path;
    if (a->kind == SM_ENDPOINT_UNIX && a->path[0] == '@' && strncmp(bp, "./", 2) == 0) bp += 2;
    return strcmp(a->path, bp) == 0;
}

/* A parsed endpoint formats canonically: parse(format(ep)) == ep, and the
 * canonical string is a fixed point. */
static void
check_canonical(const sm_endpoint *ep, const char *str, size_t small)
{
    char canon[SM_ENDPOINT_HOST_MAX + SM_ENDPOINT_PATH_MAX + 32];
    int n = sm_endpoint_format(ep, canon, sizeof canon);
    FUZZ_CHECK(n > 0 && (size_t)n == strlen(canon), "'%s' formats to %d", str, n);

    sm_endpoint back;
    char why[256];
    int rc = sm_endpoint_parse(&back, canon, why, sizeof why);
    FUZZ_CHECK(rc == 0, "'%s' formats to '%s', which does not parse: %s", str, canon, why);
    FUZZ_CHECK(endpoint_same(ep, &back), "'%s' formats to '%s', which parses differently", str,
               canon);
    char again[sizeof canon];
    FUZZ_CHECK(sm_endpoint_format(&back, again, sizeof again) == n && strcmp(again, canon) == 0,
               "'%s' is not a fixed point ('%s')", canon, again);

    /* The same into a buffer of `small` bytes. */
    char tiny[sizeof canon + 8];
    memset(tiny, CANARY, sizeof tiny);
    int t = sm_endpoint_format(ep, tiny, small);
    if (small > (size_t)n) {
        FUZZ_CHECK(t == n && strcmp(tiny, canon) == 0, "'%s' into %zu bytes: %d", canon, small, t);
    } else {
        FUZZ_CHECK(t == -ENOSPC, "'%s' (%d bytes) into %zu bytes: %d", canon, n, small, t);
        FUZZ_CHECK(small == 0 || strncmp(tiny, canon, small - 1) == 0,
                   "'%s' into %zu bytes: not a prefix", canon, small);
    }
    check_bounded("format", tiny, small);
}

static void
fuzz_string(const uint8_t *data, size_t n, size_t small)
{
    char *str = malloc(n + 1);
    FUZZ_CHECK(str != NULL, "out of memory");
    memcpy(str, data, n);
    str[n] = '\0';

    /* why of `small` bytes, then canaries: an explanation never overruns. */
    char why[300 + 8];
    size_t why_len = small < 300 ? small : 300;
    memset(why, CANARY, sizeof why);
    sm_endpoint ep;
    int rc = sm_endpoint_parse(&ep, str, why, why_len);
    FUZZ_CHECK(rc == 0 || rc == SM_ERR_ENDPOINT || rc == -ENAMETOOLONG, "'%s': result %d (%s)", str,
               rc, sm_err_name(rc));
    check_bounded("why", why, why_len);
    if (why_len > 1)
        FUZZ_CHECK((rc == 0) == (why[0] == '\0'), "'%s': %d with why '%s'", str, rc, why);

    if (rc == 0) {
        switch (ep.kind) {
        case SM_ENDPOINT_TCP:
            FUZZ_CHECK(ep.host[0] != '\0' && strstr(str, ep.host) != NULL, "'%s': host '%s'", str,
                       ep.host);
            break;
        case SM_ENDPOINT_UNIX:
        case SM_ENDPOINT_UNIX_ABSTRACT:
            FUZZ_CHECK(ep.path[0] != '\0' && strstr(str, ep.path) != NULL, "'%s': path '%s'", str,
                       ep.path);
            break;
        default:
            FUZZ_CHECK(0, "'%s': kind %d", str, (int)ep.kind);
        }
        check_canonical(&ep, str, small);
    }
    free(str);
}

static void
fuzz_addr(const uint8_t *data, size_t n, size_t small)
{
    /* As accept() fills it: a sockaddr_storage, len saying how much is real.
     * The bytes past len are poisoned with a pattern, not zeros, so a read
     * past len shows up as a wrong answer rather than a lucky one. */
    struct sockaddr_storage ss;
    memset(&ss, 0xee, sizeof ss);
    size_t len = n < sizeof ss ? n : sizeof ss;
    memcpy(&ss, data, len);
    char out[SM_ENDPOINT_HOST_MAX + SM_ENDPOINT_PATH_MAX + 32 + 8];
    memset(out, CANARY, sizeof out);
    size_t cap = sizeof out - 8;
    int rc = sm_addr_format((const struct sockaddr *)&ss, (socklen_t)len, out, cap);
    FUZZ_CHECK(rc >= 0 || rc == -EAFNOSUPPORT || rc == -EINVAL || rc == -ENOSPC, "result %d (%s)",
               rc, sm_err_name(rc));
    if (rc < 0 && rc != -ENOSPC) {
        for (size_t i = 0; i < sizeof out; i++)
            FUZZ_CHECK((unsigned char)out[i] == CANARY, "error %d wrote the output", rc);
        return;
    }
    check_bounded("addr", out, cap);
    if (rc < 0) return;
    FUZZ_CHECK((size_t)rc == strlen(out), "length %d for '%s'", rc, out);

    sm_endpoint ep;
    FUZZ_CHECK(sm_addr_to_endpoint((const struct sockaddr *)&ss, (socklen_t)len, &ep) == 0,
               "to_endpoint fails where format did not");
    bool named = ep.kind == SM_ENDPOINT_TCP || ep.path[0] != '\0';
    sm_endpoint back;
    char why[256];
    if (ep.kind == SM_ENDPOINT_UNIX && ep.path[0] == '@' &&
        strlen(ep.path) + 2 > (size_t)SM_ENDPOINT_PATH_MAX - 1) {
        /* "./" makes it too long to parse: refused, never misread. */
        FUZZ_CHECK(sm_endpoint_parse(&back, out, why, sizeof why) == -ENAMETOOLONG, "'%s' parses",
                   out);
        return;
    }
    if (named) {
        int prc = sm_endpoint_parse(&back, out, why, sizeof why);
        FUZZ_CHECK(prc == 0, "address formats to '%s', which does not parse: %s", out, why);
        FUZZ_CHECK(endpoint_same(&ep, &back), "'%s' parses to another endpoint", out);
        check_canonical(&ep, out, small);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t small = data[0] >> 1;
    if (data[0] & 1)
        fuzz_addr(data + 1, size - 1, small);
    else
        fuzz_string(data + 1, size - 1, small);
    return 0;
}
