/* Helpers for the server tests: start a server on a free port, dial it with
 * blocking sm_conn clients, wait for a condition with a bound, collect log
 * lines. Header-only (static inline) so each test program takes what it
 * uses. */
#ifndef SM_SERVER_UTIL_H
#define SM_SERVER_UTIL_H

#include "smtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/server.h>
#include <sockmsg/socket.h>

/* Wait until cond holds, polling every millisecond, at most ms; fail with the
 * condition's text if it never does. (Counters have no event to wait on.) */
#define SM_WAIT_FOR(cond, ms)                                                                      \
    do {                                                                                           \
        int64_t wait_end_ = sm_test_now_ms() + (ms);                                               \
        while (!(cond) && sm_test_now_ms() < wait_end_)                                            \
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);                               \
        if (!(cond)) fail_msg("timed out after %d ms waiting for: %s", (int)(ms), #cond);          \
    } while (0)

/* One test configuration: which model and how loops accept. */
typedef struct srv_variant {
    sm_server_model model;
    sm_server_accept accept;
    int threads;
} srv_variant;

static inline const srv_variant *
srv_variant_of(void **state)
{
    return (const srv_variant *)*state;
}

static inline void
srv_apply(sm_server_opts *o, const srv_variant *v)
{
    o->model = v->model;
    o->accept = v->accept;
    if (!o->threads) o->threads = v->threads;
}

#define SM__SRV_MIN(a, b) ((a) < (b) ? (a) : (b))

/* Log lines, kept for assertions. */
typedef struct srv_log {
    pthread_mutex_t lock;
    char text[16384];
    size_t len;
} srv_log;

static inline void
srv_log_cb(void *data, sm_log_level level, const char *line)
{
    (void)level;
    srv_log *l = data;
    pthread_mutex_lock(&l->lock);
    int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s\n", line);
    if (n > 0) l->len = SM__SRV_MIN(l->len + (size_t)n, sizeof l->text - 1);
    pthread_mutex_unlock(&l->lock);
}
static inline bool
srv_log_has(srv_log *l, const char *what)
{
    pthread_mutex_lock(&l->lock);
    bool has = strstr(l->text, what) != NULL;
    pthread_mutex_unlock(&l->lock);
    return has;
}

/* Create and start a server; the first endpoint's address goes to ep. */
static inline sm_server *
srv_start(const sm_server_opts *o, char *ep, size_t cap)
{
    sm_server *srv;
    char why[256] = "";
    int rc = sm_server_new(&srv, o, why, sizeof why);
    if (rc < 0) fail_msg("sm_server_new: %s: %s", sm_err_name(rc), why);
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    SM_ASSERT_OK(sm_endpoint_format(&e, ep, cap));
    SM_ASSERT_OK(sm_server_start(srv));
    return srv;
}

static inline sm_server_stats
srv_stats(const sm_server *srv)
{
    sm_server_stats st;
    sm_server_get_stats(srv, &st);
    return st;
}

static inline sm_conn *
cli_dial(const char *ep)
{
    sm_conn *c;
    char why[256] = "";
    int rc = sm_conn_dial(&c, ep, "len32be", 10000, why, sizeof why);
    if (rc < 0) fail_msg("dial %s: %s: %s", ep, sm_err_name(rc), why);
    sm_conn_set_timeout(c, 10000);
    return c;
}

/* Send s, expect it back. */
static inline void
cli_echo(sm_conn *c, const char *s)
{
    SM_ASSERT_OK(sm_conn_send(c, s, strlen(s), SM_CONN_DEFAULT));
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
    if (rc != 1) fail_msg("echo of '%s': recv gave %d (%s)", s, rc, sm_err_name(rc));
    if (m.len != strlen(s) || memcmp(m.data, s, m.len))
        fail_msg("echo of '%s' came back as '%.*s'", s, (int)m.len, (const char *)m.data);
}

/* The connection ends (EOF or reset) within ms, with nothing else first. */
static inline int
cli_expect_end(sm_conn *c, int ms)
{
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, ms);
    if (rc == 1) fail_msg("expected the server to close, got a %zu-byte message", m.len);
    if (rc == -ETIMEDOUT) fail_msg("the server did not close within %d ms", ms);
    return rc;
}

#endif
