/* Streams: library-owned copies of sm_stream_opts (sm_stream_opts_new), so a
 * program can build one from a spec string and keep nothing of its own
 * alive. The streams themselves only ever see the copy's pointer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/stream.h>

#include "internal.h"

/* One allocation: the opts first (sm_stream_opts_free finds the block from
 * it), then what its pointers point at. */
typedef struct opts_block {
    sm_stream_opts o;
    sm_frame_spec spec;
    sm_frame_spec send_spec; /* when opts has one */
    sm_sock_opts sock;
    unsigned char ping[]; /* o.ping_len bytes */
} opts_block;

int
sm_stream_opts_new(sm_stream_opts **out, const sm_stream_opts *opts, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!out || !opts) return sm__why(why, why_len, -EINVAL, "NULL argument");
    *out = NULL;
    if (!!opts->frame == !!opts->spec)
        return sm__why(why, why_len, -EINVAL,
                       opts->frame ? "both spec and frame are set: give one"
                                   : "no framing: set frame (a spec string) or spec");
    if (opts->send_frame && opts->send_spec)
        return sm__why(why, why_len, -EINVAL,
                       "both send_spec and send_frame are set: give one (or neither)");
    if (opts->ping_len && !opts->ping)
        return sm__why(why, why_len, -EINVAL, "ping_len without ping");
    opts_block *b = calloc(1, sizeof *b + opts->ping_len);
    if (!b) return sm__why(why, why_len, -ENOMEM, "out of memory");
    b->o = *opts;
    int rc;
    if (opts->frame) {
        char cause[256];
        rc = sm_frame_spec_parse(&b->spec, opts->frame, cause, sizeof cause);
        if (rc < 0) rc = sm__why(why, why_len, rc, "frame '%s': %s", opts->frame, cause);
    } else {
        b->spec = *opts->spec;
        rc = sm_frame_spec_check(&b->spec, why, why_len);
    }
    if (rc < 0) {
        free(b);
        return rc;
    }
    if (opts->send_frame) {
        char cause[256];
        rc = sm_frame_spec_parse(&b->send_spec, opts->send_frame, cause, sizeof cause);
        if (rc < 0) rc = sm__why(why, why_len, rc, "send_frame '%s': %s", opts->send_frame, cause);
    } else if (opts->send_spec) {
        b->send_spec = *opts->send_spec;
        rc = sm_frame_spec_check(&b->send_spec, why, why_len);
    }
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->o.spec = &b->spec;
    b->o.frame = NULL; /* the caller's string: not kept */
    b->o.send_spec = opts->send_frame || opts->send_spec ? &b->send_spec : NULL;
    b->o.send_frame = NULL;
    if (opts->sock) {
        b->sock = *opts->sock;
        b->o.sock = &b->sock;
    }
    if (opts->ping_len) memcpy(b->ping, opts->ping, opts->ping_len);
    b->o.ping = opts->ping_len ? b->ping : NULL;
    *out = &b->o;
    return 0;
}

void
sm_stream_opts_free(sm_stream_opts *opts)
{
    /* o is the first member: the block starts where the opts do. */
    free(opts);
}
