/* sockmsg — endpoints: parse, format and resolve addresses.
 *
 * Endpoint strings:
 *   tcp://host:port        host name, IPv4 literal, or "localhost"
 *   tcp://[v6addr]:port    IPv6 literal in brackets (zone allowed: [fe80::1%lo])
 *   tcp://HOST:port, HOST "*"  all interfaces, dual-stack (an IPv6 socket that
 *                          also accepts IPv4) where IPv6 exists
 *   unix:/path/to/sock     a Unix socket file (path up to sizeof sun_path - 1)
 *   unix:@name             a Linux abstract Unix socket (no file)
 *   tls://host:port        as tcp://, with TLS on top (tls.h): kind
 *                          SM_ENDPOINT_TCP and `tls` set. Sockets (socket.h)
 *                          are plain TCP; sm_conn, sm_stream and sm_server
 *                          add the TLS.
 * Port 0 asks the kernel for a free port; read it back from the bound socket.
 *
 * Everything here is pure data and reentrant: no allocation, no globals.
 */
#ifndef SOCKMSG_ENDPOINT_H
#define SOCKMSG_ENDPOINT_H

#include <sys/socket.h>
#include <sys/un.h>

#include "api.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_endpoint_kind {
    SM_ENDPOINT_TCP = 1,
    SM_ENDPOINT_UNIX,          /* filesystem path */
    SM_ENDPOINT_UNIX_ABSTRACT, /* Linux abstract namespace */
} sm_endpoint_kind;

#define SM_ENDPOINT_HOST_MAX 256
#define SM_ENDPOINT_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

/* A parsed endpoint. Plain data: copy it freely. */
typedef struct sm_endpoint {
    sm_endpoint_kind kind;
    /* TCP: host without brackets ("127.0.0.1", "::1", "example.org"), or "*"
     * for all interfaces. */
    char host[SM_ENDPOINT_HOST_MAX];
    uint16_t port;
    /* Unix: the path, or the abstract name without its '@'. NUL-terminated. */
    char path[SM_ENDPOINT_PATH_MAX];
    /* 1 for tls:// (TCP with TLS on top), else 0. (In what was the struct's
     * tail padding: its size is unchanged.) */
    uint8_t tls;
} sm_endpoint;

/* A resolved socket address. */
typedef struct sm_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} sm_addr;

/* sm_endpoint_parse - parse an endpoint string into *ep.
 *
 * Returns 0, or SM_ERR_ENDPOINT (malformed: unknown scheme, missing or bad
 * port, port > 65535, bad brackets, empty host), -ENAMETOOLONG (Unix path or
 * host too long), -EINVAL (NULL arguments). When `why` is not NULL it receives
 * a one-line, NUL-terminated explanation naming what is wrong, e.g.
 * "port 70000 out of range (0-65535) in 'tcp://h:70000'". *ep is unspecified
 * after an error. Thread-safe. */
SM_API int sm_endpoint_parse(sm_endpoint *ep, const char *str, char *why, size_t why_len);

/* sm_endpoint_format - write the canonical string of *ep into out
 * (IPv6 hosts bracketed; a Unix path that starts with '@' as "unix:./@...",
 * so that it does not read as an abstract name). Returns its length
 * (excluding the NUL), or -ENOSPC if out_len is too small (out then holds a
 * truncated, terminated string). */
SM_API int sm_endpoint_format(const sm_endpoint *ep, char *out, size_t out_len);

/* sm_endpoint_resolve - resolve *ep into socket addresses, at most `max`.
 *
 * passive: true to resolve for bind/listen ("*" gives the IPv6 any address
 * first, then the IPv4 any address), false for connect. TCP names go through
 * getaddrinfo (blocking; may take as long as the system resolver does).
 * Addresses are ordered as RFC 8305 asks: interleaved by family, IPv6 first.
 * Unix endpoints give exactly one address.
 * Returns the number of addresses (>= 1), SM_ERR_RESOLVE when the name does
 * not resolve (why, if given, holds the resolver's message), -EINVAL. */
SM_API int sm_endpoint_resolve(const sm_endpoint *ep, bool passive, sm_addr *out, size_t max,
                               char *why, size_t why_len);

/* sm_addr_to_endpoint - the endpoint of a socket address (AF_INET, AF_INET6 or
 * AF_UNIX). An unnamed Unix address gives kind SM_ENDPOINT_UNIX and an empty
 * path. Returns 0 or -EAFNOSUPPORT. */
SM_API int sm_addr_to_endpoint(const struct sockaddr *sa, socklen_t len, sm_endpoint *ep);

/* sm_addr_format - format a socket address as an endpoint string
 * ("tcp://127.0.0.1:8080", "tcp://[::1]:8080", "unix:/p", "unix:@n").
 * Returns the length or a negative error as sm_endpoint_format. */
SM_API int sm_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
