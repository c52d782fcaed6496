/* sockmsg bench — the payload bytes: sequence fields and the template. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The delimiter bytes a payload must avoid, if the framing has one. Any
 * payload without a single byte of the delimiter can never contain it, nor
 * end in a prefix of it that would make the delimiter match early. */
static const sm_frame_basic *
delimited(const bench_cfg *cfg)
{
    const sm_frame_spec *spec = cfg->spec;
    if (spec->kind == SM_FRAME_DELIM) return &spec->basic;
    if (spec->kind == SM_FRAME_TYPE && cfg->type >= 0) {
        const sm_frame_basic *b = &spec->types[spec->type_map[cfg->type] - 1];
        if (b->kind == SM_FRAME_DELIM) return b;
    }
    return NULL;
}

int
bench_payload_init(bench_cfg *cfg)
{
    bool banned[256] = {false};
    const sm_frame_basic *d = delimited(cfg);
    if (d)
        for (unsigned i = 0; i < d->delim_len; i++)
            banned[d->delim[i]] = true;
    uint8_t allowed[256];
    unsigned nallowed = 0;
    for (unsigned b = 0; b < 256; b++)
        if (!banned[b]) allowed[nallowed++] = (uint8_t)b;

    /* A delimiter has at most 16 bytes, so at least 240 remain: plenty for
     * 16 digits. Printable ones first, for whoever looks at a capture. */
    cfg->hex_seq = d != NULL;
    if (cfg->hex_seq) {
        static const char pref[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        unsigned n = 0;
        for (const char *p = pref; *p && n < 16; p++)
            if (!banned[(uint8_t)*p]) cfg->digits[n++] = (uint8_t)*p;
        for (unsigned i = 0; i < nallowed && n < 16; i++)
            if (!memchr(cfg->digits, allowed[i], n)) cfg->digits[n++] = allowed[i];
    }
    size_t full = cfg->hex_seq ? 16 : 8;
    cfg->seq_w = cfg->size < full ? cfg->size : full;

    size_t len = cfg->size + BENCH_PATTERN_SPAN;
    cfg->tmpl = malloc(len);
    if (!cfg->tmpl) return -ENOMEM;
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64*: fixed, so runs compare */
    for (size_t i = 0; i < len; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        cfg->tmpl[i] = allowed[((x * 0x2545f4914f6cdd1du) >> 32) % nallowed];
    }
    size_t f = cfg->frame_len, head = cfg->hdr.head_len;
    if (f > BENCH_COPY_MAX) return 0;
    cfg->protos = malloc(BENCH_PATTERN_SPAN * f);
    if (!cfg->protos) return -ENOMEM;
    for (size_t t = 0; t < BENCH_PATTERN_SPAN; t++) {
        uint8_t *p = cfg->protos + t * f;
        size_t o = (t * 7) & (BENCH_PATTERN_SPAN - 1);
        memcpy(p, cfg->hdr.head, head);
        memset(p + head, 0, cfg->seq_w);
        memcpy(p + head + cfg->seq_w, cfg->tmpl + o, cfg->size - cfg->seq_w);
        memcpy(p + head + cfg->size, cfg->hdr.tail, cfg->hdr.tail_len);
    }
    return 0;
}

void
bench_payload_free(bench_cfg *cfg)
{
    free(cfg->tmpl);
    free(cfg->protos);
    cfg->tmpl = NULL;
    cfg->protos = NULL;
}

bool
bench_seq_read(const bench_cfg *cfg, const uint8_t *src, uint64_t *s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < cfg->seq_w; i++) {
        if (cfg->hex_seq) {
            const uint8_t *p = memchr(cfg->digits, src[i], 16);
            if (!p) return false;
            v |= (uint64_t)(p - cfg->digits) << (4 * i);
        } else {
            v |= (uint64_t)src[i] << (8 * i);
        }
    }
    *s = v;
    return true;
}
