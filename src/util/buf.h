/* buf.h - growable byte buffer (malloc-backed) for encodings and responses.
 *
 * The buffer owns its memory; buf_free() releases it. Growth failure aborts
 * the process, like the arena. buf_detach() hands the bytes to the caller.
 */
#ifndef MERIDIAN_BUF_H
#define MERIDIAN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b); /* len = 0, keeps capacity */
void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
void buf_putc(buf *b, uint8_t c);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_put_u16be(buf *b, uint16_t v);
void buf_put_u32be(buf *b, uint32_t v);
void buf_put_u64be(buf *b, uint64_t v);
/* Unsigned LEB128 varint. */
void buf_put_varint(buf *b, uint64_t v);
/* Returns data (NUL-terminated, may be NULL if nothing was ever appended) and
 * leaves b empty; the caller frees the result with free(). */
uint8_t *buf_detach(buf *b, size_t *len);

/* Reads an unsigned LEB128 varint from [*p, end); advances *p.
 * Returns 0, or -1 on truncation or overflow. */
int varint_read(const uint8_t **p, const uint8_t *end, uint64_t *out);

static inline uint32_t load_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t load_u64be(const uint8_t *p)
{
    return ((uint64_t)load_u32be(p) << 32) | load_u32be(p + 4);
}
static inline void store_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void store_u64be(uint8_t *p, uint64_t v)
{
    store_u32be(p, (uint32_t)(v >> 32));
    store_u32be(p + 4, (uint32_t)v);
}

#endif
