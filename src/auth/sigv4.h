/* sigv4.h - AWS Signature Version 4 verification of API requests.
 *
 * Verifies the Authorization header form
 *   AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/dynamodb/aws4_request,
 *   SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<hex>
 * by recomputing the canonical request, string to sign and signature from the
 * request as received. The derived signing key is cached per (access key,
 * date, region, service) in the verifier, so a check costs a few HMACs.
 * The verifier is safe to use from many threads at once.
 *
 * Errors (ERR_* codes in err.h, messages as DynamoDB sends them):
 *   no Authorization header      -> ERR_MISSING_AUTH "Request is missing Authentication Token"
 *   unknown access key           -> ERR_UNRECOGNIZED_CLIENT "The security token included in the
 * request is invalid." signature mismatch           -> ERR_INVALID_SIGNATURE "The request signature
 * we calculated does not match the signature you provided. Check your AWS Secret Access Key and
 * signing method. Consult the service documentation for details." malformed header / credential
 * scope / missing X-Amz-Date -> ERR_INVALID_SIGNATURE or ERR_MISSING_AUTH with DynamoDB's texts
 *   X-Amz-Date more than 15 minutes from now -> ERR_INVALID_SIGNATURE
 *     "Signature expired: 20261121T000000Z is now earlier than 20261121T001500Z (20261121T003000Z -
 * 15 min.)" (or "... is now later than ..." for dates in the future) region in the scope not this
 * server's region -> ERR_INVALID_SIGNATURE "Credential should be scoped to a valid region. "
 */
#ifndef MERIDIAN_SIGV4_H
#define MERIDIAN_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth/credentials.h"
#include "util/err.h"

typedef struct sigv4_header {
    const char *name; /* as received; matched case-insensitively */
    size_t name_len;
    const char *value;
    size_t value_len;
} sigv4_header;

typedef struct sigv4_request {
    const char *method; /* "POST" */
    const char *path;   /* raw path as received, e.g. "/" */
    const char *query;  /* raw query string without '?', or "" */
    const sigv4_header *headers;
    size_t n_headers;
    const uint8_t *body;
    size_t body_len;
} sigv4_request;

typedef struct sigv4_verifier sigv4_verifier;

/* Creates a verifier for this server's region and service ("dynamodb").
 * creds must outlive it. Returns NULL on allocation failure. */
sigv4_verifier *sigv4_verifier_new(const cred_table *creds, const char *region,
                                   const char *service);
void sigv4_verifier_free(sigv4_verifier *v);

/* Verifies req as of time now. On success returns 0 and sets *who to the
 * matching credentials entry (owned by the cred_table). */
int sigv4_verify(sigv4_verifier *v, const sigv4_request *req, time_t now, const cred_entry **who,
                 err *e);

/* Signs a request (client side: used by tests and the meridian CLI tools).
 * Writes the Authorization header value into out (NUL-terminated) and
 * returns 0, or -1 if out_len is too small. amz_date is "YYYYMMDDTHHMMSSZ";
 * headers must include host and x-amz-date; all of them are signed. */
int sigv4_sign(const char *access_key, const char *secret, const char *region, const char *service,
               const char *amz_date, const sigv4_request *req, char *out, size_t out_len);

/* Signing-key cache counters since the verifier was created (for tests and
 * metrics): a hit reuses a derived key, a miss derives one. Either pointer may
 * be NULL. */
void sigv4_cache_stats(sigv4_verifier *v, uint64_t *hits, uint64_t *misses);

#endif
