/* sockmsg bench — latency histogram: percentiles and the ASCII picture. */
#include "bench_hist.h"

#include <string.h>

#define BAR_WIDTH 40
#define BINS      64 /* 1-2-5 bins from 1 us up: far past 2^48 ns */

uint64_t
hist_low(unsigned i)
{
    if (i < 2 * HIST_SUB) return i;
    unsigned shift = i / HIST_SUB - 1;
    return (uint64_t)(i - shift * HIST_SUB) << shift;
}

uint64_t
hist_high(unsigned i)
{
    unsigned shift = i < 2 * HIST_SUB ? 0 : i / HIST_SUB - 1;
    return hist_low(i) + ((uint64_t)1 << shift) - 1;
}

void
hist_merge(bench_hist *dst, const bench_hist *src)
{
    if (!src->count) return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t
hist_percentile(const bench_hist *h, double q)
{
    if (!h->count) return 0;
    if (q >= 1.0) return h->max;
    /* The rank of the value, 1-based: the smallest with at least q below. */
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want) rank++;
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

char *
hist_format_ns(uint64_t ns, char *out, size_t cap)
{
    double v = (double)ns;
    if (ns < 1000)
        snprintf(out, cap, "%llu ns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(out, cap, v < 1e4 ? "%.2f us" : "%.1f us", v / 1e3);
    else if (ns < 1000000000)
        snprintf(out, cap, v < 1e7 ? "%.2f ms" : "%.1f ms", v / 1e6);
    else
        snprintf(out, cap, "%.2f s", v / 1e9);
    return out;
}

/* Upper edge of display bin b (ns): 1 us, 2 us, 5 us, 10 us, ... Bin 0 also
 * holds everything below 1 us. */
static uint64_t
bin_edge(unsigned b)
{
    static const unsigned steps[3] = {1, 2, 5};
    uint64_t v = 1000 * (uint64_t)steps[b % 3];
    for (unsigned k = 0; k < b / 3; k++)
        v *= 10;
    return v;
}

/* Short labels for bin edges: "1us", "20us", "500us", "1ms", "2s". */
static void
edge_label(uint64_t ns, char *out, size_t cap)
{
    if (ns < 1000000)
        snprintf(out, cap, "%lluus", (unsigned long long)(ns / 1000));
    else if (ns < 1000000000)
        snprintf(out, cap, "%llums", (unsigned long long)(ns / 1000000));
    else
        snprintf(out, cap, "%llus", (unsigned long long)(ns / 1000000000));
}

void
hist_print(const bench_hist *h, FILE *out)
{
    if (!h->count) return;
    uint64_t bins[BINS];
    memset(bins, 0, sizeof bins);
    unsigned b = 0;
    /* Buckets come in increasing order, so the bin only ever moves up. A
     * bucket goes where its low end falls: buckets are < 1% wide. */
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        if (!h->counts[i]) continue;
        uint64_t low = hist_low(i);
        while (b + 1 < BINS && low >= bin_edge(b))
            b++;
        bins[b] += h->counts[i];
    }
    unsigned first = 0, last = BINS - 1;
    while (first < BINS && !bins[first])
        first++;
    while (last > first && !bins[last])
        last--;
    uint64_t most = 0;
    for (unsigned i = first; i <= last; i++)
        if (bins[i] > most) most = bins[i];

    fprintf(out, "latency histogram:\n");
    for (unsigned i = first; i <= last; i++) {
        char lo[16], hi[16], bar[BAR_WIDTH + 1];
        if (i == 0)
            snprintf(lo, sizeof lo, "0");
        else
            edge_label(bin_edge(i - 1), lo, sizeof lo);
        edge_label(bin_edge(i), hi, sizeof hi);
        unsigned n = (unsigned)((bins[i] * BAR_WIDTH + most - 1) / most);
        memset(bar, '#', n);
        bar[n] = '\0';
        fprintf(out, "  %6s - %-6s |%-*s %12llu %6.2f%%\n", lo, hi, BAR_WIDTH, bar,
                (unsigned long long)bins[i], 100.0 * (double)bins[i] / (double)h->count);
    }
}
