/* What a module that creates streams and keeps state of its own with them
 * (the server: a peer per connection) may know about a stream, and nothing
 * more: its size, an extra area in its allocation, whose stream it is, the
 * streams it created on a loop, and whether one is quiet. The stream's fields stay private to
 * the stream module (stream_internal.h, which includes this header);
 * stream_owner.c implements these calls and asserts the promises below.
 * Never installed. */
#ifndef SM_STREAM_OWNER_H
#define SM_STREAM_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sockmsg/stream.h"

/* sizeof(sm_stream) (stream_owner.c fails to compile if it changes), a
 * multiple of 8, so an extra area right behind it is aligned for pointers
 * and 64-bit integers. An owner sizes its per-stream state by it: glibc
 * gives a request of n bytes an (n + 8)-byte chunk rounded up to 16, so
 * SM__STREAM_SIZE + extra <= 120 keeps a stream and its extra area in one
 * 128-byte chunk. */
#define SM__STREAM_SIZE 112

/* Where a stream keeps the sm_stream_opts pointer it was created with,
 * right behind its sm_io (stream_owner.c asserts it). */
#define SM__STREAM_OPTS_AT sizeof(sm_io)

/* The opts a stream was created with: which owner's stream it is, and so
 * (an owner may embed the struct in its own per-loop state) the owner's
 * state, with no call: an owner asks this per message. */
static inline const sm_stream_opts *
sm__stream_owner(const sm_stream *s)
{
    return *(const sm_stream_opts *const *)(const void *)((const char *)s + SM__STREAM_OPTS_AT);
}

/* The extra area behind a stream created with extra bytes
 * (sm__stream_new_take_extra), and back from it to the stream. */
static inline void *
sm__stream_extra(sm_stream *s)
{
    return (char *)s + SM__STREAM_SIZE;
}

static inline sm_stream *
sm__stream_of_extra(const void *extra)
{
    return (sm_stream *)(void *)((const char *)extra - SM__STREAM_SIZE);
}

/* sm_stream_new_take with `extra` zeroed bytes behind the stream for the
 * caller, in the stream's own allocation (freed with it, after on_close
 * returns). Returns as sm_stream_new_take (fd is closed on failure). */
int sm__stream_new_take_extra(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts,
                              void *data, size_t extra);
/* The same with TLS (sm_stream_new_tls; transport_tls.c). */
int sm__stream_new_tls_extra(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts,
                             void *data, size_t extra, sm_tls_config *cfg, const char *host,
                             char *why, size_t why_len);

/* An owner's streams on a loop, found without a list of them. An owner is
 * known by the sm_stream_opts struct it gave every stream it created (the
 * pointer, not its contents), so a stream someone else created on the same
 * loop is never one of them, whatever its options say.
 *
 * sm__stream_owned_at: the owner's connected stream whose socket is fd, or
 * NULL (none there, not connected, or someone else's).
 * sm__stream_owned_next: the owner's connected stream with the lowest
 * socket number >= *fd, with that number stored in *fd; NULL past the
 * last. Iterate as
 *     for (int fd = 0; (s = sm__stream_owned_next(loop, opts, &fd)); fd++)
 * Closing streams meanwhile is safe (a closed stream is not found again;
 * one opened meanwhile may or may not be). Each full pass looks at every
 * fd number below the highest the loop watches. Loop thread only. */
sm_stream *sm__stream_owned_at(const sm_loop *loop, int fd, const sm_stream_opts *owner);
sm_stream *sm__stream_owned_next(const sm_loop *loop, const sm_stream_opts *owner, int *fd);

/* Quiet: no unfinished message buffered, nothing queued to write, and no
 * bytes received for at least quiet_ms of loop time (what a graceful drain
 * waits for before it half-closes). */
bool sm__stream_quiet(const sm_stream *s, uint32_t quiet_ms);

/* Part of a message is buffered: its first bytes came, its last not yet
 * (what a server's message deadline looks for). */
bool sm__stream_mid_message(const sm_stream *s);

#endif
