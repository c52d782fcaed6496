/**
 * @file
 * @brief Framing codecs: where a message ends on a byte stream.
 *
 * Pure and incremental, in the manner of picohttpparser: decoders look at the
 * caller's bytes and say how many make up the next message; they do no I/O and
 * never allocate, so a peer can never make them allocate anything.
 *
 * Spec strings (sm_frame_spec_parse()):
 * @code{.unparsed}
 *   fixed:N                     every message is N bytes
 *   line | crlf | nul           ends at "\n" | "\r\n" | "\0" (stripped)
 *   delim:STR                   ends at STR (C escapes: \n \r \t \0 \\ \xHH), 1-16 bytes;
 *                               a ',' ends STR (write \x2c), and inside a type: entry
 *                               write parentheses as \x28 \x29
 *   len8 | len16be | len16le | len32be | len32le | len64be | len64le
 *                               binary length prefix; options:
 *                               adjust=N  the length field counts N bytes more
 *                                         than the payload (N may be negative)
 *                               offset=N  N header bytes (0-16) precede the length
 *                                         field; they are part of the frame, not
 *                                         of the payload (see sm_frame_msg.frame)
 *   ascii:N                     N decimal digits (1-20), zero-padded, then the payload
 *   netstring                   "12:hello world!,"
 *   varint                      unsigned LEB128 length (<= 10 bytes), then the payload
 *   type:K=V;K=V;...            the first byte is the type K (a printable character
 *                               or 0xNN); V is the payload length after it (decimal)
 *                               or a nested spec in parentheses, e.g.
 *                               type:A=4;B=(len16be);0x03=(line); V may be 0 (the
 *                               type byte alone is the frame). Equal nested specs
 *                               share one types[] entry. K may be * (the default
 *                               entry: every byte not listed, e.g.
 *                               type:A=4;*=(len16be)); the byte '*' is then 0x2a.
 *                               Without a default an unlisted byte is -EPROTO.
 *   eof                         the whole stream until the peer's shutdown
 *   resp                        one complete Redis RESP2/RESP3 value: + - : $ (and
 *                               $-1) * (and *-1) _ # , ( ! = % ~ | > with nested
 *                               aggregates; an attribute | and the value after it
 *                               are one message. The payload is the whole message
 *                               (msg->data == msg->frame), msg->type its first byte.
 *                               A first byte that is no RESP type starts an inline
 *                               command, as redis-server reads them: a line through
 *                               "
" (msg->type -1). max= bounds the whole message,
 *                               and a bulk length or aggregate count that cannot
 *                               fit (3 bytes at least per element) is -EMSGSIZE
 *                               from its header. Option depth=N (1-32, default
 *                               32): deeper aggregates are -EPROTO. Bad lengths,
 *                               negative counts other than -1, a CR without LF, a
 *                               bulk body without its CRLF, a malformed integer,
 *                               boolean, null or big number are -EPROTO.
 *                               oversize=skip is refused (the end of a message is
 *                               found only by parsing all of it). Encoding: the
 *                               payload must be one complete RESP message; it is
 *                               sent as is (no header, no trailer).
 * Every spec also takes, comma-separated:
 *   max=SIZE                    largest payload accepted (K, M, G suffixes; default 16M)
 *   oversize=close|skip         what an oversized message does (see below)
 * @endcode
 * e.g. "len32be,max=1M", "line,max=4096,oversize=skip", "len16be,adjust=2,offset=1",
 * "varint,offset=1" (MQTT), "resp,max=512M" (Redis).
 *
 * Errors. A length over max is -EMSGSIZE, found from the header alone before any
 * payload is buffered; a delimiter not found within max bytes is -EMSGSIZE;
 * malformed input (a non-digit in ascii:N, a varint over 10 bytes or 64 bits, a
 * netstring without its ',', adjust making a length negative, an unknown type
 * byte) is -EPROTO. sm_frame_decoder_detail() says which byte and why.
 * A netstring length is digits then ':' (at most 20 digits, below 2^64 - 1); a
 * leading zero in a multi-digit length is -EPROTO (djb). Non-minimal varints
 * (e.g. 0x80 0x00) are accepted. A delimiter not found is -EMSGSIZE as soon as
 * max + delim_len bytes have arrived without one.
 *
 * Oversize policy:
 * - close (default): the decoder stays in error; every later call returns the
 *     same error. The caller closes the connection. Bytes from the start of the
 *     offending frame on are never consumed: they are left in the caller's
 *     buffer, which the caller discards.
 * - skip: the oversized message is discarded without buffering it and counted
 *     (sm_frame_decoder.skipped); decoding resumes with the next message. For a
 *     length prefix the decoder consumes the header and then the announced
 *     payload bytes as they arrive; for a delimiter it consumes bytes up to and
 *     including the next delimiter; for eof, everything until EOF. Skipped bytes
 *     are reported as consumed (returned count > 0 with no message), so the
 *     caller can drop them from its buffer at once (msg->frame/frame_len then
 *     describe the discarded bytes, msg->type is -1). A message counts in
 *     `skipped` as soon as it is found oversized. A skipped netstring's ',' is
 *     still checked. Malformed input (-EPROTO) is never skipped: no later
 *     boundary can be trusted after it.
 *
 * @threads A spec is read-only after parsing and may be shared by any number
 * of decoders in any threads; a decoder belongs to one thread at a time.
 * Every function is reentrant (no globals) and callable from any callback.
 */
#ifndef SOCKMSG_FRAME_H
#define SOCKMSG_FRAME_H

#include "api.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The codec of a spec: how a frame's end is found. */
typedef enum sm_frame_kind {
    SM_FRAME_FIXED = 1, /**< fixed:N, every message N bytes */
    SM_FRAME_DELIM,     /**< line, crlf, nul and delim:STR */
    SM_FRAME_LENGTH,    /**< a binary length prefix (len8, len16be, ...) */
    SM_FRAME_ASCII,     /**< ascii:N, N decimal digits of length */
    SM_FRAME_NETSTRING, /**< netstrings, "12:hello world!," */
    SM_FRAME_VARINT,    /**< an unsigned LEB128 length prefix */
    SM_FRAME_TYPE,      /**< a type byte selecting a nested spec */
    SM_FRAME_EOF,       /**< the whole stream until the peer's shutdown */
    SM_FRAME_RESP,      /**< one complete Redis RESP2/RESP3 value, or an inline command */
} sm_frame_kind;

/** What an oversized message does (see "Oversize policy" above). */
typedef enum sm_frame_oversize {
    SM_OVERSIZE_CLOSE = 0, /**< a sticky error: the connection is closed */
    SM_OVERSIZE_SKIP,      /**< discarded unbuffered, counted; decoding goes on */
} sm_frame_oversize;

#define SM_FRAME_DEFAULT_MAX    (16u << 20) /**< the max when a spec says 0: 16 MiB */
#define SM_FRAME_DELIM_MAX      16          /**< the longest delimiter, in bytes */
#define SM_FRAME_OFFSET_MAX     16          /**< the most offset= header bytes */
#define SM_FRAME_TYPES_MAX      16          /**< distinct nested specs in one type: spec */
#define SM_FRAME_HEAD_MAX       48          /**< largest header any spec encodes */
#define SM_FRAME_RESP_DEPTH_MAX 32          /**< deepest RESP nesting (resp,depth=N) */

/** A codec without type dispatch: the nested specs of type: are these. */
/* The field order is the public layout (and sm_frame_spec repeats it in its
 * anonymous struct): packing it tighter would break positional initializers
 * and the ABI to save 8 bytes. */
// NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding)
typedef struct sm_frame_basic {
    sm_frame_kind kind;                /**< never SM_FRAME_TYPE here */
    uint64_t fixed_len;                /**< FIXED: payload length */
    uint8_t delim[SM_FRAME_DELIM_MAX]; /**< DELIM: the delimiter's bytes */
    uint8_t delim_len;                 /**< DELIM: 1..16 */
    uint8_t len_width;                 /**< LENGTH: 1, 2, 4 or 8 */
    bool len_little;                   /**< LENGTH: little-endian field */
    uint8_t len_offset;                /**< LENGTH, VARINT, ASCII, NETSTRING: header bytes
                                            before the length, 0..16 */
    int64_t len_adjust;                /**< LENGTH: field value = payload length + adjust */
    uint8_t ascii_digits;              /**< ASCII: 1..20 */
    uint8_t resp_depth;                /**< RESP: deepest nesting, 1..SM_FRAME_RESP_DEPTH_MAX
                                            (0: SM_FRAME_RESP_DEPTH_MAX) */
} sm_frame_basic;

/**
 * A complete spec. Fill it with sm_frame_spec_parse(), or by hand with
 * designated initializers: {.kind = SM_FRAME_LENGTH, .len_width = 4} is
 * len32be with the default max (then check it with sm_frame_spec_check()).
 * It is plain data (about 1.4 KiB): share one spec among many decoders by
 * pointer. The fields of sm_frame_basic are reachable directly (spec.kind,
 * spec.len_width) or as spec.basic.
 */
/* The anonymous struct is C11; C++ compilers take it as an extension, and
 * -Wpedantic there would flag it in every C++ program that includes this. */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
typedef struct sm_frame_spec {
    union {
        /** The codec (TYPE specs: kind only; the nested codecs are types[]). */
        sm_frame_basic basic;
        /* The same fields, reachable directly: spec.kind, spec.len_width. */
        struct {
            sm_frame_kind kind;                /**< as sm_frame_basic::kind, or TYPE */
            uint64_t fixed_len;                /**< as sm_frame_basic::fixed_len */
            uint8_t delim[SM_FRAME_DELIM_MAX]; /**< as sm_frame_basic::delim */
            uint8_t delim_len;                 /**< as sm_frame_basic::delim_len */
            uint8_t len_width;                 /**< as sm_frame_basic::len_width */
            bool len_little;                   /**< as sm_frame_basic::len_little */
            uint8_t len_offset;                /**< as sm_frame_basic::len_offset */
            int64_t len_adjust;                /**< as sm_frame_basic::len_adjust */
            uint8_t ascii_digits;              /**< as sm_frame_basic::ascii_digits */
            uint8_t resp_depth;                /**< as sm_frame_basic::resp_depth */
        };
    };
    uint64_t max;               /**< largest payload; 0 means SM_FRAME_DEFAULT_MAX */
    sm_frame_oversize oversize; /**< what an oversized message does */
    /** TYPE only: type_map[b] is 0 for an unknown type byte b, else 1 + the index
     * into types[]. */
    uint8_t type_map[256];
    uint8_t type_count;                       /**< TYPE only: entries used in types[] */
    sm_frame_basic types[SM_FRAME_TYPES_MAX]; /**< TYPE only: the nested specs */
} sm_frame_spec;
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/** One decoded message. Pointers are borrowed from the buffer passed to the
 * decoder: valid as long as those bytes are. */
typedef struct sm_frame_msg {
    const uint8_t *data;  /**< payload (header, delimiter, type byte stripped) */
    size_t len;           /**< payload length */
    const uint8_t *frame; /**< the whole frame on the wire, headers included */
    size_t frame_len;     /**< frame length */
    int type;             /**< the type byte for type: specs, else -1 */
} sm_frame_msg;

/** Decoder state: caller-owned, small (it is kept per connection: 216 bytes,
 * 160 of them the resp parse state), points at a spec that must outlive it.
 * Fields are public for inspection only; once err is set, scan and skip hold
 * internal details for sm_frame_decoder_detail(). */
typedef struct sm_frame_decoder {
    const sm_frame_spec *spec; /**< the spec it decodes with (borrowed) */
    uint64_t pos;              /**< stream bytes consumed so far (for error positions) */
    uint64_t scan;             /**< DELIM: bytes already searched in the current frame */
    uint64_t skip;             /**< oversize=skip: payload bytes still to discard */
    uint64_t skipped;          /**< messages discarded as oversized */
    uint64_t err_pos;          /**< stream offset of the offending byte (or header) */
    int err;                   /**< sticky error; 0 while healthy */
    uint8_t err_why;           /**< internal reason code for sm_frame_decoder_detail() */
    uint8_t err_byte;          /**< the offending byte, when there is one */
    uint8_t flags;             /**< internal */
    /** resp only, internal: the message in progress, so that more bytes
     * resume the parse where it stopped (d->scan is how far it got). */
    struct sm_frame_resp_state {
        uint64_t need; /**< elements not yet begun */
        uint64_t body; /**< bytes of a bulk body (with its CRLF) due at scan, or 0 */
        uint64_t line; /**< bytes of the line at scan already searched */
        uint8_t depth; /**< open aggregates */
        uint8_t busy;  /**< a message has begun */
        /** per open aggregate: elements still due (bit 31: an attribute) */
        uint32_t left[SM_FRAME_RESP_DEPTH_MAX];
    } resp; /**< resp only, internal: the parse state of the message in progress */
} sm_frame_decoder;

/**
 * Parse a spec string (grammar above) into *spec.
 *
 * @param spec     receives the checked spec
 * @param str      the spec string, e.g. "len32be,max=1M"
 * @param why      NULL, or a buffer that receives a one-line explanation
 *                 naming the problem: "unknown codec 'len24be'", "fixed:N
 *                 needs N >= 1", "max=0 ..."
 * @param why_len  the size of @p why
 * @retval 0            parsed
 * @retval SM_ERR_SPEC  malformed, or a NULL spec or str
 */
SM_API int sm_frame_spec_parse(sm_frame_spec *spec, const char *str, char *why, size_t why_len);

/**
 * Write the canonical spec string for *spec, snprintf-style.
 *
 * Canonical: line/crlf/nul by name; options in the order adjust, offset,
 * max, oversize, each only when not the default (max= whenever spec->max is
 * nonzero, with the largest exact K/M/G suffix); type: entries in type-byte
 * order, keys as the character when graphic and not one of ,;=()\* (else
 * 0xNN), fixed entries as their length; when all 256 bytes are mapped, the
 * entry that maps the most (the first in types[] on a tie) is written last as
 * the default `*=V` and its bytes are not listed. parse(format(spec)) == spec.
 *
 * Like snprintf, the return value is the length the whole string needs
 * (without the NUL) even when out_len is smaller: call with NULL, 0 to learn
 * it, then with a buffer of that plus one. Every checked spec has a string.
 *
 * @param spec     the spec
 * @param out      receives the string, truncated to out_len - 1 bytes and
 *                 NUL-terminated when out_len > 0; may be NULL when out_len is 0
 * @param out_len  the size of @p out
 * @return the string's full length (>= out_len means it was truncated), or:
 * @retval SM_ERR_SPEC  the spec fails sm_frame_spec_check() (out then holds "")
 */
SM_API int sm_frame_spec_format(const sm_frame_spec *spec, char *out, size_t out_len);

/**
 * Validate a hand-filled spec. Decoders and encoders assume a checked spec.
 * A fixed length over max is refused (no message could ever be accepted).
 *
 * @param spec     the spec
 * @param why      NULL, or a buffer for a one-line explanation, as for
 *                 sm_frame_spec_parse()
 * @param why_len  the size of @p why
 * @retval 0            valid
 * @retval SM_ERR_SPEC  invalid, or NULL
 */
SM_API int sm_frame_spec_check(const sm_frame_spec *spec, char *why, size_t why_len);

/**
 * Reset *d to decode a new stream with `spec`.
 *
 * @param d     the decoder (caller-owned)
 * @param spec  a checked spec; borrowed: it must outlive the decoder's use
 */
SM_API void sm_frame_decoder_init(sm_frame_decoder *d, const sm_frame_spec *spec);

/**
 * Find the next message at the front of buf[0..len).
 *
 * Message boundaries never depend on how the bytes were chunked.
 *
 * @param d    the decoder
 * @param buf  the bytes not yet consumed, oldest first (may be NULL when len
 *             is 0)
 * @param len  how many
 * @param msg  receives the message
 * @return n > 0: n bytes were consumed from the front of buf. If msg->data is
 *         not NULL, they made one whole message, described by *msg (data
 *         points into buf). If msg->data is NULL, the bytes were discarded by
 *         the oversize=skip policy. Or:
 * @retval -EAGAIN  no whole message yet: call again with the same bytes plus
 *                  more. Nothing was consumed. (The decoder remembers how far
 *                  it scanned, so feeding a long frame in small pieces costs
 *                  O(total), not O(total^2).)
 * @retval -EMSGSIZE, -EPROTO  see "Errors" above; sticky under oversize=close
 * @retval -EINVAL  a NULL buf with len > 0
 */
SM_API ssize_t sm_frame_decode(sm_frame_decoder *d, const uint8_t *buf, size_t len,
                               sm_frame_msg *msg);

/**
 * Finish decoding: the peer has shut down; buf[0..len) is all that is left.
 *
 * eof framing: returns len and sets *msg to the whole rest (one message, maybe
 * empty; -EMSGSIZE if over max). Other specs: returns 0 when len == 0 and no
 * message was in progress (a clean EOF at a message boundary), SM_ERR_TRUNCATED
 * when bytes of an unfinished message remain. Messages still whole in buf must
 * have been taken with sm_frame_decode() first; if some are left, they are
 * returned one per call exactly as sm_frame_decode() would. eof framing: an
 * empty stream is one empty message (returns 0 with msg->data not NULL); once
 * the message was delivered, a call with len == 0 returns 0 with msg->data
 * NULL. A return of 0 always sets *msg. Errors are sticky, and
 * sm_frame_decoder_detail() explains SM_ERR_TRUNCATED too.
 *
 * @param d    the decoder
 * @param buf  what is left (may be NULL when len is 0)
 * @param len  how many bytes
 * @param msg  receives a message, as for sm_frame_decode()
 * @return the bytes consumed (a message, as sm_frame_decode()), 0 (see
 *         above), or an error: SM_ERR_TRUNCATED, -EMSGSIZE, -EPROTO, -EINVAL
 *         (a NULL buf with len > 0)
 */
SM_API ssize_t sm_frame_decode_eof(sm_frame_decoder *d, const uint8_t *buf, size_t len,
                                   sm_frame_msg *msg);

/**
 * A one-line explanation of the decoder's error, e.g. "length 20971520
 * exceeds max 16777216 (len32be header at stream offset 120)" or "byte 0x41
 * 'A' at stream offset 7 is not a digit (ascii:5 header)".
 *
 * @param d        the decoder
 * @param out      receives the NUL-terminated string; "" when the decoder is
 *                 healthy
 * @param out_len  the size of @p out (0: nothing is written)
 * @return the length written (truncated to fit)
 */
SM_API int sm_frame_decoder_detail(const sm_frame_decoder *d, char *out, size_t out_len);

/** The bytes to send around a payload: head before it, tail after it, so the
 * payload itself goes out by writev without a copy. */
typedef struct sm_frame_hdr {
    uint8_t head[SM_FRAME_HEAD_MAX];      /**< the bytes before the payload */
    uint8_t head_len;                     /**< how many of head are used */
    uint8_t tail[SM_FRAME_DELIM_MAX + 1]; /**< the bytes after the payload */
    uint8_t tail_len;                     /**< how many of tail are used */
} sm_frame_hdr;

/**
 * Compute the header and trailer for one payload.
 *
 * Offset bytes of a spec with offset=N are written as zeros at head[0..N)
 * (after the type byte of a type: entry); the caller may overwrite them. eof framing gives an empty
 * header: the sender must shut down after the payload.
 *
 * @param spec     a checked spec
 * @param payload  the payload, or NULL (with any len): the delimiter check of
 *                 delimited specs is then skipped, for callers that check the
 *                 payload themselves (e.g. a message gathered from several
 *                 pieces)
 * @param len      the payload's length
 * @param type     the type byte for type: specs (must be mapped), ignored
 *                 otherwise
 * @param hdr      receives the header and trailer (both empty on error)
 * @retval 0          done
 * @retval -EMSGSIZE  the spec cannot express the payload (length over max,
 *                    300 bytes with len8, more digits than ascii:N has, not N
 *                    bytes with fixed:N)
 * @retval -EINVAL    the payload contains the delimiter of a delimited spec, or
 *                    is not exactly one complete message for resp
 * @retval -EPROTO    an unmapped type
 */
SM_API int sm_frame_encode(const sm_frame_spec *spec, const void *payload, size_t len, int type,
                           sm_frame_hdr *hdr);

/**
 * sm_frame_encode() with the header bytes the spec does not compute given by
 * the caller: the offset= bytes before a length field (PostgreSQL's type
 * byte with "len32be,offset=1,adjust=4", memcached's opcode and key length
 * before its body length), which sm_frame_encode() writes as zeros.
 *
 * Those bytes are the first head_len bytes of hdr->head, copied from head.
 * For a type: spec they start with the type byte, followed by the offset
 * bytes of the nested spec it selects: with type:A=(len16be,offset=2), head
 * is "A" and two bytes; for an entry without offset, head is the type byte
 * alone and the result is sm_frame_encode() with that type. A spec with no
 * offset takes head_len 0 (the result is sm_frame_encode()'s).
 * sm_frame_hdr_len() says how many bytes a spec wants.
 *
 * @param spec      a checked spec
 * @param head      the caller's header bytes (may be NULL when head_len is 0)
 * @param head_len  how many: exactly sm_frame_hdr_len(spec, type)
 * @param payload   as for sm_frame_encode()
 * @param len       the payload's length
 * @param hdr       receives the header and trailer (both empty on error)
 * @retval 0          done
 * @retval -EINVAL    head_len is not what the spec wants (or head is NULL
 *                    with head_len > 0), or the errors of sm_frame_encode()
 * @retval -EPROTO    a type: spec and head[0] is not a mapped type
 * @retval -EMSGSIZE  as for sm_frame_encode()
 */
SM_API int sm_frame_encode_hdr(const sm_frame_spec *spec, const void *head, size_t head_len,
                               const void *payload, size_t len, sm_frame_hdr *hdr);

/**
 * How many header bytes sm_frame_encode_hdr() takes from the caller.
 *
 * @param spec  a checked spec
 * @param type  the type byte for a type: spec, ignored otherwise
 * @return the spec's offset= (0 when it has none); for a type: spec, 1 (the
 *         type byte) plus the selected entry's offset; or -EPROTO for a type
 *         the spec does not map
 */
SM_API int sm_frame_hdr_len(const sm_frame_spec *spec, int type);

/**
 * The effective max of a spec.
 *
 * @param spec  the spec
 * @return spec->max, or SM_FRAME_DEFAULT_MAX when it is 0
 */
SM_API uint64_t sm_frame_max(const sm_frame_spec *spec);

#ifdef __cplusplus
}
#endif

#endif
