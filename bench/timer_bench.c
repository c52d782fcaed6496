/* timer_bench - the loop's timer structure under 10,000 timers.
 *
 * Each phase is one function, so an instruction count per phase comes out of
 * callgrind (repeatable, unlike a clock):
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out build/rel/bench/timer_bench
 *   callgrind_annotate --inclusive=yes cg.out | grep phase_
 * Phases (N timers, random timeouts from a fixed seed, run from a timer
 * callback as the library's own timers are):
 *   phase_startstop  start N one-shots, then stop them in random order
 *   phase_restart    restart N active timers (random order) to later times
 *   phase_fire       one loop iteration in which N due one-shots fire
 *   phase_fire_rep   one loop iteration in which N due repeating timers fire
 *                    (each is rescheduled before its callback)
 * It also prints wall-clock times, for orientation only.
 *
 * Usage: timer_bench [N (default 10000)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sockmsg/loop.h>

#define NOINLINE __attribute__((noinline))

typedef struct bench {
    sm_loop *loop;
    sm_timer *ts;
    uint64_t *timeout; /* per timer, ms */
    size_t *perm;      /* a random order of the timers */
    size_t n;
    size_t fired;
    void (*phase)(struct bench *b);
} bench;

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "timer_bench: %s failed: %d\n", what, rc);
        exit(1);
    }
}

static void
on_fire(sm_timer *t)
{
    ((bench *)t->data)->fired++;
}

static void
start_all(bench *b, uint64_t repeat)
{
    for (size_t i = 0; i < b->n; i++)
        check(sm_timer_start(&b->ts[i], b->timeout[i], repeat), "sm_timer_start");
}

static void
stop_all(bench *b)
{
    for (size_t i = 0; i < b->n; i++)
        sm_timer_stop(&b->ts[b->perm[i]]);
}

static NOINLINE void
phase_startstop(bench *b)
{
    start_all(b, 0);
    stop_all(b);
}

static NOINLINE void
phase_restart(bench *b)
{
    for (size_t i = 0; i < b->n; i++) {
        size_t k = b->perm[i];
        check(sm_timer_start(&b->ts[k], 1000 + b->timeout[k], 0), "sm_timer_start");
    }
}

/* Afterwards nothing is active. */
static NOINLINE void
phase_fire(bench *b)
{
    if (sm_loop_run(b->loop, SM_RUN_NOWAIT) != 0) check(-1, "phase_fire");
}

/* Afterwards the repeating timers are still active. */
static NOINLINE void
phase_fire_rep(bench *b)
{
    if (sm_loop_run(b->loop, SM_RUN_NOWAIT) != 1) check(-1, "phase_fire_rep");
}

static void
driver_cb(sm_timer *t)
{
    bench *b = t->data;
    b->phase(b);
}

/* Run f from a timer callback, as the library runs its timer work. */
static void
in_callback(bench *b, void (*f)(bench *b))
{
    sm_timer driver;
    sm_timer_init(b->loop, &driver, driver_cb);
    driver.data = b;
    b->phase = f;
    check(sm_timer_start(&driver, 0, 0), "sm_timer_start");
    while (sm_timer_is_active(&driver))
        check(sm_loop_run(b->loop, SM_RUN_ONCE), "sm_loop_run");
}

static void
start_oneshots(bench *b)
{
    start_all(b, 0);
}

static void
start_repeating(bench *b)
{
    start_all(b, 5000);
}

static void
wait_past(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
    bench b = {.n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000};
    if (!b.n) return 2;
    check(sm_loop_new(&b.loop, NULL), "sm_loop_new");
    b.ts = calloc(b.n, sizeof *b.ts);
    b.timeout = calloc(b.n, sizeof *b.timeout);
    b.perm = calloc(b.n, sizeof *b.perm);
    if (!b.ts || !b.timeout || !b.perm) {
        fprintf(stderr, "timer_bench: out of memory for %zu timers\n", b.n);
        free(b.ts);
        free(b.timeout);
        free(b.perm);
        check(sm_loop_free(b.loop), "sm_loop_free");
        return 1;
    }
    uint64_t seed = 0x7153c0de5eedull;
    for (size_t i = 0; i < b.n; i++) {
        sm_timer_init(b.loop, &b.ts[i], on_fire);
        b.ts[i].data = &b;
        b.timeout[i] = rnd(&seed) % 100;
        b.perm[i] = i;
    }
    for (size_t i = b.n - 1; i > 0; i--) {
        size_t j = rnd(&seed) % (i + 1), x = b.perm[i];
        b.perm[i] = b.perm[j];
        b.perm[j] = x;
    }

    double t0 = now_s();
    in_callback(&b, phase_startstop);
    double t1 = now_s();
    printf("start+stop %zu timers:        %8.3f ms\n", b.n, (t1 - t0) * 1e3);

    in_callback(&b, start_oneshots);
    t0 = now_s();
    in_callback(&b, phase_restart);
    t1 = now_s();
    in_callback(&b, stop_all);
    printf("restart %zu active timers:    %8.3f ms\n", b.n, (t1 - t0) * 1e3);

    in_callback(&b, start_oneshots);
    wait_past(150); /* every timeout is < 100 ms: all are due */
    b.fired = 0;
    t0 = now_s();
    phase_fire(&b);
    t1 = now_s();
    printf("fire %zu one-shots:           %8.3f ms (%zu fired)\n", b.n, (t1 - t0) * 1e3, b.fired);
    if (b.fired != b.n) return 1;

    in_callback(&b, start_repeating); /* due within 100 ms, then every 5 s */
    wait_past(150);
    b.fired = 0;
    t0 = now_s();
    phase_fire_rep(&b);
    t1 = now_s();
    printf("fire %zu repeating timers:    %8.3f ms (%zu fired)\n", b.n, (t1 - t0) * 1e3, b.fired);
    if (b.fired != b.n) return 1;
    in_callback(&b, stop_all);

    check(sm_loop_free(b.loop), "sm_loop_free");
    free(b.ts);
    free(b.timeout);
    free(b.perm);
    return 0;
}
