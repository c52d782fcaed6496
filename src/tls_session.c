/* A TLS session on a non-blocking socket: our BIO under OpenSSL (reads
 * from the socket, writes into a ciphertext buffer), the handshake with
 * its checks, and reading, writing and close_notify without waiting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "tls_ossl.h"

/* Plaintext joined before SSL_write: one full record. */
#define STAGE ((size_t)16 << 10)
/* The out buffer's allocation is given back when it empties above this
 * size after a batch that used less than a quarter of it: a bulk sender
 * keeps one buffer for its batches (a fresh one per batch cost a page
 * fault per 4 KiB and the copies of its doublings: a third of the CPU of
 * 64 KiB echoes), a stream back to small writes gives it up. */
#define OUT_KEEP ((size_t)64 << 10)
/* Ciphertext bytes a record adds at most (header, explicit IV, tag and
 * padding; TLS 1.3 AES-GCM adds 22). */
#define RECORD_EXTRA 64

/* SSL_get_error consults this thread's error queue, so it must hold
 * nothing from earlier calls before each SSL_* call. ERR_clear_error wipes
 * all of the queue's slots whether used or not (about 840 instructions in
 * OpenSSL 3, twice per batch: 48 per echoed 64 B message); the queue is
 * almost always empty (sm__tls_error drains it), and a peek says so for a
 * tenth of that. */
static inline void
err_reset(void)
{
    if (ERR_peek_error()) ERR_clear_error();
}

/* ---- the BIO ----------------------------------------------------------- */

static int
bio_write(BIO *b, const char *p, int n)
{
    sm__tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    if (sm_buf_append(&t->out, p, (size_t)n) < 0) return -1;
    return n;
}

static int
bio_read(BIO *b, char *p, int n)
{
    sm__tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    for (;;) {
        ssize_t got = recv(t->fd, p, (size_t)n, MSG_DONTWAIT);
        if (got > 0) return (int)got;
        if (got == 0) {
            t->sock_eof = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_read(b);
            return -1;
        }
        t->sock_err = errno;
        return -1;
    }
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    /* Flushing is sm__tls_flush's; everything else is not ours to do. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void
bio_method_setup(BIO_METHOD *m)
{
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
}

/* ---- sessions ---------------------------------------------------------- */

static bool
is_ip_literal(const char *h)
{
    ASN1_OCTET_STRING *a = a2i_IPADDRESS(h);
    ASN1_OCTET_STRING_free(a);
    return a != NULL;
}

int
sm__tls_new(sm__tls **out, sm_tls_config *cfg, int fd, const char *host, unsigned port, char *why,
            size_t why_len)
{
    if (!out || !cfg || fd < 0) return sm__why(why, why_len, -EINVAL, "bad arguments");
    bool client = cfg->role == SM_TLS_CLIENT;
    if (client && cfg->server_name) host = cfg->server_name;
    if (!host) host = "";
    if (client && !*host && !cfg->insecure)
        return sm__why(why, why_len, -EINVAL,
                       "TLS client without a host name to verify (set a server name)");
    if (!client && !cfg->cert)
        return sm__why(why, why_len, -EINVAL,
                       "TLS server configuration has no certificate (sm_tls_config_set_cert)");
    sm__tls *t = calloc(1, sizeof *t);
    if (!t) return sm__why(why, why_len, -ENOMEM, "out of memory");
    t->fd = fd;
    sm_buf_init(&t->out, 0);
    pthread_mutex_init(&t->mu, NULL);
    snprintf(t->host, sizeof t->host, "%s", host);
    sm__tls_config_ref(cfg);
    t->cfg = cfg;
    int rc = SM_ERR_TLS;

    /* The BIO method is the config's: set it up on first use (configs are
     * made on one thread and used after). */
    if (!BIO_meth_get_write(cfg->bio)) bio_method_setup(cfg->bio);
    BIO *b = BIO_new(cfg->bio);
    t->ssl = SSL_new(cfg->ctx);
    if (!b || !t->ssl) {
        BIO_free(b);
        goto fail;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b);
    SSL_set_app_data(t->ssl, t);
    if (sm__tls_config_use_cert(cfg, t->ssl) < 0) goto fail;
    if (!client) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (cfg->insecure) {
            SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
        } else if (is_ip_literal(host)) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1) goto fail;
        } else if (SSL_set1_host(t->ssl, host) != 1) {
            goto fail;
        }
        /* SNI carries names only (RFC 6066 section 3). */
        if (*host && !is_ip_literal(host) && SSL_set_tlsext_host_name(t->ssl, host) != 1) goto fail;
        if (*host && cfg->resume) {
            snprintf(t->key, sizeof t->key, "%s:%u%s", host, port, cfg->insecure ? "!" : "");
            SSL_SESSION *s = sm__tls_cache_get(cfg, t->key);
            if (s) {
                SSL_set_session(t->ssl, s);
                SSL_SESSION_free(s);
            }
        }
    }
    err_reset();
    *out = t;
    return 0;
fail:
    rc = sm__tls_error(t, SSL_ERROR_SSL);
    sm__why(why, why_len, rc, "TLS setup: %s", t->detail);
    sm__tls_free(t);
    return rc;
}

void
sm__tls_free(sm__tls *t)
{
    if (!t) return;
    SSL_free(t->ssl); /* frees the BIO too */
    sm_buf_free(&t->out);
    pthread_mutex_destroy(&t->mu);
    sm_tls_config_free(t->cfg);
    free(t);
}

/* The handshake finished: the checks OpenSSL does not make. */
static int
after_handshake(sm__tls *t)
{
    const sm_tls_config *cfg = t->cfg;
    if (cfg->alpn_len) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (n == 0 && cfg->role == SM_TLS_SERVER)
            return sm__tls_fail(t, SM_ERR_TLS_ALPN, "peer did not offer ALPN %s", cfg->alpn_text);
        if (n == 0)
            return sm__tls_fail(t, SM_ERR_TLS_ALPN,
                                "peer selected no ALPN protocol (we offered %s)", cfg->alpn_text);
    }
    t->hs_done = true;
    return 0;
}

int
sm__tls_handshake(sm__tls *t)
{
    if (t->hs_done) return 0;
    err_reset();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) return after_handshake(t);
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -EAGAIN;
    return sm__tls_error(t, e);
}

bool
sm__tls_handshake_done(const sm__tls *t)
{
    return t->hs_done;
}

ssize_t
sm__tls_read(sm__tls *t, void *buf, size_t len)
{
    size_t n = 0;
    err_reset();
    if (SSL_read_ex(t->ssl, buf, len, &n) == 1) return (ssize_t)n;
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    return sm__tls_error(t, e);
}

bool
sm__tls_read_pending(const sm__tls *t)
{
    return SSL_pending(t->ssl) > 0;
}

static int
write_plain(sm__tls *t, const void *p, size_t n)
{
    size_t done = 0;
    err_reset();
    if (SSL_write_ex(t->ssl, p, n, &done) == 1 && done == n) return 0;
    return sm__tls_error(t, SSL_get_error(t->ssl, 0));
}

ssize_t
sm__tls_write(sm__tls *t, const struct iovec *iov, int iovcnt, size_t max)
{
    uint8_t stage[STAGE];
    size_t staged = 0, taken = 0;
    int rc = 0;
    /* Room for the batch's ciphertext at once: no doubling copies. Records
     * are full but for one per piece passed as it is and the last. */
    size_t plain = 0;
    for (int i = 0; i < iovcnt && plain < max; i++)
        plain += SM__MIN(iov[i].iov_len, max - plain);
    size_t records = plain / STAGE + 2 * (size_t)iovcnt + 1;
    if (plain >= STAGE) (void)sm_buf_reserve(&t->out, plain + records * RECORD_EXTRA);
    t->batch = plain;
    for (int i = 0; i < iovcnt && taken < max && rc == 0; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t n = SM__MIN(iov[i].iov_len, max - taken);
        taken += n;
        bool last = i == iovcnt - 1 || taken == max;
        while (n > 0 && rc == 0) {
            if (staged == 0 && (n >= STAGE || last)) {
                /* Big pieces go straight in: OpenSSL cuts full records.
                 * So does a last piece with nothing staged before it (an
                 * echo's batch of replies by reference is one piece): the
                 * same records without the copy into stage. */
                rc = write_plain(t, p, n);
                break;
            }
            size_t c = SM__MIN(n, STAGE - staged);
            memcpy(stage + staged, p, c);
            staged += c;
            p += c;
            n -= c;
            if (staged == STAGE) {
                rc = write_plain(t, stage, staged);
                staged = 0;
            }
        }
    }
    if (rc == 0 && staged) rc = write_plain(t, stage, staged);
    return rc < 0 ? rc : (ssize_t)taken;
}

int
sm__tls_flush(sm__tls *t)
{
    while (sm_buf_len(&t->out)) {
        ssize_t n =
            send(t->fd, sm_buf_peek(&t->out), sm_buf_len(&t->out), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sm_buf_consume(&t->out, (size_t)n);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return -EAGAIN;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    if (t->out.cap > OUT_KEEP && t->batch < t->out.cap / 4) sm_buf_release(&t->out);
    return 0;
}

size_t
sm__tls_unsent(const sm__tls *t)
{
    return sm_buf_len(&t->out);
}

int
sm__tls_close_notify(sm__tls *t)
{
    if (t->notified || !t->hs_done) return 0;
    t->notified = true;
    err_reset();
    int r = SSL_shutdown(t->ssl);
    if (r >= 0) return 0;
    return sm__tls_error(t, SSL_get_error(t->ssl, r));
}

const char *
sm__tls_detail(const sm__tls *t)
{
    return t->detail;
}

const char *
sm__tls_alpn(const sm__tls *t, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (len) *len = n;
    return n ? (const char *)p : NULL;
}

bool
sm__tls_resumed(const sm__tls *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

int
sm__tls_handshake_timeout(const sm__tls *t)
{
    return atomic_load(&t->cfg->hs_timeout_ms);
}

bool
sm__tls_is_server(const sm__tls *t)
{
    return t->cfg->role == SM_TLS_SERVER;
}
