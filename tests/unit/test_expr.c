/* test_expr.c - unit tests for src/expr: the lexer and parser (syntax errors
 * with DynamoDB's token/near context, reserved words, placeholders, function
 * rules, operand types, redundant parentheses, size limits), condition
 * evaluation (every comparator and function on every type, precedence,
 * nested paths and indexes), projections (merging, list indexes, overlaps),
 * updates (SET arithmetic, list_append, if_not_exists, REMOVE shifting, ADD
 * and DELETE on numbers and sets, the error order), key conditions, unused
 * placeholders, and hostile input (deep nesting, garbage, random token soup).
 *
 * Test data is written as DynamoDB JSON with single quotes for readability;
 * the helpers turn them into double quotes before parsing with cJSON, and
 * compare serialised results the same way. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"
#include "item/json.h"
#include "util/buf.h"
#include "unit.h"

static err E;
static expr_env ENV;
static mv_value *RES;

/* ---- helpers ---- */

static char *quotes(const char *s, char from, char to)
{
    char *c = arena_strdup(&A, s);
    for (char *p = c; *p; p++)
        if (*p == from) *p = to;
    return c;
}

/* A map from DynamoDB JSON written with single quotes. */
static mv_value *J(const char *json)
{
    cJSON *j = cJSON_Parse(quotes(json, '\'', '"'));
    if (!j) fail_msg("bad test JSON: %s", json);
    err e;
    err_clear(&e);
    mv_value *v = mv_map_from_json(&A, j, &e);
    cJSON_Delete(j);
    if (!v) fail_msg("bad test item %s: %s", json, e.msg);
    return v;
}

static const char *to_json(const mv_value *v, bool map)
{
    buf b;
    buf_init(&b);
    if (map)
        mv_map_to_json(&b, v);
    else
        mv_to_json(&b, v);
    size_t len;
    char *s = (char *)buf_detach(&b, &len);
    char *r = quotes(s ? s : "", '"', '\'');
    free(s);
    return r;
}

/* Sets up ENV: names as a JSON object of "#k": "name", values as DynamoDB JSON. */
static void env(const char *names, const char *values)
{
    size_t n = 0;
    const char **keys = NULL, **vals = NULL;
    if (names) {
        cJSON *j = cJSON_Parse(quotes(names, '\'', '"'));
        if (!j) fail_msg("bad names JSON: %s", names);
        n = (size_t)cJSON_GetArraySize(j);
        keys = arena_alloc(&A, (n + 1) * sizeof(*keys));
        vals = arena_alloc(&A, (n + 1) * sizeof(*vals));
        size_t i = 0;
        for (cJSON *c = j->child; c; c = c->next, i++) {
            keys[i] = arena_strdup(&A, c->string);
            vals[i] = arena_strdup(&A, c->valuestring);
        }
        cJSON_Delete(j);
    }
    expr_env_init(&ENV, &A, n, keys, vals, values ? J(values) : NULL);
}

static const char *VALUES =
    "{':s':{'S':'hello'},':hel':{'S':'hel'},':x':{'S':'x'},':sa':{'S':'a'},"
    "':dotted':{'S':'dotted'},':deep':{'S':'deep'},':empty':{'S':''},"
    "':n0':{'N':'0'},':n1':{'N':'1'},':n2':{'N':'2'},':n3':{'N':'3'},':n5':{'N':'5'},"
    "':n8':{'N':'8'},':n9':{'N':'9'},':n10':{'N':'10'},':n10dec':{'N':'10.000'},"
    "':neg':{'N':'-2.5'},':b':{'B':'AQID'},':b1':{'B':'AQ=='},':b9':{'B':'CQ=='},"
    "':t':{'BOOL':true},':f':{'BOOL':false},':null':{'NULL':true},"
    "':ss':{'SS':['c','b','a']},':ns':{'NS':['2.5','1']},':mk':{'M':{'k':{'S':'v'}}},"
    "':l':{'L':[{'S':'x'},{'N':'1'},{'M':{'k':{'S':'v'}}}]},"
    "':tS':{'S':'S'},':tN':{'S':'N'},':tB':{'S':'B'},':tSS':{'S':'SS'},':tNS':{'S':'NS'},"
    "':tBS':{'S':'BS'},':tL':{'S':'L'},':tM':{'S':'M'},':tBOOL':{'S':'BOOL'},"
    "':tNULL':{'S':'NULL'},':bad':{'S':'STRING'}}";

static const char *ITEM =
    "{'s':{'S':'hello'},'n':{'N':'10'},'f':{'N':'-2.5'},'b':{'B':'AQID'},'t':{'BOOL':true},"
    "'z':{'NULL':true},'l':{'L':[{'S':'x'},{'N':'1'},{'M':{'k':{'S':'v'}}}]},"
    "'m':{'M':{'a':{'M':{'b':{'S':'deep'}}},'c':{'L':[{'N':'1'},{'L':[{'N':'2'},{'N':'3'}]}]}}},"
    "'ss':{'SS':['a','b','c']},'ns':{'NS':['1','2.5']},'bs':{'BS':['AQ==','Ag==']},"
    "'u':{'S':'h\\u00e9llo \\ud83d\\ude00'},'x.y':{'S':'dotted'},'e':{'S':''}}";

static void std_env(void)
{
    env("{'#a':'m','#b':'a','#dot':'x.y','#s':'s','#l':'l'}", VALUES);
}

/* Parses expr of the given kind with ENV; returns the message, or NULL. */
static const char *perr(expr_kind kind, const char *expr)
{
    err_clear(&E);
    int rc;
    if (kind == EXPR_PROJECTION) {
        expr_projection *p;
        rc = expr_parse_projection(&ENV, expr, &p, &E);
    } else if (kind == EXPR_UPDATE) {
        expr_update *u;
        rc = expr_parse_update(&ENV, expr, &u, &E);
    } else {
        expr_node *n;
        rc = expr_parse_condition(&ENV, kind, expr, &n, &E);
    }
    if (rc == 0) return NULL;
    assert_int_equal(E.code, ERR_VALIDATION);
    return E.msg;
}

static const char *cerr(const char *expr)
{
    std_env();
    return perr(EXPR_CONDITION, expr);
}

#define ASSERT_ERR(got, want)                                                                      \
    do {                                                                                           \
        const char *g_ = (got);                                                                    \
        if (!g_) fail_msg("expected error '%s', parse succeeded", (want));                         \
        assert_string_equal(g_, (want));                                                           \
    } while (0)

#define ASSERT_PREFIX(got, want)                                                                   \
    do {                                                                                           \
        const char *g_ = (got);                                                                    \
        if (!g_) fail_msg("expected error starting '%s', parse succeeded", (want));                \
        if (strncmp(g_, (want), strlen(want)) != 0)                                                \
            fail_msg("got '%s', want '%s...'", g_, (want));                                        \
    } while (0)

/* Evaluates a filter over item (NULL: no item) with the standard env. */
static int eval_on(const char *expr, const mv_value *item)
{
    expr_node *n;
    err_clear(&E);
    if (expr_parse_condition(&ENV, EXPR_FILTER, expr, &n, &E) != 0)
        fail_msg("parse of '%s' failed: %s", expr, E.msg);
    int r = expr_eval_condition(n, item, &A, &E);
    assert_true(r == 0 || r == 1);
    return r;
}

static int C(const char *expr)
{
    std_env();
    return eval_on(expr, J(ITEM));
}

/* Runs an update with the update env over item; "OK" or "ERR:<message>". */
static const char *UPD_VALUES =
    "{':v':{'S':'y'},':one':{'N':'1'},':half':{'N':'1.5'},':zero':{'N':'0'},"
    "':tiny':{'N':'0.1'},':tiny2':{'N':'0.2'},':l':{'L':[{'S':'z'}]},"
    "':ss':{'SS':['b','c']},':ns':{'NS':['2']},':nsall':{'NS':['1','2']},':m':{'M':{}},"
    "':n9e125':{'N':'9E+125'},':bs':{'BS':['AQ==']}}";

static const char *UPD_ITEM =
    "{'id':{'S':'k'},'n':{'N':'5'},'s':{'S':'x'},"
    "'l':{'L':[{'N':'0'},{'N':'1'},{'N':'2'},{'N':'3'}]},'m':{'M':{'a':{'S':'b'}}},"
    "'ss':{'SS':['a','b']},'ns':{'NS':['1','2']}}";

static const char *U_on(const char *expr, const char *item)
{
    env("{'#n':'n','#s':'s'}", UPD_VALUES);
    expr_update *u;
    err_clear(&E);
    RES = NULL;
    if (expr_parse_update(&ENV, expr, &u, &E) != 0) return arena_sprintf(&A, "PARSE:%s", E.msg);
    if (expr_apply_update(u, item ? J(item) : NULL, &A, &RES, &E) != 0)
        return arena_sprintf(&A, "ERR:%s", E.msg);
    assert_non_null(RES);
    return "OK";
}

static const char *U(const char *expr)
{
    return U_on(expr, UPD_ITEM);
}

/* An attribute of the last update's result, as JSON, or "-" when absent. */
static const char *attr(const char *name)
{
    assert_non_null(RES);
    const mv_value *v = mv_map_get(RES, name, strlen(name));
    return v ? to_json(v, false) : "-";
}

static const char *P(const char *expr)
{
    std_env();
    expr_projection *p;
    err_clear(&E);
    if (expr_parse_projection(&ENV, expr, &p, &E) != 0)
        fail_msg("projection '%s': %s", expr, E.msg);
    mv_value *r = expr_project(p, J(ITEM), &A);
    assert_non_null(r);
    return to_json(r, true);
}

/* ---- syntax ---- */

static void test_syntax_errors(void **state)
{
    (void)state;
    ASSERT_ERR(cerr("a == :s"),
               "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"== :s\"");
    ASSERT_ERR(cerr("foo"), "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: "
                            "\"foo\"");
    ASSERT_ERR(cerr("a = :s AND"),
               "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\"");
    ASSERT_ERR(cerr("a = 1"), "Invalid ConditionExpression: Syntax error; token: \"1\", near: \"= "
                              "1\"");
    ASSERT_ERR(cerr("_a = :s"),
               "Invalid ConditionExpression: Syntax error; token: \"_\", near: \"_a\"");
    ASSERT_ERR(cerr("a = :s)"),
               "Invalid ConditionExpression: Syntax error; token: \")\", near: \":s)\"");
    ASSERT_ERR(cerr("a[x] = :s"),
               "Invalid ConditionExpression: Syntax error; token: \"x\", near: \"[x]\"");
    ASSERT_ERR(cerr("a = !!"),
               "Invalid ConditionExpression: Syntax error; token: \"!\", near: \"= !!\"");
    ASSERT_ERR(cerr("a = \xc3\xa9"),
               "Invalid ConditionExpression: Syntax error; token: \"\xc3\xa9\", near: \"= "
               "\xc3\xa9\"");
    ASSERT_ERR(cerr("# = :s"),
               "Invalid ConditionExpression: Syntax error; token: \"#\", near: \"# =\"");
    ASSERT_ERR(cerr("a BETWEEN :n1 OR :n2"),
               "Invalid ConditionExpression: Syntax error; token: \"OR\", near: \":n1 OR :n2\"");
    ASSERT_ERR(cerr("a IN :s"),
               "Invalid ConditionExpression: Syntax error; token: \":s\", near: \"IN :s\"");
    ASSERT_ERR(cerr("attribute_exists()"), "Invalid ConditionExpression: Syntax error; token: "
                                           "\")\", near: \"()\"");
    ASSERT_ERR(cerr("a[01] = :s"),
               "Invalid ConditionExpression: Syntax error; token: \"1\", near: \"01]\"");
    ASSERT_ERR(cerr("and = :s"),
               "Invalid ConditionExpression: Syntax error; token: \"and\", near: \"and =\"");
    ASSERT_ERR(cerr(""), "Invalid ConditionExpression: The expression can not be empty;");
    ASSERT_ERR(cerr(" \t\r\n "), "Invalid ConditionExpression: The expression can not be empty;");
    /* The kind names the message. */
    std_env();
    ASSERT_ERR(perr(EXPR_FILTER, "a ="),
               "Invalid FilterExpression: Syntax error; token: \"<EOF>\", near: \"=\"");
    ASSERT_ERR(perr(EXPR_KEY_CONDITION, ":s a"),
               "Invalid KeyConditionExpression: Syntax error; token: \"a\", near: \":s a\"");
    ASSERT_ERR(perr(EXPR_PROJECTION, "a,,b"),
               "Invalid ProjectionExpression: Syntax error; token: \",\", near: \",,b\"");
    ASSERT_ERR(perr(EXPR_PROJECTION, ""),
               "Invalid ProjectionExpression: The expression can not be empty;");
    ASSERT_ERR(perr(EXPR_UPDATE, "a = :v"),
               "Invalid UpdateExpression: Syntax error; token: \"a\", near: \"a =\"");
    /* Whitespace and keyword case are free. */
    assert_null(cerr("  a\t=\n:s   and   b <> :s  "));
    assert_null(cerr("a=:s OR(b=:s)"));
}

static void test_size_limit(void **state)
{
    (void)state;
    char *big = arena_alloc(&A, 10001);
    memset(big, 'a', 10000);
    big[10000] = '\0';
    ASSERT_ERR(cerr(big), "Invalid ConditionExpression: Expression size has exceeded the maximum "
                          "allowed size; expression size: 10000");
    /* 4096 bytes is allowed, 4097 is not. */
    char *ok = arena_alloc(&A, 4098);
    memset(ok, ' ', 4097);
    memcpy(ok, "s = :s", 6);
    ok[4096] = '\0';
    assert_null(cerr(ok));
    ok[4096] = ' ';
    ok[4097] = '\0';
    ASSERT_ERR(cerr(ok), "Invalid ConditionExpression: Expression size has exceeded the maximum "
                         "allowed size; expression size: 4097");
}

static void test_reserved_words(void **state)
{
    (void)state;
    ASSERT_ERR(cerr("name = :s"), "Invalid ConditionExpression: Attribute name is a reserved "
                                  "keyword; reserved keyword: name");
    ASSERT_ERR(cerr("a.Status = :s"), "Invalid ConditionExpression: Attribute name is a reserved "
                                      "keyword; reserved keyword: Status");
    ASSERT_ERR(cerr("attribute_exists(zone)"), "Invalid ConditionExpression: Attribute name is a "
                                               "reserved keyword; reserved keyword: zone");
    ASSERT_ERR(cerr("abort = :s"), "Invalid ConditionExpression: Attribute name is a reserved "
                                   "keyword; reserved keyword: abort");
    assert_null(cerr("#s = :s"));
    assert_null(cerr("size = :s"));
    assert_null(cerr("convert = :s"));
    assert_null(cerr("named = :s AND zones = :s"));
    std_env();
    ASSERT_ERR(perr(EXPR_PROJECTION, "a, timestamp"), "Invalid ProjectionExpression: Attribute "
                                                      "name is a reserved keyword; reserved "
                                                      "keyword: timestamp");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET #s = :s, data = :s"),
               "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: "
               "data");
}

static void test_placeholder_errors(void **state)
{
    (void)state;
    ASSERT_ERR(cerr("#nope = :s"), "Invalid ConditionExpression: An expression attribute name used "
                                   "in the document path is not defined; attribute name: #nope");
    ASSERT_ERR(cerr("a = :nope"), "Invalid ConditionExpression: An expression attribute value used "
                                  "in expression is not defined; attribute value: :nope");
    ASSERT_ERR(cerr("m.#nope = :s"), "Invalid ConditionExpression: An expression attribute name "
                                     "used in the document path is not defined; attribute name: "
                                     "#nope");
    /* No tables at all. */
    env(NULL, NULL);
    ASSERT_ERR(perr(EXPR_CONDITION, "a = :v"),
               "Invalid ConditionExpression: An expression attribute value used in expression is "
               "not defined; attribute value: :v");
    ASSERT_ERR(perr(EXPR_PROJECTION, "#p"),
               "Invalid ProjectionExpression: An expression attribute name used in the document "
               "path is not defined; attribute name: #p");
}

static void test_function_errors(void **state)
{
    (void)state;
    ASSERT_ERR(cerr("foo(a)"), "Invalid ConditionExpression: Invalid function name; function: foo");
    ASSERT_ERR(cerr("Attribute_Exists(a)"),
               "Invalid ConditionExpression: Invalid function name; function: Attribute_Exists");
    ASSERT_ERR(cerr("attribute_exists(a, b)"),
               "Invalid ConditionExpression: Incorrect number of operands for operator or "
               "function; operator or function: attribute_exists, number of operands: 2");
    ASSERT_ERR(cerr("begins_with(a)"),
               "Invalid ConditionExpression: Incorrect number of operands for operator or "
               "function; operator or function: begins_with, number of operands: 1");
    ASSERT_ERR(cerr("attribute_exists(:s)"),
               "Invalid ConditionExpression: Operator or function requires a document path; "
               "operator or function: attribute_exists");
    ASSERT_ERR(cerr("attribute_type(:s, :tS)"),
               "Invalid ConditionExpression: Operator or function requires a document path; "
               "operator or function: attribute_type");
    ASSERT_ERR(cerr("size(a)"), "Invalid ConditionExpression: The function is not allowed to be "
                                "used this way in an expression; function: size");
    ASSERT_ERR(cerr("a = :s AND size(a)"), "Invalid ConditionExpression: The function is not "
                                           "allowed to be used this way in an expression; "
                                           "function: size");
    ASSERT_ERR(cerr("attribute_exists(a) = :t"),
               "Invalid ConditionExpression: The function is not allowed to be used this way in an "
               "expression; function: attribute_exists");
    ASSERT_ERR(cerr("size(contains(a, :s)) = :n1"),
               "Invalid ConditionExpression: The function is not allowed to be used this way in an "
               "expression; function: contains");
    ASSERT_ERR(cerr("if_not_exists(a, :s) = :s"),
               "Invalid ConditionExpression: The function is not allowed in a condition "
               "expression; function: if_not_exists");
    ASSERT_ERR(cerr("list_append(a, :l) = :l"),
               "Invalid ConditionExpression: The function is not allowed in a condition "
               "expression; function: list_append");
    ASSERT_ERR(cerr("begins_with(a, :n10)"),
               "Invalid ConditionExpression: Incorrect operand type for operator or function; "
               "operator or function: begins_with, operand type: N");
    ASSERT_ERR(cerr("begins_with(size(a), :s)"),
               "Invalid ConditionExpression: Incorrect operand type for operator or function; "
               "operator or function: begins_with, operand type: N");
    ASSERT_ERR(cerr("size(:t) > :n1"), "Invalid ConditionExpression: Incorrect operand type for "
                                       "operator or function; operator or function: size, operand "
                                       "type: BOOL");
    ASSERT_ERR(cerr("attribute_type(a, :n1)"),
               "Invalid ConditionExpression: Incorrect operand type for operator or function; "
               "operator or function: attribute_type, operand type: N");
    ASSERT_ERR(cerr("attribute_type(a, :bad)"),
               "Invalid ConditionExpression: Invalid attribute type name found; type: STRING, "
               "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}");
    ASSERT_ERR(cerr("contains(a, a)"),
               "Invalid ConditionExpression: The first operand must be distinct from the remaining "
               "operands for this operator or function; operator: contains, first operand: [a]");
    ASSERT_ERR(cerr("a.b[1] = a.b[1]"),
               "Invalid ConditionExpression: The first operand must be distinct from the remaining "
               "operands for this operator or function; operator: =, first operand: [a, b, [1]]");
    ASSERT_ERR(cerr("#a = m"),
               "Invalid ConditionExpression: The first operand must be distinct from the remaining "
               "operands for this operator or function; operator: =, first operand: [m]");
    ASSERT_ERR(cerr("a IN (:s, a)"),
               "Invalid ConditionExpression: The first operand must be distinct from the remaining "
               "operands for this operator or function; operator: IN, first operand: [a]");
    /* Checks come in DynamoDB's order: names before types. */
    ASSERT_ERR(cerr("a < :t AND foo(b)"),
               "Invalid ConditionExpression: Invalid function name; function: foo");
    assert_null(cerr("size(a) = size(a)"));
    assert_null(cerr("contains(a, b) AND begins_with(a, b) AND attribute_type(a, :tM)"));
}

static void test_operand_type_errors(void **state)
{
    (void)state;
    ASSERT_ERR(cerr("a < :t"),
               "Invalid ConditionExpression: Incorrect operand type for operator or "
               "function; operator or function: <, operand type: BOOL");
    ASSERT_ERR(cerr(":l >= a"),
               "Invalid ConditionExpression: Incorrect operand type for operator or "
               "function; operator or function: >=, operand type: L");
    ASSERT_ERR(cerr("a BETWEEN :t AND :t"),
               "Invalid ConditionExpression: Incorrect operand type for operator or function; "
               "operator or function: BETWEEN, operand type: BOOL");
    ASSERT_ERR(cerr("a BETWEEN :n10 AND :n9"),
               "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be "
               "greater than or equal to lower bound; lower bound operand: AttributeValue: {N:10}, "
               "upper bound operand: AttributeValue: {N:9}");
    ASSERT_ERR(
        cerr("a BETWEEN :s AND :n9"),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower "
        "and upper bounds; lower bound operand: AttributeValue: {S:hello}, upper bound "
        "operand: AttributeValue: {N:9}");
    assert_null(cerr("a BETWEEN :n9 AND :n9"));
    assert_null(cerr("a = :t AND a <> :l AND a = :null"));
    /* IN takes up to 100 operands. */
    char *in = arena_alloc(&A, 1200);
    strcpy(in, "a IN (:s");
    for (int i = 1; i < 100; i++)
        strcat(in, ",:s");
    strcat(in, ")");
    assert_null(cerr(in));
    in[strlen(in) - 1] = '\0';
    strcat(in, ",:s)");
    ASSERT_ERR(cerr(in), "Invalid ConditionExpression: The IN operator is provided with too many "
                         "operands; number of operands: 101");
}

static void test_parentheses(void **state)
{
    (void)state;
    ASSERT_ERR(cerr("((a = :s))"),
               "Invalid ConditionExpression: The expression has redundant parentheses;");
    ASSERT_ERR(cerr("((a)) = :s"),
               "Invalid ConditionExpression: The expression has redundant parentheses;");
    ASSERT_ERR(cerr("NOT ((a = :s))"),
               "Invalid ConditionExpression: The expression has redundant parentheses;");
    ASSERT_ERR(cerr("a = ((:s))"),
               "Invalid ConditionExpression: The expression has redundant parentheses;");
    assert_null(cerr("(a = :s)"));
    assert_null(cerr("(a) = :s"));
    assert_null(cerr("(a = :s) AND (b = :s)"));
    assert_null(cerr("((a = :s) AND b = :s)"));
    assert_null(cerr("(size(a)) > :n1"));
    assert_null(cerr("(attribute_exists(a))"));
    assert_null(cerr("a IN ((:s), :x)"));
    ASSERT_ERR(cerr("(a = :s"),
               "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \":s\"");
    ASSERT_ERR(cerr("(a) = :s)"),
               "Invalid ConditionExpression: Syntax error; token: \")\", near: \":s)\"");
}

static void test_paths_and_indexes(void **state)
{
    (void)state;
    assert_int_equal(C("m.a.b = :deep"), 1);
    assert_int_equal(C("#a.#b.b = :deep"), 1);
    assert_int_equal(C("#a.c[1][0] = :n2"), 1);
    assert_int_equal(C("m.c[1][1] = :n3"), 1);
    assert_int_equal(C("m.c [ 1 ] [ 1 ] = :n3"), 1);
    assert_int_equal(C("#l[2].k = :sa"), 0);
    assert_int_equal(C("l[0] = :x"), 1);
    assert_int_equal(C("l[3] = :x"), 0);
    assert_int_equal(C("m.c[5][0] = :n2"), 0);
    assert_int_equal(C("s[0] = :s"), 0);
    assert_int_equal(C("l.k = :s"), 0);
    assert_int_equal(C("#dot = :dotted"), 1); /* a placeholder holding a dot is one name */
    assert_int_equal(C("x.y = :dotted"), 0);
    assert_null(cerr("a[2147483647] = :s"));
    ASSERT_ERR(cerr("a[2147483648] = :s"), "Invalid ConditionExpression: List index is not within "
                                           "the allowable range; index: [2147483648]");
    ASSERT_ERR(cerr("a[99999999999] = :s"), "Invalid ConditionExpression: List index is not within "
                                            "the allowable range; index: [99999999999]");
    /* 32 levels are allowed, 33 are not. */
    char p32[200] = "a", p33[200] = "a";
    for (int i = 1; i < 32; i++)
        strcat(p32, ".a");
    for (int i = 1; i < 33; i++)
        strcat(p33, "[0]");
    strcat(p32, " = :s");
    strcat(p33, " = :s");
    assert_null(cerr(p32));
    ASSERT_ERR(cerr(p33), "Invalid ConditionExpression: The document path has too many nesting "
                          "levels; nesting levels: 33");

    /* expr_path_get directly. */
    std_env();
    expr_projection *pr;
    assert_int_equal(expr_parse_projection(&ENV, "m.c[1][0]", &pr, &E), 0);
    assert_int_equal(pr->n, 1);
    assert_int_equal(pr->paths[0].n, 4);
    assert_true(pr->paths[0].elems[2].is_index);
    assert_int_equal(pr->paths[0].elems[2].index, 1);
    const mv_value *v = expr_path_get(&pr->paths[0], J(ITEM));
    assert_non_null(v);
    assert_string_equal(to_json(v, false), "{'N':'2'}");
    assert_null(expr_path_get(&pr->paths[0], NULL));
}

/* ---- evaluation ---- */

static void test_compare_scalars(void **state)
{
    (void)state;
    /* S */
    assert_int_equal(C("s = :s"), 1);
    assert_int_equal(C("s <> :s"), 0);
    assert_int_equal(C("s = :x"), 0);
    assert_int_equal(C("s <> :x"), 1);
    assert_int_equal(C("s < :x"), 1);
    assert_int_equal(C("s > :hel"), 1);
    assert_int_equal(C("s >= :s"), 1);
    assert_int_equal(C("s <= :hel"), 0);
    assert_int_equal(C("e = :empty"), 1);
    /* N: numeric, not textual */
    assert_int_equal(C("n > :n9"), 1);
    assert_int_equal(C("n < :n9"), 0);
    assert_int_equal(C("n >= :n10"), 1);
    assert_int_equal(C("n <= :n10"), 1);
    assert_int_equal(C("n = :n10dec"), 1);
    assert_int_equal(C("f < :n0"), 1);
    assert_int_equal(C("f = :neg"), 1);
    assert_int_equal(C(":n9 < n"), 1);
    /* B: unsigned bytes */
    assert_int_equal(C("b = :b"), 1);
    assert_int_equal(C("b > :b1"), 1);
    assert_int_equal(C("b < :b9"), 1);
    /* Different types compare false (and <> true). */
    assert_int_equal(C("n = :s"), 0);
    assert_int_equal(C("n <> :s"), 1);
    assert_int_equal(C("n < :s"), 0);
    assert_int_equal(C("n >= :s"), 0);
    assert_int_equal(C("s > b"), 0);
    /* Missing attributes. */
    assert_int_equal(C("nope = :s"), 0);
    assert_int_equal(C("nope <> :s"), 1);
    assert_int_equal(C("nope < :s"), 0);
    assert_int_equal(C("nope = nope2"), 0);
}

static void test_compare_documents(void **state)
{
    (void)state;
    assert_int_equal(C("t = :t"), 1);
    assert_int_equal(C("t = :f"), 0);
    assert_int_equal(C("t <> :f"), 1);
    assert_int_equal(C("t < s"), 0);
    assert_int_equal(C("z = :null"), 1);
    assert_int_equal(C("ss = :ss"), 1); /* sets compare as sets */
    assert_int_equal(C("ns = :ns"), 1);
    assert_int_equal(C("ss <> :ns"), 1);
    assert_int_equal(C("l = :l"), 1);
    assert_int_equal(C("l[2] = :mk"), 1);
    assert_int_equal(C("m.a = :mk"), 0);
    assert_int_equal(C("l <> :l"), 0);
    assert_int_equal(C("l < m"), 0);
}

static void test_between_in(void **state)
{
    (void)state;
    assert_int_equal(C("n BETWEEN :n9 AND :n10"), 1);
    assert_int_equal(C("n BETWEEN :n10 AND :n10"), 1);
    assert_int_equal(C("n BETWEEN :n1 AND :n9"), 0);
    assert_int_equal(C("s BETWEEN :hel AND :x"), 1);
    assert_int_equal(C("s BETWEEN :n1 AND :n9"), 0);
    assert_int_equal(C("b BETWEEN :b1 AND :b9"), 1);
    assert_int_equal(C("nope BETWEEN :n1 AND :n9"), 0);
    assert_int_equal(C("n BETWEEN f AND :n10"), 1);
    assert_int_equal(C("n IN (:n1, :n10)"), 1);
    assert_int_equal(C("n IN (:n1, :n9)"), 0);
    assert_int_equal(C("s IN (:n1, :s)"), 1);
    assert_int_equal(C("nope IN (:s)"), 0);
    assert_int_equal(C("ss IN (:ns, :ss)"), 1);
    assert_int_equal(C("n IN (:n10dec)"), 1);
}

static void test_functions_eval(void **state)
{
    (void)state;
    assert_int_equal(C("attribute_exists(s)"), 1);
    assert_int_equal(C("attribute_exists(nope)"), 0);
    assert_int_equal(C("attribute_not_exists(nope)"), 1);
    assert_int_equal(C("attribute_not_exists(s)"), 0);
    assert_int_equal(C("attribute_exists(m.a.b)"), 1);
    assert_int_equal(C("attribute_exists(m.a.x)"), 0);
    assert_int_equal(C("attribute_exists(l[2])"), 1);
    assert_int_equal(C("attribute_exists(l[3])"), 0);
    assert_int_equal(C("attribute_exists(s.x)"), 0);
    assert_int_equal(C("attribute_exists(z)"), 1);
    /* attribute_type on every type */
    assert_int_equal(C("attribute_type(s, :tS)"), 1);
    assert_int_equal(C("attribute_type(n, :tN)"), 1);
    assert_int_equal(C("attribute_type(b, :tB)"), 1);
    assert_int_equal(C("attribute_type(t, :tBOOL)"), 1);
    assert_int_equal(C("attribute_type(z, :tNULL)"), 1);
    assert_int_equal(C("attribute_type(l, :tL)"), 1);
    assert_int_equal(C("attribute_type(m, :tM)"), 1);
    assert_int_equal(C("attribute_type(ss, :tSS)"), 1);
    assert_int_equal(C("attribute_type(ns, :tNS)"), 1);
    assert_int_equal(C("attribute_type(bs, :tBS)"), 1);
    assert_int_equal(C("attribute_type(s, :tN)"), 0);
    assert_int_equal(C("attribute_type(nope, :tS)"), 0);
    /* begins_with */
    assert_int_equal(C("begins_with(s, :hel)"), 1);
    assert_int_equal(C("begins_with(s, :s)"), 1);
    assert_int_equal(C("begins_with(s, :x)"), 0);
    assert_int_equal(C("begins_with(s, :empty)"), 1);
    assert_int_equal(C("begins_with(b, :b1)"), 1);
    assert_int_equal(C("begins_with(b, :b9)"), 0);
    assert_int_equal(C("begins_with(n, :hel)"), 0);
    assert_int_equal(C("begins_with(b, :hel)"), 0);
    assert_int_equal(C("begins_with(nope, :hel)"), 0);
    /* contains */
    assert_int_equal(C("contains(s, :hel)"), 1);
    assert_int_equal(C("contains(s, :x)"), 0);
    assert_int_equal(C("contains(ss, :sa)"), 1);
    assert_int_equal(C("contains(ss, :x)"), 0);
    assert_int_equal(C("contains(ns, :n1)"), 1);
    assert_int_equal(C("contains(ns, :neg)"), 0);
    assert_int_equal(C("contains(ns, :sa)"), 0);
    assert_int_equal(C("contains(bs, :b1)"), 1);
    assert_int_equal(C("contains(bs, :b9)"), 0);
    assert_int_equal(C("contains(l, :x)"), 1);
    assert_int_equal(C("contains(l, :n1)"), 1);
    assert_int_equal(C("contains(l, :mk)"), 1);
    assert_int_equal(C("contains(l, :sa)"), 0);
    assert_int_equal(C("contains(b, :b1)"), 1);
    assert_int_equal(C("contains(n, :n1)"), 0);
    assert_int_equal(C("contains(m, :sa)"), 0);
    assert_int_equal(C("contains(nope, :sa)"), 0);
    assert_int_equal(C("contains(s, l[0])"), 0);
    /* size */
    assert_int_equal(C("size(s) = :n5"), 1);
    assert_int_equal(C("size(u) = :n8"), 1); /* UTF-16 units: the emoji counts 2 */
    assert_int_equal(C("size(b) = :n3"), 1);
    assert_int_equal(C("size(ss) = :n3"), 1);
    assert_int_equal(C("size(ns) = :n2"), 1);
    assert_int_equal(C("size(bs) = :n2"), 1);
    assert_int_equal(C("size(l) = :n3"), 1);
    assert_int_equal(C("size(m) = :n2"), 1);
    assert_int_equal(C("size(e) = :n0"), 1);
    assert_int_equal(C("size(n) = :n2"), 0);
    assert_int_equal(C("size(t) >= :n0"), 0);
    assert_int_equal(C("size(nope) = :n0"), 0);
    assert_int_equal(C("size(nope) <> :n0"), 1);
    assert_int_equal(C("size(l) > size(ns)"), 1);
    assert_int_equal(C("size(m.c[1]) BETWEEN :n1 AND :n2"), 1);
    assert_int_equal(C("size(s) IN (:n1, :n5)"), 1);
}

static void test_logic_and_precedence(void **state)
{
    (void)state;
    assert_int_equal(C("s = :s AND n = :n10"), 1);
    assert_int_equal(C("s = :s AND n = :n9"), 0);
    assert_int_equal(C("s = :x OR n = :n10"), 1);
    assert_int_equal(C("s = :x OR n = :n9"), 0);
    /* AND binds tighter than OR */
    assert_int_equal(C("s = :s OR s = :x AND n = :n9"), 1);
    assert_int_equal(C("(s = :s OR s = :x) AND n = :n9"), 0);
    assert_int_equal(C("n = :n9 AND s = :x OR s = :s"), 1);
    /* NOT binds tighter than AND */
    assert_int_equal(C("NOT s = :x AND n = :n9"), 0);
    assert_int_equal(C("NOT s = :x AND n = :n10"), 1);
    assert_int_equal(C("NOT (s = :s AND n = :n9)"), 1);
    assert_int_equal(C("NOT NOT s = :s"), 1);
    assert_int_equal(C("not s = :s or n = :n10"), 1);
    assert_int_equal(C("NOT attribute_exists(nope)"), 1);
    assert_int_equal(C("NOT n BETWEEN :n1 AND :n9"), 1);
    assert_int_equal(C("a = :s OR b = :s OR s = :s"), 1);
    assert_int_equal(C("s = :s AND n = :n10 AND t = :t AND z = :null"), 1);
    assert_int_equal(C("((s = :s) AND (n = :n10 OR n = :n9))"), 1);
    /* No item: only attribute_not_exists-style conditions hold. */
    std_env();
    assert_int_equal(eval_on("attribute_not_exists(s)", NULL), 1);
    assert_int_equal(eval_on("s = :s", NULL), 0);
    assert_int_equal(eval_on("s <> :s", NULL), 1);
}

/* ---- projections ---- */

static void test_projection(void **state)
{
    (void)state;
    assert_string_equal(P("s, n"), "{'n':{'N':'10'},'s':{'S':'hello'}}");
    assert_string_equal(P("m.a.b, m.c[1][0]"),
                        "{'m':{'M':{'a':{'M':{'b':{'S':'deep'}}},'c':{'L':[{'L':[{'N':'2'}]}]}}}}");
    assert_string_equal(P("l[2], l[0]"), "{'l':{'L':[{'S':'x'},{'M':{'k':{'S':'v'}}}]}}");
    assert_string_equal(P("l[2].k, l[1]"), "{'l':{'L':[{'N':'1'},{'M':{'k':{'S':'v'}}}]}}");
    assert_string_equal(P("l[7], nope, m.zz, s.x, n[0]"), "{}");
    assert_string_equal(P("#a.#b"), "{'m':{'M':{'a':{'M':{'b':{'S':'deep'}}}}}}");
    assert_string_equal(P("#dot"), "{'x.y':{'S':'dotted'}}");
    assert_string_equal(P("m.c"),
                        "{'m':{'M':{'c':{'L':[{'N':'1'},{'L':[{'N':'2'},{'N':'3'}]}]}}}}");
    std_env();
    ASSERT_ERR(perr(EXPR_PROJECTION, "s, s"),
               "Invalid ProjectionExpression: Two document paths overlap with each other; must "
               "remove or rewrite one of these paths; path one: [s], path two: [s]");
    ASSERT_ERR(perr(EXPR_PROJECTION, "m.a, m"),
               "Invalid ProjectionExpression: Two document paths overlap with each other; must "
               "remove or rewrite one of these paths; path one: [m, a], path two: [m]");
    ASSERT_ERR(perr(EXPR_PROJECTION, "l[0], l.x"),
               "Invalid ProjectionExpression: Two document paths conflict with each other; must "
               "remove or rewrite one of these paths; path one: [l, [0]], path two: [l, x]");
    ASSERT_ERR(perr(EXPR_PROJECTION, "#a, m.c"),
               "Invalid ProjectionExpression: Two document paths overlap with each other; must "
               "remove or rewrite one of these paths; path one: [m], path two: [m, c]");
    ASSERT_ERR(perr(EXPR_PROJECTION, "a = :s"),
               "Invalid ProjectionExpression: Syntax error; token: \"=\", near: \"a = :s\"");
    ASSERT_ERR(perr(EXPR_PROJECTION, "size(a)"),
               "Invalid ProjectionExpression: Syntax error; token: \"(\", near: \"size(a\"");
    assert_null(perr(EXPR_PROJECTION, "m.a, m.c, l[0], l[1]"));
    /* No item, no result. */
    expr_projection *pr;
    assert_int_equal(expr_parse_projection(&ENV, "s", &pr, &E), 0);
    assert_null(expr_project(pr, NULL, &A));
}

/* ---- unused placeholders ---- */

static void test_unused_placeholders(void **state)
{
    (void)state;
    env("{'#a':'s','#b':'n'}", "{':a':{'S':'1'},':b':{'S':'2'},':c':{'S':'3'}}");
    expr_node *n;
    assert_int_equal(expr_parse_condition(&ENV, EXPR_CONDITION, "#a = :a", &n, &E), 0);
    assert_int_equal(expr_env_check_unused(&ENV, &E), -1);
    assert_string_equal(
        E.msg, "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}");
    expr_projection *p;
    assert_int_equal(expr_parse_projection(&ENV, "#b", &p, &E), 0);
    assert_int_equal(expr_env_check_unused(&ENV, &E), -1);
    assert_string_equal(
        E.msg, "Value provided in ExpressionAttributeValues unused in expressions: keys: {:b, :c}");
    expr_update *u;
    assert_int_equal(expr_parse_update(&ENV, "SET x = :b, y = :c", &u, &E), 0);
    assert_int_equal(expr_env_check_unused(&ENV, &E), 0);
    /* DynamoDB lists keys in Java HashSet order: ":z" hashes before ":a". */
    env(NULL, "{':a':{'S':'1'},':z':{'S':'2'},':m':{'S':'3'}}");
    assert_int_equal(expr_parse_condition(&ENV, EXPR_CONDITION, "a = :m", &n, &E), 0);
    assert_int_equal(expr_env_check_unused(&ENV, &E), -1);
    assert_string_equal(
        E.msg, "Value provided in ExpressionAttributeValues unused in expressions: keys: {:z, :a}");
    env(NULL, NULL);
    assert_int_equal(expr_env_check_unused(&ENV, &E), 0);
}

/* ---- updates ---- */

static void test_update_set(void **state)
{
    (void)state;
    assert_string_equal(U("SET s = :v"), "OK");
    assert_string_equal(attr("s"), "{'S':'y'}");
    assert_string_equal(attr("id"), "{'S':'k'}");
    assert_string_equal(U("SET n = n + :one"), "OK");
    assert_string_equal(attr("n"), "{'N':'6'}");
    assert_string_equal(U("SET n = n - :half"), "OK");
    assert_string_equal(attr("n"), "{'N':'3.5'}");
    assert_string_equal(U("SET q = :tiny + :tiny2"), "OK");
    assert_string_equal(attr("q"), "{'N':'0.3'}");
    assert_string_equal(U("SET #n = #n+:one"), "OK");
    assert_string_equal(attr("n"), "{'N':'6'}");
    assert_string_equal(U("SET q = if_not_exists(q, :zero) + :one"), "OK");
    assert_string_equal(attr("q"), "{'N':'1'}");
    assert_string_equal(U("SET n = if_not_exists(n, :zero) + :one"), "OK");
    assert_string_equal(attr("n"), "{'N':'6'}");
    assert_string_equal(U("SET q = if_not_exists(s, :one)"), "OK");
    assert_string_equal(attr("q"), "{'S':'x'}");
    /* Every value comes from the old item: this swaps. */
    assert_string_equal(U("SET s = n, n = s"), "OK");
    assert_string_equal(attr("s"), "{'N':'5'}");
    assert_string_equal(attr("n"), "{'S':'x'}");
    assert_string_equal(U("SET q = m, m.z = :v"), "OK");
    assert_string_equal(attr("q"), "{'M':{'a':{'S':'b'}}}");
    assert_string_equal(attr("m"), "{'M':{'a':{'S':'b'},'z':{'S':'y'}}}");
    assert_string_equal(U("SET m.c = :v, e = :m"), "OK");
    assert_string_equal(attr("m"), "{'M':{'a':{'S':'b'},'c':{'S':'y'}}}");
    assert_string_equal(attr("e"), "{'M':{}}");
    /* A new item from nothing. */
    assert_string_equal(U_on("SET a = :v, b = :one", NULL), "OK");
    assert_string_equal(to_json(RES, true), "{'a':{'S':'y'},'b':{'N':'1'}}");
}

static void test_update_lists(void **state)
{
    (void)state;
    assert_string_equal(U("SET l = list_append(l, :l)"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'N':'1'},{'N':'2'},{'N':'3'},{'S':'z'}]}");
    assert_string_equal(U("SET l = list_append(:l, l)"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'S':'z'},{'N':'0'},{'N':'1'},{'N':'2'},{'N':'3'}]}");
    assert_string_equal(U("SET q = list_append(if_not_exists(q, :l), :l)"), "OK");
    assert_string_equal(attr("q"), "{'L':[{'S':'z'},{'S':'z'}]}");
    assert_string_equal(U("SET l[1] = :v"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'S':'y'},{'N':'2'},{'N':'3'}]}");
    /* Past the end appends, in index order. */
    assert_string_equal(U("SET l[9] = :v, l[7] = :one"), "OK");
    assert_string_equal(attr("l"),
                        "{'L':[{'N':'0'},{'N':'1'},{'N':'2'},{'N':'3'},{'N':'1'},{'S':'y'}]}");
    /* REMOVE uses the old positions and shifts the rest down. */
    assert_string_equal(U("REMOVE l[1], l[3]"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'N':'2'}]}");
    assert_string_equal(U("REMOVE l[3], l[1]"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'N':'2'}]}");
    assert_string_equal(U("REMOVE l[0]"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'1'},{'N':'2'},{'N':'3'}]}");
    assert_string_equal(U("REMOVE l[10]"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'N':'1'},{'N':'2'},{'N':'3'}]}");
    assert_string_equal(U("SET l[1] = :v REMOVE l[2]"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'S':'y'},{'N':'3'}]}");
    assert_string_equal(U("REMOVE l[0], l[1], l[2], l[3]"), "OK");
    assert_string_equal(attr("l"), "{'L':[]}");
    assert_string_equal(U("ADD l[1] :one, l[8] :one"), "OK");
    assert_string_equal(attr("l"), "{'L':[{'N':'0'},{'N':'2'},{'N':'2'},{'N':'3'},{'N':'1'}]}");
    assert_string_equal(U("SET s = list_append(s, :l)"),
                        "ERR:An operand in the update expression has an incorrect data type");
    assert_string_equal(U("SET q = list_append(nope, :l)"),
                        "ERR:The provided expression refers to an attribute that does not exist in "
                        "the item");
}

static void test_update_remove(void **state)
{
    (void)state;
    assert_string_equal(U("REMOVE s"), "OK");
    assert_string_equal(attr("s"), "-");
    assert_string_equal(attr("n"), "{'N':'5'}");
    assert_string_equal(U("REMOVE nope"), "OK");
    assert_string_equal(to_json(RES, true), to_json(J(UPD_ITEM), true));
    assert_string_equal(U("REMOVE m.a"), "OK");
    assert_string_equal(attr("m"), "{'M':{}}");
    assert_string_equal(U("REMOVE m.zz, s, n"), "OK");
    assert_string_equal(attr("m"), "{'M':{'a':{'S':'b'}}}");
    assert_string_equal(attr("s"), "-");
    assert_string_equal(attr("n"), "-");
    assert_string_equal(U("REMOVE s SET n = :one"), "OK");
    assert_string_equal(attr("n"), "{'N':'1'}");
    assert_string_equal(U("REMOVE nope.x"),
                        "ERR:The document path provided in the update expression is invalid for "
                        "update");
}

static void test_update_add_delete(void **state)
{
    (void)state;
    assert_string_equal(U("ADD n :one"), "OK");
    assert_string_equal(attr("n"), "{'N':'6'}");
    assert_string_equal(U("ADD q :half"), "OK");
    assert_string_equal(attr("q"), "{'N':'1.5'}");
    assert_string_equal(U("ADD ss :ss"), "OK");
    assert_string_equal(attr("ss"), "{'SS':['a','b','c']}");
    assert_string_equal(U("ADD q :ss, ns :ns"), "OK");
    assert_string_equal(attr("q"), "{'SS':['b','c']}");
    assert_string_equal(attr("ns"), "{'NS':['1','2']}");
    assert_string_equal(U("ADD m.k :one"), "OK");
    assert_string_equal(attr("m"), "{'M':{'a':{'S':'b'},'k':{'N':'1'}}}");
    assert_string_equal(U("add n :one, q :bs"), "OK");
    assert_string_equal(attr("q"), "{'BS':['AQ==']}");
    assert_string_equal(U("ADD s :one"),
                        "ERR:An operand in the update expression has an incorrect data type");
    assert_string_equal(U("ADD ss :ns"),
                        "ERR:An operand in the update expression has an incorrect data type");
    assert_string_equal(U("ADD n :ns"),
                        "ERR:An operand in the update expression has an incorrect data type");
    assert_string_equal(U("ADD nope.k :one"),
                        "ERR:The document path provided in the update expression is invalid for "
                        "update");
    assert_string_equal(U("DELETE ss :ss"), "OK");
    assert_string_equal(attr("ss"), "{'SS':['a']}");
    assert_string_equal(U("DELETE ns :nsall"), "OK");
    assert_string_equal(attr("ns"), "-"); /* empty sets do not exist */
    assert_string_equal(U("DELETE ns :ns"), "OK");
    assert_string_equal(attr("ns"), "{'NS':['1']}");
    assert_string_equal(U("DELETE nope :ss"), "OK");
    assert_string_equal(attr("nope"), "-");
    assert_string_equal(U("DELETE ss :ns"),
                        "ERR:An operand in the update expression has an incorrect data type");
    assert_string_equal(U("DELETE s :ss"),
                        "ERR:An operand in the update expression has an incorrect data type");
    assert_string_equal(U("ADD n :v"), "PARSE:Invalid UpdateExpression: Incorrect operand type for "
                                       "operator or function; operator: ADD, operand type: STRING, "
                                       "typeSet: ALLOWED_FOR_ADD_OPERAND");
    assert_string_equal(U("ADD n :l"), "PARSE:Invalid UpdateExpression: Incorrect operand type for "
                                       "operator or function; operator: ADD, operand type: LIST, "
                                       "typeSet: ALLOWED_FOR_ADD_OPERAND");
    assert_string_equal(U("DELETE n :one"),
                        "PARSE:Invalid UpdateExpression: Incorrect operand type for operator or "
                        "function; operator: DELETE, operand type: NUMBER, typeSet: "
                        "ALLOWED_FOR_DELETE_OPERAND");
    assert_string_equal(U("ADD n n"), "PARSE:Invalid UpdateExpression: Syntax error; token: \"n\", "
                                      "near: \"n n\"");
}

static void test_update_runtime_errors(void **state)
{
    (void)state;
    const char *path_err =
        "ERR:The document path provided in the update expression is invalid for update";
    const char *type_err = "ERR:An operand in the update expression has an incorrect data type";
    const char *missing =
        "ERR:The provided expression refers to an attribute that does not exist in the item";
    assert_string_equal(U("SET s = s + :one"), type_err);
    assert_string_equal(U("SET q = :one - s"), type_err);
    assert_string_equal(U("SET q = nope + :one"), missing);
    assert_string_equal(U("SET q = nope"), missing);
    assert_string_equal(U("SET m.x.y = :v"), path_err);
    assert_string_equal(U("SET s.x = :v"), path_err);
    assert_string_equal(U("SET l.x = :v"), path_err);
    assert_string_equal(U("SET m[0] = :v"), path_err);
    /* Order: wrong-typed parents first, then types, then missing things. */
    assert_string_equal(U("SET q = nope REMOVE s.x"), path_err);
    assert_string_equal(U("SET q = nope, r = s + :one"), type_err);
    assert_string_equal(U("SET q = nope REMOVE x.y"), path_err);
    assert_string_equal(U("REMOVE x.y SET q = nope"), missing);
    assert_string_equal(U("SET q = :n9e125 + :n9e125"),
                        "ERR:Number overflow. Attempting to store a number with magnitude larger "
                        "than supported range");
    assert_string_equal(U_on("ADD n :n9e125", "{'n':{'N':'9E+125'}}"),
                        "ERR:Number overflow. Attempting to store a number with magnitude larger "
                        "than supported range");
}

static void test_update_parse_errors(void **state)
{
    (void)state;
    env(NULL, UPD_VALUES);
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :v SET b = :v"),
               "Invalid UpdateExpression: The \"SET\" section can only be used once in an update "
               "expression;");
    ASSERT_ERR(perr(EXPR_UPDATE, "REMOVE a ADD n :one REMOVE b"),
               "Invalid UpdateExpression: The \"REMOVE\" section can only be used once in an "
               "update expression;");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :v, a = :v"),
               "Invalid UpdateExpression: Two document paths overlap with each other; must remove "
               "or rewrite one of these paths; path one: [a], path two: [a]");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :v REMOVE a.b"),
               "Invalid UpdateExpression: Two document paths overlap with each other; must remove "
               "or rewrite one of these paths; path one: [a], path two: [a, b]");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a[0] = :v REMOVE a.b"),
               "Invalid UpdateExpression: Two document paths conflict with each other; must remove "
               "or rewrite one of these paths; path one: [a, [0]], path two: [a, b]");
    ASSERT_ERR(perr(EXPR_UPDATE, "ADD a.b[2] :one DELETE a.b[2] :ss"),
               "Invalid UpdateExpression: Two document paths overlap with each other; must remove "
               "or rewrite one of these paths; path one: [a, b, [2]], path two: [a, b, [2]]");
    assert_null(perr(EXPR_UPDATE, "SET a.b = :v, a.c = :v, a.d[0] = :v REMOVE a.d[1]"));
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = foo(b)"),
               "Invalid UpdateExpression: Invalid function name; function: foo");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = size(b)"),
               "Invalid UpdateExpression: The function is not "
               "allowed in an update expression; function: "
               "size");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = if_not_exists(:v, :v)"),
               "Invalid UpdateExpression: Operator or function requires a document path; operator "
               "or function: if_not_exists");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = if_not_exists(b)"),
               "Invalid UpdateExpression: Incorrect number of operands for operator or function; "
               "operator or function: if_not_exists, number of operands: 1");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = list_append(:one, b)"),
               "Invalid UpdateExpression: Incorrect operand type for operator or function; "
               "operator or function: list_append, operand type: N");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :v + :one"),
               "Invalid UpdateExpression: Incorrect operand type for operator or function; "
               "operator or function: +, operand type: S");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a :v"),
               "Invalid UpdateExpression: Syntax error; token: \":v\", near: \"a :v\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :v b"),
               "Invalid UpdateExpression: Syntax error; token: \"b\", near: \":v b\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = b + c + d"),
               "Invalid UpdateExpression: Syntax error; token: \"+\", near: \"c + d\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET MyStr = myNum + 1"),
               "Invalid UpdateExpression: Syntax error; token: \"1\", near: \"+ 1\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET MyStr = myNum Mystr2 myNum2"),
               "Invalid UpdateExpression: Syntax error; token: \"Mystr2\", near: \"myNum Mystr2 "
               "myNum2\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET"),
               "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"SET\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :v,"),
               "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \",\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "REMOVE a = :v"),
               "Invalid UpdateExpression: Syntax error; token: \"=\", near: \"a = :v\"");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET #x = :v"),
               "Invalid UpdateExpression: An expression attribute name used in the document path "
               "is not defined; attribute name: #x");
    ASSERT_ERR(perr(EXPR_UPDATE, "SET a = :nope"),
               "Invalid UpdateExpression: An expression attribute value used in expression is not "
               "defined; attribute value: :nope");
    ASSERT_ERR(perr(EXPR_UPDATE, ""), "Invalid UpdateExpression: The expression can not be empty;");
    assert_null(perr(EXPR_UPDATE, "set a = :v remove b add c :one delete d :ss"));
    assert_null(perr(EXPR_UPDATE, "DELETE d :ss ADD c :one REMOVE b SET a = (:v)"));
}

static void test_update_paths(void **state)
{
    (void)state;
    env("{'#n':'name'}", UPD_VALUES);
    expr_update *u;
    assert_int_equal(
        expr_parse_update(&ENV, "SET a.b = :v, #n = :v REMOVE l[2] ADD c :one", &u, &E), 0);
    const expr_projection *p = expr_update_paths(u);
    assert_non_null(p);
    assert_int_equal(p->n, 4);
    assert_int_equal(p->paths[0].n, 2);
    assert_string_equal(p->paths[0].elems[1].name, "b");
    assert_string_equal(p->paths[1].elems[0].name, "name");
    assert_int_equal(p->paths[2].n, 2);
    assert_true(p->paths[2].elems[1].is_index);
    assert_int_equal(p->paths[2].elems[1].index, 2);
    assert_string_equal(p->paths[3].elems[0].name, "c");
    /* The paths project old and new images (ReturnValues UPDATED_*). */
    mv_value *old = J("{'a':{'M':{'b':{'S':'1'},'x':{'S':'2'}}},'l':{'L':[{'N':'0'},{'N':'1'},"
                      "{'N':'2'}]},'c':{'N':'4'}}");
    mv_value *nw;
    assert_int_equal(expr_apply_update(u, old, &A, &nw, &E), 0);
    assert_string_equal(to_json(expr_project(p, old, &A), true),
                        "{'a':{'M':{'b':{'S':'1'}}},'c':{'N':'4'},'l':{'L':[{'N':'2'}]}}");
    assert_string_equal(to_json(expr_project(p, nw, &A), true),
                        "{'a':{'M':{'b':{'S':'y'}}},'c':{'N':'5'},'name':{'S':'y'}}");
}

/* ---- key conditions ---- */

static const char *KC_VALUES = "{':p':{'S':'x'},':p2':{'S':'y'},':a':{'N':'1'},':b':{'N':'5'},"
                               "':s':{'S':'ab'},':e':{'S':''},':bin':{'B':'AQ=='}}";

static expr_key_cond KC;

/* Parses a key condition and checks it against pk (S) / sk (sk_type). */
static const char *kc(const char *expr, const char *sk, mv_type sk_type)
{
    env(NULL, KC_VALUES);
    expr_node *n;
    err_clear(&E);
    if (expr_parse_condition(&ENV, EXPR_KEY_CONDITION, expr, &n, &E) != 0)
        return arena_sprintf(&A, "PARSE:%s", E.msg);
    if (expr_key_condition(n, "pk", MV_S, sk, sk_type, &KC, &E) != 0) {
        assert_int_equal(E.code, ERR_VALIDATION);
        return arena_sprintf(&A, "%s", E.msg);
    }
    return "OK";
}

static void test_key_condition(void **state)
{
    (void)state;
    assert_string_equal(kc("pk = :p", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_NONE);
    assert_string_equal(KC.pk->u.str.ptr, "x");
    assert_null(KC.sk_a);
    assert_string_equal(kc("pk = :p AND sk > :a", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_GT);
    assert_string_equal(KC.sk_a->u.str.ptr, "1");
    assert_string_equal(kc(":a < sk AND :p = pk", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_GT);
    assert_string_equal(kc("pk = :p AND :b >= sk", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_LE);
    assert_string_equal(kc("pk = :p AND sk = :a", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_EQ);
    assert_string_equal(kc("pk = :p AND sk < :a", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_LT);
    assert_string_equal(kc("(pk = :p) AND (sk >= :a)", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_GE);
    assert_string_equal(kc("pk = :p AND sk BETWEEN :a AND :b", "sk", MV_N), "OK");
    assert_int_equal(KC.sk_op, SK_BETWEEN);
    assert_string_equal(KC.sk_a->u.str.ptr, "1");
    assert_string_equal(KC.sk_b->u.str.ptr, "5");
    assert_string_equal(kc("begins_with(sk, :s) AND pk = :p", "sk", MV_S), "OK");
    assert_int_equal(KC.sk_op, SK_BEGINS_WITH);
    assert_string_equal(kc("pk = :p AND begins_with(sk, :bin)", "sk", MV_B), "OK");
    assert_string_equal(kc("pk = :p", NULL, 0), "OK");

    assert_string_equal(kc("pk = :p OR sk = :a", "sk", MV_N),
                        "Invalid operator used in KeyConditionExpression: OR");
    assert_string_equal(kc("NOT pk = :p", "sk", MV_N),
                        "Invalid operator used in KeyConditionExpression: NOT");
    assert_string_equal(kc("pk = :p AND sk <> :a", "sk", MV_N),
                        "Invalid operator used in KeyConditionExpression: <>");
    assert_string_equal(kc("pk IN (:p, :p2)", "sk", MV_N),
                        "Invalid operator used in KeyConditionExpression: IN");
    assert_string_equal(kc("pk = :p AND attribute_exists(sk)", "sk", MV_N),
                        "Invalid operator used in KeyConditionExpression: attribute_exists");
    assert_string_equal(kc("pk = :p AND contains(sk, :s)", "sk", MV_S),
                        "Invalid operator used in KeyConditionExpression: contains");
    assert_string_equal(kc("pk = :p AND size(sk) > :a", "sk", MV_N),
                        "KeyConditionExpressions cannot contain nested operations");
    assert_string_equal(kc("sk = :a", "sk", MV_N), "Query condition missed key schema element: pk");
    assert_string_equal(kc("pk = :p AND attr1 = :a", "sk", MV_N),
                        "Query condition missed key schema element: sk");
    assert_string_equal(kc("pk = :p AND sk = :a", NULL, 0), "Query key condition not supported");
    assert_string_equal(kc("pk > :p", "sk", MV_N), "Query key condition not supported");
    assert_string_equal(kc("pk BETWEEN :p AND :p2", "sk", MV_N),
                        "Query key condition not supported");
    assert_string_equal(kc("pk = :a", "sk", MV_N), "One or more parameter values were invalid: "
                                                   "Condition parameter type does not match "
                                                   "schema type");
    assert_string_equal(kc("pk = :p AND sk = :s", "sk", MV_N),
                        "One or more parameter values were invalid: Condition parameter type does "
                        "not match schema type");
    assert_string_equal(kc("pk = :p AND begins_with(sk, :s)", "sk", MV_N),
                        "Invalid KeyConditionExpression: Incorrect operand type for operator or "
                        "function; operator or function: begins_with, operand type: N");
    assert_string_equal(kc("pk = :p AND begins_with(sk, :a)", "sk", MV_N),
                        "PARSE:Invalid KeyConditionExpression: Incorrect operand type for operator "
                        "or function; operator or function: begins_with, operand type: N");
    assert_string_equal(kc("pk.x = :p", "sk", MV_N),
                        "KeyConditionExpressions cannot have conditions on nested attributes");
    assert_string_equal(kc("pk = sk", "sk", MV_N),
                        "Invalid condition in KeyConditionExpression: "
                        "Multiple attribute names used in one condition");
    assert_string_equal(kc(":p = :p2", "sk", MV_N),
                        "Invalid condition in KeyConditionExpression: No key attribute specified");
    assert_string_equal(kc("pk = :p AND pk = :p2", "sk", MV_N),
                        "KeyConditionExpressions must only contain one condition per key");
    /* More conditions on other attributes than are remembered (16), then a
     * repeat: an error, never a read past the remembered names (found by
     * fuzz_expr: fuzz/regressions/fuzz_expr/kc-more-than-16-other-names). */
    {
        buf many;
        buf_init(&many);
        buf_puts(&many, "pk = :p");
        for (int i = 0; i < 20; i++)
            buf_printf(&many, " AND a%d = :a", i);
        buf_puts(&many, " AND a19 = :a AND a0 = :a");
        buf_putc(&many, '\0');
        assert_string_equal(kc((const char *)many.data, "sk", MV_N),
                            "KeyConditionExpressions must only contain one condition per key");
        buf_free(&many);
    }
    assert_string_equal(kc("pk = :e", "sk", MV_N),
                        "One or more parameter values are not valid. The AttributeValue for a key "
                        "attribute cannot contain an empty string value. Key: pk");
    assert_string_equal(kc("pk = :p AND :a BETWEEN sk AND :b", "sk", MV_N),
                        "Invalid condition in KeyConditionExpression: BETWEEN operator must have "
                        "the key attribute as its first operand");
    /* Key conditions evaluate like any condition, too. */
    env(NULL, KC_VALUES);
    expr_node *n;
    assert_int_equal(
        expr_parse_condition(&ENV, EXPR_KEY_CONDITION, "pk = :p AND sk BETWEEN :a AND :b", &n, &E),
        0);
    assert_int_equal(expr_eval_condition(n, J("{'pk':{'S':'x'},'sk':{'N':'3'}}"), &A, &E), 1);
    assert_int_equal(expr_eval_condition(n, J("{'pk':{'S':'x'},'sk':{'N':'6'}}"), &A, &E), 0);
    const expr_projection *paths = expr_condition_paths(n, &A);
    assert_int_equal(paths->n, 2);
    assert_string_equal(paths->paths[0].elems[0].name, "pk");
    assert_string_equal(paths->paths[1].elems[0].name, "sk");
}

/* ---- hostile input ---- */

static char *repeat(const char *s, int n)
{
    size_t len = strlen(s);
    char *r = arena_alloc(&A, len * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(r + len * (size_t)i, s, len);
    r[len * (size_t)n] = '\0';
    return r;
}

static void test_hostile_nesting(void **state)
{
    (void)state;
    /* 300 levels of parentheses: refused as a syntax error, not a crash. */
    char *deep = arena_sprintf(&A, "%ss = :s%s", repeat("(", 300), repeat(")", 300));
    ASSERT_PREFIX(cerr(deep), "Invalid ConditionExpression: Syntax error; token: ");
    ASSERT_PREFIX(cerr(repeat("(", 4000)), "Invalid ConditionExpression: Syntax error; token: ");
    ASSERT_PREFIX(cerr(repeat("size(", 800)), "Invalid ConditionExpression: Syntax error; token: ");
    ASSERT_PREFIX(cerr(arena_sprintf(&A, "%ss = :s", repeat("NOT ", 1000))),
                  "Invalid ConditionExpression: Syntax error; token: ");
    ASSERT_PREFIX(cerr(arena_sprintf(&A, "a = %s:s", repeat("(", 1000))),
                  "Invalid ConditionExpression: Syntax error; token: ");
    /* 100 legitimate levels work. */
    char *nest = arena_sprintf(&A, "%ss = :s%s", repeat("(s = :s AND ", 100), repeat(")", 100));
    assert_int_equal(C(nest), 1);
    assert_int_equal(C(arena_sprintf(&A, "%ss = :s", repeat("NOT ", 200))), 1);
    assert_int_equal(C(arena_sprintf(&A, "%ss = :s", repeat("NOT ", 201))), 0);
    /* Long flat chains need no recursion; 300 operators is DynamoDB's limit. */
    assert_int_equal(C(arena_sprintf(&A, "%ss = :s", repeat("s = :s AND ", 149))), 1);
    assert_int_equal(C(arena_sprintf(&A, "%ss = :s", repeat("s = :x OR ", 149))), 1);
    ASSERT_ERR(cerr(arena_sprintf(&A, "%ss = :s", repeat("s = :s AND ", 150))),
               "Invalid ConditionExpression: The expression contains too many operators; operator "
               "count: 301");
    ASSERT_ERR(cerr(arena_sprintf(&A, "%ss = :s", repeat("s = :s AND ", 360))),
               "Invalid ConditionExpression: The expression contains too many operators; operator "
               "count: 721");
    env(NULL, UPD_VALUES);
    ASSERT_ERR(perr(EXPR_UPDATE, arena_sprintf(&A, "SET %sz = :one", repeat("a=:one+:one,", 301))),
               "Invalid UpdateExpression: The expression contains too many operators; operator "
               "count: 301");
    /* Unclosed parentheses, deep and ambiguous. */
    ASSERT_PREFIX(cerr(arena_sprintf(&A, "%sa", repeat("( ", 250))),
                  "Invalid ConditionExpression: Syntax error; token: \"<EOF>\"");
    ASSERT_PREFIX(cerr(arena_sprintf(&A, "%sa = :s", repeat("(a = :s) AND (", 200))),
                  "Invalid ConditionExpression: Syntax error; token: \"<EOF>\"");
}

static void test_hostile_garbage(void **state)
{
    (void)state;
    /* 10,000 characters of garbage: refused by size before anything else. */
    char *g = arena_alloc(&A, 10001);
    for (int i = 0; i < 10000; i++)
        g[i] = (char)(33 + (i * 7919) % 94);
    g[10000] = '\0';
    ASSERT_ERR(cerr(g), "Invalid ConditionExpression: Expression size has exceeded the maximum "
                        "allowed size; expression size: 10000");
    /* 4,000 bytes of garbage, including high bytes: a syntax error. */
    uint32_t x = 12345;
    for (int round = 0; round < 20; round++) {
        char *t = arena_alloc(&A, 4001);
        for (int i = 0; i < 4000; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            t[i] = (char)(1 + x % 255);
        }
        t[4000] = '\0';
        std_env();
        const char *m1 = perr(EXPR_CONDITION, t);
        const char *m2 = perr(EXPR_UPDATE, t);
        const char *m3 = perr(EXPR_PROJECTION, t);
        assert_non_null(m1);
        assert_non_null(m2);
        assert_non_null(m3);
        assert_true(strlen(m1) < sizeof(E.msg));
    }
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80         ? 1
                   : (*p >> 5) == 6  ? 2
                   : (*p >> 4) == 14 ? 3
                   : (*p >> 3) == 30 ? 4
                                     : 0;
        if (n == 0) return false;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80) return false;
        p += n;
    }
    return true;
}

static void test_long_messages(void **state)
{
    (void)state;
    /* A long token makes a long message: truncated, still valid UTF-8. */
    for (int spaces = 940; spaces < 1000; spaces++) {
        char *t = arena_sprintf(&A, "a =%s\xc3\xa9\xc3\xa9", repeat(" ", spaces));
        const char *m = cerr(t);
        ASSERT_PREFIX(m, "Invalid ConditionExpression: Syntax error; token: \"\xc3\xa9\", near: ");
        assert_true(strlen(m) < sizeof(E.msg));
        assert_true(valid_utf8(m));
    }
    const char *m = cerr(arena_sprintf(&A, "= %s", repeat("abc", 1300)));
    ASSERT_PREFIX(m, "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"= abcabc");
    /* A long undefined placeholder is echoed (truncated). */
    m = cerr(arena_sprintf(&A, "#%s = :s", repeat("x", 2000)));
    ASSERT_PREFIX(m, "Invalid ConditionExpression: An expression attribute name used in the "
                     "document path is not defined; attribute name: #xxx");
}

static void test_nested_updates(void **state)
{
    (void)state;
    const char *item = "{'m':{'M':{'l':{'L':[{'M':{'x':{'N':'1'}}},{'SS':['a']},{'L':[]}]},"
                       "'n':{'M':{}}}}}";
    assert_string_equal(U_on("SET m.l[0].x = m.l[0].x + :one, m.n.k = :v", item), "OK");
    assert_string_equal(attr("m"), "{'M':{'l':{'L':[{'M':{'x':{'N':'2'}}},{'SS':['a']},{'L':[]}]},"
                                   "'n':{'M':{'k':{'S':'y'}}}}}");
    assert_string_equal(U_on("ADD m.l[1] :ss DELETE m.l[5] :ss", item), "OK");
    assert_string_equal(attr("m"),
                        "{'M':{'l':{'L':[{'M':{'x':{'N':'1'}}},{'SS':['a','b','c']},{'L':[]}]},"
                        "'n':{'M':{}}}}");
    assert_string_equal(U_on("REMOVE m.l[0].x, m.l[2] SET m.l[1] = :v", item), "OK");
    assert_string_equal(attr("m"), "{'M':{'l':{'L':[{'M':{}},{'S':'y'}]},'n':{'M':{}}}}");
    assert_string_equal(U_on("SET m.l[2][0] = :v, m.l[2][3] = :one", item), "OK");
    assert_string_equal(
        attr("m"), "{'M':{'l':{'L':[{'M':{'x':{'N':'1'}}},{'SS':['a']},{'L':[{'S':'y'},{'N':'1'}"
                   "]}]},'n':{'M':{}}}}");
    assert_string_equal(U_on("SET m.l[1].x = :v", item),
                        "ERR:The document path provided in the update expression is invalid for "
                        "update");
    assert_string_equal(U_on("SET m.l[3].x = :v", item),
                        "ERR:The document path provided in the update expression is invalid for "
                        "update");
    /* The old item is never modified. */
    mv_value *old = J(item);
    const char *before = to_json(old, true);
    env(NULL, UPD_VALUES);
    expr_update *u;
    assert_int_equal(expr_parse_update(&ENV, "REMOVE m.l[0] SET m.n.k = :v", &u, &E), 0);
    mv_value *nw;
    assert_int_equal(expr_apply_update(u, old, &A, &nw, &E), 0);
    assert_string_equal(to_json(old, true), before);
    assert_string_not_equal(to_json(nw, true), before);
}

static void test_null_arguments(void **state)
{
    (void)state;
    assert_int_equal(expr_eval_condition(NULL, NULL, &A, &E), -1);
    mv_value *out;
    assert_int_equal(expr_apply_update(NULL, NULL, &A, &out, &E), -1);
    assert_null(expr_update_paths(NULL));
    assert_null(expr_path_get(NULL, J("{}")));
    assert_non_null(expr_condition_paths(NULL, &A));
    assert_string_equal(expr_kind_name(EXPR_FILTER), "FilterExpression");
    assert_string_equal(expr_kind_name(EXPR_KEY_CONDITION), "KeyConditionExpression");
    /* NULL text is the empty expression. */
    std_env();
    ASSERT_ERR(perr(EXPR_UPDATE, NULL),
               "Invalid UpdateExpression: The expression can not be empty;");
}

/* Random token soup through every parser; whatever parses must also run. */
static void test_fuzz_token_soup(void **state)
{
    (void)state;
    static const char *const vocab[] = {
        "s",
        "n",
        "m.a",
        "l[0]",
        "#a",
        "#nope",
        ":s",
        ":n1",
        ":l",
        ":ss",
        ":t",
        "(",
        ")",
        "[",
        "]",
        "[1]",
        ".",
        ",",
        "=",
        "<>",
        "<",
        ">=",
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "size(",
        "contains(",
        "begins_with(",
        "attribute_exists(",
        "attribute_type(",
        "if_not_exists(",
        "list_append(",
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "+",
        "-",
        "0",
        "99",
        "name",
        "\xc3\xa9",
        " ",
        "\t",
        "#dot",
        "ss",
        "ns",
        "z",
        ":n10",
        ":mk",
        "foo(",
        "_x",
    };
    const size_t nv = sizeof(vocab) / sizeof(vocab[0]);
    uint32_t x = 987654321;
    int parsed = 0;
    for (int iter = 0; iter < 6000; iter++) {
        if (iter % 200 == 0) {
            arena_free(&A);
            arena_init(&A);
        }
        char text[600];
        size_t len = 0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int ntok = 1 + (int)(x % 24);
        for (int k = 0; k < ntok; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            const char *w = vocab[x % nv];
            size_t wl = strlen(w);
            if (len + wl + 2 >= sizeof(text)) break;
            memcpy(text + len, w, wl);
            len += wl;
            if (x & 0x100) text[len++] = ' ';
        }
        text[len] = '\0';
        std_env();
        const mv_value *item = J(ITEM);
        expr_node *n;
        if (expr_parse_condition(&ENV, EXPR_FILTER, text, &n, &E) == 0) {
            parsed++;
            int r = expr_eval_condition(n, item, &A, &E);
            assert_true(r == 0 || r == 1);
            assert_true(expr_eval_condition(n, NULL, &A, &E) >= 0);
            expr_key_cond k;
            (void)expr_key_condition(n, "s", MV_S, "n", MV_N, &k, &E);
        }
        expr_update *u;
        if (expr_parse_update(&ENV, text, &u, &E) == 0) {
            parsed++;
            mv_value *out;
            (void)expr_apply_update(u, item, &A, &out, &E);
            (void)expr_apply_update(u, NULL, &A, &out, &E);
        }
        expr_projection *p;
        if (expr_parse_projection(&ENV, text, &p, &E) == 0) {
            parsed++;
            assert_non_null(expr_project(p, item, &A));
        }
        (void)expr_env_check_unused(&ENV, &E);
    }
    assert_true(parsed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_syntax_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_reserved_words, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_placeholder_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_function_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_operand_type_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_parentheses, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_paths_and_indexes, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_compare_scalars, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_compare_documents, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_between_in, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_functions_eval, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_logic_and_precedence, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_projection, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_unused_placeholders, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_set, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_lists, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_remove, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_add_delete, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_runtime_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_parse_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_update_paths, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_condition, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_nesting, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_garbage, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_long_messages, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_nested_updates, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_null_arguments, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_token_soup, arena_setup, arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
