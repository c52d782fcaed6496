/* Frame specs: parsing and validation (formatting: frame_spec_format.c).
 *
 * Parsing builds the spec in a zeroed local and copies it out only on success,
 * so padding and unused fields are always zero and parse(format(spec)) compares
 * equal with memcmp. Type entries are renumbered in type-byte order at the end,
 * which makes the result independent of the order the entries were written in. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include "frame_internal.h"
#include "internal.h"

enum arg_kind { ARG_NONE, ARG_NUM, ARG_STR, ARG_MAP };

typedef struct codec {
    const char *name;
    sm_frame_kind kind;
    enum arg_kind arg;
    uint8_t width; /* LENGTH */
    bool little;   /* LENGTH */
    uint8_t delim_len;
    const char *delim;
} codec;

static const codec codecs[] = {
    {"fixed", SM_FRAME_FIXED, ARG_NUM, 0, false, 0, NULL},
    {"line", SM_FRAME_DELIM, ARG_NONE, 0, false, 1, "\n"},
    {"crlf", SM_FRAME_DELIM, ARG_NONE, 0, false, 2, "\r\n"},
    {"nul", SM_FRAME_DELIM, ARG_NONE, 0, false, 1, ""},
    {"delim", SM_FRAME_DELIM, ARG_STR, 0, false, 0, NULL},
    {"len8", SM_FRAME_LENGTH, ARG_NONE, 1, false, 0, NULL},
    {"len16be", SM_FRAME_LENGTH, ARG_NONE, 2, false, 0, NULL},
    {"len16le", SM_FRAME_LENGTH, ARG_NONE, 2, true, 0, NULL},
    {"len32be", SM_FRAME_LENGTH, ARG_NONE, 4, false, 0, NULL},
    {"len32le", SM_FRAME_LENGTH, ARG_NONE, 4, true, 0, NULL},
    {"len64be", SM_FRAME_LENGTH, ARG_NONE, 8, false, 0, NULL},
    {"len64le", SM_FRAME_LENGTH, ARG_NONE, 8, true, 0, NULL},
    {"ascii", SM_FRAME_ASCII, ARG_NUM, 0, false, 0, NULL},
    {"netstring", SM_FRAME_NETSTRING, ARG_NONE, 0, false, 0, NULL},
    {"varint", SM_FRAME_VARINT, ARG_NONE, 0, false, 0, NULL},
    {"type", SM_FRAME_TYPE, ARG_MAP, 0, false, 0, NULL},
    {"eof", SM_FRAME_EOF, ARG_NONE, 0, false, 0, NULL},
    {"resp", SM_FRAME_RESP, ARG_NONE, 0, false, 0, NULL},
};

#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* Options seen so far in one spec, to refuse duplicates. */
enum { OPT_MAX = 1, OPT_OVERSIZE = 2, OPT_ADJUST = 4, OPT_OFFSET = 8, OPT_DEPTH = 16 };

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned
hex_val(char c)
{
    if (c >= '0' && c <= '9') return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f') return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

/* Characters that the spec grammar uses as punctuation are always escaped when
 * formatting, so the canonical string reparses the same inside or outside a
 * type: entry. */

/* ---- parsing ---- */

static bool
parse_u64(const char *p, const char *end, uint64_t *out)
{
    if (p == end) return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool
parse_i64(const char *p, const char *end, int64_t *out)
{
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t v;
    if (!parse_u64(p, end, &v)) return false;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

static bool
parse_size(const char *p, const char *end, uint64_t *out)
{
    unsigned shift = 0;
    if (end > p) {
        switch (end[-1]) {
        case 'K':
        case 'k':
            shift = 10;
            break;
        case 'M':
        case 'm':
            shift = 20;
            break;
        case 'G':
        case 'g':
            shift = 30;
            break;
        default:
            break;
        }
    }
    uint64_t v;
    if (!parse_u64(p, shift ? end - 1 : end, &v)) return false;
    if (shift && v > UINT64_MAX >> shift) return false;
    *out = v << shift;
    return true;
}

static int
parse_delim(sm_frame_basic *b, const char *p, const char *end, char *why, size_t why_len)
{
    size_t n = 0;
    while (p < end) {
        uint8_t c = (uint8_t)*p++;
        if (c == '\\') {
            if (p == end)
                return sm__why(why, why_len, SM_ERR_SPEC, "delim:STR ends with a lone '\\'");
            char e = *p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case '0':
                c = '\0';
                break;
            case '\\':
                c = '\\';
                break;
            case 'x':
                if (end - p < 2 || !is_hex(p[0]) || !is_hex(p[1]))
                    return sm__why(why, why_len, SM_ERR_SPEC,
                                   "delim:STR: \\x needs two hex digits");
                c = (uint8_t)(hex_val(p[0]) << 4 | hex_val(p[1]));
                p += 2;
                break;
            default:
                return sm__why(why, why_len, SM_ERR_SPEC,
                               "delim:STR: bad escape '\\%c' (use \\n \\r \\t \\0 \\\\ \\xHH)", e);
            }
        }
        if (n == SM_FRAME_DELIM_MAX)
            return sm__why(why, why_len, SM_ERR_SPEC, "delim:STR is too long (at most %d bytes)",
                           SM_FRAME_DELIM_MAX);
        b->delim[n++] = c;
    }
    if (n == 0) return sm__why(why, why_len, SM_ERR_SPEC, "delim:STR needs at least one byte");
    b->delim_len = (uint8_t)n;
    return 0;
}

/* The ')' matching the '(' at p[-1], skipping escaped characters; NULL if none. */
static const char *
match_paren(const char *p, const char *end)
{
    int depth = 1;
    for (; p < end; p++) {
        if (*p == '\\') {
            if (++p == end) break;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')' && --depth == 0) {
            return p;
        }
    }
    return NULL;
}

static int parse_one(const char *p, const char *end, sm_frame_basic *b, sm_frame_spec *top,
                     const char **stop, char *why, size_t why_len);

static void
key_name(char *out, size_t out_len, unsigned key)
{
    if (sm__frame_spec_plain((uint8_t)key))
        snprintf(out, out_len, "'%c'", (char)key);
    else
        snprintf(out, out_len, "0x%02x", key);
}

/* Member by member: the struct has padding, which memcmp would compare too. */
static bool
basic_same(const sm_frame_basic *a, const sm_frame_basic *b)
{
    return a->kind == b->kind && a->fixed_len == b->fixed_len &&
           memcmp(a->delim, b->delim, sizeof a->delim) == 0 && a->delim_len == b->delim_len &&
           a->len_width == b->len_width && a->len_little == b->len_little &&
           a->len_offset == b->len_offset && a->len_adjust == b->len_adjust &&
           a->ascii_digits == b->ascii_digits && a->resp_depth == b->resp_depth;
}

/* type:K=V;K=V... starting at p; *stop is where the map ended. */
static int
parse_map(sm_frame_spec *s, const char *p, const char *end, const char **stop, char *why,
          size_t why_len)
{
    int dflt = -1; /* the types[] index of the *= entry, if any */
    for (;;) {
        unsigned key = 256; /* 256: the default entry */
        char kn[8];
        if (p == end || (*p == ',' && (end - p < 2 || p[1] != '=')))
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "type: needs entries K=V (e.g. type:A=4;B=(len16be))");
        if (end - p >= 2 && p[0] == '*' && p[1] == '=') {
            if (dflt >= 0)
                return sm__why(why, why_len, SM_ERR_SPEC,
                               "duplicate default entry '*' (write the byte '*' as 0x2a)");
            p += 2;
        } else if (end - p >= 5 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && is_hex(p[2]) &&
                   is_hex(p[3]) && p[4] == '=') {
            key = hex_val(p[2]) << 4 | hex_val(p[3]);
            p += 5;
        } else if (end - p >= 2 && p[1] == '=') {
            key = (uint8_t)p[0];
            if (key <= 0x20 || key >= 0x7f)
                return sm__why(why, why_len, SM_ERR_SPEC,
                               "type key 0x%02x must be a printable character or written 0xNN",
                               key);
            p += 2;
        } else {
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "type entry '%.*s': expected K=V with K a character or 0xNN",
                           (int)(end - p > 20 ? 20 : end - p), p);
        }
        if (key == 256)
            snprintf(kn, sizeof(kn), "'*'");
        else
            key_name(kn, sizeof(kn), key);
        if (key < 256 && s->type_map[key])
            return sm__why(why, why_len, SM_ERR_SPEC, "duplicate type key %s", kn);

        sm_frame_basic b;
        memset(&b, 0, sizeof(b));
        if (p < end && *p == '(') {
            const char *close = match_paren(p + 1, end);
            if (!close) return sm__why(why, why_len, SM_ERR_SPEC, "type key %s: missing ')'", kn);
            char sub[200];
            const char *sub_stop;
            int rc = parse_one(p + 1, close, &b, NULL, &sub_stop, sub, sizeof(sub));
            if (rc) return sm__why(why, why_len, SM_ERR_SPEC, "type key %s: %s", kn, sub);
            p = close + 1;
        } else {
            const char *q = p;
            while (q < end && *q >= '0' && *q <= '9')
                q++;
            if (!parse_u64(p, q, &b.fixed_len))
                return sm__why(why, why_len, SM_ERR_SPEC,
                               "type key %s: value must be a length or a spec in parentheses", kn);
            b.kind = SM_FRAME_FIXED;
            p = q;
        }

        unsigned idx;
        for (idx = 0; idx < s->type_count; idx++)
            if (basic_same(&s->types[idx], &b)) break;
        if (idx == s->type_count) {
            if (s->type_count == SM_FRAME_TYPES_MAX)
                return sm__why(why, why_len, SM_ERR_SPEC, "type: has more than %d distinct entries",
                               SM_FRAME_TYPES_MAX);
            memcpy(&s->types[s->type_count++], &b, sizeof(b));
        }
        if (key == 256)
            dflt = (int)idx;
        else
            s->type_map[key] = (uint8_t)(idx + 1);

        if (p < end && *p == ';') {
            p++;
            continue;
        }
        if (p < end && *p != ',')
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "type key %s: unexpected '%c' after the value", kn, *p);
        /* The default is no more than every byte not listed: the struct has
         * no separate slot for it, so decoders need not know about it. */
        if (dflt >= 0)
            for (unsigned k = 0; k < 256; k++)
                if (!s->type_map[k]) s->type_map[k] = (uint8_t)(dflt + 1);
        *stop = p;
        return 0;
    }
}

/* One codec with its options, from p to end. top is the whole spec for the
 * top level (type:, max= and oversize= allowed), NULL inside a type: entry. */
static int
parse_one(const char *p, const char *end, sm_frame_basic *b, sm_frame_spec *top, const char **stop,
          char *why, size_t why_len)
{
    const char *name = p;
    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
        p++;
    size_t name_len = (size_t)(p - name);
    if (name_len == 0 && p == end) return sm__why(why, why_len, SM_ERR_SPEC, "empty spec");
    if (p < end && *p != ':' && *p != ',') {
        while (p < end && *p != ':' && *p != ',')
            p++;
        name_len = (size_t)(p - name);
    }
    const codec *c = NULL;
    for (size_t i = 0; i < NCODECS; i++)
        if (strlen(codecs[i].name) == name_len && memcmp(codecs[i].name, name, name_len) == 0)
            c = &codecs[i];
    if (!c) return sm__why(why, why_len, SM_ERR_SPEC, "unknown codec '%.*s'", (int)name_len, name);

    b->kind = c->kind;
    b->len_width = c->width;
    b->len_little = c->little;
    if (c->delim) {
        memcpy(b->delim, c->delim, c->delim_len);
        b->delim_len = c->delim_len;
    }

    bool has_arg = p < end && *p == ':';
    if (has_arg) p++;
    if (c->arg == ARG_NONE && has_arg)
        return sm__why(why, why_len, SM_ERR_SPEC, "'%s' takes no ':' argument", c->name);

    const char *arg = p;
    if (c->arg == ARG_NUM || c->arg == ARG_STR) {
        while (p < end && *p != ',')
            p++;
    }
    switch (c->arg) {
    case ARG_NUM:
        if (c->kind == SM_FRAME_FIXED) {
            /* fixed:0 only makes sense after a type byte. */
            if (!has_arg || !parse_u64(arg, p, &b->fixed_len) || (b->fixed_len == 0 && top))
                return sm__why(why, why_len, SM_ERR_SPEC, "fixed:N needs N >= 1 (got '%.*s')",
                               (int)(p - arg), arg);
        } else {
            uint64_t n = 0;
            if (!has_arg || !parse_u64(arg, p, &n) || n < 1 || n > 20)
                return sm__why(why, why_len, SM_ERR_SPEC, "ascii:N needs 1 <= N <= 20 (got '%.*s')",
                               (int)(p - arg), arg);
            b->ascii_digits = (uint8_t)n;
        }
        break;
    case ARG_STR: {
        if (!has_arg) return sm__why(why, why_len, SM_ERR_SPEC, "delim:STR needs a delimiter");
        int rc = parse_delim(b, arg, p, why, why_len);
        if (rc) return rc;
        break;
    }
    case ARG_MAP:
        if (!top) return sm__why(why, why_len, SM_ERR_SPEC, "type: cannot be nested inside type:");
        if (!has_arg)
            return sm__why(why, why_len, SM_ERR_SPEC, "type: needs entries K=V (e.g. type:A=4)");
        {
            int rc = parse_map(top, p, end, &p, why, why_len);
            if (rc) return rc;
        }
        break;
    case ARG_NONE:
        break;
    }

    unsigned seen = 0;
    while (p < end) {
        if (*p != ',')
            return sm__why(why, why_len, SM_ERR_SPEC, "unexpected '%c' after '%s'", *p, c->name);
        const char *key = ++p;
        while (p < end && *p != '=' && *p != ',')
            p++;
        int key_len = (int)(p - key);
        if (p == end || *p != '=')
            return sm__why(why, why_len, SM_ERR_SPEC, "option '%.*s' needs =VALUE", key_len, key);
        const char *val = ++p;
        while (p < end && *p != ',')
            p++;
        int val_len = (int)(p - val);
        unsigned opt;
        if (key_len == 3 && memcmp(key, "max", 3) == 0)
            opt = OPT_MAX;
        else if (key_len == 8 && memcmp(key, "oversize", 8) == 0)
            opt = OPT_OVERSIZE;
        else if (key_len == 6 && memcmp(key, "adjust", 6) == 0)
            opt = OPT_ADJUST;
        else if (key_len == 6 && memcmp(key, "offset", 6) == 0)
            opt = OPT_OFFSET;
        else if (key_len == 5 && memcmp(key, "depth", 5) == 0)
            opt = OPT_DEPTH;
        else
            return sm__why(why, why_len, SM_ERR_SPEC, "unknown option '%.*s'", key_len, key);
        if (seen & opt)
            return sm__why(why, why_len, SM_ERR_SPEC, "duplicate option '%.*s'", key_len, key);
        seen |= opt;
        if (opt == OPT_ADJUST && c->kind != SM_FRAME_LENGTH)
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "option '%.*s' applies only to the len* codecs", key_len, key);
        if (opt == OPT_DEPTH && c->kind != SM_FRAME_RESP)
            return sm__why(why, why_len, SM_ERR_SPEC, "option 'depth' applies only to resp");
        if (opt == OPT_OFFSET && !sm__frame_has_offset(c->kind))
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "option 'offset' applies only to codecs with a length header (len*, "
                           "varint, ascii:N, netstring)");
        if ((opt == OPT_MAX || opt == OPT_OVERSIZE) && !top)
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "option '%.*s' belongs to the whole type: spec, after the entries",
                           key_len, key);
        switch (opt) {
        case OPT_MAX:
            if (!parse_size(val, p, &top->max))
                return sm__why(why, why_len, SM_ERR_SPEC,
                               "max=%.*s: expected a size such as 4096, 64K, 16M", val_len, val);
            if (top->max == 0)
                return sm__why(why, why_len, SM_ERR_SPEC, "max=0 is not allowed (max >= 1)");
            break;
        case OPT_OVERSIZE:
            if (val_len == 5 && memcmp(val, "close", 5) == 0)
                top->oversize = SM_OVERSIZE_CLOSE;
            else if (val_len == 4 && memcmp(val, "skip", 4) == 0)
                top->oversize = SM_OVERSIZE_SKIP;
            else
                return sm__why(why, why_len, SM_ERR_SPEC, "oversize=%.*s: expected close or skip",
                               val_len, val);
            break;
        case OPT_ADJUST:
            if (!parse_i64(val, p, &b->len_adjust))
                return sm__why(why, why_len, SM_ERR_SPEC,
                               "adjust=%.*s: expected a signed 64-bit integer", val_len, val);
            break;
        case OPT_DEPTH: {
            uint64_t v;
            if (!parse_u64(val, p, &v) || v < 1 || v > SM_FRAME_RESP_DEPTH_MAX)
                return sm__why(why, why_len, SM_ERR_SPEC, "depth=%.*s: expected 1 to %d", val_len,
                               val, SM_FRAME_RESP_DEPTH_MAX);
            b->resp_depth = (uint8_t)v;
            break;
        }
        case OPT_OFFSET: {
            uint64_t v;
            if (!parse_u64(val, p, &v) || v > SM_FRAME_OFFSET_MAX)
                return sm__why(why, why_len, SM_ERR_SPEC, "offset=%.*s: expected 0 to %d", val_len,
                               val, SM_FRAME_OFFSET_MAX);
            b->len_offset = (uint8_t)v;
            break;
        }
        }
    }
    *stop = p;
    return 0;
}

static void
renumber_types(sm_frame_spec *s)
{
    uint8_t remap[SM_FRAME_TYPES_MAX] = {0};
    sm_frame_basic types[SM_FRAME_TYPES_MAX];
    uint8_t n = 0;
    memset(types, 0, sizeof(types));
    for (unsigned k = 0; k < 256; k++) {
        uint8_t old = s->type_map[k];
        if (!old) continue;
        if (!remap[old - 1]) {
            memcpy(&types[n], &s->types[old - 1], sizeof(types[n]));
            remap[old - 1] = ++n;
        }
        s->type_map[k] = remap[old - 1];
    }
    memcpy(s->types, types, sizeof(types));
    s->type_count = n;
}

int
sm_frame_spec_parse(sm_frame_spec *spec, const char *str, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!spec || !str) return sm__why(why, why_len, SM_ERR_SPEC, "no spec");
    sm_frame_spec s;
    memset(&s, 0, sizeof(s));
    const char *stop;
    int rc = parse_one(str, str + strlen(str), &s.basic, &s, &stop, why, why_len);
    if (rc) return rc;
    if (s.kind == SM_FRAME_TYPE) renumber_types(&s);
    rc = sm_frame_spec_check(&s, why, why_len);
    if (rc) return rc;
    memcpy(spec, &s, sizeof(s));
    return 0;
}

static int
check_basic(const sm_frame_basic *b, uint64_t max, bool nested, char *why, size_t why_len)
{
    if (b->len_offset > SM_FRAME_OFFSET_MAX)
        return sm__why(why, why_len, SM_ERR_SPEC, "offset=%u exceeds %d", b->len_offset,
                       SM_FRAME_OFFSET_MAX);
    if (b->resp_depth && b->kind != SM_FRAME_RESP)
        return sm__why(why, why_len, SM_ERR_SPEC, "resp_depth is set on a codec other than resp");
    if (b->len_offset && !sm__frame_has_offset(b->kind))
        return sm__why(why, why_len, SM_ERR_SPEC,
                       "len_offset is set on a codec without a length header");
    switch (b->kind) {
    case SM_FRAME_FIXED:
        if (b->fixed_len == 0 && !nested)
            return sm__why(why, why_len, SM_ERR_SPEC, "fixed:N needs N >= 1");
        if (b->fixed_len > max)
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "fixed length %" PRIu64 " exceeds max=%" PRIu64, b->fixed_len, max);
        return 0;
    case SM_FRAME_DELIM:
        if (b->delim_len < 1 || b->delim_len > SM_FRAME_DELIM_MAX)
            return sm__why(why, why_len, SM_ERR_SPEC, "delimiter length %u is not 1 to %d",
                           b->delim_len, SM_FRAME_DELIM_MAX);
        return 0;
    case SM_FRAME_LENGTH:
        if (b->len_width != 1 && b->len_width != 2 && b->len_width != 4 && b->len_width != 8)
            return sm__why(why, why_len, SM_ERR_SPEC, "length width %u is not 1, 2, 4 or 8",
                           b->len_width);
        return 0;
    case SM_FRAME_ASCII:
        if (b->ascii_digits < 1 || b->ascii_digits > 20)
            return sm__why(why, why_len, SM_ERR_SPEC, "ascii:N needs 1 <= N <= 20 (got %u)",
                           b->ascii_digits);
        return 0;
    case SM_FRAME_NETSTRING:
    case SM_FRAME_VARINT:
    case SM_FRAME_EOF:
        return 0;
    case SM_FRAME_RESP:
        if (nested)
            return sm__why(why, why_len, SM_ERR_SPEC,
                           "resp cannot be a type: entry (RESP has its own type byte)");
        if (b->resp_depth > SM_FRAME_RESP_DEPTH_MAX)
            return sm__why(why, why_len, SM_ERR_SPEC, "depth=%u exceeds %d", b->resp_depth,
                           SM_FRAME_RESP_DEPTH_MAX);
        return 0;
    case SM_FRAME_TYPE:
        if (nested)
            return sm__why(why, why_len, SM_ERR_SPEC, "type: cannot be nested inside type:");
        return 0;
    }
    return sm__why(why, why_len, SM_ERR_SPEC, "unknown codec kind %d", (int)b->kind);
}

int
sm_frame_spec_check(const sm_frame_spec *spec, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!spec) return sm__why(why, why_len, SM_ERR_SPEC, "no spec");
    uint64_t max = sm_frame_max(spec);
    if (spec->oversize != SM_OVERSIZE_CLOSE && spec->oversize != SM_OVERSIZE_SKIP)
        return sm__why(why, why_len, SM_ERR_SPEC, "oversize policy %d is not close or skip",
                       (int)spec->oversize);
    if (spec->kind == SM_FRAME_RESP && spec->oversize == SM_OVERSIZE_SKIP)
        return sm__why(why, why_len, SM_ERR_SPEC,
                       "resp does not take oversize=skip: a message's end is found only by "
                       "parsing all of it, so it cannot be discarded unbuffered");
    int rc = check_basic(&spec->basic, max, false, why, why_len);
    if (rc || spec->kind != SM_FRAME_TYPE) return rc;

    if (spec->type_count < 1 || spec->type_count > SM_FRAME_TYPES_MAX)
        return sm__why(why, why_len, SM_ERR_SPEC, "type_count %u is not 1 to %d", spec->type_count,
                       SM_FRAME_TYPES_MAX);
    bool any = false;
    for (unsigned k = 0; k < 256; k++) {
        if (spec->type_map[k] > spec->type_count)
            return sm__why(why, why_len, SM_ERR_SPEC, "type_map[0x%02x] = %u is past type_count %u",
                           k, spec->type_map[k], spec->type_count);
        any |= spec->type_map[k] != 0;
    }
    if (!any) return sm__why(why, why_len, SM_ERR_SPEC, "type: maps no type byte");
    for (unsigned i = 0; i < spec->type_count; i++) {
        char sub[160];
        rc = check_basic(&spec->types[i], max, true, sub, sizeof(sub));
        if (rc) return sm__why(why, why_len, SM_ERR_SPEC, "types[%u]: %s", i, sub);
    }
    return 0;
}

uint64_t
sm_frame_max(const sm_frame_spec *spec)
{
    return spec->max ? spec->max : SM_FRAME_DEFAULT_MAX;
}
