/* fuzz_sigv4.c - SigV4 verification (auth/sigv4.c) and the credentials
 * file parser (auth/credentials.c).
 *
 * The first input byte chooses the mode; the rest is a request in a small
 * text form:
 *     METHOD \n PATH \n QUERY \n (Name: value \n)* \n BODY
 *   0: sigv4_verify of the request as given (any Authorization header it
 *      carries) against a fixed credentials table, at a fixed time;
 *   1: the request's headers (those valid in HTTP: token names, values
 *      without CR/LF/NUL; host, x-amz-date and authorization replaced) are
 *      signed with sigv4_sign by a known key, then sigv4_verify must accept
 *      the signed request and identify the key; with one byte of the body
 *      changed it must refuse it;
 *   2: cred_parse of the rest as a credentials file; every parsed key is
 *      found again by cred_find.
 */
#include <ctype.h>
#include <stdbool.h>
#include <strings.h>

#include "auth/sigv4.h"
#include "fuzz_common.h"

#define MAX_HEADERS 32
#define AKID        "AKIAFUZZ"
#define SECRET      "fuzz/secret+KEY0123456789"
#define AMZ_DATE    "20261121T000000Z"
#define NOW         ((time_t)1795219200) /* 2026-11-21T00:00:00Z */

static const char creds_text[] = "AKIAFUZZ fuzz/secret+KEY0123456789 acct1\n"
                                 "AKIAOTHER other-secret acct2\n"
                                 "AKIDEXAMPLE wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";
static cred_table creds;
static sigv4_verifier *verifier;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    err e;
    err_clear(&e);
    if (cred_parse(creds_text, strlen(creds_text), "fuzz", &creds, &e) != 0) abort();
    verifier = sigv4_verifier_new(&creds, "us-east-1", "dynamodb");
    if (!verifier) abort();
    return 0;
}

typedef struct parsed {
    char *method, *path, *query;
    sigv4_header h[MAX_HEADERS + 3];
    size_t n;
    const uint8_t *body;
    size_t body_len;
} parsed;

/* Splits the next '\n'-terminated line off [*p, end) (NUL-terminating it in
 * place); NULL when no line is left. */
static char *next_line(char **p, char *end)
{
    if (*p >= end) return NULL;
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) nl = end;
    *nl = '\0';
    *p = nl < end ? nl + 1 : end;
    return s;
}

static void parse_request(char *text, size_t len, parsed *r)
{
    char *p = text, *end = text + len;
    memset(r, 0, sizeof(*r));
    char *m = next_line(&p, end), *path = next_line(&p, end), *q = next_line(&p, end);
    r->method = m ? m : "POST";
    r->path = path ? path : "/";
    r->query = q ? q : "";
    char *line;
    while ((line = next_line(&p, end)) && line[0] != '\0') {
        if (r->n >= MAX_HEADERS) continue;
        char *colon = strchr(line, ':');
        size_t nl = colon ? (size_t)(colon - line) : strlen(line);
        const char *v = colon ? colon + 1 : "";
        r->h[r->n++] = (sigv4_header){line, nl, v, strlen(v)};
    }
    r->body = (const uint8_t *)p;
    r->body_len = (size_t)(end - p);
}

static sigv4_request as_request(const parsed *r)
{
    return (sigv4_request){r->method, r->path, r->query, r->h, r->n, r->body, r->body_len};
}

static bool ieq(const char *a, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(a, lit, n) == 0;
}

static void sign_and_verify(parsed *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        sigv4_header h = r->h[i];
        if (!fuzz_http_token(h.name, h.name_len) || memchr(h.value, '\r', h.value_len)) continue;
        if (ieq(h.name, h.name_len, "host") || ieq(h.name, h.name_len, "x-amz-date") ||
            ieq(h.name, h.name_len, "authorization"))
            continue;
        r->h[k++] = h;
    }
    r->h[k++] = (sigv4_header){"host", 4, "127.0.0.1:8000", 14};
    r->h[k++] = (sigv4_header){"x-amz-date", 10, AMZ_DATE, strlen(AMZ_DATE)};
    r->n = k;
    static char auth[8192];
    sigv4_request req = as_request(r);
    if (sigv4_sign(AKID, SECRET, "us-east-1", "dynamodb", AMZ_DATE, &req, auth, sizeof(auth)) != 0)
        return; /* too many or too long headers for the buffer */
    r->h[r->n++] = (sigv4_header){"Authorization", 13, auth, strlen(auth)};
    req = as_request(r);
    const cred_entry *who = NULL;
    err e;
    err_clear(&e);
    int rc = sigv4_verify(verifier, &req, NOW, &who, &e);
    if (rc != 0) fprintf(stderr, "verify refused a signed request: %s\nauth: %s\n", e.msg, auth);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(who && strcmp(who->access_key, AKID) == 0);
    if (r->body_len > 0) {
        uint8_t *copy = malloc(r->body_len);
        if (!copy) abort();
        memcpy(copy, r->body, r->body_len);
        copy[r->body_len / 2] ^= 0x01;
        req.body = copy;
        err_clear(&e);
        FUZZ_CHECK(sigv4_verify(verifier, &req, NOW, &who, &e) != 0);
        FUZZ_CHECK(e.code == ERR_INVALID_SIGNATURE);
        free(copy);
    }
}

static void fuzz_creds(const char *text, size_t len)
{
    cred_table t;
    err e;
    err_clear(&e);
    if (cred_parse(text, len, "fuzz", &t, &e) != 0) {
        FUZZ_CHECK(e.code != ERR_NONE && e.msg[0] != '\0');
        return;
    }
    FUZZ_CHECK(t.n > 0);
    for (size_t i = 0; i < t.n; i++) {
        const cred_entry *c =
            cred_find(&t, t.entries[i].access_key, strlen(t.entries[i].access_key));
        FUZZ_CHECK(c == &t.entries[i]);
        FUZZ_CHECK(c->secret && c->account);
    }
    cred_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *text = fuzz_cstr(data + 1, size - 1);
    size_t len = size - 1;
    parsed r;
    switch (data[0] % 3) {
    case 0: {
        parse_request(text, len, &r);
        sigv4_request req = as_request(&r);
        const cred_entry *who = NULL;
        err e;
        err_clear(&e);
        if (sigv4_verify(verifier, &req, NOW, &who, &e) == 0)
            FUZZ_CHECK(who != NULL);
        else
            FUZZ_CHECK(e.code != ERR_NONE);
        break;
    }
    case 1:
        parse_request(text, len, &r);
        sign_and_verify(&r);
        break;
    default:
        fuzz_creds(text, len);
        break;
    }
    free(text);
    return 0;
}
