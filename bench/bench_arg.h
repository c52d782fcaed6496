/* bench_arg.h: numbers on the command lines of the programs in bench/ and
 * bench/peers/. Header-only (static inline): the peers link no sockmsg code,
 * and each program is one .c file. */
#ifndef BENCH_ARG_H
#define BENCH_ARG_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* bench_arg_long - s as a whole decimal number in [lo, hi], or a message and
 * exit(2): atoi would take "12x", "" or an overflow without a word. */
static inline long
bench_arg_long(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bad number '%s' (expected %ld..%ld)\n", s, lo, hi);
        exit(2);
    }
    return v;
}

/* bench_arg_double - s as a whole number (5, 0.25, 1e-3) in [lo, hi], or a
 * message and exit(2). */
static inline double
bench_arg_double(const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "bad number '%s' (expected %g..%g)\n", s, lo, hi);
        exit(2);
    }
    return v;
}

#endif
