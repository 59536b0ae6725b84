/* request.c - parameter readers and key/item validation shared by all
 * operation handlers (see request.h). Messages are DynamoDB's. */
#include "api/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "item/json.h"

const cJSON *req_get(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

const cJSON *req_required(op_ctx *c, const cJSON *o, const char *name)
{
    const cJSON *v = req_get(o, name);
    if (!v)
        err_validation(c->e,
                       "1 validation error detected: Value null at '%c%s' failed to satisfy "
                       "constraint: Member must not be null",
                       (name[0] >= 'A' && name[0] <= 'Z') ? name[0] + 32 : name[0], name + 1);
    return v;
}

int req_string(op_ctx *c, const cJSON *o, const char *name, bool required, const char **out)
{
    const cJSON *v = required ? req_required(c, o, name) : req_get(o, name);
    *out = NULL;
    if (!v) return required ? -1 : 0;
    if (!cJSON_IsString(v))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    *out = v->valuestring;
    return 0;
}

int req_bool(op_ctx *c, const cJSON *o, const char *name, bool *out)
{
    const cJSON *v = req_get(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    *out = cJSON_IsTrue(v);
    return 0;
}

int req_int(op_ctx *c, const cJSON *o, const char *name, bool *present, long long *out)
{
    const cJSON *v = req_get(o, name);
    *present = false;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 9.2e18)
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    *present = true;
    *out = (long long)v->valuedouble;
    return 0;
}

static bool valid_table_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

int req_table_name(op_ctx *c, const char *param, const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > TABLE_NAME_MAX)
        return err_validation(c->e, "TableName must be at least 3 characters long and at most "
                                    "255 characters long");
    for (size_t i = 0; i < n; i++)
        if (!valid_table_char(name[i]))
            return err_validation(c->e,
                                  "1 validation error detected: Value '%s' at '%s' failed to "
                                  "satisfy constraint: Member must satisfy regular expression "
                                  "pattern: [a-zA-Z0-9_.-]+",
                                  name, param);
    return 0;
}

int req_table(op_ctx *c, const char *name, table **out)
{
    *out = NULL;
    if (req_table_name(c, "tableName", name) < 0) return -1;
    table *t = catalog_get(c->d->cat, c->account, name);
    if (!t) return err_set(c->e, ERR_RESOURCE_NOT_FOUND, "Requested resource not found");
    *out = t;
    return 0;
}

int req_expr_env(op_ctx *c, const cJSON *o, expr_env *env)
{
    const cJSON *names = req_get(o, "ExpressionAttributeNames");
    const cJSON *values = req_get(o, "ExpressionAttributeValues");
    size_t nn = 0;
    const char **keys = NULL, **vals = NULL;
    if (names) {
        if (!cJSON_IsObject(names))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        size_t cnt = (size_t)cJSON_GetArraySize(names);
        if (cnt == 0) return err_validation(c->e, "ExpressionAttributeNames must not be empty");
        keys = arena_calloc(c->a, cnt, sizeof(char *));
        vals = arena_calloc(c->a, cnt, sizeof(char *));
        const cJSON *it;
        cJSON_ArrayForEach(it, names)
        {
            if (!cJSON_IsString(it))
                return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
            if (it->string[0] != '#')
                return err_validation(c->e,
                                      "ExpressionAttributeNames contains invalid key: Syntax "
                                      "error; key: \"%s\"",
                                      it->string);
            if (it->valuestring[0] == '\0')
                return err_validation(c->e,
                                      "ExpressionAttributeNames contains invalid value: Empty "
                                      "attribute name; key: \"%s\"",
                                      it->string);
            keys[nn] = it->string;
            vals[nn] = it->valuestring;
            nn++;
        }
    }
    const mv_value *vmap = NULL;
    if (values) {
        if (!cJSON_IsObject(values))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        if (cJSON_GetArraySize(values) == 0)
            return err_validation(c->e, "ExpressionAttributeValues must not be empty");
        const cJSON *it;
        cJSON_ArrayForEach(it, values)
        {
            if (it->string[0] != ':')
                return err_validation(c->e,
                                      "ExpressionAttributeValues contains invalid key: Syntax "
                                      "error; key: \"%s\"",
                                      it->string);
        }
        mv_value *m = mv_map_from_json(c->a, values, c->e);
        if (!m) return -1;
        vmap = m;
    }
    expr_env_init(env, c->a, nn, keys, vals, vmap);
    return 0;
}

static size_t key_value_size(const mv_value *v)
{
    return v->u.str.len;
}

static int check_key_value(op_ctx *c, const char *name, mv_type want, const mv_value *v,
                           bool is_sort, bool from_item)
{
    if (v->type != want) {
        if (from_item)
            return err_validation(c->e,
                                  "One or more parameter values were invalid: Type mismatch for "
                                  "key %s expected: %s actual: %s",
                                  name, mv_type_name(want), mv_type_name(v->type));
        return err_validation(c->e, "The provided key element does not match the schema");
    }
    if (key_value_size(v) == 0)
        return err_validation(c->e,
                              "One or more parameter values are not valid. The AttributeValue "
                              "for a key attribute cannot contain an empty %s value. Key: %s",
                              want == MV_B ? "binary" : "string", name);
    if (!is_sort && key_value_size(v) > PK_MAX_BYTES)
        return err_validation(c->e, "One or more parameter values were invalid: Size of hashkey "
                                    "has exceeded the maximum size limit of2048 bytes");
    if (is_sort && key_value_size(v) > SK_MAX_BYTES)
        return err_validation(c->e, "One or more parameter values were invalid: Aggregated size "
                                    "of all range keys has exceeded the size limit of 1024 bytes");
    return 0;
}

int req_key(op_ctx *c, table *t, const cJSON *key_json, const mv_value **pk, const mv_value **sk)
{
    if (!key_json)
        return err_validation(c->e, "The provided key element does not match the schema");
    if (!cJSON_IsObject(key_json))
        return err_set(c->e, ERR_SERIALIZATION,
                       "Start of structure or map found where not expected");
    mv_value *m = mv_map_from_json(c->a, key_json, c->e);
    if (!m) return -1;
    size_t want = t->sk_name ? 2 : 1;
    const mv_value *p = mv_map_get(m, t->pk_name, strlen(t->pk_name));
    const mv_value *s = t->sk_name ? mv_map_get(m, t->sk_name, strlen(t->sk_name)) : NULL;
    if (m->u.map.n != want || !p || (t->sk_name && !s))
        return err_validation(c->e, "The provided key element does not match the schema");
    if (check_key_value(c, t->pk_name, t->pk_type, p, false, false) < 0) return -1;
    if (s && check_key_value(c, t->sk_name, t->sk_type, s, true, false) < 0) return -1;
    *pk = p;
    *sk = s;
    return 0;
}

int req_item_key(op_ctx *c, table *t, const mv_value *item, const mv_value **pk,
                 const mv_value **sk)
{
    const mv_value *p = mv_map_get(item, t->pk_name, strlen(t->pk_name));
    if (!p)
        return err_validation(c->e,
                              "One or more parameter values were invalid: Missing the key %s in "
                              "the item",
                              t->pk_name);
    const mv_value *s = NULL;
    if (t->sk_name) {
        s = mv_map_get(item, t->sk_name, strlen(t->sk_name));
        if (!s)
            return err_validation(c->e,
                                  "One or more parameter values were invalid: Missing the key %s "
                                  "in the item",
                                  t->sk_name);
    }
    if (check_key_value(c, t->pk_name, t->pk_type, p, false, true) < 0) return -1;
    if (s && check_key_value(c, t->sk_name, t->sk_type, s, true, true) < 0) return -1;
    *pk = p;
    *sk = s;
    return 0;
}

int req_check_item_size(op_ctx *c, const mv_value *item, bool update)
{
    if (mv_item_size(item) <= ITEM_MAX_BYTES) return 0;
    if (update)
        return err_validation(c->e, "Item size to update has exceeded the maximum allowed size");
    return err_validation(c->e, "Item size has exceeded the maximum allowed size");
}

mv_value *req_key_map(op_ctx *c, table *t, const mv_value *item)
{
    mv_member *m = arena_calloc(c->a, 2, sizeof(mv_member));
    size_t n = 0;
    const mv_value *p = mv_map_get(item, t->pk_name, strlen(t->pk_name));
    m[n].name = t->pk_name;
    m[n].name_len = strlen(t->pk_name);
    m[n++].value = p;
    if (t->sk_name) {
        m[n].name = t->sk_name;
        m[n].name_len = strlen(t->sk_name);
        m[n++].value = mv_map_get(item, t->sk_name, strlen(t->sk_name));
    }
    return mv_new_map(c->a, m, n);
}

void resp_key(op_ctx *c, bool *first, const char *key)
{
    if (!*first) buf_putc(c->out, ',');
    *first = false;
    json_write_string(c->out, key, strlen(key));
    buf_putc(c->out, ':');
}

void req_consumed_capacity(op_ctx *c, bool *first, const char *table_name, double units)
{
    const cJSON *v = req_get(c->req, "ReturnConsumedCapacity");
    if (!v || !cJSON_IsString(v) || strcmp(v->valuestring, "NONE") == 0) return;
    resp_key(c, first, "ConsumedCapacity");
    buf_puts(c->out, "{\"TableName\":");
    json_write_string(c->out, table_name, strlen(table_name));
    buf_printf(c->out, ",\"CapacityUnits\":%g", units);
    if (strcmp(v->valuestring, "INDEXES") == 0)
        buf_printf(c->out, ",\"Table\":{\"CapacityUnits\":%g}", units);
    buf_putc(c->out, '}');
}

void verr_add(verrs *v, const char *fmt, ...)
{
    size_t room = sizeof(v->msg) - v->off;
    if (v->n > 0 && room > 2) {
        memcpy(v->msg + v->off, "; ", 3);
        v->off += 2;
        room -= 2;
    }
    v->n++;
    if (room <= 1) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(v->msg + v->off, room, fmt, ap);
    va_end(ap);
    if (w > 0) v->off += (size_t)w < room ? (size_t)w : room - 1;
}

int verr_finish(op_ctx *c, const verrs *v)
{
    if (v->n == 0) return 0;
    return err_validation(c->e, "%d validation error%s detected: %s", v->n, v->n > 1 ? "s" : "",
                          v->msg);
}

void verr_check_enum(verrs *v, const char *param, const char *val, const char *const *allowed,
                     size_t n, const char *listing)
{
    if (!val) return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(val, allowed[i]) == 0) return;
    verr_add(v,
             "Value '%.300s' at '%s' failed to satisfy constraint: Member must satisfy enum "
             "value set: [%s]",
             val, param, listing);
}
