/* Test support shared by every test program: cmocka, plus assertions that print
 * the error name, temporary directories, and bounded waits. */
#ifndef SM_TEST_H
#define SM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sockmsg/sockmsg.h>

/* Assert that an sm_ call succeeded (>= 0); on failure print the expression,
 * the value and its error name and message. Evaluates to the value. */
#define SM_ASSERT_OK(expr) sm_test_check_ok((long long)(expr), #expr, __FILE__, __LINE__)

/* Assert that an sm_ call returned exactly the error `want`; prints both names. */
#define SM_ASSERT_ERR(expr, want)                                                                  \
    sm_test_check_err((long long)(expr), (want), #expr, __FILE__, __LINE__)

long long sm_test_check_ok(long long v, const char *expr, const char *file, int line);
void sm_test_check_err(long long v, int want, const char *expr, const char *file, int line);

/* A fresh private directory under $TMPDIR (or /tmp), for Unix socket paths.
 * Writes the path into `out`. sm_test_rmdir removes it and what is in it. */
void sm_test_mkdtemp(char *out, size_t out_len);
void sm_test_rmdir(const char *dir);

/* Monotonic milliseconds, for bounding loops in tests. */
int64_t sm_test_now_ms(void);

/* A deterministic PRNG (xorshift64*) for property tests; print the seed on
 * failure so a run can be replayed. */
uint64_t sm_test_rand(uint64_t *state);

#endif
