/* dispatch.h - one DynamoDB API request from bytes to bytes.
 *
 * api_handle() takes a request as received (method, path, headers, body),
 * authenticates it (SigV4), routes X-Amz-Target to an operation handler
 * (ops.h), and produces the response: status, JSON body, request id. Every
 * error, from any module, is turned into DynamoDB's error shape here and
 * only here (api_error_type).
 */
#ifndef MERIDIAN_DISPATCH_H
#define MERIDIAN_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/sigv4.h"
#include "db/db.h"
#include "util/buf.h"

typedef struct metrics metrics;

struct repl;

typedef struct api_server {
    db *d;
    struct repl *repl;
    sigv4_verifier *verifier;
    const char *region;
    metrics *m;
} api_server;

typedef struct api_response {
    int status;          /* HTTP status */
    buf body;            /* JSON body (owned; caller frees or detaches) */
    char request_id[64]; /* x-amzn-RequestId */
    int op;              /* operation index (api_op_name), -1 if none */
    int outcome;         /* 0 success, 1 client error, 2 server error */
    /* x-meridian-version of a successful single-item operation: "<HLC
     * timestamp>/<origin region>" of the item written or read (a tombstone's
     * too), "" if none. Tests use it to check last-writer-wins exactly. */
    char version[96];
} api_response;

/* req->body must be followed by a NUL byte (body[body_len] == 0), which the
 * HTTP layer guarantees; resp is initialised here and its body is owned by
 * the caller afterwards. */
void api_handle(api_server *s, const sigv4_request *req, api_response *resp);

/* Operations known to the dispatcher, for metrics labels. */
size_t api_op_count(void);
const char *api_op_name(size_t i);

/* DynamoDB `__type` and HTTP status for an error code. */
const char *api_error_type(err_code code, int *status);

/* Writes an error body for e into out. */
void api_error_body(buf *out, const err *e);

/* True if [p, p+n) is valid UTF-8 (no overlongs, no surrogates). */
int utf8_valid(const unsigned char *p, size_t n);

#endif
