/* value.c - the attribute value model (see value.h): type names, constructors
 * that establish the model's invariants (sorted unique map members and set
 * elements), map lookup and update, comparison, deep equality, DynamoDB's item
 * size accounting and deep copies.
 */
#include "item/value.h"

#include <stdlib.h>
#include <string.h>

#include "item/json.h"

static const char *const type_names[] = {
    [MV_S] = "S", [MV_N] = "N", [MV_B] = "B",   [MV_BOOL] = "BOOL", [MV_NULL] = "NULL",
    [MV_M] = "M", [MV_L] = "L", [MV_SS] = "SS", [MV_NS] = "NS",     [MV_BS] = "BS",
};

const char *mv_type_name(mv_type t)
{
    if (t < MV_S || t > MV_BS) return "?";
    return type_names[t];
}

mv_type mv_type_from_name(const char *s, size_t len)
{
    for (int t = MV_S; t <= MV_BS; t++) {
        if (strlen(type_names[t]) == len && memcmp(type_names[t], s, len) == 0) return (mv_type)t;
    }
    return (mv_type)0;
}

mv_type mv_set_elem_type(mv_type set_type)
{
    switch (set_type) {
    case MV_SS:
        return MV_S;
    case MV_NS:
        return MV_N;
    case MV_BS:
        return MV_B;
    default:
        return (mv_type)0;
    }
}

mv_type mv_set_type_of(mv_type elem_type)
{
    switch (elem_type) {
    case MV_S:
        return MV_SS;
    case MV_N:
        return MV_NS;
    case MV_B:
        return MV_BS;
    default:
        return (mv_type)0;
    }
}

/* ---- constructors ---- */

mv_value *mv_new_str(arena *a, mv_type t, const char *p, size_t len)
{
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = t;
    v->u.str.ptr = arena_memdup(a, p ? p : "", p ? len : 0);
    v->u.str.len = p ? len : 0;
    return v;
}

mv_value *mv_new_bool(arena *a, bool b)
{
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = MV_BOOL;
    v->u.boolean = b;
    return v;
}

mv_value *mv_new_null(arena *a)
{
    mv_value *v = arena_calloc(a, 1, sizeof(*v));
    v->type = MV_NULL;
    return v;
}

/* Byte-string order: unsigned bytes, a proper prefix first. */
static int bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    if (alen != blen) return alen < blen ? -1 : 1;
    return 0;
}

static int member_cmp(const void *x, const void *y)
{
    const mv_member *a = x, *b = y;
    return bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

mv_value *mv_new_map(arena *a, mv_member *members, size_t n)
{
    if (n > 1) {
        qsort(members, n, sizeof(*members), member_cmp);
        for (size_t i = 1; i < n; i++) {
            if (member_cmp(&members[i - 1], &members[i]) == 0) return NULL;
        }
    }
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = MV_M;
    v->u.map.members = n ? members : NULL;
    v->u.map.n = n;
    return v;
}

mv_value *mv_new_list(arena *a, const mv_value **items, size_t n)
{
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = MV_L;
    v->u.list.items = n ? items : NULL;
    v->u.list.n = n;
    return v;
}

/* Sort entry for set elements: numbers are parsed once, not per comparison. */
typedef struct set_entry {
    const mv_value *v;
    num n;
} set_entry;

static int entry_cmp_bytes(const void *x, const void *y)
{
    const set_entry *a = x, *b = y;
    return bytes_cmp(a->v->u.str.ptr, a->v->u.str.len, b->v->u.str.ptr, b->v->u.str.len);
}

static int entry_cmp_num(const void *x, const void *y)
{
    const set_entry *a = x, *b = y;
    return num_cmp(&a->n, &b->n);
}

/* Appends s to msg (capacity cap, NUL-terminated), truncating silently. */
static void msg_cat(char *msg, size_t cap, const char *s, size_t len)
{
    size_t used = strlen(msg);
    if (used + 1 >= cap) return;
    size_t room = cap - used - 1;
    if (len > room) len = room;
    memcpy(msg + used, s, len);
    msg[used + len] = '\0';
}

/* DynamoDB's duplicate messages: "[a, a]" lists the input collection as given
 * (binary elements in base64); number sets get a message without the list. */
static int duplicate_error(arena *a, mv_type set_type, const mv_value **items, size_t n, err *e)
{
    if (set_type == MV_NS) return err_validation(e, "Input collection contains duplicates");
    char list[sizeof(e->msg)];
    list[0] = '\0';
    msg_cat(list, sizeof(list), "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) msg_cat(list, sizeof(list), ", ", 2);
        if (set_type == MV_BS) {
            size_t blen = 0;
            char *b64 =
                base64_encode(a, (const uint8_t *)items[i]->u.str.ptr, items[i]->u.str.len, &blen);
            msg_cat(list, sizeof(list), b64, blen);
        } else {
            msg_cat(list, sizeof(list), items[i]->u.str.ptr, items[i]->u.str.len);
        }
    }
    msg_cat(list, sizeof(list), "]", 1);
    return err_validation(e,
                          "One or more parameter values were invalid: Input collection %s%s "
                          "contains duplicates.",
                          list, set_type == MV_BS ? "of type BS" : "");
}

mv_value *mv_new_set(arena *a, mv_type set_type, const mv_value **items, size_t n, err *e)
{
    mv_type et = mv_set_elem_type(set_type);
    if (!et) {
        err_set(e, ERR_INTERNAL, "mv_new_set: not a set type");
        return NULL;
    }
    if (n == 0) {
        if (set_type == MV_SS)
            err_validation(e, "One or more parameter values were invalid: An string set  may not "
                              "be empty");
        else if (set_type == MV_NS)
            err_validation(e, "One or more parameter values were invalid: An number set  may not "
                              "be empty");
        else
            err_validation(e,
                           "One or more parameter values were invalid: Binary sets should not be "
                           "empty");
        return NULL;
    }
    set_entry *ents = arena_alloc(a, n * sizeof(*ents));
    for (size_t i = 0; i < n; i++) {
        if (!items[i] || items[i]->type != et) {
            err_set(e, ERR_INTERNAL, "mv_new_set: element of the wrong type");
            return NULL;
        }
        ents[i].v = items[i];
        if (et == MV_N && mv_get_num(items[i], &ents[i].n, e) < 0) return NULL;
    }
    int (*cmp)(const void *, const void *) = et == MV_N ? entry_cmp_num : entry_cmp_bytes;
    qsort(ents, n, sizeof(*ents), cmp);
    for (size_t i = 1; i < n; i++) {
        if (cmp(&ents[i - 1], &ents[i]) == 0) {
            duplicate_error(a, set_type, items, n, e);
            return NULL;
        }
    }
    const mv_value **sorted = arena_alloc(a, n * sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = ents[i].v;
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = set_type;
    v->u.list.items = sorted;
    v->u.list.n = n;
    return v;
}

mv_value *mv_new_num(arena *a, const num *n)
{
    char text[NUM_TEXT_MAX + 1];
    size_t len = num_format(n, text);
    return mv_new_str(a, MV_N, text, len);
}

int mv_get_num(const mv_value *v, num *n, err *e)
{
    if (!v || v->type != MV_N) return err_set(e, ERR_INTERNAL, "mv_get_num: value is not a number");
    return num_parse(v->u.str.ptr, v->u.str.len, n, e);
}

/* ---- maps ---- */

/* Index of name in map, or -(insertion point) - 1 when absent. */
static ptrdiff_t map_find(const mv_value *map, const char *name, size_t name_len)
{
    size_t lo = 0, hi = map->u.map.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mv_member *m = &map->u.map.members[mid];
        int c = bytes_cmp(m->name, m->name_len, name, name_len);
        if (c == 0) return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

const mv_value *mv_map_get(const mv_value *map, const char *name, size_t name_len)
{
    if (!map || map->type != MV_M) return NULL;
    ptrdiff_t i = map_find(map, name, name_len);
    return i >= 0 ? map->u.map.members[i].value : NULL;
}

mv_value *mv_map_set(arena *a, const mv_value *map, const char *name, size_t name_len,
                     const mv_value *value)
{
    size_t n = map && map->type == MV_M ? map->u.map.n : 0;
    ptrdiff_t i = n ? map_find(map, name, name_len) : -1;
    size_t newn;
    if (i >= 0)
        newn = value ? n : n - 1;
    else
        newn = value ? n + 1 : n;
    mv_member *ms = newn ? arena_alloc(a, newn * sizeof(*ms)) : NULL;
    const mv_member *old = n ? map->u.map.members : NULL;
    if (i >= 0) {
        size_t at = (size_t)i;
        if (at) memcpy(ms, old, at * sizeof(*ms));
        if (value) {
            ms[at] = old[at];
            ms[at].value = value;
            if (n - at - 1) memcpy(ms + at + 1, old + at + 1, (n - at - 1) * sizeof(*ms));
        } else if (n - at - 1) {
            memcpy(ms + at, old + at + 1, (n - at - 1) * sizeof(*ms));
        }
    } else if (value) {
        size_t at = (size_t)(-i - 1);
        if (at) memcpy(ms, old, at * sizeof(*ms));
        ms[at].name = arena_memdup(a, name, name_len);
        ms[at].name_len = name_len;
        ms[at].value = value;
        if (n - at) memcpy(ms + at + 1, old + at, (n - at) * sizeof(*ms));
    } else if (n) {
        memcpy(ms, old, n * sizeof(*ms));
    }
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = MV_M;
    v->u.map.members = ms;
    v->u.map.n = newn;
    return v;
}

/* ---- comparison ---- */

int mv_compare_scalar(const mv_value *a, const mv_value *b)
{
    if (a->type == MV_N && b->type == MV_N) {
        num x, y;
        /* Values hold canonical text (invariant 3), so parsing cannot fail;
         * fall back to byte order if it somehow does. */
        if (mv_get_num(a, &x, NULL) == 0 && mv_get_num(b, &y, NULL) == 0) return num_cmp(&x, &y);
    }
    int c = bytes_cmp(a->u.str.ptr, a->u.str.len, b->u.str.ptr, b->u.str.len);
    return c < 0 ? -1 : c > 0;
}

bool mv_equal(const mv_value *a, const mv_value *b)
{
    if (a == b) return true;
    if (!a || !b || a->type != b->type) return false;
    switch (a->type) {
    case MV_S:
    case MV_B:
        return a->u.str.len == b->u.str.len &&
               (a->u.str.len == 0 || memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0);
    case MV_N:
        if (a->u.str.len == b->u.str.len && memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0)
            return true;
        return mv_compare_scalar(a, b) == 0;
    case MV_BOOL:
        return a->u.boolean == b->u.boolean;
    case MV_NULL:
        return true;
    case MV_L:
    case MV_SS:
    case MV_NS:
    case MV_BS:
        /* Sets are sorted and unique (invariant 2), so element-wise equality
         * is set equality. */
        if (a->u.list.n != b->u.list.n) return false;
        for (size_t i = 0; i < a->u.list.n; i++) {
            if (!mv_equal(a->u.list.items[i], b->u.list.items[i])) return false;
        }
        return true;
    case MV_M:
        if (a->u.map.n != b->u.map.n) return false;
        for (size_t i = 0; i < a->u.map.n; i++) {
            const mv_member *m = &a->u.map.members[i];
            if (!mv_equal(m->value, mv_map_get(b, m->name, m->name_len))) return false;
        }
        return true;
    }
    return false;
}

/* ---- size accounting ---- */

/* DynamoDB stores numbers as base-100 digits plus an exponent byte (and a
 * terminator byte for negatives); this is dynalite's model of that:
 * 1 + base-100 digit count + (1 if negative), and 1 for zero. The base-100
 * digit count depends on how the digits align with the exponent's parity. */
static size_t num_size(const mv_value *v)
{
    num n;
    if (mv_get_num(v, &n, NULL) < 0) return v->u.str.len; /* not canonical: cannot happen */
    if (n.ndigits == 0) return 1;
    /* Scientific exponent e = exp - 1; digits are aligned to base-100 pairs
     * when the integer part of the first pair holds two digits, i.e. e odd. */
    int e = n.exp - 1;
    size_t pairs = ((size_t)n.ndigits + 1) / 2;
    if (n.ndigits % 2 == 0 && e % 2 == 0) pairs++;
    return 1 + pairs + (n.neg ? 1 : 0);
}

size_t mv_value_size(const mv_value *v)
{
    size_t sz = 0;
    switch (v->type) {
    case MV_S:
    case MV_B:
        return v->u.str.len;
    case MV_N:
        return num_size(v);
    case MV_BOOL:
    case MV_NULL:
        return 1;
    case MV_SS:
    case MV_NS:
    case MV_BS:
        for (size_t i = 0; i < v->u.list.n; i++)
            sz += mv_value_size(v->u.list.items[i]);
        return sz;
    case MV_L:
        sz = 3;
        for (size_t i = 0; i < v->u.list.n; i++)
            sz += 1 + mv_value_size(v->u.list.items[i]);
        return sz;
    case MV_M:
        sz = 3;
        for (size_t i = 0; i < v->u.map.n; i++) {
            const mv_member *m = &v->u.map.members[i];
            sz += 1 + m->name_len + mv_value_size(m->value);
        }
        return sz;
    }
    return 0;
}

size_t mv_item_size(const mv_value *item)
{
    size_t sz = 0;
    if (!item || item->type != MV_M) return 0;
    for (size_t i = 0; i < item->u.map.n; i++) {
        const mv_member *m = &item->u.map.members[i];
        sz += m->name_len + mv_value_size(m->value);
    }
    return sz;
}

/* ---- copies ---- */

mv_value *mv_clone(arena *a, const mv_value *v)
{
    mv_value *c;
    switch (v->type) {
    case MV_S:
    case MV_N:
    case MV_B:
        return mv_new_str(a, v->type, v->u.str.ptr, v->u.str.len);
    case MV_BOOL:
        return mv_new_bool(a, v->u.boolean);
    case MV_NULL:
        return mv_new_null(a);
    case MV_L:
    case MV_SS:
    case MV_NS:
    case MV_BS: {
        size_t n = v->u.list.n;
        const mv_value **items = n ? arena_alloc(a, n * sizeof(*items)) : NULL;
        for (size_t i = 0; i < n; i++)
            items[i] = mv_clone(a, v->u.list.items[i]);
        c = arena_alloc(a, sizeof(*c));
        c->type = v->type;
        c->u.list.items = items;
        c->u.list.n = n;
        return c;
    }
    case MV_M: {
        size_t n = v->u.map.n;
        mv_member *ms = n ? arena_alloc(a, n * sizeof(*ms)) : NULL;
        for (size_t i = 0; i < n; i++) {
            const mv_member *m = &v->u.map.members[i];
            ms[i].name = arena_memdup(a, m->name, m->name_len);
            ms[i].name_len = m->name_len;
            ms[i].value = mv_clone(a, m->value);
        }
        c = arena_alloc(a, sizeof(*c));
        c->type = MV_M;
        c->u.map.members = ms;
        c->u.map.n = n;
        return c;
    }
    }
    return NULL;
}
