/* update.c - runs a parsed UpdateExpression against an item (expr.h).
 *
 * DynamoDB works an update out from the item as it was before the update:
 * every SET value, ADD sum and DELETE difference is computed from the old
 * item, and only then are the writes made. List positions are the old
 * positions too: "REMOVE l[1], l[3]" removes the second and the fourth of
 * the old elements, and SET or ADD past the end of a list appends, in index
 * order. The parser has already refused overlapping paths, so no write
 * touches a container another write replaces.
 *
 * Problems are reported in DynamoDB's order:
 *   1. a path whose parent exists but is not a map (before a name) or a
 *      list (before an index): "The document path provided in the update
 *      expression is invalid for update";
 *   2. operand types, action by action: arithmetic on non-numbers,
 *      list_append on non-lists, ADD/DELETE against an attribute of another
 *      type ("An operand in the update expression has an incorrect data
 *      type"), and ADD sums out of range (number.h's messages);
 *   3. clause by clause from the last to the first: paths whose parent is
 *      missing (the message of 1), then SET operands naming a missing
 *      attribute ("The provided expression refers to an attribute that does
 *      not exist in the item");
 *   4. SET arithmetic results out of range.
 *
 * The writes go into a small mutable tree (wnode) that copies only the
 * containers on written paths; everything else is shared with the old item.
 * The tree is then frozen back into immutable values with value.h's
 * constructors (maps are sorted by mv_new_map; a set that loses its last
 * element is removed, since empty sets do not exist).
 */
#include "expr/internal.h"

#include <string.h>

#define PATH_ERROR "The document path provided in the update expression is invalid for update"
#define TYPE_ERROR "An operand in the update expression has an incorrect data type"
#define MISSING_ERROR                                                                              \
    "The provided expression refers to an attribute that does not exist in the item"

const expr_projection *expr_update_paths(const expr_update *upd)
{
    return upd ? &upd->paths : NULL;
}

/* ---- Computing values from the old item ---- */

enum { FAIL_NONE = 0, FAIL_MISSING, FAIL_NUMBER };

/* The value of a SET operand. Returns 0 with *out set; 1 when the action
 * fails in a way DynamoDB reports later (*fail says how; a number error's
 * message goes to numerr); -1 with e set on a type error. */
static int set_value(const expr_node *n, const mv_value *item, arena *a, const mv_value **out,
                     int *fail, err *numerr, err *e)
{
    *out = NULL;
    switch (n->kind) {
    case NK_VALUE:
        *out = n->value;
        return 0;
    case NK_PATH:
        *out = expr_path_get(&n->path, item);
        if (!*out) {
            *fail = FAIL_MISSING;
            return 1;
        }
        return 0;
    case NK_CALL:
        if (n->op == FN_IF_NOT_EXISTS) {
            const mv_value *cur = expr_path_get(&n->args[0]->path, item);
            if (cur) {
                *out = cur;
                return 0;
            }
            return set_value(n->args[1], item, a, out, fail, numerr, e);
        }
        if (n->op == FN_LIST_APPEND) {
            const mv_value *x, *y;
            int r = set_value(n->args[0], item, a, &x, fail, numerr, e);
            if (r) return r;
            if (x->type != MV_L) return err_validation(e, TYPE_ERROR);
            r = set_value(n->args[1], item, a, &y, fail, numerr, e);
            if (r) return r;
            if (y->type != MV_L) return err_validation(e, TYPE_ERROR);
            size_t cnt = x->u.list.n + y->u.list.n;
            const mv_value **items = arena_alloc(a, (cnt ? cnt : 1) * sizeof(*items));
            if (x->u.list.n) memcpy(items, x->u.list.items, x->u.list.n * sizeof(*items));
            if (y->u.list.n)
                memcpy(items + x->u.list.n, y->u.list.items, y->u.list.n * sizeof(*items));
            *out = mv_new_list(a, items, cnt);
            return 0;
        }
        return err_set(e, ERR_INTERNAL, "Unexpected function in an update expression");
    case NK_ARITH: {
        const mv_value *x, *y;
        int r = set_value(n->args[0], item, a, &x, fail, numerr, e);
        if (r) return r;
        if (x->type != MV_N) return err_validation(e, TYPE_ERROR);
        r = set_value(n->args[1], item, a, &y, fail, numerr, e);
        if (r) return r;
        if (y->type != MV_N) return err_validation(e, TYPE_ERROR);
        num nx, ny, nr;
        if (mv_get_num(x, &nx, e) < 0 || mv_get_num(y, &ny, e) < 0) return -1;
        int rc = n->op == '+' ? num_add(&nx, &ny, &nr, numerr) : num_sub(&nx, &ny, &nr, numerr);
        if (rc < 0) {
            *fail = FAIL_NUMBER;
            return 1;
        }
        *out = mv_new_num(a, &nr);
        return 0;
    }
    default:
        return err_set(e, ERR_INTERNAL, "Unexpected operand in an update expression");
    }
}

/* Sorted-set union (both sets sorted and unique, value.h invariant 2). */
static const mv_value *set_union(arena *a, const mv_value *x, const mv_value *y, err *e)
{
    size_t nx = x->u.list.n, ny = y->u.list.n, i = 0, j = 0, k = 0;
    const mv_value **items = arena_alloc(a, (nx + ny) * sizeof(*items));
    while (i < nx || j < ny) {
        int c = i == nx   ? 1
                : j == ny ? -1
                          : mv_compare_scalar(x->u.list.items[i], y->u.list.items[j]);
        if (c <= 0) {
            items[k++] = x->u.list.items[i++];
            if (c == 0) j++;
        } else {
            items[k++] = y->u.list.items[j++];
        }
    }
    return mv_new_set(a, x->type, items, k, e);
}

/* x minus y; *empty when nothing is left (the attribute is then removed). */
static const mv_value *set_minus(arena *a, const mv_value *x, const mv_value *y, bool *empty,
                                 err *e)
{
    size_t nx = x->u.list.n, ny = y->u.list.n, i = 0, j = 0, k = 0;
    const mv_value **items = arena_alloc(a, (nx ? nx : 1) * sizeof(*items));
    while (i < nx) {
        int c = j == ny ? -1 : mv_compare_scalar(x->u.list.items[i], y->u.list.items[j]);
        if (c < 0) {
            items[k++] = x->u.list.items[i++];
        } else if (c == 0) {
            i++;
            j++;
        } else {
            j++;
        }
    }
    *empty = k == 0;
    if (k == 0) return NULL;
    return mv_new_set(a, x->type, items, k, e);
}

/* Whether the parent of path exists in item and has the container type the
 * last step needs; *parent_missing tells a missing parent from a wrong one. */
static bool writable(const expr_path *p, const mv_value *item, bool *parent_missing)
{
    *parent_missing = false;
    if (p->n <= 1) return true;
    expr_path prefix = {p->n - 1, p->elems};
    const mv_value *parent = expr_path_get(&prefix, item);
    if (!parent) {
        *parent_missing = true;
        return false;
    }
    return p->elems[p->n - 1].is_index ? parent->type == MV_L : parent->type == MV_M;
}

/* ---- The working tree ---- */

typedef struct wnode wnode;

typedef struct wentry {
    const char *name;
    size_t len;
    wnode *node;
} wentry;

typedef struct wappend {
    size_t index;
    const mv_value *v;
} wappend;

struct wnode {
    const mv_value *v; /* the value while not expanded; NULL = absent */
    bool expanded;
    mv_type type; /* MV_M or MV_L once expanded */
    wentry *ents; /* map members */
    size_t nents, capents;
    wnode **slots; /* list elements at their old positions */
    bool *removed;
    size_t nslots;
    wappend *apps; /* elements written past the old end */
    size_t napps, capapps;
};

static wnode *leaf(arena *a, const mv_value *v)
{
    wnode *w = arena_calloc(a, 1, sizeof(*w));
    w->v = v;
    return w;
}

static int expand(arena *a, wnode *w)
{
    if (w->expanded) return 0;
    if (!w->v || (w->v->type != MV_M && w->v->type != MV_L)) return -1;
    w->type = w->v->type;
    if (w->type == MV_M) {
        size_t n = w->v->u.map.n;
        w->capents = n + 4;
        w->ents = arena_alloc(a, w->capents * sizeof(wentry));
        for (size_t i = 0; i < n; i++) {
            const mv_member *m = &w->v->u.map.members[i];
            w->ents[i].name = m->name;
            w->ents[i].len = m->name_len;
            w->ents[i].node = leaf(a, m->value);
        }
        w->nents = n;
    } else {
        size_t n = w->v->u.list.n;
        w->slots = arena_alloc(a, (n ? n : 1) * sizeof(wnode *));
        w->removed = arena_calloc(a, n ? n : 1, sizeof(bool));
        for (size_t i = 0; i < n; i++)
            w->slots[i] = leaf(a, w->v->u.list.items[i]);
        w->nslots = n;
    }
    w->expanded = true;
    return 0;
}

static wentry *find_entry(wnode *w, const char *name, size_t len)
{
    for (size_t i = 0; i < w->nents; i++)
        if (w->ents[i].len == len && memcmp(w->ents[i].name, name, len) == 0) return &w->ents[i];
    return NULL;
}

/* Writes v at path (v NULL removes). The parent was checked to exist. */
static int apply_write(arena *a, wnode *root, const expr_path *p, const mv_value *v, err *e)
{
    wnode *cur = root;
    for (size_t i = 0; i + 1 < p->n; i++) {
        const expr_path_elem *el = &p->elems[i];
        if (expand(a, cur) < 0) return err_validation(e, PATH_ERROR);
        wnode *next = NULL;
        if (el->is_index) {
            if (cur->type == MV_L && el->index < cur->nslots && !cur->removed[el->index])
                next = cur->slots[el->index];
        } else if (cur->type == MV_M) {
            wentry *en = find_entry(cur, el->name, el->name_len);
            if (en) next = en->node;
        }
        if (!next) return err_validation(e, PATH_ERROR);
        cur = next;
    }
    if (expand(a, cur) < 0) return err_validation(e, PATH_ERROR);
    const expr_path_elem *last = &p->elems[p->n - 1];
    if (last->is_index) {
        if (cur->type != MV_L) return err_validation(e, PATH_ERROR);
        if (last->index < cur->nslots) {
            if (v) {
                cur->slots[last->index] = leaf(a, v);
                cur->removed[last->index] = false;
            } else {
                cur->removed[last->index] = true;
            }
        } else if (v) {
            if (cur->napps == cur->capapps) {
                size_t nc = cur->capapps ? cur->capapps * 2 : 4;
                cur->apps = arena_grow(a, cur->apps, cur->napps, nc, sizeof(wappend));
                cur->capapps = nc;
            }
            cur->apps[cur->napps].index = last->index;
            cur->apps[cur->napps].v = v;
            cur->napps++;
        }
        return 0;
    }
    if (cur->type != MV_M) return err_validation(e, PATH_ERROR);
    wentry *en = find_entry(cur, last->name, last->name_len);
    if (en) {
        en->node = leaf(a, v);
    } else if (v) {
        if (cur->nents == cur->capents) {
            size_t nc = cur->capents ? cur->capents * 2 : 4;
            cur->ents = arena_grow(a, cur->ents, cur->nents, nc, sizeof(wentry));
            cur->capents = nc;
        }
        cur->ents[cur->nents].name = last->name;
        cur->ents[cur->nents].len = last->name_len;
        cur->ents[cur->nents].node = leaf(a, v);
        cur->nents++;
    }
    return 0;
}

static const mv_value *freeze(arena *a, const wnode *w, err *e)
{
    if (!w->expanded) return w->v;
    if (w->type == MV_M) {
        mv_member *members = arena_alloc(a, (w->nents ? w->nents : 1) * sizeof(*members));
        size_t n = 0;
        for (size_t i = 0; i < w->nents; i++) {
            const mv_value *v = freeze(a, w->ents[i].node, e);
            if (!v) continue;
            members[n].name = arena_memdup(a, w->ents[i].name, w->ents[i].len);
            members[n].name_len = w->ents[i].len;
            members[n].value = v;
            n++;
        }
        mv_value *m = mv_new_map(a, members, n);
        if (!m) err_set(e, ERR_INTERNAL, "Duplicate attribute while applying an update");
        return m;
    }
    size_t cap = w->nslots + w->napps;
    const mv_value **items = arena_alloc(a, (cap ? cap : 1) * sizeof(*items));
    size_t n = 0;
    for (size_t i = 0; i < w->nslots; i++) {
        if (w->removed[i]) continue;
        const mv_value *v = freeze(a, w->slots[i], e);
        if (v) items[n++] = v;
    }
    /* Appended elements in index order (insertion sort: few of them). */
    for (size_t i = 1; i < w->napps; i++) {
        wappend x = w->apps[i];
        size_t j = i;
        while (j > 0 && w->apps[j - 1].index > x.index) {
            w->apps[j] = w->apps[j - 1];
            j--;
        }
        w->apps[j] = x;
    }
    for (size_t i = 0; i < w->napps; i++)
        items[n++] = w->apps[i].v;
    return mv_new_list(a, items, n);
}

/* ---- The update ---- */

typedef struct act_state {
    bool writable, parent_missing;
    int fail;
    err numerr;
    const mv_value *cur;    /* ADD/DELETE: the attribute's old value */
    const mv_value *result; /* the value to write; NULL removes */
    bool skip;              /* no write (DELETE on a missing attribute) */
} act_state;

int expr_apply_update(const expr_update *upd, const mv_value *old_item, arena *a, mv_value **out,
                      err *e)
{
    *out = NULL;
    if (!upd) return err_set(e, ERR_INTERNAL, "No update to apply");
    const mv_value *item = old_item;
    if (!item) {
        mv_member *none = arena_alloc(a, sizeof(*none));
        item = mv_new_map(a, none, 0);
    }
    if (!item || item->type != MV_M) return err_set(e, ERR_INTERNAL, "The item is not a map");
    size_t n = upd->n;
    act_state *st = arena_calloc(a, n ? n : 1, sizeof(*st));

    /* 1. Parents of the wrong type. */
    for (size_t i = 0; i < n; i++) {
        const expr_path *p = &upd->acts[i].path->path;
        st[i].writable = writable(p, item, &st[i].parent_missing);
        if (!st[i].writable && !st[i].parent_missing) return err_validation(e, PATH_ERROR);
    }

    /* 2. Operand types, computing every value from the old item. */
    for (size_t i = 0; i < n; i++) {
        const upd_action *act = &upd->acts[i];
        const expr_path *p = &act->path->path;
        switch (act->kind) {
        case UPD_SET: {
            err_clear(&st[i].numerr);
            int r = set_value(act->value, item, a, &st[i].result, &st[i].fail, &st[i].numerr, e);
            if (r < 0) return -1;
            break;
        }
        case UPD_REMOVE:
            st[i].result = NULL;
            break;
        case UPD_ADD:
        case UPD_DELETE: {
            const mv_value *v = act->value->value;
            const mv_value *cur = st[i].writable ? expr_path_get(p, item) : NULL;
            st[i].cur = cur;
            if (act->kind == UPD_ADD) {
                if (!cur) {
                    st[i].result = v;
                } else if (v->type == MV_N && cur->type == MV_N) {
                    num x, y, r;
                    if (mv_get_num(cur, &x, e) < 0 || mv_get_num(v, &y, e) < 0) return -1;
                    if (num_add(&x, &y, &r, e) < 0) return -1;
                    st[i].result = mv_new_num(a, &r);
                } else if (cur->type == v->type && mv_is_set(v->type)) {
                    st[i].result = set_union(a, cur, v, e);
                    if (!st[i].result) return -1;
                } else {
                    return err_validation(e, TYPE_ERROR);
                }
            } else {
                if (!cur) {
                    st[i].skip = true;
                } else if (cur->type != v->type) {
                    return err_validation(e, TYPE_ERROR);
                } else {
                    bool empty;
                    st[i].result = set_minus(a, cur, v, &empty, e);
                    if (!empty && !st[i].result) return -1;
                }
            }
            break;
        }
        }
    }

    /* 3. Clause by clause from the last: missing parents, missing operands. */
    for (size_t c = upd->nclauses; c-- > 0;) {
        for (size_t i = 0; i < n; i++)
            if (upd->acts[i].clause == c && !st[i].writable) return err_validation(e, PATH_ERROR);
        for (size_t i = 0; i < n; i++)
            if (upd->acts[i].clause == c && st[i].fail == FAIL_MISSING)
                return err_validation(e, MISSING_ERROR);
    }

    /* 4. Arithmetic out of range. */
    for (size_t i = 0; i < n; i++) {
        if (st[i].fail == FAIL_NUMBER) {
            if (e) {
                *e = st[i].numerr;
                if (e->code == ERR_NONE) e->code = ERR_VALIDATION;
            }
            return -1;
        }
    }

    /* The writes. */
    wnode *root = leaf(a, item);
    if (expand(a, root) < 0) return err_set(e, ERR_INTERNAL, "The item is not a map");
    for (size_t i = 0; i < n; i++) {
        if (st[i].skip) continue;
        if (apply_write(a, root, &upd->acts[i].path->path, st[i].result, e) < 0) return -1;
    }
    const mv_value *res = freeze(a, root, e);
    if (!res) return -1;
    *out = (mv_value *)res;
    return 0;
}
