/**
 * @file
 * @brief The PROXY protocol (HAProxy), versions 1 and 2.
 *
 * A load balancer in front of a server (HAProxy, nginx `stream` with
 * proxy_protocol on, AWS NLB, ...) opens its connection to the server with a
 * PROXY header naming the real client's address, then relays the client's
 * bytes. The server decodes the header, strips it, and treats what follows as
 * the application's stream.
 *
 * @code{.unparsed}
 *   v1 (text, at most 107 bytes including the CRLF):
 *     "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n"
 *     "PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n"
 *     "PROXY UNKNOWN\r\n"   (anything between UNKNOWN and the CRLF is ignored)
 *   v2 (binary): the 12-byte signature "\r\n\r\n\0\r\nQUIT\n", a version and
 *     command byte (0x20 LOCAL, 0x21 PROXY), a family and transport byte
 *     (0x00 UNSPEC, 0x11/0x12 IPv4 stream/datagram, 0x21/0x22 IPv6, 0x31/0x32
 *     Unix), a 16-bit big-endian length of what follows, then the addresses
 *     (12, 36 or 216 bytes) and optional TLVs (type, 16-bit length, value).
 * @endcode
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
 * - v1: "PROXY" and every field separated by exactly one space; TCP4 addresses
 *     dotted-quad as inet_pton(3) takes them (no leading zeros), TCP6 addresses
 *     as inet_pton takes them (hex digits, ':' and '.'; no zone), ports 1 to 5
 *     decimal digits, 0 to 65535; the line ends with "\r\n" within 107 bytes.
 * - v2: version 2; command LOCAL or PROXY; for PROXY one of the seven
 *     family/transport bytes above and a length at least the family's address
 *     block; for LOCAL the family byte is ignored (the spec says so). The
 *     whole header is at most SM_PROXY_V2_MAX bytes. With PROXY over IPv4,
 *     IPv6 or Unix, the TLV area after the addresses must be a well-formed
 *     sequence of TLVs (none running past the header); their contents are not
 *     checked (not even PP2_TYPE_CRC32C). With LOCAL, or PROXY over UNSPEC,
 *     everything after the 16 fixed bytes is skipped unread, as the spec says
 *     the receiver must ignore it.
 *
 * @threads Every function is reentrant (no globals) and callable from any
 * callback.
 */
#ifndef SOCKMSG_PROXY_H
#define SOCKMSG_PROXY_H

#include "api.h"
#include "endpoint.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_PROXY_V1_MAX 107  /**< longest v1 line, CRLF included (the spec's bound) */
#define SM_PROXY_V2_MAX 4096 /**< longest v2 header accepted, the 16 fixed bytes included */

/** @name v2 TLV types
 * The TLV types of the spec (PP2_TYPE_*), for sm_proxy_tlv::type.
 * @{ */
#define SM_PROXY_TLV_ALPN      0x01 /**< the application protocol (ALPN) */
#define SM_PROXY_TLV_AUTHORITY 0x02 /**< the host name the client asked for (SNI) */
#define SM_PROXY_TLV_CRC32C    0x03 /**< a CRC32c checksum of the header */
#define SM_PROXY_TLV_NOOP      0x04 /**< padding, to be ignored */
#define SM_PROXY_TLV_UNIQUE_ID 0x05 /**< an opaque connection id */
#define SM_PROXY_TLV_SSL       0x20 /**< TLS details, with nested TLVs */
#define SM_PROXY_TLV_NETNS     0x30 /**< the network namespace's name */
/** @} */

/** What a header says the connection is. */
typedef enum sm_proxy_command {
    SM_PROXY_LOCAL = 0, /**< v2 LOCAL: the proxy's own connection (a health check) */
    SM_PROXY_PROXY = 1, /**< relayed on behalf of a client (every v1 header) */
} sm_proxy_command;

/** A decoded header. Plain data. */
typedef struct sm_proxy_info {
    int version;              /**< 1 or 2 */
    sm_proxy_command command; /**< v1: always SM_PROXY_PROXY */
    /** true: src and dst hold the client's address and the address it
     * connected to (AF_INET, AF_INET6 or AF_UNIX, both the same family).
     * false (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC): the header names no addresses;
     * use the socket's own (getpeername / getsockname). src and dst are then
     * zeroed (len 0). */
    bool known;
    /** SOCK_STREAM or SOCK_DGRAM as the header says (v1 TCP4/TCP6 give
     * SOCK_STREAM); 0 when not known. */
    int socktype;
    /** The client's address. IPv4 and IPv6 addresses come with their ports (sin_port, sin6_port);
     * v2 Unix addresses as sockaddr_un: a path with its NUL counted in len
     * (all 108 bytes when it fills sun_path), an abstract name (sun_path[0]
     * == 0) with the field's trailing zero padding left out, an empty field
     * as an unnamed address (len == sizeof(sa_family_t)). */
    sm_addr src;
    sm_addr dst; /**< the address the client connected to, as src */
    /** v2 PROXY over IPv4, IPv6 or Unix: where the TLVs lie, as an offset from
     * the start of the header (0 when there are none, and always for v1,
     * LOCAL and UNSPEC). Walk them with sm_proxy_tlv_next() over
     * buf + tlv_off. */
    size_t tlv_off;
    size_t tlv_len; /**< the TLV area's length (0: none) */
} sm_proxy_info;

/** One v2 TLV. value points into the caller's buffer (borrowed). */
typedef struct sm_proxy_tlv {
    uint8_t type;         /**< SM_PROXY_TLV_ALPN, ... */
    uint16_t len;         /**< the value's length */
    const uint8_t *value; /**< the value's bytes */
} sm_proxy_tlv;

/**
 * Decode the PROXY header at the front of buf[0..len). No allocation.
 *
 * @param buf      the bytes received so far (may be NULL when len is 0)
 * @param len      how many
 * @param out      NULL, or receives the header; unspecified after an error or
 *                 -EAGAIN
 * @param why      NULL, or a buffer (NUL-terminated, truncated to fit) that
 *                 receives a one-line reason for -EPROTO naming the field and
 *                 the offending bytes, e.g. "v1: source port 70000 out of
 *                 range (0-65535)"; it is set to "" otherwise
 * @param why_len  the size of @p why
 * @return n > 0: the header is buf[0..n): strip it; what follows is the
 *         application's stream (never consumed here). Or:
 * @retval -EAGAIN  buf is a proper prefix of a header that may still be
 *                  valid: call again with the same bytes plus more. At most
 *                  SM_PROXY_V2_MAX bytes are ever needed, so a caller
 *                  buffering more than that without an answer has a bug.
 * @retval -EPROTO  not a valid PROXY header: the first byte starts neither
 *                  signature, or a field is malformed (see above). Close the
 *                  connection: the spec forbids guessing.
 * @retval -EINVAL  buf is NULL while len > 0
 */
SM_API ssize_t sm_proxy_decode(const uint8_t *buf, size_t len, sm_proxy_info *out, char *why,
                               size_t why_len);

/**
 * The TLV at tlvs[*off] in a TLV area of `len` bytes (buf + info.tlv_off and
 * info.tlv_len from a decoded v2 header).
 *
 * Nested TLVs (inside SM_PROXY_TLV_SSL, after its 5-byte client/verify
 * prefix) can be walked the same way. Start with *off = 0:
 * @code
 *     size_t off = 0; sm_proxy_tlv t;
 *     while (sm_proxy_tlv_next(buf + info.tlv_off, info.tlv_len, &off, &t) == 1) ...
 * @endcode
 *
 * @param tlvs  the TLV area
 * @param len   its length
 * @param off   the offset of the next TLV; advanced past it
 * @param tlv   receives the TLV (value points into tlvs)
 * @retval 1        *tlv is set
 * @retval 0        the end of the area
 * @retval -EPROTO  the TLV runs past the end (never for an area
 *                  sm_proxy_decode() accepted)
 */
SM_API int sm_proxy_tlv_next(const uint8_t *tlvs, size_t len, size_t *off, sm_proxy_tlv *tlv);

/**
 * Write a v1 header for a connection from src to dst. Writes no NUL.
 *
 * @param src  the client's address, AF_INET ("TCP4") or AF_INET6 ("TCP6"),
 *             with its port; NULL together with dst gives
 *             "PROXY UNKNOWN\r\n"
 * @param dst  the address it connected to, of the same family
 * @param out  the output buffer
 * @param cap  its size
 * @return the length (at most SM_PROXY_V1_MAX), or an error:
 * @retval -ENOSPC        cap is too small (out then holds nothing useful)
 * @retval -EAFNOSUPPORT  another family (v1 has no Unix addresses)
 * @retval -EINVAL        mixed families, one NULL address, an address shorter
 *                        than its family's, or a NULL out with cap > 0
 */
SM_API ssize_t sm_proxy_encode_v1(const sm_addr *src, const sm_addr *dst, uint8_t *out, size_t cap);

/**
 * Write a v2 header for a connection from src to dst, followed by `ntlv`
 * TLVs.
 *
 * A Unix address's sun_path bytes (len minus the family) go into the
 * 108-byte field, zero-padded.
 *
 * @param src       the client's address: AF_INET, AF_INET6 or AF_UNIX
 *                  (command PROXY); NULL together with dst gives a LOCAL
 *                  header with family UNSPEC, as a proxy's health check sends
 * @param dst       the address it connected to, of the same family
 * @param socktype  the transport: SOCK_STREAM, SOCK_DGRAM, or 0 for
 *                  SOCK_STREAM (ignored for LOCAL)
 * @param tlvs      the TLVs to append (may be NULL when ntlv is 0)
 * @param ntlv      how many
 * @param out       the output buffer
 * @param cap       its size
 * @return the length, or an error:
 * @retval -ENOSPC        cap is too small
 * @retval -EMSGSIZE      the header would exceed SM_PROXY_V2_MAX
 * @retval -EAFNOSUPPORT  another family
 * @retval -EINVAL        mixed families, one NULL address, an address
 *                        shorter than its family's (or, for AF_UNIX, longer
 *                        than a sockaddr_un), a bad socktype, a TLV
 *                        with a NULL value and a nonzero length, or a NULL
 *                        out with cap > 0
 */
SM_API ssize_t sm_proxy_encode_v2(const sm_addr *src, const sm_addr *dst, int socktype,
                                  const sm_proxy_tlv *tlvs, size_t ntlv, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
