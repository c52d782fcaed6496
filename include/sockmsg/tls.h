/**
 * @file
 * @brief TLS configuration for tls:// endpoints.
 *
 * A TLS connection is a TCP connection with TLS (OpenSSL 3) between the
 * socket and the framing: messages, limits, timeouts and close reasons are
 * the same as over plain TCP. A configuration says who we are and whom we
 * trust; it is the caller's, made once and shared by any number of
 * connections (also across threads):
 *
 * @code
 *     sm_tls_config *tls;
 *     sm_tls_config_new(&tls, SM_TLS_CLIENT, why, sizeof why);
 *     sm_tls_config_set_ca(tls, "ca.pem", NULL, why, sizeof why); // else the system's
 *     sm_conn_dial_tls(&c, "tls://db.example:7000", "len32be", tls, 5000, why, sizeof why);
 *     ...
 *     sm_conn_free(c);
 *     sm_tls_config_free(tls);
 * @endcode
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
 * @threads Configure first, then use. A configuration in use may be
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

/** A TLS configuration (opaque, reference-counted). */
typedef struct sm_tls_config sm_tls_config;

/** Which side of the handshake a configuration is for. */
typedef enum sm_tls_role {
    SM_TLS_CLIENT = 1, /**< dials: verifies the server */
    SM_TLS_SERVER = 2, /**< accepts: presents a certificate */
} sm_tls_role;

/** TLS 1.2, for sm_tls_config_set_min_version() (the wire value). */
#define SM_TLS_1_2 0x0303
/** TLS 1.3, for sm_tls_config_set_min_version() (the wire value). */
#define SM_TLS_1_3 0x0304

/**
 * Whether the library was built with TLS.
 *
 * @return true when it was (OpenSSL 3), false otherwise
 */
SM_API bool sm_tls_available(void);

/**
 * A configuration with the defaults above. A server's needs
 * sm_tls_config_set_cert() before it is used.
 *
 * @param out      receives the configuration, holding the caller's reference
 * @param role     SM_TLS_CLIENT or SM_TLS_SERVER
 * @param why      NULL, or a buffer for a one-line explanation of an error
 * @param why_len  the size of @p why
 * @retval 0           *out is set
 * @retval -EINVAL     NULL out, or another role
 * @retval -ENOMEM     out of memory
 * @retval SM_ERR_TLS  OpenSSL could not set up; `why` says why, also for a
 *                     $SSLKEYLOGFILE that cannot be opened
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_new(sm_tls_config **out, sm_tls_role role, char *why, size_t why_len);

/**
 * Drop the caller's reference. Connections still using the configuration
 * hold their own.
 *
 * @param cfg  the configuration, or NULL (a no-op)
 */
SM_API void sm_tls_config_free(sm_tls_config *cfg);

/**
 * Trust these CAs (PEM file, a c_rehash'd directory, or both) instead of
 * the system's. On a server it turns on client verification: clients must
 * present a certificate these CAs signed (mutual TLS).
 *
 * @param cfg      the configuration
 * @param ca_file  a PEM file of CA certificates, or NULL
 * @param ca_dir   a c_rehash'd directory of them, or NULL
 * @param why      NULL, or a buffer for a one-line explanation of an error
 * @param why_len  the size of @p why
 * @retval 0           done
 * @retval -EINVAL     both NULL (or a NULL cfg)
 * @retval SM_ERR_TLS  unreadable: `why` names the file and OpenSSL's reason
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_ca(sm_tls_config *cfg, const char *ca_file, const char *ca_dir,
                                char *why, size_t why_len);

/**
 * The certificate chain and its private key: a server's identity; a
 * client's for mutual TLS. The pair is checked to match. May be called
 * again at any time to reload (see Threads above).
 *
 * @param cfg         the configuration
 * @param chain_file  PEM: the leaf certificate first, then intermediates
 * @param key_file    PEM: the private key
 * @param why         NULL, or a buffer for a one-line explanation of an error
 * @param why_len     the size of @p why
 * @retval 0           done
 * @retval -EINVAL     a NULL argument
 * @retval SM_ERR_TLS  a file cannot be read, or the pair does not match
 *                     (`why`)
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_cert(sm_tls_config *cfg, const char *chain_file, const char *key_file,
                                  char *why, size_t why_len);

/**
 * Client: the name sent as SNI and checked against the certificate,
 * instead of the host of the endpoint dialed (for dialing an address whose
 * certificate names a host).
 *
 * @param cfg   a client configuration
 * @param name  the name, or NULL to restore the default
 * @retval 0        done
 * @retval -EINVAL  a server config, or a name empty or longer than 255
 * @retval -ENOMEM  out of memory
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_server_name(sm_tls_config *cfg, const char *name);

/**
 * The application protocols (ALPN). A client offers them and fails with
 * SM_ERR_TLS_ALPN unless the server picks one; a server picks the first of
 * its list the client offers and refuses a client that offers none of them
 * (SM_ERR_TLS_ALPN: "peer did not offer ALPN h2").
 *
 * @param cfg        the configuration
 * @param protocols  comma-separated in order of preference ("h2,http/1.1");
 *                   NULL or "" clears
 * @retval 0        done
 * @retval -EINVAL  an empty or > 255-byte name
 * @retval -ENOMEM  out of memory
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_alpn(sm_tls_config *cfg, const char *protocols);

/**
 * The oldest protocol version accepted.
 *
 * @param cfg      the configuration
 * @param version  SM_TLS_1_2 (the default) or SM_TLS_1_3
 * @retval 0        done
 * @retval -EINVAL  another version
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_min_version(sm_tls_config *cfg, int version);

/**
 * Turn off a client's verification of the server. For tests and debugging
 * only.
 *
 * @param cfg       the configuration
 * @param insecure  true: a client accepts any server certificate (expired,
 *                  self-signed, for another name): the connection is
 *                  encrypted but not authenticated, open to anyone in the
 *                  middle; false: verify (the default)
 * @retval 0  done (-EINVAL for a NULL cfg)
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_insecure_skip_verify(sm_tls_config *cfg, bool insecure);

/**
 * Append the session secrets of every connection to a file (NSS key log
 * format, what $SSLKEYLOGFILE asks for). Anyone who reads the file can
 * decrypt the traffic.
 *
 * @param cfg   the configuration
 * @param path  the file, or NULL to stop
 * @retval 0       done
 * @retval -errno  the file cannot be opened (-EINVAL for a NULL cfg)
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_keylog(sm_tls_config *cfg, const char *path);

/**
 * Client: resume sessions (TLS 1.3 tickets, TLS 1.2 sessions) when
 * reconnecting to the same host and port.
 *
 * @param cfg  the configuration
 * @param on   true (the default) to resume, false not to
 * @retval 0  done (-EINVAL for a NULL cfg)
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_resumption(sm_tls_config *cfg, bool on);

/**
 * How long an event-driven stream's handshake may take (sm_stream_new_tls(),
 * tls:// dials, TLS listeners of both server models). sm_conn_dial_tls()
 * and sm_conn_new_tls() are bounded by their call's timeout instead. May be
 * called at any time: new handshakes use the new value.
 *
 * @param cfg         the configuration
 * @param timeout_ms  milliseconds, > 0; the default is 10000
 * @retval 0        done
 * @retval -EINVAL  timeout_ms <= 0
 * @retval SM_ERR_TLS_UNAVAILABLE  built without TLS
 */
SM_API int sm_tls_config_set_handshake_timeout(sm_tls_config *cfg, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
