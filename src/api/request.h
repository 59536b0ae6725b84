/* request.h - what every DynamoDB operation handler receives, and the
 * helpers they share for reading parameters.
 *
 * A handler is `int op_X(op_ctx *c)`: it reads c->req (the parsed JSON body,
 * always an object), writes its JSON response into c->out, and returns 0; or
 * returns -1 with c->e set (via err_set / err_validation), in which case the
 * dispatcher discards c->out and answers with the DynamoDB error shape.
 * Everything allocated for the request comes from c->a and dies with it.
 * Helpers here set DynamoDB's exact messages so handlers need not repeat them.
 */
#ifndef MERIDIAN_REQUEST_H
#define MERIDIAN_REQUEST_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "db/db.h"
#include "expr/expr.h"
#include "item/value.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"

/* DynamoDB limits. */
#define ITEM_MAX_BYTES  (400 * 1024)
#define PK_MAX_BYTES    2048
#define SK_MAX_BYTES    1024
#define PAGE_MAX_BYTES  (1024 * 1024)
#define BATCH_WRITE_MAX 25
#define BATCH_GET_MAX   100

struct repl;

typedef struct op_ctx {
    db *d;               /* the region's database */
    struct repl *repl;   /* replication (NULL in tests without peers) */
    const char *region;  /* this region's name */
    const char *account; /* the caller's account (from its access key) */
    cJSON *req;          /* request body (a JSON object) */
    arena *a;            /* per-request memory */
    buf *out;            /* response body */
    err *e;              /* error to report when the handler returns -1 */
    /* With ERR_CONDITIONAL_CHECK_FAILED: the item to return in the error body
     * (ReturnValuesOnConditionCheckFailure ALL_OLD), or NULL. */
    const mv_value *err_item;
    /* Version of the item a single-item operation wrote or read (its HLC
     * timestamp and origin region), returned as x-meridian-version; 0 if none. */
    uint64_t version_ts;
    const char *version_origin;
} op_ctx;

typedef int (*op_fn)(op_ctx *c);

/* Parameter readers. `req_*` functions validate the JSON type and fail with
 * a SerializationException/ValidationException as DynamoDB does. A missing
 * optional parameter yields the default and returns 0. */
const cJSON *req_get(const cJSON *o, const char *name); /* case-sensitive; NULL if absent or null */
int req_string(op_ctx *c, const cJSON *o, const char *name, bool required, const char **out);
/* A required member (any JSON type): NULL with DynamoDB's "Value null at
 * '<name>'" ValidationException (name with a lower-case first letter) if absent. */
const cJSON *req_required(op_ctx *c, const cJSON *o, const char *name);
int req_bool(op_ctx *c, const cJSON *o, const char *name, bool *out);
int req_int(op_ctx *c, const cJSON *o, const char *name, bool *present, long long *out);

/* Collects DynamoDB constraint violations of one request and reports them
 * together: "2 validation errors detected: Value ...; Value ...". */
typedef struct verrs {
    int n;
    size_t off;
    char msg[960];
} verrs;
void verr_add(verrs *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns 0 if nothing was collected, else -1 with c->e set. */
int verr_finish(op_ctx *c, const verrs *v);
/* Adds the enum-constraint violation for val (if set and not one of the n
 * allowed values); listing is how DynamoDB prints the set, e.g. "NONE, TOTAL". */
void verr_check_enum(verrs *v, const char *param, const char *val, const char *const *allowed,
                     size_t n, const char *listing);

/* Looks up TableName (validating it: 3-255 chars of [a-zA-Z0-9_.-]) in the
 * caller's account. ResourceNotFoundException "Requested resource not found"
 * if absent. The returned table is counted: release with table_release(). */
int req_table(op_ctx *c, const char *name, table **out);
int req_table_name(op_ctx *c, const char *param, const char *name);

/* Builds an expression environment from ExpressionAttributeNames and
 * ExpressionAttributeValues of object o (usually c->req). */
int req_expr_env(op_ctx *c, const cJSON *o, expr_env *env);

/* Parses a Key map (exactly the table's key attributes, right types,
 * non-empty, within size limits) into pk/sk. DynamoDB's message for any
 * mismatch: "The provided key element does not match the schema". */
int req_key(op_ctx *c, table *t, const cJSON *key_json, const mv_value **pk, const mv_value **sk);
/* Extracts and validates the key attributes of a full item (PutItem,
 * BatchWriteItem): missing key, type mismatch, empty string/binary, key size
 * limits, each with DynamoDB's message. */
int req_item_key(op_ctx *c, table *t, const mv_value *item, const mv_value **pk,
                 const mv_value **sk);
/* Checks an item (after an update, or a put) against the 400 KB limit;
 * `update` selects the UpdateItem wording. */
int req_check_item_size(op_ctx *c, const mv_value *item, bool update);
/* A map with only the key attributes of item (for LastEvaluatedKey). */
mv_value *req_key_map(op_ctx *c, table *t, const mv_value *item);

/* Starts a member of the response object being written: `"key":`, preceded
 * by a comma unless *first (which it then clears). */
void resp_key(op_ctx *c, bool *first, const char *key);
/* Writes "ConsumedCapacity" if ReturnConsumedCapacity asks for it (TOTAL or
 * INDEXES). */
void req_consumed_capacity(op_ctx *c, bool *first, const char *table, double units);

#endif
