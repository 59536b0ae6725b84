/* arena.c - region allocator for per-request memory (see arena.h). */
#include "util/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdalign.h>
#include <stdint.h>

#define ARENA_BLOCK_MIN 8192

struct arena_block {
    arena_block *next;
    size_t cap;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

void arena_init(arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *arena_alloc(arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    size_t need = (size + align - 1) & ~(align - 1);
    if (need == 0) need = align;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = ARENA_BLOCK_MIN;
        if (b && b->cap * 2 > cap && b->cap < (1u << 20)) cap = b->cap * 2;
        if (cap < need) cap = need;
        b = malloc(sizeof(*b) + cap);
        if (!b) {
            fprintf(stderr, "meridian: out of memory allocating %zu bytes\n", need);
            abort();
        }
        b->cap = cap;
        b->used = 0;
        /* A large one-off block goes behind the current one so the current
         * block's free space stays usable. */
        if (a->head && need > ARENA_BLOCK_MIN && a->head->cap - a->head->used > 256) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += need;
    a->total += need;
    return p;
}

void *arena_calloc(arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) abort();
    void *p = arena_alloc(a, n * size);
    memset(p, 0, n * size);
    return p;
}

char *arena_memdup(arena *a, const void *src, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (len) memcpy(p, src, len);
    p[len] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    return arena_memdup(a, s, strlen(s));
}

void *arena_grow(arena *a, void *old, size_t old_n, size_t new_n, size_t elem)
{
    if (elem && new_n > SIZE_MAX / elem) abort();
    void *p = arena_alloc(a, new_n * elem);
    if (old && old_n) memcpy(p, old, (old_n < new_n ? old_n : new_n) * elem);
    return p;
}

char *arena_sprintf(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
