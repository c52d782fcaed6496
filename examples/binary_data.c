/* The HOWTO's "Binary data" chapter: network byte order, struct-style packing,
 * and varints, checked both ways.
 *
 *   binary_data
 *
 * Packs a record with a Python-struct format, prints the bytes (the same ones
 * Python's struct.pack("!HId", 7, 1234, 2.5) gives), unpacks them again; then
 * shows what sm_pack_check and sm_pack_values_why say about a bad format and
 * a bad value; then builds the same kind of message with the cursor API
 * (sm_packer), where a varint carries a small number in one byte. */
#include <inttypes.h>
#include <stdio.h>

#include <sockmsg/pack.h>
#include <sockmsg/sockmsg.h>

static void
hex(const char *label, const uint8_t *p, size_t n)
{
    printf("%-28s", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("  (%zu bytes)\n", n);
}

int
main(void)
{
    uint8_t buf[64];

    /* guide: pack */
    /* ! is network order: a 2-byte type, a 4-byte id, an 8-byte double. */
    ssize_t n = sm_pack(buf, sizeof buf, "!HId", (uint64_t)7, (uint64_t)1234, 2.5);
    if (n < 0) {
        fprintf(stderr, "pack: %s\n", sm_strerror((int)n));
        return 1;
    }
    hex("struct.pack('!HId', ...):", buf, (size_t)n);

    uint64_t type, id;
    double x;
    ssize_t used = sm_unpack(buf, (size_t)n, "!HId", &type, &id, &x);
    if (used != n || type != 7 || id != 1234 || x != 2.5) {
        fprintf(stderr, "unpack: %s\n", used < 0 ? sm_strerror((int)used) : "mismatch");
        return 1;
    }
    printf("%-28stype=%" PRIu64 " id=%" PRIu64 " x=%g\n", "unpacked:", type, id, x);

    /* Reading past the end is an error, never an overread. */
    ssize_t short_read = sm_unpack(buf, 5, "!HId", &type, &id, &x);
    printf("%-28s%s\n", "unpack of 5 bytes:", sm_strerror((int)short_read));
    /* guide: end */

    /* guide: why */
    /* A format from outside the program: say what is wrong with it. */
    char why[160];
    if (sm_pack_check("!Hz", why, sizeof why) < 0) printf("%s\n", why);
    sm_pack_value vals[2] = {{.u = 7}, {.i = 300}};
    if (sm_pack_values_why(buf, sizeof buf, "!Hb", vals, 2, why, sizeof why) < 0)
        printf("%s\n", why);
    /* guide: end */

    /* guide: packer */
    /* The cursor API: typed puts, one error check at the end. */
    sm_packer p;
    sm_packer_init(&p, buf, sizeof buf);
    sm_packer_put_u16be(&p, 7);
    sm_packer_put_varint(&p, 100); /* small numbers: one byte, not eight */
    sm_packer_put_varint(&p, 300);
    sm_packer_put_bytes(&p, SM_PREFIX_VARINT, "hi", 2);
    n = sm_packer_finish(&p);
    if (n < 0) return 1;
    hex("u16be, varints, bytes:", buf, (size_t)n);

    sm_unpacker u;
    sm_unpacker_init(&u, buf, (size_t)n);
    uint16_t t = sm_unpacker_get_u16be(&u);
    uint64_t a = sm_unpacker_get_varint(&u), b = sm_unpacker_get_varint(&u);
    size_t blen;
    const uint8_t *bytes = sm_unpacker_get_bytes(&u, SM_PREFIX_VARINT, &blen);
    if (sm_unpacker_finish(&u) != n || !bytes) return 1;
    printf("%-28stype=%u a=%" PRIu64 " b=%" PRIu64 " bytes=%.*s\n", "read back:", t, a, b,
           (int)blen, (const char *)bytes);
    /* guide: end */
    return 0;
}
