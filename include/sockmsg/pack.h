/**
 * @file
 * @brief Binary packing: Python struct-style formats, varints, cursors.
 *
 * Three layers, all over caller-owned buffers; nothing here allocates, does
 * I/O or keeps global state:
 *   - format packing: sm_pack / sm_unpack with a format language compatible
 *     with Python's struct module (same bytes for the same format and values);
 *   - varints (unsigned LEB128), zigzag and length-prefixed bytes;
 *   - sm_packer / sm_unpacker: cursors with typed put/get calls and a sticky
 *     error, so a hot path writes or reads a whole message and checks once.
 *
 * @code{.unparsed}
 * Format strings (as Python's struct):
 *   The first character may give the byte order, size and alignment:
 *     @  native order, native sizes, native alignment (the default)
 *     =  native order, standard sizes, no alignment
 *     <  little-endian, standard sizes, no alignment
 *     >  big-endian, standard sizes, no alignment
 *     !  network order (= big-endian), standard sizes, no alignment
 *   Then codes, each with an optional decimal repeat count before it ("4h"):
 *     code  C type (pack argument / unpack argument)      standard  @ (x86_64)
 *     x     pad byte, zero (none / none)                        1       1
 *     c     byte 0..255 (int / int *)                           1       1
 *     b B   int8, uint8                                         1       1
 *     ?     bool: packs v != 0 as 1; unpacks nonzero as 1
 *           (int / int *)                                       1       1
 *     h H   int16, uint16                                       2       2
 *     i I   int32, uint32                                       4       4
 *     l L   int32, uint32 (standard) / long (native)            4       8
 *     q Q   int64, uint64                                       8       8
 *     e     IEEE 754 binary16 (double / double *)               2       2
 *     f     IEEE 754 binary32 (double / double *)               4       4
 *     d     IEEE 754 binary64 (double / double *)               8       8
 *     s     bytes, the count is the field size
 *           (const void *, size_t / const uint8_t **, size_t *) N       N
 *     p     Pascal string: a length byte, then N - 1 bytes
 *           (as s)                                              N       N
 *   Signed integer codes (b h i l q) take int64_t when packing and int64_t *
 *   when unpacking; unsigned codes (B H I L Q) take uint64_t / uint64_t *.
 *   Pass exactly these types: C varargs are not converted, so a plain `1` where
 *   an int64_t is expected is undefined behaviour. Write (int64_t)1 or INT64_C(1).
 *   A repeat count takes that many arguments ("3h" takes three int64_t), except
 *   for s and p where it is the field size and the field takes one argument
 *   (pointer, length) pair ("10s" takes one pair; "0s" still takes one pair).
 *   A count of 0 takes no argument but still aligns under @ ("llh0l" is 24
 *   bytes: the trailing 0l pads to a multiple of 8). Whitespace between codes
 *   is ignored; a count and its code must be adjacent. Under @, each field is
 *   aligned to its own size relative to the start of the format (not the
 *   buffer); no padding is added at the end. Padding is written as zero bytes.
 *
 * Values, as Python checks them:
 *   - An integer out of its code's range (300 for b, 2^32 for I, 256 for c) is
 *     -ERANGE.
 *   - f and e round to nearest, ties to even. A finite value too large for the
 *     target format after rounding is -ERANGE (Python's OverflowError). Infinities
 *     and NaNs pack as such; a NaN packs as the quiet NaN Python writes (for e:
 *     0x7e00 with the sign). Python's native "@f" silently turns a too-large
 *     value into infinity; here "@f" is -ERANGE like "<f": the one deliberate
 *     difference.
 *   - s copies min(len, N) bytes and zero-fills the rest of the field. p copies
 *     n = min(len, N - 1) bytes after the length byte, which holds min(n, 255);
 *     "0p" is an empty field. On unpack, s gives a view of the N field bytes; p
 *     gives a view of min(length byte, N - 1) bytes after the length byte.
 *   Codes Python has only natively (n N P) are not supported: SM_ERR_FORMAT.
 *
 * Errors (every function returns a negative code, never a partial success):
 *   SM_ERR_FORMAT  malformed format: unknown code, byte-order character not in
 *                  first position, a count without a code, or a total size
 *                  over SSIZE_MAX. sm_pack_check names the byte and its offset;
 *                  sm_pack_values_why / sm_unpack_values_why also name the
 *                  value behind any other error.
 *   -ENOSPC        the output does not fit in `cap` bytes. Checked before
 *                  anything is written, for the whole format.
 *   -EPROTO        the input is too short for what is read (checked before
 *                  anything is read: never an overread), or malformed (a varint
 *                  of more than 10 bytes or 64 bits). Every reader in this
 *                  module uses -EPROTO for both; the readers work on whole
 *                  messages (framing, where "need more bytes" matters, is frame.h).
 *   -ERANGE        a value out of range for its code.
 *   -EMSGSIZE      bytes too long for their length prefix (sm_pack_bytes).
 *   -EINVAL        a NULL format, a NULL buffer with a nonzero size, a NULL data
 *                  pointer with a nonzero length, or the wrong number of values
 *                  in the array forms.
 * When packing fails with -ERANGE or -EINVAL, the output buffer may hold a
 * partly written message; its contents are unspecified.
 * @endcode
 *
 * Ownership: buffers belong to the caller. Unpacked s and p fields and
 * sm_unpack_bytes results are views into the caller's input: valid while it is.
 *
 * @threads All functions are reentrant and callable from any callback; a
 * format string is only read. An sm_packer or sm_unpacker belongs to one
 * thread at a time.
 */
#ifndef SOCKMSG_PACK_H
#define SOCKMSG_PACK_H

#include <stdarg.h>

#include "api.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest encoding of a 64-bit varint, in bytes. */
#define SM_VARINT_MAX 10

/* ------------------------------------------------------------------------- */
/* Format packing                                                            */

/**
 * Validate fmt and, when it is malformed, say where. Every function below
 * that takes a format fails on exactly the formats this refuses; call it to
 * explain an SM_ERR_FORMAT from any of them.
 *
 * @param fmt      the format
 * @param why      NULL, or a buffer that receives "pack format '!Hz': unknown
 *                 code 'z' at offset 2", "... byte-order mark '<' at offset 3
 *                 (only the first character may give the byte order)", "...
 *                 the count at offset 1 has no code after it" (offsets count
 *                 bytes from the start of fmt)
 * @param why_len  the size of @p why
 * @retval 0              well-formed
 * @retval SM_ERR_FORMAT  malformed
 * @retval -EINVAL        fmt NULL
 */
SM_API int sm_pack_check(const char *fmt, char *why, size_t why_len);

/**
 * The number of bytes fmt packs to, like struct.calcsize.
 *
 * @param fmt  the format
 * @return the size (>= 0), or SM_ERR_FORMAT, -EINVAL (fmt NULL)
 */
SM_API ssize_t sm_pack_calcsize(const char *fmt);

/**
 * The number of values fmt takes (and unpacks to): the sum of the counts of
 * the value codes, plus one per s or p field; x takes none. For sizing a
 * value array for sm_pack_values() / sm_unpack_values().
 *
 * @param fmt  the format
 * @return the count, or SM_ERR_FORMAT, -EINVAL (fmt NULL)
 */
SM_API ssize_t sm_pack_count(const char *fmt);

/**
 * Pack the arguments into out[0..cap) as fmt says (see the types above).
 *
 * @param out  the output buffer; may be NULL only when cap is 0
 * @param cap  its size
 * @param fmt  the format
 * @param ...  the values, of exactly the types the codes take
 * @return the number of bytes written, which is sm_pack_calcsize(fmt), or
 *         SM_ERR_FORMAT, -ENOSPC (nothing written), -ERANGE, -EINVAL (see
 *         "Errors" above)
 */
SM_API ssize_t sm_pack(void *out, size_t cap, const char *fmt, ...);

/**
 * sm_pack() with a va_list.
 *
 * @param out  as for sm_pack()
 * @param cap  as for sm_pack()
 * @param fmt  as for sm_pack()
 * @param ap   the values; used as if by va_copy (the caller's ap is left
 *             unread and must still be closed with va_end by the caller)
 * @return as sm_pack()
 */
SM_API ssize_t sm_vpack(void *out, size_t cap, const char *fmt, va_list ap);

/**
 * Unpack in[0..len) as fmt says into the pointed-to variables (see the types
 * above).
 *
 * Bytes after the formatted ones are allowed and ignored (like
 * struct.unpack_from); compare the result with len for Python's exact-size
 * struct.unpack.
 *
 * @param in   the input
 * @param len  its length
 * @param fmt  the format
 * @param ...  pointers to the values; any may be NULL to skip that value (for
 *             s and p, either or both). s and p results point into `in`.
 * @return the number of bytes consumed, or SM_ERR_FORMAT, -EPROTO (len <
 *         sm_pack_calcsize(fmt); nothing is written to any output), -EINVAL
 */
SM_API ssize_t sm_unpack(const void *in, size_t len, const char *fmt, ...);

/**
 * sm_unpack() with a va_list.
 *
 * @param in   as for sm_unpack()
 * @param len  as for sm_unpack()
 * @param fmt  as for sm_unpack()
 * @param ap   the pointers; used as if by va_copy, as for sm_vpack()
 * @return as sm_unpack()
 */
SM_API ssize_t sm_vunpack(const void *in, size_t len, const char *fmt, va_list ap);

/**
 * One value for the array forms, when the format is only known at run time
 * (a command line, a config file, a test). Which member a code uses:
 * @code{.unparsed}
 * b h i l q c ?  -> i     (c: 0..255; ?: nonzero is true, unpacks as 0 or 1)
 * B H I L Q      -> u
 * e f d          -> d
 * s p            -> ptr, len (unpack: a view into the input)
 * @endcode
 */
typedef struct sm_pack_value {
    union {
        int64_t i;  /**< signed integer codes, c and ? */
        uint64_t u; /**< unsigned integer codes */
        double d;   /**< floating-point codes */
    };
    const void *ptr; /**< s and p: the bytes */
    size_t len;      /**< s and p: their length */
} sm_pack_value;

/**
 * sm_pack() with the values in an array.
 *
 * @param out    as for sm_pack()
 * @param cap    as for sm_pack()
 * @param fmt    as for sm_pack()
 * @param vals   the values; may be NULL when nvals is 0
 * @param nvals  must equal sm_pack_count(fmt) (-EINVAL otherwise, like
 *               Python's "pack expected N items")
 * @return as sm_pack()
 */
SM_API ssize_t sm_pack_values(void *out, size_t cap, const char *fmt, const sm_pack_value *vals,
                              size_t nvals);

/**
 * sm_unpack() into an array; fills the first sm_pack_count(fmt) entries.
 *
 * @param in     as for sm_unpack()
 * @param len    as for sm_unpack()
 * @param fmt    as for sm_unpack()
 * @param vals   receives the values
 * @param nvals  its size: at least sm_pack_count(fmt) (-EINVAL if fewer)
 * @return as sm_unpack()
 */
SM_API ssize_t sm_unpack_values(const void *in, size_t len, const char *fmt, sm_pack_value *vals,
                                size_t nvals);

/**
 * @name Explaining forms
 * sm_pack_values() and sm_unpack_values() that explain a failure, for
 * formats that come from outside the program (a command line, a config
 * file). `why` (if not NULL; set to "" on success) names the value, its code
 * and the code's offset in fmt:
 * @code{.unparsed}
 *   "pack format '!Hb': value 1 (code 'b' at offset 2): 300 out of range -128..127"
 *   "pack format '!Hf': value 1 (code 'f' at offset 2): 1e+39 does not fit binary32"
 *   "pack format '!HH' takes 2 values, got 1"
 *   "pack format '!HI' needs 6 bytes, input has 3"
 * @endcode
 * and for a malformed format what sm_pack_check() says. Values count from 0
 * in the order they are taken.
 * @{
 */
/**
 * sm_pack_values() that explains a failure (see above).
 *
 * @param out      as for sm_pack_values()
 * @param cap      as for sm_pack_values()
 * @param fmt      as for sm_pack_values()
 * @param vals     as for sm_pack_values()
 * @param nvals    as for sm_pack_values()
 * @param why      NULL, or receives the explanation ("" on success)
 * @param why_len  the size of @p why
 * @return as sm_pack_values()
 */
SM_API ssize_t sm_pack_values_why(void *out, size_t cap, const char *fmt, const sm_pack_value *vals,
                                  size_t nvals, char *why, size_t why_len);
/**
 * sm_unpack_values() that explains a failure (see above).
 *
 * @param in       as for sm_unpack_values()
 * @param len      as for sm_unpack_values()
 * @param fmt      as for sm_unpack_values()
 * @param vals     as for sm_unpack_values()
 * @param nvals    as for sm_unpack_values()
 * @param why      NULL, or receives the explanation ("" on success)
 * @param why_len  the size of @p why
 * @return as sm_unpack_values()
 */
SM_API ssize_t sm_unpack_values_why(const void *in, size_t len, const char *fmt,
                                    sm_pack_value *vals, size_t nvals, char *why, size_t why_len);
/** @} */

/* ------------------------------------------------------------------------- */
/* Varints, zigzag, length-prefixed bytes                                    */

/**
 * Write v as unsigned LEB128 (7 bits a byte, low first, high bit = more
 * follows; 1 to SM_VARINT_MAX bytes, always the shortest form).
 *
 * @param out  the output buffer
 * @param cap  its size
 * @param v    the value
 * @return the bytes written, or -ENOSPC (nothing written)
 */
SM_API int sm_pack_varint(void *out, size_t cap, uint64_t v);

/**
 * How many bytes sm_pack_varint() writes for v.
 *
 * @param v  the value
 * @return 1..10
 */
SM_API int sm_pack_varint_size(uint64_t v);

/**
 * Read an unsigned LEB128 varint. Non-shortest forms are accepted (as
 * protobuf does).
 *
 * @param in   the input
 * @param len  its length
 * @param v    receives the value (may be NULL); untouched on error
 * @return the bytes consumed (1..10), or -EPROTO: the input ends inside the
 *         varint, or it runs over 10 bytes or 64 bits
 */
SM_API int sm_unpack_varint(const void *in, size_t len, uint64_t *v);

/**
 * Map a signed value to an unsigned one so that small magnitudes stay small
 * (0, -1, 1, -2 -> 0, 1, 2, 3), as protobuf's sint64; pack the result with
 * sm_pack_varint(). Total: every int64_t maps.
 *
 * @param v  the value
 * @return its zigzag encoding
 */
SM_API uint64_t sm_pack_zigzag(int64_t v);

/**
 * The inverse of sm_pack_zigzag(); every uint64_t maps.
 *
 * @param v  a zigzag encoding
 * @return the signed value
 */
SM_API int64_t sm_unpack_zigzag(uint64_t v);

/** The length field of a length-prefixed byte string. */
typedef enum sm_pack_prefix {
    SM_PREFIX_VARINT = 0, /**< unsigned LEB128 */
    SM_PREFIX_U8,         /**< one byte */
    SM_PREFIX_U16BE,      /**< 16 bits, big-endian */
    SM_PREFIX_U16LE,      /**< 16 bits, little-endian */
    SM_PREFIX_U32BE,      /**< 32 bits, big-endian */
    SM_PREFIX_U32LE,      /**< 32 bits, little-endian */
    SM_PREFIX_U64BE,      /**< 64 bits, big-endian */
    SM_PREFIX_U64LE,      /**< 64 bits, little-endian */
} sm_pack_prefix;

/**
 * Write len as a `prefix` length field, then data[0..len).
 *
 * @param out     the output buffer
 * @param cap     its size
 * @param prefix  the length field's encoding
 * @param data    the bytes; may be NULL when len is 0
 * @param len     how many
 * @return the bytes written, or an error:
 * @retval -EMSGSIZE  len does not fit the prefix, e.g. 256 with SM_PREFIX_U8
 * @retval -ENOSPC    out is too small (nothing written)
 * @retval -EINVAL    an unknown prefix, NULL data with len > 0
 */
SM_API ssize_t sm_pack_bytes(void *out, size_t cap, sm_pack_prefix prefix, const void *data,
                             size_t len);

/**
 * Read a `prefix` length field and that many bytes. Outputs are untouched on
 * error.
 *
 * @param in        the input
 * @param len       its length
 * @param prefix    the length field's encoding
 * @param data      receives a view into `in` (may be NULL)
 * @param data_len  receives the view's length (may be NULL)
 * @return the bytes consumed (prefix + data), or an error:
 * @retval -EPROTO  the input is shorter than the field or than the length it
 *                  announces; a bad varint
 * @retval -EINVAL  an unknown prefix
 */
SM_API ssize_t sm_unpack_bytes(const void *in, size_t len, sm_pack_prefix prefix,
                               const uint8_t **data, size_t *data_len);

/* ------------------------------------------------------------------------- */
/* Cursors                                                                   */

/** A writer over a caller's buffer. The first error sticks in `err` and makes
 * every later call a no-op, so a message is written with unchecked calls and
 * checked once with sm_packer_finish(). The fields are public and plain:
 * buf[0..pos) is what was written. */
typedef struct sm_packer {
    uint8_t *buf; /**< the caller's buffer */
    size_t cap;   /**< its size */
    size_t pos;   /**< bytes written so far */
    int err;      /**< 0, or the first error: -ENOSPC, -ERANGE, -EMSGSIZE, ... */
} sm_packer;

/**
 * Start writing at buf[0], at most cap bytes.
 *
 * @param p    the packer (caller-owned)
 * @param buf  the output buffer, or NULL (then cap is taken as 0 and every
 *             nonempty write fails with -ENOSPC)
 * @param cap  its size
 */
SM_API void sm_packer_init(sm_packer *p, void *buf, size_t cap);

/**
 * @name Fixed-width writers
 * Append a fixed-width unsigned integer in the named byte order (signed
 * values: convert, e.g. (uint32_t)x, which is well-defined). A value that
 * does not fit the remaining space sets -ENOSPC and writes nothing.
 * @param p  the packer
 * @param v  the value
 * @{
 */
/** Append one byte. @param p the packer @param v the value */
SM_API void sm_packer_put_u8(sm_packer *p, uint8_t v);
/** Append 16 bits, big-endian. @param p the packer @param v the value */
SM_API void sm_packer_put_u16be(sm_packer *p, uint16_t v);
/** Append 16 bits, little-endian. @param p the packer @param v the value */
SM_API void sm_packer_put_u16le(sm_packer *p, uint16_t v);
/** Append 32 bits, big-endian. @param p the packer @param v the value */
SM_API void sm_packer_put_u32be(sm_packer *p, uint32_t v);
/** Append 32 bits, little-endian. @param p the packer @param v the value */
SM_API void sm_packer_put_u32le(sm_packer *p, uint32_t v);
/** Append 64 bits, big-endian. @param p the packer @param v the value */
SM_API void sm_packer_put_u64be(sm_packer *p, uint64_t v);
/** Append 64 bits, little-endian. @param p the packer @param v the value */
SM_API void sm_packer_put_u64le(sm_packer *p, uint64_t v);
/** @} */

/**
 * Append v as an unsigned LEB128 varint (-ENOSPC when it does not fit).
 *
 * @param p  the packer
 * @param v  the value
 */
SM_API void sm_packer_put_varint(sm_packer *p, uint64_t v);

/**
 * Append data[0..len) as is (-ENOSPC; -EINVAL for NULL data with len > 0).
 *
 * @param p     the packer
 * @param data  the bytes
 * @param len   how many
 */
SM_API void sm_packer_put_raw(sm_packer *p, const void *data, size_t len);

/**
 * Append a length-prefixed byte string, as sm_pack_bytes() (-ENOSPC,
 * -EMSGSIZE, -EINVAL).
 *
 * @param p       the packer
 * @param prefix  the length field's encoding
 * @param data    the bytes; may be NULL when len is 0
 * @param len     how many
 */
SM_API void sm_packer_put_bytes(sm_packer *p, sm_pack_prefix prefix, const void *data, size_t len);

/**
 * Append sm_pack(fmt, ...) at the cursor. Alignment under \@ is relative to
 * the cursor position when called, as struct.pack_into with an offset.
 * Errors as sm_pack(), made sticky.
 *
 * @param p    the packer
 * @param fmt  the format
 * @param ...  the values, as for sm_pack()
 */
SM_API void sm_packer_pack(sm_packer *p, const char *fmt, ...);

/**
 * The result. Does not change the packer.
 *
 * @param p  the packer
 * @return the number of bytes written (pos), or the sticky error
 */
SM_API ssize_t sm_packer_finish(const sm_packer *p);

/** A reader over a caller's buffer; the error is sticky as in sm_packer: after
 * the first error every get returns 0 (or NULL) and reads nothing. */
typedef struct sm_unpacker {
    const uint8_t *buf; /**< the caller's buffer */
    size_t len;         /**< its length */
    size_t pos;         /**< bytes consumed so far */
    int err;            /**< 0, or the first error: -EPROTO, SM_ERR_FORMAT, ... */
} sm_unpacker;

/**
 * Start reading buf[0..len).
 *
 * @param u    the unpacker (caller-owned)
 * @param buf  the input, or NULL (then len is taken as 0)
 * @param len  its length
 */
SM_API void sm_unpacker_init(sm_unpacker *u, const void *buf, size_t len);

/**
 * @name Fixed-width readers
 * Read a fixed-width unsigned integer in the named byte order. If fewer bytes
 * remain, sets -EPROTO, reads nothing and returns 0. Signed values: convert
 * the result, e.g. (int32_t)sm_unpacker_get_u32be(u) (the conversion is
 * implementation-defined in ISO C; gcc defines it as two's complement).
 * @{
 */
/** Read one byte. @param u the unpacker @return the value, or 0 */
SM_API uint8_t sm_unpacker_get_u8(sm_unpacker *u);
/** Read 16 bits, big-endian. @param u the unpacker @return the value, or 0 */
SM_API uint16_t sm_unpacker_get_u16be(sm_unpacker *u);
/** Read 16 bits, little-endian. @param u the unpacker @return the value, or 0 */
SM_API uint16_t sm_unpacker_get_u16le(sm_unpacker *u);
/** Read 32 bits, big-endian. @param u the unpacker @return the value, or 0 */
SM_API uint32_t sm_unpacker_get_u32be(sm_unpacker *u);
/** Read 32 bits, little-endian. @param u the unpacker @return the value, or 0 */
SM_API uint32_t sm_unpacker_get_u32le(sm_unpacker *u);
/** Read 64 bits, big-endian. @param u the unpacker @return the value, or 0 */
SM_API uint64_t sm_unpacker_get_u64be(sm_unpacker *u);
/** Read 64 bits, little-endian. @param u the unpacker @return the value, or 0 */
SM_API uint64_t sm_unpacker_get_u64le(sm_unpacker *u);
/** @} */

/**
 * Read an unsigned LEB128 varint (-EPROTO as sm_unpack_varint()).
 *
 * @param u  the unpacker
 * @return the value, or 0 on error
 */
SM_API uint64_t sm_unpacker_get_varint(sm_unpacker *u);

/**
 * A view of the next n bytes, consumed.
 *
 * @param u  the unpacker
 * @param n  how many bytes
 * @return a pointer into the unpacker's buffer; NULL (and -EPROTO) if fewer
 *         than n remain. n == 0 gives a valid non-NULL pointer (not to be
 *         dereferenced).
 */
SM_API const uint8_t *sm_unpacker_get_raw(sm_unpacker *u, size_t n);

/**
 * Read a length-prefixed byte string, as sm_unpack_bytes().
 *
 * @param u       the unpacker
 * @param prefix  the length field's encoding
 * @param len     receives the length (may be NULL); 0 on error
 * @return a view into the buffer, or NULL on error (-EPROTO, -EINVAL)
 */
SM_API const uint8_t *sm_unpacker_get_bytes(sm_unpacker *u, sm_pack_prefix prefix, size_t *len);

/**
 * sm_unpack(fmt, ...) at the cursor; alignment under \@ is relative to the
 * cursor position. Errors as sm_unpack(), made sticky; on error nothing is
 * consumed or written.
 *
 * @param u    the unpacker
 * @param fmt  the format
 * @param ...  pointers to the values, as for sm_unpack()
 */
SM_API void sm_unpacker_unpack(sm_unpacker *u, const char *fmt, ...);

/**
 * The result. A message with trailing bytes is not an error here: compare
 * pos with len if it should be. Does not change the unpacker.
 *
 * @param u  the unpacker
 * @return the number of bytes consumed (pos), or the sticky error
 */
SM_API ssize_t sm_unpacker_finish(const sm_unpacker *u);

#ifdef __cplusplus
}
#endif

#endif
