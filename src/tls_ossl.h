/* The OpenSSL side of the TLS modules (tls_config.c, tls_err.c,
 * tls_session.c, tls_block.c): the configuration and session structs.
 * Never installed; only the TLS modules include OpenSSL. */
#ifndef SM_TLS_OSSL_H
#define SM_TLS_OSSL_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>

#include "sockmsg/buf.h"
#include "tls_internal.h"

/* Client sessions kept for resumption: one per host and port, the least
 * recently stored replaced first. */
#define SM__TLS_CACHE   16
#define SM__TLS_KEY_MAX 272

struct sm_tls_config {
    atomic_int refs; /* the caller's, plus one per session */
    sm_tls_role role;
    SSL_CTX *ctx;
    BIO_METHOD *bio; /* our BIO (tls_session.c), one per config: no globals */
    bool insecure, resume, verify_clients;
    char *server_name;
    unsigned char *alpn; /* wire format: length-prefixed names */
    size_t alpn_len;
    char *alpn_text; /* as given, for messages */
    int keylog_fd;
    atomic_int hs_timeout_ms; /* may change while in use */
    pthread_mutex_t mu;       /* the certificate pair and the session cache */
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
    uint64_t clock;
    struct {
        char key[SM__TLS_KEY_MAX];
        SSL_SESSION *sess;
        uint64_t stamp;
    } cache[SM__TLS_CACHE];
};

struct sm__tls {
    SSL *ssl;
    sm_tls_config *cfg;
    int fd;
    int sock_err;              /* errno of the socket read that failed, or 0 */
    bool sock_eof;             /* the socket read returned 0 */
    bool hs_done;              /* handshake complete (and checked) */
    bool notified;             /* close_notify queued */
    bool alpn_miss;            /* the server's ALPN callback found nothing in common */
    sm_buf out;                /* ciphertext not yet written */
    size_t batch;              /* plaintext bytes of the last sm__tls_write */
    pthread_mutex_t mu;        /* tls_block.c: one sender and one receiver thread */
    char key[SM__TLS_KEY_MAX]; /* the session cache key, or "" */
    char host[256];            /* the name verified, or "" */
    char vinfo[160];           /* what the verify callback saw */
    char detail[SM__TLS_DETAIL];
};

/* tls_config.c */
void sm__tls_config_ref(sm_tls_config *cfg);
/* Load the config's current certificate pair into ssl (0, or -1). */
int sm__tls_config_use_cert(sm_tls_config *cfg, SSL *ssl);
/* The cached session for key (a reference the caller frees), or NULL. */
SSL_SESSION *sm__tls_cache_get(sm_tls_config *cfg, const char *key);

/* tls_err.c: turn a failed SSL_* call (SSL_get_error's answer) into a
 * library code, with t->detail explaining it. Clears OpenSSL's queue. */
int sm__tls_error(sm__tls *t, int ssl_err);
/* The verify callback: records what failed in t->vinfo. */
int sm__tls_verify_cb(int ok, X509_STORE_CTX *store);
/* Write detail and return err. */
int sm__tls_fail(sm__tls *t, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
