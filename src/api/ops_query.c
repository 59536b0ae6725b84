/* ops_query.c - Query and Scan: the two operations that read a range of items.
 *
 * Both reduce to one walk over a [lo, hi) range of storage keys (codec.h):
 *   Query  one partition, table_id | hash32(enc(pk)) | enc(pk), narrowed by
 *          the sort key condition to a sub-range, walked forward or backward;
 *   Scan   the table's keys, table_id | hash32 ..., or for a parallel scan the
 *          part of the 32-bit hash space that belongs to the segment.
 * ExclusiveStartKey only moves one end of the range (strictly past the key in
 * the walk's direction). The walk (run_page) decodes each record, applies the
 * FilterExpression and the projection to each live item, and streams the
 * response into c->out.
 *
 * The work of one page is bounded, as in DynamoDB, whose page ends when Limit
 * items were evaluated or 1 MB was read. Here the records walked include the
 * tombstones a delete in a global table leaves until tombstone collection
 * removes them (docs/REPLICATION.md), which a table can hold any number of.
 * So a page skips at most PAGE_MAX_TOMBSTONES (10,000) tombstones, and the 1 MB
 * read counts both the items evaluated (mv_item_size, DynamoDB's item size)
 * and the tombstones skipped (their stored key and record bytes). The walk
 * stops before the next record when the page is full for it:
 *   an item       once Limit items were evaluated or 1 MB was read;
 *   a tombstone   once PAGE_MAX_TOMBSTONES were skipped or 1 MB was read.
 * So a page examines at most Limit items, PAGE_MAX_TOMBSTONES tombstones and
 * about 1 MB (plus the one record it stops before), and then carries
 * LastEvaluatedKey: the key of the last record it examined (evaluated or
 * skipped): an item's, or a tombstone's, which is a key of the table like any
 * other, so ExclusiveStartKey resumes right after it, and which keeps the
 * next page from walking the same tombstones again. Such a page may hold no
 * item at all, as DynamoDB allows; clients page on while LastEvaluatedKey is
 * present. A page that reaches the end of its range carries none (a full
 * page looks past tombstones, within the budget, for another item first).
 * Count and ScannedCount count items only, as in DynamoDB (ScannedCount: the
 * items evaluated before the filter): tombstones are deleted items, invisible
 * to every read, and ScannedCount == Count without a filter stays true. The
 * consumed capacity is that of the items evaluated. Skipped tombstones are
 * counted in meridian_tombstones_skipped_total.
 *
 * Validation follows DynamoDB's order: constraint violations of the
 * parameters (collected into one "N validation errors detected" message),
 * then the expression parameters, the ExclusiveStartKey's attribute values,
 * Select against ProjectionExpression, the expressions themselves and their
 * placeholders, and only then the table (ResourceNotFoundException), its
 * indexes and key schema. Everything lives in the request arena except the
 * store iterator (freed before returning) and transient bufs.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "api/ops.h"
#include "item/codec.h"
#include "item/json.h"

static bool name_char_ok(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

/* TableName / IndexName: 3-255 characters of [a-zA-Z0-9_.-]. */
static void check_name(verrs *v, const char *param, const char *name, bool required)
{
    if (!name) {
        if (required)
            verr_add(v, "Value null at '%s' failed to satisfy constraint: Member must not be null",
                     param);
        return;
    }
    size_t n = strlen(name);
    bool bad = false;
    for (size_t i = 0; i < n; i++)
        if (!name_char_ok(name[i])) bad = true;
    if (bad)
        verr_add(v,
                 "Value '%.300s' at '%s' failed to satisfy constraint: Member must satisfy "
                 "regular expression pattern: [a-zA-Z0-9_.-]+",
                 name, param);
    if (n < 3 || n > 255)
        verr_add(v,
                 "Value '%.300s' at '%s' failed to satisfy constraint: Member must have length %s",
                 name, param, n < 3 ? "greater than or equal to 3" : "less than or equal to 255");
}

/* ---- byte strings (storage keys and bounds) ---- */

typedef struct bytes {
    const uint8_t *p; /* NULL: no bound */
    size_t n;
} bytes;

static bytes bytes_take(arena *a, buf *b)
{
    bytes r = {(const uint8_t *)arena_memdup(a, b->data, b->len), b->len};
    buf_free(b);
    return r;
}

static int bytes_cmp(bytes x, bytes y)
{
    size_t n = x.n < y.n ? x.n : y.n;
    int r = n ? memcmp(x.p, y.p, n) : 0;
    if (r) return r;
    return x.n < y.n ? -1 : x.n > y.n;
}

/* The smallest byte string greater than k: k followed by 0x00. */
static bytes bytes_after(arena *a, bytes k)
{
    uint8_t *p = arena_alloc(a, k.n + 1);
    memcpy(p, k.p, k.n);
    p[k.n] = 0x00;
    return (bytes){p, k.n + 1};
}

/* The smallest byte string greater than every string that starts with k
 * (trailing 0xFF bytes dropped, the last remaining byte incremented), or
 * {NULL, 0} if there is none (k empty or all 0xFF). */
static bytes bytes_prefix_end(arena *a, bytes k)
{
    size_t n = k.n;
    while (n > 0 && k.p[n - 1] == 0xFF)
        n--;
    if (n == 0) return (bytes){NULL, 0};
    uint8_t *p = (uint8_t *)arena_memdup(a, k.p, n);
    p[n - 1]++;
    return (bytes){p, n};
}

static bytes key_of_partition(arena *a, uint64_t id, const mv_value *pk)
{
    buf b;
    buf_init(&b);
    key_encode_partition(&b, id, pk);
    return bytes_take(a, &b);
}

static bytes key_of_item(arena *a, uint64_t id, const mv_value *pk, const mv_value *sk)
{
    buf b;
    buf_init(&b);
    key_encode_item(&b, id, pk, sk);
    return bytes_take(a, &b);
}

/* prefix | enc(v) */
static bytes key_plus(arena *a, bytes prefix, const mv_value *v)
{
    buf b;
    buf_init(&b);
    buf_append(&b, prefix.p, prefix.n);
    key_encode_scalar(&b, v);
    return bytes_take(a, &b);
}

/* ---- parameters shared by Query and Scan ---- */

typedef enum select_kind {
    SEL_ALL = 0,
    SEL_SPECIFIC,
    SEL_COUNT,
    SEL_PROJECTED,
} select_kind;

typedef struct page_req {
    bool is_query;
    const char *table_name;
    const char *index_name;
    const char *select;
    const char *rcc; /* ReturnConsumedCapacity */
    const char *kce; /* KeyConditionExpression (Query) */
    const char *filter_text;
    const char *proj_text;
    bool has_limit;
    long long limit;
    bool consistent;
    bool forward; /* ScanIndexForward (Query) */
    bool has_segment, has_total;
    long long segment, total;
    const cJSON *esk_json; /* ExclusiveStartKey */

    select_kind sel;
    expr_env env;
    expr_node *key_cond;
    expr_node *filter;
    expr_projection *proj;
} page_req;

static const char *const SELECT_VALUES[] = {"SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES",
                                            "ALL_PROJECTED_ATTRIBUTES"};
static const char *const RCC_VALUES[] = {"INDEXES", "TOTAL", "NONE"};

/* Reads every parameter (type errors fail at once, as a SerializationException)
 * and collects the constraint violations into one ValidationException. */
static int read_params(op_ctx *c, page_req *p)
{
    const cJSON *r = c->req;
    p->forward = true;
    if (req_string(c, r, "TableName", false, &p->table_name) < 0 ||
        req_string(c, r, "IndexName", false, &p->index_name) < 0 ||
        req_string(c, r, "Select", false, &p->select) < 0 ||
        req_string(c, r, "ReturnConsumedCapacity", false, &p->rcc) < 0 ||
        req_string(c, r, "FilterExpression", false, &p->filter_text) < 0 ||
        req_string(c, r, "ProjectionExpression", false, &p->proj_text) < 0 ||
        req_bool(c, r, "ConsistentRead", &p->consistent) < 0 ||
        req_int(c, r, "Limit", &p->has_limit, &p->limit) < 0)
        return -1;
    if (p->is_query) {
        if (req_string(c, r, "KeyConditionExpression", false, &p->kce) < 0 ||
            req_bool(c, r, "ScanIndexForward", &p->forward) < 0)
            return -1;
    } else {
        if (req_int(c, r, "Segment", &p->has_segment, &p->segment) < 0 ||
            req_int(c, r, "TotalSegments", &p->has_total, &p->total) < 0)
            return -1;
    }
    p->esk_json = req_get(r, "ExclusiveStartKey");
    if (p->esk_json && !cJSON_IsObject(p->esk_json))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");

    verrs v;
    memset(&v, 0, sizeof(v));
    if (p->has_limit && p->limit < 1)
        verr_add(&v,
                 "Value '%lld' at 'limit' failed to satisfy constraint: Member must have value "
                 "greater than or equal to 1",
                 p->limit);
    verr_check_enum(&v, "returnConsumedCapacity", p->rcc, RCC_VALUES, 3, "INDEXES, TOTAL, NONE");
    if (!p->is_query && p->has_segment) {
        if (p->segment < 0)
            verr_add(&v,
                     "Value '%lld' at 'segment' failed to satisfy constraint: Member must have "
                     "value greater than or equal to 0",
                     p->segment);
        else if (p->segment > 999999)
            verr_add(&v,
                     "Value '%lld' at 'segment' failed to satisfy constraint: Member must have "
                     "value less than or equal to 999999",
                     p->segment);
    }
    verr_check_enum(&v, "select", p->select, SELECT_VALUES, 4,
                    "SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES");
    if (!p->is_query && p->has_total) {
        if (p->total < 1)
            verr_add(&v,
                     "Value '%lld' at 'totalSegments' failed to satisfy constraint: Member must "
                     "have value greater than or equal to 1",
                     p->total);
        else if (p->total > 1000000)
            verr_add(&v,
                     "Value '%lld' at 'totalSegments' failed to satisfy constraint: Member must "
                     "have value less than or equal to 1000000",
                     p->total);
    }
    check_name(&v, "tableName", p->table_name, true);
    check_name(&v, "indexName", p->index_name, false);
    return verr_finish(c, &v);
}

/* Expression and non-expression (legacy) parameters: DynamoDB's rules and
 * messages for mixing them; legacy parameters alone are not supported here. */
static int check_expression_params(op_ctx *c, const page_req *p)
{
    static const char *const q_expr[] = {"ProjectionExpression", "FilterExpression",
                                         "KeyConditionExpression"};
    static const char *const q_legacy[] = {"AttributesToGet", "QueryFilter", "ConditionalOperator",
                                           "KeyConditions"};
    static const char *const s_legacy[] = {"AttributesToGet", "ScanFilter", "ConditionalOperator"};
    static const char *const modern[] = {"ProjectionExpression", "FilterExpression",
                                         "FilterExpression", "KeyConditionExpression"};
    const char *const *legacy = p->is_query ? q_legacy : s_legacy;
    size_t n_expr = p->is_query ? 3 : 2, n_legacy = p->is_query ? 4 : 3;

    char exprs[128] = "", legs[128] = "";
    size_t eo = 0, lo = 0;
    for (size_t i = 0; i < n_expr; i++)
        if (req_get(c->req, q_expr[i]))
            eo +=
                (size_t)snprintf(exprs + eo, sizeof(exprs) - eo, "%s%s", eo ? ", " : "", q_expr[i]);
    if (eo) {
        /* KeyConditions with the other expressions but without
         * KeyConditionExpression is not a mix (DynamoDB's special case). */
        bool kc_alone = p->is_query && !p->kce;
        for (size_t i = 0; i < n_legacy; i++) {
            if (kc_alone && strcmp(legacy[i], "KeyConditions") == 0) continue;
            if (req_get(c->req, legacy[i]))
                lo += (size_t)snprintf(legs + lo, sizeof(legs) - lo, "%s%s", lo ? ", " : "",
                                       legacy[i]);
        }
        if (lo)
            return err_validation(c->e,
                                  "Can not use both expression and non-expression parameters in "
                                  "the same request: Non-expression parameters: {%s} Expression "
                                  "parameters: {%s}",
                                  legs, exprs);
    }
    if (req_get(c->req, "ExpressionAttributeNames") && !eo)
        return err_validation(c->e, "ExpressionAttributeNames can only be specified when using "
                                    "expressions");
    if (req_get(c->req, "ExpressionAttributeValues") && !p->filter_text && !p->kce)
        return err_validation(c->e,
                              "ExpressionAttributeValues can only be specified when using "
                              "expressions: %s",
                              p->is_query ? "FilterExpression and KeyConditionExpression are null"
                                          : "FilterExpression is null");
    for (size_t i = 0; i < n_legacy; i++)
        if (req_get(c->req, legacy[i]))
            return err_validation(c->e,
                                  "The legacy parameter %s is not supported by Meridian; use %s "
                                  "instead",
                                  legacy[i], modern[i]);
    return 0;
}

/* Select against ProjectionExpression and IndexName. */
static int check_select(op_ctx *c, page_req *p)
{
    const char *s = p->select;
    if (!s)
        p->sel = p->proj_text ? SEL_SPECIFIC : SEL_ALL;
    else if (strcmp(s, "ALL_ATTRIBUTES") == 0)
        p->sel = SEL_ALL;
    else if (strcmp(s, "SPECIFIC_ATTRIBUTES") == 0)
        p->sel = SEL_SPECIFIC;
    else if (strcmp(s, "COUNT") == 0)
        p->sel = SEL_COUNT;
    else
        p->sel = SEL_PROJECTED;
    if (p->proj_text && p->sel != SEL_SPECIFIC)
        return err_validation(c->e,
                              "Cannot specify the ProjectionExpression when choosing to get %s",
                              p->sel == SEL_COUNT ? "only the Count" : s);
    if (p->sel == SEL_SPECIFIC && !p->proj_text)
        return err_validation(c->e, "1 validation error detected: Must specify the "
                                    "AttributesToGet or ProjectionExpression when choosing to "
                                    "get SPECIFIC_ATTRIBUTES");
    if (p->sel == SEL_PROJECTED && !p->index_name)
        return err_validation(c->e, "ALL_PROJECTED_ATTRIBUTES can be used only when Querying "
                                    "using an IndexName");
    return 0;
}

/* Parses ExclusiveStartKey's attribute values (before the table is known). */
static int parse_start_key(op_ctx *c, const page_req *p)
{
    if (!p->esk_json) return 0;
    mv_value *m = mv_map_from_json(c->a, p->esk_json, c->e);
    if (m) return 0;
    if (c->e->code == ERR_VALIDATION) {
        char msg[sizeof(c->e->msg)];
        snprintf(msg, sizeof(msg), "%s", c->e->msg);
        return err_validation(c->e, "The provided starting key is invalid: %s", msg);
    }
    return -1;
}

/* The start key against the table's key schema (exactly its key attributes). */
static int start_key(op_ctx *c, table *t, const page_req *p, const mv_value **pk,
                     const mv_value **sk)
{
    if (req_key(c, t, p->esk_json, pk, sk) == 0) return 0;
    if (c->e->code == ERR_VALIDATION) {
        char msg[sizeof(c->e->msg)];
        snprintf(msg, sizeof(msg), "%s", c->e->msg);
        return err_validation(c->e, "The provided starting key is invalid: %s", msg);
    }
    return -1;
}

/* Parses every expression of the request into one placeholder environment,
 * then rejects unused placeholders. */
static int parse_expressions(op_ctx *c, page_req *p)
{
    if (req_expr_env(c, c->req, &p->env) < 0) return -1;
    if (p->kce && expr_parse_condition(&p->env, EXPR_KEY_CONDITION, p->kce, &p->key_cond, c->e) < 0)
        return -1;
    if (p->filter_text &&
        expr_parse_condition(&p->env, EXPR_FILTER, p->filter_text, &p->filter, c->e) < 0)
        return -1;
    if (p->proj_text && expr_parse_projection(&p->env, p->proj_text, &p->proj, c->e) < 0) return -1;
    return expr_env_check_unused(&p->env, c->e);
}

/* ---- the walk ---- */

/* Tombstones one page skips at most (see the file header): a walk of a few
 * milliseconds (measured: a Limit=1 Query page over 10,000 tombstones takes
 * 2.5-4.5 ms end to end, a one-item page 0.8 ms). */
#define PAGE_MAX_TOMBSTONES 10000

/* meridian_tombstones_skipped_total: tombstones skipped by every page. */
static _Atomic uint64_t tombstones_skipped;

void query_render_metrics(buf *out)
{
    buf_printf(out,
               "# HELP meridian_tombstones_skipped_total Tombstones Query and Scan pages walked "
               "over (at most %d per page).\n"
               "# TYPE meridian_tombstones_skipped_total counter\n"
               "meridian_tombstones_skipped_total %llu\n",
               PAGE_MAX_TOMBSTONES,
               (unsigned long long)atomic_load_explicit(&tombstones_skipped, memory_order_relaxed));
}

/* Read capacity of a page: 4 KB units of the item data evaluated, at least
 * one; eventually consistent reads cost half. */
static double read_units(size_t nbytes, bool consistent)
{
    size_t units = (nbytes + 4095) / 4096;
    if (units == 0) units = 1;
    return consistent ? (double)units : (double)units * 0.5;
}

/* Positions it on the first key of [lo, hi) in the walk's direction. */
static void iter_start(store_iter *it, bytes lo, bytes hi, bool forward)
{
    if (forward) {
        store_iter_seek(it, lo.p, lo.n);
        return;
    }
    if (!hi.p) {
        store_iter_last(it);
        return;
    }
    store_iter_seek_for_prev(it, hi.p, hi.n);
    if (store_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = store_iter_key(it, &kl);
        if (bytes_cmp((bytes){k, kl}, hi) >= 0) store_iter_prev(it);
    }
}

/* The page's LastEvaluatedKey when its last record examined was a
 * tombstone: the key attributes decoded from its storage key. */
static const mv_value *key_map_of_storage_key(op_ctx *c, table *t, const buf *key)
{
    mv_value *pk, *sk;
    if (key_decode_item(c->a, key->data, key->len, t->pk_type, t->sk_name ? t->sk_type : 0, &pk,
                        &sk) < 0)
        return NULL;
    mv_member *m = arena_calloc(c->a, 2, sizeof(mv_member));
    size_t n = 0;
    m[n++] = (mv_member){t->pk_name, strlen(t->pk_name), pk};
    if (t->sk_name) m[n++] = (mv_member){t->sk_name, strlen(t->sk_name), sk};
    return mv_new_map(c->a, m, n);
}

/* Walks [lo, hi) and writes the whole response object. */
static int run_page(op_ctx *c, table *t, const page_req *p, bytes lo, bytes hi, bool forward)
{
    size_t count = 0, scanned = 0, skipped = 0;
    size_t item_bytes = 0; /* items evaluated: the consumed capacity */
    size_t read_bytes = 0; /* items evaluated and tombstones skipped: the 1 MB */
    /* The last record examined: the item `last`, or if that is NULL the
     * tombstone whose storage key is last_tomb. */
    const mv_value *last = NULL;
    buf last_tomb;
    buf_init(&last_tomb);
    bool more = false, first = true, first_item = true;

    buf_putc(c->out, '{');
    if (p->sel != SEL_COUNT) {
        resp_key(c, &first, "Items");
        buf_putc(c->out, '[');
    }
    if (!hi.p || bytes_cmp(lo, hi) < 0) {
        store_iter *it = store_iter_new(c->d->st, STORE_CF_ITEMS, lo.p, lo.n, hi.p, hi.n);
        int rc = 0;
        for (iter_start(it, lo, hi, forward); store_iter_valid(it);
             forward ? store_iter_next(it) : store_iter_prev(it)) {
            size_t kl, vl;
            const uint8_t *k = store_iter_key(it, &kl);
            bytes key = {k, kl};
            if (bytes_cmp(key, lo) < 0 || (hi.p && bytes_cmp(key, hi) >= 0)) break;
            const uint8_t *v = store_iter_value(it, &vl);
            item_record rec;
            if (record_decode(c->a, v, vl, &rec) < 0) {
                rc = err_set(c->e, ERR_INTERNAL, "corrupt item record in storage");
                break;
            }
            if (rec.tombstone || !rec.item) {
                if (skipped >= PAGE_MAX_TOMBSTONES || read_bytes >= PAGE_MAX_BYTES) {
                    more = true;
                    break;
                }
                skipped++;
                read_bytes += kl + vl;
                last = NULL;
                buf_reset(&last_tomb);
                buf_append(&last_tomb, k, kl);
                continue;
            }
            /* A live item follows the page: stop here if the page is full. */
            if ((p->has_limit && scanned >= (size_t)p->limit) || read_bytes >= PAGE_MAX_BYTES) {
                more = true;
                break;
            }
            scanned++;
            size_t size = mv_item_size(rec.item);
            item_bytes += size;
            read_bytes += size;
            last = rec.item;
            if (p->filter) {
                int m = expr_eval_condition(p->filter, rec.item, c->a, c->e);
                if (m < 0) {
                    rc = -1;
                    break;
                }
                if (m == 0) continue;
            }
            count++;
            if (p->sel == SEL_COUNT) continue;
            if (!first_item) buf_putc(c->out, ',');
            first_item = false;
            mv_map_to_json(c->out, p->proj ? expr_project(p->proj, rec.item, c->a) : rec.item);
        }
        if (rc == 0 && !more && !store_iter_valid(it)) rc = store_iter_status(it, c->e);
        store_iter_free(it);
        atomic_fetch_add_explicit(&tombstones_skipped, skipped, memory_order_relaxed);
        if (rc < 0) {
            buf_free(&last_tomb);
            return -1;
        }
    }
    /* A page stops only after examining a record (Limit >= 1, and the byte and
     * tombstone budgets are reached only by records examined). */
    const mv_value *lek = NULL;
    if (more && last)
        lek = req_key_map(c, t, last);
    else if (more && last_tomb.len) {
        lek = key_map_of_storage_key(c, t, &last_tomb);
        if (!lek) {
            buf_free(&last_tomb);
            return err_set(c->e, ERR_INTERNAL, "corrupt item key in storage");
        }
    }
    buf_free(&last_tomb);
    if (p->sel != SEL_COUNT) buf_putc(c->out, ']');
    resp_key(c, &first, "Count");
    buf_printf(c->out, "%zu", count);
    resp_key(c, &first, "ScannedCount");
    buf_printf(c->out, "%zu", scanned);
    if (lek) {
        resp_key(c, &first, "LastEvaluatedKey");
        mv_map_to_json(c->out, lek);
    }
    req_consumed_capacity(c, &first, t->name, read_units(item_bytes, p->consistent));
    buf_putc(c->out, '}');
    return 0;
}

/* ---- Query ---- */

/* Whether sort key value v satisfies the key condition's sort key part. */
static bool sk_matches(const expr_key_cond *kc, const mv_value *v)
{
    if (kc->sk_op == SK_NONE) return true;
    if (!v || v->type != kc->sk_a->type) return false;
    int r = mv_compare_scalar(v, kc->sk_a);
    switch (kc->sk_op) {
    case SK_EQ:
        return r == 0;
    case SK_LT:
        return r < 0;
    case SK_LE:
        return r <= 0;
    case SK_GT:
        return r > 0;
    case SK_GE:
        return r >= 0;
    case SK_BETWEEN:
        return r >= 0 && kc->sk_b && v->type == kc->sk_b->type &&
               mv_compare_scalar(v, kc->sk_b) <= 0;
    case SK_BEGINS_WITH:
        return v->u.str.len >= kc->sk_a->u.str.len &&
               memcmp(v->u.str.ptr, kc->sk_a->u.str.ptr, kc->sk_a->u.str.len) == 0;
    case SK_NONE:
        break;
    }
    return false;
}

/* Query's FilterExpression may not refer to key attributes. */
static int check_filter_keys(op_ctx *c, table *t, const expr_node *filter)
{
    if (!filter) return 0;
    const expr_projection *paths = expr_condition_paths(filter, c->a);
    const char *keys[2] = {t->pk_name, t->sk_name};
    for (size_t k = 0; k < 2; k++) {
        if (!keys[k]) continue;
        size_t kl = strlen(keys[k]);
        for (size_t i = 0; i < paths->n; i++) {
            const expr_path *pa = &paths->paths[i];
            if (pa->n > 0 && !pa->elems[0].is_index && pa->elems[0].name_len == kl &&
                memcmp(pa->elems[0].name, keys[k], kl) == 0)
                return err_validation(c->e,
                                      "Filter Expression can only contain non-primary key "
                                      "attributes: Primary key attribute: %s",
                                      keys[k]);
        }
    }
    return 0;
}

/* The [lo, hi) range of storage keys holding exactly the items of partition
 * kc->pk whose sort key satisfies the condition. P = table_id | hash | enc(pk)
 * is a prefix of every key of the partition and of no other key (enc is
 * self-delimiting), so the partition is [P, end(P)), end() as in
 * bytes_prefix_end. Within it, keys are P | enc(sk) and memcmp order of
 * enc(sk) is the sort key order, so each comparison becomes a bound:
 *   sk = v  [P|enc(v), P|enc(v)|00)      (P|enc(v) is the only key there,
 *   sk < v  [P, P|enc(v))                 since no encoding extends another)
 *   sk <= v [P, P|enc(v)|00)
 *   sk > v  [P|enc(v)|00, end(P))
 *   sk >= v [P|enc(v), end(P))
 *   a..b    [P|enc(a), P|enc(b)|00)
 * begins_with(sk, p), for S and B (memcmp order of the raw bytes): s starts
 * with p exactly when p <= s < succ(p), where succ(p) is p with its trailing
 * 0xFF bytes dropped and its last byte incremented - the smallest string
 * above every extension of p (no succ when p is empty or all 0xFF: then every
 * s >= p qualifies). Because enc preserves order this is the key range
 * [P|enc(p), P|enc(succ(p))), or [P|enc(p), end(P)) without succ. This relies
 * only on codec.h's promise (order-preserving, self-delimiting), not on the
 * escape scheme; with codec.c's scheme (0x00 -> 0x00 0xFF, terminator
 * 0x00 0x01) it equals the bound obtained by encoding p without its
 * terminator: enc(s) for every extension s of p starts with the escaped bytes
 * of p, and P|enc(succ(p)) is the first key past all of them. succ(p) may not
 * be valid UTF-8 for an S key; it is only ever encoded as a bound, and the
 * key encoding is bytewise. */
static void query_range(arena *a, table *t, const expr_key_cond *kc, bytes *lo, bytes *hi)
{
    bytes part = key_of_partition(a, t->id, kc->pk);
    *lo = part;
    *hi = bytes_prefix_end(a, part);
    switch (kc->sk_op) {
    case SK_NONE:
        break;
    case SK_EQ:
        *lo = key_plus(a, part, kc->sk_a);
        *hi = bytes_after(a, *lo);
        break;
    case SK_LT:
        *hi = key_plus(a, part, kc->sk_a);
        break;
    case SK_LE:
        *hi = bytes_after(a, key_plus(a, part, kc->sk_a));
        break;
    case SK_GT:
        *lo = bytes_after(a, key_plus(a, part, kc->sk_a));
        break;
    case SK_GE:
        *lo = key_plus(a, part, kc->sk_a);
        break;
    case SK_BETWEEN:
        *lo = key_plus(a, part, kc->sk_a);
        *hi = bytes_after(a, key_plus(a, part, kc->sk_b));
        break;
    case SK_BEGINS_WITH: {
        *lo = key_plus(a, part, kc->sk_a);
        bytes pre = {(const uint8_t *)kc->sk_a->u.str.ptr, kc->sk_a->u.str.len};
        bytes succ = bytes_prefix_end(a, pre);
        if (succ.p) {
            mv_value *sv = mv_new_str(a, kc->sk_a->type, (const char *)succ.p, succ.n);
            *hi = key_plus(a, part, sv);
        }
        break;
    }
    }
}

int op_query(op_ctx *c)
{
    page_req p;
    memset(&p, 0, sizeof(p));
    p.is_query = true;
    if (read_params(c, &p) < 0) return -1;
    if (check_expression_params(c, &p) < 0) return -1;
    if (parse_start_key(c, &p) < 0) return -1;
    if (!p.kce)
        return err_validation(c->e, "Either the KeyConditions or KeyConditionExpression "
                                    "parameter must be specified in the request.");
    if (check_select(c, &p) < 0) return -1;
    if (parse_expressions(c, &p) < 0) return -1;

    table *t = NULL;
    if (req_table(c, p.table_name, &t) < 0) return -1;
    int rc = -1;
    if (p.index_name) {
        err_validation(c->e, "The table does not have the specified index: %s", p.index_name);
        goto out;
    }
    expr_key_cond kc;
    if (expr_key_condition(p.key_cond, t->pk_name, t->pk_type, t->sk_name, t->sk_type, &kc, c->e) <
        0)
        goto out;
    /* expr_key_condition guarantees these; mv_compare_scalar needs them. */
    if (kc.pk->type != t->pk_type || (kc.sk_op != SK_NONE && kc.sk_a->type != t->sk_type) ||
        (kc.sk_op == SK_BETWEEN && (!kc.sk_b || kc.sk_b->type != t->sk_type))) {
        err_validation(c->e, "One or more parameter values were invalid: Condition parameter "
                             "type does not match schema type");
        goto out;
    }
    if (check_filter_keys(c, t, p.filter) < 0) goto out;

    bytes lo, hi;
    query_range(c->a, t, &kc, &lo, &hi);
    if (p.esk_json) {
        const mv_value *epk, *esk;
        if (start_key(c, t, &p, &epk, &esk) < 0) goto out;
        if (mv_compare_scalar(epk, kc.pk) != 0) {
            if (t->sk_name)
                err_validation(c->e,
                               "The provided starting key does not match the range key predicate");
            else
                err_validation(c->e, "The provided starting key is outside query boundaries "
                                     "based on provided conditions");
            goto out;
        }
        if (!sk_matches(&kc, esk)) {
            err_validation(c->e,
                           "The provided starting key does not match the range key predicate");
            goto out;
        }
        bytes sk = key_of_item(c->a, t->id, epk, esk);
        if (p.forward)
            lo = bytes_after(c->a, sk);
        else
            hi = sk;
    }
    rc = run_page(c, t, &p, lo, hi, p.forward);
out:
    table_release(t);
    return rc;
}

/* ---- Scan ---- */

/* Segment `seg` of `total` covers hash32 values [seg*2^32/total,
 * (seg+1)*2^32/total) of the table's keys: bounds table_id | hash (12 bytes);
 * the last segment ends at table_id + 1 (8 bytes), the end of the table. */
static void scan_range(arena *a, table *t, long long seg, long long total, bytes *lo, bytes *hi)
{
    uint8_t *l = arena_alloc(a, 12);
    store_u64be(l, t->id);
    store_u32be(l + 8, (uint32_t)(((uint64_t)seg << 32) / (uint64_t)total));
    *lo = (bytes){l, 12};
    if (seg + 1 < total) {
        uint8_t *h = arena_alloc(a, 12);
        store_u64be(h, t->id);
        store_u32be(h + 8, (uint32_t)(((uint64_t)(seg + 1) << 32) / (uint64_t)total));
        *hi = (bytes){h, 12};
    } else if (t->id == UINT64_MAX) {
        *hi = (bytes){NULL, 0};
    } else {
        uint8_t *h = arena_alloc(a, 8);
        store_u64be(h, t->id + 1);
        *hi = (bytes){h, 8};
    }
}

int op_scan(op_ctx *c)
{
    page_req p;
    memset(&p, 0, sizeof(p));
    p.is_query = false;
    if (read_params(c, &p) < 0) return -1;
    if (check_expression_params(c, &p) < 0) return -1;
    if (parse_start_key(c, &p) < 0) return -1;
    if (p.has_segment && !p.has_total)
        return err_validation(c->e, "The TotalSegments parameter is required but was not present "
                                    "in the request when Segment parameter is present");
    if (p.has_total && !p.has_segment)
        return err_validation(c->e, "The Segment parameter is required but was not present in "
                                    "the request when parameter TotalSegments is present");
    if (p.has_total && p.segment >= p.total)
        return err_validation(c->e,
                              "The Segment parameter is zero-based and must be less than "
                              "parameter TotalSegments: Segment: %lld is not less than "
                              "TotalSegments: %lld",
                              p.segment, p.total);
    if (check_select(c, &p) < 0) return -1;
    if (parse_expressions(c, &p) < 0) return -1;

    table *t = NULL;
    if (req_table(c, p.table_name, &t) < 0) return -1;
    int rc = -1;
    if (p.index_name) {
        err_validation(c->e, "The table does not have the specified index: %s", p.index_name);
        goto out;
    }
    bytes lo, hi;
    scan_range(c->a, t, p.has_total ? p.segment : 0, p.has_total ? p.total : 1, &lo, &hi);
    if (p.esk_json) {
        const mv_value *epk, *esk;
        if (start_key(c, t, &p, &epk, &esk) < 0) goto out;
        bytes sk = key_of_item(c->a, t->id, epk, esk);
        if (bytes_cmp(sk, lo) < 0 || (hi.p && bytes_cmp(sk, hi) >= 0)) {
            err_validation(c->e, "The provided Exclusive start key does not map to the provided "
                                 "Segment and TotalSegments values.");
            goto out;
        }
        lo = bytes_after(c->a, sk);
    }
    rc = run_page(c, t, &p, lo, hi, true);
out:
    table_release(t);
    return rc;
}
