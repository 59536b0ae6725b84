/* test_codec.c - unit tests for item/codec.c: the binary item encoding (round
 * trips from DynamoDB JSON and back, the documented byte layout, rejection of
 * every truncation, trailing bytes, bad types, absurd lengths, broken
 * invariants and deep nesting, plus mutation fuzzing), the order-preserving
 * scalar key encodings, the on-disk key hash, and item/partition keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/codec.h"
#include "item/json.h"
#define UNIT_RNG_SEED 0x243F6A8885A308D3ULL
#include "unit.h"

static mv_value *item_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("test JSON does not parse: %s", text);
    err e;
    mv_value *v = mv_map_from_json(&A, j, &e);
    cJSON_Delete(j);
    if (!v) fail_msg("%s: %s", text, e.msg);
    return v;
}

static const mv_value *S(const char *s)
{
    return mv_new_str(&A, MV_S, s, strlen(s));
}

static const mv_value *Bn(const void *p, size_t n)
{
    return mv_new_str(&A, MV_B, p, n);
}

static const mv_value *N(const char *s)
{
    num n;
    err e;
    if (num_parse(s, strlen(s), &n, &e) < 0) fail_msg("bad number %s", s);
    return mv_new_num(&A, &n);
}

/* Encodes, decodes, checks equality and returns the encoding (caller frees). */
static uint8_t *encode_checked(const mv_value *item, size_t *len)
{
    buf b;
    buf_init(&b);
    item_encode(&b, item);
    mv_value *back = NULL;
    assert_int_equal(item_decode(&A, b.data, b.len, &back), 0);
    assert_non_null(back);
    assert_true(mv_equal(item, back));
    assert_int_equal(mv_item_size(item), mv_item_size(back));
    return buf_detach(&b, len);
}

static const char *DOC =
    "{\"pk\":{\"S\":\"user#1\"},\"sk\":{\"N\":\"-12.50\"},\"bin\":{\"B\":\"AAECAwQ=\"},"
    "\"flags\":{\"SS\":[\"x\",\"a\",\"\"]},\"nums\":{\"NS\":[\"3\",\"-1\",\"2.5\",\"1e-130\","
    "\"9.9999999999999999999999999999999999999E+125\"]},"
    "\"blobs\":{\"BS\":[\"AQ==\",\"AA==\",\"\"]},\"ok\":{\"BOOL\":true},\"no\":{\"BOOL\":false},"
    "\"nil\":{\"NULL\":true},\"zero\":{\"N\":\"0\"},"
    "\"list\":{\"L\":[{\"S\":\"a\"},{\"M\":{\"k\":{\"N\":\"1\"}}},{\"L\":[]},{\"NULL\":true}]},"
    "\"map\":{\"M\":{\"z\":{\"S\":\"\\u0001nul\"},\"a\":{\"B\":\"\"},\"\":{\"M\":{}}}},"
    "\"utf\":{\"S\":\"\xc3\xa9\xf0\x9f\x98\x80\"}}";

static void test_round_trip(void **state)
{
    (void)state;
    /* JSON -> value -> binary -> value -> JSON */
    mv_value *v = item_json(DOC);
    size_t len;
    uint8_t *enc = encode_checked(v, &len);
    assert_int_equal(enc[0], 0x01); /* format version */
    mv_value *back;
    assert_int_equal(item_decode(&A, enc, len, &back), 0);
    buf j1, j2;
    buf_init(&j1);
    buf_init(&j2);
    mv_map_to_json(&j1, v);
    mv_map_to_json(&j2, back);
    assert_string_equal((char *)j1.data, (char *)j2.data);
    /* and decoding is deterministic: re-encoding gives the same bytes */
    buf again;
    buf_init(&again);
    item_encode(&again, back);
    assert_int_equal(again.len, len);
    assert_memory_equal(again.data, enc, len);
    buf_free(&again);
    buf_free(&j1);
    buf_free(&j2);
    free(enc);
    /* the empty item */
    enc = encode_checked(mv_new_map(&A, NULL, 0), &len);
    assert_int_equal(len, 2);
    assert_int_equal(enc[1], 0);
    free(enc);
    /* long strings need multi-byte varints */
    size_t big = 300000;
    char *s = arena_alloc(&A, big);
    for (size_t i = 0; i < big; i++)
        s[i] = (char)('a' + i % 26);
    mv_member m = {.name = "big", .name_len = 3, .value = mv_new_str(&A, MV_S, s, big)};
    mv_member *ms = arena_alloc(&A, sizeof(*ms));
    *ms = m;
    enc = encode_checked(mv_new_map(&A, ms, 1), &len);
    assert_int_equal(len, 1 + 1 + 1 + 3 + 1 + 3 + big);
    free(enc);
}

static void expect_bytes(const char *json, const uint8_t *want, size_t want_len)
{
    buf b;
    buf_init(&b);
    item_encode(&b, item_json(json));
    if (b.len != want_len || memcmp(b.data, want, want_len) != 0) {
        char hex[512] = "";
        for (size_t i = 0; i < b.len && i < 100; i++)
            sprintf(hex + 3 * i, "%02x ", b.data[i]);
        fail_msg("%s encoded as %s", json, hex);
    }
    buf_free(&b);
}

static void test_layout(void **state)
{
    (void)state;
    /* version, count, name length, name, type, payload */
    expect_bytes("{\"a\":{\"S\":\"x\"}}", (const uint8_t[]){1, 1, 1, 'a', 1, 1, 'x'}, 7);
    /* N: the number's key encoding: positive, exp 1 + 129, digits "1" + pad */
    expect_bytes("{\"n\":{\"N\":\"1\"}}", (const uint8_t[]){1, 1, 1, 'n', 2, 0x81, 0x82, 11, 0}, 9);
    expect_bytes("{\"n\":{\"N\":\"0\"}}", (const uint8_t[]){1, 1, 1, 'n', 2, 0x80}, 6);
    expect_bytes("{\"b\":{\"B\":\"AP8=\"}}", (const uint8_t[]){1, 1, 1, 'b', 3, 2, 0x00, 0xFF}, 8);
    expect_bytes("{\"t\":{\"BOOL\":true},\"z\":{\"NULL\":true}}",
                 (const uint8_t[]){1, 2, 1, 't', 4, 1, 1, 'z', 5}, 9);
    expect_bytes("{\"m\":{\"M\":{\"k\":{\"S\":\"\"}}}}",
                 (const uint8_t[]){1, 1, 1, 'm', 6, 1, 1, 'k', 1, 0}, 10);
    expect_bytes("{\"l\":{\"L\":[{\"NULL\":true},{\"BOOL\":false}]}}",
                 (const uint8_t[]){1, 1, 1, 'l', 7, 2, 5, 4, 0}, 9);
    expect_bytes("{\"s\":{\"SS\":[\"b\",\"a\"]}}",
                 (const uint8_t[]){1, 1, 1, 's', 8, 2, 1, 'a', 1, 'b'}, 10);
    expect_bytes("{\"s\":{\"NS\":[\"0\",\"-1\"]}}",
                 (const uint8_t[]){1, 1, 1, 's', 9, 2, 0x7F, 0xFF - 0x82, 0xFF - 11, 0xFF, 0x80},
                 11);
    expect_bytes("{\"s\":{\"BS\":[\"AQ==\"]}}", (const uint8_t[]){1, 1, 1, 's', 10, 1, 1, 1}, 8);
}

static int decode(const uint8_t *p, size_t len)
{
    mv_value *v = NULL;
    int r = item_decode(&A, p, len, &v);
    if (r == 0) assert_non_null(v);
    return r;
}

static void test_truncations_and_trailing(void **state)
{
    (void)state;
    size_t len;
    uint8_t *enc = encode_checked(item_json(DOC), &len);
    /* every proper prefix fails (copied so that ASan sees any overread) */
    for (size_t t = 0; t < len; t++) {
        uint8_t *copy = malloc(t ? t : 1);
        memcpy(copy, enc, t);
        if (decode(copy, t) != -1) fail_msg("truncation to %zu of %zu bytes accepted", t, len);
        free(copy);
    }
    /* trailing bytes fail */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, enc, len);
    for (int c = 0; c < 256; c += 51) {
        longer[len] = (uint8_t)c;
        assert_int_equal(decode(longer, len + 1), -1);
    }
    free(longer);
    assert_int_equal(decode(enc, len), 0);
    assert_int_equal(item_decode(&A, NULL, 0, &(mv_value *){NULL}), -1);
    free(enc);
}

static void test_malformed(void **state)
{
    (void)state;
    /* version */
    assert_int_equal(decode((const uint8_t[]){0, 0}, 2), -1);
    assert_int_equal(decode((const uint8_t[]){2, 0}, 2), -1);
    assert_int_equal(decode((const uint8_t[]){1, 0}, 2), 0);
    /* type bytes */
    for (int t = 0; t < 256; t++) {
        if (t >= MV_S && t <= MV_BS) continue;
        assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', (uint8_t)t}, 5), -1);
        assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 7, 1, (uint8_t)t}, 7), -1);
    }
    /* absurd lengths and counts, which must not be allocated for */
    assert_int_equal(
        decode((const uint8_t[]){1, 1, 1, 'a', 1, 0x80, 0x80, 0x80, 0x80, 0x01, 'x'}, 11), -1);
    assert_int_equal(decode((const uint8_t[]){1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, 6), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 7, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                              0xFF, 0xFF, 0x7F},
                            14),
                     -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                              0xFF, 0xFF, 0xFF, 0x01},
                            15),
                     -1);
    /* an 11-byte varint overflows */
    uint8_t vlong[16] = {1, 1, 1, 'a', 1};
    for (int i = 0; i < 10; i++)
        vlong[5 + i] = 0x80;
    vlong[15] = 0x01;
    assert_int_equal(decode(vlong, 16), -1);
    /* a string longer than what remains */
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 1, 3, 'x', 'y'}, 8), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 5, 'a', 5}, 5), -1);
    /* BOOL payload must be 0 or 1 */
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 4, 2}, 6), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 4, 1}, 6), 0);
    /* numbers must be canonical key encodings */
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 2, 0x81, 0x82, 1, 0}, 9),
                     -1); /* "00" */
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 2, 0x81, 0x82, 11, 0}, 9), 0); /* "1" */
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'a', 2, 0x42}, 6), -1);
    /* map names strictly increasing (top level and nested) */
    assert_int_equal(decode((const uint8_t[]){1, 2, 1, 'b', 5, 1, 'a', 5}, 8), -1);
    assert_int_equal(decode((const uint8_t[]){1, 2, 1, 'a', 5, 1, 'a', 5}, 8), -1);
    assert_int_equal(decode((const uint8_t[]){1, 2, 2, 'a', 'b', 5, 1, 'a', 5}, 9), -1);
    assert_int_equal(decode((const uint8_t[]){1, 2, 1, 'a', 5, 2, 'a', 'b', 5}, 9), 0);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 'm', 6, 2, 1, 'b', 5, 1, 'a', 5}, 12), -1);
    /* sets: non-empty, strictly increasing */
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 8, 0}, 6), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 8, 2, 1, 'b', 1, 'a'}, 10), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 8, 2, 1, 'a', 1, 'a'}, 10), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 10, 2, 1, 'a', 0}, 9), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 10, 2, 0, 1, 'a'}, 9), 0);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 9, 2, 0x80, 0x80}, 8), -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 9, 2, 0x81, 0x82, 11, 0, 0x80}, 11),
                     -1);
    assert_int_equal(decode((const uint8_t[]){1, 1, 1, 's', 9, 2, 0x80, 0x81, 0x82, 11, 0}, 11), 0);
}

/* A value nested depth levels deep: M -> L -> M ... around a leaf. */
static const mv_value *deep(int depth)
{
    const mv_value *v = S("leaf");
    for (int i = 0; i < depth; i++) {
        if (i % 2) {
            const mv_value **items = arena_alloc(&A, sizeof(*items));
            items[0] = v;
            v = mv_new_list(&A, items, 1);
        } else {
            mv_member *m = arena_alloc(&A, sizeof(*m));
            *m = (mv_member){.name = "k", .name_len = 1, .value = v};
            v = mv_new_map(&A, m, 1);
        }
    }
    return v;
}

static void test_nesting_limit(void **state)
{
    (void)state;
    for (int depth = 30; depth <= 70; depth++) {
        mv_member *m = arena_alloc(&A, sizeof(*m));
        *m = (mv_member){.name = "d", .name_len = 1, .value = deep(depth)};
        mv_value *item = mv_new_map(&A, m, 1);
        buf b;
        buf_init(&b);
        item_encode(&b, item);
        mv_value *back = NULL;
        int r = item_decode(&A, b.data, b.len, &back);
        /* everything DynamoDB allows (32 levels) and a margin decode; the
         * decoder's recursion is bounded */
        if (depth <= 60) {
            assert_int_equal(r, 0);
            assert_true(mv_equal(item, back));
        }
        if (depth >= 64) assert_int_equal(r, -1);
        buf_free(&b);
    }
    /* a hostile encoding of 100000 nested lists is rejected without recursing
     * that deep */
    size_t n = 100000;
    uint8_t *p = malloc(4 + 2 * n + 1);
    size_t k = 0;
    p[k++] = 1;
    p[k++] = 1;
    p[k++] = 1;
    p[k++] = 'x';
    for (size_t i = 0; i < n; i++) {
        p[k++] = 7;
        p[k++] = 1;
    }
    p[k++] = 5;
    assert_int_equal(decode(p, k), -1);
    free(p);
}

static void test_fuzz(void **state)
{
    (void)state;
    size_t len;
    uint8_t *enc = encode_checked(item_json(DOC), &len);
    uint8_t *m = malloc(len);
    int accepted = 0;
    for (int k = 0; k < 20000; k++) {
        memcpy(m, enc, len);
        int flips = 1 + (int)(rng() % 3);
        for (int f = 0; f < flips; f++)
            m[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
        size_t mlen = (k % 4 == 0) ? rng() % (len + 1) : len;
        uint8_t *copy = malloc(mlen ? mlen : 1);
        memcpy(copy, m, mlen);
        mv_value *v = NULL;
        if (item_decode(&A, copy, mlen, &v) == 0) {
            /* anything accepted satisfies the invariants: it re-encodes and
             * decodes to an equal value */
            accepted++;
            size_t l2;
            free(encode_checked(v, &l2));
        }
        free(copy);
        if (k % 1000 == 999) { /* keep the arena small */
            arena_free(&A);
            arena_init(&A);
        }
    }
    /* random junk too */
    for (int k = 0; k < 20000; k++) {
        uint8_t junk[64];
        size_t jl = rng() % sizeof(junk);
        for (size_t i = 0; i < jl; i++)
            junk[i] = (uint8_t)(rng() % 12);
        if (jl) junk[0] = 1;
        mv_value *v = NULL;
        if (item_decode(&A, junk, jl, &v) == 0) {
            size_t l2;
            free(encode_checked(v, &l2));
        }
    }
    (void)accepted;
    free(m);
    free(enc);
}

/* ---- keys ---- */

typedef struct keyed {
    const mv_value *v;
    uint8_t *enc;
    size_t len;
} keyed;

static void key_of(keyed *k, const mv_value *v)
{
    buf b;
    buf_init(&b);
    key_encode_scalar(&b, v);
    k->v = v;
    k->len = b.len;
    k->enc = (uint8_t *)arena_memdup(&A, b.data, b.len);
    buf_free(&b);
}

static int sgn(int x)
{
    return (x > 0) - (x < 0);
}

static int enc_cmp(const keyed *a, const keyed *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->enc, b->enc, m);
    if (c) return sgn(c);
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Checks that key order equals value order and that encodings are
 * prefix-free and decode back, for all pairs. */
static void check_key_order(mv_type t, keyed *ks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = ks[i].enc;
        mv_value *back = NULL;
        assert_int_equal(key_decode_scalar(&A, t, &p, ks[i].enc + ks[i].len, &back), 0);
        assert_ptr_equal(p, ks[i].enc + ks[i].len);
        assert_true(mv_equal(back, ks[i].v));
        for (size_t j = 0; j < n; j++) {
            int want = sgn(mv_compare_scalar(ks[i].v, ks[j].v));
            if (enc_cmp(&ks[i], &ks[j]) != want) fail_msg("key order mismatch at %zu, %zu", i, j);
            if (ks[i].len < ks[j].len) assert_true(memcmp(ks[i].enc, ks[j].enc, ks[i].len) != 0);
        }
    }
}

static void test_key_bytes_order(void **state)
{
    (void)state;
    /* the prefix cases */
    keyed fixed[8];
    key_of(&fixed[0], Bn("", 0));
    key_of(&fixed[1], Bn("\0", 1));
    key_of(&fixed[2], Bn("\0\0", 2));
    key_of(&fixed[3], Bn("\0\1", 2));
    key_of(&fixed[4], Bn("a", 1));
    key_of(&fixed[5], Bn("a\0", 2));
    key_of(&fixed[6], Bn("ab", 2));
    key_of(&fixed[7], Bn("\xff", 1));
    for (int i = 0; i + 1 < 8; i++)
        assert_int_equal(enc_cmp(&fixed[i], &fixed[i + 1]), -1);
    check_key_order(MV_B, fixed, 8);
    /* exact bytes of the escaping */
    assert_int_equal(fixed[5].len, 5);
    assert_memory_equal(fixed[5].enc, "a\x00\xff\x00\x01", 5);
    assert_int_equal(fixed[0].len, 2);
    /* random byte strings from a small alphabet, so prefixes and 0x00/0x01/0xFF
     * collisions are common */
    enum { COUNT = 400 };
    keyed *ks = arena_alloc(&A, COUNT * sizeof(*ks));
    const uint8_t alphabet[] = {0x00, 0x01, 0x02, 'a', 0xFE, 0xFF};
    for (int i = 0; i < COUNT; i++) {
        uint8_t tmp[8];
        size_t len = rng() % 6;
        for (size_t k = 0; k < len; k++)
            tmp[k] = alphabet[rng() % sizeof(alphabet)];
        key_of(&ks[i], Bn(tmp, len));
    }
    check_key_order(MV_B, ks, COUNT);
    /* strings the same way (S order is byte order too) */
    const char *strs[] = {"", "a", "ab", "abc", "b", "\xc3\xa9", "\xc3\xa9z", "z", "A", "0"};
    keyed sk[10];
    for (int i = 0; i < 10; i++)
        key_of(&sk[i], S(strs[i]));
    check_key_order(MV_S, sk, 10);
}

static void test_key_number_order(void **state)
{
    (void)state;
    const char *nums[] = {"-9.9999999999999999999999999999999999999E+125",
                          "-1e3",
                          "-1.5",
                          "-1",
                          "-1e-130",
                          "0",
                          "1e-130",
                          "0.001",
                          "1",
                          "1.5",
                          "10",
                          "1E+5",
                          "9.9999999999999999999999999999999999999E+125"};
    size_t n = sizeof(nums) / sizeof(nums[0]);
    keyed ks[16];
    for (size_t i = 0; i < n; i++) {
        key_of(&ks[i], N(nums[i]));
        if (i) assert_int_equal(enc_cmp(&ks[i - 1], &ks[i]), -1);
        /* key_encode_scalar of N is num_key_encode */
        num x;
        uint8_t raw[NUM_KEY_MAX];
        assert_int_equal(mv_get_num(ks[i].v, &x, NULL), 0);
        assert_int_equal(num_key_encode(&x, raw), ks[i].len);
        assert_memory_equal(raw, ks[i].enc, ks[i].len);
    }
    check_key_order(MV_N, ks, n);
}

static void test_key_decode_malformed(void **state)
{
    (void)state;
    const struct {
        const char *p;
        size_t len;
    } bad[] = {
        {"", 0}, {"abc", 3}, {"a\0", 2}, {"a\0\x02", 3}, {"a\0\0", 3}, {"\0\xff", 2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const uint8_t *p = (const uint8_t *)bad[i].p;
        mv_value *v;
        assert_int_equal(key_decode_scalar(&A, MV_S, &p, p + bad[i].len, &v), -1);
        assert_ptr_equal(p, (const uint8_t *)bad[i].p);
    }
    /* unsupported key types */
    const uint8_t ok[] = {'a', 0, 1};
    const uint8_t *p = ok;
    mv_value *v;
    assert_int_equal(key_decode_scalar(&A, MV_BOOL, &p, ok + 3, &v), -1);
    assert_int_equal(key_decode_scalar(&A, MV_SS, &p, ok + 3, &v), -1);
    assert_int_equal(key_decode_scalar(&A, MV_S, &p, ok + 3, &v), 0);
    assert_string_equal(v->u.str.ptr, "a");
    /* decoding stops at the terminator */
    const uint8_t two[] = {'a', 0, 0xFF, 0, 1, 'b', 0, 1};
    p = two;
    assert_int_equal(key_decode_scalar(&A, MV_B, &p, two + sizeof(two), &v), 0);
    assert_int_equal(v->u.str.len, 2);
    assert_memory_equal(v->u.str.ptr, "a\0", 2);
    assert_ptr_equal(p, two + 5);
    assert_int_equal(key_decode_scalar(&A, MV_B, &p, two + sizeof(two), &v), 0);
    assert_string_equal(v->u.str.ptr, "b");
    assert_ptr_equal(p, two + sizeof(two));
}

static void test_key_hash_stable(void **state)
{
    (void)state;
    /* Golden values: the hash is on-disk format and must never change. */
    assert_int_equal(key_hash((const uint8_t *)"", 0), 0xc610ff71u);
    assert_int_equal(key_hash((const uint8_t *)"a\0\1", 3), 0x416462dcu);
    assert_int_equal(key_hash((const uint8_t *)"user#1\0\1", 8), 0xeed06b40u);
    assert_int_equal(key_hash((const uint8_t[]){0x81, 0x82, 0x0b, 0x00}, 4), 0xdb518c2eu);
    assert_int_equal(key_hash((const uint8_t[]){0x80}, 1), 0xb33df0d6u);
    /* and spreads keys over the space: 4096 keys into 16 segments */
    int seg[16] = {0};
    for (int i = 0; i < 4096; i++) {
        char name[32];
        snprintf(name, sizeof(name), "user#%d", i);
        buf b;
        buf_init(&b);
        key_encode_scalar(&b, S(name));
        seg[key_hash(b.data, b.len) >> 28]++;
        buf_free(&b);
    }
    for (int s = 0; s < 16; s++)
        assert_true(seg[s] > 256 / 2 && seg[s] < 256 * 2);
}

static void test_item_keys(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    key_encode_item(&b, 0x0102030405060708ULL, S("a"), N("1"));
    const uint8_t want[] = {1,    2,    3,   4, 5, 6,    7,    8,  0x41, 0x64,
                            0x62, 0xdc, 'a', 0, 1, 0x81, 0x82, 11, 0};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    mv_value *pk = NULL, *sk = NULL;
    assert_int_equal(key_decode_item(&A, b.data, b.len, MV_S, MV_N, &pk, &sk), 0);
    assert_string_equal(pk->u.str.ptr, "a");
    assert_string_equal(sk->u.str.ptr, "1");
    /* every truncation and any trailing byte fails */
    for (size_t t = 0; t < b.len; t++) {
        uint8_t *copy = malloc(t ? t : 1);
        memcpy(copy, b.data, t);
        assert_int_equal(key_decode_item(&A, copy, t, MV_S, MV_N, &pk, &sk), -1);
        free(copy);
    }
    buf_putc(&b, 0);
    assert_int_equal(key_decode_item(&A, b.data, b.len, MV_S, MV_N, &pk, &sk), -1);
    b.len--;
    /* the wrong key schema, or a corrupted hash, fails */
    assert_int_equal(key_decode_item(&A, b.data, b.len, MV_S, 0, &pk, &sk), -1);
    b.data[9] ^= 1;
    assert_int_equal(key_decode_item(&A, b.data, b.len, MV_S, MV_N, &pk, &sk), -1);
    assert_int_equal(key_decode_item(&A, NULL, 0, MV_S, 0, &pk, &sk), -1);
    /* hash-only tables */
    buf_reset(&b);
    key_encode_item(&b, 7, Bn("\0x", 2), NULL);
    sk = (mv_value *)1;
    assert_int_equal(key_decode_item(&A, b.data, b.len, MV_B, 0, &pk, &sk), 0);
    assert_null(sk);
    assert_int_equal(pk->u.str.len, 2);
    /* the partition prefix is a prefix of the item key */
    buf part;
    buf_init(&part);
    key_encode_partition(&part, 7, Bn("\0x", 2));
    assert_int_equal(part.len, b.len);
    assert_memory_equal(part.data, b.data, b.len);
    buf_free(&part);
    buf_free(&b);
}

static void test_partitions(void **state)
{
    (void)state;
    /* pks that are prefixes of one another, in several types */
    const mv_value *pks[] = {S(""),      S("a"),       mv_new_str(&A, MV_S, "a\0", 2),
                             S("ab"),    S("abc"),     S("b"),
                             Bn("a", 1), Bn("a\0", 2), N("1"),
                             N("10"),    N("-1"),      N("1.1")};
    size_t np = sizeof(pks) / sizeof(pks[0]);
    const mv_value *sks[] = {N("-5"), N("0"), N("0.5"), N("2"), N("10"), N("1e20")};
    size_t ns = sizeof(sks) / sizeof(sks[0]);
    buf *prefix = calloc(np, sizeof(*prefix));
    for (size_t i = 0; i < np; i++) {
        buf_init(&prefix[i]);
        key_encode_partition(&prefix[i], 42, pks[i]);
    }
    for (size_t i = 0; i < np; i++) {
        for (size_t j = 0; j < np; j++) {
            /* a table's key schema fixes the pk type, and S "a" and B "a"
             * share an encoding, so only same-typed pks are compared */
            if (i == j || pks[i]->type != pks[j]->type) continue;
            /* different partitions' prefixes never nest */
            size_t m = prefix[i].len < prefix[j].len ? prefix[i].len : prefix[j].len;
            assert_true(memcmp(prefix[i].data, prefix[j].data, m) != 0);
        }
        /* a partition's items start with its prefix, in sort-key order */
        buf prev;
        buf_init(&prev);
        for (size_t s = 0; s < ns; s++) {
            buf k;
            buf_init(&k);
            key_encode_item(&k, 42, pks[i], sks[s]);
            assert_memory_equal(k.data, prefix[i].data, prefix[i].len);
            for (size_t j = 0; j < np; j++) {
                if (j != i && pks[j]->type == pks[i]->type && k.len >= prefix[j].len)
                    assert_true(memcmp(k.data, prefix[j].data, prefix[j].len) != 0);
            }
            if (s) {
                size_t m = prev.len < k.len ? prev.len : k.len;
                int c = memcmp(prev.data, k.data, m);
                assert_true(c < 0 || (c == 0 && prev.len < k.len));
            }
            mv_value *pk, *sk;
            assert_int_equal(key_decode_item(&A, k.data, k.len, pks[i]->type, MV_N, &pk, &sk), 0);
            assert_true(mv_equal(pk, pks[i]));
            assert_true(mv_equal(sk, sks[s]));
            buf_reset(&prev);
            buf_append(&prev, k.data, k.len);
            buf_free(&k);
        }
        buf_free(&prev);
    }
    /* other tables never share a prefix */
    buf other;
    buf_init(&other);
    key_encode_partition(&other, 43, pks[1]);
    assert_true(memcmp(other.data, prefix[1].data, 8) != 0);
    buf_free(&other);
    for (size_t i = 0; i < np; i++)
        buf_free(&prefix[i]);
    free(prefix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_layout, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_truncations_and_trailing, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_malformed, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_nesting_limit, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_fuzz, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_bytes_order, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_number_order, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_decode_malformed, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_hash_stable, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_item_keys, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_partitions, arena_setup, arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
