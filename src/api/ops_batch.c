/* ops_batch.c - BatchGetItem and BatchWriteItem.
 *
 * BatchGetItem reads up to 100 keys over any number of tables with db_get,
 * one at a time, streaming the items into c->out grouped by table. Once the
 * items read would push the response past 16 MB, that key and every key
 * after it (in request order) is returned in UnprocessedKeys instead, with
 * the table's ProjectionExpression, ExpressionAttributeNames and
 * ConsistentRead echoed so the client can resend them as they are.
 *
 * BatchWriteItem validates every put and delete (1-25 in total), then commits
 * them all through one db_write() call: one op per request whose mutate
 * callback returns the new item (NULL for a delete), so the whole batch is a
 * single atomic, durable group commit and UnprocessedItems is always empty.
 *
 * Validation follows DynamoDB's order: constraint violations of the request's
 * shape (one "N validation errors detected" message), then attribute values,
 * expressions, duplicates and counts, then the tables
 * (ResourceNotFoundException), then the key schema. All memory comes from the
 * request arena; the only malloc'ed objects are transient bufs freed before
 * returning, and table references, released on every path.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/ops.h"
#include "item/codec.h"
#include "item/json.h"

#define BATCH_GET_RESPONSE_MAX (16u * 1024u * 1024u)

static bool table_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > TABLE_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* A short rendering of RequestItems for constraint messages, "{T1=[...], T2=[...]}"
 * (DynamoDB prints its internal Java form, which clients cannot rely on). */
static const char *render_request_items(arena *a, const cJSON *ri)
{
    buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    const cJSON *it;
    bool first = true;
    cJSON_ArrayForEach(it, ri)
    {
        if (b.len > 200) {
            buf_puts(&b, ", ...");
            break;
        }
        buf_printf(&b, "%s%.100s=%s", first ? "" : ", ", it->string, "[...]");
        first = false;
    }
    buf_putc(&b, '}');
    const char *s = arena_memdup(a, b.data, b.len);
    buf_free(&b);
    return s;
}

/* "[<first element as JSON>, ...]" for a long list in a constraint message. */
static const char *render_list(arena *a, const cJSON *list)
{
    char *first = list->child ? cJSON_PrintUnformatted(list->child) : NULL;
    const char *s;
    if (first && strlen(first) <= 200)
        s = arena_sprintf(a, "[%s, ...]", first);
    else
        s = "[...]";
    cJSON_free(first);
    return s;
}

static const char *const RCC_VALUES[] = {"INDEXES", "TOTAL", "NONE"};
static const char *const RICM_VALUES[] = {"SIZE", "NONE"};

/* Writes `"ConsumedCapacity":[...]` (one entry per table) if asked for. */
static void batch_capacity(op_ctx *c, bool *first, size_t n, table *const *ts, const double *units)
{
    const cJSON *v = req_get(c->req, "ReturnConsumedCapacity");
    if (!v || !cJSON_IsString(v) || strcmp(v->valuestring, "NONE") == 0) return;
    bool indexes = strcmp(v->valuestring, "INDEXES") == 0;
    resp_key(c, first, "ConsumedCapacity");
    buf_putc(c->out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(c->out, ',');
        buf_puts(c->out, "{\"TableName\":");
        json_write_string(c->out, ts[i]->name, strlen(ts[i]->name));
        buf_printf(c->out, ",\"CapacityUnits\":%g", units[i]);
        if (indexes) buf_printf(c->out, ",\"Table\":{\"CapacityUnits\":%g}", units[i]);
        buf_putc(c->out, '}');
    }
    buf_putc(c->out, ']');
}

static void release_tables(table **ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ts[i]) table_release(ts[i]);
}

/* req_item_key with BatchWriteItem's wording: a missing or mistyped key
 * attribute is "does not match the schema" here, not PutItem's message. */
static int item_key(op_ctx *c, table *t, const mv_value *item, const mv_value **pk,
                    const mv_value **sk)
{
    if (req_item_key(c, t, item, pk, sk) == 0) return 0;
    if (c->e->code == ERR_VALIDATION &&
        (strstr(c->e->msg, "Missing the key") || strstr(c->e->msg, "Type mismatch for key")))
        return err_validation(c->e, "The provided key element does not match the schema");
    return -1;
}

/* ---- BatchGetItem ---- */

typedef struct get_table {
    const char *name;
    const cJSON *spec; /* KeysAndAttributes */
    const cJSON *keys; /* array of Key maps */
    size_t nkeys;
    const char *proj_text;
    bool consistent;
    expr_env env;
    expr_projection *proj;
    mv_value **maps;           /* per key: the Key as parsed */
    const mv_value **pk, **sk; /* per key, after the table is known */
} get_table;

/* Shape of RequestItems and the constraint violations. */
static int get_shape(op_ctx *c, const cJSON *ri, get_table **out, size_t *n_out)
{
    verrs v;
    memset(&v, 0, sizeof(v));
    const char *rcc;
    if (req_string(c, c->req, "ReturnConsumedCapacity", false, &rcc) < 0) return -1;
    verr_check_enum(&v, "returnConsumedCapacity", rcc, RCC_VALUES, 3, "INDEXES, TOTAL, NONE");
    if (!ri) {
        verr_add(&v, "Value null at 'requestItems' failed to satisfy constraint: Member must not "
                     "be null");
        return verr_finish(c, &v);
    }
    if (!cJSON_IsObject(ri))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    size_t n = (size_t)cJSON_GetArraySize(ri);
    if (n == 0)
        verr_add(&v, "Value '{}' at 'requestItems' failed to satisfy constraint: Member must have "
                     "length greater than or equal to 1");
    else if (n > 100)
        verr_add(&v,
                 "Value '%s' at 'requestItems' failed to satisfy constraint: Member must have "
                 "length less than or equal to 100",
                 render_request_items(c->a, ri));
    get_table *ts = arena_calloc(c->a, n ? n : 1, sizeof(*ts));
    bool bad_name = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, ri)
    {
        if (!table_name_ok(it->string)) bad_name = true;
    }
    if (bad_name)
        verr_add(&v,
                 "Value '%s' at 'requestItems' failed to satisfy constraint: Map keys must "
                 "satisfy constraint: [Member must have length less than or equal to 255, Member "
                 "must have length greater than or equal to 3, Member must satisfy regular "
                 "expression pattern: [a-zA-Z0-9_.-]+]",
                 render_request_items(c->a, ri));
    size_t i = 0;
    cJSON_ArrayForEach(it, ri)
    {
        get_table *g = &ts[i++];
        g->name = it->string;
        g->spec = it;
        if (!cJSON_IsObject(it))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        if (req_string(c, it, "ProjectionExpression", false, &g->proj_text) < 0 ||
            req_bool(c, it, "ConsistentRead", &g->consistent) < 0)
            return -1;
        g->keys = req_get(it, "Keys");
        if (!g->keys) {
            verr_add(&v,
                     "Value null at 'requestItems.%.255s.member.keys' failed to satisfy "
                     "constraint: Member must not be null",
                     g->name);
            continue;
        }
        if (!cJSON_IsArray(g->keys))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        g->nkeys = (size_t)cJSON_GetArraySize(g->keys);
        if (g->nkeys == 0)
            verr_add(&v,
                     "Value '[]' at 'requestItems.%.255s.member.keys' failed to satisfy "
                     "constraint: Member must have length greater than or equal to 1",
                     g->name);
        else if (g->nkeys > BATCH_GET_MAX)
            verr_add(&v,
                     "Value '%s' at 'requestItems.%.255s.member.keys' failed to satisfy "
                     "constraint: Member must have length less than or equal to 100",
                     render_list(c->a, g->keys), g->name);
    }
    if (verr_finish(c, &v) < 0) return -1;
    *out = ts;
    *n_out = n;
    return 0;
}

/* Per table: expression parameters, key values, duplicates, the total count
 * and the projection - everything that does not need the table. */
static int get_validate(op_ctx *c, get_table *ts, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        get_table *g = &ts[i];
        bool atg = req_get(g->spec, "AttributesToGet") != NULL;
        if (atg && g->proj_text)
            return err_validation(c->e, "Can not use both expression and non-expression "
                                        "parameters in the same request: Non-expression "
                                        "parameters: {AttributesToGet} Expression parameters: "
                                        "{ProjectionExpression}");
        if (req_get(g->spec, "ExpressionAttributeNames") && !g->proj_text)
            return err_validation(c->e, "ExpressionAttributeNames can only be specified when "
                                        "using expressions");
        if (atg)
            return err_validation(c->e, "The legacy parameter AttributesToGet is not supported "
                                        "by Meridian; use ProjectionExpression instead");
        mv_value **maps = arena_calloc(c->a, g->nkeys ? g->nkeys : 1, sizeof(*maps));
        g->maps = maps;
        size_t k = 0;
        const cJSON *key;
        cJSON_ArrayForEach(key, g->keys)
        {
            if (!cJSON_IsObject(key))
                return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
            maps[k] = mv_map_from_json(c->a, key, c->e);
            if (!maps[k]) return -1;
            for (size_t j = 0; j < k; j++)
                if (mv_equal(maps[j], maps[k]))
                    return err_validation(c->e, "Provided list of item keys contains duplicates");
            k++;
            if (++total > BATCH_GET_MAX)
                return err_validation(c->e, "Too many items requested for the BatchGetItem call");
        }
        if (req_expr_env(c, g->spec, &g->env) < 0) return -1;
        if (g->proj_text && expr_parse_projection(&g->env, g->proj_text, &g->proj, c->e) < 0)
            return -1;
        if (expr_env_check_unused(&g->env, c->e) < 0) return -1;
    }
    return 0;
}

/* Echoes a table's request with only the keys from index `from` on. */
static void write_unprocessed(op_ctx *c, const get_table *g, size_t from)
{
    json_write_string(c->out, g->name, strlen(g->name));
    buf_puts(c->out, ":{\"Keys\":[");
    size_t k = 0;
    bool first = true;
    const cJSON *key;
    cJSON_ArrayForEach(key, g->keys)
    {
        if (k++ < from) continue;
        if (!first) buf_putc(c->out, ',');
        first = false;
        mv_map_to_json(c->out, g->maps[k - 1]);
    }
    buf_putc(c->out, ']');
    if (g->proj_text) {
        buf_puts(c->out, ",\"ProjectionExpression\":");
        json_write_string(c->out, g->proj_text, strlen(g->proj_text));
    }
    const cJSON *names = req_get(g->spec, "ExpressionAttributeNames");
    if (names) {
        buf_puts(c->out, ",\"ExpressionAttributeNames\":{");
        const cJSON *nm;
        bool f = true;
        cJSON_ArrayForEach(nm, names)
        {
            if (!f) buf_putc(c->out, ',');
            f = false;
            json_write_string(c->out, nm->string, strlen(nm->string));
            buf_putc(c->out, ':');
            json_write_string(c->out, nm->valuestring, strlen(nm->valuestring));
        }
        buf_putc(c->out, '}');
    }
    if (req_get(g->spec, "ConsistentRead"))
        buf_printf(c->out, ",\"ConsistentRead\":%s", g->consistent ? "true" : "false");
    buf_putc(c->out, '}');
}

int op_batch_get_item(op_ctx *c)
{
    const cJSON *ri = req_get(c->req, "RequestItems");
    get_table *gs = NULL;
    size_t n = 0;
    if (get_shape(c, ri, &gs, &n) < 0) return -1;
    if (get_validate(c, gs, n) < 0) return -1;

    table **ts = arena_calloc(c->a, n, sizeof(*ts));
    double *units = arena_calloc(c->a, n, sizeof(double));
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        if (req_table(c, gs[i].name, &ts[i]) < 0) goto out;
    for (size_t i = 0; i < n; i++) {
        get_table *g = &gs[i];
        g->pk = arena_calloc(c->a, g->nkeys, sizeof(*g->pk));
        g->sk = arena_calloc(c->a, g->nkeys, sizeof(*g->sk));
        size_t k = 0;
        const cJSON *key;
        cJSON_ArrayForEach(key, g->keys)
        {
            if (req_key(c, ts[i], key, &g->pk[k], &g->sk[k]) < 0) goto out;
            k++;
        }
    }

    /* Read in request order until the response would exceed 16 MB; the key
     * that does not fit and all after it are unprocessed. */
    size_t cut_t = n, cut_k = 0, resp_bytes = 0;
    bool first = true;
    buf_putc(c->out, '{');
    resp_key(c, &first, "Responses");
    buf_putc(c->out, '{');
    for (size_t i = 0; i < n && cut_t == n; i++) {
        get_table *g = &gs[i];
        if (i) buf_putc(c->out, ',');
        json_write_string(c->out, g->name, strlen(g->name));
        buf_puts(c->out, ":[");
        bool first_item = true;
        for (size_t k = 0; k < g->nkeys; k++) {
            mv_value *item;
            if (db_get(c->d, ts[i], g->pk[k], g->sk[k], c->a, &item, c->e) < 0) goto out;
            size_t size = item ? mv_item_size(item) : 0;
            if (resp_bytes + size > BATCH_GET_RESPONSE_MAX) {
                cut_t = i;
                cut_k = k;
                break;
            }
            resp_bytes += size;
            size_t u = (size + 4095) / 4096;
            units[i] += (double)(u ? u : 1) * (g->consistent ? 1.0 : 0.5);
            if (!item) continue;
            if (!first_item) buf_putc(c->out, ',');
            first_item = false;
            mv_map_to_json(c->out, g->proj ? expr_project(g->proj, item, c->a) : item);
        }
        buf_putc(c->out, ']');
    }
    buf_putc(c->out, '}');
    resp_key(c, &first, "UnprocessedKeys");
    buf_putc(c->out, '{');
    for (size_t i = cut_t; i < n; i++) {
        if (i > cut_t) buf_putc(c->out, ',');
        write_unprocessed(c, &gs[i], i == cut_t ? cut_k : 0);
    }
    buf_putc(c->out, '}');
    batch_capacity(c, &first, cut_t < n ? cut_t + 1 : n, ts, units);
    buf_putc(c->out, '}');
    rc = 0;
out:
    release_tables(ts, n);
    return rc;
}

/* ---- BatchWriteItem ---- */

typedef struct write_req {
    size_t table;     /* index into the request's tables */
    mv_value *item;   /* PutRequest: the item; NULL for a DeleteRequest */
    const cJSON *key; /* DeleteRequest: the Key */
} write_req;

/* Shape of RequestItems and the constraint violations. */
static int write_shape(op_ctx *c, const cJSON *ri, size_t *n_tables)
{
    verrs v;
    memset(&v, 0, sizeof(v));
    const char *rcc, *ricm;
    if (req_string(c, c->req, "ReturnConsumedCapacity", false, &rcc) < 0 ||
        req_string(c, c->req, "ReturnItemCollectionMetrics", false, &ricm) < 0)
        return -1;
    verr_check_enum(&v, "returnConsumedCapacity", rcc, RCC_VALUES, 3, "INDEXES, TOTAL, NONE");
    verr_check_enum(&v, "returnItemCollectionMetrics", ricm, RICM_VALUES, 2, "SIZE, NONE");
    if (!ri) {
        verr_add(&v, "Value null at 'requestItems' failed to satisfy constraint: Member must not "
                     "be null");
        return verr_finish(c, &v);
    }
    if (!cJSON_IsObject(ri))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    size_t n = (size_t)cJSON_GetArraySize(ri);
    if (n == 0)
        verr_add(&v, "Value '{}' at 'requestItems' failed to satisfy constraint: Member must have "
                     "length greater than or equal to 1");
    bool bad_name = false, bad_len = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, ri)
    {
        if (!table_name_ok(it->string)) bad_name = true;
        if (!cJSON_IsArray(it))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        int len = cJSON_GetArraySize(it);
        if (len < 1 || len > BATCH_WRITE_MAX) bad_len = true;
    }
    if (bad_name)
        verr_add(&v,
                 "Value '%s' at 'requestItems' failed to satisfy constraint: Map keys must "
                 "satisfy constraint: [Member must have length less than or equal to 255, Member "
                 "must have length greater than or equal to 3, Member must satisfy regular "
                 "expression pattern: [a-zA-Z0-9_.-]+]",
                 render_request_items(c->a, ri));
    if (bad_len)
        verr_add(&v,
                 "Value '%s' at 'requestItems' failed to satisfy constraint: Map value must "
                 "satisfy constraint: [Member must have length less than or equal to 25, Member "
                 "must have length greater than or equal to 1]",
                 render_request_items(c->a, ri));
    cJSON_ArrayForEach(it, ri)
    {
        size_t i = 0;
        const cJSON *wr;
        cJSON_ArrayForEach(wr, it)
        {
            i++;
            if (!cJSON_IsObject(wr))
                return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
            const cJSON *put = req_get(wr, "PutRequest"), *del = req_get(wr, "DeleteRequest");
            if ((put && !cJSON_IsObject(put)) || (del && !cJSON_IsObject(del)))
                return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
            if (del && !req_get(del, "Key"))
                verr_add(&v,
                         "Value null at 'requestItems.%.255s.member.%zu.member.deleteRequest.key' "
                         "failed to satisfy constraint: Member must not be null",
                         it->string, i);
            if (put && !req_get(put, "Item"))
                verr_add(&v,
                         "Value null at 'requestItems.%.255s.member.%zu.member.putRequest.item' "
                         "failed to satisfy constraint: Member must not be null",
                         it->string, i);
        }
    }
    if (verr_finish(c, &v) < 0) return -1;
    *n_tables = n;
    return 0;
}

/* Parses every request: one of PutRequest/DeleteRequest each, attribute
 * values, item sizes, the total count. */
static int write_parse(op_ctx *c, const cJSON *ri, write_req **out, size_t *n_out)
{
    size_t total = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ri)
    {
        total += (size_t)cJSON_GetArraySize(it);
    }
    if (total > BATCH_WRITE_MAX)
        return err_validation(c->e, "Too many items requested for the BatchWriteItem call");
    write_req *rs = arena_calloc(c->a, total ? total : 1, sizeof(*rs));
    size_t n = 0, ti = 0;
    cJSON_ArrayForEach(it, ri)
    {
        const cJSON *wr;
        cJSON_ArrayForEach(wr, it)
        {
            const cJSON *put = req_get(wr, "PutRequest"), *del = req_get(wr, "DeleteRequest");
            if ((put != NULL) == (del != NULL))
                return err_validation(c->e, "Supplied AttributeValue has more than one datatypes "
                                            "set, must contain exactly one of the supported "
                                            "datatypes");
            write_req *r = &rs[n++];
            r->table = ti;
            if (put) {
                const cJSON *item = req_get(put, "Item");
                if (!cJSON_IsObject(item))
                    return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
                r->item = mv_map_from_json(c->a, item, c->e);
                if (!r->item) return -1;
                if (req_check_item_size(c, r->item, false) < 0) return -1;
            } else {
                r->key = req_get(del, "Key");
                if (!cJSON_IsObject(r->key))
                    return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
                if (!mv_map_from_json(c->a, r->key, c->e)) return -1;
            }
        }
        ti++;
    }
    *out = rs;
    *n_out = n;
    return 0;
}

/* The mutate callback: the request's item replaces whatever is stored (NULL
 * deletes it; deleting an absent item changes nothing). */
static int mutate_batch(void *ctx, const mv_value *old, arena *a, mv_value **out, err *e)
{
    (void)a;
    (void)e;
    *out = ctx;
    if (!ctx && !old) return DB_MUTATE_SKIP;
    return DB_MUTATE_WRITE;
}

int op_batch_write_item(op_ctx *c)
{
    const cJSON *ri = req_get(c->req, "RequestItems");
    size_t nt = 0, n = 0;
    write_req *rs = NULL;
    if (write_shape(c, ri, &nt) < 0) return -1;
    if (write_parse(c, ri, &rs, &n) < 0) return -1;

    table **ts = arena_calloc(c->a, nt, sizeof(*ts));
    double *units = arena_calloc(c->a, nt, sizeof(double));
    db_write_op *ops = arena_calloc(c->a, n ? n : 1, sizeof(*ops));
    uint8_t **keys = arena_calloc(c->a, n ? n : 1, sizeof(*keys));
    size_t *klens = arena_calloc(c->a, n ? n : 1, sizeof(*klens));
    int rc = -1;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ri)
    {
        if (req_table(c, it->string, &ts[i]) < 0) goto out;
        i++;
    }
    for (i = 0; i < n; i++) {
        write_req *r = &rs[i];
        table *t = ts[r->table];
        db_write_op *op = &ops[i];
        if (r->item) {
            if (item_key(c, t, r->item, &op->pk, &op->sk) < 0) goto out;
        } else if (req_key(c, t, r->key, &op->pk, &op->sk) < 0) {
            goto out;
        }
        op->t = t;
        op->fn = mutate_batch;
        op->ctx = r->item;
        buf k;
        buf_init(&k);
        key_encode_item(&k, t->id, op->pk, op->sk);
        klens[i] = k.len;
        keys[i] = (uint8_t *)arena_memdup(c->a, k.data, k.len);
        buf_free(&k);
    }
    /* The storage key includes the table id: duplicates are per table. */
    for (i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (klens[j] == klens[i] && memcmp(keys[j], keys[i], klens[i]) == 0) {
                err_validation(c->e, "Provided list of item keys contains duplicates");
                goto out;
            }
    if (db_write(c->d, ops, n, c->a, c->e) < 0) goto out;

    /* Write capacity: 1 KB units of the larger of the old and new item, at
     * least one per request. */
    for (i = 0; i < n; i++) {
        size_t o = ops[i].old_item ? mv_item_size(ops[i].old_item) : 0;
        size_t w = ops[i].new_item ? mv_item_size(ops[i].new_item) : 0;
        size_t u = ((o > w ? o : w) + 1023) / 1024;
        units[rs[i].table] += (double)(u ? u : 1);
    }
    bool first = true;
    buf_putc(c->out, '{');
    resp_key(c, &first, "UnprocessedItems");
    buf_puts(c->out, "{}");
    batch_capacity(c, &first, nt, ts, units);
    buf_putc(c->out, '}');
    rc = 0;
out:
    release_tables(ts, nt);
    return rc;
}
