/* credentials.c - loading and parsing the credentials file (see credentials.h).
 *
 * Owns the file format rules: one "ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT]"
 * per line, '#' comments, blank lines, CRLF or LF line endings, an optional
 * UTF-8 byte order mark, duplicate detection and the sorted lookup table.
 *
 * Field rules beyond the header's: an access key id is 1-128 printable ASCII
 * characters without '/', ',', ';' or '=' (it travels inside the SigV4
 * Credential parameter); a secret is 1-256 printable ASCII characters.
 *
 * Error messages name the origin and the line ("creds.txt:3: ...") and may
 * quote an access key id, but never a secret or the text of a line that could
 * contain one. Secrets are wiped from memory when the table is freed and the
 * raw file contents are wiped once parsed. Error codes: ERR_VALIDATION for
 * malformed contents, ERR_INTERNAL for I/O and allocation failures.
 */
#include "auth/credentials.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define ACCESS_KEY_MAX  128
#define SECRET_MAX      256
#define ACCOUNT_MAX     64
#define CRED_FILE_MAX   (16u * 1024u * 1024u)
#define DEFAULT_ACCOUNT "default"
#define FORMAT_REMINDER "expected ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT]"

/* An entry plus the line it came from, used while building the table. */
typedef struct pending {
    cred_entry entry;
    size_t line;
} pending;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool valid_access_key(const char *s, size_t n)
{
    if (n == 0 || n > ACCESS_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '/' || c == ',' || c == ';' || c == '=') return false;
    }
    return true;
}

static bool valid_secret(const char *s, size_t n)
{
    if (n == 0 || n > SECRET_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

static bool valid_account(const char *s, size_t n)
{
    if (n == 0 || n > ACCOUNT_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void entry_free(cred_entry *c)
{
    if (c->secret) {
        OPENSSL_cleanse(c->secret, strlen(c->secret));
        free(c->secret);
    }
    free(c->access_key);
    free(c->account);
    c->access_key = c->secret = c->account = NULL;
}

static int pending_cmp(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    int r = strcmp(x->entry.access_key, y->entry.access_key);
    if (r) return r;
    return (x->line > y->line) - (x->line < y->line);
}

static void pending_free(pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        entry_free(&p[i].entry);
    free(p);
}

/* Parses one line (without its terminator) into *out. Returns 1 for an entry,
 * 0 for a blank or comment line, -1 on error. */
static int parse_line(const char *s, size_t n, const char *origin, size_t lineno, cred_entry *out,
                      err *e)
{
    const char *field[4];
    size_t flen[4];
    size_t nf = 0;
    size_t i = 0;

    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i] == '#') return 0;

    while (i < n) {
        size_t start = i;
        while (i < n && !is_blank(s[i]))
            i++;
        if (nf == 4) break; /* counted below as "too many" */
        field[nf] = s + start;
        flen[nf] = i - start;
        nf++;
        while (i < n && is_blank(s[i]))
            i++;
    }
    if (nf < 2)
        return err_set(e, ERR_VALIDATION, "%s:%zu: missing secret access key (" FORMAT_REMINDER ")",
                       origin, lineno);
    if (nf > 3)
        return err_set(e, ERR_VALIDATION, "%s:%zu: too many fields (" FORMAT_REMINDER ")", origin,
                       lineno);
    if (!valid_access_key(field[0], flen[0]))
        return err_set(e, ERR_VALIDATION,
                       "%s:%zu: invalid access key id (1-%d printable ASCII characters, none of "
                       "'/', ',', ';', '=')",
                       origin, lineno, ACCESS_KEY_MAX);
    if (!valid_secret(field[1], flen[1]))
        return err_set(e, ERR_VALIDATION,
                       "%s:%zu: invalid secret access key (1-%d printable ASCII characters)",
                       origin, lineno, SECRET_MAX);
    if (nf == 3 && !valid_account(field[2], flen[2]))
        return err_set(e, ERR_VALIDATION,
                       "%s:%zu: invalid account name (1-%d characters of [A-Za-z0-9_.-])", origin,
                       lineno, ACCOUNT_MAX);

    out->access_key = dup_n(field[0], flen[0]);
    out->secret = dup_n(field[1], flen[1]);
    out->account =
        nf == 3 ? dup_n(field[2], flen[2]) : dup_n(DEFAULT_ACCOUNT, strlen(DEFAULT_ACCOUNT));
    if (!out->access_key || !out->secret || !out->account) {
        entry_free(out);
        return err_set(e, ERR_INTERNAL, "%s:%zu: out of memory", origin, lineno);
    }
    return 1;
}

int cred_parse(const char *text, size_t len, const char *origin, cred_table *out, err *e)
{
    out->n = 0;
    out->entries = NULL;
    if (!origin) origin = "credentials";
    if (!text && len) return err_set(e, ERR_INTERNAL, "%s: no contents", origin);
    if (len && memchr(text, '\0', len)) {
        /* Name the line holding the NUL so the user can find it. */
        const char *z = memchr(text, '\0', len);
        size_t line = 1;
        for (const char *p = text; p < z; p++)
            line += *p == '\n';
        return err_set(e, ERR_VALIDATION, "%s:%zu: contains a NUL byte", origin, line);
    }

    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 BOM */

    pending *items = NULL;
    size_t n = 0, cap = 0;
    size_t lineno = 0;
    while (pos < len) {
        lineno++;
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        if (llen && line[llen - 1] == '\r') llen--;

        cred_entry ent = {0};
        int r = parse_line(line, llen, origin, lineno, &ent, e);
        if (r < 0) {
            pending_free(items, n);
            return -1;
        }
        if (r == 0) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            pending *p = realloc(items, ncap * sizeof(*p));
            if (!p) {
                entry_free(&ent);
                pending_free(items, n);
                return err_set(e, ERR_INTERNAL, "%s:%zu: out of memory", origin, lineno);
            }
            items = p;
            cap = ncap;
        }
        items[n].entry = ent;
        items[n].line = lineno;
        n++;
    }
    if (n == 0) {
        free(items);
        return err_set(e, ERR_VALIDATION, "%s: no access keys defined (" FORMAT_REMINDER ")",
                       origin);
    }

    qsort(items, n, sizeof(*items), pending_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(items[i - 1].entry.access_key, items[i].entry.access_key) == 0) {
            err_set(e, ERR_VALIDATION,
                    "%s:%zu: duplicate access key id '%s' (first defined on line %zu)", origin,
                    items[i].line, items[i].entry.access_key, items[i - 1].line);
            pending_free(items, n);
            return -1;
        }
    }

    cred_entry *entries = malloc(n * sizeof(*entries));
    if (!entries) {
        pending_free(items, n);
        return err_set(e, ERR_INTERNAL, "%s: out of memory", origin);
    }
    for (size_t i = 0; i < n; i++)
        entries[i] = items[i].entry;
    free(items);
    out->n = n;
    out->entries = entries;
    return 0;
}

int cred_load(const char *path, cred_table *out, err *e)
{
    out->n = 0;
    out->entries = NULL;
    if (!path) return err_set(e, ERR_INTERNAL, "credentials file: no path given");

    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_INTERNAL, "%s: cannot open credentials file: %s", path,
                       strerror(errno));

    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    for (;;) {
        if (len == cap) {
            if (cap >= CRED_FILE_MAX) {
                if (fgetc(f) == EOF && !ferror(f)) break; /* exactly the maximum */
                err_set(e, ERR_VALIDATION, "%s: credentials file is larger than %u bytes", path,
                        CRED_FILE_MAX);
                goto done;
            }
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > CRED_FILE_MAX) ncap = CRED_FILE_MAX;
            char *p = malloc(ncap);
            if (!p) {
                err_set(e, ERR_INTERNAL, "%s: out of memory reading credentials file", path);
                goto done;
            }
            if (len) memcpy(p, data, len);
            if (data) {
                OPENSSL_cleanse(data, len);
                free(data);
            }
            data = p;
            cap = ncap;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                err_set(e, ERR_INTERNAL, "%s: cannot read credentials file: %s", path,
                        strerror(errno));
                goto done;
            }
            break;
        }
    }
    rc = cred_parse(data, len, path, out, e);
done:
    if (data) {
        OPENSSL_cleanse(data, cap);
        free(data);
    }
    fclose(f);
    return rc;
}

void cred_free(cred_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        entry_free(&t->entries[i]);
    free(t->entries);
    t->entries = NULL;
    t->n = 0;
}

const cred_entry *cred_find(const cred_table *t, const char *access_key, size_t len)
{
    if (!t || !access_key || t->n == 0) return NULL;
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = t->entries[mid].access_key;
        size_t klen = strlen(k);
        size_t m = klen < len ? klen : len;
        int r = memcmp(k, access_key, m);
        if (r == 0) r = (klen > len) - (klen < len);
        if (r == 0) return &t->entries[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
