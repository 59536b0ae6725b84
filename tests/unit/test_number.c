/* test_number.c - unit tests for item/number.c: parsing (accepted forms,
 * syntax errors, precision, overflow and underflow with DynamoDB's messages),
 * canonical formatting, comparison, exact addition and subtraction, and the
 * order-preserving key encoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/number.h"
#define UNIT_NO_ARENA
#define UNIT_RNG_SEED 0x9E3779B97F4A7C15ULL
#include "unit.h"

#define MSG_SYNTAX    "A value provided cannot be converted into a number"
#define MSG_PRECISION "Attempting to store more than 38 significant digits in a Number"
#define MSG_OVERFLOW                                                                               \
    "Number overflow. Attempting to store a number with magnitude larger than supported range"
#define MSG_UNDERFLOW                                                                              \
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"

/* Deterministic generator so failures reproduce. */

static num parse_ok(const char *s)
{
    num n;
    err e;
    err_clear(&e);
    int r = num_parse(s, strlen(s), &n, &e);
    if (r != 0) fail_msg("num_parse(\"%s\") failed: %s", s, e.msg);
    return n;
}

static void expect_canonical(const char *in, const char *want)
{
    num n = parse_ok(in);
    char out[NUM_TEXT_MAX + 1];
    size_t len = num_format(&n, out);
    if (strcmp(out, want) != 0) fail_msg("\"%s\" formatted as \"%s\", want \"%s\"", in, out, want);
    assert_int_equal(len, strlen(want));
    /* canonical text parses back to the same number and formats identically */
    num m = parse_ok(out);
    assert_int_equal(num_cmp(&n, &m), 0);
    assert_memory_equal(&n, &m, sizeof(n));
}

static void expect_error(const char *in, const char *msg)
{
    num n;
    err e;
    err_clear(&e);
    if (num_parse(in, strlen(in), &n, &e) == 0) fail_msg("num_parse(\"%s\") succeeded", in);
    assert_int_equal(e.code, ERR_VALIDATION);
    if (strcmp(e.msg, msg) != 0) fail_msg("\"%s\": got \"%s\", want \"%s\"", in, e.msg, msg);
}

static char *repeat(char *dst, char c, int n)
{
    memset(dst, c, (size_t)n);
    dst[n] = '\0';
    return dst;
}

static void test_parse_forms(void **state)
{
    (void)state;
    expect_canonical("1", "1");
    expect_canonical("-1.5", "-1.5");
    expect_canonical(".5", "0.5");
    expect_canonical("5.", "5");
    expect_canonical("1e3", "1000");
    expect_canonical("1E+5", "100000");
    expect_canonical("1e-3", "0.001");
    expect_canonical("-0", "0");
    expect_canonical("+0", "0");
    expect_canonical("0.000", "0");
    expect_canonical("-0.000e5", "0");
    expect_canonical("0e999999999999999999999", "0");
    expect_canonical("00012", "12");
    expect_canonical("1.500", "1.5");
    expect_canonical("+7", "7");
    expect_canonical("-00.0100", "-0.01");
    expect_canonical("123.456e2", "12345.6");
    expect_canonical("123.456e-2", "1.23456");
    expect_canonical("123.456E+3", "123456");
    expect_canonical("120", "120");
    expect_canonical("1.0e1", "10");
    expect_canonical("0.1e1", "1");
    expect_canonical("1e0000000000000000000000000003", "1000");
    expect_canonical("-.5e-1", "-0.05");
    expect_canonical("10.01", "10.01");
}

static void test_parse_syntax_errors(void **state)
{
    (void)state;
    const char *bad[] = {"",         "+",    "-",     "1e",  "abc",      " 1",    "1 ",
                         "Infinity", "NaN",  "0x10",  ".",   "-.",       "1..2",  "1.2.3",
                         "e5",       "1e+",  "1e5.5", "--1", "1-",       "1,000", "+-1",
                         "1e--1",    "1e 1", "\t1",   "1\n", "1f",       "inf",   "-inf",
                         "1_000",    ".e1",  "1ee1",  "0b1", "\xd9\xa1", "1e1e1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], MSG_SYNTAX);
    /* embedded NUL: the length, not the terminator, delimits the text */
    num n;
    err e;
    assert_int_equal(num_parse("1\0002", 3, &n, &e), -1);
    assert_string_equal(e.msg, MSG_SYNTAX);
    assert_int_equal(num_parse("12", 1, &n, &e), 0);
    char out[NUM_TEXT_MAX + 1];
    num_format(&n, out);
    assert_string_equal(out, "1");
    assert_int_equal(num_parse(NULL, 0, &n, &e), -1);
}

static void test_parse_precision(void **state)
{
    (void)state;
    char buf[400];
    expect_error("123456789012345678901234567890123456789", MSG_PRECISION);
    expect_error("-1.23456789012345678901234567890123456789", MSG_PRECISION);
    /* 38 significant digits are fine, with any number of zeros around them */
    expect_canonical("12345678901234567890123456789012345678",
                     "12345678901234567890123456789012345678");
    expect_canonical("0.0012345678901234567890123456789012345678000",
                     "0.0012345678901234567890123456789012345678");
    expect_canonical("1234567890123456789012345678901234567800000",
                     "1234567890123456789012345678901234567800000");
    /* "1" and 100 zeros: trailing zeros are not significant */
    snprintf(buf, sizeof(buf), "1%s", repeat((char[128]){0}, '0', 100));
    expect_canonical(buf, buf);
    /* "1", 38 zeros, "1": 40 significant digits */
    snprintf(buf, sizeof(buf), "1%s1", repeat((char[128]){0}, '0', 38));
    expect_error(buf, MSG_PRECISION);
    /* leading zeros are not significant */
    snprintf(buf, sizeof(buf), "%s12345678901234567890123456789012345678",
             repeat((char[128]){0}, '0', 100));
    expect_canonical(buf, "12345678901234567890123456789012345678");
    snprintf(buf, sizeof(buf), "0.%s12345678901234567890123456789012345678",
             repeat((char[128]){0}, '0', 50));
    num n = parse_ok(buf);
    assert_int_equal(n.ndigits, 38);
    assert_int_equal(n.exp, -50);
}

static void test_parse_range(void **state)
{
    (void)state;
    char want[512], zeros[200];
    /* the smallest magnitude: 1e-130 */
    snprintf(want, sizeof(want), "0.%s1", repeat(zeros, '0', 129));
    expect_canonical("1e-130", want);
    num n = parse_ok("-1e-130");
    assert_int_equal(n.exp, NUM_MIN_EXP);
    assert_true(n.neg);
    expect_error("1e-131", MSG_UNDERFLOW);
    expect_error("-1e-131", MSG_UNDERFLOW);
    expect_error("0.1e-130", MSG_UNDERFLOW);
    expect_error("0.99e-130", MSG_UNDERFLOW);
    expect_canonical("10e-131", want);
    /* the largest: 9.9999999999999999999999999999999999999e+125 */
    snprintf(want, sizeof(want), "%s%s", repeat((char[64]){0}, '9', 38), repeat(zeros, '0', 88));
    expect_canonical("9.9999999999999999999999999999999999999E+125", want);
    n = parse_ok("-9.9999999999999999999999999999999999999E+125");
    assert_int_equal(n.exp, NUM_MAX_EXP);
    assert_int_equal(n.ndigits, 38);
    char out[NUM_TEXT_MAX + 1];
    assert_int_equal(num_format(&n, out), 127);
    expect_error("1e126", MSG_OVERFLOW);
    expect_error("-1e126", MSG_OVERFLOW);
    expect_error("10e125", MSG_OVERFLOW);
    expect_error("1e999999999999999999999999", MSG_OVERFLOW);
    expect_error("1e-999999999999999999999999", MSG_UNDERFLOW);
    /* range is checked before precision, as in DynamoDB */
    expect_error("1234567890123456789012345678901234567890e200", MSG_OVERFLOW);
    expect_error("1234567890123456789012345678901234567890e-200", MSG_UNDERFLOW);
    /* the longest canonical text fits NUM_TEXT_MAX */
    n = parse_ok("-1.1111111111111111111111111111111111111e-130");
    size_t len = num_format(&n, out);
    assert_true(len <= NUM_TEXT_MAX);
    assert_int_equal(len, 1 + 2 + 129 + 38);
}

static int sgn(int x)
{
    return (x > 0) - (x < 0);
}

static void test_compare(void **state)
{
    (void)state;
    const char *ordered[] = {"-9.9999999999999999999999999999999999999E+125",
                             "-1e125",
                             "-1e3",
                             "-999.99",
                             "-1.5",
                             "-1.05",
                             "-1",
                             "-0.99999999999999999999999999999999999999",
                             "-1e-130",
                             "0",
                             "1e-130",
                             "1.1e-130",
                             "0.001",
                             "0.0010000000000000000000000000000000000001",
                             "0.01",
                             "0.1",
                             "0.101",
                             "0.11",
                             "1",
                             "1.0000000000000000000000000000000000001",
                             "1.01",
                             "2",
                             "10",
                             "1E+5",
                             "1e125",
                             "9.9999999999999999999999999999999999999E+125"};
    size_t n = sizeof(ordered) / sizeof(ordered[0]);
    for (size_t i = 0; i < n; i++) {
        num a = parse_ok(ordered[i]);
        for (size_t j = 0; j < n; j++) {
            num b = parse_ok(ordered[j]);
            int want = i < j ? -1 : i > j;
            if (sgn(num_cmp(&a, &b)) != want)
                fail_msg("num_cmp(%s, %s) != %d", ordered[i], ordered[j], want);
        }
    }
    num a = parse_ok("1.50"), b = parse_ok("15e-1"), z1 = parse_ok("-0"), z2 = parse_ok("0.0");
    assert_int_equal(num_cmp(&a, &b), 0);
    assert_int_equal(num_cmp(&z1, &z2), 0);
}

/* Random numbers across the whole range, including the limits. */
static num random_num(void)
{
    num n;
    memset(&n, 0, sizeof(n));
    uint64_t r = rng();
    if (r % 17 == 0) return n; /* zero */
    n.neg = (r >> 8) & 1;
    int nd;
    switch ((r >> 9) % 4) {
    case 0:
        nd = 1;
        break;
    case 1:
        nd = 1 + (int)((r >> 12) % 5);
        break;
    case 2:
        nd = NUM_MAX_DIGITS;
        break;
    default:
        nd = 1 + (int)((r >> 12) % NUM_MAX_DIGITS);
        break;
    }
    switch ((r >> 20) % 5) {
    case 0:
        n.exp = NUM_MIN_EXP + (int16_t)((r >> 24) % 3);
        break;
    case 1:
        n.exp = NUM_MAX_EXP - (int16_t)((r >> 24) % 3);
        break;
    case 2:
        n.exp = (int16_t)((int)((r >> 24) % 7) - 3);
        break;
    default:
        n.exp = (int16_t)(NUM_MIN_EXP + (int)((r >> 24) % (NUM_MAX_EXP - NUM_MIN_EXP + 1)));
        break;
    }
    /* digits from a tiny alphabet so that near-equal numbers are common */
    for (int i = 0; i < nd; i++) {
        uint64_t d = rng();
        n.digits[i] = (uint8_t)((d & 3) == 0 ? 0 : (d & 3) == 1 ? 9 : (d >> 2) % 10);
    }
    if (n.digits[0] == 0) n.digits[0] = 1;
    while (nd > 0 && n.digits[nd - 1] == 0)
        nd--;
    n.ndigits = (uint8_t)nd;
    return n;
}

typedef struct enc_num {
    num n;
    uint8_t key[NUM_KEY_MAX];
    size_t len;
} enc_num;

static int enc_memcmp(const enc_num *a, const enc_num *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->key, b->key, m);
    if (c) return sgn(c);
    return a->len < b->len ? -1 : a->len > b->len;
}

static int cmp_by_num(const void *x, const void *y)
{
    return num_cmp(&((const enc_num *)x)->n, &((const enc_num *)y)->n);
}

static int cmp_by_key(const void *x, const void *y)
{
    return enc_memcmp(x, y);
}

static void test_key_order_random(void **state)
{
    (void)state;
    enum { N = 700 };
    enc_num *a = calloc(N, sizeof(*a)), *b = calloc(N, sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);
    const char *fixed[] = {"-1e3",
                           "-1.5",
                           "-1",
                           "0",
                           "0.001",
                           "1",
                           "1E+5",
                           "1e-130",
                           "-1e-130",
                           "9.9999999999999999999999999999999999999E+125",
                           "-9.9999999999999999999999999999999999999E+125",
                           "0.1",
                           "0.101",
                           "0.11",
                           "0.1000000000000000000000000000000000001"};
    size_t nf = sizeof(fixed) / sizeof(fixed[0]);
    for (size_t i = 0; i < N; i++) {
        a[i].n = i < nf ? parse_ok(fixed[i]) : random_num();
        /* every random number must be a valid, canonical one */
        char text[NUM_TEXT_MAX + 1];
        num_format(&a[i].n, text);
        num back = parse_ok(text);
        assert_memory_equal(&back, &a[i].n, sizeof(num));
        a[i].len = num_key_encode(&a[i].n, a[i].key);
        assert_true(a[i].len >= 1 && a[i].len <= NUM_KEY_MAX);
        /* decoding gives the number back and consumes exactly the encoding */
        const uint8_t *p = a[i].key;
        num d;
        assert_int_equal(num_key_decode(&p, a[i].key + a[i].len, &d), 0);
        assert_ptr_equal(p, a[i].key + a[i].len);
        assert_memory_equal(&d, &a[i].n, sizeof(num));
    }
    /* pairwise: sign of memcmp order equals sign of numeric order */
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < N; j++) {
            int c1 = sgn(num_cmp(&a[i].n, &a[j].n));
            int c2 = enc_memcmp(&a[i], &a[j]);
            if (c1 != c2) {
                char x[NUM_TEXT_MAX + 1], y[NUM_TEXT_MAX + 1];
                num_format(&a[i].n, x);
                num_format(&a[j].n, y);
                fail_msg("order mismatch %s vs %s: num %d key %d", x, y, c1, c2);
            }
            /* prefix-free: no encoding is a proper prefix of another */
            if (a[i].len < a[j].len) assert_true(memcmp(a[i].key, a[j].key, a[i].len) != 0);
        }
    }
    /* and sorting by either gives the same sequence of values */
    memcpy(b, a, N * sizeof(*a));
    qsort(a, N, sizeof(*a), cmp_by_num);
    qsort(b, N, sizeof(*b), cmp_by_key);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(num_cmp(&a[i].n, &b[i].n), 0);
    free(a);
    free(b);
}

static void test_key_order_listed(void **state)
{
    (void)state;
    const char *list[] = {"-1e3", "-1.5", "-1", "0", "0.001", "1", "1E+5"};
    uint8_t prev[NUM_KEY_MAX], cur[NUM_KEY_MAX];
    size_t plen = 0;
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        num n = parse_ok(list[i]);
        size_t len = num_key_encode(&n, cur);
        if (i > 0) {
            size_t m = plen < len ? plen : len;
            int c = memcmp(prev, cur, m);
            assert_true(c < 0 || (c == 0 && plen < len));
        }
        memcpy(prev, cur, len);
        plen = len;
    }
    /* zero is one byte; positive and negative are bracketing it */
    num z = parse_ok("0");
    assert_int_equal(num_key_encode(&z, cur), 1);
    /* 38 digits use the longest encoding */
    num big = parse_ok("-9.9999999999999999999999999999999999999E+125");
    assert_int_equal(num_key_encode(&big, cur), 22);
}

static void test_key_self_delimiting(void **state)
{
    (void)state;
    /* two encodings back to back decode one after the other */
    const char *pairs[][2] = {{"1", "2"}, {"-1.5", "0"}, {"0", "-0.001"}, {"1e-130", "1e125"}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        uint8_t buf[2 * NUM_KEY_MAX];
        num x = parse_ok(pairs[i][0]), y = parse_ok(pairs[i][1]), dx, dy;
        size_t lx = num_key_encode(&x, buf);
        size_t ly = num_key_encode(&y, buf + lx);
        const uint8_t *p = buf, *end = buf + lx + ly;
        assert_int_equal(num_key_decode(&p, end, &dx), 0);
        assert_ptr_equal(p, buf + lx);
        assert_int_equal(num_key_decode(&p, end, &dy), 0);
        assert_ptr_equal(p, end);
        assert_int_equal(num_cmp(&x, &dx), 0);
        assert_int_equal(num_cmp(&y, &dy), 0);
    }
}

static int decode_bytes(const uint8_t *b, size_t len)
{
    const uint8_t *p = b;
    num n;
    int r = num_key_decode(&p, b + len, &n);
    if (r == 0)
        assert_true(p <= b + len);
    else
        assert_ptr_equal(p, b); /* a failed decode does not advance */
    return r;
}

static void test_key_decode_malformed(void **state)
{
    (void)state;
    assert_int_equal(decode_bytes((const uint8_t *)"", 0), -1);
    const uint8_t bad_tag[] = {0x42};
    assert_int_equal(decode_bytes(bad_tag, 1), -1);
    const uint8_t no_digits[] = {0x81, 0x80, 0x00};
    assert_int_equal(decode_bytes(no_digits, 3), -1);
    const uint8_t pair_too_big[] = {0x81, 0x80, 101, 0x00};
    assert_int_equal(decode_bytes(pair_too_big, 4), -1);
    const uint8_t leading_zero[] = {0x81, 0x80, 1 + 5, 0x00}; /* digits "05" */
    assert_int_equal(decode_bytes(leading_zero, 4), -1);
    const uint8_t trailing_zeros[] = {0x81, 0x80, 11, 1, 0x00}; /* "1000" */
    assert_int_equal(decode_bytes(trailing_zeros, 5), -1);
    const uint8_t ok[] = {0x81, 0x80, 11, 0x00}; /* "1" padded: 0.1e-1? fine */
    assert_int_equal(decode_bytes(ok, 4), 0);
    uint8_t too_long[30] = {0x81, 0x80};
    for (int i = 0; i < 20; i++)
        too_long[2 + i] = 12; /* 40 digits */
    too_long[22] = 0x00;
    assert_int_equal(decode_bytes(too_long, 23), -1);
    const uint8_t neg_unterminated[] = {0x7F, 0x7F, 0xFF - 12};
    assert_int_equal(decode_bytes(neg_unterminated, 3), -1);
    /* every truncation of every valid encoding fails cleanly */
    for (int k = 0; k < 300; k++) {
        num n = random_num();
        uint8_t key[NUM_KEY_MAX];
        size_t len = num_key_encode(&n, key);
        for (size_t t = 0; t < len; t++) {
            uint8_t *copy = malloc(t ? t : 1);
            memcpy(copy, key, t);
            assert_int_equal(decode_bytes(copy, t), -1);
            free(copy);
        }
        assert_int_equal(decode_bytes(key, len), 0);
    }
    /* arbitrary bytes never crash and, when accepted, re-encode identically */
    for (int k = 0; k < 20000; k++) {
        uint8_t junk[NUM_KEY_MAX + 4];
        size_t len = rng() % sizeof(junk);
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rng();
        if (len > 0 && (k & 1)) junk[0] = (k & 2) ? 0x81 : 0x7F;
        const uint8_t *p = junk;
        num n;
        if (num_key_decode(&p, junk + len, &n) == 0) {
            uint8_t again[NUM_KEY_MAX];
            size_t l2 = num_key_encode(&n, again);
            assert_int_equal(l2, (size_t)(p - junk));
            assert_memory_equal(again, junk, l2);
        }
    }
}

/* Exact reference arithmetic for numbers m * 10^-s with |m| < 1e16, s <= 12. */
static void int_text(char *out, __int128 m, int scale)
{
    char digits[64];
    int nd = 0;
    int neg = m < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-m) : (unsigned __int128)m;
    do {
        digits[nd++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (nd <= scale)
        digits[nd++] = '0';
    int k = 0;
    if (neg) out[k++] = '-';
    for (int i = nd - 1; i >= 0; i--) {
        out[k++] = digits[i];
        if (i == scale && scale > 0) out[k++] = '.';
    }
    out[k] = '\0';
}

static __int128 pow10i(int n)
{
    __int128 p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

static void test_add_sub_random(void **state)
{
    (void)state;
    for (int k = 0; k < 5000; k++) {
        long long ma = (long long)(rng() % 20000000000000000ULL) - 10000000000000000LL;
        long long mb = (long long)(rng() % 20000000000000000ULL) - 10000000000000000LL;
        if (k % 5 == 0) mb = (long long)(rng() % 200) - 100;
        if (k % 7 == 0) mb = -ma;
        int sa = (int)(rng() % 13), sb = (int)(rng() % 13);
        char ta[64], tb[64], tsum[80], tdiff[80];
        int_text(ta, ma, sa);
        int_text(tb, mb, sb);
        int s = sa > sb ? sa : sb;
        __int128 xa = (__int128)ma * pow10i(s - sa), xb = (__int128)mb * pow10i(s - sb);
        int_text(tsum, xa + xb, s);
        int_text(tdiff, xa - xb, s);
        num a = parse_ok(ta), b = parse_ok(tb), want_sum = parse_ok(tsum),
            want_diff = parse_ok(tdiff), got;
        err e;
        assert_int_equal(num_add(&a, &b, &got, &e), 0);
        if (num_cmp(&got, &want_sum) != 0) fail_msg("%s + %s != %s", ta, tb, tsum);
        assert_memory_equal(&got, &want_sum, sizeof(num));
        assert_int_equal(num_sub(&a, &b, &got, &e), 0);
        if (num_cmp(&got, &want_diff) != 0) fail_msg("%s - %s != %s", ta, tb, tdiff);
        assert_memory_equal(&got, &want_diff, sizeof(num));
    }
}

static void expect_sum(const char *x, const char *y, const char *want_sum, const char *want_diff)
{
    num a = parse_ok(x), b = parse_ok(y), r;
    err e;
    char out[NUM_TEXT_MAX + 1];
    assert_int_equal(num_add(&a, &b, &r, &e), 0);
    num_format(&r, out);
    if (strcmp(out, want_sum) != 0) fail_msg("%s + %s = %s, want %s", x, y, out, want_sum);
    assert_int_equal(num_sub(&a, &b, &r, &e), 0);
    num_format(&r, out);
    if (strcmp(out, want_diff) != 0) fail_msg("%s - %s = %s, want %s", x, y, out, want_diff);
}

static void expect_add_error(const char *x, const char *y, int sub, const char *msg)
{
    num a = parse_ok(x), b = parse_ok(y), r;
    memset(&r, 0x5A, sizeof(r));
    num before = r;
    err e;
    err_clear(&e);
    int rc = sub ? num_sub(&a, &b, &r, &e) : num_add(&a, &b, &r, &e);
    if (rc != -1) fail_msg("%s %c %s succeeded", x, sub ? '-' : '+', y);
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_string_equal(e.msg, msg);
    assert_memory_equal(&r, &before, sizeof(r)); /* out untouched on error */
}

static void test_add_sub_cases(void **state)
{
    (void)state;
    char nines[128], want[512];
    expect_sum("1", "2", "3", "-1");
    expect_sum("0.1", "0.2", "0.3", "-0.1");
    expect_sum("-1.5", "1.5", "0", "-3");
    expect_sum("0", "0", "0", "0");
    expect_sum("0", "-7", "-7", "7");
    expect_sum("-7", "0", "-7", "-7");
    expect_sum("999", "1", "1000", "998");
    expect_sum("1000", "-1", "999", "1001");
    snprintf(want, sizeof(want), "0.%s2", repeat((char[160]){0}, '0', 129));
    expect_sum("1e-130", "1e-130", want, "0");
    /* 38 digits exactly is fine; 39 is an error, which DynamoDB reports with
     * its overflow message (1e50 + 1 fails with "Number overflow...") */
    expect_sum("12345678901234567890123456789012345678", "1",
               "12345678901234567890123456789012345679", "12345678901234567890123456789012345677");
    expect_add_error("12345678901234567890123456789012345678", "0.1", 0, MSG_OVERFLOW);
    expect_add_error("1e50", "1", 0, MSG_OVERFLOW);
    expect_add_error("1e50", "1", 1, MSG_OVERFLOW);
    expect_add_error("1e125", "1", 1, MSG_OVERFLOW);
    expect_add_error("1e125", "1e-130", 0, MSG_OVERFLOW);
    /* carries that shorten the result are fine: 99..9 (38) + 1 = 1e38 */
    snprintf(want, sizeof(want), "1%s", repeat((char[64]){0}, '0', 38));
    expect_sum(repeat(nines, '9', 38), "1", want, "99999999999999999999999999999999999998");
    /* overflow and underflow */
    expect_add_error("9.9999999999999999999999999999999999999E+125", "1e88", 0, MSG_OVERFLOW);
    expect_add_error("-9.9999999999999999999999999999999999999E+125", "1e88", 1, MSG_OVERFLOW);
    expect_add_error("1.1e-130", "-1e-130", 0, MSG_UNDERFLOW);
    expect_add_error("-1.1e-130", "-1e-130", 1, MSG_UNDERFLOW);
    /* the largest value plus a tiny one needs too many digits */
    expect_add_error("9.9999999999999999999999999999999999999E+125", "1e-130", 0, MSG_OVERFLOW);
    /* 9e125 + 9e125 overflows; 9e125 + 9e124 does not */
    expect_add_error("9e125", "9e125", 0, MSG_OVERFLOW);
    num x = parse_ok("9e125"), y = parse_ok("9e124"), z, want99 = parse_ok("9.9e125");
    err e;
    assert_int_equal(num_add(&x, &y, &z, &e), 0);
    assert_int_equal(num_cmp(&z, &want99), 0);
    /* no double rounding: 1 + 1e22 is exact */
    expect_sum("1", "10000000000000000000000", "10000000000000000000001",
               "-9999999999999999999999");
    expect_add_error("9e125", "-9e125", 1, MSG_OVERFLOW);
    snprintf(want, sizeof(want), "%s%s", repeat(nines, '9', 38), repeat((char[128]){0}, '0', 88));
    expect_sum("9.9999999999999999999999999999999999999E+125", "0", want, want);
}

static void test_add_aliasing(void **state)
{
    (void)state;
    num a = parse_ok("1.25"), b = parse_ok("-0.25");
    err e;
    assert_int_equal(num_add(&a, &b, &a, &e), 0);
    num one = parse_ok("1");
    assert_int_equal(num_cmp(&a, &one), 0);
    assert_int_equal(num_sub(&a, &b, &b, &e), 0);
    num want = parse_ok("1.25");
    assert_int_equal(num_cmp(&b, &want), 0);
    assert_int_equal(num_add(&b, &b, &b, &e), 0);
    want = parse_ok("2.5");
    assert_int_equal(num_cmp(&b, &want), 0);
    assert_int_equal(num_sub(&b, &b, &b, &e), 0);
    num zero = parse_ok("0");
    assert_memory_equal(&b, &zero, sizeof(num));
    /* subtracting zero from zero leaves a non-negative zero */
    assert_int_equal(num_sub(&zero, &zero, &b, &e), 0);
    assert_false(b.neg);
    assert_int_equal(num_sub(&zero, &one, &b, &e), 0);
    assert_true(b.neg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_syntax_errors),
        cmocka_unit_test(test_parse_precision),
        cmocka_unit_test(test_parse_range),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_key_order_random),
        cmocka_unit_test(test_key_order_listed),
        cmocka_unit_test(test_key_self_delimiting),
        cmocka_unit_test(test_key_decode_malformed),
        cmocka_unit_test(test_add_sub_random),
        cmocka_unit_test(test_add_sub_cases),
        cmocka_unit_test(test_add_aliasing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
