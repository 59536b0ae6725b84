/* number.c - DynamoDB numbers (see number.h): parsing with DynamoDB's rules and
 * messages, canonical text, comparison, exact addition and subtraction, and the
 * order-preserving key encoding.
 *
 * Key encoding (num_key_encode), part of the on-disk key format:
 *   zero      : 0x80
 *   positive  : 0x81, E, P1 .. Pk, 0x00
 *   negative  : 0x7F, ~E, ~P1 .. ~Pk, 0xFF          (~ is bitwise not)
 * where E = exp + 129 (0..255, exp in [NUM_MIN_EXP, NUM_MAX_EXP]) and the
 * significant digits, padded with one 0 to an even count, are packed two per
 * byte as Pi = 10 * hi + lo + 1 (1..100). The terminator 0x00 sorts below any
 * digit pair, so a shorter digit string that is a prefix of a longer one sorts
 * first, as it must (0.1 < 0.101). The positive form is prefix-free, so its
 * bitwise complement orders negatives in exactly the reverse order. At most
 * 1 + 1 + 19 + 1 = 22 bytes.
 */
#include "item/number.h"

#include <string.h>

#define MSG_SYNTAX    "A value provided cannot be converted into a number"
#define MSG_PRECISION "Attempting to store more than 38 significant digits in a Number"
#define MSG_OVERFLOW                                                                               \
    "Number overflow. Attempting to store a number with magnitude larger than supported range"
#define MSG_UNDERFLOW                                                                              \
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"

#define KEY_NEG  0x7F
#define KEY_ZERO 0x80
#define KEY_POS  0x81

/* Exponent values beyond this are clamped while parsing: they are far outside
 * the supported range either way and clamping keeps the arithmetic in range. */
#define EXP_CLAMP 1000000000LL

static void num_zero(num *n)
{
    memset(n, 0, sizeof(*n));
}

/* Range and precision checks shared by parsing and arithmetic. The order
 * (overflow, underflow, then precision) follows DynamoDB. */
static int check_range(long long exp, long long ndigits, err *e)
{
    if (exp > NUM_MAX_EXP) return err_validation(e, MSG_OVERFLOW);
    if (exp < NUM_MIN_EXP) return err_validation(e, MSG_UNDERFLOW);
    if (ndigits > NUM_MAX_DIGITS) return err_validation(e, MSG_PRECISION);
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int num_parse(const char *s, size_t len, num *out, err *e)
{
    num n;
    num_zero(&n);
    size_t i = 0;
    if (!s) return err_validation(e, MSG_SYNTAX);
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        n.neg = s[i] == '-';
        i++;
    }

    /* Mantissa: the digits d_0 .. d_{m-1} with the point after `intlen` of
     * them have the value 0.d_0..d_{m-1} * 10^intlen. */
    long long intlen = 0; /* digits before the point */
    long long ndig = 0;   /* mantissa digits seen */
    long long first = -1; /* index of the first non-zero digit */
    long long last = -1;  /* index of the last non-zero digit */
    bool point = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (point) return err_validation(e, MSG_SYNTAX);
            point = true;
            continue;
        }
        if (!is_digit(c)) break;
        if (!point) intlen++;
        if (c != '0') {
            if (first < 0) first = ndig;
            last = ndig;
        }
        if (first >= 0 && ndig - first < NUM_MAX_DIGITS)
            n.digits[ndig - first] = (uint8_t)(c - '0');
        ndig++;
    }
    if (ndig == 0) return err_validation(e, MSG_SYNTAX);

    long long expval = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '-' || s[i] == '+')) {
            eneg = s[i] == '-';
            i++;
        }
        size_t start = i;
        for (; i < len && is_digit(s[i]); i++) {
            if (expval < EXP_CLAMP) expval = expval * 10 + (s[i] - '0');
        }
        if (i == start) return err_validation(e, MSG_SYNTAX);
        if (eneg) expval = -expval;
    }
    if (i != len) return err_validation(e, MSG_SYNTAX);

    if (first < 0) {
        /* Zero in any spelling ("-0", "0.000", "0e999") is zero. */
        num_zero(out);
        return 0;
    }
    long long exp = intlen - first + expval;
    long long count = last - first + 1;
    if (check_range(exp, count, e) < 0) return -1;
    n.ndigits = (uint8_t)count;
    n.exp = (int16_t)exp;
    *out = n;
    return 0;
}

size_t num_format(const num *n, char *out)
{
    size_t k = 0;
    if (n->ndigits == 0) {
        out[0] = '0';
        out[1] = '\0';
        return 1;
    }
    if (n->neg) out[k++] = '-';
    int exp = n->exp;
    int nd = n->ndigits;
    if (exp <= 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int z = 0; z < -exp; z++)
            out[k++] = '0';
        for (int d = 0; d < nd; d++)
            out[k++] = (char)('0' + n->digits[d]);
    } else if (exp >= nd) {
        for (int d = 0; d < nd; d++)
            out[k++] = (char)('0' + n->digits[d]);
        for (int z = nd; z < exp; z++)
            out[k++] = '0';
    } else {
        for (int d = 0; d < exp; d++)
            out[k++] = (char)('0' + n->digits[d]);
        out[k++] = '.';
        for (int d = exp; d < nd; d++)
            out[k++] = (char)('0' + n->digits[d]);
    }
    out[k] = '\0';
    return k;
}

/* Compares magnitudes of two non-zero numbers. */
static int cmp_mag(const num *a, const num *b)
{
    if (a->exp != b->exp) return a->exp < b->exp ? -1 : 1;
    int m = a->ndigits < b->ndigits ? a->ndigits : b->ndigits;
    for (int i = 0; i < m; i++) {
        if (a->digits[i] != b->digits[i]) return a->digits[i] < b->digits[i] ? -1 : 1;
    }
    if (a->ndigits != b->ndigits) return a->ndigits < b->ndigits ? -1 : 1;
    return 0;
}

static int sign_of(const num *n)
{
    if (n->ndigits == 0) return 0;
    return n->neg ? -1 : 1;
}

int num_cmp(const num *a, const num *b)
{
    int sa = sign_of(a), sb = sign_of(b);
    if (sa != sb) return sa < sb ? -1 : 1;
    if (sa == 0) return 0;
    int m = cmp_mag(a, b);
    return sa > 0 ? m : -m;
}

/* Scratch width for exact sums: exponents differ by at most
 * NUM_MAX_EXP - NUM_MIN_EXP, plus the digits of the lower operand and a carry. */
#define SUM_WIDTH (NUM_MAX_EXP - NUM_MIN_EXP + NUM_MAX_DIGITS + 2)

/* Places x's digits into the scratch array where index j has place value
 * 10^(hi - 1 - j). */
static void place(const num *x, int hi, int8_t *w)
{
    for (int i = 0; i < x->ndigits; i++)
        w[hi - x->exp + i] = (int8_t)x->digits[i];
}

static int add_signed(const num *a, bool aneg, const num *b, bool bneg, num *out, err *e)
{
    if (a->ndigits == 0) {
        num r = *b;
        r.neg = r.ndigits ? bneg : false;
        *out = r;
        return 0;
    }
    if (b->ndigits == 0) {
        num r = *a;
        r.neg = aneg;
        *out = r;
        return 0;
    }
    int hi = (a->exp > b->exp ? a->exp : b->exp) + 1;
    int loa = a->exp - a->ndigits, lob = b->exp - b->ndigits;
    int lo = loa < lob ? loa : lob;
    int width = hi - lo;
    int8_t x[SUM_WIDTH], y[SUM_WIDTH];
    if (width > SUM_WIDTH) return err_set(e, ERR_INTERNAL, "number out of range");
    memset(x, 0, (size_t)width);
    memset(y, 0, (size_t)width);
    bool neg;
    if (aneg == bneg) {
        place(a, hi, x);
        place(b, hi, y);
        neg = aneg;
        int carry = 0;
        for (int j = width - 1; j >= 0; j--) {
            int s = x[j] + y[j] + carry;
            carry = s >= 10;
            x[j] = (int8_t)(carry ? s - 10 : s);
        }
    } else {
        int c = cmp_mag(a, b);
        if (c == 0) {
            num_zero(out);
            return 0;
        }
        const num *big = c > 0 ? a : b, *small = c > 0 ? b : a;
        neg = c > 0 ? aneg : bneg;
        place(big, hi, x);
        place(small, hi, y);
        int borrow = 0;
        for (int j = width - 1; j >= 0; j--) {
            int s = x[j] - y[j] - borrow;
            borrow = s < 0;
            x[j] = (int8_t)(borrow ? s + 10 : s);
        }
    }
    int j0 = 0, j1 = width - 1;
    while (j0 < width && x[j0] == 0)
        j0++;
    while (j1 > j0 && x[j1] == 0)
        j1--;
    if (j0 == width) {
        num_zero(out);
        return 0;
    }
    int exp = hi - j0;
    int nd = j1 - j0 + 1;
    /* DynamoDB reports an exact sum that needs more than 38 digits (1e50 + 1)
     * with its overflow message, not the precision one used for input. */
    if (check_range(exp, 0, e) < 0) return -1;
    if (nd > NUM_MAX_DIGITS) return err_validation(e, MSG_OVERFLOW);
    num r;
    num_zero(&r);
    r.neg = neg;
    r.exp = (int16_t)exp;
    r.ndigits = (uint8_t)nd;
    for (int d = 0; d < nd; d++)
        r.digits[d] = (uint8_t)x[j0 + d];
    *out = r;
    return 0;
}

int num_add(const num *a, const num *b, num *out, err *e)
{
    return add_signed(a, a->neg, b, b->neg, out, e);
}

int num_sub(const num *a, const num *b, num *out, err *e)
{
    return add_signed(a, a->neg, b, b->ndigits ? !b->neg : false, out, e);
}

size_t num_key_encode(const num *n, uint8_t *out)
{
    if (n->ndigits == 0) {
        out[0] = KEY_ZERO;
        return 1;
    }
    uint8_t flip = n->neg ? 0xFF : 0x00;
    size_t k = 0;
    out[k++] = n->neg ? KEY_NEG : KEY_POS;
    out[k++] = (uint8_t)((n->exp - NUM_MIN_EXP) ^ flip);
    for (int i = 0; i < n->ndigits; i += 2) {
        int hi = n->digits[i];
        int lo = i + 1 < n->ndigits ? n->digits[i + 1] : 0;
        out[k++] = (uint8_t)((10 * hi + lo + 1) ^ flip);
    }
    out[k++] = flip;
    return k;
}

int num_key_decode(const uint8_t **p, const uint8_t *end, num *out)
{
    const uint8_t *q = *p;
    if (q >= end) return -1;
    uint8_t tag = *q++;
    num n;
    num_zero(&n);
    if (tag == KEY_ZERO) {
        *out = n;
        *p = q;
        return 0;
    }
    if (tag != KEY_NEG && tag != KEY_POS) return -1;
    uint8_t flip = tag == KEY_NEG ? 0xFF : 0x00;
    n.neg = tag == KEY_NEG;
    if (q >= end) return -1;
    n.exp = (int16_t)((int)(*q++ ^ flip) + NUM_MIN_EXP);
    uint8_t tmp[2 * ((NUM_MAX_DIGITS + 1) / 2)];
    int nd = 0;
    for (;;) {
        if (q >= end) return -1;
        int b = *q++ ^ flip;
        if (b == 0) break;
        if (b > 100 || nd + 2 > (int)sizeof(tmp)) return -1;
        tmp[nd++] = (uint8_t)((b - 1) / 10);
        tmp[nd++] = (uint8_t)((b - 1) % 10);
    }
    if (nd == 0) return -1;
    /* Canonical form only: no leading zero, no trailing zero (the padding zero
     * of an odd count is dropped, but a pair of zeros cannot end the string). */
    if (tmp[0] == 0) return -1;
    if (tmp[nd - 1] == 0) nd--;
    if (tmp[nd - 1] == 0) return -1;
    memcpy(n.digits, tmp, (size_t)nd);
    n.ndigits = (uint8_t)nd;
    *out = n;
    *p = q;
    return 0;
}
