/* TLS configurations: an SSL_CTX with sockmsg's defaults, the certificate
 * pair (reloadable), ALPN, key logging and the client session cache. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "tls_ossl.h"

static void
chain_free(STACK_OF(X509) * chain)
{
    sk_X509_pop_free(chain, X509_free);
}

bool
sm_tls_available(void)
{
    return true;
}

/* OpenSSL's last queued reason, for `why`. Clears the queue. */
static int
ossl_why(char *why, size_t why_len, int err, const char *what, const char *name)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return sm__why(why, why_len, err, "%s '%s': %s", what, name ? name : "", r ? r : "failed");
}

static void
keylog_cb(const SSL *ssl, const char *line)
{
    sm_tls_config *cfg = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!cfg || cfg->keylog_fd < 0) return;
    /* One write per line: O_APPEND keeps lines of concurrent writers whole. */
    struct iovec v[2] = {{(void *)line, strlen(line)}, {"\n", 1}};
    ssize_t n = writev(cfg->keylog_fd, v, 2);
    (void)n; /* a debugging aid: nothing to do about a full disk here */
}

static void
cache_put(sm_tls_config *cfg, const char *key, SSL_SESSION *sess)
{
    pthread_mutex_lock(&cfg->mu);
    int slot = 0;
    for (int i = 0; i < SM__TLS_CACHE; i++) {
        if (!strcmp(cfg->cache[i].key, key)) {
            slot = i;
            break;
        }
        if (cfg->cache[i].stamp < cfg->cache[slot].stamp) slot = i;
    }
    if (cfg->cache[slot].sess) SSL_SESSION_free(cfg->cache[slot].sess);
    snprintf(cfg->cache[slot].key, sizeof cfg->cache[slot].key, "%s", key);
    cfg->cache[slot].sess = sess;
    cfg->cache[slot].stamp = ++cfg->clock;
    pthread_mutex_unlock(&cfg->mu);
}

SSL_SESSION *
sm__tls_cache_get(sm_tls_config *cfg, const char *key)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&cfg->mu);
    for (int i = 0; i < SM__TLS_CACHE; i++) {
        if (cfg->cache[i].sess && !strcmp(cfg->cache[i].key, key)) {
            if (SSL_SESSION_is_resumable(cfg->cache[i].sess)) {
                s = cfg->cache[i].sess;
                SSL_SESSION_up_ref(s);
            }
            break;
        }
    }
    pthread_mutex_unlock(&cfg->mu);
    return s;
}

/* A client got a session (a TLS 1.3 ticket after the handshake, or a TLS
 * 1.2 session): keep it for the next connection to the same place. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    sm__tls *t = SSL_get_app_data(ssl);
    if (!t || !t->key[0] || !t->cfg->resume) return 0;
    cache_put(t->cfg, t->key, sess);
    return 1; /* the cache keeps the reference */
}

/* A server picks the first protocol of its list that the client offers. */
static int
alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
               unsigned inlen, void *arg)
{
    sm_tls_config *cfg = arg;
    for (size_t i = 0; i < cfg->alpn_len; i += 1 + cfg->alpn[i]) {
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (in[j] == cfg->alpn[i] && j + 1u + in[j] <= inlen &&
                !memcmp(in + j + 1, cfg->alpn + i + 1, in[j])) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    sm__tls *t = SSL_get_app_data(ssl);
    if (t) t->alpn_miss = true;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int
sm_tls_config_new(sm_tls_config **out, sm_tls_role role, char *why, size_t why_len)
{
    if (!out || (role != SM_TLS_CLIENT && role != SM_TLS_SERVER))
        return sm__why(why, why_len, -EINVAL, "bad arguments");
    sm_tls_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return sm__why(why, why_len, -ENOMEM, "out of memory");
    atomic_init(&cfg->refs, 1);
    cfg->role = role;
    cfg->resume = true;
    cfg->keylog_fd = -1;
    atomic_init(&cfg->hs_timeout_ms, 10000);
    pthread_mutex_init(&cfg->mu, NULL);
    int rc = 0;
    cfg->ctx = SSL_CTX_new(role == SM_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
    cfg->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sockmsg");
    if (!cfg->ctx || !cfg->bio) {
        rc = ossl_why(why, why_len, SM_ERR_TLS, "OpenSSL setup", "SSL_CTX_new");
        goto fail;
    }
    SSL_CTX_set_app_data(cfg->ctx, cfg);
    SSL_CTX_set_min_proto_version(cfg->ctx, TLS1_2_VERSION);
    /* Renegotiation is refused; the BIO never refuses a write (it buffers),
     * so a write is never retried with another buffer, but say so anyway. */
    SSL_CTX_set_options(cfg->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(cfg->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (role == SM_TLS_CLIENT) {
        SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER, sm__tls_verify_cb);
        if (SSL_CTX_set_default_verify_paths(cfg->ctx) != 1) {
            rc = ossl_why(why, why_len, SM_ERR_TLS, "loading the system trust store", "");
            goto fail;
        }
        SSL_CTX_set_session_cache_mode(cfg->ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(cfg->ctx, new_session_cb);
    } else {
        SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_alpn_select_cb(cfg->ctx, alpn_select_cb, cfg);
    }
    const char *kl = getenv("SSLKEYLOGFILE");
    if (kl && *kl && (rc = sm_tls_config_set_keylog(cfg, kl)) < 0) {
        sm__why(why, why_len, rc, "SSLKEYLOGFILE '%s': %s", kl, sm_strerror(rc));
        goto fail;
    }
    *out = cfg;
    return 0;
fail:
    sm_tls_config_free(cfg);
    return rc;
}

void
sm__tls_config_ref(sm_tls_config *cfg)
{
    atomic_fetch_add(&cfg->refs, 1);
}

void
sm_tls_config_free(sm_tls_config *cfg)
{
    if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1) return;
    SSL_CTX_free(cfg->ctx);
    BIO_meth_free(cfg->bio);
    X509_free(cfg->cert);
    EVP_PKEY_free(cfg->key);
    chain_free(cfg->chain);
    for (int i = 0; i < SM__TLS_CACHE; i++)
        SSL_SESSION_free(cfg->cache[i].sess);
    if (cfg->keylog_fd >= 0) close(cfg->keylog_fd);
    pthread_mutex_destroy(&cfg->mu);
    free(cfg->server_name);
    free(cfg->alpn);
    free(cfg->alpn_text);
    free(cfg);
}

int
sm_tls_config_set_ca(sm_tls_config *cfg, const char *ca_file, const char *ca_dir, char *why,
                     size_t why_len)
{
    if (!cfg || (!ca_file && !ca_dir)) return sm__why(why, why_len, -EINVAL, "no CA file or dir");
    /* A new store: the system's roots are not trusted beside the ones given. */
    X509_STORE *st = X509_STORE_new();
    if (!st) return ossl_why(why, why_len, -ENOMEM, "X509_STORE_new", "");
    if (X509_STORE_load_locations(st, ca_file, ca_dir) != 1) {
        X509_STORE_free(st);
        return ossl_why(why, why_len, SM_ERR_TLS, "cannot load CA", ca_file ? ca_file : ca_dir);
    }
    SSL_CTX_set_cert_store(cfg->ctx, st);
    if (cfg->role == SM_TLS_SERVER) {
        if (ca_file) {
            /* Tell clients whose certificates are wanted. */
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
            if (names) SSL_CTX_set_client_CA_list(cfg->ctx, names);
        }
        SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           sm__tls_verify_cb);
        cfg->verify_clients = true;
    }
    ERR_clear_error();
    return 0;
}

int
sm_tls_config_set_cert(sm_tls_config *cfg, const char *chain_file, const char *key_file, char *why,
                       size_t why_len)
{
    if (!cfg || !chain_file || !key_file)
        return sm__why(why, why_len, -EINVAL, "need a chain file and a key file");
    BIO *b = BIO_new_file(chain_file, "r");
    if (!b) return ossl_why(why, why_len, SM_ERR_TLS, "cannot open certificate", chain_file);
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *x;
    while (leaf && chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(chain, x)) X509_free(x);
    BIO_free(b);
    if (!leaf || !chain) {
        X509_free(leaf);
        chain_free(chain);
        return ossl_why(why, why_len, SM_ERR_TLS, "no PEM certificate in", chain_file);
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    b = BIO_new_file(key_file, "r");
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    int rc = 0;
    if (!key)
        rc = ossl_why(why, why_len, SM_ERR_TLS, "cannot read private key", key_file);
    else if (X509_check_private_key(leaf, key) != 1)
        rc = ossl_why(why, why_len, SM_ERR_TLS, "key does not match the certificate", key_file);
    if (rc < 0) {
        X509_free(leaf);
        EVP_PKEY_free(key);
        chain_free(chain);
        return rc;
    }
    pthread_mutex_lock(&cfg->mu);
    X509 *old_x = cfg->cert;
    EVP_PKEY *old_k = cfg->key;
    STACK_OF(X509) *old_c = cfg->chain;
    cfg->cert = leaf;
    cfg->key = key;
    cfg->chain = chain;
    pthread_mutex_unlock(&cfg->mu);
    X509_free(old_x);
    EVP_PKEY_free(old_k);
    chain_free(old_c);
    return 0;
}

int
sm__tls_config_use_cert(sm_tls_config *cfg, SSL *ssl)
{
    int rc = 0;
    pthread_mutex_lock(&cfg->mu);
    if (cfg->cert) rc = SSL_use_cert_and_key(ssl, cfg->cert, cfg->key, cfg->chain, 1) == 1 ? 0 : -1;
    pthread_mutex_unlock(&cfg->mu);
    return rc;
}

int
sm_tls_config_set_server_name(sm_tls_config *cfg, const char *name)
{
    if (!cfg || cfg->role != SM_TLS_CLIENT || (name && (!*name || strlen(name) > 255)))
        return -EINVAL;
    char *copy = name ? strdup(name) : NULL;
    if (name && !copy) return -ENOMEM;
    free(cfg->server_name);
    cfg->server_name = copy;
    return 0;
}

int
sm_tls_config_set_alpn(sm_tls_config *cfg, const char *protocols)
{
    if (!cfg) return -EINVAL;
    size_t n = protocols ? strlen(protocols) : 0;
    unsigned char *wire = NULL;
    char *text = NULL;
    if (n) {
        wire = malloc(n + 1);
        text = strdup(protocols);
        if (!wire || !text) {
            free(wire);
            free(text);
            return -ENOMEM;
        }
        /* "a,bc" -> "\1a\2bc": each name gets its length in front. */
        size_t w = 0;
        for (const char *p = protocols;;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len == 0 || len > 255) {
                free(wire);
                free(text);
                return -EINVAL;
            }
            wire[w++] = (unsigned char)len;
            for (size_t k = 0; k < len; k++)
                wire[w++] = (unsigned char)p[k];
            if (!end) break;
            p = end + 1;
        }
        n = w;
        if (cfg->role == SM_TLS_CLIENT && SSL_CTX_set_alpn_protos(cfg->ctx, wire, (unsigned)n)) {
            free(wire);
            free(text);
            return -ENOMEM;
        }
    } else if (cfg->role == SM_TLS_CLIENT) {
        SSL_CTX_set_alpn_protos(cfg->ctx, NULL, 0);
    }
    free(cfg->alpn);
    free(cfg->alpn_text);
    cfg->alpn = wire;
    cfg->alpn_len = n;
    cfg->alpn_text = text;
    return 0;
}

int
sm_tls_config_set_min_version(sm_tls_config *cfg, int version)
{
    if (!cfg || (version != SM_TLS_1_2 && version != SM_TLS_1_3)) return -EINVAL;
    return SSL_CTX_set_min_proto_version(cfg->ctx, version) == 1 ? 0 : -EINVAL;
}

int
sm_tls_config_insecure_skip_verify(sm_tls_config *cfg, bool insecure)
{
    if (!cfg) return -EINVAL;
    cfg->insecure = insecure;
    return 0;
}

int
sm_tls_config_set_keylog(sm_tls_config *cfg, const char *path)
{
    if (!cfg) return -EINVAL;
    int fd = -1;
    if (path && (fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
        return -errno;
    if (cfg->keylog_fd >= 0) close(cfg->keylog_fd);
    cfg->keylog_fd = fd;
    /* Only with a file: with a callback set, OpenSSL formats every secret
     * of every handshake as hex, byte by byte with sprintf (about 225,000
     * instructions, 8% of a TLS 1.3 server handshake under callgrind). */
    SSL_CTX_set_keylog_callback(cfg->ctx, fd >= 0 ? keylog_cb : NULL);
    return 0;
}

int
sm_tls_config_set_resumption(sm_tls_config *cfg, bool on)
{
    if (!cfg) return -EINVAL;
    cfg->resume = on;
    return 0;
}

int
sm_tls_config_set_handshake_timeout(sm_tls_config *cfg, int timeout_ms)
{
    if (!cfg || timeout_ms <= 0) return -EINVAL;
    atomic_store(&cfg->hs_timeout_ms, timeout_ms);
    return 0;
}

sm_tls_role
sm__tls_config_role(const sm_tls_config *cfg)
{
    return cfg->role;
}

int
sm__tls_config_handshake_timeout(const sm_tls_config *cfg)
{
    return atomic_load(&cfg->hs_timeout_ms);
}
