/* Fuzz target: the sockmsg tool's chunked transfer-coding decoder
 * (tools/sockmsg/http_chunked.c).
 *
 * Input: byte 0 seeds a chunking, the rest is a body as a server sent it. The
 * body is decoded whole, then again as it might arrive: in chunks of
 * 1..(byte 0 >> 2) + 1 bytes, each chunk an exact-size copy that the decoder
 * sees once (it keeps nothing between calls). Checks:
 *   - every call consumes a prefix of what it is given, at least one byte while
 *     the body is unfinished and healthy; the data span lies in that prefix;
 *   - an error is CLI_ERR_HTTP or -EMSGSIZE with an explanation, and sticky;
 *   - once done, nothing more is consumed;
 *   - both feeds give the same answer, explanation and error offset, and
 *     (without an error) the same data and bytes consumed; with one, the data
 *     of one feed is a prefix of the other's.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

typedef struct decoded {
    uint8_t *data;
    size_t len;
    uint64_t consumed;
    int err;
    bool done;
    const char *error;
    uint64_t offset;
} decoded;

/* Feed buf[0..n) until it is all consumed, the body ends or an error. */
static void
feed(http_chunked *c, decoded *d, const uint8_t *src, size_t n)
{
    char *buf = malloc(n ? n : 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    if (n) memcpy(buf, src, n);
    size_t off = 0;
    while (off < n && !d->err && !d->done) {
        const char *span = NULL;
        size_t span_len = 0;
        ssize_t rc = http_chunked_decode(c, buf + off, n - off, &span, &span_len);
        if (rc < 0) {
            FUZZ_CHECK(rc == CLI_ERR_HTTP || rc == -EMSGSIZE, "result %zd", rc);
            FUZZ_CHECK(c->error != NULL && c->err == (int)rc, "error %zd unexplained", rc);
            d->err = (int)rc;
            d->error = c->error;
            d->offset = c->offset;
            const char *s2;
            size_t l2;
            FUZZ_CHECK(http_chunked_decode(c, buf + off, n - off, &s2, &l2) == rc,
                       "error not sticky");
            break;
        }
        FUZZ_CHECK((size_t)rc <= n - off, "consumed %zd of %zu", rc, n - off);
        d->done = http_chunked_done(c);
        FUZZ_CHECK(rc > 0 || d->done, "no progress on %zu bytes", n - off);
        if (span_len) {
            FUZZ_CHECK(span >= buf + off && span + span_len <= buf + off + rc,
                       "data outside the consumed bytes");
            memcpy(d->data + d->len, span, span_len);
            d->len += span_len;
        }
        off += (size_t)rc;
        d->consumed += (uint64_t)rc;
    }
    if (d->done && off < n) {
        const char *s2 = NULL;
        size_t l2 = 1;
        FUZZ_CHECK(http_chunked_decode(c, buf + off, n - off, &s2, &l2) == 0 && l2 == 0,
                   "bytes consumed after the end");
    }
    free(buf);
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
    if (size < 1) return 0;
    uint64_t rng = (uint64_t)data[0] * 0x9e3779b97f4a7c15ull + 1;
    size_t max_chunk = (size_t)(data[0] >> 2) + 1;
    const uint8_t *body = data + 1;
    size_t n = size - 1;

    decoded whole = {.data = malloc(n + 1)}, part = {.data = malloc(n + 1)};
    FUZZ_CHECK(whole.data && part.data, "out of memory");
    http_chunked c;
    http_chunked_init(&c);
    feed(&c, &whole, body, n);

    http_chunked_init(&c);
    size_t off = 0;
    while (off < n && !part.err && !part.done) {
        size_t step = 1 + (size_t)(next_rand(&rng) % max_chunk);
        if (step > n - off) step = n - off;
        feed(&c, &part, body + off, step);
        off += step;
    }
    /* A call that fails consumes nothing and hands back no data, so before
     * an error the bytes consumed and the data delivered depend on where the
     * chunks ended: one is a prefix of the other. Without an error: equal. */
    FUZZ_CHECK(part.err == whole.err && part.done == whole.done &&
                   (whole.err || part.consumed == whole.consumed),
               "chunks: err %d done %d consumed %llu; whole: err %d done %d consumed %llu",
               part.err, part.done, (unsigned long long)part.consumed, whole.err, whole.done,
               (unsigned long long)whole.consumed);
    size_t common = part.len < whole.len ? part.len : whole.len;
    FUZZ_CHECK((whole.err || part.len == whole.len) && memcmp(part.data, whole.data, common) == 0,
               "chunks and whole decode different data (%zu and %zu bytes)", part.len, whole.len);
    if (whole.err)
        FUZZ_CHECK(strcmp(part.error, whole.error) == 0 && part.offset == whole.offset,
                   "chunks: '%s' at %llu, whole: '%s' at %llu", part.error,
                   (unsigned long long)part.offset, whole.error, (unsigned long long)whole.offset);
    free(whole.data);
    free(part.data);
    return 0;
}
