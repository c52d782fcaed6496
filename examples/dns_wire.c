/* The DNS codec of dns_wire.h. */
#include "dns_wire.h"

#include <stdio.h>
#include <string.h>

enum { HDR = 12, QR = 0x8000, TC = 0x0200, RD = 0x0100 };

static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int
dns_query_encode(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') n--; /* "example.test." is the same name */
    /* The wire name is one length byte per label plus the root's zero byte. */
    if (n == 0 || n + 2 > DNS_MAX_NAME || HDR + n + 2 + 4 > cap) return -1;
    memset(out, 0, HDR);
    put16(out, id);
    put16(out + 2, RD);
    put16(out + 4, 1); /* QDCOUNT */
    uint8_t *p = out + HDR;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && name[i] != '.') continue;
        size_t label = i - start;
        if (label == 0 || label > 63) return -1;
        *p++ = (uint8_t)label;
        memcpy(p, name + start, label);
        p += label;
        start = i + 1;
    }
    *p++ = 0;
    put16(p, qtype);
    put16(p + 2, DNS_CLASS_IN);
    p += 4;
    return (int)(p - out);
}

/* Step over a name at *off: labels, ending at the root or at a compression
 * pointer (which we need not follow to skip the name). */
static int
skip_name(const uint8_t *msg, size_t len, size_t *off)
{
    size_t o = *off;
    for (unsigned labels = 0; labels < 128; labels++) {
        if (o >= len) return -1;
        uint8_t b = msg[o];
        if ((b & 0xC0) == 0xC0) {
            if (o + 2 > len) return -1;
            *off = o + 2;
            return 0;
        }
        if (b & 0xC0) return -1; /* 0x40 and 0x80: reserved label types */
        o += 1u + b;
        if (b == 0) {
            *off = o;
            return 0;
        }
    }
    return -1;
}

/* The question's name as text. A question comes first, so a compression
 * pointer there could only point backwards into the header: refused. */
static int
read_qname(const uint8_t *msg, size_t len, size_t *off, char *out)
{
    size_t o = *off, w = 0;
    for (;;) {
        if (o >= len) return -1;
        uint8_t b = msg[o++];
        if (b == 0) break;
        if (b > 63 || o + b > len || w + b + 1 > DNS_MAX_NAME) return -1;
        if (w) out[w++] = '.';
        memcpy(out + w, msg + o, b);
        w += b;
        o += b;
    }
    out[w] = '\0';
    *off = o;
    return 0;
}

static int
fail(const char **why, const char *what)
{
    *why = what;
    return -1;
}

int
dns_reply_parse(const uint8_t *msg, size_t len, dns_reply *r, const char **why)
{
    memset(r, 0, sizeof *r);
    if (len < HDR) return fail(why, "shorter than a DNS header");
    uint16_t flags = get16(msg + 2);
    if (!(flags & QR)) return fail(why, "a query, not a reply");
    r->id = get16(msg);
    r->rcode = flags & 0xF;
    r->truncated = (flags & TC) != 0;
    unsigned qd = get16(msg + 4), an = get16(msg + 6);
    if (qd != 1) return fail(why, "not exactly one question");
    size_t off = HDR;
    if (read_qname(msg, len, &off, r->qname) != 0) return fail(why, "bad question name");
    if (off + 4 > len) return fail(why, "question past the end");
    r->qtype = get16(msg + off);
    off += 4;
    for (unsigned i = 0; i < an; i++) {
        if (skip_name(msg, len, &off) != 0) return fail(why, "bad answer name");
        if (off + 10 > len) return fail(why, "answer record past the end");
        uint16_t type = get16(msg + off), cls = get16(msg + off + 2);
        uint32_t ttl = (uint32_t)get16(msg + off + 4) << 16 | get16(msg + off + 6);
        size_t rdlen = get16(msg + off + 8);
        off += 10;
        if (off + rdlen > len) return fail(why, "answer data past the end");
        r->answers++;
        if (cls == DNS_CLASS_IN && (type == DNS_A || type == DNS_AAAA)) {
            if (rdlen != (type == DNS_A ? 4u : 16u)) return fail(why, "address of the wrong size");
            if (r->naddrs == DNS_MAX_ADDRS) {
                r->more_addrs++;
            } else {
                dns_addr *a = &r->addrs[r->naddrs++];
                a->type = type;
                a->ttl = ttl;
                memcpy(a->addr, msg + off, rdlen);
            }
        }
        off += rdlen;
    }
    /* Authority and additional records may follow: this client needs none. */
    return 0;
}

const char *
dns_rcode_name(int rcode, char *buf, size_t len)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    if (rcode >= 0 && rcode < (int)(sizeof names / sizeof names[0])) return names[rcode];
    snprintf(buf, len, "RCODE%d", rcode);
    return buf;
}
