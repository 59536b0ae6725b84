/* fuzz_common.h - small helpers shared by the libFuzzer targets in fuzz/.
 *
 * A target that finds a property violation (not a sanitizer report) calls
 * FUZZ_CHECK, which prints the failed condition and aborts, so libFuzzer
 * saves the input as a crash like any other.
 */
#ifndef MERIDIAN_FUZZ_COMMON_H
#define MERIDIAN_FUZZ_COMMON_H

#include <ctype.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Whether [s, s+n) is an HTTP token (RFC 9110), as a header name must be:
 * what a real client could send, and so what the targets sign. */
static inline bool fuzz_http_token(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && (c == 0 || !strchr("!#$%&'*+-.^_`|~", c))) return false;
    }
    return true;
}

/* A NUL-terminated heap copy of the input (the caller frees it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A fresh private directory /tmp/meridian-<tag>-XXXXXX (or under $TMPDIR)
 * in out, for a target's database; aborts if it cannot be made. */
static inline void fuzz_tmpdir(char *out, size_t cap, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    int n = snprintf(out, cap, "%s/meridian-%s-XXXXXX", tmp, tag);
    if (n < 0 || (size_t)n >= cap || !mkdtemp(out)) abort();
}

static inline int fuzz_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf dir. */
static inline void fuzz_rmtree(const char *dir)
{
    nftw(dir, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
