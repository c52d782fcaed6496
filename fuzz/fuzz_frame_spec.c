/* Fuzz target: frame spec strings.
 *
 * Input: a spec string (up to the first NUL). A bad one must give SM_ERR_SPEC
 * with an explanation. A good one must pass sm_frame_spec_check, format to a
 * canonical string that parses back to the same fields and formats the same
 * again (a fixed point), and carry a short message of every type it maps
 * through encode and decode.
 */
#include <string.h>

#include "fuzz.h"
#include "test_frame.h"

#define MAX_INPUT 4096

/* The canonical string of a type: spec that maps all 256 bytes to distinct-
 * looking nested specs is long; this is far more than any can need. */
static char out[1 << 16], out2[1 << 16];

static void
check_messages(const char *str, const sm_frame_spec *spec)
{
    uint64_t max = sm_frame_max(spec);
    for (int t = spec->kind == SM_FRAME_TYPE ? 0 : -1; t < 256; t++) {
        const sm_frame_basic *b = tf_codec_for(spec, t);
        if (!b) {
            sm_frame_hdr h;
            int rc = sm_frame_encode(spec, "", 0, t, &h);
            FUZZ_CHECK(rc == -EPROTO, "\"%s\": unmapped type 0x%02x encodes: %s", str, t,
                       sm_err_name(rc));
            continue;
        }
        uint64_t lo, hi;
        tf_payload_range(b, max, &lo, &hi);
        if (lo <= hi && lo <= 64) {
            size_t n = (size_t)(hi < 5 ? hi : (lo > 5 ? lo : 5));
            uint8_t p[64];
            memset(p, 'q', sizeof p);
            p[0] = 0;
            if (n > 1) p[1] = '\n';
            tf_make_safe(p, n, b);
            bool too_big = false;
            if (b->kind == SM_FRAME_RESP) { /* a payload must be one RESP value */
                n = 5;
                memcpy(p, "+qq\r\n", n);
                too_big = hi < n; /* max= below the smallest reply ("resp,max=1") */
            }
            tf_stream s = {0};
            int rc = tf_stream_add(&s, spec, p, n, t, NULL);
            if (too_big) {
                FUZZ_CHECK(rc == -EMSGSIZE, "\"%s\": %zu bytes over max=%llu encode: %s", str, n,
                           (unsigned long long)hi, sm_err_name(rc));
                tf_stream_free(&s);
                if (spec->kind != SM_FRAME_TYPE) break;
                continue;
            }
            FUZZ_CHECK(rc == 0, "\"%s\": %zu bytes of type %d do not encode: %s", str, n, t,
                       sm_err_name(rc));
            tf_run r;
            tf_feed all = {.mode = TF_ALL, .exact = true, .eof = true};
            tf_decode(spec, s.p, s.len, &all, &r);
            FUZZ_CHECK(!r.fail[0], "\"%s\" type %d: %s", str, t, r.fail);
            char why[512];
            FUZZ_CHECK(r.err == 0 && tf_events_equal(&r.ev, &s.ev, why, sizeof why),
                       "\"%s\" type %d: %s %s", str, t, sm_err_name(r.err), r.err ? "" : why);
            tf_run_free(&r);
            tf_stream_free(&s);
        }
        if (spec->kind != SM_FRAME_TYPE) break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT) return 0;
    char str[MAX_INPUT + 1];
    memcpy(str, data, size);
    str[size] = '\0';

    sm_frame_spec a, b;
    char why[256];
    memset(why, 'x', sizeof why);
    int rc = sm_frame_spec_parse(&a, str, why, sizeof why);
    if (rc != 0) {
        FUZZ_CHECK(rc == SM_ERR_SPEC, "\"%s\": parse gave %s", str, sm_err_name(rc));
        FUZZ_CHECK(memchr(why, '\0', sizeof why) && why[0] != '\0',
                   "\"%s\": no explanation for a bad spec", str);
        return 0;
    }
    rc = sm_frame_spec_check(&a, why, sizeof why);
    FUZZ_CHECK(rc == 0, "\"%s\" parses but fails the check: %s", str, why);

    int n = sm_frame_spec_format(&a, out, sizeof out);
    FUZZ_CHECK(n > 0 && (size_t)n == strlen(out), "\"%s\": format gave %d", str, n);
    rc = sm_frame_spec_parse(&b, out, why, sizeof why);
    FUZZ_CHECK(rc == 0, "\"%s\" formats as \"%s\", which does not parse: %s", str, out, why);
    FUZZ_CHECK(tf_spec_equal(&a, &b, why, sizeof why),
               "\"%s\" formats as \"%s\", which parses differently: %s", str, out, why);
    int n2 = sm_frame_spec_format(&b, out2, sizeof out2);
    FUZZ_CHECK(n2 == n && strcmp(out, out2) == 0, "\"%s\": \"%s\" formats as \"%s\"", str, out,
               out2);
    /* One byte short: snprintf-style, the same length and a truncated prefix. */
    FUZZ_CHECK(sm_frame_spec_format(&a, out2, (size_t)n) == n && strlen(out2) == (size_t)n - 1 &&
                   memcmp(out, out2, (size_t)n - 1) == 0,
               "\"%s\": format into %d bytes did not truncate snprintf-style", str, n);
    FUZZ_CHECK(sm_frame_spec_format(&a, NULL, 0) == n, "\"%s\": format(NULL, 0) != %d", str, n);

    check_messages(str, &a);
    return 0;
}
