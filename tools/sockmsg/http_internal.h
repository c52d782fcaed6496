/* sockmsg tool — what the HTTP files (http_response.c, http_chunked.c,
 * http_url.c) share: the character classes of RFC 9110 and RFC 3986 they
 * test bytes against. Private; the interface is http.h. */
#ifndef SOCKMSG_TOOL_HTTP_INTERNAL_H
#define SOCKMSG_TOOL_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline bool
http__is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* VCHAR, obs-text, SP, HTAB: what a field value or reason phrase may hold. */
static inline bool
http__is_field_char(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || (ch > 0x20 && ch != 0x7f);
}

static inline bool
http__is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

static inline bool
http__is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static inline int
http__hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static inline unsigned char
http__ascii_lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

static inline bool
http__span_ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m) return false;
    for (size_t i = 0; i < n; i++)
        if (http__ascii_lower((unsigned char)s[i]) != http__ascii_lower((unsigned char)lit[i]))
            return false;
    return true;
}

#endif
