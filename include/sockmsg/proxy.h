/* sockmsg — the PROXY protocol (HAProxy), versions 1 and 2.
 *
 * A load balancer in front of a server (HAProxy, nginx `stream` with
 * proxy_protocol on, AWS NLB, ...) opens its connection to the server with a
 * PROXY header naming the real client's address, then relays the client's
 * bytes. The server decodes the header, strips it, and treats what follows as
 * the application's stream.
 *
 *   v1 (text, at most 107 bytes including the CRLF):
 *     "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n"
 *     "PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n"
 *     "PROXY UNKNOWN\r\n"   (anything between UNKNOWN and the CRLF is ignored)
 *   v2 (binary): the 12-byte signature "\r\n\r\n\0\r\nQUIT\n", a version and
 *     command byte (0x20 LOCAL, 0x21 PROXY), a family and transport byte
 *     (0x00 UNSPEC, 0x11/0x12 IPv4 stream/datagram, 0x21/0x22 IPv6, 0x31/0x32
 *     Unix), a 16-bit big-endian length of what follows, then the addresses
 *     (12, 36 or 216 bytes) and optional TLVs (type, 16-bit length, value).
 *
 * The decoder is pure, in the manner of picohttpparser and sm_frame_decode: it
 * looks at the caller's bytes only, does no I/O and never allocates, and reads
 * nothing at or past `len`. It keeps no state between calls: call it again
 * with the same bytes plus more after -EAGAIN. The result never depends on the
 * chunking: if some prefix of a stream gives an error or a header, the whole
 * stream gives the same error (with the same detail) or the same header; a
 * decision is taken on the first byte that settles it, so a peer that speaks
 * something else is refused at once instead of being waited for.
 *
 * Which headers are accepted (receivers are strict, as the spec asks):
 *   v1: "PROXY" and every field separated by exactly one space; TCP4 addresses
 *     dotted-quad as inet_pton(3) takes them (no leading zeros), TCP6 addresses
 *     as inet_pton takes them (hex digits, ':' and '.'; no zone), ports 1 to 5
 *     decimal digits, 0 to 65535; the line ends with "\r\n" within 107 bytes.
 *   v2: version 2; command LOCAL or PROXY; for PROXY one of the seven
 *     family/transport bytes above and a length at least the family's address
 *     block; for LOCAL the family byte is ignored (the spec says so). The
 *     whole header is at most SM_PROXY_V2_MAX bytes. With PROXY over IPv4,
 *     IPv6 or Unix, the TLV area after the addresses must be a well-formed
 *     sequence of TLVs (none running past the header); their contents are not
 *     checked (not even PP2_TYPE_CRC32C). With LOCAL, or PROXY over UNSPEC,
 *     everything after the 16 fixed bytes is skipped unread, as the spec says
 *     the receiver must ignore it.
 *
 * Thread-safety: every function is reentrant; no globals.
 */
#ifndef SOCKMSG_PROXY_H
#define SOCKMSG_PROXY_H

#include "api.h"
#include "endpoint.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_PROXY_V1_MAX 107  /* longest v1 line, CRLF included (the spec's bound) */
#define SM_PROXY_V2_MAX 4096 /* longest v2 header accepted, the 16 fixed bytes included */

/* The v2 TLV types of the spec (PP2_TYPE_*). */
#define SM_PROXY_TLV_ALPN      0x01
#define SM_PROXY_TLV_AUTHORITY 0x02 /* the host name the client asked for (SNI) */
#define SM_PROXY_TLV_CRC32C    0x03
#define SM_PROXY_TLV_NOOP      0x04
#define SM_PROXY_TLV_UNIQUE_ID 0x05
#define SM_PROXY_TLV_SSL       0x20
#define SM_PROXY_TLV_NETNS     0x30

typedef enum sm_proxy_command {
    SM_PROXY_LOCAL = 0, /* v2 LOCAL: the proxy's own connection (a health check) */
    SM_PROXY_PROXY = 1, /* relayed on behalf of a client (every v1 header) */
} sm_proxy_command;

/* A decoded header. Plain data. */
typedef struct sm_proxy_info {
    int version;              /* 1 or 2 */
    sm_proxy_command command; /* v1: always SM_PROXY_PROXY */
    /* true: src and dst hold the client's address and the address it
     * connected to (AF_INET, AF_INET6 or AF_UNIX, both the same family).
     * false (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC): the header names no addresses;
     * use the socket's own (getpeername / getsockname). src and dst are then
     * zeroed (len 0). */
    bool known;
    /* SOCK_STREAM or SOCK_DGRAM as the header says (v1 TCP4/TCP6 give
     * SOCK_STREAM); 0 when not known. */
    int socktype;
    /* IPv4 and IPv6 addresses come with their ports (sin_port, sin6_port);
     * v2 Unix addresses as sockaddr_un: a path with its NUL counted in len
     * (all 108 bytes when it fills sun_path), an abstract name (sun_path[0]
     * == 0) with the field's trailing zero padding left out, an empty field
     * as an unnamed address (len == sizeof(sa_family_t)). */
    sm_addr src;
    sm_addr dst;
    /* v2 PROXY over IPv4, IPv6 or Unix: where the TLVs lie, as an offset from
     * the start of the header and a length (0 when there are none, and always
     * for v1, LOCAL and UNSPEC). Walk them with sm_proxy_tlv_next over
     * buf + tlv_off. */
    size_t tlv_off;
    size_t tlv_len;
} sm_proxy_info;

/* One v2 TLV. value points into the caller's buffer (borrowed). */
typedef struct sm_proxy_tlv {
    uint8_t type;
    uint16_t len;
    const uint8_t *value;
} sm_proxy_tlv;

/* sm_proxy_decode - decode the PROXY header at the front of buf[0..len).
 *
 * Returns:
 *   n > 0     the header is buf[0..n): strip it; what follows is the
 *             application's stream (never consumed here). *out describes the
 *             header (if out is not NULL).
 *   -EAGAIN   buf is a proper prefix of a header that may still be valid: call
 *             again with the same bytes plus more. At most SM_PROXY_V2_MAX
 *             bytes are ever needed, so a caller buffering more than that
 *             without an answer has a bug.
 *   -EPROTO   not a valid PROXY header: the first byte starts neither
 *             signature, or a field is malformed (see above). Close the
 *             connection: the spec forbids guessing.
 *   -EINVAL   buf is NULL while len > 0.
 * why (optional, why_len bytes, NUL-terminated, truncated to fit) receives a
 * one-line reason for -EPROTO naming the field and the offending bytes, e.g.
 * "v1: source port 70000 out of range (0-65535)"; it is set to "" otherwise.
 * *out is unspecified after an error or -EAGAIN. No allocation; thread-safe. */
SM_API ssize_t sm_proxy_decode(const uint8_t *buf, size_t len, sm_proxy_info *out, char *why,
                               size_t why_len);

/* sm_proxy_tlv_next - the TLV at tlvs[*off] in a TLV area of `len` bytes
 * (buf + info.tlv_off and info.tlv_len from a decoded v2 header).
 *
 * Returns 1 and fills *tlv (value points into tlvs) and advances *off past it,
 * 0 at the end of the area, -EPROTO when the TLV runs past the end (never for
 * an area sm_proxy_decode accepted). Nested TLVs (inside SM_PROXY_TLV_SSL,
 * after its 5-byte client/verify prefix) can be walked the same way.
 * Start with *off = 0:
 *     size_t off = 0; sm_proxy_tlv t;
 *     while (sm_proxy_tlv_next(buf + info.tlv_off, info.tlv_len, &off, &t) == 1) ...
 */
SM_API int sm_proxy_tlv_next(const uint8_t *tlvs, size_t len, size_t *off, sm_proxy_tlv *tlv);

/* sm_proxy_encode_v1 - write a v1 header for a connection from src to dst.
 *
 * src and dst: both AF_INET ("TCP4") or both AF_INET6 ("TCP6"), with their
 * ports; both NULL give "PROXY UNKNOWN\r\n". Writes no NUL. Returns the length
 * (at most SM_PROXY_V1_MAX), or -ENOSPC when cap is too small (out then holds
 * nothing useful), -EAFNOSUPPORT for another family (v1 has no Unix
 * addresses), -EINVAL for mixed families, one NULL address, or a NULL out with
 * cap > 0. Thread-safe. */
SM_API ssize_t sm_proxy_encode_v1(const sm_addr *src, const sm_addr *dst, uint8_t *out, size_t cap);

/* sm_proxy_encode_v2 - write a v2 header for a connection from src to dst,
 * followed by `ntlv` TLVs (tlvs may be NULL when ntlv is 0).
 *
 * src and dst: both AF_INET, both AF_INET6 or both AF_UNIX (command PROXY,
 * transport `socktype`: SOCK_STREAM, SOCK_DGRAM, or 0 for SOCK_STREAM); both
 * NULL give a LOCAL header with family UNSPEC, as a proxy's health check sends
 * (socktype ignored). A Unix address's sun_path bytes (len minus the family)
 * go into the 108-byte field, zero-padded. Returns the length, or -ENOSPC when
 * cap is too small, -EMSGSIZE when the header would exceed SM_PROXY_V2_MAX,
 * -EAFNOSUPPORT for another family, -EINVAL for mixed families, one NULL
 * address, a bad socktype, a TLV with a NULL value and a nonzero length, or a
 * NULL out with cap > 0. Thread-safe. */
SM_API ssize_t sm_proxy_encode_v2(const sm_addr *src, const sm_addr *dst, int socktype,
                                  const sm_proxy_tlv *tlvs, size_t ntlv, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
