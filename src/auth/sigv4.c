/* sigv4.c - AWS Signature Version 4: request verification and signing (see sigv4.h).
 *
 * Owns the Authorization header parser, the canonical request / string to
 * sign construction, the signing-key derivation and its cache, the clock-skew
 * window and DynamoDB's error texts for each way a signature can be wrong.
 *
 * Checks run in the order DynamoDB applies them (as observed and recorded by
 * dynalite): header present and "AWS4-" -> key=value syntax -> required
 * parameters and X-Amz-Date -> date format -> 15-minute window -> 'Host'
 * signed -> algorithm -> 5-part credential -> scope (region, service,
 * terminator, date) -> access key known -> signature.
 *
 * DynamoDB reports the "incomplete" cases (missing parameters, bad date
 * format, unsupported algorithm, malformed credential) as
 * IncompleteSignatureException; err.h has no such code, so they use
 * SIGV4_ERR_INCOMPLETE (ERR_INVALID_SIGNATURE) with DynamoDB's message text.
 *
 * Canonical request details:
 *   - URI: the path as received, each byte outside the unreserved set
 *     (A-Za-z0-9-._~) and '/' percent-encoded (so an encoded "%20" on the
 *     wire becomes "%2520", as the SDKs do for non-S3 services); "" -> "/".
 *   - query: split on '&', each name and value percent-decoded and then
 *     strictly re-encoded, sorted by name then value.
 *   - headers: the SignedHeaders list in its own order, names lowercased,
 *     values trimmed with inner runs of whitespace collapsed to one space,
 *     repeated headers joined with ',' in the order received.
 *   - payload: hex SHA-256 of the body as received (DynamoDB always signs it).
 *
 * Crypto: OpenSSL 3 EVP_MAC (HMAC/SHA256) and EVP_MD (SHA256), fetched once;
 * each thread keeps its own EVP_MAC_CTX / EVP_MD_CTX (pthread key with a
 * destructor) and re-keys it per HMAC. The signing key for (access key, date)
 * is cached in a direct-mapped table of SIGV4_CACHE_SLOTS slots under a mutex;
 * region and service are fixed per verifier and checked before the cache is
 * consulted, so they are implicitly part of the cache key.
 */
#include "auth/sigv4.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "util/buf.h"

#define SIGV4_ALGORITHM      "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR     "aws4_request"
#define SIGV4_SKEW_SECONDS   (15 * 60)
#define SIGV4_CACHE_SLOTS    256
#define SIGV4_ERR_INCOMPLETE ERR_INCOMPLETE_SIGNATURE
#define SHA256_LEN           32
#define AMZ_DATE_LEN         16  /* YYYYMMDDTHHMMSSZ */
#define SCOPE_DATE_LEN       8   /* YYYYMMDD */
#define MAX_ECHO             512 /* longest client text quoted back in a message */

#define MSG_MISSING_TOKEN "Request is missing Authentication Token"
#define MSG_UNRECOGNIZED  "The security token included in the request is invalid."
#define MSG_MISMATCH                                                                               \
    "The request signature we calculated does not match the signature you provided. Check your "   \
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
#define MSG_BAD_REGION  "Credential should be scoped to a valid region, not '%.*s'. "
#define MSG_BAD_SERVICE "Credential should be scoped to correct service: '%s'. "
#define MSG_BAD_TERMINATOR                                                                         \
    "Credential should be scoped with a valid terminator: 'aws4_request', not '%.*s'. "
#define MSG_BAD_SCOPE_DATE                                                                         \
    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "   \
    "'%.*s' != '%.*s', from '%.*s'."
#define MSG_HOST_UNSIGNED "'Host' must be a 'SignedHeader' in the AWS Authorization."

/* ---------------------------------------------------------------- helpers */

typedef struct span {
    const char *p;
    size_t n;
} span;

static int echo_len(size_t n)
{
    return (int)(n > MAX_ECHO ? MAX_ECHO : n);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn) return false;
    for (size_t i = 0; i < an; i++)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

static bool span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static span trim(const char *p, size_t n)
{
    while (n && is_ws(p[0]))
        p++, n--;
    while (n && is_ws(p[n - 1]))
        n--;
    return (span){p, n};
}

static const sigv4_header *find_header(const sigv4_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const sigv4_header *h = &req->headers[i];
        if (h->name && ieq(h->name, h->name_len, name, n)) return h;
    }
    return NULL;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Appends p[0..n) URI-encoded; '/' is kept when keep_slash. */
static void uri_encode(buf *b, const char *p, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            buf_putc(b, c);
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
            buf_append(b, esc, 3);
        }
    }
}

/* Appends p[0..n) percent-decoded and then strictly re-encoded. */
static void uri_reencode(buf *b, const char *p, size_t n)
{
    buf tmp;
    buf_init(&tmp);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = hex_value(p[i + 1])) >= 0 &&
            (lo = hex_value(p[i + 2])) >= 0) {
            buf_putc(&tmp, (uint8_t)(hi * 16 + lo));
            i += 2;
        } else {
            buf_putc(&tmp, (uint8_t)p[i]);
        }
    }
    uri_encode(b, (const char *)tmp.data, tmp.len, false);
    buf_free(&tmp);
}

/* Parses "YYYYMMDDTHHMMSSZ" (exactly) into *t. */
static bool parse_amz_date(span s, time_t *t)
{
    if (s.n != AMZ_DATE_LEN || s.p[8] != 'T' || s.p[15] != 'Z') return false;
    for (size_t i = 0; i < 15; i++)
        if (i != 8 && (s.p[i] < '0' || s.p[i] > '9')) return false;
    int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
    for (int i = 0; i < 4; i++)
        year = year * 10 + (s.p[i] - '0');
    mon = (s.p[4] - '0') * 10 + (s.p[5] - '0');
    day = (s.p[6] - '0') * 10 + (s.p[7] - '0');
    hour = (s.p[9] - '0') * 10 + (s.p[10] - '0');
    min = (s.p[11] - '0') * 10 + (s.p[12] - '0');
    sec = (s.p[13] - '0') * 10 + (s.p[14] - '0');
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
        return false;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t v = timegm(&tm);
    /* timegm normalizes 20150231 to March; the round trip rejects such dates
     * (and a -1 that was an error rather than 19691231T235959Z). */
    struct tm back;
    if (!gmtime_r(&v, &back) || back.tm_year != tm.tm_year || back.tm_mon != mon - 1 ||
        back.tm_mday != day || back.tm_hour != hour || back.tm_min != min || back.tm_sec != sec)
        return false;
    *t = v;
    return true;
}

static void format_amz_date(time_t t, char out[AMZ_DATE_LEN + 1])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == 0)
        snprintf(out, AMZ_DATE_LEN + 1, "%s", "invalid");
}

/* ----------------------------------------------------------------- crypto */

typedef struct crypto_tls {
    EVP_MAC_CTX *mac;
    EVP_MD_CTX *md;
} crypto_tls;

static pthread_once_t g_crypto_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_crypto_key;
static bool g_crypto_ok;
static EVP_MAC *g_hmac;
static EVP_MD *g_sha256;

static void crypto_tls_free(void *p)
{
    crypto_tls *t = p;
    if (!t) return;
    EVP_MAC_CTX_free(t->mac);
    EVP_MD_CTX_free(t->md);
    free(t);
}

static void crypto_init_once(void)
{
    if (pthread_key_create(&g_crypto_key, crypto_tls_free) != 0) return;
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_crypto_ok = g_hmac && g_sha256;
}

/* This thread's contexts, created on first use; NULL on failure. */
static crypto_tls *crypto_get(void)
{
    if (pthread_once(&g_crypto_once, crypto_init_once) != 0 || !g_crypto_ok) return NULL;
    crypto_tls *t = pthread_getspecific(g_crypto_key);
    if (t) return t;
    t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    t->mac = EVP_MAC_CTX_new(g_hmac);
    t->md = EVP_MD_CTX_new();
    if (!t->mac || !t->md || EVP_MAC_CTX_set_params(t->mac, params) != 1 ||
        pthread_setspecific(g_crypto_key, t) != 0) {
        crypto_tls_free(t);
        return NULL;
    }
    return t;
}

static int hmac_sha256(crypto_tls *t, const void *key, size_t key_len, const void *msg,
                       size_t msg_len, uint8_t out[SHA256_LEN])
{
    size_t out_len = 0;
    if (EVP_MAC_init(t->mac, key, key_len, NULL) != 1) return -1;
    if (EVP_MAC_update(t->mac, msg, msg_len) != 1) return -1;
    if (EVP_MAC_final(t->mac, out, &out_len, SHA256_LEN) != 1 || out_len != SHA256_LEN) return -1;
    return 0;
}

static int sha256(crypto_tls *t, const void *data, size_t len, uint8_t out[SHA256_LEN])
{
    unsigned int out_len = 0;
    if (EVP_DigestInit_ex(t->md, g_sha256, NULL) != 1) return -1;
    if (len && EVP_DigestUpdate(t->md, data, len) != 1) return -1;
    if (EVP_DigestFinal_ex(t->md, out, &out_len) != 1 || out_len != SHA256_LEN) return -1;
    return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int derive_signing_key(crypto_tls *t, const char *secret, const char *date, size_t date_len,
                              const char *region, const char *service, uint8_t out[SHA256_LEN])
{
    size_t slen = strlen(secret);
    char *k0 = malloc(slen + 4);
    if (!k0) return -1;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, slen);
    uint8_t k[SHA256_LEN];
    int rc = -1;
    if (hmac_sha256(t, k0, slen + 4, date, date_len, k) == 0 &&
        hmac_sha256(t, k, SHA256_LEN, region, strlen(region), k) == 0 &&
        hmac_sha256(t, k, SHA256_LEN, service, strlen(service), k) == 0 &&
        hmac_sha256(t, k, SHA256_LEN, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), out) == 0)
        rc = 0;
    OPENSSL_cleanse(k0, slen + 4);
    OPENSSL_cleanse(k, sizeof(k));
    free(k0);
    return rc;
}

/* ------------------------------------------------------ canonical request */

typedef struct query_pair {
    const char *key; /* encoded, into the pair storage */
    size_t key_len;
    const char *val;
    size_t val_len;
} query_pair;

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    int r = m ? memcmp(a, b, m) : 0;
    if (r) return r;
    return (an > bn) - (an < bn);
}

static int query_pair_cmp(const void *x, const void *y)
{
    const query_pair *a = x, *b = y;
    int r = cmp_bytes(a->key, a->key_len, b->key, b->key_len);
    return r ? r : cmp_bytes(a->val, a->val_len, b->val, b->val_len);
}

/* Appends the canonical query string. Returns 0, or -1 on allocation failure. */
static int append_canonical_query(buf *b, const char *query)
{
    if (!query || !*query) return 0;
    size_t qlen = strlen(query);
    size_t max_pairs = 1;
    for (size_t i = 0; i < qlen; i++)
        max_pairs += query[i] == '&';

    /* Encode every name and value into one storage buffer, recording offsets;
     * the pointers are taken only once the storage stops growing. */
    size_t *offs = malloc(max_pairs * 4 * sizeof(*offs));
    query_pair *pairs = malloc(max_pairs * sizeof(*pairs));
    if (!offs || !pairs) {
        free(offs);
        free(pairs);
        return -1;
    }
    buf store;
    buf_init(&store);
    size_t n = 0;
    const char *p = query, *end = query + qlen;
    while (p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *kend = eq ? eq : stop;
            offs[4 * n] = store.len;
            uri_reencode(&store, p, (size_t)(kend - p));
            offs[4 * n + 1] = store.len;
            if (eq) uri_reencode(&store, eq + 1, (size_t)(stop - eq - 1));
            offs[4 * n + 2] = store.len;
            n++;
        }
        if (!amp) break;
        p = amp + 1;
    }
    /* store.data is NULL when every name and value is empty (query "=" or "&="). */
    const char *base = store.data ? (const char *)store.data : "";
    for (size_t i = 0; i < n; i++) {
        pairs[i].key = base + offs[4 * i];
        pairs[i].key_len = offs[4 * i + 1] - offs[4 * i];
        pairs[i].val = base + offs[4 * i + 1];
        pairs[i].val_len = offs[4 * i + 2] - offs[4 * i + 1];
    }
    if (n > 1) qsort(pairs, n, sizeof(*pairs), query_pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, '&');
        buf_append(b, pairs[i].key, pairs[i].key_len);
        buf_putc(b, '=');
        buf_append(b, pairs[i].val, pairs[i].val_len);
    }
    buf_free(&store);
    free(offs);
    free(pairs);
    return 0;
}

/* Appends a header value trimmed, with inner whitespace runs collapsed. */
static void append_collapsed(buf *b, const char *v, size_t n)
{
    span s = trim(v, n);
    bool in_ws = false;
    for (size_t i = 0; i < s.n; i++) {
        if (is_ws(s.p[i])) {
            in_ws = true;
            continue;
        }
        if (in_ws) buf_putc(b, ' ');
        in_ws = false;
        buf_putc(b, (uint8_t)s.p[i]);
    }
}

/* Appends "name:value1,value2\n" for every header called name (lowercase). */
static void append_header_line(buf *b, const sigv4_request *req, const char *name, size_t name_len)
{
    buf_append(b, name, name_len);
    buf_putc(b, ':');
    bool first = true;
    for (size_t i = 0; i < req->n_headers; i++) {
        const sigv4_header *h = &req->headers[i];
        if (!h->name || !ieq(h->name, h->name_len, name, name_len)) continue;
        if (!first) buf_putc(b, ',');
        first = false;
        if (h->value) append_collapsed(b, h->value, h->value_len);
    }
    buf_putc(b, '\n');
}

/* Builds the canonical request. signed_list is the lowercase ';'-separated
 * list of header names, in the order to emit them. Returns 0 or -1. */
static int build_canonical_request(buf *b, crypto_tls *t, const sigv4_request *req,
                                   const char *signed_list, size_t signed_len)
{
    buf_puts(b, req->method ? req->method : "");
    buf_putc(b, '\n');
    if (req->path && *req->path)
        uri_encode(b, req->path, strlen(req->path), true);
    else
        buf_putc(b, '/');
    buf_putc(b, '\n');
    if (append_canonical_query(b, req->query) != 0) return -1;
    buf_putc(b, '\n');

    const char *p = signed_list, *end = signed_list + signed_len;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        append_header_line(b, req, p, (size_t)(stop - p));
        if (!semi) break;
        p = semi + 1;
    }
    buf_putc(b, '\n');
    buf_append(b, signed_list, signed_len);
    buf_putc(b, '\n');

    uint8_t digest[SHA256_LEN];
    char hex[2 * SHA256_LEN + 1];
    static const uint8_t empty = 0;
    if (sha256(t, req->body ? (const void *)req->body : &empty, req->body ? req->body_len : 0,
               digest) != 0)
        return -1;
    hex_encode(digest, SHA256_LEN, hex);
    buf_append(b, hex, 2 * SHA256_LEN);
    return 0;
}

/* Computes the hex signature of req. scope is "date/region/service/aws4_request". */
static int compute_signature(crypto_tls *t, const uint8_t key[SHA256_LEN], const sigv4_request *req,
                             const char *amz_date, size_t amz_date_len, const char *scope,
                             size_t scope_len, const char *signed_list, size_t signed_len,
                             char out[2 * SHA256_LEN + 1])
{
    buf creq, sts;
    buf_init(&creq);
    buf_init(&sts);
    int rc = -1;
    uint8_t digest[SHA256_LEN];
    char hex[2 * SHA256_LEN + 1];
    if (build_canonical_request(&creq, t, req, signed_list, signed_len) != 0) goto done;
    if (sha256(t, creq.data, creq.len, digest) != 0) goto done;
    hex_encode(digest, SHA256_LEN, hex);

    buf_puts(&sts, SIGV4_ALGORITHM "\n");
    buf_append(&sts, amz_date, amz_date_len);
    buf_putc(&sts, '\n');
    buf_append(&sts, scope, scope_len);
    buf_putc(&sts, '\n');
    buf_append(&sts, hex, 2 * SHA256_LEN);

    if (hmac_sha256(t, key, SHA256_LEN, sts.data, sts.len, digest) != 0) goto done;
    hex_encode(digest, SHA256_LEN, out);
    rc = 0;
done:
    buf_free(&creq);
    buf_free(&sts);
    return rc;
}

/* --------------------------------------------------------------- verifier */

typedef struct cache_slot {
    const cred_entry *who; /* NULL: empty slot */
    char date[SCOPE_DATE_LEN];
    uint8_t key[SHA256_LEN];
} cache_slot;

struct sigv4_verifier {
    const cred_table *creds;
    char *region;
    char *service;
    pthread_mutex_t mu;
    cache_slot cache[SIGV4_CACHE_SLOTS];
    uint64_t hits, misses;
};

sigv4_verifier *sigv4_verifier_new(const cred_table *creds, const char *region, const char *service)
{
    if (!region || !service) return NULL;
    sigv4_verifier *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->creds = creds;
    v->region = strdup(region);
    v->service = strdup(service);
    if (!v->region || !v->service || pthread_mutex_init(&v->mu, NULL) != 0) {
        free(v->region);
        free(v->service);
        free(v);
        return NULL;
    }
    return v;
}

void sigv4_verifier_free(sigv4_verifier *v)
{
    if (!v) return;
    pthread_mutex_destroy(&v->mu);
    OPENSSL_cleanse(v->cache, sizeof(v->cache));
    free(v->region);
    free(v->service);
    free(v);
}

void sigv4_cache_stats(sigv4_verifier *v, uint64_t *hits, uint64_t *misses)
{
    uint64_t h = 0, m = 0;
    if (v) {
        pthread_mutex_lock(&v->mu);
        h = v->hits;
        m = v->misses;
        pthread_mutex_unlock(&v->mu);
    }
    if (hits) *hits = h;
    if (misses) *misses = m;
}

static size_t cache_index(const char *access_key, const char *date)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = access_key; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    for (size_t i = 0; i < SCOPE_DATE_LEN; i++)
        h = (h ^ (uint8_t)date[i]) * 1099511628211ULL;
    return (size_t)(h % SIGV4_CACHE_SLOTS);
}

/* The signing key for who on date (8 chars), from the cache or derived. */
static int signing_key(sigv4_verifier *v, crypto_tls *t, const cred_entry *who, const char *date,
                       uint8_t out[SHA256_LEN])
{
    cache_slot *slot = &v->cache[cache_index(who->access_key, date)];
    pthread_mutex_lock(&v->mu);
    if (slot->who == who && memcmp(slot->date, date, SCOPE_DATE_LEN) == 0) {
        memcpy(out, slot->key, SHA256_LEN);
        v->hits++;
        pthread_mutex_unlock(&v->mu);
        return 0;
    }
    v->misses++;
    pthread_mutex_unlock(&v->mu);

    if (derive_signing_key(t, who->secret, date, SCOPE_DATE_LEN, v->region, v->service, out) != 0)
        return -1;

    pthread_mutex_lock(&v->mu);
    slot->who = who;
    memcpy(slot->date, date, SCOPE_DATE_LEN);
    memcpy(slot->key, out, SHA256_LEN);
    pthread_mutex_unlock(&v->mu);
    return 0;
}

/* The parsed Authorization header. */
typedef struct auth_parts {
    span algorithm;
    span credential;
    span signed_headers;
    span signature;
} auth_parts;

static bool is_auth_sep(char c)
{
    return c == ',' || is_ws(c);
}

/* Splits "ALG k=v, k=v ..." (commas and/or whitespace between pairs). */
static int parse_authorization(span auth, span raw, auth_parts *out, err *e)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    while (i < auth.n && !is_ws(auth.p[i]))
        i++;
    out->algorithm = (span){auth.p, i};
    while (i < auth.n) {
        while (i < auth.n && is_auth_sep(auth.p[i]))
            i++;
        if (i == auth.n) break;
        size_t start = i;
        while (i < auth.n && !is_auth_sep(auth.p[i]))
            i++;
        span tok = {auth.p + start, i - start};
        const char *eq = memchr(tok.p, '=', tok.n);
        if (!eq)
            return err_set(e, SIGV4_ERR_INCOMPLETE,
                           "'%.*s' not a valid key=value pair (missing equal-sign) in "
                           "Authorization header: '%.*s'.",
                           echo_len(tok.n), tok.p, echo_len(raw.n), raw.p);
        span key = {tok.p, (size_t)(eq - tok.p)};
        span val = {eq + 1, tok.n - key.n - 1};
        if (span_eq(key, "Credential"))
            out->credential = val;
        else if (span_eq(key, "SignedHeaders"))
            out->signed_headers = val;
        else if (span_eq(key, "Signature"))
            out->signature = val;
    }
    return 0;
}

/* True when the ';'-separated list names host (any case). */
static bool lists_host(span list)
{
    const char *p = list.p, *end = list.p + list.n;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if (ieq(p, (size_t)(stop - p), "host", 4)) return true;
        if (!semi) break;
        p = semi + 1;
    }
    return false;
}

static int check_window(span amz_date, time_t when, time_t now, err *e)
{
    char now_s[AMZ_DATE_LEN + 1], bound_s[AMZ_DATE_LEN + 1];
    if (when < now && now - when > SIGV4_SKEW_SECONDS) {
        format_amz_date(now, now_s);
        format_amz_date(now - SIGV4_SKEW_SECONDS, bound_s);
        return err_set(e, ERR_INVALID_SIGNATURE,
                       "Signature expired: %.*s is now earlier than %s (%s - 15 min.)",
                       (int)amz_date.n, amz_date.p, bound_s, now_s);
    }
    if (when > now && when - now > SIGV4_SKEW_SECONDS) {
        format_amz_date(now, now_s);
        format_amz_date(now + SIGV4_SKEW_SECONDS, bound_s);
        return err_set(e, ERR_INVALID_SIGNATURE,
                       "Signature not yet current: %.*s is still later than %s (%s + 15 min.)",
                       (int)amz_date.n, amz_date.p, bound_s, now_s);
    }
    return 0;
}

int sigv4_verify(sigv4_verifier *v, const sigv4_request *req, time_t now, const cred_entry **who,
                 err *e)
{
    if (who) *who = NULL;
    if (!v || !req) return err_set(e, ERR_INTERNAL, "sigv4_verify: no verifier or request");

    /* 1. An Authorization header in the AWS4 family. */
    const sigv4_header *ah = find_header(req, "authorization");
    span raw = ah && ah->value ? (span){ah->value, ah->value_len} : (span){"", 0};
    span auth = trim(raw.p, raw.n);
    if (auth.n < 5 || memcmp(auth.p, "AWS4-", 5) != 0)
        return err_set(e, ERR_MISSING_AUTH, MSG_MISSING_TOKEN);

    /* 2. Parameters, then everything required present. */
    auth_parts ap;
    if (parse_authorization(auth, raw, &ap, e) != 0) return -1;
    const sigv4_header *dh = find_header(req, "x-amz-date");
    span amz_date = dh && dh->value ? trim(dh->value, dh->value_len) : (span){"", 0};
    if (!ap.credential.n || !ap.signature.n || !ap.signed_headers.n || !amz_date.n) {
        char msg[sizeof(e->msg)];
        snprintf(msg, sizeof(msg), "%s%s%s%s",
                 ap.credential.n ? "" : "Authorization header requires 'Credential' parameter. ",
                 ap.signature.n ? "" : "Authorization header requires 'Signature' parameter. ",
                 ap.signed_headers.n ? ""
                                     : "Authorization header requires 'SignedHeaders' parameter. ",
                 amz_date.n ? ""
                            : "Authorization header requires existence of either a 'X-Amz-Date' "
                              "or a 'Date' header. ");
        return err_set(e, SIGV4_ERR_INCOMPLETE, "%sAuthorization=%.*s", msg, echo_len(raw.n),
                       raw.p);
    }

    /* 3. Date format and the 15-minute window. */
    time_t when;
    if (!parse_amz_date(amz_date, &when))
        return err_set(e, SIGV4_ERR_INCOMPLETE,
                       "Date must be in ISO-8601 'basic format'. Got '%.*s'. See "
                       "http://en.wikipedia.org/wiki/ISO_8601",
                       echo_len(amz_date.n), amz_date.p);
    if (check_window(amz_date, when, now, e) != 0) return -1;

    /* 4. Host signed; 5. algorithm. */
    if (!lists_host(ap.signed_headers)) return err_set(e, ERR_INVALID_SIGNATURE, MSG_HOST_UNSIGNED);
    if (!span_eq(ap.algorithm, SIGV4_ALGORITHM))
        return err_set(e, SIGV4_ERR_INCOMPLETE,
                       "Unsupported AWS 'algorithm': '%.*s' (only AWS4-HMAC-SHA256 for now). ",
                       echo_len(ap.algorithm.n), ap.algorithm.p);

    /* 6. Credential: keyid/date/region/service/term (trailing slashes ignored). */
    span cred = ap.credential;
    while (cred.n && cred.p[cred.n - 1] == '/')
        cred.n--;
    span part[5];
    size_t nparts = 0;
    {
        const char *p = cred.p, *end = cred.p + cred.n;
        while (nparts < 6) {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            const char *stop = slash ? slash : end;
            if (nparts < 5) part[nparts] = (span){p, (size_t)(stop - p)};
            nparts++;
            if (!slash) break;
            p = slash + 1;
        }
    }
    if (nparts != 5)
        return err_set(e, SIGV4_ERR_INCOMPLETE,
                       "Credential must have exactly 5 slash-delimited elements, e.g. "
                       "keyid/date/region/service/term, got '%.*s'",
                       echo_len(ap.credential.n), ap.credential.p);

    /* 7. Scope: every mismatch reported at once, as DynamoDB does. */
    {
        char msg[sizeof(e->msg)];
        size_t len = 0;
        msg[0] = '\0';
#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (len < sizeof(msg)) {                                                                   \
            int w_ = snprintf(msg + len, sizeof(msg) - len, __VA_ARGS__);                          \
            if (w_ > 0) len += (size_t)w_;                                                         \
        }                                                                                          \
    } while (0)
        if (!span_eq(part[2], v->region)) APPEND(MSG_BAD_REGION, echo_len(part[2].n), part[2].p);
        if (!span_eq(part[3], v->service)) APPEND(MSG_BAD_SERVICE, v->service);
        if (!span_eq(part[4], SIGV4_TERMINATOR))
            APPEND(MSG_BAD_TERMINATOR, echo_len(part[4].n), part[4].p);
        if (part[1].n != SCOPE_DATE_LEN || memcmp(part[1].p, amz_date.p, SCOPE_DATE_LEN) != 0)
            APPEND(MSG_BAD_SCOPE_DATE, echo_len(part[1].n), part[1].p, SCOPE_DATE_LEN, amz_date.p,
                   (int)amz_date.n, amz_date.p);
#undef APPEND
        if (msg[0]) return err_set(e, ERR_INVALID_SIGNATURE, "%s", msg);
    }

    /* 8. The access key. */
    const cred_entry *ent = cred_find(v->creds, part[0].p, part[0].n);
    if (!ent) return err_set(e, ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);

    /* 9. The signature itself. */
    crypto_tls *t = crypto_get();
    if (!t) return err_set(e, ERR_INTERNAL, "cannot initialize the signature verifier");
    uint8_t key[SHA256_LEN];
    if (signing_key(v, t, ent, amz_date.p, key) != 0)
        return err_set(e, ERR_INTERNAL, "cannot derive the signing key");

    /* The scope as the client sent it; it was just checked to equal ours. */
    span scope = {part[1].p, (size_t)(cred.p + cred.n - part[1].p)};
    char *signed_lc = malloc(ap.signed_headers.n + 1);
    if (!signed_lc) {
        OPENSSL_cleanse(key, sizeof(key));
        return err_set(e, ERR_INTERNAL, "out of memory verifying the signature");
    }
    for (size_t i = 0; i < ap.signed_headers.n; i++)
        signed_lc[i] = lower(ap.signed_headers.p[i]);
    signed_lc[ap.signed_headers.n] = '\0';

    char expected[2 * SHA256_LEN + 1];
    int rc = compute_signature(t, key, req, amz_date.p, amz_date.n, scope.p, scope.n, signed_lc,
                               ap.signed_headers.n, expected);
    OPENSSL_cleanse(key, sizeof(key));
    free(signed_lc);
    if (rc != 0) return err_set(e, ERR_INTERNAL, "cannot compute the request signature");

    if (ap.signature.n != 2 * SHA256_LEN ||
        CRYPTO_memcmp(expected, ap.signature.p, 2 * SHA256_LEN) != 0)
        return err_set(e, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    if (who) *who = ent;
    return 0;
}

/* ----------------------------------------------------------------- signer */

typedef struct name_ref {
    char *name; /* lowercase copy */
    size_t len;
} name_ref;

static int name_ref_cmp(const void *x, const void *y)
{
    const name_ref *a = x, *b = y;
    return cmp_bytes(a->name, a->len, b->name, b->len);
}

/* Builds the sorted, de-duplicated, lowercase ';' list of req's header names. */
static char *signed_header_list(const sigv4_request *req, size_t *out_len)
{
    name_ref *names = calloc(req->n_headers ? req->n_headers : 1, sizeof(*names));
    if (!names) return NULL;
    size_t n = 0;
    char *result = NULL;
    buf b;
    buf_init(&b);
    for (size_t i = 0; i < req->n_headers; i++) {
        const sigv4_header *h = &req->headers[i];
        if (!h->name || h->name_len == 0) continue;
        char *lc = malloc(h->name_len + 1);
        if (!lc) goto done;
        for (size_t j = 0; j < h->name_len; j++)
            lc[j] = lower(h->name[j]);
        lc[h->name_len] = '\0';
        names[n].name = lc;
        names[n].len = h->name_len;
        n++;
    }
    if (n > 1) qsort(names, n, sizeof(*names), name_ref_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i && name_ref_cmp(&names[i - 1], &names[i]) == 0) continue;
        if (b.len) buf_putc(&b, ';');
        buf_append(&b, names[i].name, names[i].len);
    }
    buf_putc(&b, '\0'); /* ensures data is non-NULL even for an empty list */
    *out_len = b.len - 1;
    result = (char *)buf_detach(&b, NULL);
done:
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);
    return result;
}

int sigv4_sign(const char *access_key, const char *secret, const char *region, const char *service,
               const char *amz_date, const sigv4_request *req, char *out, size_t out_len)
{
    if (!access_key || !secret || !region || !service || !amz_date || !req || !out) return -1;
    span date = {amz_date, strlen(amz_date)};
    time_t ignored;
    if (!parse_amz_date(date, &ignored)) return -1;
    crypto_tls *t = crypto_get();
    if (!t) return -1;

    size_t list_len = 0;
    char *list = signed_header_list(req, &list_len);
    if (!list) return -1;

    char scope[256];
    int sn =
        snprintf(scope, sizeof(scope), "%.8s/%s/%s/" SIGV4_TERMINATOR, amz_date, region, service);
    uint8_t key[SHA256_LEN];
    char sig[2 * SHA256_LEN + 1];
    int rc = -1;
    if (sn > 0 && (size_t)sn < sizeof(scope) &&
        derive_signing_key(t, secret, amz_date, SCOPE_DATE_LEN, region, service, key) == 0 &&
        compute_signature(t, key, req, amz_date, AMZ_DATE_LEN, scope, (size_t)sn, list, list_len,
                          sig) == 0) {
        int w = snprintf(out, out_len,
                         SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         access_key, scope, list, sig);
        if (w > 0 && (size_t)w < out_len) rc = 0;
    }
    OPENSSL_cleanse(key, sizeof(key));
    free(list);
    if (rc != 0 && out_len) out[0] = '\0';
    return rc;
}
