/* A userspace impaired link for tests: forwards IP packets between two TUN
 * devices (one in each network namespace), losing, delaying, reordering and
 * duplicating them as tc netem would, from a seeded PRNG, in both
 * directions. For kernels without netem (CONFIG_NET_SCH_NETEM unset). It
 * works on packets, not bytes: TCP on both sides must recover by itself.
 *
 * Semantics, per packet and direction, in this order (as netem's):
 *   - cut (impair_cut): dropped;
 *   - loss: dropped with probability loss;
 *   - duplication: with probability dup, a second copy follows the first;
 *   - reordering: with probability reorder, sent at once, overtaking the
 *     packets still delayed; otherwise sent delay_ms after it arrived;
 *   - a full queue (IMPAIR_QUEUE packets per direction, netem's default
 *     limit) drops the packet, counted as overflow.
 * One thread does it all; nothing here is otherwise thread-safe except
 * impair_cut and impair_get_stats. */
#ifndef SM_TEST_IMPAIR_H
#define SM_TEST_IMPAIR_H

#include <stdbool.h>
#include <stdint.h>

#define IMPAIR_QUEUE 1000

typedef struct impair_cfg {
    double loss, dup, reorder; /* probabilities, 0..1 */
    int delay_ms;
    uint64_t seed;
} impair_cfg;

typedef struct impair_stats {
    uint64_t in;        /* packets read from this direction's TUN */
    uint64_t out;       /* packets written to the other TUN (copies included) */
    uint64_t lost;      /* dropped by the loss probability */
    uint64_t dup;       /* extra copies made */
    uint64_t reordered; /* sent ahead of delayed packets */
    uint64_t cut;       /* dropped while the link was cut */
    uint64_t overflow;  /* dropped on a full queue, or a failed write */
} impair_stats;

typedef struct impair impair;

/* impair_start - forward between the TUN fds a and b (IFF_TUN | IFF_NO_PI;
 * taken: closed by impair_stop) on a new thread. Returns 0 or -errno. */
int impair_start(impair **out, int a, int b, const impair_cfg *cfg);

/* impair_cut - cut the link (every packet dropped, both ways) or restore it. */
void impair_cut(impair *im, bool cut);

/* impair_get_stats - counters of direction 0 (a to b) or 1 (b to a). */
void impair_get_stats(impair *im, int dir, impair_stats *out);

/* impair_stop - stop the thread, close the fds, free. */
void impair_stop(impair *im);

#endif
