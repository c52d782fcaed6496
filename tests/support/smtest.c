#include "smtest.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long
sm_test_check_ok(long long v, const char *expr, const char *file, int line)
{
    if (v < 0) {
        print_error("%s = %lld (%s: %s)\n", expr, v, sm_err_name((int)v), sm_strerror((int)v));
        _fail(file, line);
    }
    return v;
}

void
sm_test_check_err(long long v, int want, const char *expr, const char *file, int line)
{
    if (v != want) {
        print_error("%s = %lld (%s), want %d (%s)\n", expr, v, sm_err_name((int)v), want,
                    sm_err_name(want));
        _fail(file, line);
    }
}

void
sm_test_mkdtemp(char *out, size_t out_len)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    int n = snprintf(out, out_len, "%s/smtest.XXXXXX", base);
    assert_true(n > 0 && (size_t)n < out_len);
    assert_non_null(mkdtemp(out));
}

void
sm_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int64_t
sm_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
sm_test_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}
