/* Endpoints: parse, format and resolve tcp://, tls:// and unix: addresses. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>

#include "internal.h"

/* Host names: letters, digits, '-', '.', '_' (the last is not strictly DNS but
 * appears in /etc/hosts and container names). */
static bool
host_name_ok(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
        if (!ok) return false;
    }
    return true;
}

/* An IPv6 literal, optionally with a "%zone" suffix. */
static bool
ipv6_literal_ok(const char *h, size_t n)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    const char *pct = memchr(h, '%', n);
    size_t addr_len = pct ? (size_t)(pct - h) : n;
    if (addr_len == 0 || addr_len >= sizeof tmp) return false;
    if (pct && (size_t)(pct - h) + 1 == n) return false; /* empty zone */
    memcpy(tmp, h, addr_len);
    tmp[addr_len] = '\0';
    struct in6_addr a;
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

static int
parse_port(const char *s, uint16_t *port, const char *str, char *why, size_t why_len)
{
    if (*s == '\0')
        return sm__why(why, why_len, SM_ERR_ENDPOINT, "missing port after ':' in '%s'", str);
    unsigned long v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n >= 5) /* more digits than any port has: stop before overflow */
            return sm__why(why, why_len, SM_ERR_ENDPOINT, "port out of range (0-65535) in '%s'",
                           str);
        v = v * 10 + (unsigned long)(s[n] - '0');
    }
    if (n == 0 || s[n] != '\0')
        return sm__why(why, why_len, SM_ERR_ENDPOINT, "port '%s' is not a decimal number in '%s'",
                       s, str);
    if (v > 65535)
        return sm__why(why, why_len, SM_ERR_ENDPOINT, "port %lu out of range (0-65535) in '%s'", v,
                       str);
    *port = (uint16_t)v;
    return 0;
}

static int
parse_tcp(sm_endpoint *ep, const char *rest, const char *str, char *why, size_t why_len)
{
    const char *host, *port;
    size_t host_len;

    ep->kind = SM_ENDPOINT_TCP;
    if (*rest == '[') {
        const char *close = strchr(rest, ']');
        if (!close) return sm__why(why, why_len, SM_ERR_ENDPOINT, "'[' without ']' in '%s'", str);
        host = rest + 1;
        host_len = (size_t)(close - host);
        if (host_len == 0)
            return sm__why(why, why_len, SM_ERR_ENDPOINT, "empty IPv6 address '[]' in '%s'", str);
        if (!ipv6_literal_ok(host, host_len))
            return sm__why(why, why_len, SM_ERR_ENDPOINT,
                           "'%.*s' in brackets is not an IPv6 address in '%s'", (int)host_len, host,
                           str);
        if (close[1] != ':')
            return sm__why(why, why_len, SM_ERR_ENDPOINT,
                           close[1] ? "expected ':' after ']' in '%s'" : "missing port in '%s'",
                           str);
        port = close + 2;
    } else {
        const char *colon = strrchr(rest, ':');
        if (!colon)
            return sm__why(why, why_len, SM_ERR_ENDPOINT, "missing port (tcp://host:port) in '%s'",
                           str);
        host = rest;
        host_len = (size_t)(colon - rest);
        port = colon + 1;
        if (host_len == 0)
            return sm__why(why, why_len, SM_ERR_ENDPOINT, "empty host in '%s' (use * or a name)",
                           str);
        if (memchr(host, ':', host_len))
            return sm__why(why, why_len, SM_ERR_ENDPOINT,
                           "IPv6 address must be in brackets (tcp://[::1]:port) in '%s'", str);
        if (memchr(host, ']', host_len))
            return sm__why(why, why_len, SM_ERR_ENDPOINT, "']' without '[' in '%s'", str);
        bool any = host_len == 1 && host[0] == '*';
        if (!any && !host_name_ok(host, host_len))
            return sm__why(why, why_len, SM_ERR_ENDPOINT, "bad character in host '%.*s' in '%s'",
                           (int)host_len, host, str);
    }
    if (host_len >= sizeof ep->host)
        return sm__why(why, why_len, -ENAMETOOLONG, "host longer than %d bytes in '%.40s...'",
                       SM_ENDPOINT_HOST_MAX - 1, str);
    memcpy(ep->host, host, host_len);
    ep->host[host_len] = '\0';
    return parse_port(port, &ep->port, str, why, why_len);
}

static int
parse_unix(sm_endpoint *ep, const char *rest, const char *str, char *why, size_t why_len)
{
    bool abstract = rest[0] == '@';
    const char *name = abstract ? rest + 1 : rest;
    size_t n = strlen(name);
    /* A path needs its NUL inside sun_path; an abstract name needs the leading NUL. */
    size_t cap = sizeof ep->path - 1;

    ep->kind = abstract ? SM_ENDPOINT_UNIX_ABSTRACT : SM_ENDPOINT_UNIX;
    if (n == 0)
        return sm__why(why, why_len, SM_ERR_ENDPOINT,
                       abstract ? "empty abstract socket name in '%s'" : "empty path in '%s'", str);
    if (n > cap)
        return sm__why(why, why_len, -ENAMETOOLONG,
                       "unix socket %s is %zu bytes, longer than the %zu that sun_path holds",
                       abstract ? "name" : "path", n, cap);
    memcpy(ep->path, name, n + 1);
    return 0;
}

int
sm_endpoint_parse(sm_endpoint *ep, const char *str, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!ep || !str) return sm__why(why, why_len, -EINVAL, "NULL argument");
    memset(ep, 0, sizeof *ep);
    if (!strncmp(str, "tcp://", 6)) return parse_tcp(ep, str + 6, str, why, why_len);
    if (!strncmp(str, "unix:", 5)) return parse_unix(ep, str + 5, str, why, why_len);
    if (!strncmp(str, "tls://", 6)) {
        int rc = parse_tcp(ep, str + 6, str, why, why_len);
        ep->tls = 1;
        return rc;
    }
    const char *sep = strstr(str, "://");
    if (!sep) sep = strchr(str, ':');
    if (!sep || sep == str)
        return sm__why(
            why, why_len, SM_ERR_ENDPOINT,
            "missing scheme in '%s' (expected tcp://host:port, tls://host:port or unix:path)", str);
    return sm__why(why, why_len, SM_ERR_ENDPOINT,
                   "unknown scheme '%.*s' in '%s' (expected tcp://, tls:// or unix:)",
                   (int)(sep - str), str, str);
}

int
sm_endpoint_format(const sm_endpoint *ep, char *out, size_t out_len)
{
    int n;
    if (!ep || !out) return -EINVAL;
    switch (ep->kind) {
    case SM_ENDPOINT_TCP:
        n = snprintf(out, out_len, strchr(ep->host, ':') ? "%s://[%s]:%u" : "%s://%s:%u",
                     ep->tls ? "tls" : "tcp", ep->host, (unsigned)ep->port);
        break;
    case SM_ENDPOINT_UNIX:
        /* "unix:@x" would name the abstract socket x: a relative path that
         * starts with '@' (a peer's address can) is written as ./@x, the same
         * file. */
        n = snprintf(out, out_len, ep->path[0] == '@' ? "unix:./%s" : "unix:%s", ep->path);
        break;
    case SM_ENDPOINT_UNIX_ABSTRACT:
        n = snprintf(out, out_len, "unix:@%s", ep->path);
        break;
    default:
        return -EINVAL;
    }
    if (n < 0) return -EINVAL;
    return (size_t)n >= out_len ? -ENOSPC : n;
}

static int
resolve_unix(const sm_endpoint *ep, sm_addr *out)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(ep->path);
    memset(out, 0, sizeof *out);
    un->sun_family = AF_UNIX;
    if (ep->kind == SM_ENDPOINT_UNIX_ABSTRACT) {
        /* Abstract names start with a NUL and are exactly as long as len says. */
        memcpy(un->sun_path + 1, ep->path, n);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    } else {
        memcpy(un->sun_path, ep->path, n + 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 1;
}

static int
resolve_any(uint16_t port, sm_addr *out, size_t max)
{
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out[0].ss;
    memset(out, 0, sizeof *out);
    a6->sin6_family = AF_INET6;
    a6->sin6_addr = in6addr_any;
    a6->sin6_port = htons(port);
    out[0].len = sizeof *a6;
    if (max < 2) return 1;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&out[1].ss;
    memset(&out[1], 0, sizeof out[1]);
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl(INADDR_ANY);
    a4->sin_port = htons(port);
    out[1].len = sizeof *a4;
    return 2;
}

int
sm_endpoint_resolve(const sm_endpoint *ep, bool passive, sm_addr *out, size_t max, char *why,
                    size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!ep || !out || max == 0) return sm__why(why, why_len, -EINVAL, "NULL argument or no room");
    if (ep->kind == SM_ENDPOINT_UNIX || ep->kind == SM_ENDPOINT_UNIX_ABSTRACT)
        return resolve_unix(ep, out);
    if (ep->kind != SM_ENDPOINT_TCP)
        return sm__why(why, why_len, -EINVAL, "endpoint kind %d unknown", (int)ep->kind);
    if (!strcmp(ep->host, "*")) {
        if (!passive)
            return sm__why(why, why_len, SM_ERR_ENDPOINT,
                           "cannot connect to '*' (all interfaces): name a host");
        return resolve_any(ep->port, out, max);
    }

    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)ep->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (passive) hints.ai_flags |= AI_PASSIVE;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(ep->host, port, &hints, &res);
    if (rc != 0) {
        int err = rc == EAI_SYSTEM ? -errno : SM_ERR_RESOLVE;
        return sm__why(why, why_len, err, "cannot resolve '%s': %s", ep->host, gai_strerror(rc));
    }

    /* RFC 8305 section 4: alternate families, IPv6 first, each family keeping the
     * resolver's order. Two passes pick the next address of the wanted family. */
    struct addrinfo *next6 = res, *next4 = res;
    size_t n = 0;
    bool want6 = true;
    while (n < max) {
        struct addrinfo **cur = want6 ? &next6 : &next4;
        int fam = want6 ? AF_INET6 : AF_INET;
        while (*cur && (*cur)->ai_family != fam)
            *cur = (*cur)->ai_next;
        if (*cur) {
            if ((*cur)->ai_addrlen <= sizeof out[n].ss) {
                memset(&out[n], 0, sizeof out[n]);
                memcpy(&out[n].ss, (*cur)->ai_addr, (*cur)->ai_addrlen);
                out[n].len = (socklen_t)(*cur)->ai_addrlen;
                n++;
            }
            *cur = (*cur)->ai_next;
        } else {
            /* This family is exhausted: take the rest from the other one. */
            struct addrinfo **other = want6 ? &next4 : &next6;
            int ofam = want6 ? AF_INET : AF_INET6;
            while (*other && (*other)->ai_family != ofam)
                *other = (*other)->ai_next;
            if (!*other) break;
        }
        want6 = !want6;
    }
    freeaddrinfo(res);
    if (n == 0)
        return sm__why(why, why_len, SM_ERR_RESOLVE, "'%s' has no IPv4 or IPv6 address", ep->host);
    return (int)n;
}

int
sm_addr_to_endpoint(const struct sockaddr *sa, socklen_t len, sm_endpoint *ep)
{
    if (!sa || !ep) return -EINVAL;
    memset(ep, 0, sizeof *ep);
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        ep->kind = SM_ENDPOINT_UNIX;
        if (len <= off) return 0; /* unnamed: a socketpair or an unbound client */
        size_t n = SM__MIN((size_t)len - off, sizeof un->sun_path);
        if (un->sun_path[0] == '\0') {
            ep->kind = SM_ENDPOINT_UNIX_ABSTRACT;
            /* The name may hold NULs; as a string we keep what precedes the first. */
            n = strnlen(un->sun_path + 1, n - 1);
            memcpy(ep->path, un->sun_path + 1, n);
        } else {
            n = strnlen(un->sun_path, n);
            memcpy(ep->path, un->sun_path, SM__MIN(n, sizeof ep->path - 1));
        }
        return 0;
    }
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return -EAFNOSUPPORT;

    struct sockaddr_in v4;
    if (sa->sa_family == AF_INET6) {
        /* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; show them
         * as the IPv4 addresses they are. */
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
            memset(&v4, 0, sizeof v4);
            v4.sin_family = AF_INET;
            v4.sin_port = a6->sin6_port;
            memcpy(&v4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
            sa = (const struct sockaddr *)&v4;
            len = sizeof v4;
        }
    }
    char serv[8];
    int rc = getnameinfo(sa, len, ep->host, sizeof ep->host, serv, sizeof serv,
                         NI_NUMERICHOST | NI_NUMERICSERV);
    if (rc != 0) return rc == EAI_SYSTEM ? -errno : -EINVAL;
    ep->kind = SM_ENDPOINT_TCP;
    ep->port = sa->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
                                        : ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

int
sm_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t out_len)
{
    sm_endpoint ep;
    int rc = sm_addr_to_endpoint(sa, len, &ep);
    if (rc < 0) return rc;
    return sm_endpoint_format(&ep, out, out_len);
}
