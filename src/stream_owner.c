/* The calls an owner of streams may make (stream_owner.h), kept apart from
 * stream.c so the interface an owner sees is one small header. */
#include <stddef.h>

#include "stream_internal.h"

_Static_assert(sizeof(sm_stream) == SM__STREAM_SIZE,
               "SM__STREAM_SIZE in stream_owner.h must be sizeof(sm_stream)");
_Static_assert(SM__STREAM_SIZE % 8 == 0, "an owner's extra area must stay 8-aligned");
_Static_assert(offsetof(sm_stream, opts) == SM__STREAM_OPTS_AT,
               "SM__STREAM_OPTS_AT in stream_owner.h must be where sm_stream keeps opts");

sm_stream *
sm__stream_owned_at(const sm_loop *loop, int fd, const sm_stream_opts *owner)
{
    sm_stream *s = sm__stream_at(loop, fd);
    return s && s->opts == owner ? s : NULL;
}

sm_stream *
sm__stream_owned_next(const sm_loop *loop, const sm_stream_opts *owner, int *fd)
{
    sm_stream *s;
    for (int i = *fd; (s = sm__stream_next(loop, &i)) != NULL; i++) {
        if (s->opts == owner) {
            *fd = i;
            return s;
        }
    }
    return NULL;
}

bool
sm__stream_quiet(const sm_stream *s, uint32_t quiet_ms)
{
    /* A decoder holds part of a message exactly when rd is set; rx_ts is
     * the loop time of the last read that got bytes (or of the connect). */
    return !s->rd && sm_stream_queued(s) == 0 && (uint32_t)(sm__now32(s) - s->rx_ts) >= quiet_ms;
}

bool
sm__stream_mid_message(const sm_stream *s)
{
    return s->rd != NULL;
}
