/* Fuzz target: the resp codec on arbitrary bytes.
 *
 * Input: byte 0 picks a resp spec (small maxes and depths, so the bounds are
 * reachable), byte 1 a chunking, the rest is the stream. Decoded all at once,
 * byte by byte and in the chosen chunks through the receive-buffer model of
 * test_frame.h (which checks every call's answer), the three must agree; every
 * message must be exactly one RESP value by the encoder's own check, within
 * max, and its first byte its type (or -1 for an inline command).
 */
#include <string.h>

#include "fuzz.h"
#include "test_frame.h"

static const char *const specs[] = {
    "resp",
    "resp,max=64",
    "resp,max=300,depth=2",
    "resp,depth=1",
};

#define NSPECS (sizeof specs / sizeof specs[0])

static void
check_messages(const char *str, const sm_frame_spec *spec, const tf_run *r, const uint8_t *stream)
{
    for (size_t i = 0; i < r->ev.n; i++) {
        const tf_event *e = &r->ev.v[i];
        if (e->len == 0 && e->frame_len == 0) continue;
        const uint8_t *m = stream + e->off;
        FUZZ_CHECK(e->off == e->frame_off && e->len == e->frame_len,
                   "%s: message %zu is not its whole frame", str, i);
        FUZZ_CHECK(e->len <= sm_frame_max(spec), "%s: message %zu over max", str, i);
        int want = strchr("+-:$*_#,(!=%~|>", m[0]) && m[0] ? m[0] : -1;
        FUZZ_CHECK(e->type == want, "%s: message %zu has type %d, want %d", str, i, e->type, want);
        sm_frame_hdr h;
        int rc = sm_frame_encode(spec, m, (size_t)e->len, -1, &h);
        FUZZ_CHECK(rc == 0, "%s: message %zu does not encode: %s", str, i, sm_err_name(rc));
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
    uint8_t mode = data[1];
    const uint8_t *stream = data + 2;
    size_t n = size - 2;

    tf_run all, bytes, chunked;
    tf_feed fa = {.mode = TF_ALL, .exact = true, .eof = true};
    tf_feed fy = {.mode = TF_BYTES, .exact = true, .eof = true};
    tf_feed fc = {.mode = TF_RANDOM,
                  .exact = true,
                  .eof = true,
                  .seed = mode,
                  .max_chunk = (size_t)(mode >> 2) + 1};
    tf_decode(&spec, stream, n, &fa, &all);
    FUZZ_CHECK(!all.fail[0], "%s all at once: %s", str, all.fail);
    tf_decode(&spec, stream, n, &fy, &bytes);
    FUZZ_CHECK(!bytes.fail[0], "%s bytes: %s", str, bytes.fail);
    tf_decode(&spec, stream, n, &fc, &chunked);
    FUZZ_CHECK(!chunked.fail[0], "%s chunks: %s", str, chunked.fail);
    FUZZ_CHECK(tf_runs_agree(&all, &bytes, why, sizeof why), "%s all vs bytes: %s", str, why);
    FUZZ_CHECK(tf_runs_agree(&all, &chunked, why, sizeof why), "%s all vs chunks: %s", str, why);
    check_messages(str, &spec, &all, stream);
    tf_run_free(&all);
    tf_run_free(&bytes);
    tf_run_free(&chunked);
    return 0;
}
