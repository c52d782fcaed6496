/* frame_bench - decode throughput of every framing codec.
 *
 * For each codec and message size it encodes a stream of whole messages, then
 * decodes it two ways:
 *   window:   like a read loop: a 64 KiB buffer is refilled from the stream
 *             (memcpy standing in for read(2)), every whole message in it is
 *             decoded, and the leftover is moved to the front;
 *   in place: the whole stream decoded straight from memory (the decoder alone).
 * It prints a markdown table of GB/s (wire bytes) and ns per message. Nothing
 * here asserts a timing; run a Release build:
 *   cmake -S . -B build/rel -G Ninja -DCMAKE_BUILD_TYPE=Release
 *   cmake --build build/rel --target frame_bench && build/rel/bench/frame_bench
 *
 * Usage: frame_bench [seconds per measurement (default 0.25)] [codec filter substring]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>

#include "bench_arg.h"

#define WINDOW      ((size_t)64 << 10)
#define STREAM_SIZE (2u << 20) /* about 2 MiB of frames, replayed as needed */

typedef struct stream {
    uint8_t *data;
    size_t len;
    size_t msgs;
} stream;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Payload bytes that never contain a delimiter used below. */
static void
fill_payload(uint8_t *p, size_t n, size_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)('a' + (i + seed) % 26);
}

static int
build_stream(const sm_frame_spec *spec, size_t msg_len, int type, stream *s)
{
    uint8_t *payload = malloc(msg_len ? msg_len : 1);
    s->data = malloc(STREAM_SIZE + 2 * (msg_len + 64));
    if (!payload || !s->data) {
        free(payload);
        free(s->data);
        return -ENOMEM;
    }
    s->len = s->msgs = 0;
    while (s->len < STREAM_SIZE) {
        sm_frame_hdr h;
        fill_payload(payload, msg_len, s->msgs);
        int rc = sm_frame_encode(spec, payload, msg_len, type, &h);
        if (rc) {
            free(payload);
            free(s->data);
            return rc;
        }
        memcpy(s->data + s->len, h.head, h.head_len);
        s->len += h.head_len;
        memcpy(s->data + s->len, payload, msg_len);
        s->len += msg_len;
        memcpy(s->data + s->len, h.tail, h.tail_len);
        s->len += h.tail_len;
        s->msgs++;
    }
    free(payload);
    return 0;
}

typedef struct result {
    double gbps, ns_per_msg;
    uint64_t check;
} result;

/* One pass over the stream through a 64 KiB window; returns messages seen. */
static size_t
pass_window(sm_frame_decoder *d, const stream *s, uint8_t *win, uint64_t *check)
{
    size_t have = 0, fed = 0, msgs = 0;
    while (fed < s->len || have > 0) {
        size_t room = WINDOW - have, n = s->len - fed < room ? s->len - fed : room;
        memcpy(win + have, s->data + fed, n);
        fed += n;
        have += n;
        size_t off = 0;
        for (;;) {
            sm_frame_msg m;
            ssize_t r = sm_frame_decode(d, win + off, have - off, &m);
            if (r <= 0) {
                if (r != -EAGAIN) {
                    fprintf(stderr, "decode error %s\n", sm_err_name((int)r));
                    exit(1);
                }
                break;
            }
            off += (size_t)r;
            *check += m.len + m.data[0];
            msgs++;
        }
        memmove(win, win + off, have - off);
        have -= off;
        if (fed == s->len && off == 0) break;
    }
    return msgs;
}

static size_t
pass_in_place(sm_frame_decoder *d, const stream *s, uint64_t *check)
{
    size_t off = 0, msgs = 0;
    for (;;) {
        sm_frame_msg m;
        ssize_t r = sm_frame_decode(d, s->data + off, s->len - off, &m);
        if (r <= 0) break;
        off += (size_t)r;
        *check += m.len + m.data[0];
        msgs++;
    }
    return msgs;
}

static result
measure(const sm_frame_spec *spec, const stream *s, bool window, double seconds)
{
    static uint8_t win[WINDOW];
    result res = {0, 0, 0};
    sm_frame_decoder d;
    size_t msgs = 0, bytes = 0;
    /* Warm up once, then run whole passes until the time is up. */
    sm_frame_decoder_init(&d, spec);
    window ? pass_window(&d, s, win, &res.check) : pass_in_place(&d, s, &res.check);
    double t0 = now_s(), t;
    do {
        sm_frame_decoder_init(&d, spec);
        size_t n = window ? pass_window(&d, s, win, &res.check) : pass_in_place(&d, s, &res.check);
        if (n != s->msgs) {
            fprintf(stderr, "decoded %zu messages of %zu\n", n, s->msgs);
            exit(1);
        }
        msgs += n;
        bytes += s->len;
        t = now_s() - t0;
    } while (t < seconds);
    res.gbps = (double)bytes / t / 1e9;
    res.ns_per_msg = t * 1e9 / (double)msgs;
    return res;
}

int
main(int argc, char **argv)
{
    static const char *const specs[] = {
        "len32be",  "len32le",       "len16be",
        "len64be",  "len8",          "len32be,adjust=4,offset=2",
        "varint",   "ascii:10",      "netstring",
        "fixed:#",  "line",          "crlf",
        "nul",      "delim:--END--", "type:A=(len32be);B=(line)",
        "type:A=#",
    };
    static const size_t sizes[] = {64, 4096};
    double seconds = argc > 1 ? bench_arg_double(argv[1], 0, 3600) : 0.25;
    const char *filter = argc > 2 ? argv[2] : NULL;
    uint64_t check = 0;

    printf(
        "| codec | msg size | window GB/s | window ns/msg | in place GB/s | in place ns/msg |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        if (filter && !strstr(specs[i], filter)) continue;
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            char str[64], why[128];
            const char *n = strchr(specs[i], '#');
            if (n)
                snprintf(str, sizeof str, "%.*s%zu", (int)(n - specs[i]), specs[i], sizes[j]);
            else
                snprintf(str, sizeof str, "%s", specs[i]);
            sm_frame_spec spec;
            if (sm_frame_spec_parse(&spec, str, why, sizeof why)) {
                fprintf(stderr, "%s: %s\n", str, why);
                return 1;
            }
            int type = spec.kind == SM_FRAME_TYPE ? 'A' : -1;
            stream s;
            int rc = build_stream(&spec, sizes[j], type, &s);
            if (rc == -EMSGSIZE) {
                printf("| %s | %zu | n/a | | | |\n", str, sizes[j]);
                continue;
            }
            if (rc) {
                fprintf(stderr, "%s: encode: %s\n", str, sm_err_name(rc));
                return 1;
            }
            result w = measure(&spec, &s, true, seconds);
            result p = measure(&spec, &s, false, seconds);
            check += w.check + p.check;
            printf("| %s | %zu | %.2f | %.1f | %.2f | %.1f |\n", str, sizes[j], w.gbps,
                   w.ns_per_msg, p.gbps, p.ns_per_msg);
            fflush(stdout);
            free(s.data);
        }
    }
    fprintf(stderr, "(checksum %llu)\n", (unsigned long long)check);
    return 0;
}
