/* sockmsg bench — what cmd_bench.c (options, output) and bench_run.c (the
 * load generator) share.
 *
 * The messages. Message number s of a connection is S payload bytes: first a
 * sequence field of w bytes carrying s (w = min(S, 8) little-endian bytes, or
 * for delimited framings min(S, 16) bytes, one per hex digit, drawn from 16
 * bytes that are not in the delimiter), then S - w bytes of a fixed
 * pseudo-random template starting at an offset derived from s and the
 * connection's number. Template bytes avoid the delimiter too. A reply must
 * be the same bytes, so a reply lost, duplicated, reordered or altered shows
 * up as a wrong sequence field or a wrong byte; both sides are computed, none
 * stored per message.
 */
#ifndef SOCKMSG_TOOL_BENCH_H
#define SOCKMSG_TOOL_BENCH_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/frame.h>

#include "bench_hist.h"
#include "cli.h"

#define BENCH_PATTERN_SPAN 256  /* body offsets: 0..255 into the template */
#define BENCH_COPY_MAX     2048 /* frames up to this are built whole from cfg->protos */
#define BENCH_DETAILS      5    /* error explanations kept */
#define BENCH_DETAIL_LEN   200

/* Kinds of error, counted apart. */
enum {
    BENCH_ERR_MISMATCH,
    BENCH_ERR_CLOSED,
    BENCH_ERR_TIMEOUT,
    BENCH_ERR_FRAMING,
    BENCH_ERR_KINDS
};

typedef struct bench_cfg {
    cli *cli;
    const char *endpoint; /* as given, for messages */
    sm_endpoint ep;
    const sm_frame_spec *spec;
    char frame[256]; /* the spec string, canonical */
    int type;        /* type byte for type: specs, else -1 */
    sm_frame_hdr hdr;
    size_t size;      /* payload bytes per message */
    size_t frame_len; /* head + payload + tail */
    int conns, depth, threads;
    int64_t duration_ns, warmup_ns;
    double rate;    /* --rate: messages per second in all; 0 for the closed loop */
    int timeout_ms; /* connecting, and the longest wait for a reply */
    bool progress;  /* the live line on stdout */
    /* tls:// (bench_tls.c): --ca, --insecure, --tls-ciphersuites, and the
     * OpenSSL client context made from them (NULL for plain TCP). */
    const char *tls_ca, *tls_ciphersuites;
    bool tls_insecure;
    void *tls_ctx;

    /* The payloads (bench_payload_init). */
    uint8_t *tmpl; /* size + BENCH_PATTERN_SPAN bytes */
    /* Frames up to BENCH_COPY_MAX: the whole frame of each body offset, with
     * a blank sequence field (BENCH_PATTERN_SPAN x frame_len bytes, in the
     * order of bench_proto), so that building a batch is one copy and a
     * store per message. NULL for larger frames. */
    uint8_t *protos;
    uint8_t digits[16];
    bool hex_seq; /* the sequence field as hex digits (delimited framings) */
    size_t seq_w; /* bytes of the sequence field */
} bench_cfg;

typedef struct bench_result {
    /* The messages of the window: closed loop, those whose reply arrived
     * in it; --rate, those meant to start out in it (their replies may come
     * in the drain). */
    uint64_t messages; /* replies received intact */
    uint64_t sent;     /* messages of the window that started out */
    /* --rate: messages of the window in the schedule (rate x window, over
     * all connections), and those of them still unsent when it ended, on
     * connections still open, because --depth were in flight or the socket
     * was full. 0 for the closed loop. */
    uint64_t scheduled, shortfall;
    uint64_t errors; /* the sum of err[] */
    uint64_t err[BENCH_ERR_KINDS];
    double window_s; /* the measured time */
    double cpu_s;    /* user + system time of the process within it */
    bench_hist hist; /* latency of the counted replies, ns */
    char details[BENCH_DETAILS][BENCH_DETAIL_LEN];
    int ndetails;
    bool interrupted; /* ^C ended the window early */
} bench_result;

/* bench_payload_init - choose the payload bytes for cfg (its spec, type,
 * size, header and frame_len set): the sequence field's form, the template
 * and, for small frames, the prototype frames. Returns 0 or -ENOMEM.
 * bench_payload_free releases them. */
int bench_payload_init(bench_cfg *cfg);
void bench_payload_free(bench_cfg *cfg);

/* bench_seq_write - the sequence field of message s (cfg->seq_w bytes). */
static inline void
bench_seq_write(const bench_cfg *cfg, uint64_t s, uint8_t *dst)
{
    if (cfg->hex_seq) {
        for (size_t i = 0; i < cfg->seq_w; i++)
            dst[i] = cfg->digits[(s >> (4 * i)) & 15];
    } else if (cfg->seq_w == 8) {
        uint64_t le = htole64(s);
        memcpy(dst, &le, 8);
    } else {
        for (size_t i = 0; i < cfg->seq_w; i++)
            dst[i] = (uint8_t)(s >> (8 * i));
    }
}

/* bench_seq_read - decode a sequence field; false if it is not one (a byte
 * outside the digits). Truncated fields give the low bits only. */
bool bench_seq_read(const bench_cfg *cfg, const uint8_t *src, uint64_t *s);

/* bench_offset - the body offset of message s on connection `id`: 7 apart
 * from one message to the next, so consecutive bodies differ. */
static inline size_t
bench_offset(uint64_t s, uint32_t id)
{
    return (size_t)((s * 7 + (uint64_t)id * 13) & (BENCH_PATTERN_SPAN - 1));
}

/* bench_proto - the index in cfg->protos of message s's frame. The table is
 * in message order: entry t has body offset 7t mod 256 (t = s + 75 id, and
 * 75 * 7 = 13 mod 256), so a run of messages is a run of entries, copied at
 * once. */
static inline size_t
bench_proto(uint64_t s, uint32_t id)
{
    return (size_t)((s + (uint64_t)id * 75) & (BENCH_PATTERN_SPAN - 1));
}

/* bench_body - where the body of message s on connection `id` starts in the
 * template (S - seq_w bytes from there). */
static inline const uint8_t *
bench_body(const bench_cfg *cfg, uint64_t s, uint32_t id)
{
    return cfg->tmpl + bench_offset(s, id);
}

/* bench_run - connect cfg->conns connections, run the load, fill *res.
 * cfg->threads is 1..cfg->conns (cmd_bench.c sees to it). Returns 0 when it ran (res->errors says
 * how well), or CLI_EXIT_FAIL after reporting why it could not (a connection failed, out of
 * memory). */
int bench_run(const bench_cfg *cfg, bench_result *res);

#endif
