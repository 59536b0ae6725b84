/* credentials.h - the credentials file: access keys, secrets and accounts.
 *
 * Format (SPEC.md section 2): one key per line,
 *     ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT]
 * separated by spaces or tabs; blank lines and lines starting with '#'
 * (after optional whitespace) are ignored. ACCOUNT defaults to "default".
 * Account names are 1-64 characters of [A-Za-z0-9_.-]. Duplicate access key
 * ids are an error. The table is immutable after loading.
 */
#ifndef MERIDIAN_CREDENTIALS_H
#define MERIDIAN_CREDENTIALS_H

#include <stddef.h>

#include "util/err.h"

typedef struct cred_entry {
    char *access_key;
    char *secret;
    char *account;
} cred_entry;

typedef struct cred_table {
    size_t n;
    cred_entry *entries; /* sorted by access_key */
} cred_table;

/* Loads path into *out. Returns 0, or -1 with e set to a message naming the
 * file and line (unreadable file, malformed line, duplicate key, no keys). */
int cred_load(const char *path, cred_table *out, err *e);
/* Parses file contents already in memory (same rules; `origin` names it in errors). */
int cred_parse(const char *text, size_t len, const char *origin, cred_table *out, err *e);
void cred_free(cred_table *t);
/* Finds an access key; NULL if unknown. */
const cred_entry *cred_find(const cred_table *t, const char *access_key, size_t len);

#endif
