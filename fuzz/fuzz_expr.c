/* fuzz_expr.c - the expression parser and evaluator (src/expr/).
 *
 * Input: one byte choosing the kind (condition, filter, key condition,
 * projection, update), then the expression text. Placeholders resolve
 * against fixed ExpressionAttributeNames/Values tables; what parses is
 * evaluated against a small fixed item and against no item:
 *   - conditions: expr_eval_condition, expr_condition_paths, and
 *     expr_key_condition for a hash+range (S, N) and a hash-only (B) schema;
 *   - projections: expr_project;
 *   - updates: expr_apply_update; every item it builds must survive the
 *     codec round trip (item_decode checks value.h's invariants: sorted
 *     unique names, sorted unique non-empty sets, canonical numbers).
 * Finally expr_env_check_unused runs, as the API layer does.
 */
#include <cjson/cJSON.h>

#include "expr/expr.h"
#include "fuzz_common.h"
#include "item/codec.h"
#include "item/json.h"

static const char *name_keys[] = {"#a", "#b", "#l", "#m", "#pk", "#sk", "#dot", "#e"};
static const char *name_vals[] = {"a", "b", "l", "m", "pk", "sk", "x.y", ""};
#define N_NAMES (sizeof(name_keys) / sizeof(name_keys[0]))

static const char values_json[] =
    "{\":s\":{\"S\":\"str\"},\":e\":{\"S\":\"\"},\":n\":{\"N\":\"1\"},\":big\":{\"N\":"
    "\"9.9999999999999999999999999999999999999E+125\"},\":tiny\":{\"N\":\"1E-130\"},"
    "\":neg\":{\"N\":\"-12.5\"},\":b\":{\"B\":\"AAE=\"},\":t\":{\"BOOL\":true},"
    "\":null\":{\"NULL\":true},\":l\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"L\":[]}]},"
    "\":m\":{\"M\":{\"k\":{\"S\":\"v\"},\"n\":{\"M\":{}}}},\":ss\":{\"SS\":[\"a\",\"b\"]},"
    "\":ns\":{\"NS\":[\"1\",\"2.5\"]},\":bs\":{\"BS\":[\"AA==\"]}}";

static const char item_json[] =
    "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"7\"},\"a\":{\"N\":\"10\"},\"b\":{\"S\":\"hello\"},"
    "\"l\":{\"L\":[{\"N\":\"1\"},{\"M\":{\"c\":{\"S\":\"d\"}}},{\"L\":[{\"BOOL\":false}]}]},"
    "\"m\":{\"M\":{\"x\":{\"N\":\"-3\"},\"y\":{\"SS\":[\"q\",\"r\"]},\"z\":{\"NULL\":true}}},"
    "\"x.y\":{\"B\":\"AQID\"},\"ns\":{\"NS\":[\"1\",\"3\"]},\"bs\":{\"BS\":[\"AQ==\"]}}";

static arena fixed_arena;
static const mv_value *fixed_values;
static const mv_value *fixed_item;

static const mv_value *from_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) abort();
    err e;
    err_clear(&e);
    const mv_value *v = mv_map_from_json(&fixed_arena, j, &e);
    if (!v) {
        fprintf(stderr, "fuzz_expr: bad fixed JSON: %s\n", e.msg);
        abort();
    }
    cJSON_Delete(j);
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    arena_init(&fixed_arena);
    fixed_values = from_json(values_json);
    fixed_item = from_json(item_json);
    return 0;
}

/* An item built by the evaluator must be a valid item: encodable, decodable
 * (invariants hold) and equal to its decoding. */
static void check_valid_item(arena *a, const mv_value *item)
{
    FUZZ_CHECK(item && item->type == MV_M);
    buf b;
    buf_init(&b);
    item_encode(&b, item);
    mv_value *dec = NULL;
    FUZZ_CHECK(item_decode(a, b.data, b.len, &dec) == 0);
    FUZZ_CHECK(mv_equal(item, dec));
    buf_free(&b);
}

static void run_condition(expr_env *env, expr_kind kind, const char *text, arena *a)
{
    err e;
    err_clear(&e);
    expr_node *n = NULL;
    if (expr_parse_condition(env, kind, text, &n, &e) != 0) {
        FUZZ_CHECK(e.code != ERR_NONE);
        return;
    }
    int r1 = expr_eval_condition(n, fixed_item, a, &e);
    int r2 = expr_eval_condition(n, NULL, a, &e);
    FUZZ_CHECK(r1 >= -1 && r1 <= 1 && r2 >= -1 && r2 <= 1);
    const expr_projection *paths = expr_condition_paths(n, a);
    FUZZ_CHECK(paths != NULL);
    for (size_t i = 0; i < paths->n; i++)
        (void)expr_path_get(&paths->paths[i], fixed_item);
    expr_key_cond kc;
    err_clear(&e);
    (void)expr_key_condition(n, "pk", MV_S, "sk", MV_N, &kc, &e);
    err_clear(&e);
    (void)expr_key_condition(n, "a", MV_B, NULL, 0, &kc, &e);
}

static void run_projection(expr_env *env, const char *text, arena *a)
{
    err e;
    err_clear(&e);
    expr_projection *p = NULL;
    if (expr_parse_projection(env, text, &p, &e) != 0) {
        FUZZ_CHECK(e.code != ERR_NONE);
        return;
    }
    mv_value *out = expr_project(p, fixed_item, a);
    check_valid_item(a, out);
}

static void run_update(expr_env *env, const char *text, arena *a)
{
    err e;
    err_clear(&e);
    expr_update *u = NULL;
    if (expr_parse_update(env, text, &u, &e) != 0) {
        FUZZ_CHECK(e.code != ERR_NONE);
        return;
    }
    FUZZ_CHECK(expr_update_paths(u) != NULL);
    mv_value *out = NULL;
    if (expr_apply_update(u, fixed_item, a, &out, &e) == 0) check_valid_item(a, out);
    err_clear(&e);
    out = NULL;
    if (expr_apply_update(u, NULL, a, &out, &e) == 0) check_valid_item(a, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    arena a;
    arena_init(&a);
    char *text = fuzz_cstr(data + 1, size - 1);
    expr_env env;
    expr_env_init(&env, &a, N_NAMES, name_keys, name_vals, fixed_values);
    switch (data[0] % 5) {
    case 0:
        run_condition(&env, EXPR_CONDITION, text, &a);
        break;
    case 1:
        run_condition(&env, EXPR_FILTER, text, &a);
        break;
    case 2:
        run_condition(&env, EXPR_KEY_CONDITION, text, &a);
        break;
    case 3:
        run_projection(&env, text, &a);
        break;
    default:
        run_update(&env, text, &a);
        break;
    }
    err e;
    err_clear(&e);
    (void)expr_env_check_unused(&env, &e);
    free(text);
    arena_free(&a);
    return 0;
}
