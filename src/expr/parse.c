/* parse.c - lexer, recursive-descent parser and validator for the five kinds
 * of DynamoDB expression (condition, filter, key condition, projection,
 * update), plus the placeholder tables of expr_env.
 *
 * How a text becomes a tree:
 *
 *   1. Size checks: an empty or all-blank text is "The expression can not be
 *      empty;", more than 4096 bytes is "Expression size has exceeded the
 *      maximum allowed size; expression size: N".
 *   2. The lexer cuts the whole text into tokens up front: names
 *      ([A-Za-z][A-Za-z0-9_]*; AND OR NOT BETWEEN IN SET REMOVE ADD DELETE are
 *      keywords in any case), #placeholders, :placeholders, list indexes
 *      ("0" or [1-9][0-9]*), the operators = <> < <= > >= + - and the
 *      punctuation ( ) [ ] , . ; anything else is a one-character "bad"
 *      token that only shows up in a syntax error.
 *   3. The parser follows DynamoDB's grammar:
 *        condition  := and (OR and)*
 *        and        := not (AND not)*
 *        not        := NOT* primary
 *        primary    := comparison | '(' condition ')'      (tried in that order)
 *        comparison := operand comparator operand
 *                    | operand BETWEEN operand AND operand
 *                    | operand IN '(' operand (',' operand)* ')'
 *                    | function-call
 *        operand    := :value | '(' operand ')' | name '(' args ')' | path
 *        path       := (name | #name) ('.' (name | #name) | '[' index ']')*
 *        update     := (SET set (',' set)* | REMOVE path (',' path)*
 *                     | ADD path :value (',' ...)* | DELETE path :value (',' ...)*)+
 *        set        := path '=' operand (('+' | '-') operand)?
 *        projection := path (',' path)*
 *      A '(' at the start of a primary is ambiguous ("(a = :v)" versus
 *      "(a) = :v"), so the parser tries a comparison first and falls back to
 *      a parenthesised condition (the order of dynalite's grammar), reporting
 *      the syntax error of whichever attempt got further. The comparison
 *      attempt never backtracks, so the cost stays quadratic at worst, and nesting
 *      (parentheses, function calls, NOTs) is capped at EXPR_MAX_DEPTH so
 *      hostile input cannot exhaust the stack. A syntax error reads
 *      'Syntax error; token: "<tok>", near: "<previous token .. next token>"'.
 *      Two pairs of parentheses straight around one thing are refused at once
 *      ("The expression has redundant parentheses;").
 *   4. At most 300 operators and functions ("The expression contains too
 *      many operators; operator count: N").
 *   5. Pass 1, in written order: reserved words used as bare names, list
 *      indexes out of range, unknown functions, functions used in the wrong
 *      place, operand counts.
 *   6. Pass 2: #name and :value resolution (marking them used in the env),
 *      path depth (32), operand types known from :values (ordering
 *      comparisons need S/N/B, begins_with S/B, size not N/BOOL/NULL, ...),
 *      "first operand must be distinct", BETWEEN bounds, IN's 100 operands.
 *      Updates first check each SET/REMOVE/ADD/DELETE section appears once,
 *      then resolve the written paths and refuse overlapping or conflicting
 *      ones, then check the operands from the last action back to the first,
 *      as DynamoDB does. Projections refuse overlapping paths too.
 *
 * Every message is prefixed "Invalid <Kind>: ". Everything is allocated from
 * the env's arena; nothing is freed.
 */
#include "expr/internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPR_MAX_BYTES  4096
#define EXPR_MAX_DEPTH  256 /* nesting of parentheses, function calls and NOTs */
#define PATH_MAX_LEVELS 32
#define IN_MAX_OPERANDS 100
#define MAX_OPERATORS   300 /* comparators, AND/OR/NOT, BETWEEN, IN, functions, + - */

/* AWS's reserved words, sorted (memcmp order). The keywords (AND, OR, NOT,
 * BETWEEN, IN, SET, ADD, DELETE) are left out because the lexer turns them
 * into keyword tokens, which give a syntax error instead; CONVERT and SIZE
 * are on the published list but DynamoDB accepts them as names. */
/* clang-format off */
static const char *const reserved_words[] = {
    "ABORT", "ABSOLUTE", "ACTION", "AFTER", "AGENT", "AGGREGATE", "ALL", "ALLOCATE", "ALTER",
    "ANALYZE", "ANY", "ARCHIVE", "ARE", "ARRAY", "AS", "ASC", "ASCII", "ASENSITIVE",
    "ASSERTION", "ASYMMETRIC", "AT", "ATOMIC", "ATTACH", "ATTRIBUTE", "AUTH", "AUTHORIZATION",
    "AUTHORIZE", "AUTO", "AVG", "BACK", "BACKUP", "BASE", "BATCH", "BEFORE", "BEGIN", "BIGINT",
    "BINARY", "BIT", "BLOB", "BLOCK", "BOOLEAN", "BOTH", "BREADTH", "BUCKET", "BULK", "BY",
    "BYTE", "CALL", "CALLED", "CALLING", "CAPACITY", "CASCADE", "CASCADED", "CASE", "CAST",
    "CATALOG", "CHAR", "CHARACTER", "CHECK", "CLASS", "CLOB", "CLOSE", "CLUSTER", "CLUSTERED",
    "CLUSTERING", "CLUSTERS", "COALESCE", "COLLATE", "COLLATION", "COLLECTION", "COLUMN",
    "COLUMNS", "COMBINE", "COMMENT", "COMMIT", "COMPACT", "COMPILE", "COMPRESS", "CONDITION",
    "CONFLICT", "CONNECT", "CONNECTION", "CONSISTENCY", "CONSISTENT", "CONSTRAINT",
    "CONSTRAINTS", "CONSTRUCTOR", "CONSUMED", "CONTINUE", "COPY", "CORRESPONDING", "COUNT",
    "COUNTER", "CREATE", "CROSS", "CUBE", "CURRENT", "CURSOR", "CYCLE", "DATA", "DATABASE",
    "DATE", "DATETIME", "DAY", "DEALLOCATE", "DEC", "DECIMAL", "DECLARE", "DEFAULT",
    "DEFERRABLE", "DEFERRED", "DEFINE", "DEFINED", "DEFINITION", "DELIMITED", "DEPTH", "DEREF",
    "DESC", "DESCRIBE", "DESCRIPTOR", "DETACH", "DETERMINISTIC", "DIAGNOSTICS", "DIRECTORIES",
    "DISABLE", "DISCONNECT", "DISTINCT", "DISTRIBUTE", "DO", "DOMAIN", "DOUBLE", "DROP", "DUMP",
    "DURATION", "DYNAMIC", "EACH", "ELEMENT", "ELSE", "ELSEIF", "EMPTY", "ENABLE", "END",
    "EQUAL", "EQUALS", "ERROR", "ESCAPE", "ESCAPED", "EVAL", "EVALUATE", "EXCEEDED", "EXCEPT",
    "EXCEPTION", "EXCEPTIONS", "EXCLUSIVE", "EXEC", "EXECUTE", "EXISTS", "EXIT", "EXPLAIN",
    "EXPLODE", "EXPORT", "EXPRESSION", "EXTENDED", "EXTERNAL", "EXTRACT", "FAIL", "FALSE",
    "FAMILY", "FETCH", "FIELDS", "FILE", "FILTER", "FILTERING", "FINAL", "FINISH", "FIRST",
    "FIXED", "FLATTERN", "FLOAT", "FOR", "FORCE", "FOREIGN", "FORMAT", "FORWARD", "FOUND",
    "FREE", "FROM", "FULL", "FUNCTION", "FUNCTIONS", "GENERAL", "GENERATE", "GET", "GLOB",
    "GLOBAL", "GO", "GOTO", "GRANT", "GREATER", "GROUP", "GROUPING", "HANDLER", "HASH", "HAVE",
    "HAVING", "HEAP", "HIDDEN", "HOLD", "HOUR", "IDENTIFIED", "IDENTITY", "IF", "IGNORE",
    "IMMEDIATE", "IMPORT", "INCLUDING", "INCLUSIVE", "INCREMENT", "INCREMENTAL", "INDEX",
    "INDEXED", "INDEXES", "INDICATOR", "INFINITE", "INITIALLY", "INLINE", "INNER", "INNTER",
    "INOUT", "INPUT", "INSENSITIVE", "INSERT", "INSTEAD", "INT", "INTEGER", "INTERSECT",
    "INTERVAL", "INTO", "INVALIDATE", "IS", "ISOLATION", "ITEM", "ITEMS", "ITERATE", "JOIN",
    "KEY", "KEYS", "LAG", "LANGUAGE", "LARGE", "LAST", "LATERAL", "LEAD", "LEADING", "LEAVE",
    "LEFT", "LENGTH", "LESS", "LEVEL", "LIKE", "LIMIT", "LIMITED", "LINES", "LIST", "LOAD",
    "LOCAL", "LOCALTIME", "LOCALTIMESTAMP", "LOCATION", "LOCATOR", "LOCK", "LOCKS", "LOG",
    "LOGED", "LONG", "LOOP", "LOWER", "MAP", "MATCH", "MATERIALIZED", "MAX", "MAXLEN", "MEMBER",
    "MERGE", "METHOD", "METRICS", "MIN", "MINUS", "MINUTE", "MISSING", "MOD", "MODE",
    "MODIFIES", "MODIFY", "MODULE", "MONTH", "MULTI", "MULTISET", "NAME", "NAMES", "NATIONAL",
    "NATURAL", "NCHAR", "NCLOB", "NEW", "NEXT", "NO", "NONE", "NULL", "NULLIF", "NUMBER",
    "NUMERIC", "OBJECT", "OF", "OFFLINE", "OFFSET", "OLD", "ON", "ONLINE", "ONLY", "OPAQUE",
    "OPEN", "OPERATOR", "OPTION", "ORDER", "ORDINALITY", "OTHER", "OTHERS", "OUT", "OUTER",
    "OUTPUT", "OVER", "OVERLAPS", "OVERRIDE", "OWNER", "PAD", "PARALLEL", "PARAMETER",
    "PARAMETERS", "PARTIAL", "PARTITION", "PARTITIONED", "PARTITIONS", "PATH", "PERCENT",
    "PERCENTILE", "PERMISSION", "PERMISSIONS", "PIPE", "PIPELINED", "PLAN", "POOL", "POSITION",
    "PRECISION", "PREPARE", "PRESERVE", "PRIMARY", "PRIOR", "PRIVATE", "PRIVILEGES",
    "PROCEDURE", "PROCESSED", "PROJECT", "PROJECTION", "PROPERTY", "PROVISIONING", "PUBLIC",
    "PUT", "QUERY", "QUIT", "QUORUM", "RAISE", "RANDOM", "RANGE", "RANK", "RAW", "READ",
    "READS", "REAL", "REBUILD", "RECORD", "RECURSIVE", "REDUCE", "REF", "REFERENCE",
    "REFERENCES", "REFERENCING", "REGEXP", "REGION", "REINDEX", "RELATIVE", "RELEASE",
    "REMAINDER", "RENAME", "REPEAT", "REPLACE", "REQUEST", "RESET", "RESIGNAL", "RESOURCE",
    "RESPONSE", "RESTORE", "RESTRICT", "RESULT", "RETURN", "RETURNING", "RETURNS", "REVERSE",
    "REVOKE", "RIGHT", "ROLE", "ROLES", "ROLLBACK", "ROLLUP", "ROUTINE", "ROW", "ROWS", "RULE",
    "RULES", "SAMPLE", "SATISFIES", "SAVE", "SAVEPOINT", "SCAN", "SCHEMA", "SCOPE", "SCROLL",
    "SEARCH", "SECOND", "SECTION", "SEGMENT", "SEGMENTS", "SELECT", "SELF", "SEMI", "SENSITIVE",
    "SEPARATE", "SEQUENCE", "SERIALIZABLE", "SESSION", "SETS", "SHARD", "SHARE", "SHARED",
    "SHORT", "SHOW", "SIGNAL", "SIMILAR", "SKEWED", "SMALLINT", "SNAPSHOT", "SOME", "SOURCE",
    "SPACE", "SPACES", "SPARSE", "SPECIFIC", "SPECIFICTYPE", "SPLIT", "SQL", "SQLCODE",
    "SQLERROR", "SQLEXCEPTION", "SQLSTATE", "SQLWARNING", "START", "STATE", "STATIC", "STATUS",
    "STORAGE", "STORE", "STORED", "STREAM", "STRING", "STRUCT", "STYLE", "SUB", "SUBMULTISET",
    "SUBPARTITION", "SUBSTRING", "SUBTYPE", "SUM", "SUPER", "SYMMETRIC", "SYNONYM", "SYSTEM",
    "TABLE", "TABLESAMPLE", "TEMP", "TEMPORARY", "TERMINATED", "TEXT", "THAN", "THEN",
    "THROUGHPUT", "TIME", "TIMESTAMP", "TIMEZONE", "TINYINT", "TO", "TOKEN", "TOTAL", "TOUCH",
    "TRAILING", "TRANSACTION", "TRANSFORM", "TRANSLATE", "TRANSLATION", "TREAT", "TRIGGER",
    "TRIM", "TRUE", "TRUNCATE", "TTL", "TUPLE", "TYPE", "UNDER", "UNDO", "UNION", "UNIQUE",
    "UNIT", "UNKNOWN", "UNLOGGED", "UNNEST", "UNPROCESSED", "UNSIGNED", "UNTIL", "UPDATE",
    "UPPER", "URL", "USAGE", "USE", "USER", "USERS", "USING", "UUID", "VACUUM", "VALUE",
    "VALUED", "VALUES", "VARCHAR", "VARIABLE", "VARIANCE", "VARINT", "VARYING", "VIEW", "VIEWS",
    "VIRTUAL", "VOID", "WAIT", "WHEN", "WHENEVER", "WHERE", "WHILE", "WINDOW", "WITH", "WITHIN",
    "WITHOUT", "WORK", "WRAPPED", "WRITE", "YEAR", "ZONE",
};
/* clang-format on */

static int cmp_word(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

static bool is_reserved(const char *s, size_t len)
{
    char up[32];
    if (len == 0 || len >= sizeof(up)) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    up[len] = '\0';
    return bsearch(up, reserved_words, sizeof(reserved_words) / sizeof(reserved_words[0]),
                   sizeof(reserved_words[0]), cmp_word) != NULL;
}

const char *expr_kind_name(expr_kind k)
{
    switch (k) {
    case EXPR_CONDITION:
        return "ConditionExpression";
    case EXPR_FILTER:
        return "FilterExpression";
    case EXPR_KEY_CONDITION:
        return "KeyConditionExpression";
    case EXPR_PROJECTION:
        return "ProjectionExpression";
    case EXPR_UPDATE:
        return "UpdateExpression";
    }
    return "Expression";
}

/* ---- Placeholder tables ---- */

void expr_env_init(expr_env *env, arena *a, size_t n_names, const char **name_keys,
                   const char **name_vals, const mv_value *values)
{
    env->a = a;
    env->n_names = (name_keys && name_vals) ? n_names : 0;
    env->name_keys = name_keys;
    env->name_vals = name_vals;
    env->name_used = env->n_names ? arena_calloc(a, env->n_names, sizeof(bool)) : NULL;
    env->values = (values && values->type == MV_M) ? values : NULL;
    env->value_used = (env->values && env->values->u.map.n)
                          ? arena_calloc(a, env->values->u.map.n, sizeof(bool))
                          : NULL;
}

/* Java's String.hashCode over the key's bytes (keys are ASCII in practice). */
static uint32_t java_hash(const char *s)
{
    uint32_t h = 0;
    for (; *s; s++)
        h = 31u * h + (unsigned char)*s;
    return h;
}

typedef struct hkey {
    const char *key;
    uint32_t slot;
    size_t order;
} hkey;

static int cmp_hkey(const void *x, const void *y)
{
    const hkey *a = x, *b = y;
    if (a->slot != b->slot) return a->slot < b->slot ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* DynamoDB lists the unused keys in the iteration order of a Java HashSet
 * sized for all `total` keys; reproducing it keeps messages identical. */
static int report_unused(err *e, const char *what, const char **keys, size_t n, size_t total)
{
    hkey hk[64];
    size_t m = n < 64 ? n : 64;
    size_t want = (size_t)((double)total / 0.75) + 1;
    if (want < 16) want = 16;
    uint32_t cap = 1;
    while (cap < want && cap < (1u << 30))
        cap <<= 1;
    for (size_t i = 0; i < m; i++) {
        uint32_t h = java_hash(keys[i]);
        hk[i].key = keys[i];
        hk[i].slot = (h ^ (h >> 16)) & (cap - 1);
        hk[i].order = i;
    }
    qsort(hk, m, sizeof(hk[0]), cmp_hkey);
    char list[900];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < m; i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", hk[i].key);
        if (w < 0 || (size_t)w >= sizeof(list) - len) break;
        len += (size_t)w;
    }
    return err_validation(e, "Value provided in %s unused in expressions: keys: {%s}", what, list);
}

int expr_env_check_unused(const expr_env *env, err *e)
{
    const char *keys[64];
    size_t n = 0;
    for (size_t i = 0; i < env->n_names; i++)
        if (!env->name_used[i] && env->name_keys[i] && n < 64) keys[n++] = env->name_keys[i];
    if (n) return report_unused(e, "ExpressionAttributeNames", keys, n, env->n_names);
    if (env->values) {
        const mv_value *m = env->values;
        for (size_t i = 0; i < m->u.map.n; i++)
            if (!env->value_used[i] && n < 64) keys[n++] = m->u.map.members[i].name;
        if (n) return report_unused(e, "ExpressionAttributeValues", keys, n, m->u.map.n);
    }
    return 0;
}

static const char *env_name(const expr_env *env, const char *key, size_t len)
{
    for (size_t i = 0; i < env->n_names; i++) {
        const char *k = env->name_keys[i];
        if (k && strlen(k) == len && memcmp(k, key, len) == 0) {
            env->name_used[i] = true;
            return env->name_vals[i];
        }
    }
    return NULL;
}

static const mv_value *env_value(const expr_env *env, const char *key, size_t len)
{
    if (!env->values) return NULL;
    const mv_value *m = env->values;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const mv_member *mb = &m->u.map.members[i];
        if (mb->name_len == len && memcmp(mb->name, key, len) == 0) {
            env->value_used[i] = true;
            return mb->value;
        }
    }
    return NULL;
}

/* ---- Lexer ---- */

typedef enum tok_kind {
    T_EOF = 0,
    T_ID,    /* name */
    T_NAME,  /* #name */
    T_VALUE, /* :value */
    T_INT,   /* list index */
    T_BAD,
    T_AND,
    T_OR,
    T_NOT,
    T_BETWEEN,
    T_IN,
    T_SET,
    T_REMOVE,
    T_ADD,
    T_DELETE,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
    T_DOT,
    T_PLUS,
    T_MINUS,
} tok_kind;

typedef struct token {
    tok_kind k;
    size_t start, end; /* byte offsets into the text */
} token;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_word(char c)
{
    return is_letter(c) || is_digit(c) || c == '_';
}

static bool word_is(const char *s, size_t len, const char *kw)
{
    if (strlen(kw) != len) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (c != kw[i]) return false;
    }
    return true;
}

static tok_kind keyword(const char *s, size_t len)
{
    static const struct {
        const char *w;
        tok_kind k;
    } kws[] = {
        {"AND", T_AND}, {"OR", T_OR},   {"NOT", T_NOT},       {"BETWEEN", T_BETWEEN}, {"IN", T_IN},
        {"SET", T_SET}, {"ADD", T_ADD}, {"REMOVE", T_REMOVE}, {"DELETE", T_DELETE},
    };
    for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
        if (word_is(s, len, kws[i].w)) return kws[i].k;
    return T_ID;
}

/* Length of the UTF-8 sequence starting at s (1 for stray bytes). */
static size_t utf8_len(const char *s, size_t avail)
{
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (n > avail) return 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) return 1;
    return n;
}

/* Cuts text into toks; returns the token count, the last token being T_EOF.
 * With toks NULL it only counts. */
static size_t tokenize(const char *s, size_t len, token *toks)
{
    size_t n = 0, i = 0;
    while (i < len) {
        char c = s[i];
        if (is_blank(c)) {
            i++;
            continue;
        }
        size_t start = i;
        tok_kind k;
        if (is_letter(c)) {
            while (i < len && is_word(s[i]))
                i++;
            k = keyword(s + start, i - start);
        } else if (c == '#' || c == ':') {
            i++;
            while (i < len && is_word(s[i]))
                i++;
            k = i == start + 1 ? T_BAD : c == '#' ? T_NAME : T_VALUE;
        } else if (is_digit(c)) {
            i++;
            if (c != '0')
                while (i < len && is_digit(s[i]))
                    i++;
            k = T_INT;
        } else if (c == '<' && i + 1 < len && s[i + 1] == '>') {
            i += 2;
            k = T_NE;
        } else if (c == '<' && i + 1 < len && s[i + 1] == '=') {
            i += 2;
            k = T_LE;
        } else if (c == '>' && i + 1 < len && s[i + 1] == '=') {
            i += 2;
            k = T_GE;
        } else {
            i++;
            switch (c) {
            case '=':
                k = T_EQ;
                break;
            case '<':
                k = T_LT;
                break;
            case '>':
                k = T_GT;
                break;
            case '(':
                k = T_LPAREN;
                break;
            case ')':
                k = T_RPAREN;
                break;
            case '[':
                k = T_LBRACK;
                break;
            case ']':
                k = T_RBRACK;
                break;
            case ',':
                k = T_COMMA;
                break;
            case '.':
                k = T_DOT;
                break;
            case '+':
                k = T_PLUS;
                break;
            case '-':
                k = T_MINUS;
                break;
            default:
                k = T_BAD;
                i = start + utf8_len(s + start, len - start);
                break;
            }
        }
        if (toks) {
            toks[n].k = k;
            toks[n].start = start;
            toks[n].end = i;
        }
        n++;
    }
    if (toks) {
        toks[n].k = T_EOF;
        toks[n].start = toks[n].end = len;
    }
    return n + 1;
}

/* ---- Parser state and errors ---- */

typedef struct parser {
    expr_env *env;
    arena *a;
    expr_kind kind;
    const char *text;
    size_t len;
    token *toks;
    size_t ntoks;
    size_t i;       /* next token */
    unsigned depth; /* current nesting */
    size_t fail_at; /* token where the last syntax failure happened */
    bool fatal;     /* e holds an error that no alternative can undo */
    err *e;
} parser;

/* Drops a UTF-8 sequence cut short by message truncation. */
static void trim_utf8_tail(char *msg)
{
    size_t n = strlen(msg), i = n, cont = 0;
    while (i > 0 && cont < 4 && ((unsigned char)msg[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0) return;
    unsigned char c = (unsigned char)msg[i - 1];
    size_t need = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (c >= 0xC0 && need > cont + 1) msg[i - 1] = '\0';
}

/* Sets "Invalid <Kind>: <message>" and marks the failure fatal. Returns -1. */
static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *p, const char *fmt, ...)
{
    char buf[sizeof(p->e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    p->fatal = true;
    if (!p->e) return -1;
    err_validation(p->e, "Invalid %s: %s", expr_kind_name(p->kind), buf);
    trim_utf8_tail(p->e->msg);
    return -1;
}

static const char *tok_text(const parser *p, size_t t, size_t *len)
{
    const token *k = &p->toks[t];
    if (k->k == T_EOF) {
        *len = 5;
        return "<EOF>";
    }
    *len = k->end - k->start;
    return p->text + k->start;
}

/* The syntax error DynamoDB gives for token t: the token and the text from
 * the start of the token before it to the end of the token after it. */
static int syntax_error(parser *p, size_t t)
{
    size_t tl;
    const char *tt = tok_text(p, t, &tl);
    size_t from = t > 0 ? p->toks[t - 1].start : 0;
    size_t to = t + 1 < p->ntoks ? p->toks[t + 1].end : p->toks[t].end;
    if (to < from) to = from;
    return perr(p, "Syntax error; token: \"%.*s\", near: \"%.*s\"", (int)tl, tt, (int)(to - from),
                p->text + from);
}

static void *syn_fail(parser *p)
{
    p->fail_at = p->i;
    return NULL;
}

static tok_kind peek(const parser *p)
{
    return p->toks[p->i].k;
}

static size_t advance(parser *p)
{
    size_t t = p->i;
    if (p->toks[t].k != T_EOF) p->i++;
    return t;
}

static bool enter(parser *p)
{
    if (p->depth >= EXPR_MAX_DEPTH) {
        syntax_error(p, p->i);
        return false;
    }
    p->depth++;
    return true;
}

static void leave(parser *p)
{
    p->depth--;
}

static expr_node *new_node(parser *p, node_kind k, size_t tok)
{
    expr_node *n = arena_calloc(p->a, 1, sizeof(*n));
    n->kind = k;
    n->tok = tok;
    return n;
}

typedef struct nodevec {
    expr_node **v;
    size_t n, cap;
} nodevec;

static void nv_push(arena *a, nodevec *nv, expr_node *x)
{
    if (nv->n == nv->cap) {
        size_t nc = nv->cap ? nv->cap * 2 : 4;
        nv->v = arena_grow(a, nv->v, nv->n, nc, sizeof(*nv->v));
        nv->cap = nc;
    }
    nv->v[nv->n++] = x;
}

/* Marks x as parenthesised, refusing a second pair around the same thing. */
static expr_node *wrap_parens(parser *p, expr_node *x)
{
    if (x->parens) {
        perr(p, "The expression has redundant parentheses;");
        return NULL;
    }
    x->parens = true;
    return x;
}

/* ---- Grammar ---- */

static expr_node *p_condition(parser *p);
static expr_node *p_operand(parser *p);

static fn_id function_id(const char *s, size_t len)
{
    static const struct {
        const char *name;
        fn_id id;
    } fns[] = {
        {"attribute_exists", FN_ATTRIBUTE_EXISTS},
        {"attribute_not_exists", FN_ATTRIBUTE_NOT_EXISTS},
        {"attribute_type", FN_ATTRIBUTE_TYPE},
        {"begins_with", FN_BEGINS_WITH},
        {"contains", FN_CONTAINS},
        {"size", FN_SIZE},
        {"if_not_exists", FN_IF_NOT_EXISTS},
        {"list_append", FN_LIST_APPEND},
    };
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (strlen(fns[i].name) == len && memcmp(fns[i].name, s, len) == 0) return fns[i].id;
    return FN_UNKNOWN;
}

static expr_node *p_path(parser *p)
{
    tok_kind k = peek(p);
    if (k != T_ID && k != T_NAME) return syn_fail(p);
    expr_node *n = new_node(p, NK_PATH, p->i);
    size_t cap = 4;
    n->raw = arena_alloc(p->a, cap * sizeof(raw_part));
    for (;;) {
        k = peek(p);
        bool index = false;
        if (n->nraw > 0) {
            if (k == T_DOT) {
                advance(p);
                k = peek(p);
                if (k != T_ID && k != T_NAME) return syn_fail(p);
            } else if (k == T_LBRACK) {
                advance(p);
                if (peek(p) != T_INT) return syn_fail(p);
                index = true;
            } else {
                break;
            }
        }
        size_t t = advance(p);
        if (n->nraw == cap) {
            n->raw = arena_grow(p->a, n->raw, n->nraw, cap * 2, sizeof(raw_part));
            cap *= 2;
        }
        raw_part *rp = &n->raw[n->nraw++];
        rp->is_index = index;
        rp->is_placeholder = !index && p->toks[t].k == T_NAME;
        rp->len = p->toks[t].end - p->toks[t].start;
        rp->text = arena_memdup(p->a, p->text + p->toks[t].start, rp->len);
        if (index) {
            if (peek(p) != T_RBRACK) return syn_fail(p);
            advance(p);
        }
    }
    return n;
}

static expr_node *p_call(parser *p)
{
    size_t t = advance(p); /* the name; '(' follows */
    expr_node *n = new_node(p, NK_CALL, t);
    size_t len = p->toks[t].end - p->toks[t].start;
    n->fname = arena_memdup(p->a, p->text + p->toks[t].start, len);
    n->op = function_id(n->fname, len);
    advance(p);
    nodevec args = {0};
    for (;;) {
        expr_node *x = p_operand(p);
        if (!x) return NULL;
        nv_push(p->a, &args, x);
        if (peek(p) != T_COMMA) break;
        advance(p);
    }
    if (peek(p) != T_RPAREN) return syn_fail(p);
    advance(p);
    n->args = args.v;
    n->nargs = args.n;
    return n;
}

static expr_node *p_operand_inner(parser *p)
{
    switch (peek(p)) {
    case T_VALUE: {
        size_t t = advance(p);
        expr_node *n = new_node(p, NK_VALUE, t);
        n->vname =
            arena_memdup(p->a, p->text + p->toks[t].start, p->toks[t].end - p->toks[t].start);
        return n;
    }
    case T_LPAREN: {
        advance(p);
        expr_node *x = p_operand(p);
        if (!x) return NULL;
        if (peek(p) != T_RPAREN) return syn_fail(p);
        advance(p);
        return wrap_parens(p, x);
    }
    case T_ID:
        if (p->toks[p->i + 1].k == T_LPAREN) return p_call(p);
        return p_path(p);
    case T_NAME:
        return p_path(p);
    default:
        return syn_fail(p);
    }
}

static expr_node *p_operand(parser *p)
{
    if (!enter(p)) return NULL;
    expr_node *x = p_operand_inner(p);
    leave(p);
    return x;
}

static int comparator(tok_kind k)
{
    switch (k) {
    case T_EQ:
        return CMP_EQ;
    case T_NE:
        return CMP_NE;
    case T_LT:
        return CMP_LT;
    case T_LE:
        return CMP_LE;
    case T_GT:
        return CMP_GT;
    case T_GE:
        return CMP_GE;
    default:
        return 0;
    }
}

static expr_node *p_comparison(parser *p)
{
    expr_node *a = p_operand(p);
    if (!a) return NULL;
    tok_kind k = peek(p);
    int op = comparator(k);
    if (op) {
        expr_node *n = new_node(p, NK_CMP, advance(p));
        n->op = op;
        expr_node *b = p_operand(p);
        if (!b) return NULL;
        n->nargs = 2;
        n->args = arena_alloc(p->a, 2 * sizeof(expr_node *));
        n->args[0] = a;
        n->args[1] = b;
        return n;
    }
    if (k == T_BETWEEN) {
        expr_node *n = new_node(p, NK_BETWEEN, advance(p));
        expr_node *lo = p_operand(p);
        if (!lo) return NULL;
        if (peek(p) != T_AND) return syn_fail(p);
        advance(p);
        expr_node *hi = p_operand(p);
        if (!hi) return NULL;
        n->nargs = 3;
        n->args = arena_alloc(p->a, 3 * sizeof(expr_node *));
        n->args[0] = a;
        n->args[1] = lo;
        n->args[2] = hi;
        return n;
    }
    if (k == T_IN) {
        expr_node *n = new_node(p, NK_IN, advance(p));
        if (peek(p) != T_LPAREN) return syn_fail(p);
        advance(p);
        nodevec list = {0};
        nv_push(p->a, &list, a);
        for (;;) {
            expr_node *x = p_operand(p);
            if (!x) return NULL;
            nv_push(p->a, &list, x);
            if (peek(p) != T_COMMA) break;
            advance(p);
        }
        if (peek(p) != T_RPAREN) return syn_fail(p);
        advance(p);
        n->args = list.v;
        n->nargs = list.n;
        return n;
    }
    if (a->kind == NK_CALL && !a->parens) {
        a->as_cond = true;
        return a;
    }
    return syn_fail(p);
}

static expr_node *p_primary(parser *p)
{
    if (peek(p) != T_LPAREN) return p_comparison(p);
    size_t at = p->i;
    /* First reading: a comparison whose first operand is parenthesised,
     * "(a) = :v" or "(size(a)) > :v". */
    expr_node *c = p_comparison(p);
    if (c || p->fatal) return c;
    size_t first_fail = p->fail_at;
    /* Second reading: a parenthesised condition. */
    p->i = at;
    advance(p);
    expr_node *inner = p_condition(p);
    if (inner) {
        if (peek(p) == T_RPAREN) {
            advance(p);
            return wrap_parens(p, inner);
        }
        syn_fail(p);
    }
    if (p->fatal) return NULL;
    if (first_fail > p->fail_at) p->fail_at = first_fail;
    return NULL;
}

static expr_node *p_not(parser *p)
{
    size_t first = p->i, count = 0;
    while (peek(p) == T_NOT) {
        if (!enter(p)) return NULL;
        advance(p);
        count++;
    }
    expr_node *x = p_primary(p);
    p->depth -= (unsigned)count;
    if (!x) return NULL;
    while (count > 0) {
        count--;
        expr_node *n = new_node(p, NK_NOT, first + count);
        n->nargs = 1;
        n->args = arena_alloc(p->a, sizeof(expr_node *));
        n->args[0] = x;
        x = n;
    }
    return x;
}

/* One level of AND or OR; chains become one n-ary node. */
static expr_node *p_junction(parser *p, tok_kind op)
{
    expr_node *first = op == T_OR ? p_junction(p, T_AND) : p_not(p);
    if (!first || peek(p) != op) return first;
    expr_node *n = new_node(p, op == T_OR ? NK_OR : NK_AND, p->i);
    nodevec nv = {0};
    nv_push(p->a, &nv, first);
    while (peek(p) == op) {
        advance(p);
        expr_node *x = op == T_OR ? p_junction(p, T_AND) : p_not(p);
        if (!x) return NULL;
        nv_push(p->a, &nv, x);
    }
    n->args = nv.v;
    n->nargs = nv.n;
    return n;
}

static expr_node *p_condition(parser *p)
{
    if (!enter(p)) return NULL;
    expr_node *x = p_junction(p, T_OR);
    leave(p);
    return x;
}

/* ---- Operator count ---- */

static size_t count_ops(const expr_node *n)
{
    size_t c = 0;
    switch (n->kind) {
    case NK_OR:
    case NK_AND:
        c = n->nargs - 1;
        break;
    case NK_NOT:
    case NK_CMP:
    case NK_BETWEEN:
    case NK_IN:
    case NK_CALL:
    case NK_ARITH:
        c = 1;
        break;
    default:
        break;
    }
    for (size_t i = 0; i < n->nargs; i++)
        c += count_ops(n->args[i]);
    return c;
}

static int check_op_count(parser *p, size_t count)
{
    if (count > MAX_OPERATORS)
        return perr(p, "The expression contains too many operators; operator count: %zu", count);
    return 0;
}

/* ---- Pass 1: reserved words, indexes, function names and places ---- */

static const char *fn_name(const expr_node *n)
{
    return n->fname ? n->fname : "";
}

static size_t fn_arity(int op)
{
    switch (op) {
    case FN_ATTRIBUTE_EXISTS:
    case FN_ATTRIBUTE_NOT_EXISTS:
    case FN_SIZE:
        return 1;
    default:
        return 2;
    }
}

static int check_arity(parser *p, const expr_node *n)
{
    if (n->nargs != fn_arity(n->op))
        return perr(p,
                    "Incorrect number of operands for operator or function; operator or "
                    "function: %s, number of operands: %zu",
                    fn_name(n), n->nargs);
    return 0;
}

static int check1_path(parser *p, const expr_node *n)
{
    for (size_t i = 0; i < n->nraw; i++) {
        const raw_part *rp = &n->raw[i];
        if (rp->is_index) {
            if (rp->len > 10 || strtoull(rp->text, NULL, 10) > 2147483647ull)
                return perr(p, "List index is not within the allowable range; index: [%s]",
                            rp->text);
        } else if (!rp->is_placeholder && is_reserved(rp->text, rp->len)) {
            return perr(p, "Attribute name is a reserved keyword; reserved keyword: %s", rp->text);
        }
    }
    return 0;
}

static int check1(parser *p, const expr_node *n, bool cond_place)
{
    switch (n->kind) {
    case NK_PATH:
        return check1_path(p, n);
    case NK_VALUE:
        return 0;
    case NK_CALL: {
        if (n->op == FN_UNKNOWN) return perr(p, "Invalid function name; function: %s", fn_name(n));
        bool update_fn = n->op == FN_IF_NOT_EXISTS || n->op == FN_LIST_APPEND;
        if (p->kind == EXPR_UPDATE) {
            if (!update_fn)
                return perr(p, "The function is not allowed in an update expression; function: %s",
                            fn_name(n));
        } else {
            if (update_fn)
                return perr(p,
                            "The function is not allowed in a condition expression; function: %s",
                            fn_name(n));
            bool cond_fn = n->op != FN_SIZE;
            if (cond_fn != cond_place)
                return perr(p,
                            "The function is not allowed to be used this way in an expression; "
                            "function: %s",
                            fn_name(n));
            if (check_arity(p, n) < 0) return -1;
        }
        for (size_t i = 0; i < n->nargs; i++)
            if (check1(p, n->args[i], false) < 0) return -1;
        return 0;
    }
    case NK_OR:
    case NK_AND:
    case NK_NOT:
        for (size_t i = 0; i < n->nargs; i++)
            if (check1(p, n->args[i], true) < 0) return -1;
        return 0;
    default:
        for (size_t i = 0; i < n->nargs; i++)
            if (check1(p, n->args[i], false) < 0) return -1;
        return 0;
    }
}

/* ---- Pass 2: placeholders, operand types, distinct operands ---- */

static int resolve_path(parser *p, expr_node *n)
{
    if (n->resolved) return 0;
    expr_path_elem *el = arena_calloc(p->a, n->nraw, sizeof(*el));
    for (size_t i = 0; i < n->nraw; i++) {
        const raw_part *rp = &n->raw[i];
        if (rp->is_index) {
            el[i].is_index = true;
            el[i].index = (size_t)strtoull(rp->text, NULL, 10);
        } else if (rp->is_placeholder) {
            const char *v = env_name(p->env, rp->text, rp->len);
            if (!v)
                return perr(p,
                            "An expression attribute name used in the document path is not "
                            "defined; attribute name: %s",
                            rp->text);
            el[i].name = v;
            el[i].name_len = strlen(v);
        } else {
            el[i].name = rp->text;
            el[i].name_len = rp->len;
        }
    }
    n->path.n = n->nraw;
    n->path.elems = el;
    n->resolved = true;
    return 0;
}

static int use_path(parser *p, expr_node *n)
{
    if (resolve_path(p, n) < 0) return -1;
    if (n->path.n > PATH_MAX_LEVELS)
        return perr(p, "The document path has too many nesting levels; nesting levels: %zu",
                    n->path.n);
    return 0;
}

static int use_value(parser *p, expr_node *n)
{
    if (n->value) return 0;
    n->value = env_value(p->env, n->vname, strlen(n->vname));
    if (!n->value)
        return perr(p,
                    "An expression attribute value used in expression is not defined; attribute "
                    "value: %s",
                    n->vname);
    return 0;
}

/* The type of an operand known before any item is seen: a :value's type, N
 * for size(); 0 for anything that depends on the item. */
static mv_type static_type(const expr_node *n)
{
    if (n->kind == NK_VALUE && n->value) return n->value->type;
    if (n->kind == NK_CALL && n->op == FN_SIZE) return MV_N;
    return 0;
}

static bool same_path(const expr_path *a, const expr_path *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++) {
        const expr_path_elem *x = &a->elems[i], *y = &b->elems[i];
        if (x->is_index != y->is_index) return false;
        if (x->is_index ? x->index != y->index
                        : (x->name_len != y->name_len || memcmp(x->name, y->name, x->name_len)))
            return false;
    }
    return true;
}

static int distinct(parser *p, const char *op, expr_node *first, expr_node **rest, size_t n)
{
    if (first->kind != NK_PATH) return 0;
    for (size_t i = 0; i < n; i++) {
        if (rest[i]->kind == NK_PATH && same_path(&first->path, &rest[i]->path))
            return perr(p,
                        "The first operand must be distinct from the remaining operands for this "
                        "operator or function; operator: %s, first operand: %s",
                        op, expr_path_str(p->a, &first->path));
    }
    return 0;
}

static int type_problem(parser *p, const char *op, const char *type)
{
    return perr(p,
                "Incorrect operand type for operator or function; operator or function: %s, "
                "operand type: %s",
                op, type);
}

static bool is_scalar_sort_type(mv_type t)
{
    return t == MV_S || t == MV_N || t == MV_B;
}

static const char *cmp_text(int op)
{
    switch (op) {
    case CMP_EQ:
        return "=";
    case CMP_NE:
        return "<>";
    case CMP_LT:
        return "<";
    case CMP_LE:
        return "<=";
    case CMP_GT:
        return ">";
    default:
        return ">=";
    }
}

/* DynamoDB's rendering of a BETWEEN bound in messages. */
static char *bound_text(arena *a, const mv_value *v)
{
    switch (v->type) {
    case MV_S:
    case MV_N:
        return arena_sprintf(a, "AttributeValue: {%s:%s}", mv_type_name(v->type), v->u.str.ptr);
    case MV_B:
        return arena_sprintf(a,
                             "AttributeValue: {B:java.nio.HeapByteBuffer[pos=0 lim=%zu cap=%zu]}",
                             v->u.str.len, v->u.str.len);
    default:
        return arena_sprintf(a, "AttributeValue: {%s}", mv_type_name(v->type));
    }
}

static int check_between(parser *p, const expr_node *n)
{
    for (size_t i = 0; i < 3; i++) {
        mv_type t = static_type(n->args[i]);
        if (t && !is_scalar_sort_type(t)) return type_problem(p, "BETWEEN", mv_type_name(t));
    }
    const expr_node *lo = n->args[1], *hi = n->args[2];
    if (lo->kind != NK_VALUE || hi->kind != NK_VALUE) return 0;
    const mv_value *a = lo->value, *b = hi->value;
    if (a->type != b->type)
        return perr(p,
                    "The BETWEEN operator requires same data type for lower and upper bounds; "
                    "lower bound operand: %s, upper bound operand: %s",
                    bound_text(p->a, a), bound_text(p->a, b));
    if (mv_compare_scalar(a, b) > 0)
        return perr(p,
                    "The BETWEEN operator requires upper bound to be greater than or equal to "
                    "lower bound; lower bound operand: %s, upper bound operand: %s",
                    bound_text(p->a, a), bound_text(p->a, b));
    return 0;
}

static bool valid_type_name(const mv_value *v)
{
    static const char *const names[] = {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (v->u.str.len == strlen(names[i]) && memcmp(v->u.str.ptr, names[i], v->u.str.len) == 0)
            return true;
    return false;
}

static int check2(parser *p, expr_node *n);

static int check2_call(parser *p, expr_node *n)
{
    if (p->kind == EXPR_UPDATE && check_arity(p, n) < 0) return -1;
    for (size_t i = 0; i < n->nargs; i++)
        if (check2(p, n->args[i]) < 0) return -1;
    const char *name = fn_name(n);
    expr_node *first = n->args[0];
    bool needs_path = n->op == FN_ATTRIBUTE_EXISTS || n->op == FN_ATTRIBUTE_NOT_EXISTS ||
                      n->op == FN_ATTRIBUTE_TYPE || n->op == FN_IF_NOT_EXISTS;
    if (needs_path && first->kind != NK_PATH)
        return perr(p, "Operator or function requires a document path; operator or function: %s",
                    name);
    if (n->op != FN_SIZE && n->op != FN_LIST_APPEND &&
        distinct(p, name, first, n->args + 1, n->nargs - 1) < 0)
        return -1;
    switch (n->op) {
    case FN_SIZE: {
        mv_type t = static_type(first);
        if (t == MV_N || t == MV_BOOL || t == MV_NULL)
            return type_problem(p, name, mv_type_name(t));
        return 0;
    }
    case FN_BEGINS_WITH:
        for (size_t i = 0; i < n->nargs; i++) {
            mv_type t = static_type(n->args[i]);
            if (t && t != MV_S && t != MV_B) return type_problem(p, name, mv_type_name(t));
        }
        return 0;
    case FN_ATTRIBUTE_TYPE: {
        const expr_node *second = n->args[1];
        if (second->kind != NK_VALUE) {
            mv_type t = static_type(second);
            return type_problem(p, name, t ? mv_type_name(t) : "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
        }
        if (second->value->type != MV_S)
            return type_problem(p, name, mv_type_name(second->value->type));
        if (!valid_type_name(second->value))
            return perr(p,
                        "Invalid attribute type name found; type: %s, valid types: "
                        "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                        second->value->u.str.ptr);
        return 0;
    }
    case FN_LIST_APPEND:
        for (size_t i = 0; i < n->nargs; i++) {
            mv_type t = static_type(n->args[i]);
            if (t && t != MV_L) return type_problem(p, name, mv_type_name(t));
        }
        return 0;
    default:
        return 0;
    }
}

static int check2(parser *p, expr_node *n)
{
    switch (n->kind) {
    case NK_PATH:
        return use_path(p, n);
    case NK_VALUE:
        return use_value(p, n);
    case NK_OR:
    case NK_AND:
    case NK_NOT:
        for (size_t i = 0; i < n->nargs; i++)
            if (check2(p, n->args[i]) < 0) return -1;
        return 0;
    case NK_CMP:
        if (check2(p, n->args[0]) < 0 || check2(p, n->args[1]) < 0) return -1;
        if (distinct(p, cmp_text(n->op), n->args[0], n->args + 1, 1) < 0) return -1;
        if (n->op != CMP_EQ && n->op != CMP_NE) {
            for (size_t i = 0; i < 2; i++) {
                mv_type t = static_type(n->args[i]);
                if (t && !is_scalar_sort_type(t))
                    return type_problem(p, cmp_text(n->op), mv_type_name(t));
            }
        }
        return 0;
    case NK_BETWEEN:
        for (size_t i = 0; i < 3; i++)
            if (check2(p, n->args[i]) < 0) return -1;
        if (distinct(p, "BETWEEN", n->args[0], n->args + 1, 2) < 0) return -1;
        return check_between(p, n);
    case NK_IN:
        for (size_t i = 0; i < n->nargs; i++)
            if (check2(p, n->args[i]) < 0) return -1;
        if (n->nargs - 1 > IN_MAX_OPERANDS)
            return perr(p,
                        "The IN operator is provided with too many operands; number of "
                        "operands: %zu",
                        n->nargs - 1);
        return distinct(p, "IN", n->args[0], n->args + 1, n->nargs - 1);
    case NK_CALL:
        return check2_call(p, n);
    case NK_ARITH: {
        if (check2(p, n->args[0]) < 0 || check2(p, n->args[1]) < 0) return -1;
        const char *op = n->op == '+' ? "+" : "-";
        for (size_t i = 0; i < 2; i++) {
            mv_type t = static_type(n->args[i]);
            if (t && t != MV_N) return type_problem(p, op, mv_type_name(t));
        }
        return 0;
    }
    }
    return 0;
}

/* ---- Overlapping paths (updates and projections) ---- */

static bool elem_equal(const expr_path_elem *x, const expr_path_elem *y)
{
    if (x->is_index) return x->index == y->index;
    return x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0;
}

/* Each path against every earlier one: one inside the other (or equal) is
 * an overlap; using one attribute as a list and as a map is a conflict. */
static int check_overlaps(parser *p, expr_path **paths, size_t n)
{
    for (size_t j = 1; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            const expr_path *a = paths[i], *b = paths[j];
            size_t m = a->n < b->n ? a->n : b->n;
            bool clash = true, conflict = false;
            for (size_t k = 0; k < m; k++) {
                if (a->elems[k].is_index != b->elems[k].is_index) {
                    conflict = true;
                    break;
                }
                if (!elem_equal(&a->elems[k], &b->elems[k])) {
                    clash = false;
                    break;
                }
            }
            if (clash)
                return perr(p,
                            "Two document paths %s with each other; must remove or rewrite one of "
                            "these paths; path one: %s, path two: %s",
                            conflict ? "conflict" : "overlap", expr_path_str(p->a, a),
                            expr_path_str(p->a, b));
        }
    }
    return 0;
}

/* ---- Entry points ---- */

static int setup(parser *p, expr_env *env, expr_kind kind, const char *text, err *e)
{
    memset(p, 0, sizeof(*p));
    p->env = env;
    p->a = env->a;
    p->kind = kind;
    p->e = e;
    p->text = text ? text : "";
    p->len = strlen(p->text);
    size_t i = 0;
    while (i < p->len && is_blank(p->text[i]))
        i++;
    if (i == p->len) return perr(p, "The expression can not be empty;");
    if (p->len > EXPR_MAX_BYTES)
        return perr(p,
                    "Expression size has exceeded the maximum allowed size; expression size: %zu",
                    p->len);
    p->ntoks = tokenize(p->text, p->len, NULL);
    p->toks = arena_alloc(p->a, p->ntoks * sizeof(token));
    tokenize(p->text, p->len, p->toks);
    return 0;
}

/* After a parse function returned NULL: the fatal error already set, or the
 * syntax error at the furthest failure. */
static int parse_failed(parser *p)
{
    if (p->fatal) return -1;
    return syntax_error(p, p->fail_at);
}

int expr_parse_condition(expr_env *env, expr_kind kind, const char *text, expr_node **out, err *e)
{
    parser p;
    *out = NULL;
    if (kind == EXPR_PROJECTION || kind == EXPR_UPDATE) kind = EXPR_CONDITION;
    if (setup(&p, env, kind, text, e) < 0) return -1;
    expr_node *root = p_condition(&p);
    if (root && peek(&p) != T_EOF) root = syn_fail(&p);
    if (!root) return parse_failed(&p);
    if (check_op_count(&p, count_ops(root)) < 0) return -1;
    if (check1(&p, root, true) < 0 || check2(&p, root) < 0) return -1;
    *out = root;
    return 0;
}

int expr_parse_projection(expr_env *env, const char *text, expr_projection **out, err *e)
{
    parser p;
    *out = NULL;
    if (setup(&p, env, EXPR_PROJECTION, text, e) < 0) return -1;
    nodevec paths = {0};
    for (;;) {
        expr_node *x = p_path(&p);
        if (!x) return parse_failed(&p);
        nv_push(p.a, &paths, x);
        if (peek(&p) != T_COMMA) break;
        advance(&p);
    }
    if (peek(&p) != T_EOF) {
        syn_fail(&p);
        return parse_failed(&p);
    }
    for (size_t i = 0; i < paths.n; i++)
        if (check1(&p, paths.v[i], false) < 0) return -1;
    expr_projection *proj = arena_calloc(p.a, 1, sizeof(*proj));
    expr_path **pp = arena_alloc(p.a, paths.n * sizeof(*pp));
    proj->n = paths.n;
    proj->paths = arena_alloc(p.a, paths.n * sizeof(expr_path));
    for (size_t i = 0; i < paths.n; i++) {
        if (use_path(&p, paths.v[i]) < 0) return -1;
        pp[i] = &paths.v[i]->path;
        proj->paths[i] = paths.v[i]->path;
    }
    if (check_overlaps(&p, pp, paths.n) < 0) return -1;
    *out = proj;
    return 0;
}

static const char *clause_name(upd_kind k)
{
    switch (k) {
    case UPD_SET:
        return "SET";
    case UPD_REMOVE:
        return "REMOVE";
    case UPD_ADD:
        return "ADD";
    default:
        return "DELETE";
    }
}

/* Parses the clauses into acts (growing array); returns the action count or
 * -1 (syntax). */
static int p_update(parser *p, upd_action **acts_out, size_t *n_out, upd_kind **clause_kinds,
                    size_t *nclauses)
{
    upd_action *acts = NULL;
    size_t n = 0, cap = 0;
    upd_kind *kinds = NULL;
    size_t nk = 0, kcap = 0;
    do {
        upd_kind kind;
        switch (peek(p)) {
        case T_SET:
            kind = UPD_SET;
            break;
        case T_REMOVE:
            kind = UPD_REMOVE;
            break;
        case T_ADD:
            kind = UPD_ADD;
            break;
        case T_DELETE:
            kind = UPD_DELETE;
            break;
        default:
            syn_fail(p);
            return -1;
        }
        advance(p);
        if (nk == kcap) {
            size_t nc = kcap ? kcap * 2 : 4;
            kinds = arena_grow(p->a, kinds, nk, nc, sizeof(*kinds));
            kcap = nc;
        }
        kinds[nk++] = kind;
        for (;;) {
            upd_action act = {.kind = kind, .clause = nk - 1};
            act.path = p_path(p);
            if (!act.path) return -1;
            if (kind == UPD_SET) {
                if (peek(p) != T_EQ) {
                    syn_fail(p);
                    return -1;
                }
                advance(p);
                expr_node *a = p_operand(p);
                if (!a) return -1;
                if (peek(p) == T_PLUS || peek(p) == T_MINUS) {
                    expr_node *ar = new_node(p, NK_ARITH, p->i);
                    ar->op = peek(p) == T_PLUS ? '+' : '-';
                    advance(p);
                    expr_node *b = p_operand(p);
                    if (!b) return -1;
                    ar->nargs = 2;
                    ar->args = arena_alloc(p->a, 2 * sizeof(expr_node *));
                    ar->args[0] = a;
                    ar->args[1] = b;
                    a = ar;
                }
                act.value = a;
            } else if (kind == UPD_ADD || kind == UPD_DELETE) {
                if (peek(p) != T_VALUE) {
                    syn_fail(p);
                    return -1;
                }
                size_t t = advance(p);
                act.value = new_node(p, NK_VALUE, t);
                act.value->vname = arena_memdup(p->a, p->text + p->toks[t].start,
                                                p->toks[t].end - p->toks[t].start);
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 8;
                acts = arena_grow(p->a, acts, n, nc, sizeof(*acts));
                cap = nc;
            }
            acts[n++] = act;
            if (peek(p) != T_COMMA) break;
            advance(p);
        }
    } while (peek(p) != T_EOF);
    *acts_out = acts;
    *n_out = n;
    *clause_kinds = kinds;
    *nclauses = nk;
    return 0;
}

/* Resolves only the #names of every path under n (used before the operand
 * checks of an update, which DynamoDB makes after all names are known). */
static int names_only(parser *p, expr_node *n)
{
    if (n->kind == NK_PATH) return resolve_path(p, n);
    for (size_t i = 0; i < n->nargs; i++)
        if (names_only(p, n->args[i]) < 0) return -1;
    return 0;
}

static const char *long_type_name(mv_type t)
{
    switch (t) {
    case MV_S:
        return "STRING";
    case MV_N:
        return "NUMBER";
    case MV_B:
        return "BINARY";
    case MV_BOOL:
        return "BOOLEAN";
    case MV_NULL:
        return "NULL";
    case MV_L:
        return "LIST";
    case MV_M:
        return "MAP";
    case MV_SS:
        return "STRING_SET";
    case MV_NS:
        return "NUMBER_SET";
    case MV_BS:
        return "BINARY_SET";
    }
    return "UNKNOWN";
}

int expr_parse_update(expr_env *env, const char *text, expr_update **out, err *e)
{
    parser p;
    *out = NULL;
    if (setup(&p, env, EXPR_UPDATE, text, e) < 0) return -1;
    upd_action *acts = NULL;
    size_t n = 0, nclauses = 0;
    upd_kind *kinds = NULL;
    if (p_update(&p, &acts, &n, &kinds, &nclauses) < 0) return parse_failed(&p);
    size_t ops = 0;
    for (size_t i = 0; i < n; i++)
        if (acts[i].value) ops += count_ops(acts[i].value);
    if (check_op_count(&p, ops) < 0) return -1;

    /* Pass 1, a section at a time in the order sections first appear; a
     * section written twice is refused once its actions have been read. */
    for (size_t c = 0; c < nclauses; c++) {
        bool first = true;
        for (size_t d = 0; d < c; d++)
            if (kinds[d] == kinds[c]) first = false;
        if (!first) continue;
        size_t count = 0;
        for (size_t d = c; d < nclauses; d++) {
            if (kinds[d] != kinds[c]) continue;
            count++;
            for (size_t i = 0; i < n; i++) {
                if (acts[i].clause != d) continue;
                if (check1(&p, acts[i].path, false) < 0) return -1;
                if (acts[i].value && check1(&p, acts[i].value, false) < 0) return -1;
            }
        }
        if (count > 1)
            return perr(&p, "The \"%s\" section can only be used once in an update expression;",
                        clause_name(kinds[c]));
    }

    /* The written paths, then their overlaps. */
    expr_path **pp = arena_alloc(p.a, n * sizeof(*pp));
    for (size_t i = 0; i < n; i++) {
        if (resolve_path(&p, acts[i].path) < 0) return -1;
        pp[i] = &acts[i].path->path;
    }
    if (check_overlaps(&p, pp, n) < 0) return -1;

    /* Pass 2, from the last action back to the first: names, then operands. */
    for (size_t i = n; i-- > 0;) {
        if (names_only(&p, acts[i].path) < 0) return -1;
        if (acts[i].value && names_only(&p, acts[i].value) < 0) return -1;
    }
    for (size_t i = n; i-- > 0;) {
        upd_action *a = &acts[i];
        if (check2(&p, a->path) < 0) return -1;
        if (a->value && check2(&p, a->value) < 0) return -1;
        if (a->kind == UPD_ADD || a->kind == UPD_DELETE) {
            mv_type t = a->value->value->type;
            bool ok = mv_is_set(t) || (a->kind == UPD_ADD && t == MV_N);
            if (!ok)
                return perr(&p,
                            "Incorrect operand type for operator or function; operator: %s, "
                            "operand type: %s, typeSet: ALLOWED_FOR_%s_OPERAND",
                            clause_name(a->kind), long_type_name(t), clause_name(a->kind));
        }
    }

    expr_update *u = arena_calloc(p.a, 1, sizeof(*u));
    u->n = n;
    u->acts = acts;
    u->nclauses = nclauses;
    u->paths.n = n;
    u->paths.paths = arena_alloc(p.a, (n ? n : 1) * sizeof(expr_path));
    for (size_t i = 0; i < n; i++)
        u->paths.paths[i] = acts[i].path->path;
    *out = u;
    return 0;
}
