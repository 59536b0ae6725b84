/* fuzz_codec.c - the binary item and key codecs (item/codec.c) and the
 * number codec underneath them (item/number.c).
 *
 * The first input byte chooses what the rest is fed to:
 *   0: item_decode; what decodes re-encodes to bytes that decode to an equal
 *      item and re-encode identically (the canonical form is a fixed point);
 *   1: key_decode_scalar for S, B and N; what decodes re-encodes to exactly
 *      the bytes consumed (the key encoding has one form per value);
 *   2: key_decode_item for each key-type combination, likewise exact;
 *   3: two numbers as text (split at the first ','): num_parse, num_format
 *      (canonical text parses back to the same number), and the key
 *      encoding's order property: memcmp(enc(x), enc(y)) has the sign of
 *      num_cmp(x, y); also num_add / num_sub do not crash;
 *   4: two S/B scalars from the raw bytes (split in the middle): the key
 *      encoding orders like unsigned byte order, shorter first on a tie.
 */
#include "fuzz_common.h"
#include "item/codec.h"
#include "item/number.h"

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static int memcmp_order(const buf *x, const buf *y)
{
    size_t m = x->len < y->len ? x->len : y->len;
    int c = m ? memcmp(x->data, y->data, m) : 0;
    if (c) return sign(c);
    return (x->len > y->len) - (x->len < y->len);
}

static void fuzz_item(arena *a, const uint8_t *p, size_t len)
{
    mv_value *item = NULL;
    if (item_decode(a, p, len, &item) != 0) return;
    FUZZ_CHECK(item && item->type == MV_M);
    buf b1, b2;
    buf_init(&b1);
    buf_init(&b2);
    item_encode(&b1, item);
    FUZZ_CHECK(b1.len <= len); /* re-encoding never grows (varints get shorter) */
    mv_value *again = NULL;
    FUZZ_CHECK(item_decode(a, b1.data, b1.len, &again) == 0);
    FUZZ_CHECK(mv_equal(item, again) && mv_equal(again, item));
    item_encode(&b2, again);
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    FUZZ_CHECK(mv_item_size(item) == mv_item_size(again));
    buf_free(&b1);
    buf_free(&b2);
}

static void fuzz_key_scalar(arena *a, const uint8_t *p, size_t len)
{
    static const mv_type types[] = {MV_S, MV_B, MV_N};
    for (size_t i = 0; i < 3; i++) {
        const uint8_t *q = p;
        mv_value *v = NULL;
        if (key_decode_scalar(a, types[i], &q, p + len, &v) != 0) continue;
        FUZZ_CHECK(v && v->type == types[i] && q > p && q <= p + len);
        buf b;
        buf_init(&b);
        key_encode_scalar(&b, v);
        FUZZ_CHECK(b.len == (size_t)(q - p) && memcmp(b.data, p, b.len) == 0);
        buf_free(&b);
    }
}

static void fuzz_key_item(arena *a, const uint8_t *p, size_t len)
{
    static const mv_type pk_types[] = {MV_S, MV_B, MV_N};
    static const mv_type sk_types[] = {0, MV_S, MV_B, MV_N};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 4; j++) {
            mv_value *pk = NULL, *sk = NULL;
            if (key_decode_item(a, p, len, pk_types[i], sk_types[j], &pk, &sk) != 0) continue;
            FUZZ_CHECK(pk && pk->type == pk_types[i]);
            FUZZ_CHECK(sk_types[j] ? sk && sk->type == sk_types[j] : sk == NULL);
            buf b;
            buf_init(&b);
            key_encode_item(&b, load_u64be(p), pk, sk);
            FUZZ_CHECK(b.len == len && memcmp(b.data, p, len) == 0);
            buf_free(&b);
        }
    }
}

static void num_roundtrip(const num *n)
{
    char text[NUM_TEXT_MAX + 1];
    size_t tl = num_format(n, text);
    FUZZ_CHECK(tl <= NUM_TEXT_MAX && strlen(text) == tl);
    num back;
    err e;
    err_clear(&e);
    FUZZ_CHECK(num_parse(text, tl, &back, &e) == 0);
    FUZZ_CHECK(num_cmp(n, &back) == 0);
    uint8_t k[NUM_KEY_MAX];
    size_t kl = num_key_encode(n, k);
    FUZZ_CHECK(kl <= NUM_KEY_MAX);
    const uint8_t *q = k;
    num dec;
    FUZZ_CHECK(num_key_decode(&q, k + kl, &dec) == 0 && q == k + kl);
    FUZZ_CHECK(num_cmp(n, &dec) == 0);
}

static void fuzz_numbers(arena *a, const uint8_t *p, size_t len)
{
    const uint8_t *comma = memchr(p, ',', len);
    size_t l1 = comma ? (size_t)(comma - p) : len;
    const char *s1 = (const char *)p, *s2 = comma ? (const char *)comma + 1 : NULL;
    size_t l2 = comma ? len - l1 - 1 : 0;
    num x, y, r;
    err e;
    err_clear(&e);
    int ok1 = num_parse(s1, l1, &x, &e) == 0;
    if (!ok1) FUZZ_CHECK(e.code == ERR_VALIDATION);
    if (ok1) num_roundtrip(&x);
    if (!s2) return;
    err_clear(&e);
    int ok2 = num_parse(s2, l2, &y, &e) == 0;
    if (!ok2) return;
    num_roundtrip(&y);
    if (!ok1) return;
    buf bx, by;
    buf_init(&bx);
    buf_init(&by);
    key_encode_scalar(&bx, mv_new_num(a, &x));
    key_encode_scalar(&by, mv_new_num(a, &y));
    FUZZ_CHECK(memcmp_order(&bx, &by) == sign(num_cmp(&x, &y)));
    FUZZ_CHECK(sign(num_cmp(&x, &y)) == -sign(num_cmp(&y, &x)));
    buf_free(&bx);
    buf_free(&by);
    if (num_add(&x, &y, &r, &e) == 0) {
        num_roundtrip(&r);
        num back;
        /* Arithmetic is exact or fails, so (x + y) - y == x when both succeed. */
        if (num_sub(&r, &y, &back, &e) == 0) FUZZ_CHECK(num_cmp(&back, &x) == 0);
    }
    if (num_sub(&x, &y, &r, &e) == 0) num_roundtrip(&r);
}

static void fuzz_byte_order(arena *a, const uint8_t *p, size_t len)
{
    size_t h = len / 2;
    mv_value *x = mv_new_str(a, MV_S, (const char *)p, h);
    mv_value *y = mv_new_str(a, MV_S, (const char *)p + h, len - h);
    buf bx, by;
    buf_init(&bx);
    buf_init(&by);
    key_encode_scalar(&bx, x);
    key_encode_scalar(&by, y);
    FUZZ_CHECK(memcmp_order(&bx, &by) == sign(mv_compare_scalar(x, y)));
    buf_free(&bx);
    buf_free(&by);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* A private copy so that reads past the end are caught exactly. */
    uint8_t *p = malloc(size - 1 ? size - 1 : 1);
    if (!p) abort();
    memcpy(p, data + 1, size - 1);
    arena a;
    arena_init(&a);
    switch (data[0] % 5) {
    case 0:
        fuzz_item(&a, p, size - 1);
        break;
    case 1:
        fuzz_key_scalar(&a, p, size - 1);
        break;
    case 2:
        fuzz_key_item(&a, p, size - 1);
        break;
    case 3:
        fuzz_numbers(&a, p, size - 1);
        break;
    default:
        fuzz_byte_order(&a, p, size - 1);
        break;
    }
    arena_free(&a);
    free(p);
    return 0;
}
