/* sign.h - SigV4 signing of meridian-bench's requests, fast enough for every request.
 *
 * Every request is POST / with exactly the signed headers content-type, host,
 * x-amz-date and x-amz-target (what the SDKs send for DynamoDB). A signer
 * keeps its own OpenSSL contexts and the derived signing key of the current
 * day, so signing costs two SHA-256 and one HMAC. One signer per thread.
 * signer_selfcheck() compares its output with meridian's sigv4_sign().
 */
#ifndef MERIDIAN_BENCH_SIGN_H
#define MERIDIAN_BENCH_SIGN_H

#include <stddef.h>
#include <time.h>

#define SIGN_CONTENT_TYPE  "application/x-amz-json-1.0"
#define SIGN_TARGET_PREFIX "DynamoDB_20120810."
#define SIGN_AMZ_DATE_LEN  16 /* YYYYMMDDTHHMMSSZ */

typedef struct signer signer;

/* host is the Host header value. Returns NULL on failure (OpenSSL or memory). */
signer *signer_new(const char *access_key, const char *secret, const char *region,
                   const char *host);
void signer_free(signer *s);

/* Writes the Authorization header value for a request with this X-Amz-Date,
 * target operation (e.g. "PutItem") and body. Returns its length, or 0 on
 * failure (out too small, OpenSSL error). */
size_t signer_authorization(signer *s, const char *amz_date, const char *op, const void *body,
                            size_t body_len, char *out, size_t out_len);

/* Formats t as YYYYMMDDTHHMMSSZ (out has room for 17 bytes). */
void signer_format_date(time_t t, char *out);

/* Signs a sample request with this signer and with sigv4_sign() and
 * compares. Returns 0 if they agree; else -1 with a reason in why. */
int signer_selfcheck(signer *s, char *why, size_t why_len);

#endif
