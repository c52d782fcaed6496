/* Fuzz target, differential: one stream decoded whole and in chunks whose
 * sizes come from the input, by the two decoders the library has: the
 * reference sm_frame_decode, and the inline fast path of the stream's read
 * loop (sm__frame_decode_fast, frame_internal.h) driven the way the stream
 * drives it, over a receive buffer that moves to an exact-size allocation
 * each time bytes arrive (so a read past the buffered bytes is caught).
 *
 * Input: byte 0: low 5 bits the number K of chunk sizes; byte 1 below 0x40
 * picks a spec from the list below, otherwise the spec string starts at byte 1
 * and runs to the first NUL (any spec that parses is fair game); then K
 * chunk sizes, one byte each, used in turn (0 delivers nothing and calls the
 * decoder again); the rest is the stream, which ends with the peer's EOF.
 * Checks: both give the same messages (payload, type, frame length), the same
 * final answer, error detail and skipped count, and, when the stream ends
 * without an error, the same skipped bytes between messages and the same pos
 * (a failing call consumes nothing, so before an error those depend on where
 * the chunks ended).
 */
#include <errno.h>
#include <string.h>

#include <sockmsg/frame.h>

#include "frame_internal.h"
#include "fuzz.h"

static const char *const specs[] = {
    "len32be,max=64",
    "len16le,max=64,oversize=skip",
    "len8",
    "len64le,max=100,oversize=skip",
    "len32be,adjust=-4,max=64",
    "len16be,offset=2,max=64,oversize=skip",
    "line,max=16",
    "crlf,max=16,oversize=skip",
    "delim:abcab,max=12,oversize=skip",
    "netstring,max=32,oversize=skip",
    "varint,max=32",
    "ascii:4,max=64,oversize=skip",
    "fixed:5",
    "type:A=3;B=(len8);C=(line);D=(varint),max=16,oversize=skip",
    "eof,max=32",
};

#define NSPECS   (sizeof specs / sizeof specs[0])
#define SPEC_MAX 200
#define EV_MAX   4096

typedef struct event {
    uint64_t off; /* payload offset in the stream; skipped bytes for a skip */
    uint64_t len, frame_len;
    int type;
    bool skip;
} event;

typedef struct run {
    event ev[EV_MAX];
    size_t n;
    ssize_t end; /* the answer that ended the run: 0 for a clean EOF */
    char detail[256];
    uint64_t pos, skipped;
} run;

static void
record(run *r, const sm_frame_msg *m, const uint8_t *base, uint64_t base_off, ssize_t used)
{
    if (!m->data) { /* skipped bytes: however they came, merged */
        if (r->n && r->ev[r->n - 1].skip) {
            r->ev[r->n - 1].off += (uint64_t)used;
            return;
        }
        FUZZ_CHECK(r->n < EV_MAX, "too many events");
        r->ev[r->n++] = (event){.off = (uint64_t)used, .skip = true};
        return;
    }
    FUZZ_CHECK(r->n < EV_MAX, "too many events");
    /* An empty message (eof framing's empty stream) may point anywhere. */
    FUZZ_CHECK(m->frame_len == (size_t)used &&
                   (m->frame_len == 0 || (m->data >= base && m->frame == base)),
               "message outside its frame");
    r->ev[r->n++] = (event){.off = base_off + (uint64_t)(m->data - base),
                            .len = m->len,
                            .frame_len = m->frame_len,
                            .type = m->type};
}

/* The rest of a stream after the peer's EOF: decode_eof until it answers
 * 0 without a message, or an error. */
static void
finish_eof(run *r, sm_frame_decoder *d, const uint8_t *rest, size_t len, uint64_t off)
{
    for (size_t guard = 0; guard < len + 4; guard++) {
        /* An exact copy, as the caller's buffer would be. */
        uint8_t *copy = malloc(len ? len : 1);
        FUZZ_CHECK(copy != NULL, "out of memory");
        if (len) memcpy(copy, rest, len);
        sm_frame_msg m = {0};
        ssize_t rc = sm_frame_decode_eof(d, copy, len, &m);
        if (rc > 0 && m.data) {
            m.data = rest + (m.data - copy);
            m.frame = rest + (m.frame - copy);
        }
        free(copy);
        if (rc < 0 || (rc == 0 && !m.data)) {
            r->end = rc;
            return;
        }
        FUZZ_CHECK((size_t)rc <= len, "decode_eof consumed %zd of %zu", rc, len);
        record(r, &m, rest, off, rc);
        rest += rc, len -= (size_t)rc, off += (uint64_t)rc;
    }
    FUZZ_CHECK(0, "decode_eof does not settle");
}

static void
run_done(run *r, const sm_frame_decoder *d)
{
    sm_frame_decoder_detail(d, r->detail, sizeof r->detail);
    r->pos = d->pos;
    r->skipped = d->skipped;
}

/* The reference: sm_frame_decode on everything at once. */
static void
decode_whole(const sm_frame_spec *spec, const uint8_t *s, size_t n, run *r)
{
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    size_t off = 0;
    r->n = 0;
    for (;;) {
        sm_frame_msg m;
        ssize_t rc = sm_frame_decode(&d, s + off, n - off, &m);
        if (rc == -EAGAIN) break;
        if (rc < 0) {
            r->end = rc;
            run_done(r, &d);
            return;
        }
        FUZZ_CHECK(rc > 0 && (size_t)rc <= n - off, "consumed %zd of %zu", rc, n - off);
        record(r, &m, s + off, off, rc);
        off += (size_t)rc;
    }
    finish_eof(r, &d, s + off, n - off, off);
    run_done(r, &d);
}

/* As the stream reads: bytes arrive in the given chunks into a buffer of the
 * unconsumed bytes; after each arrival the fast path takes every whole
 * message. */
static void
decode_chunked(const sm_frame_spec *spec, const uint8_t *s, size_t n, const uint8_t *sizes,
               size_t nsizes, run *r)
{
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    bool plain = sm__frame_plain_len(spec);
    uint64_t max = sm_frame_max(spec);
    size_t consumed = 0, arrived = 0, k = 0, idle = 0;
    r->n = 0;
    while (arrived < n) {
        size_t step = nsizes ? sizes[k++ % nsizes] : 1;
        if (step > n - arrived) step = n - arrived;
        /* Chunk lists of zeros only: bounded, and then the rest at once. */
        if (step == 0 && ++idle > 64) step = n - arrived;
        arrived += step;
        size_t have = arrived - consumed;
        uint8_t *buf = malloc(have ? have : 1);
        FUZZ_CHECK(buf != NULL, "out of memory");
        if (have) memcpy(buf, s + consumed, have);
        size_t at = 0;
        for (;;) {
            sm_frame_msg m;
            ssize_t rc = sm__frame_decode_fast(&d, plain, max, buf + at, have - at, &m);
            if (rc == -EAGAIN) break;
            if (rc < 0) {
                free(buf);
                r->end = rc;
                run_done(r, &d);
                return;
            }
            FUZZ_CHECK(rc > 0 && (size_t)rc <= have - at, "consumed %zd of %zu", rc, have - at);
            if (m.data) {
                m.data = s + consumed + at + (m.data - (buf + at));
                m.frame = s + consumed + at + (m.frame - (buf + at));
            }
            record(r, &m, s + consumed + at, consumed + at, rc);
            at += (size_t)rc;
        }
        free(buf);
        consumed += at;
    }
    finish_eof(r, &d, s + consumed, n - consumed, consumed);
    run_done(r, &d);
}

/* The next event at or after *i, skipping skip events when `msgs_only`. */
static const event *
next_event(const run *r, size_t *i, bool msgs_only)
{
    while (*i < r->n && msgs_only && r->ev[*i].skip)
        (*i)++;
    return *i < r->n ? &r->ev[(*i)++] : NULL;
}

/* A decoder that fails consumes nothing in that call, so before an error how
 * many skipped bytes were reported consumed (and pos) depends on where the
 * chunks ended; the messages, the error, its detail and the skipped count do
 * not. Without an error, everything is the same. */
static void
compare(const char *str, const run *a, const run *b)
{
    bool failed = a->end < 0;
    size_t i = 0, j = 0, k = 0;
    for (;; k++) {
        const event *x = next_event(a, &i, failed), *y = next_event(b, &j, failed);
        if (!x || !y) {
            FUZZ_CHECK(!x && !y, "%s: event %zu only %s", str, k, x ? "whole" : "in chunks");
            break;
        }
        FUZZ_CHECK(x->skip == y->skip && x->off == y->off && x->len == y->len &&
                       x->frame_len == y->frame_len && x->type == y->type,
                   "%s: event %zu: whole %s %llu+%llu, chunks %s %llu+%llu", str, k,
                   x->skip ? "skip" : "msg", (unsigned long long)x->off, (unsigned long long)x->len,
                   y->skip ? "skip" : "msg", (unsigned long long)y->off,
                   (unsigned long long)y->len);
    }
    FUZZ_CHECK(a->end == b->end, "%s: whole ends %s, chunks %s", str, sm_err_name((int)a->end),
               sm_err_name((int)b->end));
    FUZZ_CHECK(strcmp(a->detail, b->detail) == 0, "%s: detail '%s' whole, '%s' in chunks", str,
               a->detail, b->detail);
    FUZZ_CHECK((failed || a->pos == b->pos) && a->skipped == b->skipped,
               "%s: pos %llu/%llu skipped %llu/%llu", str, (unsigned long long)a->pos,
               (unsigned long long)b->pos, (unsigned long long)a->skipped,
               (unsigned long long)b->skipped);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t nsizes = data[0] & 31, at = 1;
    char str[SPEC_MAX + 1];
    if (data[1] < 0x40) {
        snprintf(str, sizeof str, "%s", specs[data[1] % NSPECS]);
        at = 2;
    } else {
        const uint8_t *nul = memchr(data + 1, '\0', size - 1);
        if (!nul || (size_t)(nul - (data + 1)) > SPEC_MAX) return 0;
        memcpy(str, data + 1, (size_t)(nul - (data + 1)) + 1);
        at = (size_t)(nul - data) + 1;
    }
    sm_frame_spec spec;
    if (sm_frame_spec_parse(&spec, str, NULL, 0) != 0) return 0;
    if (size - at < nsizes) return 0;
    const uint8_t *sizes = data + at;
    const uint8_t *stream = data + at + nsizes;
    size_t n = size - at - nsizes;

    static run whole, chunked;
    decode_whole(&spec, stream, n, &whole);
    decode_chunked(&spec, stream, n, sizes, nsizes, &chunked);
    compare(str, &whole, &chunked);
    return 0;
}
