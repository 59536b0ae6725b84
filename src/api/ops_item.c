/* ops_item.c - single-item operations: PutItem, GetItem, DeleteItem,
 * UpdateItem.
 *
 * Writes go through db_write() with a mutate callback that runs under the
 * item's lock: it evaluates the ConditionExpression on the current item,
 * builds the new item (for UpdateItem by applying the UpdateExpression),
 * checks its size, and hands it back to be versioned and committed. */
#include <string.h>

#include "api/ops.h"
#include "item/json.h"

/* What every writing operation parses before touching the item. */
typedef struct write_req {
    op_ctx *c;
    table *t;
    const mv_value *pk, *sk;
    expr_node *cond;     /* ConditionExpression or NULL */
    bool fail_all_old;   /* ReturnValuesOnConditionCheckFailure == ALL_OLD */
    const mv_value *put; /* PutItem: the new item */
    expr_update *upd;    /* UpdateItem: the update or NULL */
} write_req;

static int parse_return_values(op_ctx *c, const char **rv, bool put_or_delete)
{
    if (req_string(c, c->req, "ReturnValues", false, rv) < 0) return -1;
    if (!*rv) {
        *rv = "NONE";
        return 0;
    }
    static const char *all[] = {"NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"};
    bool ok = false;
    for (size_t i = 0; i < 5; i++)
        if (strcmp(*rv, all[i]) == 0) ok = true;
    if (!ok)
        return err_validation(c->e,
                              "1 validation error detected: Value '%s' at 'returnValues' failed "
                              "to satisfy constraint: Member must satisfy enum value set: "
                              "[ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
                              *rv);
    if (put_or_delete && strcmp(*rv, "NONE") && strcmp(*rv, "ALL_OLD"))
        return err_validation(c->e, "ReturnValues can only be ALL_OLD or NONE");
    return 0;
}

static int reject_legacy(op_ctx *c, const char *legacy, const char *modern)
{
    if (!req_get(c->req, legacy)) return 0;
    return err_validation(c->e,
                          "The legacy parameter %s is not supported by Meridian; use %s instead",
                          legacy, modern);
}

/* Parses ConditionExpression and ReturnValuesOnConditionCheckFailure. */
static int parse_condition(write_req *w, expr_env *env, bool *has_expr)
{
    op_ctx *c = w->c;
    const char *text, *on_fail;
    if (req_string(c, c->req, "ConditionExpression", false, &text) < 0) return -1;
    if (text) {
        *has_expr = true;
        if (expr_parse_condition(env, EXPR_CONDITION, text, &w->cond, c->e) < 0) return -1;
    }
    if (req_string(c, c->req, "ReturnValuesOnConditionCheckFailure", false, &on_fail) < 0)
        return -1;
    if (on_fail && strcmp(on_fail, "ALL_OLD") && strcmp(on_fail, "NONE"))
        return err_validation(c->e,
                              "1 validation error detected: Value '%s' at "
                              "'returnValuesOnConditionCheckFailure' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [ALL_OLD, NONE]",
                              on_fail);
    w->fail_all_old = on_fail && strcmp(on_fail, "ALL_OLD") == 0;
    return 0;
}

/* Placeholder tables given without any expression to use them. */
static int check_env_use(op_ctx *c, const expr_env *env, bool has_expr)
{
    if (!has_expr) {
        if (req_get(c->req, "ExpressionAttributeValues"))
            return err_validation(c->e, "ExpressionAttributeValues can only be specified when "
                                        "using expressions");
        if (req_get(c->req, "ExpressionAttributeNames"))
            return err_validation(c->e, "ExpressionAttributeNames can only be specified when "
                                        "using expressions");
        return 0;
    }
    return expr_env_check_unused(env, c->e);
}

static int check_condition(write_req *w, const mv_value *old, arena *a, err *e)
{
    if (!w->cond) return 0;
    int r = expr_eval_condition(w->cond, old, a, e);
    if (r < 0) return -1;
    if (r == 0) {
        if (w->fail_all_old && old) w->c->err_item = old;
        return err_set(e, ERR_CONDITIONAL_CHECK_FAILED, "The conditional request failed");
    }
    return 0;
}

static int mutate_put(void *ctx, const mv_value *old, arena *a, mv_value **out, err *e)
{
    write_req *w = ctx;
    if (check_condition(w, old, a, e) < 0) return -1;
    *out = (mv_value *)w->put;
    return DB_MUTATE_WRITE;
}

static int mutate_delete(void *ctx, const mv_value *old, arena *a, mv_value **out, err *e)
{
    write_req *w = ctx;
    if (check_condition(w, old, a, e) < 0) return -1;
    *out = NULL;
    return old ? DB_MUTATE_WRITE : DB_MUTATE_SKIP;
}

static int mutate_update(void *ctx, const mv_value *old, arena *a, mv_value **out, err *e)
{
    write_req *w = ctx;
    if (check_condition(w, old, a, e) < 0) return -1;
    const mv_value *base = old;
    if (!base) {
        mv_member *m = arena_calloc(a, 2, sizeof(mv_member));
        size_t n = 0;
        m[n].name = w->t->pk_name;
        m[n].name_len = strlen(w->t->pk_name);
        m[n++].value = w->pk;
        if (w->sk) {
            m[n].name = w->t->sk_name;
            m[n].name_len = strlen(w->t->sk_name);
            m[n++].value = w->sk;
        }
        base = mv_new_map(a, m, n);
    }
    mv_value *nw = (mv_value *)base;
    if (w->upd && expr_apply_update(w->upd, base, a, &nw, e) < 0) return -1;
    if (req_check_item_size(w->c, nw, true) < 0) return -1;
    *out = nw;
    return DB_MUTATE_WRITE;
}

static int finish_write(op_ctx *c, write_req *w, db_write_op *op, const char *rv)
{
    buf_putc(c->out, '{');
    const mv_value *ret = NULL;
    if (strcmp(rv, "ALL_OLD") == 0)
        ret = op->old_item;
    else if (strcmp(rv, "ALL_NEW") == 0)
        ret = op->new_item;
    else if (strcmp(rv, "UPDATED_OLD") == 0 && op->old_item)
        ret = expr_project(expr_update_paths(w->upd), op->old_item, c->a);
    else if (strcmp(rv, "UPDATED_NEW") == 0 && op->new_item)
        ret = expr_project(expr_update_paths(w->upd), op->new_item, c->a);
    bool first = true;
    if (ret && ret->u.map.n) {
        resp_key(c, &first, "Attributes");
        mv_map_to_json(c->out, ret);
    }
    /* DynamoDB charges 1 unit per KB of the larger of the old and new item. */
    size_t old_sz = op->old_item ? mv_item_size(op->old_item) : 0;
    size_t new_sz = op->new_item ? mv_item_size(op->new_item) : 0;
    size_t sz = old_sz > new_sz ? old_sz : new_sz;
    double units = sz ? (double)((sz + 1023) / 1024) : 1.0;
    req_consumed_capacity(c, &first, w->t->name, units);
    buf_putc(c->out, '}');
    return 0;
}

static int run_write(write_req *w, db_mutate_fn fn, const char *rv)
{
    db_write_op op;
    memset(&op, 0, sizeof(op));
    op.t = w->t;
    op.pk = w->pk;
    op.sk = w->sk;
    op.fn = fn;
    op.ctx = w;
    if (db_write(w->c->d, &op, 1, w->c->a, w->c->e) < 0) return -1;
    w->c->version_ts = op.ts;
    w->c->version_origin = op.origin;
    return finish_write(w->c, w, &op, rv);
}

int op_put_item(op_ctx *c)
{
    write_req w;
    memset(&w, 0, sizeof(w));
    w.c = c;
    const char *name, *rv;
    if (req_string(c, c->req, "TableName", true, &name) < 0) return -1;
    if (reject_legacy(c, "Expected", "ConditionExpression") < 0) return -1;
    const cJSON *item_json = req_required(c, c->req, "Item");
    if (!item_json) return -1;
    if (!cJSON_IsObject(item_json))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    if (parse_return_values(c, &rv, true) < 0) return -1;
    if (req_table(c, name, &w.t) < 0) return -1;
    int rc = -1;
    mv_value *item = mv_map_from_json(c->a, item_json, c->e);
    if (!item) goto out;
    if (req_item_key(c, w.t, item, &w.pk, &w.sk) < 0) goto out;
    if (req_check_item_size(c, item, false) < 0) goto out;
    w.put = item;
    expr_env env;
    if (req_expr_env(c, c->req, &env) < 0) goto out;
    bool has_expr = false;
    if (parse_condition(&w, &env, &has_expr) < 0) goto out;
    if (check_env_use(c, &env, has_expr) < 0) goto out;
    rc = run_write(&w, mutate_put, rv);
out:
    table_release(w.t);
    return rc;
}

int op_delete_item(op_ctx *c)
{
    write_req w;
    memset(&w, 0, sizeof(w));
    w.c = c;
    const char *name, *rv;
    if (req_string(c, c->req, "TableName", true, &name) < 0) return -1;
    if (reject_legacy(c, "Expected", "ConditionExpression") < 0) return -1;
    const cJSON *key = req_required(c, c->req, "Key");
    if (!key) return -1;
    if (parse_return_values(c, &rv, true) < 0) return -1;
    if (req_table(c, name, &w.t) < 0) return -1;
    int rc = -1;
    if (req_key(c, w.t, key, &w.pk, &w.sk) < 0) goto out;
    expr_env env;
    if (req_expr_env(c, c->req, &env) < 0) goto out;
    bool has_expr = false;
    if (parse_condition(&w, &env, &has_expr) < 0) goto out;
    if (check_env_use(c, &env, has_expr) < 0) goto out;
    rc = run_write(&w, mutate_delete, rv);
out:
    table_release(w.t);
    return rc;
}

/* Refuses updates of key attributes, as DynamoDB does. */
static int check_key_untouched(op_ctx *c, table *t, const expr_update *upd)
{
    const expr_projection *paths = expr_update_paths(upd);
    for (size_t i = 0; i < paths->n; i++) {
        const expr_path_elem *first = &paths->paths[i].elems[0];
        if (first->is_index) continue;
        const char *keys[2] = {t->pk_name, t->sk_name};
        for (int k = 0; k < 2; k++)
            if (keys[k] && strcmp(first->name, keys[k]) == 0)
                return err_validation(c->e,
                                      "One or more parameter values were invalid: Cannot update "
                                      "attribute %s. This attribute is part of the key",
                                      keys[k]);
    }
    return 0;
}

int op_update_item(op_ctx *c)
{
    write_req w;
    memset(&w, 0, sizeof(w));
    w.c = c;
    const char *name, *rv, *text;
    if (req_string(c, c->req, "TableName", true, &name) < 0) return -1;
    if (reject_legacy(c, "Expected", "ConditionExpression") < 0) return -1;
    if (reject_legacy(c, "AttributeUpdates", "UpdateExpression") < 0) return -1;
    const cJSON *key = req_required(c, c->req, "Key");
    if (!key) return -1;
    if (parse_return_values(c, &rv, false) < 0) return -1;
    if (req_string(c, c->req, "UpdateExpression", false, &text) < 0) return -1;
    if (req_table(c, name, &w.t) < 0) return -1;
    int rc = -1;
    if (req_key(c, w.t, key, &w.pk, &w.sk) < 0) goto out;
    expr_env env;
    if (req_expr_env(c, c->req, &env) < 0) goto out;
    bool has_expr = false;
    if (text) {
        has_expr = true;
        if (expr_parse_update(&env, text, &w.upd, c->e) < 0) goto out;
        if (check_key_untouched(c, w.t, w.upd) < 0) goto out;
    }
    if (parse_condition(&w, &env, &has_expr) < 0) goto out;
    if (check_env_use(c, &env, has_expr) < 0) goto out;
    if (!w.upd && (strcmp(rv, "UPDATED_OLD") == 0 || strcmp(rv, "UPDATED_NEW") == 0)) rv = "NONE";
    rc = run_write(&w, mutate_update, rv);
out:
    table_release(w.t);
    return rc;
}

int op_get_item(op_ctx *c)
{
    const char *name, *proj_text;
    if (req_string(c, c->req, "TableName", true, &name) < 0) return -1;
    if (reject_legacy(c, "AttributesToGet", "ProjectionExpression") < 0) return -1;
    const cJSON *key = req_required(c, c->req, "Key");
    if (!key) return -1;
    bool consistent = false;
    if (req_bool(c, c->req, "ConsistentRead", &consistent) < 0) return -1;
    if (req_string(c, c->req, "ProjectionExpression", false, &proj_text) < 0) return -1;
    table *t;
    if (req_table(c, name, &t) < 0) return -1;
    int rc = -1;
    const mv_value *pk, *sk;
    expr_env env;
    expr_projection *proj = NULL;
    if (req_key(c, t, key, &pk, &sk) < 0) goto out;
    if (req_expr_env(c, c->req, &env) < 0) goto out;
    if (proj_text && expr_parse_projection(&env, proj_text, &proj, c->e) < 0) goto out;
    if (check_env_use(c, &env, proj_text != NULL) < 0) goto out;
    mv_value *item;
    if (db_get_versioned(c->d, t, pk, sk, c->a, &item, &c->version_ts, &c->version_origin, c->e) <
        0)
        goto out;
    /* 1 unit per 4 KB read (half for eventually consistent reads), before projection. */
    size_t sz = item ? mv_item_size(item) : 0;
    double units = (double)(sz ? (sz + 4095) / 4096 : 1) * (consistent ? 1.0 : 0.5);
    buf_putc(c->out, '{');
    bool first = true;
    if (item) {
        if (proj) item = expr_project(proj, item, c->a);
        resp_key(c, &first, "Item");
        mv_map_to_json(c->out, item);
    }
    req_consumed_capacity(c, &first, t->name, units);
    buf_putc(c->out, '}');
    rc = 0;
out:
    table_release(t);
    return rc;
}
