/* Measuring: round-trip latency against an echo server, the way a benchmark
 * should report it: after a warm-up, every sample kept, percentiles rather
 * than a mean, and every echo checked (a fast wrong answer is no answer).
 *
 *   rtt ENDPOINT [COUNT [SIZE [SPEC]]]
 *
 * Sends COUNT (default 1000) messages of SIZE bytes (default 64) one at a
 * time with framing SPEC (default len32be), each after the echo of the one
 * before: a closed loop, one message in flight. Prints the count, the
 * percentiles of the round trip, and the rate; exits 0 if every echo was
 * right. For many connections, pipelining and a histogram, use
 * `sockmsg bench`. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* never jumps, unlike the wall clock */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One round trip: send msg, wait for its echo, check it. */
static int
round_trip(sm_conn *c, const uint8_t *msg, size_t size)
{
    ssize_t rc = sm_conn_send(c, msg, size, SM_CONN_DEFAULT);
    if (rc < 0) return (int)rc;
    sm_frame_msg m;
    int got = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
    if (got != 1) return got == 0 ? SM_ERR_TRUNCATED : got;
    return m.len == size && memcmp(m.data, msg, size) == 0 ? 0 : -EPROTO;
}

int
main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: rtt ENDPOINT [COUNT [SIZE [SPEC]]]\n");
        return 2;
    }
    size_t count = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    size_t size = argc > 3 ? strtoul(argv[3], NULL, 10) : 64;
    const char *spec = argc > 4 ? argv[4] : "len32be";
    if (count == 0 || size > (1u << 20)) {
        fprintf(stderr, "rtt: COUNT >= 1, SIZE <= 1 MiB\n");
        return 2;
    }
    uint8_t *msg = malloc(size ? size : 1);
    int64_t *ns = malloc(count * sizeof *ns);
    sm_conn *c = NULL;
    char why[256] = "";
    int rc = msg && ns ? sm_conn_dial(&c, argv[1], spec, 5000, why, sizeof why) : -ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "rtt: %s: %s\n", argv[1], why[0] ? why : sm_strerror(rc));
        free(msg);
        free(ns);
        return 1;
    }
    sm_conn_set_timeout(c, 5000); /* a lost echo is an error, not a hang */
    for (size_t i = 0; i < size; i++)
        msg[i] = (uint8_t)('a' + i % 26);

    /* guide: measure */
    /* Warm up first: the first round trips pay for page faults, cold
     * caches and the peer's first allocation, not for the network. */
    for (size_t i = 0; i < count / 10 && rc == 0; i++)
        rc = round_trip(c, msg, size);
    int64_t start = now_ns();
    for (size_t i = 0; i < count && rc == 0; i++) {
        int64_t t0 = now_ns();
        rc = round_trip(c, msg, size);
        ns[i] = now_ns() - t0; /* keep every sample: percentiles need them all */
    }
    double secs = (double)(now_ns() - start) / 1e9;
    /* guide: end */
    if (rc < 0) {
        fprintf(stderr, "rtt: %s (%s)\n", sm_strerror(rc), sm_conn_error_detail(c));
        sm_conn_free(c);
        free(msg);
        free(ns);
        return 1;
    }
    /* guide: report */
    qsort(ns, count, sizeof *ns, by_value);
    size_t p50 = count / 2, p99 = count * 99 / 100; /* the sample below which 50 %, 99 % lie */
    printf("%zu round trips of %zu bytes: p50 %.1f us, p99 %.1f us, max %.1f us, %.0f/s\n", count,
           size, (double)ns[p50] / 1e3, (double)ns[p99] / 1e3, (double)ns[count - 1] / 1e3,
           (double)count / secs);
    /* guide: end */
    sm_conn_free(c);
    free(msg);
    free(ns);
    return 0;
}
