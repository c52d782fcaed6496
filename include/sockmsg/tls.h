/* sockmsg — TLS configuration for tls:// endpoints.
 *
 * A TLS connection is a TCP connection with TLS (OpenSSL 3) between the
 * socket and the framing: messages, limits, timeouts and close reasons are
 * the same as over plain TCP. A configuration says who we are and whom we
 * trust; it is the caller's, made once and shared by any number of
 * connections (also across threads):
 *
 *     sm_tls_config *tls;
 *     sm_tls_config_new(&tls, SM_TLS_CLIENT, why, sizeof why);
 *     sm_tls_config_set_ca(tls, "ca.pem", NULL, why, sizeof why); // else the system's
 *     sm_conn_dial_tls(&c, "tls://db.example:7000", "len32be", tls, 5000, why, sizeof why);
 *     ...
 *     sm_conn_free(c);
 *     sm_tls_config_free(tls);
 *
 * Verification is on by default: a client checks the server's certificate
 * chain against the trust store (the system's, /etc/ssl/certs, unless
 * sm_tls_config_set_ca says otherwise) and that it names the host dialed
 * (DNS name, or IP address for a literal). sm_tls_config_insecure_skip_verify
 * turns this off; the name says what it does. A server verifies clients only
 * when given a CA (mutual TLS).
 *
 * Defaults: TLS 1.2 minimum, OpenSSL's cipher policy, no compression,
 * renegotiation refused, SNI = the host name dialed (not for IP literals),
 * session resumption (tickets) for clients that reconnect to the same host
 * and port with the same configuration, and key logging to the file
 * $SSLKEYLOGFILE names (read once, by sm_tls_config_new) for Wireshark.
 *
 * Errors: TLS failures come back as the SM_ERR_TLS_* codes of error.h
 * (expired certificate, host name mismatch, unknown CA, not TLS at all, no
 * ALPN in common, EOF without close_notify); the detail string says more,
 * with OpenSSL's reason: "host name mismatch: cert is for other.example,
 * www.other.example (dialed db.example)".
 *
 * Built without OpenSSL, every function here returns SM_ERR_TLS_UNAVAILABLE
 * (sm_tls_config_free is a no-op) and tls:// endpoints fail the same way.
 *
 * Thread-safety: configure first, then use. A configuration in use may be
 * read by many threads at once; of the setters only sm_tls_config_set_cert
 * (a certificate reload: new handshakes use the new pair, established
 * connections keep theirs) and sm_tls_config_set_handshake_timeout may be
 * called while connections use it.
 * sm_tls_config_free may come before the connections using it are freed:
 * they hold a reference.
 */
#ifndef SOCKMSG_TLS_H
#define SOCKMSG_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_tls_config sm_tls_config;

typedef enum sm_tls_role {
    SM_TLS_CLIENT = 1, /* dials: verifies the server */
    SM_TLS_SERVER = 2, /* accepts: presents a certificate */
} sm_tls_role;

/* Protocol versions for sm_tls_config_set_min_version (the wire values). */
#define SM_TLS_1_2 0x0303
#define SM_TLS_1_3 0x0304

/* sm_tls_available - true when the library was built with TLS. */
SM_API bool sm_tls_available(void);

/* sm_tls_config_new - a configuration with the defaults above. A server's
 * needs sm_tls_config_set_cert before it is used. Returns 0, -ENOMEM,
 * SM_ERR_TLS (OpenSSL could not set up; `why` says why, also for a
 * $SSLKEYLOGFILE that cannot be opened), SM_ERR_TLS_UNAVAILABLE. */
SM_API int sm_tls_config_new(sm_tls_config **out, sm_tls_role role, char *why, size_t why_len);

/* sm_tls_config_free - drop the caller's reference. NULL is a no-op. */
SM_API void sm_tls_config_free(sm_tls_config *cfg);

/* sm_tls_config_set_ca - trust these CAs (PEM file, a c_rehash'd directory,
 * or both) instead of the system's. On a server it turns on client
 * verification: clients must present a certificate these CAs signed
 * (mutual TLS). Returns 0, -EINVAL (both NULL), SM_ERR_TLS (unreadable:
 * `why` names the file and OpenSSL's reason). */
SM_API int sm_tls_config_set_ca(sm_tls_config *cfg, const char *ca_file, const char *ca_dir,
                                char *why, size_t why_len);

/* sm_tls_config_set_cert - the certificate chain (PEM: leaf first, then
 * intermediates) and its private key (PEM). A server's identity; a
 * client's for mutual TLS. The pair is checked to match. May be called
 * again at any time to reload. Returns 0, -EINVAL, SM_ERR_TLS (`why`). */
SM_API int sm_tls_config_set_cert(sm_tls_config *cfg, const char *chain_file, const char *key_file,
                                  char *why, size_t why_len);

/* sm_tls_config_set_server_name - client: the name sent as SNI and checked
 * against the certificate, instead of the host of the endpoint dialed
 * (for dialing an address whose certificate names a host). NULL restores
 * the default. Returns 0, -EINVAL (a server config, or longer than 255). */
SM_API int sm_tls_config_set_server_name(sm_tls_config *cfg, const char *name);

/* sm_tls_config_set_alpn - the application protocols, comma-separated in
 * order of preference ("h2,http/1.1"). A client offers them and fails with
 * SM_ERR_TLS_ALPN unless the server picks one; a server picks the first of
 * its list the client offers and refuses a client that offers none of
 * them (SM_ERR_TLS_ALPN: "peer did not offer ALPN h2"). NULL or "" clears.
 * Returns 0, -EINVAL (an empty or > 255-byte name). */
SM_API int sm_tls_config_set_alpn(sm_tls_config *cfg, const char *protocols);

/* sm_tls_config_set_min_version - SM_TLS_1_2 (the default) or SM_TLS_1_3.
 * Returns 0 or -EINVAL. */
SM_API int sm_tls_config_set_min_version(sm_tls_config *cfg, int version);

/* sm_tls_config_insecure_skip_verify - true: a client accepts any server
 * certificate (expired, self-signed, for another name): the connection is
 * encrypted but not authenticated, open to anyone in the middle. For tests
 * and debugging only. Returns 0. */
SM_API int sm_tls_config_insecure_skip_verify(sm_tls_config *cfg, bool insecure);

/* sm_tls_config_set_keylog - append the session secrets of every
 * connection to this file (NSS key log format, what $SSLKEYLOGFILE asks
 * for), or NULL to stop. Anyone who reads the file can decrypt the
 * traffic. Returns 0 or -errno (the file cannot be opened). */
SM_API int sm_tls_config_set_keylog(sm_tls_config *cfg, const char *path);

/* sm_tls_config_set_resumption - client: resume sessions (TLS 1.3 tickets,
 * TLS 1.2 sessions) when reconnecting to the same host and port (on by
 * default). Returns 0. */
SM_API int sm_tls_config_set_resumption(sm_tls_config *cfg, bool on);

/* sm_tls_config_set_handshake_timeout - how long an event-driven stream's
 * handshake may take (sm_stream_new_tls, tls:// dials, TLS listeners of
 * both server models): default 10000 ms. sm_conn_dial_tls and
 * sm_conn_new_tls are bounded by their call's timeout instead. May be
 * called at any time: new handshakes use the new value. Returns 0,
 * -EINVAL (<= 0). */
SM_API int sm_tls_config_set_handshake_timeout(sm_tls_config *cfg, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
