/* Certificates for the TLS tests: one throwaway set per test program, made
 * by tests/support/tls_certs.sh (see it for the files: ca.pem, leaf.pem,
 * expired.pem, client.pem, ...) in a private directory, and the TLS
 * configurations most tests start from. Header-only (static inline, like
 * server_util.h) because the script's and openssl's paths are compile
 * definitions of the TLS tests (SM_TLS_DEFS in tests/CMakeLists.txt), not
 * of sm_testsupport. */
#ifndef SM_TLS_TEST_H
#define SM_TLS_TEST_H

#include "smtest.h"

#include <signal.h>
#include <stdio.h>

#include <sockmsg/tls.h>

/* The directory of this program's certificates ("" before the setup). */
static char sm_test_certs[256];

/* The path of certificate file `name` in that directory. Four results stay
 * valid at once (thread-local), enough for one call's arguments. */
static inline const char *
sm_test_cert(const char *name)
{
    static __thread char path[4][320];
    static __thread int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", sm_test_certs, name);
    return path[k];
}

/* Make the certificates (and ignore SIGPIPE: a TLS peer that goes away
 * mid-write must be an error return, not a dead test). A cmocka group
 * setup; 0 on success. */
static inline int
sm_test_tls_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    sm_test_mkdtemp(sm_test_certs, sizeof sm_test_certs);
    char *argv[] = {"/bin/sh", SM_TLS_CERTS, SM_OPENSSL, sm_test_certs, NULL};
    return sm_test_wait(sm_test_spawn2(argv, NULL, NULL, NULL), 30000) == 0 ? 0 : -1;
}

/* Remove them: the matching cmocka group teardown. */
static inline int
sm_test_tls_teardown(void **state)
{
    (void)state;
    sm_test_rmdir(sm_test_certs);
    return 0;
}

/* A server configuration with certificate chain `chain` and key `key`
 * (names in the certificate directory). */
static inline sm_tls_config *
sm_test_tls_server(const char *chain, const char *key)
{
    sm_tls_config *c;
    char why[256];
    SM_ASSERT_OK(sm_tls_config_new(&c, SM_TLS_SERVER, why, sizeof why));
    SM_ASSERT_OK(
        sm_tls_config_set_cert(c, sm_test_cert(chain), sm_test_cert(key), why, sizeof why));
    return c;
}

/* A client configuration that verifies, trusting the test CA (trust_ca) or
 * only the system's store. */
static inline sm_tls_config *
sm_test_tls_client(bool trust_ca)
{
    sm_tls_config *c;
    char why[256];
    SM_ASSERT_OK(sm_tls_config_new(&c, SM_TLS_CLIENT, why, sizeof why));
    if (trust_ca)
        SM_ASSERT_OK(sm_tls_config_set_ca(c, sm_test_cert("ca.pem"), NULL, why, sizeof why));
    return c;
}

#endif
