/* Servers: checking sm_server_opts and filling in the defaults (the
 * execution model's own through its configure), keeping copies of what the
 * caller owns. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "frame_internal.h"
#include "internal.h"
#include "server_internal.h"

#define DEFAULT_WRITE_MS 30000
#define DEFAULT_DRAIN_MS 5000
#define DEFAULT_QUIET_MS 50
#define DEFAULT_FIRST_MS 10000
#define DEFAULT_MSG_MS   60000
#define DEFAULT_IDLE_MS  300000
/* Descriptors max_conns leaves for everything else when it is derived from
 * RLIMIT_NOFILE: listeners, loops, spare fds, and what handlers open. */
#define NOFILE_RESERVE 64

/* A timeout whose zero value means a default: 0 takes it, SM_FOREVER
 * turns it off (0 from here on: the code after this reads 0 as off). */
static void
default_ms(int *ms, int dflt)
{
    if (*ms == 0)
        *ms = dflt;
    else if (*ms == SM_FOREVER)
        *ms = 0;
}

/* max_conns 0: what the descriptor limit leaves room for (connections past
 * it are refused cleanly rather than failing accept with EMFILE). */
static int
derived_max_conns(const sm_server *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
    rlim_t reserve =
        NOFILE_RESERVE + (rlim_t)srv->nw * 4 + (rlim_t)srv->o.listen_count * (rlim_t)srv->nfd_sets;
    if (rl.rlim_cur <= reserve + 1) return 1;
    rlim_t n = rl.rlim_cur - reserve;
    return n > INT_MAX ? 0 : (int)n;
}

static bool
bad_ms(int ms, bool forever_ok)
{
    return ms < 0 && !(forever_ok && ms == SM_FOREVER);
}

int
sm__opts_check(sm_server *srv, const sm_server_opts *in, char *why, size_t why_len)
{
    sm_server_opts *o = &srv->o;
    *o = *in;
    if (!o->on_message) return sm__why(why, why_len, -EINVAL, "on_message is required");
    if (!o->listen) return sm__why(why, why_len, -EINVAL, "no endpoint to listen on");
    if (o->listen_count < 0) return sm__why(why, why_len, -EINVAL, "listen_count < 0");
    if (o->listen_count == 0)
        while (o->listen[o->listen_count])
            o->listen_count++;
    if (o->listen_count == 0) return sm__why(why, why_len, -EINVAL, "no endpoint to listen on");
    for (int i = 0; i < o->listen_count; i++)
        if (!o->listen[i]) return sm__why(why, why_len, -EINVAL, "listen[%d] is NULL", i);
    if (o->model != SM_SERVER_LOOP && o->model != SM_SERVER_THREAD)
        return sm__why(why, why_len, -EINVAL, "unknown model %d", (int)o->model);
    srv->model = o->model == SM_SERVER_LOOP ? &sm__lmodel : &sm__tmodel;
    if (o->accept < SM_ACCEPT_DEFAULT || o->accept > SM_ACCEPT_DISPATCH)
        return sm__why(why, why_len, -EINVAL, "unknown accept mode %d", (int)o->accept);
    if (o->commit < SM_COMMIT_DEFAULT || o->commit > SM_COMMIT_ACCEPT)
        return sm__why(why, why_len, -EINVAL, "unknown commit mode %d", (int)o->commit);
    if (o->thread_stack_size && o->thread_stack_size < (size_t)PTHREAD_STACK_MIN)
        return sm__why(why, why_len, -EINVAL, "thread_stack_size %zu is below %zu",
                       o->thread_stack_size, (size_t)PTHREAD_STACK_MIN);
    if (o->threads < 0 || o->max_conns < -1 || o->backlog < 0)
        return sm__why(why, why_len, -EINVAL, "threads and backlog must be >= 0, max_conns >= -1");
    if (bad_ms(o->first_message_timeout_ms, true) || bad_ms(o->idle_timeout_ms, true) ||
        bad_ms(o->message_timeout_ms, true) || bad_ms(o->write_timeout_ms, true) ||
        bad_ms(o->drain_timeout_ms, true) || bad_ms(o->drain_quiet_ms, false))
        return sm__why(why, why_len, -EINVAL, "a timeout is negative");
    if (bad_ms(o->heartbeat_ms, false) || bad_ms(o->heartbeat_timeout_ms, false))
        return sm__why(why, why_len, -EINVAL, "a heartbeat interval is negative");
    if (o->idle_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->message_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->write_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->heartbeat_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->heartbeat_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS)
        return sm__why(why, why_len, -EINVAL, "a timeout exceeds %d ms", SM_STREAM_TIMEOUT_MAX_MS);
    if (o->log_level < SM_LOG_DEFAULT || o->log_level > SM_LOG_DEBUG)
        return sm__why(why, why_len, -EINVAL, "unknown log level %d", (int)o->log_level);

    int rc;
    if (o->spec && o->frame)
        return sm__why(why, why_len, -EINVAL, "both spec and frame are set: give one");
    if (o->frame) {
        char cause[256];
        rc = sm_frame_spec_parse(&srv->spec, o->frame, cause, sizeof cause);
        if (rc < 0) return sm__why(why, why_len, rc, "frame '%s': %s", o->frame, cause);
    } else if (o->spec) {
        srv->spec = *o->spec;
        if ((rc = sm_frame_spec_check(&srv->spec, why, why_len)) < 0) return rc;
    } else {
        srv->spec = (sm_frame_spec){.kind = SM_FRAME_LENGTH, .len_width = 4};
    }
    o->spec = &srv->spec;
    o->frame = NULL; /* the caller's string: not kept */
    if (o->send_spec && o->send_frame)
        return sm__why(why, why_len, -EINVAL,
                       "both send_spec and send_frame are set: give one (or neither)");
    if (o->send_frame) {
        char cause[256];
        rc = sm_frame_spec_parse(&srv->send_spec, o->send_frame, cause, sizeof cause);
        if (rc < 0) return sm__why(why, why_len, rc, "send_frame '%s': %s", o->send_frame, cause);
        o->send_spec = &srv->send_spec;
    } else if (o->send_spec) {
        srv->send_spec = *o->send_spec;
        if ((rc = sm_frame_spec_check(&srv->send_spec, why, why_len)) < 0) return rc;
        o->send_spec = &srv->send_spec;
    }
    o->send_frame = NULL;
    if (o->sock) {
        srv->sock = *o->sock;
        o->sock = &srv->sock;
    }
    if (o->ping_len && !o->ping) return sm__why(why, why_len, -EINVAL, "ping_len without ping");
    if (o->heartbeat_ms || o->swallow_pings) {
        /* Pings are recognised with the receiving spec, sent with the other. */
        const char *bad = sm__ping_unframable(o->spec, o->ping, o->ping_len, o->ping_type, false);
        if (!bad && o->heartbeat_ms)
            bad = sm__ping_unframable(o->send_spec ? o->send_spec : o->spec, o->ping, o->ping_len,
                                      o->ping_type, true);
        if (bad) return sm__why(why, why_len, SM_ERR_SPEC, "%s", bad);
    }

    if ((rc = sm__fds_opts_check(srv, why, why_len)) < 0) return rc;
    if (o->accept == SM_ACCEPT_DEFAULT) o->accept = SM_ACCEPT_REUSEPORT;
    if (o->commit == SM_COMMIT_DEFAULT) o->commit = SM_COMMIT_FIRST_MESSAGE;
    if (o->thread_stack_size == 0) o->thread_stack_size = SM_SERVER_STACK_DEFAULT;
    if (o->write_timeout_ms == 0) o->write_timeout_ms = DEFAULT_WRITE_MS;
    default_ms(&o->first_message_timeout_ms, DEFAULT_FIRST_MS);
    default_ms(&o->message_timeout_ms, DEFAULT_MSG_MS);
    default_ms(&o->idle_timeout_ms, DEFAULT_IDLE_MS);
    if (o->drain_timeout_ms == 0) o->drain_timeout_ms = DEFAULT_DRAIN_MS;
    if (o->drain_quiet_ms == 0) o->drain_quiet_ms = DEFAULT_QUIET_MS;
    if (o->log_level == SM_LOG_DEFAULT) o->log_level = SM_LOG_INFO;

    if ((rc = srv->model->configure(srv, why, why_len)) < 0) return rc;
    if (o->max_conns == 0) o->max_conns = derived_max_conns(srv);
    if (o->max_conns == -1) o->max_conns = 0;
    srv->limit = o->max_conns;
    snprintf(srv->fresh_detail, sizeof srv->fresh_detail,
             "first-message timeout: no whole message within %d ms", o->first_message_timeout_ms);
    snprintf(srv->msg_detail, sizeof srv->msg_detail,
             "message timeout: a message begun was not complete within %d ms",
             o->message_timeout_ms);

    /* The ping and the endpoint strings are the caller's: keep copies. */
    if (o->ping_len) {
        if (!(srv->ping_copy = malloc(o->ping_len))) return -ENOMEM;
        memcpy(srv->ping_copy, o->ping, o->ping_len);
        o->ping = srv->ping_copy;
    } else {
        o->ping = NULL;
    }
    srv->listen_copy = calloc((size_t)o->listen_count + 1, sizeof *srv->listen_copy);
    if (!srv->listen_copy) return -ENOMEM;
    for (int i = 0; i < o->listen_count; i++)
        if (!(srv->listen_copy[i] = strdup(o->listen[i]))) return -ENOMEM;
    o->listen = (const char *const *)srv->listen_copy;
    return 0;
}
