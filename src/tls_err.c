/* TLS errors people can act on: OpenSSL's error queue and verify result
 * turned into the SM_ERR_TLS_* codes, with a detail naming what failed. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "tls_ossl.h"

int
sm__tls_fail(sm__tls *t, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof t->detail, fmt, ap);
    va_end(ap);
    return err;
}

/* "a, b, c": the names a certificate is for (subjectAltName DNS and IP
 * entries, else its common name). */
static void
cert_names(X509 *x, char *out, size_t cap)
{
    size_t w = 0;
    out[0] = '\0';
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && w + 1 < cap; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char ip[64] = "";
        const char *name = NULL;
        int len = 0;
        if (g->type == GEN_DNS) {
            name = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            len = ASN1_STRING_length(g->d.dNSName);
        } else if (g->type == GEN_IPADD) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            int n = ASN1_STRING_length(g->d.iPAddress);
            if (!inet_ntop(n == 16 ? AF_INET6 : AF_INET, a, ip, sizeof ip) || (n != 4 && n != 16))
                snprintf(ip, sizeof ip, "(bad IP)");
            name = ip;
            len = (int)strlen(ip);
        }
        if (!name) continue;
        int k = snprintf(out + w, cap - w, "%s%.*s", w ? ", " : "", len, name);
        if (k > 0) w = SM__MIN(cap - 1, w + (size_t)k);
    }
    GENERAL_NAMES_free(gens);
    if (w == 0) {
        char cn[128];
        /* Cut to fit: a detail string, not a certificate dump. Copied by
         * hand because gcc -O2 warns of the truncation snprintf would do. */
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        if (n > 0 && cap > 3) {
            size_t k = SM__MIN(strlen(cn), cap - 4); /* n may exceed what fit in cn */
            memcpy(out, "CN=", 3);
            memcpy(out + 3, cn, k);
            out[3 + k] = '\0';
        } else
            snprintf(out, cap, "no names");
    }
}

int
sm__tls_verify_cb(int ok, X509_STORE_CTX *store)
{
    if (ok) return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    sm__tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *x = X509_STORE_CTX_get_current_cert(store);
    if (!t || !x || t->vinfo[0]) return ok; /* the first failure is the one to tell */
    int err = X509_STORE_CTX_get_error(store);
    char buf[128];
    switch (err) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        cert_names(x, buf, sizeof buf);
        snprintf(t->vinfo, sizeof t->vinfo, "%s", buf);
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID: {
        const ASN1_TIME *at =
            err == X509_V_ERR_CERT_HAS_EXPIRED ? X509_get0_notAfter(x) : X509_get0_notBefore(x);
        struct tm tm;
        char when[40] = "?";
        if (ASN1_TIME_to_tm(at, &tm) == 1)
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        cert_names(x, buf, sizeof buf);
        snprintf(t->vinfo, sizeof t->vinfo, "%s %s, cert for %.90s",
                 err == X509_V_ERR_CERT_HAS_EXPIRED ? "expired" : "valid from", when, buf);
        break;
    }
    default:
        X509_NAME_oneline(X509_get_issuer_name(x), buf, sizeof buf);
        snprintf(t->vinfo, sizeof t->vinfo, "issuer %s", buf);
        break;
    }
    return ok;
}

static int
verify_error(sm__tls *t)
{
    long v = SSL_get_verify_result(t->ssl);
    const char *what = X509_verify_cert_error_string(v);
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return sm__tls_fail(t, SM_ERR_TLS_EXPIRED, "certificate has expired: %s", t->vinfo);
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return sm__tls_fail(t, SM_ERR_TLS_HOSTNAME,
                            "host name mismatch: cert is for %s (dialed %s)", t->vinfo, t->host);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return sm__tls_fail(t, SM_ERR_TLS_UNKNOWN_CA, "unknown CA: %s (%s)", what, t->vinfo);
    default:
        return sm__tls_fail(t, SM_ERR_TLS_VERIFY, "certificate rejected: %s (%s)", what, t->vinfo);
    }
}

/* The peer sent an alert (OpenSSL's reasons from SSL_AD_REASON_OFFSET up). */
static int
alert_error(sm__tls *t, int alert, const char *reason)
{
    switch (alert) {
    case SSL_AD_NO_APPLICATION_PROTOCOL:
        return sm__tls_fail(t, SM_ERR_TLS_ALPN,
                            "peer has no ALPN protocol in common with ours (we offered %s)",
                            t->cfg->alpn_text ? t->cfg->alpn_text : "none");
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return sm__tls_fail(t, SM_ERR_TLS_VERIFY, "peer rejected our certificate: %s", reason);
    default:
        return sm__tls_fail(t, SM_ERR_TLS, "peer sent a TLS alert: %s", reason);
    }
}

int
sm__tls_error(sm__tls *t, int ssl_err)
{
    unsigned long e = ERR_peek_last_error();
    int reason = e ? ERR_GET_REASON(e) : 0;
    const char *rs = e ? ERR_reason_error_string(e) : NULL;
    if (!rs) rs = "unknown reason";
    ERR_clear_error();
    const char *during = t->hs_done ? "" : " during the TLS handshake";

    if (ssl_err == SSL_ERROR_SYSCALL || (ssl_err == SSL_ERROR_SSL && !e)) {
        if (t->sock_err)
            return sm__tls_fail(t, -t->sock_err, "%s%s", sm_strerror(-t->sock_err), during);
        if (t->sock_eof && !t->hs_done)
            return sm__tls_fail(t, SM_ERR_TLS, "peer closed the connection during the handshake");
        if (t->sock_eof) return sm__tls_fail(t, SM_ERR_TLS_EOF, "peer closed without close_notify");
        return sm__tls_fail(t, SM_ERR_TLS, "TLS failure (SSL error %d)", ssl_err);
    }
    if (ssl_err != SSL_ERROR_SSL) return sm__tls_fail(t, SM_ERR_TLS, "TLS: %s", rs);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
        switch (reason) {
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return verify_error(t);
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_UNKNOWN_PROTOCOL:
        case SSL_R_RECORD_LENGTH_MISMATCH:
            return sm__tls_fail(t, SM_ERR_TLS_NOT_TLS, "not TLS (plain HTTP on a TLS port?): %s",
                                rs);
        case SSL_R_NO_APPLICATION_PROTOCOL:
            if (t->alpn_miss)
                return sm__tls_fail(t, SM_ERR_TLS_ALPN, "peer did not offer ALPN %s",
                                    t->cfg->alpn_text ? t->cfg->alpn_text : "");
            return sm__tls_fail(t, SM_ERR_TLS_ALPN, "no ALPN protocol in common: %s", rs);
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            if (!t->hs_done)
                return sm__tls_fail(t, SM_ERR_TLS,
                                    "peer closed the connection during the handshake");
            return sm__tls_fail(t, SM_ERR_TLS_EOF, "peer closed without close_notify");
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
            return sm__tls_fail(t, SM_ERR_TLS, "no TLS version in common: %s", rs);
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return sm__tls_fail(t, SM_ERR_TLS_VERIFY,
                                "peer sent no certificate (one is required): %s", rs);
        default:
            break;
        }
        if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
            return alert_error(t, reason - SSL_AD_REASON_OFFSET, rs);
    }
    return sm__tls_fail(t, SM_ERR_TLS, "TLS%s: %s", during, rs);
}
