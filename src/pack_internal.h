/* Private to the packing module (pack_format.c, pack_struct.c, pack_varint.c,
 * pack_cursor.c): the byte-order primitives all three layers write and read
 * integers with, and the walk over a format string. */
#ifndef SM_PACK_INTERNAL_H
#define SM_PACK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A pointer to hand to memcpy-free paths when the caller's buffer is NULL with
 * size 0: arithmetic on a NULL pointer is undefined even with offset 0. Never
 * written (defined in pack_struct.c). */
extern const uint8_t sm__pack_empty[1];

/* Store the low n bytes of v at p, least significant first when little. */
static inline void
sm__pack_put_uint(uint8_t *p, uint64_t v, size_t n, bool little)
{
    for (size_t k = 0; k < n; k++)
        p[little ? k : n - 1 - k] = (uint8_t)(v >> (8 * k));
}

/* The n-byte unsigned integer at p. */
static inline uint64_t
sm__pack_get_uint(const uint8_t *p, size_t n, bool little)
{
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v |= (uint64_t)p[little ? k : n - 1 - k] << (8 * k);
    return v;
}

/* ---- the format language (pack_format.c) --------------------------------- */

/* Why a format is malformed, for the explanations of sm_pack_check. */
enum {
    SM__FMT_OK = 0,
    SM__FMT_UNKNOWN, /* err_at is a byte that is no code */
    SM__FMT_ORDER,   /* err_at is a byte-order mark after the first position */
    SM__FMT_NOCODE,  /* err_at is a count that no code follows */
    SM__FMT_COUNT,   /* err_at is a count too large for ssize_t */
    SM__FMT_SIZE,    /* err_at is the code that takes the size over SSIZE_MAX */
};

/* A walk over a format string. */
typedef struct sm__fmt {
    const char *start; /* the whole format, for messages */
    const char *s;     /* the next item */
    const char *err_at;
    int err_kind; /* SM__FMT_*: why the walk stopped with SM_ERR_FORMAT */
    bool little;
    bool native; /* '@': native sizes and alignment */
} sm__fmt;

typedef struct sm__fmt_item {
    char code;
    size_t at; /* offset of the code in the format */
    size_t count;
    size_t size;  /* bytes per element (s, p, x: 1) */
    size_t align; /* 1: none */
} sm__fmt_item;

/* Start a walk over fmt: 0, or -EINVAL for a NULL fmt. */
int sm__fmt_init(sm__fmt *f, const char *fmt);
/* The next item: 1, 0 at the end, or SM_ERR_FORMAT (f->err_kind says why). */
int sm__fmt_next(sm__fmt *f, sm__fmt_item *it);
/* Validate and measure a whole format: the packed size, with in *nvals (may
 * be NULL) the values it takes; or SM_ERR_FORMAT (f says why) or -EINVAL.
 * After it succeeds a second walk from sm__fmt_init meets no error. */
ssize_t sm__fmt_scan(sm__fmt *f, const char *fmt, size_t *nvals);
/* Explain the error that stopped f in why: "pack format '!Hz': unknown code
 * 'z' at offset 2". Returns SM_ERR_FORMAT. */
int sm__fmt_why(const sm__fmt *f, char *why, size_t why_len);
/* fmt as messages quote it: at most 64 bytes, unprintable bytes as \xNN. */
void sm__fmt_quote(const char *fmt, char *out, size_t out_len);

static inline bool
sm__fmt_is_string(const sm__fmt_item *it)
{
    return it->code == 's' || it->code == 'p';
}

/* Bytes the item occupies after its alignment padding. */
static inline size_t
sm__fmt_item_bytes(const sm__fmt_item *it)
{
    return sm__fmt_is_string(it) ? it->count : it->count * it->size;
}

static inline size_t
sm__fmt_align_up(size_t off, size_t align)
{
    return (off + align - 1) / align * align;
}

static inline bool
sm__fmt_signed(char c)
{
    return c == 'b' || c == 'h' || c == 'i' || c == 'l' || c == 'q';
}

static inline bool
sm__fmt_unsigned(char c)
{
    return c == 'B' || c == 'H' || c == 'I' || c == 'L' || c == 'Q';
}

#endif
