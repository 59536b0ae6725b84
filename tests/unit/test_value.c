/* test_value.c - unit tests for item/value.c: type names, constructors and
 * their invariants (sorted unique maps and sets, DynamoDB's duplicate and
 * empty-set messages), map lookup and update, scalar ordering, deep equality,
 * DynamoDB item size accounting and deep copies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/value.h"

static int setup(void **state)
{
    arena *a = malloc(sizeof(*a));
    if (!a) return -1;
    arena_init(a);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    arena *a = *state;
    arena_free(a);
    free(a);
    return 0;
}

static const mv_value *S(arena *a, const char *s)
{
    return mv_new_str(a, MV_S, s, strlen(s));
}

static const mv_value *N(arena *a, const char *s)
{
    num n;
    err e;
    if (num_parse(s, strlen(s), &n, &e) < 0) fail_msg("bad number %s: %s", s, e.msg);
    return mv_new_num(a, &n);
}

static const mv_value *B(arena *a, const char *p, size_t len)
{
    return mv_new_str(a, MV_B, p, len);
}

static mv_member mem(const char *name, const mv_value *v)
{
    return (mv_member){.name = name, .name_len = strlen(name), .value = v};
}

/* A map from name/value pairs, in the order given. */
static mv_value *map_of(arena *a, size_t n, const mv_member *in)
{
    mv_member *ms = arena_alloc(a, (n ? n : 1) * sizeof(*ms));
    if (n) memcpy(ms, in, n * sizeof(*ms));
    return mv_new_map(a, ms, n);
}

static const mv_value *set_of(arena *a, mv_type t, size_t n, const mv_value *const *items, err *e)
{
    const mv_value **arr = arena_alloc(a, (n ? n : 1) * sizeof(*arr));
    if (n) memcpy(arr, items, n * sizeof(*arr));
    return mv_new_set(a, t, arr, n, e);
}

static void test_type_names(void **state)
{
    (void)state;
    const char *names[] = {NULL, "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"};
    for (int t = MV_S; t <= MV_BS; t++) {
        assert_string_equal(mv_type_name((mv_type)t), names[t]);
        assert_int_equal(mv_type_from_name(names[t], strlen(names[t])), t);
    }
    assert_int_equal(mv_type_from_name("s", 1), 0);
    assert_int_equal(mv_type_from_name("SSS", 3), 0);
    assert_int_equal(mv_type_from_name("", 0), 0);
    assert_int_equal(mv_type_from_name("BOOLEAN", 4), MV_BOOL); /* length-delimited */
    assert_int_equal(mv_set_elem_type(MV_SS), MV_S);
    assert_int_equal(mv_set_elem_type(MV_NS), MV_N);
    assert_int_equal(mv_set_elem_type(MV_BS), MV_B);
    assert_int_equal(mv_set_elem_type(MV_L), 0);
    assert_int_equal(mv_set_type_of(MV_S), MV_SS);
    assert_int_equal(mv_set_type_of(MV_N), MV_NS);
    assert_int_equal(mv_set_type_of(MV_B), MV_BS);
    assert_int_equal(mv_set_type_of(MV_BOOL), 0);
    assert_true(mv_is_set(MV_NS));
    assert_false(mv_is_set(MV_L));
}

static void test_scalars(void **state)
{
    arena *a = *state;
    const mv_value *s = mv_new_str(a, MV_S, "a\0b", 3);
    assert_int_equal(s->type, MV_S);
    assert_int_equal(s->u.str.len, 3);
    assert_memory_equal(s->u.str.ptr, "a\0b", 4); /* NUL-terminated copy */
    const mv_value *empty = mv_new_str(a, MV_B, NULL, 0);
    assert_int_equal(empty->u.str.len, 0);
    assert_string_equal(empty->u.str.ptr, "");
    assert_true(mv_new_bool(a, true)->u.boolean);
    assert_false(mv_new_bool(a, false)->u.boolean);
    assert_int_equal(mv_new_null(a)->type, MV_NULL);
    /* numbers: canonical text in, parsed out */
    const mv_value *n = N(a, "1.50e2");
    assert_string_equal(n->u.str.ptr, "150");
    num x;
    err e;
    assert_int_equal(mv_get_num(n, &x, &e), 0);
    assert_int_equal(x.exp, 3);
    assert_int_equal(x.ndigits, 2);
    assert_int_equal(mv_get_num(s, &x, &e), -1);
    assert_string_equal(N(a, "-0.0")->u.str.ptr, "0");
}

static void test_map_sorted_unique(void **state)
{
    arena *a = *state;
    const mv_value *v = S(a, "v");
    mv_member in[] = {mem("b", v),    mem("ab", v), mem("a", v), mem("", v),
                      mem("\x80", v), mem("B", v),  mem("aa", v)};
    mv_value *m = map_of(a, 7, in);
    assert_non_null(m);
    const char *want[] = {"", "B", "a", "aa", "ab", "b", "\x80"};
    assert_int_equal(m->u.map.n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(m->u.map.members[i].name, want[i]);
    /* names with an embedded NUL: shorter first on a common prefix */
    mv_member nul[] = {{.name = "a\0", .name_len = 2, .value = v},
                       {.name = "a", .name_len = 1, .value = v}};
    mv_value *m2 = map_of(a, 2, nul);
    assert_non_null(m2);
    assert_int_equal(m2->u.map.members[0].name_len, 1);
    assert_int_equal(m2->u.map.members[1].name_len, 2);
    /* duplicates are rejected */
    mv_member dup[] = {mem("x", v), mem("y", v), mem("x", S(a, "other"))};
    assert_null(map_of(a, 3, dup));
    /* empty map */
    mv_value *e = mv_new_map(a, NULL, 0);
    assert_non_null(e);
    assert_int_equal(e->u.map.n, 0);
    assert_null(mv_map_get(e, "a", 1));
}

static void test_map_get(void **state)
{
    arena *a = *state;
    enum { COUNT = 300 };
    mv_member *ms = arena_alloc(a, COUNT * sizeof(*ms));
    /* insert in a scrambled order */
    for (int i = 0; i < COUNT; i++) {
        int k = (i * 7919) % COUNT;
        char *name = arena_sprintf(a, "attr%d", k * 2);
        ms[i] = (mv_member){name, strlen(name), N(a, arena_sprintf(a, "%d", k * 2))};
    }
    mv_value *m = mv_new_map(a, ms, COUNT);
    assert_non_null(m);
    for (int k = 0; k < 2 * COUNT; k++) {
        char name[32];
        snprintf(name, sizeof(name), "attr%d", k);
        const mv_value *v = mv_map_get(m, name, strlen(name));
        if (k % 2) {
            assert_null(v);
        } else {
            assert_non_null(v);
            char want[32];
            snprintf(want, sizeof(want), "%d", k);
            assert_string_equal(v->u.str.ptr, want);
        }
    }
    assert_null(mv_map_get(m, "attr", 4));
    assert_null(mv_map_get(m, "", 0));
    assert_null(mv_map_get(S(a, "x"), "x", 1)); /* not a map */
    assert_null(mv_map_get(NULL, "x", 1));
}

static void check_names(const mv_value *m, size_t n, const char *const *names)
{
    assert_int_equal(m->type, MV_M);
    assert_int_equal(m->u.map.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(m->u.map.members[i].name, names[i]);
}

static void test_map_set(void **state)
{
    arena *a = *state;
    mv_member in[] = {mem("b", S(a, "1")), mem("d", S(a, "2"))};
    mv_value *m = map_of(a, 2, in);
    /* insert at the front, middle and end */
    const mv_value *m1 = mv_map_set(a, m, "a", 1, S(a, "0"));
    check_names(m1, 3, (const char *[]){"a", "b", "d"});
    const mv_value *m2 = mv_map_set(a, m1, "c", 1, S(a, "x"));
    check_names(m2, 4, (const char *[]){"a", "b", "c", "d"});
    const mv_value *m3 = mv_map_set(a, m2, "e", 1, S(a, "y"));
    check_names(m3, 5, (const char *[]){"a", "b", "c", "d", "e"});
    /* replace */
    const mv_value *m4 = mv_map_set(a, m3, "c", 1, S(a, "z"));
    check_names(m4, 5, (const char *[]){"a", "b", "c", "d", "e"});
    assert_string_equal(mv_map_get(m4, "c", 1)->u.str.ptr, "z");
    assert_string_equal(mv_map_get(m3, "c", 1)->u.str.ptr, "x"); /* original unchanged */
    /* remove first, middle, last, absent */
    check_names(mv_map_set(a, m4, "a", 1, NULL), 4, (const char *[]){"b", "c", "d", "e"});
    check_names(mv_map_set(a, m4, "c", 1, NULL), 4, (const char *[]){"a", "b", "d", "e"});
    check_names(mv_map_set(a, m4, "e", 1, NULL), 4, (const char *[]){"a", "b", "c", "d"});
    check_names(mv_map_set(a, m4, "zz", 2, NULL), 5, (const char *[]){"a", "b", "c", "d", "e"});
    check_names(m, 2, (const char *[]){"b", "d"});
    /* on an empty map, and removing the only member */
    const mv_value *e = mv_new_map(a, NULL, 0);
    const mv_value *one = mv_map_set(a, e, "k", 1, S(a, "v"));
    check_names(one, 1, (const char *[]){"k"});
    const mv_value *none = mv_map_set(a, one, "k", 1, NULL);
    assert_int_equal(none->u.map.n, 0);
    check_names(mv_map_set(a, e, "k", 1, NULL), 0, NULL);
    /* the name is copied */
    char name[] = "tmp";
    const mv_value *t = mv_map_set(a, e, name, 3, S(a, "v"));
    name[0] = 'X';
    assert_non_null(mv_map_get(t, "tmp", 3));
}

static void test_sets(void **state)
{
    arena *a = *state;
    err e;
    const mv_value *ss = set_of(
        a, MV_SS, 4, (const mv_value *[]){S(a, "b"), S(a, "a"), S(a, "ab"), S(a, "\xc3\xa9")}, &e);
    assert_non_null(ss);
    assert_int_equal(ss->type, MV_SS);
    const char *want[] = {"a", "ab", "b", "\xc3\xa9"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(ss->u.list.items[i]->u.str.ptr, want[i]);

    const mv_value *ns = set_of(
        a, MV_NS, 5,
        (const mv_value *[]){N(a, "10"), N(a, "9"), N(a, "-1"), N(a, "0"), N(a, "1e-5")}, &e);
    assert_non_null(ns);
    const char *nwant[] = {"-1", "0", "0.00001", "9", "10"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(ns->u.list.items[i]->u.str.ptr, nwant[i]);

    const mv_value *bs = set_of(
        a, MV_BS, 3, (const mv_value *[]){B(a, "\xff", 1), B(a, "\x00", 1), B(a, "", 0)}, &e);
    assert_non_null(bs);
    assert_int_equal(bs->u.list.items[0]->u.str.len, 0);
    assert_int_equal((uint8_t)bs->u.list.items[1]->u.str.ptr[0], 0x00);
    assert_int_equal((uint8_t)bs->u.list.items[2]->u.str.ptr[0], 0xFF);

    /* DynamoDB's duplicate messages */
    err_clear(&e);
    assert_null(set_of(a, MV_SS, 2, (const mv_value *[]){S(a, "a"), S(a, "a")}, &e));
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_string_equal(e.msg, "One or more parameter values were invalid: Input collection [a, a] "
                               "contains duplicates.");
    /* the input collection is listed as given, not sorted */
    assert_null(set_of(a, MV_SS, 3, (const mv_value *[]){S(a, "z"), S(a, "a"), S(a, "z")}, &e));
    assert_string_equal(e.msg, "One or more parameter values were invalid: Input collection [z, a, "
                               "z] contains duplicates.");
    assert_null(set_of(a, MV_BS, 2, (const mv_value *[]){B(a, "b", 1), B(a, "b", 1)}, &e));
    assert_string_equal(e.msg, "One or more parameter values were invalid: Input collection [Yg==, "
                               "Yg==]of type BS contains duplicates.");
    assert_null(set_of(a, MV_NS, 2, (const mv_value *[]){N(a, "1"), N(a, "1.0")}, &e));
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_string_equal(e.msg, "Input collection contains duplicates");
    /* empty sets */
    assert_null(set_of(a, MV_SS, 0, NULL, &e));
    assert_string_equal(e.msg, "One or more parameter values were invalid: An string set  may not "
                               "be empty");
    assert_null(set_of(a, MV_NS, 0, NULL, &e));
    assert_string_equal(e.msg, "One or more parameter values were invalid: An number set  may not "
                               "be empty");
    assert_null(set_of(a, MV_BS, 0, NULL, &e));
    assert_string_equal(
        e.msg, "One or more parameter values were invalid: Binary sets should not be empty");
    /* misuse */
    assert_null(set_of(a, MV_SS, 1, (const mv_value *[]){N(a, "1")}, &e));
    assert_int_equal(e.code, ERR_INTERNAL);
    assert_null(set_of(a, MV_L, 1, (const mv_value *[]){S(a, "1")}, &e));
    assert_int_equal(e.code, ERR_INTERNAL);
    /* a very long duplicate list is truncated, not overflowed */
    enum { MANY = 500 };
    const mv_value **many = arena_alloc(a, MANY * sizeof(*many));
    for (int i = 0; i < MANY; i++)
        many[i] = S(a, "duplicate-string-value");
    assert_null(mv_new_set(a, MV_SS, many, MANY, &e));
    assert_true(strlen(e.msg) < sizeof(e.msg));
}

static int sgn(int x)
{
    return (x > 0) - (x < 0);
}

static void test_compare_scalar(void **state)
{
    arena *a = *state;
    assert_int_equal(sgn(mv_compare_scalar(S(a, "a"), S(a, "b"))), -1);
    assert_int_equal(sgn(mv_compare_scalar(S(a, "b"), S(a, "a"))), 1);
    assert_int_equal(mv_compare_scalar(S(a, "abc"), S(a, "abc")), 0);
    assert_int_equal(sgn(mv_compare_scalar(S(a, "a"), S(a, "ab"))), -1);
    assert_int_equal(sgn(mv_compare_scalar(S(a, "z"), S(a, "\x80"))), -1); /* unsigned bytes */
    assert_int_equal(sgn(mv_compare_scalar(S(a, ""), S(a, "a"))), -1);
    assert_int_equal(sgn(mv_compare_scalar(B(a, "a", 1), B(a, "a\0", 2))), -1);
    assert_int_equal(sgn(mv_compare_scalar(B(a, "a\0", 2), B(a, "ab", 2))), -1);
    assert_int_equal(sgn(mv_compare_scalar(B(a, "\xff", 1), B(a, "\x01", 1))), 1);
    assert_int_equal(sgn(mv_compare_scalar(N(a, "10"), N(a, "9"))), 1);
    assert_int_equal(sgn(mv_compare_scalar(N(a, "-10"), N(a, "-9"))), -1);
    assert_int_equal(sgn(mv_compare_scalar(N(a, "0.5"), N(a, "5e-1"))), 0);
    assert_int_equal(sgn(mv_compare_scalar(N(a, "-1e-130"), N(a, "0"))), -1);
}

static void test_equal(void **state)
{
    arena *a = *state;
    assert_true(mv_equal(S(a, "x"), S(a, "x")));
    assert_false(mv_equal(S(a, "x"), S(a, "y")));
    assert_false(mv_equal(S(a, "x"), S(a, "xy")));
    assert_false(mv_equal(S(a, "1"), N(a, "1"))); /* types must match */
    assert_false(mv_equal(S(a, "x"), B(a, "x", 1)));
    assert_true(mv_equal(N(a, "1.0"), N(a, "1")));
    assert_false(mv_equal(N(a, "1"), N(a, "-1")));
    assert_true(mv_equal(B(a, "\0\1", 2), B(a, "\0\1", 2)));
    assert_false(mv_equal(B(a, "\0\1", 2), B(a, "\0\2", 2)));
    assert_true(mv_equal(mv_new_bool(a, true), mv_new_bool(a, true)));
    assert_false(mv_equal(mv_new_bool(a, true), mv_new_bool(a, false)));
    assert_true(mv_equal(mv_new_null(a), mv_new_null(a)));
    assert_false(mv_equal(mv_new_null(a), mv_new_bool(a, true)));
    assert_false(mv_equal(S(a, "x"), NULL));
    /* maps regardless of the order members were given in */
    mv_member m1[] = {mem("a", S(a, "1")), mem("b", N(a, "2")), mem("c", mv_new_null(a))};
    mv_member m2[] = {mem("c", mv_new_null(a)), mem("a", S(a, "1")), mem("b", N(a, "2.0"))};
    mv_member m3[] = {mem("c", mv_new_null(a)), mem("a", S(a, "1")), mem("b", N(a, "3"))};
    mv_member m4[] = {mem("a", S(a, "1")), mem("b", N(a, "2"))};
    mv_member m5[] = {mem("a", S(a, "1")), mem("b", N(a, "2")), mem("d", mv_new_null(a))};
    assert_true(mv_equal(map_of(a, 3, m1), map_of(a, 3, m2)));
    assert_false(mv_equal(map_of(a, 3, m1), map_of(a, 3, m3)));
    assert_false(mv_equal(map_of(a, 3, m1), map_of(a, 2, m4)));
    assert_false(mv_equal(map_of(a, 3, m1), map_of(a, 3, m5)));
    assert_true(mv_equal(mv_new_map(a, NULL, 0), mv_new_map(a, NULL, 0)));
    /* lists are ordered */
    const mv_value *l1[] = {S(a, "a"), N(a, "1")}, *l2[] = {N(a, "1"), S(a, "a")};
    assert_true(mv_equal(mv_new_list(a, l1, 2), mv_new_list(a, l1, 2)));
    assert_false(mv_equal(mv_new_list(a, l1, 2), mv_new_list(a, l2, 2)));
    assert_false(mv_equal(mv_new_list(a, l1, 2), mv_new_list(a, l1, 1)));
    assert_true(mv_equal(mv_new_list(a, NULL, 0), mv_new_list(a, NULL, 0)));
    assert_false(mv_equal(mv_new_list(a, NULL, 0), mv_new_map(a, NULL, 0)));
    /* sets are unordered */
    err e;
    const mv_value *s1 =
        set_of(a, MV_NS, 3, (const mv_value *[]){N(a, "3"), N(a, "1"), N(a, "2")}, &e);
    const mv_value *s2 =
        set_of(a, MV_NS, 3, (const mv_value *[]){N(a, "2"), N(a, "3"), N(a, "1")}, &e);
    const mv_value *s3 = set_of(a, MV_NS, 2, (const mv_value *[]){N(a, "2"), N(a, "3")}, &e);
    const mv_value *s4 =
        set_of(a, MV_SS, 3, (const mv_value *[]){S(a, "2"), S(a, "3"), S(a, "1")}, &e);
    assert_true(mv_equal(s1, s2));
    assert_false(mv_equal(s1, s3));
    assert_false(mv_equal(s1, s4));
    /* nested */
    mv_member inner1[] = {mem("l", mv_new_list(a, l1, 2)), mem("s", s1)};
    mv_member inner2[] = {mem("s", s2), mem("l", mv_new_list(a, l1, 2))};
    mv_member outer1[] = {mem("m", map_of(a, 2, inner1))};
    mv_member outer2[] = {mem("m", map_of(a, 2, inner2))};
    assert_true(mv_equal(map_of(a, 1, outer1), map_of(a, 1, outer2)));
}

static void test_sizes(void **state)
{
    arena *a = *state;
    char buf[200];
    assert_int_equal(mv_value_size(S(a, "abc")), 3);
    assert_int_equal(mv_value_size(S(a, "")), 0);
    assert_int_equal(mv_value_size(S(a, "\xc3\xa9\xe2\x82\xac")), 5); /* UTF-8 bytes */
    assert_int_equal(mv_value_size(B(a, "\0\1\2", 3)), 3);
    assert_int_equal(mv_value_size(mv_new_bool(a, false)), 1);
    assert_int_equal(mv_value_size(mv_new_null(a)), 1);
    /* numbers: 1 byte of exponent + base-100 digits + 1 if negative */
    struct {
        const char *n;
        size_t size;
    } nums[] = {{"0", 1},      {"1", 2},   {"-1", 3},  {"10", 2},   {"12", 2},     {"123", 3},
                {"1234", 3},   {"1.5", 3}, {"0.5", 2}, {"0.05", 2}, {"0.15", 2},   {"-0.15", 3},
                {"100000", 2}, {"99", 2},  {"101", 3}, {"1.01", 3}, {"1e-130", 2}, {"1e125", 2}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        size_t got = mv_value_size(N(a, nums[i].n));
        if (got != nums[i].size)
            fail_msg("size of %s: %zu, want %zu", nums[i].n, got, nums[i].size);
    }
    /* the numbers in dynalite's item-size boundary tests */
    struct {
        const char *digits;
        int zeros;
        size_t size;
    } big[] = {{"11111111111111111111111111111111111111", 88, 20},
               {"1", 125, 2},
               {"11", 124, 2},
               {"11111", 121, 4},
               {"111111", 120, 4},
               {"1111111", 119, 5}};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        snprintf(buf, sizeof(buf), "%se%d", big[i].digits, big[i].zeros);
        size_t got = mv_value_size(N(a, buf));
        if (got != big[i].size) fail_msg("size of %s: %zu, want %zu", buf, got, big[i].size);
    }
    /* sets: sum of the elements */
    err e;
    assert_int_equal(
        mv_value_size(set_of(a, MV_SS, 2, (const mv_value *[]){S(a, "ab"), S(a, "cde")}, &e)), 5);
    assert_int_equal(
        mv_value_size(set_of(a, MV_NS, 2, (const mv_value *[]){N(a, "1"), N(a, "-1")}, &e)), 5);
    assert_int_equal(mv_value_size(set_of(a, MV_BS, 1, (const mv_value *[]){B(a, "xyz", 3)}, &e)),
                     3);
    /* lists: 3 + (1 + element) each; maps: 3 + (1 + name + value) each */
    assert_int_equal(mv_value_size(mv_new_list(a, NULL, 0)), 3);
    const mv_value *l[] = {S(a, "ab"), mv_new_null(a)};
    assert_int_equal(mv_value_size(mv_new_list(a, l, 2)), 3 + 3 + 2);
    assert_int_equal(mv_value_size(mv_new_map(a, NULL, 0)), 3);
    mv_member ms[] = {mem("k", S(a, "vv")), mem("name", mv_new_bool(a, true))};
    const mv_value *m = map_of(a, 2, ms);
    assert_int_equal(mv_value_size(m), 3 + (1 + 1 + 2) + (1 + 4 + 1));
    /* nested */
    const mv_value *ll[] = {m, mv_new_list(a, l, 2)};
    assert_int_equal(mv_value_size(mv_new_list(a, ll, 2)), 3 + (1 + 13) + (1 + 8));
    /* items: names + values, no per-item overhead */
    mv_member item[] = {mem("a", S(a, "0123456789")), mem("bb", N(a, "12")), mem("\xc3\xa9", m)};
    assert_int_equal(mv_item_size(map_of(a, 3, item)), (1 + 10) + (2 + 2) + (2 + 13));
    assert_int_equal(mv_item_size(mv_new_map(a, NULL, 0)), 0);
}

static void test_clone(void **state)
{
    arena *a = *state;
    arena other;
    arena_init(&other);
    err e;
    const mv_value *ss = set_of(a, MV_SS, 2, (const mv_value *[]){S(a, "y"), S(a, "x")}, &e);
    const mv_value *list[] = {N(a, "-1.5"), B(a, "\0\xff", 2), mv_new_null(a), ss};
    mv_member inner[] = {mem("l", mv_new_list(a, list, 4)), mem("t", mv_new_bool(a, true))};
    mv_member outer[] = {mem("m", map_of(a, 2, inner)), mem("s", S(a, "str")),
                         mem("e", mv_new_map(a, NULL, 0)), mem("el", mv_new_list(a, NULL, 0))};
    const mv_value *orig = map_of(a, 4, outer);
    mv_value *copy = mv_clone(&other, orig);
    assert_true(mv_equal(orig, copy));
    assert_ptr_not_equal(copy, orig);
    assert_ptr_not_equal(copy->u.map.members, orig->u.map.members);
    assert_ptr_not_equal(copy->u.map.members[0].name, orig->u.map.members[0].name);
    const mv_value *cl = mv_map_get(mv_map_get(copy, "m", 1), "l", 1);
    assert_ptr_not_equal(cl->u.list.items[0], list[0]);
    /* the copy survives the source arena (ASan would catch a shared pointer) */
    arena scratch;
    arena_init(&scratch);
    const mv_value *tmp = mv_clone(&scratch, copy);
    mv_value *copy2 = mv_clone(&other, tmp);
    arena_free(&scratch);
    assert_true(mv_equal(copy, copy2));
    assert_int_equal(mv_item_size(copy2), mv_item_size(orig));
    arena_free(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test_setup_teardown(test_scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_sorted_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_scalar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
