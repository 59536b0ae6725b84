/* dispatch.c - authenticate, route and answer one DynamoDB request (see
 * dispatch.h). The order of checks follows DynamoDB: authentication first,
 * then the operation name, then the body. */
#include "api/dispatch.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/ops.h"
#include "item/json.h"
#include "util/log.h"

#define TARGET_PREFIX "DynamoDB_20120810."
/* Meridian's own operations (replica digests, conflicts), signed like the rest. */
#define ADMIN_PREFIX "Meridian_20261121."

typedef struct op_entry {
    const char *name;
    op_fn fn;
    bool admin; /* under ADMIN_PREFIX */
} op_entry;

static const op_entry ops[] = {
    {"BatchGetItem", op_batch_get_item, false},
    {"BatchWriteItem", op_batch_write_item, false},
    {"CreateTable", op_create_table, false},
    {"DeleteItem", op_delete_item, false},
    {"DeleteTable", op_delete_table, false},
    {"DescribeTable", op_describe_table, false},
    {"GetItem", op_get_item, false},
    {"ListTables", op_list_tables, false},
    {"PutItem", op_put_item, false},
    {"Query", op_query, false},
    {"Scan", op_scan, false},
    {"UpdateItem", op_update_item, false},
    {"UpdateTable", op_update_table, false},
    {"TableDigest", op_table_digest, true},
    {"RangeKeys", op_range_keys, true},
    {"ListConflicts", op_list_conflicts, true},
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))

size_t api_op_count(void)
{
    return N_OPS;
}

const char *api_op_name(size_t i)
{
    return i < N_OPS ? ops[i].name : "Unknown";
}

const char *api_error_type(err_code code, int *status)
{
    *status = 400;
    switch (code) {
    case ERR_VALIDATION:
        return "com.amazon.coral.validate#ValidationException";
    case ERR_CONDITIONAL_CHECK_FAILED:
        return "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException";
    case ERR_RESOURCE_NOT_FOUND:
        return "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException";
    case ERR_RESOURCE_IN_USE:
        return "com.amazonaws.dynamodb.v20120810#ResourceInUseException";
    case ERR_SERIALIZATION:
        return "com.amazon.coral.service#SerializationException";
    case ERR_UNKNOWN_OPERATION:
        return "com.amazon.coral.service#UnknownOperationException";
    case ERR_MISSING_AUTH:
        return "com.amazon.coral.service#MissingAuthenticationTokenException";
    case ERR_UNRECOGNIZED_CLIENT:
        return "com.amazon.coral.service#UnrecognizedClientException";
    case ERR_INVALID_SIGNATURE:
        return "com.amazon.coral.service#InvalidSignatureException";
    case ERR_INCOMPLETE_SIGNATURE:
        return "com.amazon.coral.service#IncompleteSignatureException";
    case ERR_ACCESS_DENIED:
        return "com.amazon.coral.service#AccessDeniedException";
    case ERR_LIMIT_EXCEEDED:
        return "com.amazonaws.dynamodb.v20120810#LimitExceededException";
    case ERR_ITEM_COLLECTION_TOO_LARGE:
        return "com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException";
    case ERR_TRANSACTION_CONFLICT:
        return "com.amazonaws.dynamodb.v20120810#TransactionConflictException";
    case ERR_UNAVAILABLE:
        *status = 503;
        return "com.amazon.coral.availability#ServiceUnavailableException";
    case ERR_NONE:
    case ERR_INTERNAL:
    default:
        *status = 500;
        return "com.amazonaws.dynamodb.v20120810#InternalServerError";
    }
}

void api_error_body(buf *out, const err *e)
{
    int status;
    const char *type = api_error_type(e->code, &status);
    buf_reset(out);
    buf_puts(out, "{\"__type\":");
    json_write_string(out, type, strlen(type));
    if (e->msg[0] || e->code != ERR_UNKNOWN_OPERATION) {
        buf_puts(out, ",\"message\":");
        json_write_string(out, e->msg, strlen(e->msg));
    }
    buf_putc(out, '}');
}

int utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned int cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void make_request_id(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Thread_local uint64_t state;
    static atomic_uint_fast64_t seed = 0x9E3779B97F4A7C15ull;
    if (!state) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state = atomic_fetch_add(&seed, 0x9E3779B97F4A7C15ull) ^ (uint64_t)ts.tv_nsec ^
                ((uint64_t)ts.tv_sec << 32);
        if (!state) state = 1;
    }
    size_t len = 52 < n - 1 ? 52 : n - 1;
    for (size_t i = 0; i < len; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out[i] = alphabet[state % 36];
    }
    out[len] = '\0';
}

static const char *find_header(const sigv4_request *req, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->headers[i].name_len == nl && strncasecmp(req->headers[i].name, name, nl) == 0) {
            *len = req->headers[i].value_len;
            return req->headers[i].value;
        }
    }
    return NULL;
}

/* The JSON protocol's content types; anything else is not an API call. */
static bool json_content_type(const char *v, size_t n)
{
    static const char *ok[] = {"application/x-amz-json-1.0", "application/x-amz-json-1.1",
                               "application/json"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t l = strlen(ok[i]);
        if (n >= l && strncasecmp(v, ok[i], l) == 0 && (n == l || v[l] == ';' || v[l] == ' '))
            return true;
    }
    return false;
}

static int route(api_server *s, const sigv4_request *req, api_response *resp, arena *a, err *e,
                 const mv_value **err_item)
{
    size_t ctl = 0;
    const char *ctype = find_header(req, "content-type", &ctl);
    if (!ctype || !json_content_type(ctype, ctl)) {
        resp->status = 404;
        return err_set(e, ERR_UNKNOWN_OPERATION, "%s", "");
    }
    const cred_entry *who = NULL;
    if (sigv4_verify(s->verifier, req, time(NULL), &who, e) < 0) return -1;

    size_t tl = 0;
    const char *target = find_header(req, "x-amz-target", &tl);
    const size_t pl = strlen(TARGET_PREFIX), al = strlen(ADMIN_PREFIX);
    bool admin = target && tl > al && strncmp(target, ADMIN_PREFIX, al) == 0;
    if (!target || (!admin && (tl <= pl || strncmp(target, TARGET_PREFIX, pl) != 0)))
        return err_set(e, ERR_UNKNOWN_OPERATION, "%s", "");
    const char *opname = target + (admin ? al : pl);
    size_t ol = tl - (admin ? al : pl);
    const op_entry *op = NULL;
    for (size_t i = 0; i < N_OPS; i++) {
        if (ops[i].admin == admin && strlen(ops[i].name) == ol &&
            memcmp(ops[i].name, opname, ol) == 0) {
            op = &ops[i];
            resp->op = (int)i;
        }
    }
    if (!op) return err_set(e, ERR_UNKNOWN_OPERATION, "%s", "");

    if (!utf8_valid(req->body, req->body_len))
        return err_set(e, ERR_SERIALIZATION, "Invalid UTF-8 in request body");
    /* The body is NUL-terminated by the HTTP layer; parsing len + 1 bytes with
     * require_null_terminated rejects trailing garbage after the object. */
    if (memchr(req->body, 0, req->body_len) || req->body[req->body_len] != '\0')
        return err_set(e, ERR_SERIALIZATION, "Malformed JSON in request body");
    cJSON *json = cJSON_ParseWithLengthOpts((const char *)req->body, req->body_len + 1, NULL, 1);
    if (!json) return err_set(e, ERR_SERIALIZATION, "Malformed JSON in request body");
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return err_set(e, ERR_SERIALIZATION, "Start of structure or map found where not expected");
    }
    op_ctx c = {
        .d = s->d,
        .repl = s->repl,
        .region = s->region,
        .account = who->account,
        .req = json,
        .a = a,
        .out = &resp->body,
        .e = e,
        .err_item = NULL,
    };
    int rc = op->fn(&c);
    *err_item = c.err_item;
    if (rc == 0 && c.version_ts)
        snprintf(resp->version, sizeof(resp->version), "%llu/%s", (unsigned long long)c.version_ts,
                 c.version_origin);
    cJSON_Delete(json);
    return rc;
}

void api_handle(api_server *s, const sigv4_request *req, api_response *resp)
{
    buf_init(&resp->body);
    resp->op = -1;
    resp->status = 0;
    resp->version[0] = '\0';
    make_request_id(resp->request_id, sizeof(resp->request_id));
    arena a;
    arena_init(&a);
    err e;
    err_clear(&e);
    const mv_value *err_item = NULL;
    if (route(s, req, resp, &a, &e, &err_item) == 0) {
        resp->status = 200;
        resp->outcome = 0;
    } else {
        api_error_body(&resp->body, &e);
        int status;
        api_error_type(e.code, &status);
        if (resp->status != 404) resp->status = status;
        if (e.code == ERR_CONDITIONAL_CHECK_FAILED && err_item) {
            resp->body.len--; /* reopen the object to add the old item */
            buf_puts(&resp->body, ",\"Item\":");
            mv_map_to_json(&resp->body, err_item);
            buf_putc(&resp->body, '}');
        }
        resp->outcome = resp->status >= 500 ? 2 : 1;
        if (resp->status >= 500)
            log_error("request %s failed: %s", resp->request_id, e.msg);
        else
            log_debug("request %s: %s: %s", resp->request_id, api_error_type(e.code, &status),
                      e.msg);
    }
    arena_free(&a);
}
