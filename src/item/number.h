/* number.h - DynamoDB numbers: exact decimals of up to 38 significant digits.
 *
 * A number is sign * 0.d1 d2 ... dn * 10^exp with 1 <= n <= 38, d1 != 0 and
 * dn != 0 (no leading or trailing zeros), or zero (n == 0). DynamoDB accepts
 * magnitudes from 1e-130 to 9.9999999999999999999999999999999999999e+125;
 * anything else is rejected with DynamoDB's own messages (see num_parse).
 *
 * Numbers travel as text (JSON strings) and are stored as their canonical text
 * form (num_format) in item values, and as an order-preserving byte string
 * (num_key_encode) in keys, so that memcmp order equals numeric order.
 */
#ifndef MERIDIAN_NUMBER_H
#define MERIDIAN_NUMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define NUM_MAX_DIGITS 38
#define NUM_MIN_EXP    (-129) /* 1e-130 == 0.1 * 10^-129 */
#define NUM_MAX_EXP    126    /* 9.99..e+125 == 0.99.. * 10^126 */
/* Longest canonical text: sign, "0.", 129 zeros, 38 digits, or 126 digits. */
#define NUM_TEXT_MAX 180
/* Longest key encoding (num_key_encode). */
#define NUM_KEY_MAX 24

typedef struct num {
    bool neg;                       /* false for zero */
    int16_t exp;                    /* decimal exponent, see above */
    uint8_t ndigits;                /* 0 means the value is zero */
    uint8_t digits[NUM_MAX_DIGITS]; /* each 0..9, most significant first */
} num;

/* Parses DynamoDB number text: optional sign, digits with optional '.', optional
 * exponent (e/E, optional sign, digits). Leading/trailing whitespace is rejected.
 * On failure returns -1 and sets e (ERR_VALIDATION) to DynamoDB's message:
 *   "A value provided cannot be converted into a number"          (syntax)
 *   "Attempting to store more than 38 significant digits in a Number"
 *   "Number overflow. Attempting to store a number with magnitude larger than supported range"
 *   "Number underflow. Attempting to store a number with magnitude smaller than supported range"
 */
int num_parse(const char *s, size_t len, num *out, err *e);

/* Writes canonical text (plain notation, no exponent, no trailing zeros,
 * "0" for zero, "-" only for negatives) to out, which must hold NUM_TEXT_MAX+1
 * bytes; NUL-terminates and returns the length. */
size_t num_format(const num *n, char *out);

/* Returns <0, 0, >0 as a is numerically less than, equal to, greater than b. */
int num_cmp(const num *a, const num *b);

/* out = a + b and out = a - b, exact. Returns -1 with e set (the overflow,
 * underflow or precision messages above) when the result cannot be represented.
 * out may alias a or b. */
int num_add(const num *a, const num *b, num *out, err *e);
int num_sub(const num *a, const num *b, num *out, err *e);

/* Order-preserving, self-delimiting encoding: memcmp of two encodings orders
 * exactly as num_cmp orders the numbers. Writes at most NUM_KEY_MAX bytes to
 * out and returns the count. */
size_t num_key_encode(const num *n, uint8_t *out);
/* Decodes an encoding at [*p, end), advancing *p past it. Returns 0 or -1 on
 * malformed input. */
int num_key_decode(const uint8_t **p, const uint8_t *end, num *out);

#endif
