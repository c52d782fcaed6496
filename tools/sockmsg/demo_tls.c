/* sockmsg demo's TLS rows: a throwaway self-signed certificate (P-256,
 * for 127.0.0.1 and localhost, one day) made with OpenSSL in a private
 * directory, the server configuration that presents it and a client
 * configuration that trusts it (a self-signed certificate is its own CA),
 * so the TLS rows verify as a real client does. */
#include <stdio.h>

#include "demo_tls.h"

#ifdef SOCKMSG_TOOL_TLS
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static bool
write_pem(const char *path, EVP_PKEY *k, X509 *x)
{
    FILE *f = fopen(path, "w");
    if (!f) return false;
    if (k) fchmod(fileno(f), 0600);
    bool ok = k ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
    return fclose(f) == 0 && ok;
}

static bool
make_cert(const char *cert, const char *key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = k && x;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 24L * 3600); /* a day */
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                                   -1, 0);
        X509_set_issuer_name(x, n);
        X509_set_pubkey(x, k);
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *san =
            X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
        ok = san && X509_add_ext(x, san, -1) && X509_sign(x, k, EVP_sha256()) > 0 &&
             write_pem(key, k, NULL) && write_pem(cert, NULL, x);
        X509_EXTENSION_free(san);
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return ok;
}

int
demo_tls_make(demo_tls *t, char *why, size_t len)
{
    *t = (demo_tls){0};
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/sockmsg-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir)) {
        snprintf(why, len, "a directory for the demo's certificate: %s", t->dir);
        t->dir[0] = '\0';
        return -1;
    }
    char cert[sizeof t->dir + 16], key[sizeof t->dir + 16];
    snprintf(cert, sizeof cert, "%s/cert.pem", t->dir);
    snprintf(key, sizeof key, "%s/key.pem", t->dir);
    int rc = make_cert(cert, key) ? 0 : -1;
    if (rc < 0) snprintf(why, len, "making a self-signed certificate failed");
    if (rc == 0) rc = sm_tls_config_new(&t->server, SM_TLS_SERVER, why, len);
    if (rc == 0) rc = sm_tls_config_set_cert(t->server, cert, key, why, len);
    if (rc == 0) rc = sm_tls_config_new(&t->client, SM_TLS_CLIENT, why, len);
    if (rc == 0) rc = sm_tls_config_set_ca(t->client, cert, NULL, why, len);
    /* The configurations hold what they loaded: the files can go now. */
    unlink(cert);
    unlink(key);
    rmdir(t->dir);
    t->dir[0] = '\0';
    if (rc < 0) demo_tls_free(t);
    return rc < 0 ? -1 : 0;
}

void
demo_tls_free(demo_tls *t)
{
    sm_tls_config_free(t->server);
    sm_tls_config_free(t->client);
    t->server = t->client = NULL;
}

#else

int
demo_tls_make(demo_tls *t, char *why, size_t len)
{
    *t = (demo_tls){0};
    snprintf(why, len, "built without TLS (OpenSSL 3 was not found)");
    return -1;
}

void
demo_tls_free(demo_tls *t)
{
    (void)t;
}

#endif
