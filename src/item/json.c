/* json.c - DynamoDB JSON wire form of attribute values (see json.h): walking a
 * cJSON tree into validated mv_values, writing mv_values as JSON text, UTF-8
 * validation, and base64 for binary values.
 *
 * Parsing happens in two passes, as in DynamoDB, where the whole request is
 * deserialized (SerializationException for JSON of the wrong shape, e.g.
 * {"S": 5}, or bad base64) before anything is validated (ValidationException
 * for empty sets, bad numbers, duplicates, nesting, ...):
 *   1. shape_av() checks JSON types everywhere, with DynamoDB's (Java
 *      deserializer's) messages;
 *   2. build_av() builds the values, applying DynamoDB's validation rules.
 * Members of an AttributeValue object that are not type keys are ignored, as
 * DynamoDB ignores unknown members ({"X": 1} is therefore "empty"), and a
 * member whose value is JSON null counts as absent.
 */
#include "item/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* DynamoDB's limit: the attribute itself is level 1 and containers (M, L)
 * may not sit at level 32 or deeper, so a leaf can be at level 32 at most. */
#define MAX_NESTING 32
/* The shape pass does not recurse further than this (cJSON's own parser
 * stops at 1000 levels; the build pass rejects anything over MAX_NESTING). */
#define MAX_SHAPE_DEPTH 1100

#define MSG_EMPTY_AV                                                                               \
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
#define MSG_MULTI_AV                                                                               \
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "    \
    "supported datatypes"
#define MSG_NESTING                                                                                \
    "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels "    \
    "beyond supported limit"
#define MSG_NULL_TRUE                                                                              \
    "One or more parameter values were invalid: Null attribute value types must have the value "   \
    "of true"
#define MSG_STRUCT     "Start of structure or map found where not expected"
#define MSG_FIELD_TYPE "Unexpected field type"
#define MSG_VALUE_TYPE "Unexpected value type in payload"
#define MSG_NOT_BASE64 "only base-64-encoded strings are convertible to bytes"
#define MSG_B64_LAST   "Invalid last non-pad Base64 character dectected"
#define MSG_B64_CHAR   "Invalid Base64 character detected"
#define CLASS_AV       "com.amazonaws.dynamodb.v20120810.AttributeValue"
#define MSG_MAP_COLL   "Unrecognized collection type java.util.Map<java.lang.String, " CLASS_AV ">"
#define MSG_AV_COLL    "Unrecognized collection type class " CLASS_AV
#define MSG_EMPTY_NAME                                                                             \
    "One or more parameter values were invalid: An attribute name cannot be empty"

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are
 * not valid UTF-8 (overlong forms, surrogates, > U+10FFFF, truncation). */
static size_t utf8_seq(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    }
    return n;
}

static int check_utf8(const char *s, size_t len, err *e)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            bool start = p[i] < 0x80 || p[i] > 0xBF;
            return err_set(e, ERR_SERIALIZATION, "Invalid UTF-8 %s byte 0x%02x",
                           start ? "start" : "middle", p[i]);
        }
        i += n;
    }
    return 0;
}

/* ---- base64 ---- */

/* The value of each base64 character, -1 for every other byte ('=' too). */
static const signed char B64_VAL[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int b64_val(unsigned char c)
{
    return B64_VAL[c];
}

/* Strict validation of padded standard base64, with DynamoDB's messages
 * (SerializationException). Returns the decoded length or -1. */
static long long b64_check(const char *s, size_t len, err *e)
{
    if (len % 4 != 0) {
        err_set(e, ERR_SERIALIZATION,
                "Base64 encoded length is expected a multiple of 4 bytes but found: %zu", len);
        return -1;
    }
    if (len == 0) return 0;
    /* Up to two '=' at the very end; none anywhere else. */
    size_t pad = 0;
    if (s[len - 1] == '=') pad = s[len - 2] == '=' ? 2 : 1;
    /* One table lookup per character; OR-ing them finds any invalid one. */
    const unsigned char *u = (const unsigned char *)s;
    int bad = 0;
    for (size_t i = 0; i < len - pad; i++)
        bad |= B64_VAL[u[i]];
    if (bad < 0) { /* the first offending character decides the message */
        size_t i = 0;
        while (B64_VAL[u[i]] >= 0)
            i++;
        err_set(e, ERR_SERIALIZATION, s[i] == '=' ? MSG_B64_LAST : MSG_B64_CHAR);
        return -1;
    }
    /* The unused low bits of the last character before padding must be zero
     * (canonical encoding): 4 bits with "==", 2 bits with "=". */
    if (pad) {
        int last = b64_val((unsigned char)s[len - pad - 1]);
        int mask = pad == 2 ? 0x0F : 0x03;
        if (last & mask) {
            err_set(e, ERR_SERIALIZATION, MSG_B64_LAST);
            return -1;
        }
    }
    return (long long)(len / 4 * 3 - pad);
}

/* Encodes into dst (which must hold 4 * ceil(len / 3) + 1 bytes); returns the
 * encoded length. EVP_EncodeBlock takes an int length, so long inputs go in
 * chunks that are multiples of 3 bytes. */
static size_t b64_encode_into(char *dst, const uint8_t *p, size_t len)
{
    const size_t chunk = 3 * 16384;
    size_t out = 0;
    dst[0] = '\0';
    while (len > 0) {
        size_t n = len < chunk ? len : chunk;
        out += (size_t)EVP_EncodeBlock((unsigned char *)dst + out, p, (int)n);
        p += n;
        len -= n;
    }
    dst[out] = '\0';
    return out;
}

/* Decodes validated base64 (b64_check) into dst; returns the decoded length
 * or -1. EVP_DecodeBlock counts padding as zero bytes, hence the adjustment. */
static long long b64_decode_into(uint8_t *dst, const char *s, size_t len)
{
    const size_t chunk = 4 * 16384;
    size_t out = 0;
    while (len > 0) {
        size_t n = len < chunk ? len : chunk;
        int r = EVP_DecodeBlock(dst + out, (const unsigned char *)s, (int)n);
        if (r < 0) return -1;
        size_t pad = 0;
        if (n == len) { /* final chunk carries the padding */
            if (s[n - 1] == '=') pad++;
            if (n >= 2 && s[n - 2] == '=') pad++;
        }
        out += (size_t)r - pad;
        s += n;
        len -= n;
    }
    return (long long)out;
}

char *base64_encode(arena *a, const uint8_t *p, size_t len, size_t *out_len)
{
    char *dst = arena_alloc(a, (len + 2) / 3 * 4 + 1);
    size_t n = b64_encode_into(dst, p, len);
    if (out_len) *out_len = n;
    return dst;
}

uint8_t *base64_decode(arena *a, const char *s, size_t len, size_t *out_len)
{
    if (!s) return NULL;
    long long n = b64_check(s, len, NULL);
    if (n < 0) return NULL;
    /* EVP_DecodeBlock writes the padding bytes too: room for len/4*3. */
    uint8_t *dst = arena_alloc(a, len / 4 * 3 + 1);
    long long got = b64_decode_into(dst, s, len);
    if (got != n) return NULL;
    dst[n] = '\0';
    if (out_len) *out_len = (size_t)n;
    return dst;
}

/* ---- pass 1: JSON shape (SerializationException) ---- */

typedef enum field_kind {
    FK_STRING, /* S, N, SS and NS elements */
    FK_BOOL,   /* BOOL, NULL */
    FK_BLOB,   /* B, BS elements */
    FK_LIST,   /* SS, NS, BS, L */
    FK_MAP,    /* M */
} field_kind;

static bool is_integral(const cJSON *j)
{
    /* cJSON keeps no token type: an integral value in int64 range stands in
     * for Jackson's integer token (range first: the cast is UB outside it). */
    double d = j->valuedouble;
    return d > -9.2e18 && d < 9.2e18 && d == (double)(long long)d;
}

static int ser(err *e, const char *msg)
{
    return err_set(e, ERR_SERIALIZATION, "%s", msg);
}

/* Checks a scalar field of the given kind (not a container). */
static int shape_scalar(const cJSON *j, field_kind k, err *e)
{
    if (cJSON_IsObject(j)) return ser(e, MSG_STRUCT);
    switch (k) {
    case FK_STRING:
        if (cJSON_IsString(j)) return 0;
        if (cJSON_IsTrue(j)) return ser(e, "TRUE_VALUE cannot be converted to String");
        if (cJSON_IsFalse(j)) return ser(e, "FALSE_VALUE cannot be converted to String");
        if (cJSON_IsNumber(j))
            return ser(e, is_integral(j) ? "NUMBER_VALUE cannot be converted to String"
                                         : "DECIMAL_VALUE cannot be converted to String");
        if (cJSON_IsArray(j)) return ser(e, "Unrecognized collection type class java.lang.String");
        return ser(e, MSG_FIELD_TYPE);
    case FK_BOOL:
        if (cJSON_IsBool(j)) return 0;
        if (cJSON_IsString(j)) return ser(e, "Unexpected token received from parser");
        if (cJSON_IsNumber(j))
            return ser(e, is_integral(j) ? "NUMBER_VALUE cannot be converted to Boolean"
                                         : "DECIMAL_VALUE cannot be converted to Boolean");
        if (cJSON_IsArray(j)) return ser(e, "Unrecognized collection type class java.lang.Boolean");
        return ser(e, MSG_FIELD_TYPE);
    case FK_BLOB:
        if (cJSON_IsString(j)) {
            const char *s = j->valuestring;
            return b64_check(s, strlen(s), e) < 0 ? -1 : 0;
        }
        if (cJSON_IsArray(j))
            return ser(e, "Unrecognized collection type class java.nio.ByteBuffer");
        return ser(e, MSG_NOT_BASE64);
    default:
        return ser(e, MSG_FIELD_TYPE);
    }
}

static int shape_av(const cJSON *j, int depth, err *e);

/* Checks the value of an attribute name -> AttributeValue object member
 * (M values, Item values) or an L element: a "value struct". */
static int shape_value_struct(const cJSON *j, int depth, err *e)
{
    if (cJSON_IsNull(j)) return 0; /* reported by the build pass */
    if (cJSON_IsArray(j)) return ser(e, MSG_AV_COLL);
    if (!cJSON_IsObject(j)) return ser(e, MSG_VALUE_TYPE);
    return shape_av(j, depth, e);
}

static int shape_map(const cJSON *j, int depth, err *e)
{
    if (cJSON_IsArray(j)) return ser(e, MSG_MAP_COLL);
    if (!cJSON_IsObject(j)) return ser(e, MSG_FIELD_TYPE);
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!c->string) return ser(e, MSG_FIELD_TYPE);
        if (shape_value_struct(c, depth + 1, e) < 0) return -1;
    }
    return 0;
}

static int shape_list(const cJSON *j, mv_type t, int depth, err *e)
{
    if (cJSON_IsObject(j)) return ser(e, MSG_STRUCT);
    if (!cJSON_IsArray(j)) return ser(e, MSG_FIELD_TYPE);
    for (const cJSON *c = j->child; c; c = c->next) {
        if (cJSON_IsNull(c)) continue; /* reported by the build pass */
        int r;
        if (t == MV_L)
            r = shape_value_struct(c, depth + 1, e);
        else if (t == MV_BS)
            r = shape_scalar(c, FK_BLOB, e);
        else
            r = shape_scalar(c, FK_STRING, e);
        if (r < 0) return -1;
    }
    return 0;
}

static int shape_av(const cJSON *j, int depth, err *e)
{
    if (depth > MAX_SHAPE_DEPTH) return 0;
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!c->string || cJSON_IsNull(c)) continue;
        mv_type t = mv_type_from_name(c->string, strlen(c->string));
        int r = 0;
        switch (t) {
        case MV_S:
        case MV_N:
            r = shape_scalar(c, FK_STRING, e);
            break;
        case MV_B:
            r = shape_scalar(c, FK_BLOB, e);
            break;
        case MV_BOOL:
        case MV_NULL:
            r = shape_scalar(c, FK_BOOL, e);
            break;
        case MV_M:
            r = shape_map(c, depth, e);
            break;
        case MV_L:
        case MV_SS:
        case MV_NS:
        case MV_BS:
            r = shape_list(c, t, depth, e);
            break;
        default:
            break; /* unknown member: ignored */
        }
        if (r < 0) return -1;
    }
    return 0;
}

/* ---- pass 2: build and validate (ValidationException) ---- */

static mv_value *build_av(arena *a, const cJSON *j, int level, err *e);

/* The shape pass has checked JSON types; this guards direct misuse. */
static const char *str_of(const cJSON *j, err *e)
{
    if (cJSON_IsString(j) && j->valuestring) return j->valuestring;
    err_set(e, ERR_SERIALIZATION, MSG_FIELD_TYPE);
    return NULL;
}

static mv_value *build_number(arena *a, const char *s, err *e)
{
    num n;
    if (!s) return NULL;
    if (num_parse(s, strlen(s), &n, e) < 0) return NULL;
    return mv_new_num(a, &n);
}

static mv_value *build_string(arena *a, const char *s, err *e)
{
    if (!s) return NULL;
    size_t len = strlen(s);
    if (check_utf8(s, len, e) < 0) return NULL;
    return mv_new_str(a, MV_S, s, len);
}

static mv_value *build_binary(arena *a, const char *s, err *e)
{
    if (!s) return NULL;
    size_t len = strlen(s);
    if (b64_check(s, len, e) < 0) return NULL;
    size_t n = 0;
    uint8_t *bytes = base64_decode(a, s, len, &n);
    if (!bytes) {
        err_set(e, ERR_SERIALIZATION, MSG_B64_CHAR);
        return NULL;
    }
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = MV_B;
    v->u.str.ptr = (const char *)bytes;
    v->u.str.len = n;
    return v;
}

static size_t array_len(const cJSON *j)
{
    size_t n = 0;
    for (const cJSON *c = j->child; c; c = c->next)
        n++;
    return n;
}

static const char *const null_member_msg[] = {
    [MV_SS] = "One or more parameter values were invalid: An string set may not have a null "
              "string as a member",
    [MV_NS] = "One or more parameter values were invalid: An number set may not have a null "
              "number as a member",
    [MV_BS] = "One or more parameter values were invalid: Binary sets may not contain null "
              "values",
};

static mv_value *build_set(arena *a, const cJSON *j, mv_type t, err *e)
{
    size_t n = array_len(j);
    const mv_value **items = n ? arena_alloc(a, n * sizeof(*items)) : NULL;
    size_t i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c)) {
            err_validation(e, "%s", null_member_msg[t]);
            return NULL;
        }
        mv_value *v;
        if (t == MV_SS)
            v = build_string(a, c->valuestring, e);
        else if (t == MV_NS)
            v = build_number(a, c->valuestring, e);
        else
            v = build_binary(a, c->valuestring, e);
        if (!v) return NULL;
        items[i] = v;
    }
    return mv_new_set(a, t, items, n, e);
}

static mv_value *build_list(arena *a, const cJSON *j, int level, err *e)
{
    size_t n = array_len(j);
    const mv_value **items = n ? arena_alloc(a, n * sizeof(*items)) : NULL;
    size_t i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        mv_value *v = build_av(a, c, level + 1, e);
        if (!v) return NULL;
        items[i] = v;
    }
    return mv_new_list(a, items, n);
}

typedef struct pending_member {
    mv_member m;
    size_t order;
} pending_member;

static int pending_cmp(const void *x, const void *y)
{
    const pending_member *a = x, *b = y;
    size_t n = a->m.name_len < b->m.name_len ? a->m.name_len : b->m.name_len;
    int c = n ? memcmp(a->m.name, b->m.name, n) : 0;
    if (c) return c;
    if (a->m.name_len != b->m.name_len) return a->m.name_len < b->m.name_len ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* An object of name -> AttributeValue; level is the level of its values.
 * A name given twice keeps its last value, as DynamoDB's JSON reader does. */
static mv_value *build_map(arena *a, const cJSON *j, int level, bool names_nonempty, err *e)
{
    size_t n = array_len(j);
    pending_member *pm = n ? arena_alloc(a, n * sizeof(*pm)) : NULL;
    size_t i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        size_t len = strlen(c->string);
        if (check_utf8(c->string, len, e) < 0) return NULL;
        if (names_nonempty && len == 0) {
            err_validation(e, MSG_EMPTY_NAME);
            return NULL;
        }
        mv_value *v = build_av(a, c, level, e);
        if (!v) return NULL;
        pm[i].m.name = arena_memdup(a, c->string, len);
        pm[i].m.name_len = len;
        pm[i].m.value = v;
        pm[i].order = i;
    }
    if (n > 1) qsort(pm, n, sizeof(*pm), pending_cmp);
    mv_member *ms = n ? arena_alloc(a, n * sizeof(*ms)) : NULL;
    size_t k = 0;
    for (i = 0; i < n; i++) {
        bool last_of_name = i + 1 == n || pm[i].m.name_len != pm[i + 1].m.name_len ||
                            memcmp(pm[i].m.name, pm[i + 1].m.name, pm[i].m.name_len) != 0;
        if (last_of_name) ms[k++] = pm[i].m;
    }
    mv_value *map = mv_new_map(a, ms, k);
    if (!map) err_set(e, ERR_INTERNAL, "duplicate attribute names");
    return map;
}

static mv_value *build_av(arena *a, const cJSON *j, int level, err *e)
{
    if (!cJSON_IsObject(j)) {
        err_validation(e, MSG_EMPTY_AV);
        return NULL;
    }
    /* The last non-null member of each type (DynamoDB's reader keeps the
     * last of repeated members); other members are ignored. */
    const cJSON *last[MV_BS + 1] = {0};
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!c->string || cJSON_IsNull(c)) continue;
        mv_type t = mv_type_from_name(c->string, strlen(c->string));
        if (t) last[t] = c;
    }
    mv_value *result = NULL;
    int ntypes = 0;
    /* Type members in document order; each one's contents are validated
     * before the count is, as DynamoDB does ({"S":"a","N":"x"} is a number
     * error). */
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!c->string || cJSON_IsNull(c)) continue;
        mv_type t = mv_type_from_name(c->string, strlen(c->string));
        if (!t || last[t] != c) continue;
        mv_value *v = NULL;
        switch (t) {
        case MV_S:
            v = build_string(a, str_of(c, e), e);
            break;
        case MV_N:
            v = build_number(a, str_of(c, e), e);
            break;
        case MV_B:
            v = build_binary(a, str_of(c, e), e);
            break;
        case MV_BOOL:
        case MV_NULL:
            if (!cJSON_IsBool(c)) {
                err_set(e, ERR_SERIALIZATION, "Unexpected token received from parser");
                return NULL;
            }
            if (t == MV_BOOL) {
                v = mv_new_bool(a, cJSON_IsTrue(c));
                break;
            }
            if (!cJSON_IsTrue(c)) {
                err_validation(e, MSG_NULL_TRUE);
                return NULL;
            }
            v = mv_new_null(a);
            break;
        case MV_M:
            if (level >= MAX_NESTING) {
                err_validation(e, MSG_NESTING);
                return NULL;
            }
            if (!cJSON_IsObject(c)) {
                err_set(e, ERR_SERIALIZATION, MSG_FIELD_TYPE);
                return NULL;
            }
            v = build_map(a, c, level + 1, false, e);
            break;
        case MV_L:
            if (level >= MAX_NESTING) {
                err_validation(e, MSG_NESTING);
                return NULL;
            }
            if (!cJSON_IsArray(c)) {
                err_set(e, ERR_SERIALIZATION, MSG_FIELD_TYPE);
                return NULL;
            }
            v = build_list(a, c, level, e);
            break;
        case MV_SS:
        case MV_NS:
        case MV_BS:
            if (!cJSON_IsArray(c)) {
                err_set(e, ERR_SERIALIZATION, MSG_FIELD_TYPE);
                return NULL;
            }
            v = build_set(a, c, t, e);
            break;
        }
        if (!v) return NULL;
        result = v;
        ntypes++;
    }
    if (ntypes == 0) {
        err_validation(e, MSG_EMPTY_AV);
        return NULL;
    }
    if (ntypes > 1) {
        err_validation(e, MSG_MULTI_AV);
        return NULL;
    }
    return result;
}

mv_value *mv_from_json(arena *a, const cJSON *j, err *e)
{
    if (!j) {
        err_validation(e, MSG_EMPTY_AV);
        return NULL;
    }
    if (shape_value_struct(j, 1, e) < 0) return NULL;
    return build_av(a, j, 1, e);
}

mv_value *mv_map_from_json(arena *a, const cJSON *obj, err *e)
{
    if (!obj) return mv_new_map(a, NULL, 0);
    if (shape_map(obj, 0, e) < 0) return NULL;
    return build_map(a, obj, 1, true, e);
}

/* ---- writing ---- */

static const char hexdig[] = "0123456789abcdef";

void json_write_string(buf *out, const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    buf_reserve(out, len + 2);
    buf_putc(out, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq(p + i, len - i);
            if (n > 0) {
                i += n;
                continue;
            }
        }
        if (i > run) buf_append(out, p + run, i - run);
        if (c == '"' || c == '\\') {
            buf_putc(out, '\\');
            buf_putc(out, c);
        } else if (c < 0x20) {
            uint8_t esc[6] = {
                '\\', 'u', '0', '0', (uint8_t)hexdig[c >> 4], (uint8_t)hexdig[c & 15]};
            buf_append(out, esc, sizeof(esc));
        } else {
            /* Invalid UTF-8 (cannot come from a validated value): U+FFFD. */
            buf_append(out, "\xEF\xBF\xBD", 3);
        }
        i++;
        run = i;
    }
    if (len > run) buf_append(out, p + run, len - run);
    buf_putc(out, '"');
}

static void write_binary(buf *out, const char *p, size_t len)
{
    size_t need = (len + 2) / 3 * 4 + 1;
    buf_reserve(out, need + 2);
    buf_putc(out, '"');
    size_t n = b64_encode_into((char *)out->data + out->len, (const uint8_t *)p, len);
    out->len += n;
    buf_putc(out, '"');
}

static void write_scalar_text(buf *out, const mv_value *v)
{
    if (v->type == MV_B)
        write_binary(out, v->u.str.ptr, v->u.str.len);
    else
        json_write_string(out, v->u.str.ptr, v->u.str.len);
}

void mv_to_json(buf *out, const mv_value *v)
{
    buf_putc(out, '{');
    json_write_string(out, mv_type_name(v->type), strlen(mv_type_name(v->type)));
    buf_putc(out, ':');
    switch (v->type) {
    case MV_S:
    case MV_N:
    case MV_B:
        write_scalar_text(out, v);
        break;
    case MV_BOOL:
        buf_puts(out, v->u.boolean ? "true" : "false");
        break;
    case MV_NULL:
        buf_puts(out, "true");
        break;
    case MV_M:
        mv_map_to_json(out, v);
        break;
    case MV_L:
    case MV_SS:
    case MV_NS:
    case MV_BS:
        buf_putc(out, '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i) buf_putc(out, ',');
            if (v->type == MV_L)
                mv_to_json(out, v->u.list.items[i]);
            else
                write_scalar_text(out, v->u.list.items[i]);
        }
        buf_putc(out, ']');
        break;
    }
    buf_putc(out, '}');
}

void mv_map_to_json(buf *out, const mv_value *map)
{
    buf_putc(out, '{');
    if (map && map->type == MV_M) {
        for (size_t i = 0; i < map->u.map.n; i++) {
            const mv_member *m = &map->u.map.members[i];
            if (i) buf_putc(out, ',');
            json_write_string(out, m->name, m->name_len);
            buf_putc(out, ':');
            mv_to_json(out, m->value);
        }
    }
    buf_putc(out, '}');
}
