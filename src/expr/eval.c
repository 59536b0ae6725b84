/* eval.c - evaluation of parsed conditions, document paths, projections and
 * key conditions (see expr.h for the contracts, internal.h for the tree).
 *
 * Conditions follow DynamoDB's semantics, which never fail at run time:
 *   - an operand is the value at a document path (absent when any step is
 *     missing or of the wrong type), a :value, or size(path) (absent for
 *     numbers, booleans and nulls);
 *   - "=" holds when both sides exist and are deeply equal (mv_equal);
 *     "<>" is its negation, so it holds when either side is missing;
 *   - < <= > >= and BETWEEN hold only for two (three) present values of
 *     the same type S, N or B (strings and binaries by unsigned bytes,
 *     numbers numerically, via mv_compare_scalar); anything else is false;
 *   - IN holds when the first operand equals any of the others;
 *   - contains: substring for S and B, membership for sets (by the set's
 *     element type) and lists (deep equality); begins_with: byte prefix for
 *     two S or two B values; attribute_type compares the type descriptor.
 *   - size(): UTF-16 code units for strings (DynamoDB is Java), bytes for
 *     binaries, element counts for sets and lists, member count for maps.
 *
 * Projection copies the requested paths into a fresh item: paths sharing a
 * prefix merge into one map, list elements picked by index keep their index
 * order and are packed, and containers in which nothing was found are left
 * out. Key conditions are decomposed into the partition value and one sort
 * key predicate for a range walk, with DynamoDB's Query messages.
 *
 * Nothing here modifies its inputs; new values come from the caller's arena.
 */
#include "expr/internal.h"

#include <stdio.h>
#include <string.h>

/* ---- Paths ---- */

const mv_value *expr_path_get(const expr_path *path, const mv_value *item)
{
    const mv_value *cur = item;
    if (!path || !cur) return NULL;
    for (size_t i = 0; i < path->n && cur; i++) {
        const expr_path_elem *el = &path->elems[i];
        if (el->is_index) {
            if (cur->type != MV_L || el->index >= cur->u.list.n) return NULL;
            cur = cur->u.list.items[el->index];
        } else {
            if (cur->type != MV_M) return NULL;
            cur = mv_map_get(cur, el->name, el->name_len);
        }
    }
    return cur;
}

char *expr_path_str(arena *a, const expr_path *p)
{
    size_t len = 2;
    for (size_t i = 0; i < p->n; i++)
        len += (p->elems[i].is_index ? 24 : p->elems[i].name_len) + 2;
    char *s = arena_alloc(a, len + 1);
    size_t o = 0;
    s[o++] = '[';
    for (size_t i = 0; i < p->n; i++) {
        if (i) {
            s[o++] = ',';
            s[o++] = ' ';
        }
        const expr_path_elem *el = &p->elems[i];
        if (el->is_index) {
            o += (size_t)snprintf(s + o, len + 1 - o, "[%zu]", el->index);
        } else {
            memcpy(s + o, el->name, el->name_len);
            o += el->name_len;
        }
    }
    s[o++] = ']';
    s[o] = '\0';
    return s;
}

static void collect_paths(const expr_node *n, expr_projection *out, size_t *cap, arena *a)
{
    if (n->kind == NK_PATH) {
        if (out->n == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            out->paths = arena_grow(a, out->paths, out->n, nc, sizeof(expr_path));
            *cap = nc;
        }
        out->paths[out->n++] = n->path;
        return;
    }
    for (size_t i = 0; i < n->nargs; i++)
        collect_paths(n->args[i], out, cap, a);
}

const expr_projection *expr_condition_paths(const expr_node *cond, arena *a)
{
    expr_projection *out = arena_calloc(a, 1, sizeof(*out));
    size_t cap = 0;
    if (cond) collect_paths(cond, out, &cap, a);
    return out;
}

/* ---- Operands ---- */

static size_t utf16_length(const char *s, size_t len)
{
    size_t units = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte */
        units += (c >> 3) == 30 ? 2 : 1;  /* 4-byte sequences are surrogate pairs */
    }
    return units;
}

static const mv_value *size_of(const mv_value *v, arena *a)
{
    size_t n;
    switch (v->type) {
    case MV_S:
        n = utf16_length(v->u.str.ptr, v->u.str.len);
        break;
    case MV_B:
        n = v->u.str.len;
        break;
    case MV_L:
    case MV_SS:
    case MV_NS:
    case MV_BS:
        n = v->u.list.n;
        break;
    case MV_M:
        n = v->u.map.n;
        break;
    default:
        return NULL;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%zu", n);
    return mv_new_str(a, MV_N, buf, (size_t)len);
}

const mv_value *expr_operand_value(const expr_node *n, const mv_value *item, arena *a)
{
    switch (n->kind) {
    case NK_VALUE:
        return n->value;
    case NK_PATH:
        return expr_path_get(&n->path, item);
    case NK_CALL:
        if (n->op == FN_SIZE && n->nargs == 1) {
            const mv_value *v = expr_operand_value(n->args[0], item, a);
            return v ? size_of(v, a) : NULL;
        }
        return NULL;
    default:
        return NULL;
    }
}

/* ---- Conditions ---- */

static bool sortable(mv_type t)
{
    return t == MV_S || t == MV_N || t == MV_B;
}

/* Orders two present values; false when they cannot be ordered. */
static bool order(const mv_value *a, const mv_value *b, int *out)
{
    if (!a || !b || a->type != b->type || !sortable(a->type)) return false;
    *out = mv_compare_scalar(a, b);
    return true;
}

static bool equal(const mv_value *a, const mv_value *b)
{
    return a && b && a->type == b->type && mv_equal(a, b);
}

static bool bytes_contain(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0) return true;
    if (nn > hn) return false;
    for (size_t i = 0; i + nn <= hn; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0) return true;
    return false;
}

/* Membership in a sorted set (invariant 2 of value.h). */
static bool set_has(const mv_value *set, const mv_value *x)
{
    if (x->type != mv_set_elem_type(set->type)) return false;
    size_t lo = 0, hi = set->u.list.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mv_compare_scalar(set->u.list.items[mid], x);
        if (c == 0) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static bool eval_contains(const mv_value *a, const mv_value *b)
{
    if (!a || !b) return false;
    switch (a->type) {
    case MV_S:
    case MV_B:
        return b->type == a->type &&
               bytes_contain(a->u.str.ptr, a->u.str.len, b->u.str.ptr, b->u.str.len);
    case MV_SS:
    case MV_NS:
    case MV_BS:
        return set_has(a, b);
    case MV_L:
        for (size_t i = 0; i < a->u.list.n; i++)
            if (equal(a->u.list.items[i], b)) return true;
        return false;
    default:
        return false;
    }
}

static bool eval_call(const expr_node *n, const mv_value *item, arena *a)
{
    const mv_value *x = n->nargs > 0 ? expr_operand_value(n->args[0], item, a) : NULL;
    const mv_value *y = n->nargs > 1 ? expr_operand_value(n->args[1], item, a) : NULL;
    switch (n->op) {
    case FN_ATTRIBUTE_EXISTS:
        return x != NULL;
    case FN_ATTRIBUTE_NOT_EXISTS:
        return x == NULL;
    case FN_ATTRIBUTE_TYPE: {
        if (!x || !y || y->type != MV_S) return false;
        const char *t = mv_type_name(x->type);
        return t && strlen(t) == y->u.str.len && memcmp(t, y->u.str.ptr, y->u.str.len) == 0;
    }
    case FN_BEGINS_WITH:
        if (!x || !y || x->type != y->type || (x->type != MV_S && x->type != MV_B)) return false;
        return x->u.str.len >= y->u.str.len &&
               (y->u.str.len == 0 || memcmp(x->u.str.ptr, y->u.str.ptr, y->u.str.len) == 0);
    case FN_CONTAINS:
        return eval_contains(x, y);
    default:
        return false;
    }
}

static bool eval(const expr_node *n, const mv_value *item, arena *a)
{
    switch (n->kind) {
    case NK_OR:
        for (size_t i = 0; i < n->nargs; i++)
            if (eval(n->args[i], item, a)) return true;
        return false;
    case NK_AND:
        for (size_t i = 0; i < n->nargs; i++)
            if (!eval(n->args[i], item, a)) return false;
        return true;
    case NK_NOT:
        return !eval(n->args[0], item, a);
    case NK_CMP: {
        const mv_value *x = expr_operand_value(n->args[0], item, a);
        const mv_value *y = expr_operand_value(n->args[1], item, a);
        int c;
        switch (n->op) {
        case CMP_EQ:
            return equal(x, y);
        case CMP_NE:
            return !equal(x, y);
        case CMP_LT:
            return order(x, y, &c) && c < 0;
        case CMP_LE:
            return order(x, y, &c) && c <= 0;
        case CMP_GT:
            return order(x, y, &c) && c > 0;
        default:
            return order(x, y, &c) && c >= 0;
        }
    }
    case NK_BETWEEN: {
        const mv_value *x = expr_operand_value(n->args[0], item, a);
        const mv_value *lo = expr_operand_value(n->args[1], item, a);
        const mv_value *hi = expr_operand_value(n->args[2], item, a);
        int c1, c2;
        return order(lo, x, &c1) && order(x, hi, &c2) && c1 <= 0 && c2 <= 0;
    }
    case NK_IN: {
        const mv_value *x = expr_operand_value(n->args[0], item, a);
        if (!x) return false;
        for (size_t i = 1; i < n->nargs; i++)
            if (equal(x, expr_operand_value(n->args[i], item, a))) return true;
        return false;
    }
    case NK_CALL:
        return eval_call(n, item, a);
    default:
        return false;
    }
}

int expr_eval_condition(const expr_node *cond, const mv_value *item, arena *a, err *e)
{
    if (!cond) return err_set(e, ERR_INTERNAL, "No condition to evaluate");
    return eval(cond, item, a) ? 1 : 0;
}

/* ---- Projection ---- */

static bool elem_same(const expr_path_elem *x, const expr_path_elem *y)
{
    if (x->is_index != y->is_index) return false;
    if (x->is_index) return x->index == y->index;
    return x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0;
}

/* Copies from src the parts named by paths[0..n), all of which share their
 * first d elements. Returns NULL when nothing was found. */
static const mv_value *project(const mv_value *src, const expr_path **paths, size_t n, size_t d,
                               arena *a, bool top)
{
    for (size_t i = 0; i < n; i++)
        if (paths[i]->n == d) return src; /* the whole value (overlaps are refused at parse) */
    bool want_index = src->type == MV_L;
    if (src->type != MV_M && src->type != MV_L) return NULL;

    bool *done = arena_calloc(a, n, sizeof(bool));
    const expr_path **group = arena_alloc(a, n * sizeof(*group));
    /* Distinct next elements, in first-seen order. */
    size_t ngroups = 0;
    size_t *starts = arena_alloc(a, n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        if (done[i] || paths[i]->elems[d].is_index != want_index) continue;
        starts[ngroups++] = i;
        for (size_t j = i; j < n; j++)
            if (!done[j] && elem_same(&paths[j]->elems[d], &paths[i]->elems[d])) done[j] = true;
    }
    if (want_index) { /* ascending index order */
        for (size_t i = 1; i < ngroups; i++) {
            size_t s = starts[i], j = i;
            while (j > 0 && paths[starts[j - 1]]->elems[d].index > paths[s]->elems[d].index) {
                starts[j] = starts[j - 1];
                j--;
            }
            starts[j] = s;
        }
    }

    const mv_value **items = arena_alloc(a, (ngroups ? ngroups : 1) * sizeof(*items));
    mv_member *members = arena_alloc(a, (ngroups ? ngroups : 1) * sizeof(*members));
    size_t count = 0;
    for (size_t g = 0; g < ngroups; g++) {
        const expr_path_elem *el = &paths[starts[g]]->elems[d];
        size_t m = 0;
        for (size_t j = starts[g]; j < n; j++)
            if (paths[j]->elems[d].is_index == want_index && elem_same(&paths[j]->elems[d], el))
                group[m++] = paths[j];
        const mv_value *child;
        if (want_index)
            child = el->index < src->u.list.n ? src->u.list.items[el->index] : NULL;
        else
            child = mv_map_get(src, el->name, el->name_len);
        if (!child) continue;
        const mv_value *v = project(child, group, m, d + 1, a, false);
        if (!v) continue;
        if (want_index) {
            items[count++] = v;
        } else {
            members[count].name = arena_memdup(a, el->name, el->name_len);
            members[count].name_len = el->name_len;
            members[count].value = v;
            count++;
        }
    }
    if (count == 0 && !top) return NULL;
    if (want_index) return mv_new_list(a, items, count);
    return mv_new_map(a, members, count);
}

mv_value *expr_project(const expr_projection *proj, const mv_value *item, arena *a)
{
    if (!item) return NULL;
    if (item->type != MV_M || !proj) return mv_new_map(a, NULL, 0);
    const expr_path **paths = arena_alloc(a, (proj->n ? proj->n : 1) * sizeof(*paths));
    size_t n = 0;
    for (size_t i = 0; i < proj->n; i++)
        if (proj->paths[i].n > 0) paths[n++] = &proj->paths[i];
    if (n == 0) return mv_new_map(a, NULL, 0);
    /* project() returns a const view; the top level is always a fresh map. */
    return (mv_value *)project(item, paths, n, 0, a, true);
}

/* ---- Key conditions ---- */

typedef struct kc_leaf {
    const char *name;
    size_t name_len;
    expr_sk_op op;
    const mv_value *a, *b;
    const char *fname; /* begins_with */
} kc_leaf;

#define KC_OTHER_MAX 16 /* conditions on non-key attributes remembered */

typedef struct kc_state {
    const char *pk_name, *sk_name;
    kc_leaf pk, sk;
    bool has_pk, has_sk;
    size_t total;
    size_t nother;
    const char *other[KC_OTHER_MAX]; /* the first KC_OTHER_MAX of them */
    size_t other_len[KC_OTHER_MAX];
    err *e;
} kc_state;

static bool name_is(const char *want, const char *name, size_t len)
{
    return want && strlen(want) == len && memcmp(want, name, len) == 0;
}

static expr_sk_op sk_op_of(int cmp, bool flipped)
{
    switch (cmp) {
    case CMP_EQ:
        return SK_EQ;
    case CMP_LT:
        return flipped ? SK_GT : SK_LT;
    case CMP_LE:
        return flipped ? SK_GE : SK_LE;
    case CMP_GT:
        return flipped ? SK_LT : SK_GT;
    default:
        return flipped ? SK_LE : SK_GE;
    }
}

static int kc_leaf_check(const expr_node *n, kc_state *st)
{
    err *e = st->e;
    switch (n->kind) {
    case NK_OR:
        return err_validation(e, "Invalid operator used in KeyConditionExpression: OR");
    case NK_NOT:
        return err_validation(e, "Invalid operator used in KeyConditionExpression: NOT");
    case NK_IN:
        return err_validation(e, "Invalid operator used in KeyConditionExpression: IN");
    case NK_CMP:
        if (n->op == CMP_NE)
            return err_validation(e, "Invalid operator used in KeyConditionExpression: <>");
        break;
    case NK_CALL:
        if (n->op != FN_BEGINS_WITH)
            return err_validation(e, "Invalid operator used in KeyConditionExpression: %s",
                                  n->fname ? n->fname : "");
        break;
    case NK_BETWEEN:
        break;
    default:
        return err_validation(e, "Invalid condition in KeyConditionExpression: No key attribute "
                                 "specified");
    }
    for (size_t i = 0; i < n->nargs; i++)
        if (n->args[i]->kind == NK_CALL)
            return err_validation(e, "KeyConditionExpressions cannot contain nested operations");
    if (n->kind == NK_BETWEEN && n->args[0]->kind != NK_PATH)
        return err_validation(e, "Invalid condition in KeyConditionExpression: BETWEEN operator "
                                 "must have the key attribute as its first operand");
    if (n->kind == NK_CALL && n->args[0]->kind != NK_PATH)
        return err_validation(e, "Invalid condition in KeyConditionExpression: begins_with "
                                 "operator must have the key attribute as its first operand");
    const expr_node *path = NULL;
    size_t path_ix = 0;
    for (size_t i = 0; i < n->nargs; i++) {
        if (n->args[i]->kind != NK_PATH) continue;
        if (path)
            return err_validation(e, "Invalid condition in KeyConditionExpression: Multiple "
                                     "attribute names used in one condition");
        if (n->args[i]->path.n > 1)
            return err_validation(e, "KeyConditionExpressions cannot have conditions on nested "
                                     "attributes");
        path = n->args[i];
        path_ix = i;
    }
    if (!path)
        return err_validation(e, "Invalid condition in KeyConditionExpression: No key attribute "
                                 "specified");

    kc_leaf leaf = {0};
    leaf.name = path->path.elems[0].name;
    leaf.name_len = path->path.elems[0].name_len;
    if (n->kind == NK_CMP) {
        leaf.op = sk_op_of(n->op, path_ix != 0);
        leaf.a = n->args[path_ix == 0 ? 1 : 0]->value;
    } else if (n->kind == NK_BETWEEN) {
        leaf.op = SK_BETWEEN;
        leaf.a = n->args[1]->value;
        leaf.b = n->args[2]->value;
    } else {
        leaf.op = SK_BEGINS_WITH;
        leaf.a = n->args[1]->value;
        leaf.fname = n->fname;
    }

    st->total++;
    if (name_is(st->pk_name, leaf.name, leaf.name_len)) {
        if (st->has_pk) goto twice;
        st->pk = leaf;
        st->has_pk = true;
    } else if (name_is(st->sk_name, leaf.name, leaf.name_len)) {
        if (st->has_sk) goto twice;
        st->sk = leaf;
        st->has_sk = true;
    } else {
        /* Only the first KC_OTHER_MAX names are kept (and compared): any of
         * them fails the query anyway, for a repeat or for the names. */
        size_t kept = st->nother < KC_OTHER_MAX ? st->nother : KC_OTHER_MAX;
        for (size_t i = 0; i < kept; i++)
            if (st->other_len[i] == leaf.name_len &&
                memcmp(st->other[i], leaf.name, leaf.name_len) == 0)
                goto twice;
        if (st->nother < KC_OTHER_MAX) {
            st->other[st->nother] = leaf.name;
            st->other_len[st->nother] = leaf.name_len;
        }
        st->nother++;
    }
    return 0;
twice:
    return err_validation(e, "KeyConditionExpressions must only contain one condition per key");
}

static int kc_walk(const expr_node *n, kc_state *st)
{
    if (n->kind == NK_AND) {
        for (size_t i = 0; i < n->nargs; i++)
            if (kc_walk(n->args[i], st) < 0) return -1;
        return 0;
    }
    return kc_leaf_check(n, st);
}

static int kc_check_value(const mv_value *v, mv_type type, const char *key, err *e)
{
    if (!v) return 0;
    if (v->type != type)
        return err_validation(e, "One or more parameter values were invalid: Condition parameter "
                                 "type does not match schema type");
    if (v->type == MV_S && v->u.str.len == 0)
        return err_validation(e,
                              "One or more parameter values are not valid. The AttributeValue for "
                              "a key attribute cannot contain an empty string value. Key: %s",
                              key);
    return 0;
}

int expr_key_condition(const expr_node *cond, const char *pk_name, mv_type pk_type,
                       const char *sk_name, mv_type sk_type, expr_key_cond *out, err *e)
{
    kc_state st;
    memset(&st, 0, sizeof(st));
    memset(out, 0, sizeof(*out));
    st.pk_name = pk_name;
    st.sk_name = sk_name;
    st.e = e;
    if (!cond || !pk_name) return err_set(e, ERR_INTERNAL, "No key condition to check");
    if (kc_walk(cond, &st) < 0) return -1;
    if (!sk_name && st.total > 1) return err_validation(e, "Query key condition not supported");
    if (!st.has_pk)
        return err_validation(e, "Query condition missed key schema element: %s", pk_name);
    if (st.nother > 0)
        return err_validation(e, "Query condition missed key schema element: %s", sk_name);
    if (st.pk.op != SK_EQ) return err_validation(e, "Query key condition not supported");
    if (kc_check_value(st.pk.a, pk_type, pk_name, e) < 0) return -1;
    if (st.has_sk) {
        if (st.sk.op == SK_BEGINS_WITH && sk_type != MV_S && sk_type != MV_B)
            return err_validation(e,
                                  "Invalid KeyConditionExpression: Incorrect operand type for "
                                  "operator or function; operator or function: begins_with, "
                                  "operand type: %s",
                                  mv_type_name(sk_type));
        if (kc_check_value(st.sk.a, sk_type, sk_name, e) < 0 ||
            kc_check_value(st.sk.b, sk_type, sk_name, e) < 0)
            return -1;
    }
    out->pk = st.pk.a;
    out->sk_op = st.has_sk ? st.sk.op : SK_NONE;
    out->sk_a = st.has_sk ? st.sk.a : NULL;
    out->sk_b = st.has_sk ? st.sk.b : NULL;
    return 0;
}
