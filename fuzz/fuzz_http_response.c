/* Fuzz target: the sockmsg tool's HTTP response-head parser and body framing
 * (tools/sockmsg/http_response.c), on what any web server might send.
 *
 * Input: byte 0 seeds a chunking, byte 1 sets the room for header fields
 * (0..31), the rest is the response. The bytes are parsed whole, then as
 * they might arrive, growing in chunks of 1..(byte 0 >> 3) + 1 bytes, each
 * call on an exact-size copy (a read past len is caught) with prev_len as a
 * caller passes it, stopping at the first answer that is not -EAGAIN. Checks:
 *   - the result is the head length, -EAGAIN, CLI_ERR_HTTP, -EMSGSIZE or
 *     SM_ERR_LIMIT; every error but -EAGAIN has an explanation and an offset
 *     inside the bytes; -EAGAIN only below HTTP_HEAD_MAX;
 *   - both feeds agree: result, explanation, status, fields;
 *   - a parsed head: ends with LF within the bytes, status 100-599, version
 *     1.0 to 1.9, every field's name a non-empty token and its name and value
 *     inside the head, at most the room given; http_find_header finds each
 *     field by its name, in any case;
 *   - http_body_framing gives a kind that the fields justify, or CLI_ERR_HTTP
 *     with an explanation; never a body for 1xx, 204, 304; never both
 *     Content-Length and Transfer-Encoding.
 */
#include <errno.h>
#include <string.h>

#include <sockmsg/error.h>

#include "fuzz.h"
#include "http.h"
#include "http_internal.h"

#define FIELDS_MAX 31

typedef struct parsed {
    ssize_t rc;
    http_response res;
    http_header fields[FIELDS_MAX];
    size_t at; /* bytes given to the call that answered */
} parsed;

static ssize_t
parse_copy(const uint8_t *buf, size_t len, size_t prev, parsed *p, size_t cap)
{
    char *copy = malloc(len ? len : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    if (len) memcpy(copy, buf, len);
    memset(&p->res, 0, sizeof p->res);
    p->res.headers = p->fields;
    p->res.headers_cap = cap;
    ssize_t rc = http_parse_response(copy, len, prev, &p->res);
    /* Spans into the copy become offsets into buf, where they mean the same. */
    if (rc > 0) {
        p->res.reason = (const char *)buf + (p->res.reason - copy);
        for (size_t i = 0; i < p->res.num_headers; i++) {
            p->fields[i].name = (const char *)buf + (p->fields[i].name - copy);
            p->fields[i].value = (const char *)buf + (p->fields[i].value - copy);
        }
    }
    free(copy);
    p->rc = rc;
    p->at = len;
    return rc;
}

static bool
inside(const char *p, size_t n, const uint8_t *buf, size_t len)
{
    const char *b = (const char *)buf;
    return p >= b && (size_t)(p - b) <= len && n <= len - (size_t)(p - b);
}

static void
check_head(const parsed *p, const uint8_t *buf, size_t n, size_t cap)
{
    const http_response *r = &p->res;
    size_t hl = (size_t)p->rc;
    FUZZ_CHECK(hl <= n && r->head_len == hl && buf[hl - 1] == '\n', "head of %zu in %zu", hl, n);
    FUZZ_CHECK(r->status >= 100 && r->status <= 599, "status %d", r->status);
    FUZZ_CHECK(r->minor_version >= 0 && r->minor_version <= 9, "HTTP/1.%d", r->minor_version);
    FUZZ_CHECK(r->num_headers <= cap, "%zu fields in room for %zu", r->num_headers, cap);
    FUZZ_CHECK(inside(r->reason, r->reason_len, buf, hl), "reason outside the head");
    for (size_t i = 0; i < r->num_headers; i++) {
        const http_header *h = &r->headers[i];
        FUZZ_CHECK(h->name_len > 0 && inside(h->name, h->name_len, buf, hl) &&
                       inside(h->value, h->value_len, buf, hl),
                   "field %zu outside the head", i);
        for (size_t k = 0; k < h->name_len; k++)
            FUZZ_CHECK(http__is_tchar((unsigned char)h->name[k]), "field %zu name byte 0x%02x", i,
                       (unsigned char)h->name[k]);
        char name[HTTP_HEAD_MAX + 1];
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        if (i % 2) /* the lookup ignores case */
            for (size_t k = 0; k < h->name_len; k++)
                name[k] = (char)(name[k] ^
                                 ((name[k] | 0x20) >= 'a' && (name[k] | 0x20) <= 'z' ? 0x20 : 0));
        int at = http_find_header(r, name, 0);
        FUZZ_CHECK(at >= 0 && (size_t)at <= i &&
                       http__span_ieq(r->headers[at].name, r->headers[at].name_len, name),
                   "field %zu '%s' found at %d", i, name, at);
        FUZZ_CHECK(http_find_header(r, name, i) == (int)i, "field %zu not found from itself", i);
    }
}

static void
check_framing(parsed *p)
{
    http_response *r = &p->res;
    uint64_t length = 0;
    int kind = http_body_framing(r, &length);
    bool te = http_find_header(r, "transfer-encoding", 0) >= 0;
    bool cl = http_find_header(r, "content-length", 0) >= 0;
    bool none = r->status < 200 || r->status == 204 || r->status == 304;
    if (kind < 0) {
        FUZZ_CHECK(kind == CLI_ERR_HTTP && r->error != NULL, "framing %d", kind);
        FUZZ_CHECK(!none, "status %d has no body, yet its framing fails", r->status);
        return;
    }
    switch (kind) {
    case HTTP_BODY_NONE:
        FUZZ_CHECK(none, "no body for status %d", r->status);
        break;
    case HTTP_BODY_LENGTH:
        FUZZ_CHECK(!none && cl && !te, "length for status %d, cl %d te %d", r->status, cl, te);
        break;
    case HTTP_BODY_CHUNKED:
        FUZZ_CHECK(!none && te && !cl && r->minor_version >= 1, "chunked, cl %d te %d", cl, te);
        break;
    case HTTP_BODY_EOF:
        FUZZ_CHECK(!none && !te && !cl, "until EOF with cl %d te %d", cl, te);
        break;
    default:
        FUZZ_CHECK(0, "framing kind %d", kind);
    }
}

static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint64_t rng = (uint64_t)data[0] * 0x9e3779b97f4a7c15ull + 1;
    size_t max_chunk = (size_t)(data[0] >> 3) + 1, cap = data[1] % (FIELDS_MAX + 1);
    const uint8_t *buf = data + 2;
    size_t n = size - 2;

    static parsed whole, part;
    ssize_t rc = parse_copy(buf, n, 0, &whole, cap);
    FUZZ_CHECK(rc > 0 || rc == -EAGAIN || rc == CLI_ERR_HTTP || rc == -EMSGSIZE ||
                   rc == SM_ERR_LIMIT,
               "result %zd", rc);
    if (rc == -EAGAIN) FUZZ_CHECK(n < HTTP_HEAD_MAX, "-EAGAIN after %zu bytes", n);
    if (rc < 0 && rc != -EAGAIN)
        FUZZ_CHECK(whole.res.error != NULL && whole.res.error_off <= n, "error %zd unexplained",
                   rc);

    size_t have = 0, prev = 0;
    ssize_t prc = -EAGAIN;
    while (prc == -EAGAIN && have < n) {
        have += 1 + (size_t)(next_rand(&rng) % max_chunk);
        if (have > n) have = n;
        prc = parse_copy(buf, have, prev, &part, cap);
        prev = have;
    }
    if (n == 0) prc = parse_copy(buf, 0, 0, &part, cap);
    FUZZ_CHECK(prc == rc, "fed in chunks: %zd after %zu bytes; whole: %zd (%s)", prc, part.at, rc,
               whole.res.error ? whole.res.error : "");
    if (rc < 0) {
        if (rc != -EAGAIN)
            FUZZ_CHECK(strcmp(part.res.error, whole.res.error) == 0 &&
                           part.res.error_off == whole.res.error_off,
                       "chunks: '%s' at %zu, whole: '%s' at %zu", part.res.error,
                       part.res.error_off, whole.res.error, whole.res.error_off);
        return 0;
    }
    FUZZ_CHECK(
        part.res.status == whole.res.status && part.res.minor_version == whole.res.minor_version &&
            part.res.num_headers == whole.res.num_headers && part.res.reason == whole.res.reason &&
            part.res.reason_len == whole.res.reason_len,
        "chunked and whole heads differ");
    for (size_t i = 0; i < whole.res.num_headers; i++)
        FUZZ_CHECK(part.fields[i].name == whole.fields[i].name &&
                       part.fields[i].name_len == whole.fields[i].name_len &&
                       part.fields[i].value == whole.fields[i].value &&
                       part.fields[i].value_len == whole.fields[i].value_len,
                   "field %zu differs", i);
    check_head(&whole, buf, n, cap);
    /* Spans must point at live bytes for framing to read the values. */
    check_framing(&whole);
    return 0;
}
