/* arena.h - region allocator for per-request memory.
 *
 * Every request gets one arena; everything parsed or built while serving it
 * (attribute values, expression trees, response fragments) is allocated from
 * it and released at once by arena_free(). Nothing allocated from an arena is
 * freed individually. Allocation failure aborts the process (out of memory is
 * not a condition a request can recover from), so callers never check for NULL.
 */
#ifndef MERIDIAN_ARENA_H
#define MERIDIAN_ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block;

typedef struct arena {
    arena_block *head; /* newest block; older blocks chained behind it */
    size_t total;      /* bytes handed out, for accounting */
} arena;

void arena_init(arena *a);
/* Releases every block. The arena may be reused after arena_init(). */
void arena_free(arena *a);
/* Returns size bytes aligned to max_align_t, never NULL. */
void *arena_alloc(arena *a, size_t size);
/* Like arena_alloc but zero-filled. */
void *arena_calloc(arena *a, size_t n, size_t size);
/* Copies len bytes and appends a NUL (so the result is also a C string). */
char *arena_memdup(arena *a, const void *src, size_t len);
char *arena_strdup(arena *a, const char *s);
/* Grows an array allocated from the arena: returns a new array of new_n elements
 * holding the old contents (old_n elements). The old array is abandoned. */
void *arena_grow(arena *a, void *old, size_t old_n, size_t new_n, size_t elem);
char *arena_sprintf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
