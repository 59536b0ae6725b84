/* expr.h - the DynamoDB expression language: parser and evaluator.
 *
 * Five kinds of expression share one grammar family:
 *   ConditionExpression, FilterExpression, KeyConditionExpression -> expr_node
 *   ProjectionExpression -> expr_projection
 *   UpdateExpression     -> expr_update
 * Parsing resolves #name placeholders and :value placeholders against an
 * expr_env (ExpressionAttributeNames / ExpressionAttributeValues) and records
 * which ones were used, so the caller can reject unused ones afterwards with
 * DynamoDB's message (expr_env_check_unused). All memory comes from the
 * env's arena. Error messages follow DynamoDB's wording, e.g.
 *   "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"a ==\""
 *   "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"
 *   "An expression attribute name used in the document path is not defined; attribute name: #n"
 *   "An expression attribute value used in expression is not defined; attribute value: :v"
 * Evaluation never modifies its inputs; updates build new values.
 */
#ifndef MERIDIAN_EXPR_H
#define MERIDIAN_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "item/value.h"

typedef enum expr_kind {
    EXPR_CONDITION,     /* "ConditionExpression" */
    EXPR_FILTER,        /* "FilterExpression" */
    EXPR_KEY_CONDITION, /* "KeyConditionExpression" */
    EXPR_PROJECTION,    /* "ProjectionExpression" */
    EXPR_UPDATE,        /* "UpdateExpression" */
} expr_kind;

/* Placeholder tables of one request. Built by the caller from the request's
 * ExpressionAttributeNames (string -> string) and ExpressionAttributeValues
 * (an MV_M value); `*_used` arrays are allocated by expr_env_init. */
typedef struct expr_env {
    arena *a;
    size_t n_names;
    const char **name_keys; /* "#n" */
    const char **name_vals; /* "real name" */
    bool *name_used;
    const mv_value *values; /* MV_M of ":v" -> value, or NULL */
    bool *value_used;       /* parallel to values->u.map.members */
} expr_env;

/* "ConditionExpression", "FilterExpression", ... as used in messages. */
const char *expr_kind_name(expr_kind k);

/* Initialises env. name_keys/name_vals (n_names entries) and values may be
 * NULL/0. Does not copy the tables: they must outlive the env. */
void expr_env_init(expr_env *env, arena *a, size_t n_names, const char **name_keys,
                   const char **name_vals, const mv_value *values);
/* After every expression of a request has been parsed: fails with DynamoDB's
 * "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :b}"
 * or "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a}". */
int expr_env_check_unused(const expr_env *env, err *e);

/* A document path: a.b[2].c -> elements "a", "b", [2], "c". */
typedef struct expr_path_elem {
    bool is_index;
    size_t index;     /* list index when is_index */
    const char *name; /* resolved attribute name otherwise (NUL-terminated) */
    size_t name_len;
} expr_path_elem;

typedef struct expr_path {
    size_t n;
    expr_path_elem *elems;
} expr_path;

typedef struct expr_node expr_node; /* opaque condition tree */

typedef struct expr_projection {
    size_t n;
    expr_path *paths;
} expr_projection;

typedef struct expr_update expr_update; /* opaque update program */

/* Parsers. Return 0, or -1 with e set (ERR_VALIDATION) and DynamoDB's message
 * ("Invalid <Kind>: ..."). An empty or all-blank text is an error too:
 * "Invalid <Kind>: The expression can not be empty;". */
int expr_parse_condition(expr_env *env, expr_kind kind, const char *text, expr_node **out, err *e);
int expr_parse_projection(expr_env *env, const char *text, expr_projection **out, err *e);
int expr_parse_update(expr_env *env, const char *text, expr_update **out, err *e);

/* Evaluates a condition/filter against item (NULL when no item exists).
 * Returns 1 (true), 0 (false). Type mismatches are simply false, as in
 * DynamoDB; -1 with e set is reserved for genuine errors. */
int expr_eval_condition(const expr_node *cond, const mv_value *item, arena *a, err *e);

/* Applies an update to old_item (NULL when no item exists; the key attributes
 * are then expected to be present in the `base` map the caller passes, see
 * ops). Produces the new item in *out. Errors (ERR_VALIDATION) use DynamoDB's
 * messages, e.g. "The provided expression refers to an attribute that does
 * not exist in the item", "An operand in the update expression has an
 * incorrect data type", "Two document paths overlap with each other; must
 * remove or rewrite one of these paths; path one: [a], path two: [a, b]". */
int expr_apply_update(const expr_update *upd, const mv_value *old_item, arena *a, mv_value **out,
                      err *e);
/* The document paths an update assigns or removes, in order (for
 * ReturnValues UPDATED_OLD/UPDATED_NEW and for refusing key updates). */
const expr_projection *expr_update_paths(const expr_update *upd);

/* Returns a new item holding only the projected paths of item (list elements
 * selected by index keep their relative order, as DynamoDB does). */
mv_value *expr_project(const expr_projection *proj, const mv_value *item, arena *a);

/* Every document path a condition reads, in written order, allocated from a
 * (for Query's "Filter Expression can only contain non-primary key
 * attributes" and "Key attributes must be scalars" checks). */
const expr_projection *expr_condition_paths(const expr_node *cond, arena *a);

/* Resolves a path against a value; NULL if any step is missing or mistyped. */
const mv_value *expr_path_get(const expr_path *path, const mv_value *item);

/* A KeyConditionExpression decomposed for a range walk. */
typedef enum expr_sk_op {
    SK_NONE = 0,
    SK_EQ,
    SK_LT,
    SK_LE,
    SK_GT,
    SK_GE,
    SK_BETWEEN,
    SK_BEGINS_WITH,
} expr_sk_op;

typedef struct expr_key_cond {
    const mv_value *pk; /* value the partition key must equal */
    expr_sk_op sk_op;
    const mv_value *sk_a; /* operand (lower bound for BETWEEN) */
    const mv_value *sk_b; /* upper bound for BETWEEN */
} expr_key_cond;

/* Checks a parsed KeyConditionExpression against the table's key schema
 * (sk_name NULL for hash-only tables) and decomposes it. Fails with
 * DynamoDB's messages, e.g. "Query condition missed key schema element: pk",
 * "Query key condition not supported", "Invalid KeyConditionExpression:
 * Incorrect operand type for operator or function; operator or function:
 * begins_with, operand type: N". */
int expr_key_condition(const expr_node *cond, const char *pk_name, mv_type pk_type,
                       const char *sk_name, mv_type sk_type, expr_key_cond *out, err *e);

#endif
