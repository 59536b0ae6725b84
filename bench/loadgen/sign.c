/* sign.c - per-thread SigV4 signer for meridian-bench (see sign.h).
 *
 * Owns the signer's OpenSSL contexts, the per-day signing-key cache and the
 * fixed canonical request of a DynamoDB JSON call:
 *
 *   POST\n/\n\n
 *   content-type:application/x-amz-json-1.0\nhost:H\nx-amz-date:D\n
 *   x-amz-target:DynamoDB_20120810.Op\n\n
 *   content-type;host;x-amz-date;x-amz-target\n<hex sha256(body)>
 *
 * hashed piecewise (no copy of the body). The string to sign is
 * "AWS4-HMAC-SHA256\nD\nYYYYMMDD/region/dynamodb/aws4_request\n<hex sha256(cr)>".
 */
#include "sign.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth/sigv4.h"

#define SHA_LEN        32
#define SIGNED_HEADERS "content-type;host;x-amz-date;x-amz-target"
#define SERVICE        "dynamodb"

struct signer {
    char *access_key;
    char *secret;
    char *region;
    char *host;
    char *scope_tail; /* "/region/dynamodb/aws4_request" */
    size_t scope_tail_len;
    EVP_MAC *hmac;
    EVP_MD *sha256;
    EVP_MAC_CTX *mac;   /* key derivation */
    EVP_MAC_CTX *keyed; /* holds the signing key: re-initialised per request without re-keying */
    EVP_MD_CTX *md;
    char key_date[9]; /* YYYYMMDD of the cached key, "" if none */
    uint8_t key[SHA_LEN];
};

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void signer_format_date(time_t t, char *out)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, SIGN_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == 0)
        strcpy(out, "19700101T000000Z");
}

void signer_free(signer *s)
{
    if (!s) return;
    if (s->secret) OPENSSL_cleanse(s->secret, strlen(s->secret));
    OPENSSL_cleanse(s->key, sizeof(s->key));
    free(s->access_key);
    free(s->secret);
    free(s->region);
    free(s->host);
    free(s->scope_tail);
    EVP_MAC_CTX_free(s->mac);
    EVP_MAC_CTX_free(s->keyed);
    EVP_MD_CTX_free(s->md);
    EVP_MAC_free(s->hmac);
    EVP_MD_free(s->sha256);
    free(s);
}

signer *signer_new(const char *access_key, const char *secret, const char *region, const char *host)
{
    signer *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->access_key = strdup(access_key);
    s->secret = strdup(secret);
    s->region = strdup(region);
    s->host = strdup(host);
    size_t tail = strlen(region) + sizeof("//" SERVICE "/aws4_request");
    s->scope_tail = malloc(tail);
    s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!s->access_key || !s->secret || !s->region || !s->host || !s->scope_tail || !s->hmac ||
        !s->sha256)
        goto fail;
    snprintf(s->scope_tail, tail, "/%s/" SERVICE "/aws4_request", region);
    s->scope_tail_len = strlen(s->scope_tail);
    s->mac = EVP_MAC_CTX_new(s->hmac);
    s->keyed = EVP_MAC_CTX_new(s->hmac);
    s->md = EVP_MD_CTX_new();
    if (!s->mac || !s->keyed || !s->md) goto fail;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(s->mac, params) != 1 ||
        EVP_MAC_CTX_set_params(s->keyed, params) != 1)
        goto fail;
    return s;
fail:
    signer_free(s);
    return NULL;
}

static int hmac(signer *s, const void *key, size_t key_len, const void *msg, size_t msg_len,
                uint8_t out[SHA_LEN])
{
    size_t n = 0;
    if (EVP_MAC_init(s->mac, key, key_len, NULL) != 1 ||
        EVP_MAC_update(s->mac, msg, msg_len) != 1 || EVP_MAC_final(s->mac, out, &n, SHA_LEN) != 1 ||
        n != SHA_LEN)
        return -1;
    return 0;
}

/* Derives kSigning for date8 into s->key unless it is cached already. */
static int signing_key(signer *s, const char *date8)
{
    if (memcmp(s->key_date, date8, 8) == 0) return 0;
    size_t slen = strlen(s->secret);
    uint8_t *k0 = malloc(slen + 4);
    if (!k0) return -1;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, s->secret, slen);
    uint8_t k[SHA_LEN];
    int rc = -1;
    if (hmac(s, k0, slen + 4, date8, 8, k) == 0 &&
        hmac(s, k, SHA_LEN, s->region, strlen(s->region), k) == 0 &&
        hmac(s, k, SHA_LEN, SERVICE, strlen(SERVICE), k) == 0 &&
        hmac(s, k, SHA_LEN, "aws4_request", 12, s->key) == 0 &&
        EVP_MAC_init(s->keyed, s->key, SHA_LEN, NULL) == 1) {
        memcpy(s->key_date, date8, 8);
        s->key_date[8] = '\0';
        rc = 0;
    } else {
        s->key_date[0] = '\0';
    }
    OPENSSL_cleanse(k0, slen + 4);
    OPENSSL_cleanse(k, sizeof(k));
    free(k0);
    return rc;
}

#define MD_PUT(s, lit)  EVP_DigestUpdate((s)->md, (lit), sizeof(lit) - 1)
#define MAC_PUT(s, lit) EVP_MAC_update((s)->keyed, (const unsigned char *)(lit), sizeof(lit) - 1)

size_t signer_authorization(signer *s, const char *amz_date, const char *op, const void *body,
                            size_t body_len, char *out, size_t out_len)
{
    uint8_t digest[SHA_LEN];
    char body_hex[2 * SHA_LEN + 1], cr_hex[2 * SHA_LEN + 1], sig_hex[2 * SHA_LEN + 1];
    unsigned dn = 0;
    if (signing_key(s, amz_date) != 0) return 0;

    if (EVP_DigestInit_ex(s->md, s->sha256, NULL) != 1 ||
        (body_len && EVP_DigestUpdate(s->md, body, body_len) != 1) ||
        EVP_DigestFinal_ex(s->md, digest, &dn) != 1 || dn != SHA_LEN)
        return 0;
    hex(digest, SHA_LEN, body_hex);

    if (EVP_DigestInit_ex(s->md, s->sha256, NULL) != 1 ||
        MD_PUT(s, "POST\n/\n\ncontent-type:" SIGN_CONTENT_TYPE "\nhost:") != 1 ||
        EVP_DigestUpdate(s->md, s->host, strlen(s->host)) != 1 || MD_PUT(s, "\nx-amz-date:") != 1 ||
        EVP_DigestUpdate(s->md, amz_date, SIGN_AMZ_DATE_LEN) != 1 ||
        MD_PUT(s, "\nx-amz-target:" SIGN_TARGET_PREFIX) != 1 ||
        EVP_DigestUpdate(s->md, op, strlen(op)) != 1 ||
        MD_PUT(s, "\n\n" SIGNED_HEADERS "\n") != 1 ||
        EVP_DigestUpdate(s->md, body_hex, 2 * SHA_LEN) != 1 ||
        EVP_DigestFinal_ex(s->md, digest, &dn) != 1 || dn != SHA_LEN)
        return 0;
    hex(digest, SHA_LEN, cr_hex);

    size_t mn = 0;
    /* A NULL key re-initialises HMAC with the key already set (its pads are kept). */
    if (EVP_MAC_init(s->keyed, NULL, 0, NULL) != 1 || MAC_PUT(s, "AWS4-HMAC-SHA256\n") != 1 ||
        EVP_MAC_update(s->keyed, (const unsigned char *)amz_date, SIGN_AMZ_DATE_LEN) != 1 ||
        MAC_PUT(s, "\n") != 1 ||
        EVP_MAC_update(s->keyed, (const unsigned char *)amz_date, 8) != 1 ||
        EVP_MAC_update(s->keyed, (const unsigned char *)s->scope_tail, s->scope_tail_len) != 1 ||
        MAC_PUT(s, "\n") != 1 ||
        EVP_MAC_update(s->keyed, (const unsigned char *)cr_hex, 2 * SHA_LEN) != 1 ||
        EVP_MAC_final(s->keyed, digest, &mn, SHA_LEN) != 1 || mn != SHA_LEN)
        return 0;
    hex(digest, SHA_LEN, sig_hex);

    static const char p1[] = "AWS4-HMAC-SHA256 Credential=";
    static const char p2[] = ", SignedHeaders=" SIGNED_HEADERS ", Signature=";
    size_t ak = strlen(s->access_key);
    size_t total =
        (sizeof(p1) - 1) + ak + 1 + 8 + s->scope_tail_len + (sizeof(p2) - 1) + 2 * SHA_LEN;
    if (total + 1 > out_len) return 0;
    char *p = out;
    memcpy(p, p1, sizeof(p1) - 1);
    p += sizeof(p1) - 1;
    memcpy(p, s->access_key, ak);
    p += ak;
    *p++ = '/';
    memcpy(p, amz_date, 8);
    p += 8;
    memcpy(p, s->scope_tail, s->scope_tail_len);
    p += s->scope_tail_len;
    memcpy(p, p2, sizeof(p2) - 1);
    p += sizeof(p2) - 1;
    memcpy(p, sig_hex, 2 * SHA_LEN);
    p += 2 * SHA_LEN;
    *p = '\0';
    return total;
}

int signer_selfcheck(signer *s, char *why, size_t why_len)
{
    static const char body[] = "{\"TableName\":\"selfcheck\",\"Key\":{\"pk\":{\"S\":\"k1\"}}}";
    static const char op[] = "GetItem";
    char date[SIGN_AMZ_DATE_LEN + 1];
    signer_format_date(time(NULL), date);
    char target[64];
    snprintf(target, sizeof(target), SIGN_TARGET_PREFIX "%s", op);
    sigv4_header headers[] = {
        {"Content-Type", 12, SIGN_CONTENT_TYPE, strlen(SIGN_CONTENT_TYPE)},
        {"Host", 4, s->host, strlen(s->host)},
        {"X-Amz-Date", 10, date, SIGN_AMZ_DATE_LEN},
        {"X-Amz-Target", 12, target, strlen(target)},
    };
    sigv4_request req = {
        .method = "POST",
        .path = "/",
        .query = "",
        .headers = headers,
        .n_headers = sizeof(headers) / sizeof(headers[0]),
        .body = (const uint8_t *)body,
        .body_len = sizeof(body) - 1,
    };
    char want[1024], got[1024];
    if (sigv4_sign(s->access_key, s->secret, s->region, SERVICE, date, &req, want, sizeof(want)) !=
        0) {
        snprintf(why, why_len, "sigv4_sign failed");
        return -1;
    }
    /* Twice: the first derives the signing key, the second reuses it. */
    for (int round = 0; round < 2; round++) {
        if (signer_authorization(s, date, op, body, sizeof(body) - 1, got, sizeof(got)) == 0) {
            snprintf(why, why_len, "signing failed (OpenSSL)");
            return -1;
        }
        if (strcmp(want, got) != 0) {
            snprintf(why, why_len, "signatures differ:\n  sigv4_sign: %s\n  bench:      %s", want,
                     got);
            return -1;
        }
    }
    return 0;
}
