/* sockmsg bench over tls:// — the load generator's TLS, on OpenSSL
 * directly rather than the library's TLS transport: the instrument must
 * not share code with the server it measures (a reference server and
 * sockmsg's are loaded alike). A blocking handshake per connection before
 * the load starts, then non-blocking SSL_write/SSL_read in place of
 * send/read, with errno set as those calls set it so bench_conn.c keeps
 * one code path. Built without OpenSSL, tls:// says so. */
#include <errno.h>
#include <stdio.h>

#include "bench_tls.h"

#ifdef SOCKMSG_TOOL_TLS
#include <poll.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"

static void
ossl_reason(char *why, size_t len, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(why, len, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

int
bench_tls_init(bench_cfg *cfg, char *why, size_t len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ossl_reason(why, len, "TLS context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Partial writes: a full socket takes part of a batch, as send does. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1); /* fewer reads: records come in batches */
    int ok = 1;
    if (cfg->tls_ciphersuites && !SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites)) {
        ossl_reason(why, len, "--tls-ciphersuites");
        ok = 0;
    }
    if (ok && cfg->tls_insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else if (ok) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        ok = cfg->tls_ca ? SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
        if (!ok) ossl_reason(why, len, cfg->tls_ca ? cfg->tls_ca : "the system's CAs");
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return -1;
    }
    cfg->tls_ctx = ctx;
    return 0;
}

void
bench_tls_free(bench_cfg *cfg)
{
    SSL_CTX_free(cfg->tls_ctx);
    cfg->tls_ctx = NULL;
}

/* The verify results that mean "no CA of ours signed it" (as the library
 * words it: SM_ERR_TLS_UNKNOWN_CA). */
static bool
unknown_ca(long v)
{
    return v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
}

int
bench_tls_connect(const bench_cfg *cfg, int fd, int timeout_ms, void **out, char *why, size_t len)
{
    SSL *ssl = SSL_new(cfg->tls_ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        ossl_reason(why, len, "TLS session");
        return -1;
    }
    const char *host = cfg->ep.host;
    SSL_set_tlsext_host_name(ssl, host);
    if (!cfg->tls_insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        /* A literal address is checked as one, a name as a name. */
        if (!X509_VERIFY_PARAM_set1_ip_asc(vp, host)) X509_VERIFY_PARAM_set1_host(vp, host, 0);
    }
    int64_t deadline = cli_deadline(timeout_ms);
    for (;;) {
        int rc = SSL_connect(ssl);
        if (rc == 1) break;
        int e = SSL_get_error(ssl, rc);
        int left = cli_remaining_ms(deadline);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && left != 0) {
            struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
            if (poll(&p, 1, left) >= 0 || errno == EINTR) continue;
        }
        long v = SSL_get_verify_result(ssl);
        if (left == 0)
            snprintf(why, len, "TLS handshake timed out after %d ms", timeout_ms);
        else if (v != X509_V_OK)
            snprintf(why, len, "TLS handshake: %s%s", unknown_ca(v) ? "unknown CA: " : "",
                     X509_verify_cert_error_string(v));
        else
            ossl_reason(why, len, "TLS handshake");
        SSL_free(ssl);
        return -1;
    }
    *out = ssl;
    return 0;
}

/* errno as send/read would set it: EAGAIN while OpenSSL waits on the
 * socket either way (replies keep the read side busy), EPROTO for TLS. */
static ssize_t
fail(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
    } else if (e == SSL_ERROR_ZERO_RETURN) {
        return 0;
    } else if (e == SSL_ERROR_SYSCALL) {
        if (!errno) errno = ECONNRESET; /* EOF without close_notify */
    } else {
        errno = EPROTO;
    }
    ERR_clear_error();
    return -1;
}

ssize_t
bench_tls_send(void *ssl, const void *buf, size_t len)
{
    size_t n = 0;
    if (SSL_write_ex(ssl, buf, len, &n)) return (ssize_t)n;
    return fail(ssl, 0);
}

ssize_t
bench_tls_read(void *ssl, void *buf, size_t len)
{
    /* SSL_read gives one record at a time: take records until the buffer
     * is full or OpenSSL needs the socket, as one read would. */
    size_t got = 0;
    while (got < len) {
        size_t n = 0;
        if (!SSL_read_ex(ssl, (char *)buf + got, len - got, &n)) {
            if (got) {
                ERR_clear_error();
                break;
            }
            return fail(ssl, 0);
        }
        got += n;
    }
    return (ssize_t)got;
}

bool
bench_tls_pending(void *ssl)
{
    return SSL_has_pending(ssl);
}

void
bench_tls_close(void *ssl)
{
    if (!ssl) return;
    SSL_shutdown(ssl); /* close_notify, if the socket takes it; never waits */
    SSL_free(ssl);
}

#else

int
bench_tls_init(bench_cfg *cfg, char *why, size_t len)
{
    (void)cfg;
    snprintf(why, len, "built without TLS (OpenSSL 3 was not found)");
    return -1;
}

void
bench_tls_free(bench_cfg *cfg)
{
    (void)cfg;
}

int
bench_tls_connect(const bench_cfg *cfg, int fd, int timeout_ms, void **out, char *why, size_t len)
{
    (void)cfg, (void)fd, (void)timeout_ms, (void)out;
    snprintf(why, len, "built without TLS");
    return -1;
}

ssize_t
bench_tls_send(void *ssl, const void *buf, size_t len)
{
    (void)ssl, (void)buf, (void)len;
    errno = ENOTSUP;
    return -1;
}

ssize_t
bench_tls_read(void *ssl, void *buf, size_t len)
{
    (void)ssl, (void)buf, (void)len;
    errno = ENOTSUP;
    return -1;
}

bool
bench_tls_pending(void *ssl)
{
    (void)ssl;
    return false;
}

void
bench_tls_close(void *ssl)
{
    (void)ssl;
}

#endif
