/* sockmsg — error codes.
 *
 * Every function that can fail returns a negative value on error: either a
 * negated errno (-ETIMEDOUT, -ECONNRESET, -EMSGSIZE for an oversized frame,
 * -EPROTO for a malformed one, -EPIPE, ...) or one of the library codes below.
 * Library codes sit below -4095, outside the kernel's errno range, so the two
 * never collide, and above SM_ERR_BASE - 4096 (-8192): values from -8192 down
 * are never returned by the library and are free for an application's own
 * codes (sm_strerror calls them "unknown error").
 */
#ifndef SOCKMSG_ERROR_H
#define SOCKMSG_ERROR_H

#include "api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_ERR_BASE (-4096)

/* X(name, value, message): one table gives the enum, sm_strerror and
 * sm_err_name. Append only; values are part of the ABI. SM_ERR_BASE - 10 is
 * retired (it was SM_ERR_HTTP, now the sockmsg tool's own code): the next
 * code is SM_ERR_BASE - 12. */
#define SM_ERR_TABLE(X)                                                                            \
    X(SM_ERR_TRUNCATED, SM_ERR_BASE - 1, "peer closed in the middle of a message")                 \
    X(SM_ERR_RESOLVE, SM_ERR_BASE - 2, "host name could not be resolved")                          \
    X(SM_ERR_ENDPOINT, SM_ERR_BASE - 3, "malformed endpoint")                                      \
    X(SM_ERR_SPEC, SM_ERR_BASE - 4, "malformed frame spec")                                        \
    X(SM_ERR_FORMAT, SM_ERR_BASE - 5, "malformed pack format")                                     \
    X(SM_ERR_CLOSED, SM_ERR_BASE - 6, "object is closed")                                          \
    X(SM_ERR_SLOW_CONSUMER, SM_ERR_BASE - 7, "peer does not read: output queue limit reached")     \
    X(SM_ERR_HEARTBEAT, SM_ERR_BASE - 8, "heartbeat lost: peer silent too long")                   \
    X(SM_ERR_LIMIT, SM_ERR_BASE - 9, "configured limit reached")                                   \
    X(SM_ERR_BACKEND, SM_ERR_BASE - 11,                                                            \
      "unknown loop backend in $SOCKMSG_BACKEND (use epoll, poll or io_uring)")

enum sm_err {
#define SM__ERR_ENUM(name, value, msg) name = (value),
    SM_ERR_TABLE(SM__ERR_ENUM)
#undef SM__ERR_ENUM
};

/* sm_strerror - a human-readable message for any code this library returns.
 *
 * err: a negative error (library code or negated errno); a non-negative value
 * gives "success". Returns a static string, never NULL. Thread-safe (unlike
 * strerror(3), it never writes a shared buffer; unknown codes give "unknown
 * error"). */
SM_API const char *sm_strerror(int err);

/* sm_err_name - the symbolic name of a code: "ETIMEDOUT", "SM_ERR_TRUNCATED",
 * "OK" for >= 0, "E?" for unknown codes. Static string; thread-safe. Meant for
 * logs and test failure messages. */
SM_API const char *sm_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif
