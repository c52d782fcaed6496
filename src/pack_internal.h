/* Private to the packing module (pack_struct.c, pack_varint.c, pack_cursor.c):
 * the byte-order primitives all three layers write and read integers with. */
#ifndef SM_PACK_INTERNAL_H
#define SM_PACK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
