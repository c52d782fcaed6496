/* Frame specs: the canonical text of a parsed spec (sm_frame_spec_format),
 * which sm_frame_spec_parse reads back to an equal struct. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sockmsg/frame.h>
#include "frame_internal.h"

/* ---- string builder for format: counts what it would need, like snprintf ---- */

typedef struct sbuf {
    char *out;
    size_t cap;
    size_t len;
} sbuf;

__attribute__((format(printf, 2, 3))) static void
sb_printf(sbuf *sb, const char *fmt, ...)
{
    char dummy;
    char *dst = sb->len < sb->cap ? sb->out + sb->len : &dummy;
    size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? dst : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) sb->len += (size_t)n;
}

static void
format_delim(sbuf *sb, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        switch (c) {
        case '\n':
            sb_printf(sb, "\\n");
            break;
        case '\r':
            sb_printf(sb, "\\r");
            break;
        case '\t':
            sb_printf(sb, "\\t");
            break;
        case '\0':
            sb_printf(sb, "\\0");
            break;
        case '\\':
            sb_printf(sb, "\\\\");
            break;
        default:
            if (sm__frame_spec_plain(c))
                sb_printf(sb, "%c", c);
            else
                sb_printf(sb, "\\x%02x", c);
        }
    }
}

static void
format_size(sbuf *sb, uint64_t v)
{
    static const char suffix[] = "GMK";
    for (int i = 0; i < 3; i++) {
        uint64_t unit = (uint64_t)1 << (30 - 10 * i);
        if (v % unit == 0) {
            sb_printf(sb, "%" PRIu64 "%c", v / unit, suffix[i]);
            return;
        }
    }
    sb_printf(sb, "%" PRIu64, v);
}

static void
format_basic(sbuf *sb, const sm_frame_basic *b)
{
    switch (b->kind) {
    case SM_FRAME_FIXED:
        sb_printf(sb, "fixed:%" PRIu64, b->fixed_len);
        break;
    case SM_FRAME_DELIM:
        if (b->delim_len == 1 && b->delim[0] == '\n')
            sb_printf(sb, "line");
        else if (b->delim_len == 2 && b->delim[0] == '\r' && b->delim[1] == '\n')
            sb_printf(sb, "crlf");
        else if (b->delim_len == 1 && b->delim[0] == '\0')
            sb_printf(sb, "nul");
        else {
            sb_printf(sb, "delim:");
            format_delim(sb, b->delim, b->delim_len);
        }
        break;
    case SM_FRAME_LENGTH:
        if (b->len_width == 1)
            sb_printf(sb, "len8");
        else
            sb_printf(sb, "len%u%s", 8u * b->len_width, b->len_little ? "le" : "be");
        if (b->len_adjust) sb_printf(sb, ",adjust=%" PRId64, b->len_adjust);
        break;
    case SM_FRAME_ASCII:
        sb_printf(sb, "ascii:%u", (unsigned)b->ascii_digits);
        break;
    case SM_FRAME_NETSTRING:
        sb_printf(sb, "netstring");
        break;
    case SM_FRAME_VARINT:
        sb_printf(sb, "varint");
        break;
    case SM_FRAME_EOF:
        sb_printf(sb, "eof");
        break;
    case SM_FRAME_RESP:
        sb_printf(sb, "resp");
        if (b->resp_depth) sb_printf(sb, ",depth=%u", (unsigned)b->resp_depth);
        break;
    default:
        sb_printf(sb, "?");
        break;
    }
    if (b->len_offset) sb_printf(sb, ",offset=%u", (unsigned)b->len_offset);
}

size_t
sm__frame_basic_format(const sm_frame_basic *b, char *out, size_t out_len)
{
    sbuf sb = {out, out_len, 0};
    if (out_len > 0) out[0] = '\0';
    format_basic(&sb, b);
    return sb.len;
}

/* The value of one type: entry: a length, or a nested spec in parentheses. */
static void
format_entry(sbuf *sb, const sm_frame_basic *b)
{
    if (b->kind == SM_FRAME_FIXED) {
        sb_printf(sb, "%" PRIu64, b->fixed_len);
    } else {
        sb_printf(sb, "(");
        format_basic(sb, b);
        sb_printf(sb, ")");
    }
}

/* The type_map value written as the default entry '*', or 0 for none. A spec
 * that maps all 256 bytes has one: the entry that maps the most bytes (the
 * first such in types[] on a tie), which gives the shortest string; parsing
 * fills exactly the bytes left out, so the map comes back the same. */
static unsigned
type_default(const sm_frame_spec *spec)
{
    unsigned count[SM_FRAME_TYPES_MAX + 1] = {0};
    for (unsigned k = 0; k < 256; k++) {
        if (!spec->type_map[k]) return 0;
        count[spec->type_map[k]]++;
    }
    unsigned best = 1;
    for (unsigned i = 2; i <= spec->type_count; i++)
        if (count[i] > count[best]) best = i;
    return best;
}

int
sm_frame_spec_format(const sm_frame_spec *spec, char *out, size_t out_len)
{
    if (out_len > 0) out[0] = '\0';
    if (sm_frame_spec_check(spec, NULL, 0)) return SM_ERR_SPEC;
    sbuf sb = {out, out_len, 0};
    if (spec->kind == SM_FRAME_TYPE) {
        sb_printf(&sb, "type:");
        unsigned dflt = type_default(spec);
        bool first = true;
        for (unsigned k = 0; k < 256; k++) {
            if (!spec->type_map[k] || spec->type_map[k] == dflt) continue;
            if (!first) sb_printf(&sb, ";");
            first = false;
            if (sm__frame_spec_plain((uint8_t)k) && k != '*')
                sb_printf(&sb, "%c=", (char)k);
            else
                sb_printf(&sb, "0x%02x=", k);
            format_entry(&sb, &spec->types[spec->type_map[k] - 1]);
        }
        if (dflt) {
            sb_printf(&sb, "%s*=", first ? "" : ";");
            format_entry(&sb, &spec->types[dflt - 1]);
        }
    } else {
        format_basic(&sb, &spec->basic);
    }
    if (spec->max) {
        sb_printf(&sb, ",max=");
        format_size(&sb, spec->max);
    }
    if (spec->oversize == SM_OVERSIZE_SKIP) sb_printf(&sb, ",oversize=skip");
    /* Like snprintf: the length it needs, whatever fitted (vsnprintf has
     * NUL-terminated the part that did). */
    return (int)sb.len;
}
