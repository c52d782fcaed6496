/* sockmsg demo's TLS rows (demo_tls.c): the configurations both ends use. */
#ifndef SOCKMSG_TOOL_DEMO_TLS_H
#define SOCKMSG_TOOL_DEMO_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <sockmsg/tls.h>

typedef struct demo_tls {
    sm_tls_config *server; /* presents the throwaway certificate */
    sm_tls_config *client; /* trusts it, verifies 127.0.0.1 */
    char dir[256];
} demo_tls;

/* Make a self-signed certificate and both configurations. 0, or -1 with
 * the reason in why (a build without TLS says so). */
int demo_tls_make(demo_tls *t, char *why, size_t len);
void demo_tls_free(demo_tls *t);

#endif
