/* Fuzz target: the frame decoders on arbitrary bytes.
 *
 * Input: byte 0 picks a spec from the list below, byte 1 a chunking, the rest
 * is the stream. The stream is decoded all at once and in the chosen chunks,
 * through a model of a caller's receive buffer that moves to an exact-size
 * allocation on every change (test_frame.h), which checks on every call:
 * consumed <= buffered, the message inside the consumed bytes, its frame the
 * consumed bytes, len <= max, the type byte, errors sticky with a detail,
 * decode_eof's answer. Then: both chunkings agree, and every decoded message
 * encodes again and decodes back to the same payload and type.
 */
#include <string.h>

#include "fuzz.h"
#include "test_frame.h"

/* Small maxes, so oversize paths are reachable with small inputs; both
 * oversize policies; every codec and option. Append only: the seed corpus
 * names specs by index. */
static const char *const specs[] = {
    "fixed:3",
    "line,max=16",
    "crlf,max=16,oversize=skip",
    "nul",
    "delim:aba,max=8",
    "delim:aba,max=8,oversize=skip",
    "delim:\\r\\n\\r\\n,max=32,oversize=skip",
    "len8,max=32",
    "len8,adjust=-3,max=32,oversize=skip",
    "len16be,adjust=2,offset=1,max=64",
    "len16le,max=64,oversize=skip",
    "len32be,max=64",
    "len32le,adjust=-4,offset=3,max=64,oversize=skip",
    "len64be,max=64",
    "len64le,adjust=-100,max=200",
    "len64be,adjust=1000,max=64,oversize=skip",
    "ascii:3,max=64",
    "ascii:20,max=64,oversize=skip",
    "ascii:1",
    "netstring,max=64",
    "netstring,max=16,oversize=skip",
    "varint,max=64",
    "varint,max=16,oversize=skip",
    "type:A=4;B=(len16be);0x03=(line);0xff=(varint);C=(netstring),max=64",
    "type:A=4;B=(len16be);C=(line);D=(netstring);E=(delim:aba),max=16,oversize=skip",
    "type:a=(len16be,adjust=2,offset=1);b=(delim:\\r\\n);c=1;d=(ascii:2);Z=(eof),max=64",
    "eof,max=64",
    "eof,max=16,oversize=skip",
    "len32be",
    "line",
    "varint",
    "delim:0123456789abcdef,max=32,oversize=skip",
    "varint,offset=1,max=64",
    "ascii:2,offset=3,max=64,oversize=skip",
    "netstring,offset=2,max=16,oversize=skip",
    "type:A=4;B=(line);*=(varint,offset=1),max=64",
    "resp,max=64",
    "resp,max=256,depth=3",
};

#define NSPECS (sizeof specs / sizeof specs[0])

/* Messages lie in order inside the stream, each inside its frame, frames
 * back to back except where skipped bytes lie between them. */
static void
check_layout(const char *str, const sm_frame_spec *spec, const tf_run *r, size_t n)
{
    uint64_t end = 0, max = sm_frame_max(spec);
    for (size_t i = 0; i < r->ev.n; i++) {
        const tf_event *e = &r->ev.v[i];
        FUZZ_CHECK(e->frame_off >= end, "%s: message %zu overlaps the one before", str, i);
        FUZZ_CHECK(spec->oversize == SM_OVERSIZE_SKIP || e->frame_off == end,
                   "%s: gap before message %zu under oversize=close", str, i);
        FUZZ_CHECK(e->frame_len <= n && e->frame_off <= n - e->frame_len,
                   "%s: message %zu past the stream", str, i);
        FUZZ_CHECK(e->off >= e->frame_off && e->len <= e->frame_len &&
                       e->off - e->frame_off <= e->frame_len - e->len,
                   "%s: message %zu payload outside its frame", str, i);
        FUZZ_CHECK(e->len <= max, "%s: message %zu over max", str, i);
        end = e->frame_off + e->frame_len;
    }
    FUZZ_CHECK(r->consumed <= n, "%s: consumed %llu of %zu", str, (unsigned long long)r->consumed,
               n);
}

/* Every decoded message is something the encoder accepts, and its encoding
 * decodes back to the same payload and type. */
static void
check_reencode(const char *str, const sm_frame_spec *spec, const tf_run *r, const uint8_t *stream)
{
    for (size_t i = 0; i < r->ev.n; i++) {
        const tf_event *e = &r->ev.v[i];
        tf_stream s = {0};
        int rc = tf_stream_add(&s, spec, stream + e->off, (size_t)e->len, e->type, NULL);
        FUZZ_CHECK(rc == 0, "%s: message %zu (%llu bytes, type %d) does not encode: %s", str, i,
                   (unsigned long long)e->len, e->type, sm_err_name(rc));
        tf_run back;
        tf_feed all = {.mode = TF_ALL, .exact = true, .eof = true};
        tf_decode(spec, s.p, s.len, &all, &back);
        FUZZ_CHECK(!back.fail[0], "%s: re-encoded message %zu: %s", str, i, back.fail);
        FUZZ_CHECK(back.err == 0 && back.ev.n == 1, "%s: re-encoded message %zu gave %s, %zu msgs",
                   str, i, sm_err_name(back.err), back.ev.n);
        const tf_event *b = &back.ev.v[0];
        FUZZ_CHECK(b->len == e->len && b->type == e->type &&
                       memcmp(s.p + b->off, stream + e->off, (size_t)e->len) == 0,
                   "%s: re-encoded message %zu decodes differently", str, i);
        tf_run_free(&back);
        tf_stream_free(&s);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const char *str = specs[data[0] % NSPECS];
    sm_frame_spec spec;
    char why[1024] = "";
    int rc = sm_frame_spec_parse(&spec, str, why, sizeof why);
    FUZZ_CHECK(rc == 0, "%s: %s", str, why);
    FUZZ_CHECK(tf_format_roundtrips(&spec, why, sizeof why), "%s: %s", str, why);
    uint8_t mode = data[1];
    const uint8_t *stream = data + 2;
    size_t n = size - 2;

    tf_run all;
    tf_feed fa = {.mode = TF_ALL, .exact = true, .eof = true};
    tf_decode(&spec, stream, n, &fa, &all);
    FUZZ_CHECK(!all.fail[0], "%s all at once: %s", str, all.fail);

    tf_feed fb = {.exact = true, .eof = true};
    switch (mode & 3) {
    case 0:
        fb.mode = TF_BYTES;
        break;
    case 1:
        fb.mode = TF_SPLIT;
        fb.split = n ? (size_t)(mode >> 2) % (n + 1) : 0;
        break;
    default:
        fb.mode = TF_RANDOM;
        fb.seed = mode;
        fb.max_chunk = (size_t)(mode >> 2) + 1;
        break;
    }
    tf_run chunked;
    tf_decode(&spec, stream, n, &fb, &chunked);
    FUZZ_CHECK(!chunked.fail[0], "%s %s: %s", str, tf_mode_name(fb.mode), chunked.fail);
    FUZZ_CHECK(tf_runs_agree(&all, &chunked, why, sizeof why), "%s all at once vs %s: %s", str,
               tf_mode_name(fb.mode), why);

    check_layout(str, &spec, &all, n);
    check_reencode(str, &spec, &all, stream);
    tf_run_free(&all);
    tf_run_free(&chunked);
    return 0;
}
