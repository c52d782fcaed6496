/* own_report.h: what the own-protocol clients (zmq_client, nng_client) share
 * with each other: argument parsing, a latency histogram and the JSON report,
 * in the units and key names of `sockmsg bench --json` so results line up.
 *
 * The histogram is log-linear like sockmsg bench's (values below 256 ns have
 * a bucket each, every power of two above is split into 128 buckets, up to
 * 2^48 ns). Counts are C11 atomics: nng runs completions on several threads.
 * Percentiles are the top of the bucket holding the rank, capped at the max.
 * Header-only (static inline) on purpose: each client is one .c file. */
#ifndef OWN_REPORT_H
#define OWN_REPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define OWN_SUB_BITS 7
#define OWN_SUB      (1u << OWN_SUB_BITS)
#define OWN_TOP_BITS 48
#define OWN_BUCKETS  ((OWN_TOP_BITS - OWN_SUB_BITS + 1) * OWN_SUB)

struct own_hist {
    _Atomic uint64_t count, max;
    _Atomic uint64_t counts[OWN_BUCKETS];
};

struct own_args {
    const char *endpoint;
    int conns, depth;
    size_t size;
    double duration;
};

static inline int64_t
own_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline double
own_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline void
own_record(struct own_hist *h, uint64_t v)
{
    if (v >> OWN_TOP_BITS) v = ((uint64_t)1 << OWN_TOP_BITS) - 1;
    int msb = 63 - __builtin_clzll(v | 1);
    int shift = msb > (int)OWN_SUB_BITS ? msb - (int)OWN_SUB_BITS : 0;
    atomic_fetch_add_explicit(&h->counts[(unsigned)shift * OWN_SUB + (unsigned)(v >> shift)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
    while (v > m && !atomic_compare_exchange_weak_explicit(&h->max, &m, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
}

/* The value (ns) at or below which a fraction q of the values lie. */
static inline double
own_percentile(struct own_hist *h, double q)
{
    uint64_t n = atomic_load(&h->count), max = atomic_load(&h->max), seen = 0;
    if (!n) return 0;
    double want = q * (double)n;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want) rank++;
    if (rank < 1) rank = 1;
    for (unsigned i = 0; i < OWN_BUCKETS; i++) {
        seen += atomic_load(&h->counts[i]);
        if (seen >= rank) {
            unsigned shift = i < 2 * OWN_SUB ? 0 : i / OWN_SUB - 1;
            uint64_t low = i < 2 * OWN_SUB ? i : (uint64_t)(i - shift * OWN_SUB) << shift;
            uint64_t high = low + ((uint64_t)1 << shift) - 1;
            return (double)(high < max ? high : max);
        }
    }
    return (double)max;
}

static inline size_t
own_parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K') v <<= 10;
    if (*end == 'm' || *end == 'M') v <<= 20;
    return (size_t)v;
}

/* ENDPOINT [--conns C] [--depth D] [--size S] [--duration SEC]; --json is
 * accepted for symmetry with sockmsg bench (the report is always JSON).
 * Returns 0, or -1 after printing the usage. */
static inline int
own_parse_args(struct own_args *a, int argc, char **argv, const char *prog)
{
    *a = (struct own_args){.conns = 1, .depth = 1, .size = 64, .duration = 5};
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!s) break;
        if (!strcmp(s, "--conns") && v)
            a->conns = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(s, "--depth") && v)
            a->depth = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(s, "--size") && v)
            a->size = own_parse_size(argv[++i]);
        else if (!strcmp(s, "--duration") && v)
            a->duration = strtod(argv[++i], NULL);
        else if (!strcmp(s, "--json"))
            continue;
        else if (s[0] != '-' && !a->endpoint)
            a->endpoint = s;
        else
            bad = 1;
    }
    if (bad || !a->endpoint || a->conns < 1 || a->depth < 1 || a->size < 8 || a->duration <= 0) {
        fprintf(stderr,
                "usage: %s ENDPOINT [--conns C] [--depth D] [--size S>=8] [--duration SEC]\n"
                "  ENDPOINT: tcp://HOST:PORT or unix:/path; prints one JSON object\n",
                prog);
        return -1;
    }
    return 0;
}

/* One JSON object on stdout, keys as sockmsg bench --json, plus what marks
 * the run as the library's own protocol. */
static inline void
own_print_json(const struct own_args *a, const char *frame, const char *pattern, double window_s,
               uint64_t messages, uint64_t errors, double cpu_s, struct own_hist *h)
{
    double rate = window_s > 0 ? (double)messages / window_s : 0;
    printf("{\"endpoint\":\"%s\",\"frame\":\"%s\",\"own_protocol\":true,\"pattern\":\"%s\","
           "\"conns\":%d,\"depth\":%d,\"size\":%zu,\"threads\":1,\"duration_s\":%.6f,"
           "\"warmup_s\":0,\"messages\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
           "\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
           "\"errors\":%llu,\"client_cpu_s\":%.6f}\n",
           a->endpoint, frame, pattern, a->conns, a->depth, a->size, window_s,
           (unsigned long long)messages, rate, rate * (double)a->size / 1e6,
           own_percentile(h, 0.50) / 1e3, own_percentile(h, 0.90) / 1e3,
           own_percentile(h, 0.99) / 1e3, own_percentile(h, 0.999) / 1e3,
           (double)atomic_load(&h->max) / 1e3, (unsigned long long)errors, cpu_s);
    fflush(stdout);
}

#endif
