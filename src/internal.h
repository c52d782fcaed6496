/* Private helpers shared by the library's modules (never installed).
 * Cross-file internals carry the sm__ prefix. */
#ifndef SM_INTERNAL_H
#define SM_INTERNAL_H

#include <errno.h>
#include <stdint.h>

/* Monotonic clock in milliseconds / nanoseconds. */
int64_t sm__now_ms(void);
int64_t sm__now_ns(void);

/* A deadline is an absolute sm__now_ms() value, or -1 for none.
 * sm__deadline turns a timeout (SM_FOREVER, 0, or ms) into one. */
int64_t sm__deadline(int timeout_ms);

/* Milliseconds left until the deadline, clamped to [0, INT_MAX]; -1 when there
 * is no deadline. Suitable as poll(2)'s timeout. */
int sm__remaining_ms(int64_t deadline);

/* Wait for events on one fd until the deadline, retrying EINTR with the
 * remaining time. Returns the revents (> 0), -ETIMEDOUT, or -errno. */
int sm__wait_fd(int fd, short events, int64_t deadline);

#define SM__MIN(a, b) ((a) < (b) ? (a) : (b))
#define SM__MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
