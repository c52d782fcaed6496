/* Built without OpenSSL 3: the TLS API exists and says so. */
#include <stdlib.h>

#include "internal.h"
#include "tls_internal.h"

#define NO_TLS "built without TLS (OpenSSL 3 not found at build time)"

bool
sm_tls_available(void)
{
    return false;
}

int
sm_tls_config_new(sm_tls_config **out, sm_tls_role role, char *why, size_t why_len)
{
    (void)role;
    if (out) *out = NULL;
    return sm__why(why, why_len, SM_ERR_TLS_UNAVAILABLE, NO_TLS);
}

void
sm_tls_config_free(sm_tls_config *cfg)
{
    (void)cfg;
}

int
sm_tls_config_set_ca(sm_tls_config *cfg, const char *ca_file, const char *ca_dir, char *why,
                     size_t why_len)
{
    (void)cfg, (void)ca_file, (void)ca_dir;
    return sm__why(why, why_len, SM_ERR_TLS_UNAVAILABLE, NO_TLS);
}

int
sm_tls_config_set_cert(sm_tls_config *cfg, const char *chain_file, const char *key_file, char *why,
                       size_t why_len)
{
    (void)cfg, (void)chain_file, (void)key_file;
    return sm__why(why, why_len, SM_ERR_TLS_UNAVAILABLE, NO_TLS);
}

int
sm_tls_config_set_server_name(sm_tls_config *cfg, const char *name)
{
    (void)cfg, (void)name;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm_tls_config_set_alpn(sm_tls_config *cfg, const char *protocols)
{
    (void)cfg, (void)protocols;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm_tls_config_set_min_version(sm_tls_config *cfg, int version)
{
    (void)cfg, (void)version;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm_tls_config_insecure_skip_verify(sm_tls_config *cfg, bool insecure)
{
    (void)cfg, (void)insecure;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm_tls_config_set_keylog(sm_tls_config *cfg, const char *path)
{
    (void)cfg, (void)path;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm_tls_config_set_resumption(sm_tls_config *cfg, bool on)
{
    (void)cfg, (void)on;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm_tls_config_set_handshake_timeout(sm_tls_config *cfg, int timeout_ms)
{
    (void)cfg, (void)timeout_ms;
    return SM_ERR_TLS_UNAVAILABLE;
}

/* The internal side: no session is ever made, so the rest is unreachable
 * and answers as a failed session would. */
int
sm__tls_new(sm__tls **out, sm_tls_config *cfg, int fd, const char *host, unsigned port, char *why,
            size_t why_len)
{
    (void)cfg, (void)fd, (void)host, (void)port;
    if (out) *out = NULL;
    return sm__why(why, why_len, SM_ERR_TLS_UNAVAILABLE, NO_TLS);
}

void
sm__tls_free(sm__tls *t)
{
    (void)t;
}

int
sm__tls_handshake(sm__tls *t)
{
    (void)t;
    return SM_ERR_TLS_UNAVAILABLE;
}

bool
sm__tls_handshake_done(const sm__tls *t)
{
    (void)t;
    return false;
}

ssize_t
sm__tls_read(sm__tls *t, void *buf, size_t len)
{
    (void)t, (void)buf, (void)len;
    return SM_ERR_TLS_UNAVAILABLE;
}

bool
sm__tls_read_pending(const sm__tls *t)
{
    (void)t;
    return false;
}

ssize_t
sm__tls_write(sm__tls *t, const struct iovec *iov, int iovcnt, size_t max)
{
    (void)t, (void)iov, (void)iovcnt, (void)max;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm__tls_flush(sm__tls *t)
{
    (void)t;
    return SM_ERR_TLS_UNAVAILABLE;
}

size_t
sm__tls_unsent(const sm__tls *t)
{
    (void)t;
    return 0;
}

int
sm__tls_close_notify(sm__tls *t)
{
    (void)t;
    return SM_ERR_TLS_UNAVAILABLE;
}

const char *
sm__tls_detail(const sm__tls *t)
{
    (void)t;
    return NO_TLS;
}

const char *
sm__tls_alpn(const sm__tls *t, size_t *len)
{
    (void)t;
    if (len) *len = 0;
    return NULL;
}

bool
sm__tls_resumed(const sm__tls *t)
{
    (void)t;
    return false;
}

int
sm__tls_handshake_wait(sm__tls *t, int64_t deadline)
{
    (void)t, (void)deadline;
    return SM_ERR_TLS_UNAVAILABLE;
}

ssize_t
sm__tls_sendv_all(sm__tls *t, const struct iovec *iov, int iovcnt, int timeout_ms)
{
    (void)t, (void)iov, (void)iovcnt, (void)timeout_ms;
    return SM_ERR_TLS_UNAVAILABLE;
}

ssize_t
sm__tls_recv_some(sm__tls *t, void *buf, size_t len, int timeout_ms)
{
    (void)t, (void)buf, (void)len, (void)timeout_ms;
    return SM_ERR_TLS_UNAVAILABLE;
}

int
sm__tls_shutdown_wait(sm__tls *t, int timeout_ms)
{
    (void)t, (void)timeout_ms;
    return SM_ERR_TLS_UNAVAILABLE;
}

void
sm__tls_goodbye(sm__tls *t)
{
    (void)t;
}

int
sm__tls_handshake_timeout(const sm__tls *t)
{
    (void)t;
    return 0;
}

sm_tls_role
sm__tls_config_role(const sm_tls_config *cfg)
{
    (void)cfg;
    return SM_TLS_SERVER;
}

int
sm__tls_config_handshake_timeout(const sm_tls_config *cfg)
{
    (void)cfg;
    return 0;
}

bool
sm__tls_read_pending_locked(sm__tls *t)
{
    (void)t;
    return false;
}

bool
sm__tls_is_server(const sm__tls *t)
{
    (void)t;
    return false;
}
