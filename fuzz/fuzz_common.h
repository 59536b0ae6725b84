/* fuzz_common.h - small helpers shared by the libFuzzer targets in fuzz/.
 *
 * A target that finds a property violation (not a sanitizer report) calls
 * FUZZ_CHECK, which prints the failed condition and aborts, so libFuzzer
 * saves the input as a crash like any other.
 */
#ifndef MERIDIAN_FUZZ_COMMON_H
#define MERIDIAN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated heap copy of the input (the caller frees it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
