/* Frame codecs: encode then decode, in every chunking, and the encoder's answers.
 *
 * The property tests print the spec, the seed and the chunking of a failure;
 * streams are built from fixed seeds, so a failure replays exactly. */
#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_frame.h"

/* Every codec, with options, and some with a small max so that max-size
 * payloads are cheap to test. */
static const char *const rt_specs[] = {
    "fixed:1",
    "fixed:7",
    "fixed:300",
    "line",
    "crlf",
    "nul",
    "delim:\\r\\n\\r\\n",
    "delim:aba",
    "delim:\\x00\\xff",
    "delim:0123456789abcdef",
    "line,max=100",
    "crlf,max=3",
    "len8",
    "len8,adjust=-3",
    "len8,adjust=5,offset=2",
    "len16be",
    "len16le",
    "len16be,adjust=2,offset=1",
    "len16le,max=1000",
    "len32be",
    "len32le",
    "len32le,adjust=-4,offset=3",
    "len32be,max=300",
    "len64be",
    "len64le",
    "len64be,offset=16,adjust=-8",
    "len64le,adjust=1000",
    "ascii:1",
    "ascii:3",
    "ascii:20",
    "ascii:4,max=5000",
    "netstring",
    "netstring,max=500",
    "varint",
    "varint,max=20000",
    "varint,max=127",
    "type:A=4;B=(len16be);0x03=(line);0xff=(varint);C=(netstring);D=(ascii:3);E=(fixed:2)",
    "type:a=(len16be,adjust=2,offset=1);b=(delim:\\r\\n);c=1;d=(len8),max=1000",
    /* A nested eof: the last message of a stream may be of type Z. */
    "type:A=4;B=(line);Z=(eof),max=5000",
    "eof",
    "eof,max=1000",
    "eof,max=1",
    /* oversize=skip changes nothing while no message is oversized. */
    "len32be,oversize=skip",
    "line,oversize=skip",
    "netstring,oversize=skip",
    "delim:aba,oversize=skip",
    /* offset= on every codec with a length header; a default type entry. */
    "varint,offset=1",
    "varint,offset=16,max=300",
    "ascii:3,offset=2",
    "netstring,offset=1",
    "type:A=4;B=(varint,offset=2);*=(len16be,offset=1)",
    "type:*=(varint)",
};

#define NSPECS (sizeof rt_specs / sizeof rt_specs[0])

static void
parse_or_fail(sm_frame_spec *s, const char *str)
{
    char why[256] = "";
    int rc = sm_frame_spec_parse(s, str, why, sizeof why);
    if (rc != 0) fail_msg("sm_frame_spec_parse(\"%s\") = %s: %s", str, sm_err_name(rc), why);
    if (!tf_format_roundtrips(s, why, sizeof why)) fail_msg("spec \"%s\": %s", str, why);
}

/* A payload length in [lo, hi]: often the edges (empty where allowed, the
 * largest the spec can express when that is at most `cap`), often small,
 * sometimes up to cap. */
static uint64_t
pick_len(uint64_t *rng, uint64_t lo, uint64_t hi, uint64_t cap)
{
    uint64_t top = hi < cap ? hi : cap;
    if (top < lo) top = lo;
    switch (tf_rand(rng) % 10) {
    case 0:
        return lo;
    case 1:
        return hi <= cap ? hi : top;
    case 2:
    case 3:
    case 4:
        return tf_range(rng, lo, top - lo > 8 ? lo + 8 : top);
    case 9:
        return tf_range(rng, lo, top);
    default:
        return tf_range(rng, lo, top - lo > 300 ? lo + 300 : top);
    }
}

struct ctx {
    const char *spec_str;
    uint64_t seed;
};

/* Append one random message (random type, length and bytes) and check the
 * encoder's answer: a delimited payload that would be ambiguous on the wire
 * must be refused with -EINVAL; anything in range otherwise must encode. */
static void
add_random(tf_stream *s, const sm_frame_spec *spec, uint64_t *rng, uint64_t cap, bool last,
           const struct ctx *cx)
{
    int type = -1;
    if (spec->kind == SM_FRAME_TYPE) {
        /* A nested eof takes the rest of the stream: only the last message. */
        int mapped[256], nm = 0;
        for (int t = 0; t < 256; t++)
            if (spec->type_map[t] && (last || tf_codec_for(spec, t)->kind != SM_FRAME_EOF))
                mapped[nm++] = t;
        assert_true(nm > 0);
        type = mapped[tf_rand(rng) % (uint64_t)nm];
    }
    const sm_frame_basic *b = tf_codec_for(spec, type);
    assert_non_null(b);
    uint64_t lo, hi;
    tf_payload_range(b, sm_frame_max(spec), &lo, &hi);
    if (lo > hi) fail_msg("spec \"%s\": no payload length fits (type %d)", cx->spec_str, type);
    size_t n = (size_t)pick_len(rng, lo, hi, cap);
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    tf_fill(rng, p, n, b, (unsigned)tf_rand(rng));
    int rc = tf_stream_add(s, spec, p, n, type, rng);
    if (b->kind == SM_FRAME_DELIM && tf_delim_ambiguous(p, n, b->delim, b->delim_len)) {
        if (rc != -EINVAL)
            fail_msg("spec \"%s\" seed 0x%llx: encoding a %zu-byte payload that contains the "
                     "delimiter (or runs into it) gave %s, want EINVAL",
                     cx->spec_str, (unsigned long long)cx->seed, n, sm_err_name(rc));
        tf_make_safe(p, n, b);
        rc = tf_stream_add(s, spec, p, n, type, rng);
    }
    if (rc != 0)
        fail_msg("spec \"%s\" seed 0x%llx: encoding %zu bytes (type %d) gave %s", cx->spec_str,
                 (unsigned long long)cx->seed, n, type, sm_err_name(rc));
    free(p);
}

/* Decode s with `feed` and compare with what was encoded. */
static void
check_decode(const sm_frame_spec *spec, const tf_stream *s, const tf_feed *feed,
             const struct ctx *cx)
{
    tf_run r;
    char why[2048] = "";
    tf_decode(spec, s->p, s->len, feed, &r);
    /* What decode_eof returns: the bytes of a last message framed by eof. */
    int want_eof = 0;
    if (s->ev.n > 0) {
        const tf_event *last = &s->ev.v[s->ev.n - 1];
        const sm_frame_basic *b = tf_codec_for(spec, last->type);
        if (b && b->kind == SM_FRAME_EOF) want_eof = (int)last->frame_len;
    }
    if (r.fail[0])
        snprintf(why, sizeof why, "%s", r.fail);
    else if (r.err)
        snprintf(why, sizeof why, "error %s: %s", sm_err_name(r.err), r.detail);
    else if (!tf_events_equal(&r.ev, &s->ev, why, sizeof why))
        ;
    else if (r.skipped != 0 || r.skip_bytes != 0)
        snprintf(why, sizeof why, "skipped %llu messages", (unsigned long long)r.skipped);
    else if (r.eof_ret != want_eof)
        snprintf(why, sizeof why, "decode_eof gave %d (%s), want %d", r.eof_ret,
                 sm_err_name(r.eof_ret), want_eof);
    else if (r.left != 0 || r.consumed != s->len)
        snprintf(why, sizeof why, "consumed %llu of %zu", (unsigned long long)r.consumed, s->len);
    tf_run_free(&r);
    if (why[0])
        fail_msg("spec \"%s\" seed 0x%llx %s (chunk %zu, split %zu, %zu bytes, %zu messages): %s",
                 cx->spec_str, (unsigned long long)cx->seed, tf_mode_name(feed->mode),
                 feed->max_chunk, feed->split, s->len, s->ev.n, why);
}

/* Streams per spec in test_roundtrip_random. Under TSan, which has nothing
 * to find in this single-threaded program and makes each memory access cost
 * ~50x (this program took over 2 minutes there, nearly its 5-minute
 * ctest timeout on a loaded machine), fewer: the first of the same seeds. */
#if defined(__SANITIZE_THREAD__)
#define RT_STREAMS 4
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RT_STREAMS 4
#endif
#endif
#ifndef RT_STREAMS
#define RT_STREAMS 24
#endif

/* Random messages in random chunkings, for every spec. A decoder that
 * rescans from the start is test_scan_resumes's to find (by its scan
 * position); no time is measured here. */
static void
test_roundtrip_random(void **state)
{
    (void)state;
    int64_t t0 = sm_test_now_ms();
    for (size_t i = 0; i < NSPECS; i++) {
        sm_frame_spec spec;
        parse_or_fail(&spec, rt_specs[i]);
        for (unsigned iter = 0; iter < RT_STREAMS; iter++) {
            struct ctx cx = {rt_specs[i], 0x5eed000000ull + i * 1000 + iter};
            uint64_t rng = cx.seed;
            tf_stream s = {0};
            unsigned nmsg = spec.kind == SM_FRAME_EOF ? 1 : (unsigned)tf_range(&rng, 1, 12);
            uint64_t cap = iter % 6 == 0 ? 70000 : 2000;
            for (unsigned m = 0; m < nmsg; m++)
                add_random(&s, &spec, &rng, cap, m + 1 == nmsg, &cx);

            tf_feed all = {.mode = TF_ALL, .eof = true};
            check_decode(&spec, &s, &all, &cx);
            tf_feed small = {.mode = TF_RANDOM,
                             .seed = rng,
                             .max_chunk = (size_t)tf_range(&rng, 2, 16),
                             .exact = true,
                             .eof = true};
            check_decode(&spec, &s, &small, &cx);
            tf_feed big = {.mode = TF_RANDOM, .seed = rng + 1, .exact = true, .eof = true};
            check_decode(&spec, &s, &big, &cx);
            if (s.len <= 20000) {
                tf_feed bytes = {.mode = TF_BYTES, .eof = true};
                check_decode(&spec, &s, &bytes, &cx);
            }
            tf_stream_free(&s);
        }
    }
    print_message("%zu specs x %d streams: %lld ms\n", (size_t)NSPECS, RT_STREAMS,
                  (long long)(sm_test_now_ms() - t0));
}

/* Every split point of a few small streams: [0, i) then [i, n). */
static void
test_every_split_point(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSPECS; i++) {
        sm_frame_spec spec;
        parse_or_fail(&spec, rt_specs[i]);
        for (unsigned iter = 0; iter < 3; iter++) {
            struct ctx cx = {rt_specs[i], 0x5917000000ull + i * 100 + iter};
            uint64_t rng = cx.seed;
            tf_stream s = {0};
            unsigned nmsg = spec.kind == SM_FRAME_EOF ? 1 : 3;
            for (unsigned m = 0; m < nmsg; m++)
                add_random(&s, &spec, &rng, 12, m + 1 == nmsg, &cx);
            for (size_t at = 0; at <= s.len; at++) {
                tf_feed f = {.mode = TF_SPLIT, .split = at, .exact = true, .eof = true};
                check_decode(&spec, &s, &f, &cx);
            }
            tf_stream_free(&s);
        }
    }
}

/* The encoder refuses exactly the delimited payloads that would not decode
 * back: those containing the delimiter, and those whose end runs into it
 * ("ab" + "aba" = "ababa" ends at the first "aba"). */
static void
test_delimiter_ambiguity(void **state)
{
    (void)state;
    static const char *const specs[] = {"line",
                                        "crlf",
                                        "nul",
                                        "delim:aba",
                                        "delim:aa",
                                        "delim:abab",
                                        "delim:\\r\\n\\r\\n",
                                        "delim:\\x00\\xff"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        sm_frame_spec spec;
        parse_or_fail(&spec, specs[i]);
        uint64_t rng = 0xa3b1 + i;
        unsigned refused = 0;
        for (unsigned iter = 0; iter < 3000; iter++) {
            uint8_t p[12];
            size_t n = (size_t)tf_range(&rng, 0, sizeof p);
            for (size_t k = 0; k < n; k++) {
                uint64_t c = tf_rand(&rng) % (spec.delim_len + 1u);
                p[k] = c < spec.delim_len ? spec.delim[c] : 'x';
            }
            bool amb = tf_delim_ambiguous(p, n, spec.delim, spec.delim_len);
            tf_stream s = {0};
            int rc = tf_stream_add(&s, &spec, p, n, -1, NULL);
            if (amb) {
                refused++;
                if (rc != -EINVAL)
                    fail_msg("spec \"%s\": payload of %zu bytes (iter %u) is ambiguous on the "
                             "wire but encode gave %s",
                             specs[i], n, iter, sm_err_name(rc));
            } else {
                if (rc != 0)
                    fail_msg("spec \"%s\": payload of %zu bytes (iter %u) refused: %s", specs[i], n,
                             iter, sm_err_name(rc));
                struct ctx cx = {specs[i], iter};
                tf_feed all = {.mode = TF_ALL, .exact = true, .eof = true};
                check_decode(&spec, &s, &all, &cx);
            }
            tf_stream_free(&s);
        }
        assert_true(refused > 0);
    }
}

/* A payload of exactly the default max (16 MiB) goes through; one byte more
 * does not. */
static void
test_default_max_size(void **state)
{
    (void)state;
    static const char *const specs[] = {"len32be", "line", "netstring", "varint"};
    size_t n = SM_FRAME_DEFAULT_MAX;
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, 'm', n + 1);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        sm_frame_spec spec;
        parse_or_fail(&spec, specs[i]);
        tf_stream s = {0};
        SM_ASSERT_OK(tf_stream_add(&s, &spec, p, n, -1, NULL));
        struct ctx cx = {specs[i], 0};
        tf_feed all = {.mode = TF_ALL, .eof = true};
        check_decode(&spec, &s, &all, &cx);
        tf_feed chunks = {.mode = TF_RANDOM, .seed = i, .max_chunk = 1 << 20, .eof = true};
        check_decode(&spec, &s, &chunks, &cx);
        tf_stream_free(&s);
        sm_frame_hdr h;
        SM_ASSERT_ERR(sm_frame_encode(&spec, p, n + 1, -1, &h), -EMSGSIZE);
    }
    /* A line of max + 1 bytes without its newline is already too long. */
    sm_frame_spec line;
    parse_or_fail(&line, "line");
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &line);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_frame_decode(&d, p, n, &m), -EAGAIN);
    SM_ASSERT_ERR(sm_frame_decode(&d, p, n + 1, &m), -EMSGSIZE);
    free(p);
}

/* ---- the encoder --------------------------------------------------------------------- */

struct kat {
    const char *spec;
    int type;
    const char *payload;
    size_t payload_len;
    const char *head;
    size_t head_len;
    const char *tail;
    size_t tail_len;
};

#define S(x) x, sizeof(x) - 1

static const struct kat kats[] = {
    {"len16be,adjust=2,offset=1", -1, S("hi"), S("\x00\x00\x04"), S("")},
    {"len16le", -1, S("abc"), S("\x03\x00"), S("")},
    {"len32be", -1, S("abc"), S("\x00\x00\x00\x03"), S("")},
    {"len32le", -1, S("abc"), S("\x03\x00\x00\x00"), S("")},
    {"len64be", -1, S("x"), S("\x00\x00\x00\x00\x00\x00\x00\x01"), S("")},
    {"len64le,adjust=-1", -1, S("ab"), S("\x01\x00\x00\x00\x00\x00\x00\x00"), S("")},
    {"len8,offset=3", -1, S(""), S("\x00\x00\x00\x00"), S("")},
    {"len8", -1, S("hello"), S("\x05"), S("")},
    {"varint", -1, S(""), S("\x00"), S("")},
    {"varint", -1, S("abc"), S("\x03"), S("")},
    {"netstring", -1, S("hello world!"), S("12:"), S(",")},
    {"netstring", -1, S(""), S("0:"), S(",")},
    {"ascii:5", -1, S("hello"), S("00005"), S("")},
    {"ascii:1", -1, S(""), S("0"), S("")},
    {"line", -1, S("hi"), S(""), S("\n")},
    {"crlf", -1, S("hi"), S(""), S("\r\n")},
    {"nul", -1, S("hi"), S(""), S("\0")},
    {"delim:\\x00\\xff", -1, S("hi"), S(""), S("\x00\xff")},
    {"fixed:3", -1, S("abc"), S(""), S("")},
    {"eof", -1, S("anything\n"), S(""), S("")},
    {"type:A=4;B=(len16be);0x03=(line)", 'A', S("abcd"), S("A"), S("")},
    {"type:A=4;B=(len16be);0x03=(line)", 'B', S("xyz"), S("B\x00\x03"), S("")},
    {"type:A=4;B=(len16be);0x03=(line)", 3, S("hi"), S("\x03"), S("\n")},
    {"type:a=(netstring)", 'a', S("hey"), S("a3:"), S(",")},
};

static void
test_encode_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
        const struct kat *k = &kats[i];
        sm_frame_spec spec;
        parse_or_fail(&spec, k->spec);
        sm_frame_hdr h;
        memset(&h, 0xcc, sizeof h);
        int rc = sm_frame_encode(&spec, k->payload, k->payload_len, k->type, &h);
        if (rc != 0) fail_msg("kat %zu (%s): encode gave %s", i, k->spec, sm_err_name(rc));
        if (h.head_len != k->head_len || memcmp(h.head, k->head, k->head_len) != 0)
            fail_msg("kat %zu (%s): wrong head (%u bytes)", i, k->spec, h.head_len);
        if (h.tail_len != k->tail_len || memcmp(h.tail, k->tail, k->tail_len) != 0)
            fail_msg("kat %zu (%s): wrong tail (%u bytes)", i, k->spec, h.tail_len);

        /* And the wire bytes decode back. */
        size_t n = h.head_len + k->payload_len + h.tail_len;
        uint8_t *w = malloc(n);
        assert_non_null(w);
        memcpy(w, h.head, h.head_len);
        memcpy(w + h.head_len, k->payload, k->payload_len);
        memcpy(w + h.head_len + k->payload_len, h.tail, h.tail_len);
        sm_frame_decoder d;
        sm_frame_decoder_init(&d, &spec);
        sm_frame_msg m;
        ssize_t r = spec.kind == SM_FRAME_EOF ? sm_frame_decode_eof(&d, w, n, &m)
                                              : sm_frame_decode(&d, w, n, &m);
        if (r != (ssize_t)n)
            fail_msg("kat %zu (%s): decode gave %zd (%s)", i, k->spec, r, sm_err_name((int)r));
        assert_non_null(m.data);
        assert_int_equal(m.len, k->payload_len);
        assert_memory_equal(m.data, k->payload, k->payload_len);
        assert_ptr_equal(m.frame, w);
        assert_int_equal(m.frame_len, n);
        assert_int_equal(m.type, spec.kind == SM_FRAME_TYPE ? k->type : -1);
        free(w);
    }
}

/* Known wire bytes, including varints of every width. */
static void
test_decode_known_answers(void **state)
{
    (void)state;
    sm_frame_spec spec;
    sm_frame_decoder d;
    sm_frame_msg m;

    parse_or_fail(&spec, "netstring");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t ns[] = "12:hello world!,0:,";
    assert_int_equal(sm_frame_decode(&d, ns, sizeof ns - 1, &m), 16);
    assert_int_equal(m.len, 12);
    assert_memory_equal(m.data, "hello world!", 12);
    assert_int_equal(sm_frame_decode(&d, ns + 16, 3, &m), 3);
    assert_int_equal(m.len, 0);
    assert_int_equal(d.pos, 19);

    parse_or_fail(&spec, "len16be,adjust=2,offset=1");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t lp[] = "\xaa\x00\x04hi";
    assert_int_equal(sm_frame_decode(&d, lp, sizeof lp - 1, &m), 5);
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "hi", 2);
    assert_ptr_equal(m.frame, lp);
    assert_int_equal(m.frame_len, 5);

    /* Varints: 1 to 10 bytes; 0x7f, 0x80 and 2^64 - 1 style edges. */
    parse_or_fail(&spec, "varint,max=70000");
    const struct {
        const char *hdr;
        size_t hdr_len;
        size_t len;
    } v[] = {
        {S("\x7f"), 127},           {S("\x80\x01"), 128}, {S("\xff\x7f"), 16383},
        {S("\x80\x80\x01"), 16384}, {S("\xac\x02"), 300}, {S("\x00"), 0},
    };
    static uint8_t buf[70016];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sm_frame_decoder_init(&d, &spec);
        memcpy(buf, v[i].hdr, v[i].hdr_len);
        memset(buf + v[i].hdr_len, 'v', v[i].len);
        size_t n = v[i].hdr_len + v[i].len;
        if (n) SM_ASSERT_ERR(sm_frame_decode(&d, buf, n - 1, &m), -EAGAIN);
        ssize_t r = sm_frame_decode(&d, buf, n, &m);
        if (r != (ssize_t)n)
            fail_msg("varint %zu: decode gave %zd (%s)", i, r, sm_err_name((int)r));
        assert_int_equal(m.len, v[i].len);
        assert_ptr_equal(m.data, buf + v[i].hdr_len);
        sm_frame_hdr h;
        SM_ASSERT_OK(sm_frame_encode(&spec, buf, v[i].len, -1, &h));
        assert_int_equal(h.head_len, v[i].hdr_len); /* minimal varints */
        assert_memory_equal(h.head, v[i].hdr, v[i].hdr_len);
    }

    /* The largest len64 value the default max allows, with the high bytes zero. */
    parse_or_fail(&spec, "len64le,max=5");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t l64[] = "\x05\x00\x00\x00\x00\x00\x00\x00"
                          "abcde";
    assert_int_equal(sm_frame_decode(&d, l64, sizeof l64 - 1, &m), 13);
    assert_int_equal(m.len, 5);

    /* ascii:20 with the largest 64-bit-safe small value. */
    parse_or_fail(&spec, "ascii:20");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t a20[] = "00000000000000000003abc";
    assert_int_equal(sm_frame_decode(&d, a20, sizeof a20 - 1, &m), 23);
    assert_memory_equal(m.data, "abc", 3);
}

/* Offset bytes of a length prefix are written as zeros. */
static void
test_encode_offset_zeros(void **state)
{
    (void)state;
    sm_frame_spec spec;
    parse_or_fail(&spec, "len64be,offset=16,adjust=-8");
    sm_frame_hdr h;
    memset(&h, 0xcc, sizeof h);
    uint8_t p[10] = {0};
    SM_ASSERT_OK(sm_frame_encode(&spec, p, sizeof p, -1, &h));
    assert_int_equal(h.head_len, 24);
    for (int i = 0; i < 16; i++)
        assert_int_equal(h.head[i], 0);
    assert_memory_equal(h.head + 16, "\x00\x00\x00\x00\x00\x00\x00\x02", 8);
    assert_int_equal(h.tail_len, 0);
}

struct refusal {
    const char *spec;
    int type;
    size_t len;
    const char *payload; /* NULL: len bytes of 'z' */
    int want;
};

static const struct refusal refusals[] = {
    {"len8", -1, 300, NULL, -EMSGSIZE},
    {"len8", -1, 256, NULL, -EMSGSIZE},
    {"len8", -1, 255, NULL, 0},
    {"len8,adjust=1", -1, 255, NULL, -EMSGSIZE},
    {"len8,adjust=1", -1, 254, NULL, 0},
    {"len8,adjust=-3", -1, 2, NULL, -EMSGSIZE},
    {"len8,adjust=-3", -1, 3, NULL, 0},
    {"len8,adjust=-3", -1, 258, NULL, 0},
    {"len8,adjust=-3", -1, 259, NULL, -EMSGSIZE},
    {"len16be", -1, 65536, NULL, -EMSGSIZE},
    {"len16le", -1, 65535, NULL, 0},
    {"len32be,max=4", -1, 5, NULL, -EMSGSIZE},
    {"len32be,max=4", -1, 4, NULL, 0},
    {"line,max=4", -1, 5, NULL, -EMSGSIZE},
    {"netstring,max=4", -1, 5, NULL, -EMSGSIZE},
    {"varint,max=4", -1, 5, NULL, -EMSGSIZE},
    {"ascii:3,max=4", -1, 5, NULL, -EMSGSIZE},
    {"eof,max=4", -1, 5, NULL, -EMSGSIZE},
    {"eof,max=4", -1, 4, NULL, 0},
    {"fixed:4", -1, 3, NULL, -EMSGSIZE},
    {"fixed:4", -1, 5, NULL, -EMSGSIZE},
    {"fixed:4", -1, 4, NULL, 0},
    {"ascii:2", -1, 100, NULL, -EMSGSIZE},
    {"ascii:2", -1, 99, NULL, 0},
    {"ascii:1", -1, 10, NULL, -EMSGSIZE},
    {"line", -1, 3, "a\nb", -EINVAL},
    {"line", -1, 3, "ab\n", -EINVAL},
    {"line", -1, 1, "\n", -EINVAL},
    {"line", -1, 3, "a\rb", 0},
    {"crlf", -1, 4, "a\r\nb", -EINVAL},
    {"crlf", -1, 2, "a\r", 0},
    {"crlf", -1, 2, "\na", 0},
    {"nul", -1, 2, "a\0", -EINVAL},
    {"delim:aba", -1, 2, "ab", -EINVAL},
    {"delim:aba", -1, 3, "xab", -EINVAL},
    {"delim:aba", -1, 2, "ba", 0},
    {"delim:aba", -1, 4, "abba", 0}, /* "abbaaba": first "aba" at 4 */
    {"delim:aba", -1, 5, "xabax", -EINVAL},
    {"type:A=4;B=(len16be);0x03=(line)", 'C', 4, NULL, -EPROTO},
    {"type:A=4;B=(len16be);0x03=(line)", 0, 4, NULL, -EPROTO},
    {"type:A=4;B=(len16be);0x03=(line)", 'A', 3, NULL, -EMSGSIZE},
    {"type:A=4;B=(len16be);0x03=(line)", 'B', 65536, NULL, -EMSGSIZE},
    {"type:A=4;B=(len16be);0x03=(line)", 3, 2, "a\n", -EINVAL},
    {"type:A=4;B=(len16be);0x03=(line),max=10", 'B', 11, NULL, -EMSGSIZE},
};

static void
test_encode_refusals(void **state)
{
    (void)state;
    uint8_t *z = malloc(70000);
    assert_non_null(z);
    memset(z, 'z', 70000);
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const struct refusal *f = &refusals[i];
        sm_frame_spec spec;
        parse_or_fail(&spec, f->spec);
        sm_frame_hdr h;
        const void *p = f->payload ? (const void *)f->payload : (const void *)z;
        int rc = sm_frame_encode(&spec, p, f->len, f->type, &h);
        if (rc != f->want)
            fail_msg("row %zu: encode(\"%s\", %zu bytes, type %d) = %s, want %s", i, f->spec,
                     f->len, f->type, sm_err_name(rc), sm_err_name(f->want));
    }
    /* An empty payload may be NULL. */
    sm_frame_spec spec;
    sm_frame_hdr h;
    parse_or_fail(&spec, "line");
    SM_ASSERT_OK(sm_frame_encode(&spec, NULL, 0, -1, &h));
    assert_int_equal(h.tail_len, 1);
    free(z);
}

/* ---- end of stream ------------------------------------------------------------------- */

static void
test_decode_eof(void **state)
{
    (void)state;
    sm_frame_spec spec;
    sm_frame_decoder d;
    sm_frame_msg m;
    const uint8_t hello[] = "hello";

    /* eof framing: the rest is the message, maybe empty. */
    parse_or_fail(&spec, "eof");
    sm_frame_decoder_init(&d, &spec);
    SM_ASSERT_ERR(sm_frame_decode(&d, hello, 5, &m), -EAGAIN);
    assert_int_equal(sm_frame_decode_eof(&d, hello, 5, &m), 5);
    assert_ptr_equal(m.data, hello);
    assert_int_equal(m.len, 5);
    assert_ptr_equal(m.frame, hello);
    assert_int_equal(m.frame_len, 5);
    assert_int_equal(m.type, -1);
    sm_frame_decoder_init(&d, &spec);
    memset(&m, 0, sizeof m);
    assert_int_equal(sm_frame_decode_eof(&d, hello, 0, &m), 0);
    assert_non_null(m.data); /* an empty message, not "no message" */
    assert_int_equal(m.len, 0);
    sm_frame_decoder_init(&d, &spec);
    memset(&m, 0, sizeof m);
    assert_int_equal(sm_frame_decode_eof(&d, NULL, 0, &m), 0); /* nothing ever received */
    assert_non_null(m.data);
    assert_int_equal(m.len, 0);
    parse_or_fail(&spec, "eof,max=4");
    sm_frame_decoder_init(&d, &spec);
    SM_ASSERT_ERR(sm_frame_decode_eof(&d, hello, 5, &m), -EMSGSIZE);
    sm_frame_decoder_init(&d, &spec);
    assert_int_equal(sm_frame_decode_eof(&d, hello, 4, &m), 4);

    /* Other codecs: 0 at a boundary, SM_ERR_TRUNCATED inside a message. */
    static const struct {
        const char *spec;
        const char *in;
        size_t len;
        size_t whole; /* bytes of whole messages at the front */
    } rows[] = {
        {"line", S(""), 0},
        {"line", S("abc\n"), 4},
        {"line", S("abc\nde"), 4},
        {"crlf", S("abc\r"), 0},
        {"fixed:4", S("abcdabc"), 4},
        {"len16be", S("\x00"), 0},
        {"len16be",
         S("\x00\x03"
           "ab"),
         0},
        {"len16be",
         S("\x00\x02"
           "ab"),
         4},
        {"len16be,offset=2", S("xy"), 0},
        {"netstring", S("3:ab"), 0},
        {"netstring", S("3:abc"), 0},
        {"netstring", S("3"), 0},
        {"varint", S("\x85"), 0},
        {"varint", S("\x01"), 0},
        {"ascii:3", S("00"), 0},
        {"type:A=4;B=(len16be)", S("A12"), 0},
        {"type:A=4;B=(len16be)", S("B\x00"), 0},
        {"type:A=4;B=(len16be)", S("A1234B"), 5},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        parse_or_fail(&spec, rows[i].spec);
        sm_frame_decoder_init(&d, &spec);
        const uint8_t *in = (const uint8_t *)rows[i].in;
        size_t off = 0;
        while (off < rows[i].whole) {
            ssize_t r = sm_frame_decode(&d, in + off, rows[i].len - off, &m);
            if (r <= 0)
                fail_msg("row %zu (%s): decode gave %s", i, rows[i].spec, sm_err_name((int)r));
            off += (size_t)r;
        }
        assert_int_equal(off, rows[i].whole);
        SM_ASSERT_ERR(sm_frame_decode(&d, in + off, rows[i].len - off, &m), -EAGAIN);
        ssize_t r = sm_frame_decode_eof(&d, in + off, rows[i].len - off, &m);
        int want = off == rows[i].len ? 0 : SM_ERR_TRUNCATED;
        if (r != want)
            fail_msg("row %zu (%s, %zu bytes left): decode_eof gave %s, want %s", i, rows[i].spec,
                     rows[i].len - off, sm_err_name((int)r), sm_err_name(want));
    }
}

/* Under oversize=skip a message being skipped is still a message in progress
 * at EOF. */
static void
test_decode_eof_while_skipping(void **state)
{
    (void)state;
    sm_frame_spec spec;
    sm_frame_decoder d;
    sm_frame_msg m;
    parse_or_fail(&spec, "len16be,max=2,oversize=skip");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t in[] = "\x00\x05"
                         "abcde";
    size_t off = 0, fed = 2;
    /* The header alone is enough to start skipping. */
    for (int i = 0; i < 4 && off < fed; i++) {
        m.data = tf_sentinel;
        ssize_t r = sm_frame_decode(&d, in + off, fed - off, &m);
        if (r <= 0) fail_msg("skipping header: %s", sm_err_name((int)r));
        assert_null(m.data);
        off += (size_t)r;
    }
    assert_int_equal(off, 2);
    SM_ASSERT_ERR(sm_frame_decode_eof(&d, in + off, 0, &m), SM_ERR_TRUNCATED);

    sm_frame_decoder_init(&d, &spec);
    off = 0;
    fed = 5; /* header + 3 of the 5 payload bytes */
    for (int i = 0; i < 8 && off < fed; i++) {
        m.data = tf_sentinel;
        ssize_t r = sm_frame_decode(&d, in + off, fed - off, &m);
        if (r <= 0) fail_msg("skipping: %s", sm_err_name((int)r));
        assert_null(m.data);
        off += (size_t)r;
    }
    assert_int_equal(off, 5);
    SM_ASSERT_ERR(sm_frame_decode_eof(&d, in + off, 0, &m), SM_ERR_TRUNCATED);
}

/* ---- incremental scanning -------------------------------------------------------------- */

/* Feed a long delimited frame one byte at a time and check through the
 * decoder's scan field that every call resumes where the last one stopped:
 * that, not a time bound, is what rules out O(n^2) rescanning. */
static void
scan_resumes(const char *spec_str, size_t n)
{
    sm_frame_spec spec;
    parse_or_fail(&spec, spec_str);
    size_t dl = spec.delim_len;
    uint8_t *buf = malloc(n + dl);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)('a' + i % 7); /* never the delimiter */
    memcpy(buf + n, spec.delim, dl);
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &spec);
    sm_frame_msg m;
    for (size_t k = 1; k <= n; k++) {
        ssize_t r = sm_frame_decode(&d, buf, k, &m);
        if (r != -EAGAIN) fail_msg("%s: %zu bytes gave %s", spec_str, k, sm_err_name((int)r));
        /* Everything but a possible partial delimiter at the end was searched. */
        if (d.scan > k || d.scan + (dl - 1) < k)
            fail_msg("%s: scan %llu after %zu bytes (delimiter %zu bytes)", spec_str,
                     (unsigned long long)d.scan, k, dl);
    }
    for (size_t k = n + 1; k < n + dl; k++)
        SM_ASSERT_ERR(sm_frame_decode(&d, buf, k, &m), -EAGAIN);
    assert_int_equal(sm_frame_decode(&d, buf, n + dl, &m), (ssize_t)(n + dl));
    assert_int_equal(m.len, n);
    /* A new frame starts a new scan. */
    SM_ASSERT_ERR(sm_frame_decode(&d, buf, 3, &m), -EAGAIN);
    assert_true(d.scan <= 3);
    free(buf);
}

static void
test_scan_resumes(void **state)
{
    (void)state;
    scan_resumes("line", 1u << 20);
    scan_resumes("crlf", 1u << 18);
    scan_resumes("delim:0123456789abcdef", 1u << 18);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_known_answers),
        cmocka_unit_test(test_decode_known_answers),
        cmocka_unit_test(test_encode_offset_zeros),
        cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_decode_eof),
        cmocka_unit_test(test_decode_eof_while_skipping),
        cmocka_unit_test(test_delimiter_ambiguity),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_default_max_size),
        cmocka_unit_test(test_scan_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
