/* Private helpers shared by the library's modules (never installed).
 * Cross-file internals carry the sm__ prefix. */
#ifndef SM_INTERNAL_H
#define SM_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Monotonic clock in milliseconds / nanoseconds. */
int64_t sm__now_ms(void);
int64_t sm__now_ns(void);

/* A deadline is an absolute sm__now_ms() value, or -1 for none.
 * sm__deadline turns a timeout (SM_FOREVER, 0, or ms) into one. */
int64_t sm__deadline(int timeout_ms);

/* Milliseconds left until the deadline, clamped to [0, INT_MAX]; -1 when there
 * is no deadline. Suitable as poll(2)'s timeout. */
int sm__remaining_ms(int64_t deadline);

/* True when there is a deadline and it has passed (sm__remaining_ms would say
 * 0). A loop that keeps moving bytes while a peer keeps them coming checks
 * this on every round after its first attempt, so a timeout holds even when
 * it never has to wait. A caller's timeout of 0 ("try without waiting") makes
 * a deadline that has passed at once: such loops skip the check for it and
 * are bounded by their length instead. */
bool sm__expired(int64_t deadline);

/* Wait for events on one fd until the deadline, retrying EINTR with the
 * remaining time. Returns the revents (> 0), -ETIMEDOUT, or -errno. */
int sm__wait_fd(int fd, short events, int64_t deadline);

/* Happy Eyeballs (RFC 8305) dialing of already-resolved addresses, in the
 * order given: the engine of sm_dial_endpoint, exposed so tests can race
 * address lists that resolution on the test host cannot produce. Returns a
 * connected, blocking, close-on-exec fd or the most meaningful error. At most
 * SM__DIAL_MAX_ADDRS addresses are tried; each attempt after the first starts
 * SM__DIAL_STAGGER_MS after the previous one while that one is pending. */
#define SM__DIAL_MAX_ADDRS  16
#define SM__DIAL_STAGGER_MS 250
struct sm_addr;
struct sm_sock_opts;
int sm__dial_addrs(const struct sm_addr *addrs, size_t n, const struct sm_sock_opts *opts,
                   int64_t deadline, char *why, size_t why_len);

/* Write a one-line explanation into why (when why is not NULL and why_len > 0)
 * and return err: the shape of every parse-and-explain error path. */
int sm__why(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* How telling a connect error is when every attempt failed: a refusal says
 * more than a missing route, which says more than silence (0 ranks lowest).
 * The blocking and the asynchronous dial report the highest ranked. */
int sm__dial_err_rank(int err);

/* 1 for a TCP/IP socket, 0 for another kind, or -errno (not a socket). */
int sm__sock_is_inet(int fd);

/* conn.c, for the thread-model server: bytes already framed, sent as
 * they are (encrypted over TLS); and whether TLS holds decrypted bytes
 * the socket will not announce. */
struct sm_conn;
ssize_t sm__conn_send_raw(struct sm_conn *c, const void *p, size_t n, int timeout_ms);
bool sm__conn_tls_pending(const struct sm_conn *c);
/* sm_conn internals for the thread-model server (conn.c). */
struct sm_buf;
struct sm_frame_spec;
/* sm_conn_new_take, with the bytes already read from fd in *in (taken:
 * *in is left empty, also on failure) decoded before anything new. */
int sm__conn_new_take_buf(struct sm_conn **out, int fd, const struct sm_frame_spec *spec,
                          struct sm_buf *in);
/* Bytes of an unfinished message are buffered (after the message last
 * returned). */
bool sm__conn_mid_message(const struct sm_conn *c);

#define SM__MIN(a, b) ((a) < (b) ? (a) : (b))
#define SM__MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
