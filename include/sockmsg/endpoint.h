/**
 * @file
 * @brief Endpoints: parse, format and resolve addresses.
 *
 * Endpoint strings:
 * @code{.unparsed}
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
 * @endcode
 * Port 0 asks the kernel for a free port; read it back from the bound socket.
 *
 * Everything here is pure data and reentrant: no allocation, no globals.
 *
 * @threads Every function here is thread-safe and callable from any callback
 * (sm_endpoint_resolve() may block on the system resolver, though: keep it
 * off an event loop's thread for host names).
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

/** The transport an endpoint names. */
typedef enum sm_endpoint_kind {
    SM_ENDPOINT_TCP = 1,       /**< TCP over IPv4 or IPv6 (`tcp://`) */
    SM_ENDPOINT_UNIX,          /**< a Unix socket file (`unix:/path`) */
    SM_ENDPOINT_UNIX_ABSTRACT, /**< a Linux abstract Unix socket (`unix:@name`) */
} sm_endpoint_kind;

/** Size of sm_endpoint::host, the NUL included. */
#define SM_ENDPOINT_HOST_MAX 256
/** Size of sm_endpoint::path, the NUL included: sizeof sun_path (108). */
#define SM_ENDPOINT_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

/** A parsed endpoint. Plain data: copy it freely. */
typedef struct sm_endpoint {
    sm_endpoint_kind kind; /**< which of the fields below apply */
    /** TCP: host without brackets ("127.0.0.1", "::1", "example.org"), or "*"
     * for all interfaces. NUL-terminated. */
    char host[SM_ENDPOINT_HOST_MAX];
    uint16_t port; /**< TCP: the port (0: the kernel picks one when binding) */
    /** Unix: the path, or the abstract name without its '@'. NUL-terminated. */
    char path[SM_ENDPOINT_PATH_MAX];
    /** 1 for tls:// (TCP with TLS on top), else 0. (In what was the struct's
     * tail padding: its size is unchanged.) */
    uint8_t tls;
} sm_endpoint;

/** A resolved socket address: what bind(2) and connect(2) take. */
typedef struct sm_addr {
    struct sockaddr_storage ss; /**< the address (cast to struct sockaddr *) */
    socklen_t len;              /**< its length in bytes */
} sm_addr;

/**
 * Parse an endpoint string (grammar above) into *ep.
 *
 * @param ep       receives the endpoint; unspecified after an error
 * @param str      the endpoint string, e.g. "tcp://127.0.0.1:7000"
 * @param why      NULL, or a buffer that receives a one-line, NUL-terminated
 *                 explanation naming what is wrong, e.g. "port 70000 out of
 *                 range (0-65535) in 'tcp://h:70000'"
 * @param why_len  the size of @p why
 * @retval 0               parsed
 * @retval SM_ERR_ENDPOINT malformed: unknown scheme, missing or bad port, port
 *                         > 65535, bad brackets, empty host
 * @retval -ENAMETOOLONG   the Unix path or the host is too long
 * @retval -EINVAL         a NULL argument
 */
SM_API int sm_endpoint_parse(sm_endpoint *ep, const char *str, char *why, size_t why_len);

/**
 * Write the canonical string of *ep into out (IPv6 hosts bracketed; a Unix
 * path that starts with '@' as "unix:./@...", so that it does not read as
 * an abstract name).
 *
 * @param ep       the endpoint
 * @param out      receives the NUL-terminated string
 * @param out_len  the size of @p out
 * @return the string's length (excluding the NUL), or an error:
 * @retval -ENOSPC  out_len is too small (out then holds a truncated,
 *                  terminated string)
 * @retval -EINVAL  a NULL argument or an unknown kind
 */
SM_API int sm_endpoint_format(const sm_endpoint *ep, char *out, size_t out_len);

/**
 * Resolve *ep into socket addresses, at most `max`.
 *
 * TCP names go through getaddrinfo (blocking; may take as long as the system
 * resolver does). Addresses are ordered as RFC 8305 asks: interleaved by
 * family, IPv6 first. Unix endpoints give exactly one address.
 *
 * @param ep       the endpoint
 * @param passive  true to resolve for bind/listen ("*" gives the IPv6 any
 *                 address first, then the IPv4 any address), false for
 *                 connect
 * @param out      receives the addresses
 * @param max      the number of entries in @p out (at least 1)
 * @param why      NULL, or a buffer for a one-line explanation of an error
 *                 (the resolver's message for SM_ERR_RESOLVE)
 * @param why_len  the size of @p why
 * @return the number of addresses stored (>= 1), or an error:
 * @retval SM_ERR_RESOLVE   the name does not resolve, or has no IPv4 or IPv6
 *                          address
 * @retval SM_ERR_ENDPOINT  "*" with passive false (nothing to connect to)
 * @retval -EINVAL          a NULL argument, max 0, an unknown kind
 * @retval -errno           the resolver's system error (EAI_SYSTEM)
 */
SM_API int sm_endpoint_resolve(const sm_endpoint *ep, bool passive, sm_addr *out, size_t max,
                               char *why, size_t why_len);

/**
 * The endpoint of a socket address (AF_INET, AF_INET6 or AF_UNIX).
 *
 * An IPv4-mapped IPv6 address (a dual-stack listener's IPv4 client) gives
 * the IPv4 address. An unnamed Unix address gives kind SM_ENDPOINT_UNIX and
 * an empty path.
 *
 * @param sa   the address
 * @param len  its length
 * @param ep   receives the endpoint
 * @retval 0              converted
 * @retval -EAFNOSUPPORT  another address family
 * @retval -EINVAL        a NULL argument, or an address getnameinfo refuses
 */
SM_API int sm_addr_to_endpoint(const struct sockaddr *sa, socklen_t len, sm_endpoint *ep);

/**
 * Format a socket address as an endpoint string ("tcp://127.0.0.1:8080",
 * "tcp://[::1]:8080", "unix:/p", "unix:@n"): sm_addr_to_endpoint(), then
 * sm_endpoint_format().
 *
 * @param sa       the address
 * @param len      its length
 * @param out      receives the NUL-terminated string
 * @param out_len  the size of @p out
 * @return the string's length, or an error of sm_addr_to_endpoint() or
 *         sm_endpoint_format()
 */
SM_API int sm_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
