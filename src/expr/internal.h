/* internal.h - the expression syntax tree shared by parse.c, eval.c and update.c.
 *
 * parse.c turns text into this tree and validates it; eval.c evaluates
 * conditions, projections and key conditions over it; update.c runs update
 * programs. Nothing here is visible outside src/expr/.
 *
 * The tree is built entirely in the env's arena and never refers back to the
 * expression text after parsing: attribute names are either copied into the
 * arena or point into the env's ExpressionAttributeNames table, and :values
 * point into its ExpressionAttributeValues map (both outlive the env, see
 * expr.h).
 *
 * Node shapes:
 *   NK_OR, NK_AND  n-ary (args[0..nargs)), so long chains need no recursion
 *   NK_NOT         args[0]
 *   NK_CMP         op = cmp_op, args[0] <op> args[1]
 *   NK_BETWEEN     args[0] BETWEEN args[1] AND args[2]
 *   NK_IN          args[0] IN (args[1..nargs))
 *   NK_CALL        op = fn_id, args = function arguments
 *   NK_ARITH       op = '+' or '-', args[0] op args[1] (update SET values only)
 *   NK_PATH        path (resolved document path)
 *   NK_VALUE       value (resolved :placeholder)
 */
#ifndef MERIDIAN_EXPR_INTERNAL_H
#define MERIDIAN_EXPR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "expr/expr.h"

typedef enum node_kind {
    NK_OR = 1,
    NK_AND,
    NK_NOT,
    NK_CMP,
    NK_BETWEEN,
    NK_IN,
    NK_CALL,
    NK_ARITH,
    NK_PATH,
    NK_VALUE,
} node_kind;

typedef enum cmp_op {
    CMP_EQ = 1,
    CMP_NE,
    CMP_LT,
    CMP_LE,
    CMP_GT,
    CMP_GE,
} cmp_op;

typedef enum fn_id {
    FN_UNKNOWN = 0,
    FN_ATTRIBUTE_EXISTS,
    FN_ATTRIBUTE_NOT_EXISTS,
    FN_ATTRIBUTE_TYPE,
    FN_BEGINS_WITH,
    FN_CONTAINS,
    FN_SIZE,
    FN_IF_NOT_EXISTS,
    FN_LIST_APPEND,
} fn_id;

/* One step of a path as written, before placeholders are resolved. */
typedef struct raw_part {
    bool is_index;
    bool is_placeholder; /* "#name" */
    const char *text;    /* arena copy of the token text */
    size_t len;
} raw_part;

struct expr_node {
    node_kind kind;
    int op;            /* cmp_op, fn_id, or '+' / '-' */
    bool parens;       /* written inside parentheses */
    bool as_cond;      /* NK_CALL standing as a condition of its own */
    size_t tok;        /* index of the node's main token (parse time only) */
    const char *fname; /* NK_CALL: function name as written */
    size_t nargs;
    expr_node **args;
    /* NK_PATH */
    size_t nraw;
    raw_part *raw;
    bool resolved;
    expr_path path;
    /* NK_VALUE */
    const char *vname; /* ":v" as written */
    const mv_value *value;
};

typedef enum upd_kind {
    UPD_SET = 1,
    UPD_REMOVE,
    UPD_ADD,
    UPD_DELETE,
} upd_kind;

typedef struct upd_action {
    upd_kind kind;
    size_t clause;    /* index of the clause (SET/REMOVE/... keyword) it came from */
    expr_node *path;  /* NK_PATH */
    expr_node *value; /* SET: operand/arith/call; ADD/DELETE: NK_VALUE; REMOVE: NULL */
} upd_action;

struct expr_update {
    size_t n;
    upd_action *acts;
    size_t nclauses;
    expr_projection paths; /* acts[i].path->path, in order */
};

/* eval.c: the value of an operand (path, :value, size()) for one item, or
 * NULL when it has none (missing attribute, size() of a number...). */
const mv_value *expr_operand_value(const expr_node *n, const mv_value *item, arena *a);

/* DynamoDB's rendering of a path in messages: "[a, b, [2]]". */
char *expr_path_str(arena *a, const expr_path *p);

#endif
