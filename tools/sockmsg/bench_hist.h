/* sockmsg bench — a latency histogram with bounded memory.
 *
 * Log-linear (HDR-style): values below 256 have a bucket each; above, every
 * power of two [2^k, 2^(k+1)) is split into 128 equal buckets, so a bucket is
 * never wider than 1/128 (0.8%) of the values it holds. Values are
 * nanoseconds; anything from 0 to 2^48 ns (78 hours) is kept, larger values
 * count in the last bucket. 43 KiB per histogram whatever the message count:
 * nothing is stored per message.
 */
#ifndef SOCKMSG_TOOL_BENCH_HIST_H
#define SOCKMSG_TOOL_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_TOP_BITS 48 /* values up to 2^48 - 1 */
#define HIST_BUCKETS  ((HIST_TOP_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct bench_hist {
    uint64_t count;
    uint64_t max; /* exact, ns */
    uint64_t counts[HIST_BUCKETS];
} bench_hist;

/* hist_index - the bucket of value v (ns). */
static inline unsigned
hist_index(uint64_t v)
{
    if (v >> HIST_TOP_BITS) v = ((uint64_t)1 << HIST_TOP_BITS) - 1;
    int msb = 63 - __builtin_clzll(v | 1);
    int shift = msb > (int)HIST_SUB_BITS ? msb - (int)HIST_SUB_BITS : 0;
    return (unsigned)shift * HIST_SUB + (unsigned)(v >> shift);
}

/* hist_record - count one value. */
static inline void
hist_record(bench_hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->count++;
    if (v > h->max) h->max = v;
}

/* hist_low / hist_high - the smallest and largest value of bucket i. */
uint64_t hist_low(unsigned i);
uint64_t hist_high(unsigned i);

/* hist_merge - add src's counts to dst. */
void hist_merge(bench_hist *dst, const bench_hist *src);

/* hist_percentile - the value at or below which a fraction q (0..1) of the
 * recorded values lie: the top of that bucket, never above the maximum.
 * 0 for an empty histogram. */
uint64_t hist_percentile(const bench_hist *h, double q);

/* hist_print - an ASCII histogram on log-scale bins (1-2-5 steps: 1 us,
 * 2 us, 5 us, 10 us, ...), one line per bin from the first non-empty one to
 * the last, with a bar of '#' scaled to the fullest bin, the count and the
 * share. Prints nothing for an empty histogram. */
void hist_print(const bench_hist *h, FILE *out);

/* hist_format_ns - a duration for people: "850 ns", "45.1 us", "1.20 ms",
 * "2.50 s". Returns out. */
char *hist_format_ns(uint64_t ns, char *out, size_t cap);

#endif
