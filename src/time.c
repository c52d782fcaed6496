/* Monotonic time, deadlines, and waiting on one fd with a deadline. */
#include <limits.h>
#include <poll.h>
#include <time.h>

#include "internal.h"

int64_t
sm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
sm__now_ms(void)
{
    return sm__now_ns() / 1000000;
}

int64_t
sm__deadline(int timeout_ms)
{
    if (timeout_ms < 0) return -1;
    return sm__now_ms() + timeout_ms;
}

int
sm__remaining_ms(int64_t deadline)
{
    if (deadline < 0) return -1;
    int64_t left = deadline - sm__now_ms();
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

bool
sm__expired(int64_t deadline)
{
    return deadline >= 0 && sm__now_ms() >= deadline;
}

int
sm__wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, sm__remaining_ms(deadline));
        if (n > 0) return p.revents;
        if (n == 0) return -ETIMEDOUT;
        if (errno != EINTR) return -errno;
        /* A signal interrupted the wait: go again with what is left. */
    }
}
