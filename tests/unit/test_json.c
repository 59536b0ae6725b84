/* test_json.c - unit tests for item/json.c: DynamoDB JSON to values with
 * DynamoDB's validation and serialization errors (type keys, wrong JSON
 * types, numbers, NULL, sets, base64, nesting, UTF-8), writing values and
 * strings as JSON, and the base64 helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/json.h"
#include "unit.h"

#define MSG_EMPTY_AV                                                                               \
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
#define MSG_MULTI_AV                                                                               \
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "    \
    "supported datatypes"
#define MSG_NESTING                                                                                \
    "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels "    \
    "beyond supported limit"
#define MSG_NUM "A value provided cannot be converted into a number"

/* Parses JSON text and converts one AttributeValue; NULL with e on failure. */
static mv_value *av(const char *text, err *e)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("test JSON does not parse: %s", text);
    err_clear(e);
    mv_value *v = mv_from_json(&A, j, e);
    cJSON_Delete(j);
    return v;
}

static mv_value *item(const char *text, err *e)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("test JSON does not parse: %s", text);
    err_clear(e);
    mv_value *v = mv_map_from_json(&A, j, e);
    cJSON_Delete(j);
    return v;
}

static mv_value *av_ok(const char *text)
{
    err e;
    mv_value *v = av(text, &e);
    if (!v) fail_msg("%s: unexpected error %d: %s", text, e.code, e.msg);
    return v;
}

static void av_err(const char *text, err_code code, const char *msg)
{
    err e;
    mv_value *v = av(text, &e);
    if (v) fail_msg("%s: accepted", text);
    if (e.code != code || strcmp(e.msg, msg) != 0)
        fail_msg("%s: got %d \"%s\", want %d \"%s\"", text, e.code, e.msg, code, msg);
}

/* Writes v as JSON into a NUL-terminated arena string. */
static const char *to_json(const mv_value *v)
{
    buf b;
    buf_init(&b);
    mv_to_json(&b, v);
    char *s = arena_memdup(&A, b.data, b.len);
    buf_free(&b);
    return s;
}

static void round_trip(const char *text, const char *want)
{
    mv_value *v = av_ok(text);
    const char *out = to_json(v);
    if (strcmp(out, want) != 0) fail_msg("%s written as %s, want %s", text, out, want);
    /* and what we write reads back to an equal value */
    mv_value *again = av_ok(out);
    assert_true(mv_equal(v, again));
    assert_string_equal(to_json(again), out);
}

static void test_valid_values(void **state)
{
    (void)state;
    round_trip("{\"S\":\"x\"}", "{\"S\":\"x\"}");
    round_trip("{\"S\":\"\"}", "{\"S\":\"\"}");
    round_trip("{\"N\":\"1.50\"}", "{\"N\":\"1.5\"}");
    round_trip("{\"N\":\"-1E+3\"}", "{\"N\":\"-1000\"}");
    round_trip("{\"B\":\"AQI=\"}", "{\"B\":\"AQI=\"}");
    round_trip("{\"B\":\"\"}", "{\"B\":\"\"}");
    round_trip("{\"BOOL\":true}", "{\"BOOL\":true}");
    round_trip("{\"BOOL\":false}", "{\"BOOL\":false}");
    round_trip("{\"NULL\":true}", "{\"NULL\":true}");
    round_trip("{\"M\":{}}", "{\"M\":{}}");
    round_trip("{\"L\":[]}", "{\"L\":[]}");
    round_trip("{\"M\":{\"b\":{\"S\":\"1\"},\"a\":{\"N\":\"2\"},\"\":{\"NULL\":true}}}",
               "{\"M\":{\"\":{\"NULL\":true},\"a\":{\"N\":\"2\"},\"b\":{\"S\":\"1\"}}}");
    round_trip("{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"},{\"L\":[{\"BOOL\":false}]}]}",
               "{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"},{\"L\":[{\"BOOL\":false}]}]}");
    round_trip("{\"SS\":[\"b\",\"a\",\"\"]}", "{\"SS\":[\"\",\"a\",\"b\"]}");
    round_trip("{\"NS\":[\"10\",\"9\",\"-0.5\",\"1e2\"]}",
               "{\"NS\":[\"-0.5\",\"9\",\"10\",\"100\"]}");
    round_trip("{\"BS\":[\"Yg==\",\"YQ==\",\"\"]}", "{\"BS\":[\"\",\"YQ==\",\"Yg==\"]}");
    mv_value *b = av_ok("{\"B\":\"AP8=\"}");
    assert_int_equal(b->type, MV_B);
    assert_int_equal(b->u.str.len, 2);
    assert_memory_equal(b->u.str.ptr, "\x00\xff", 2);
    /* escapes are decoded by the JSON parser and re-escaped on output */
    round_trip("{\"S\":\"a\\\"b\\\\c\\n\\u0001\\u00e9\"}",
               "{\"S\":\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"}");
}

static void test_type_keys(void **state)
{
    (void)state;
    av_err("{}", ERR_VALIDATION, MSG_EMPTY_AV);
    /* members that are not type keys are ignored, as DynamoDB does */
    av_err("{\"X\":\"a\"}", ERR_VALIDATION, MSG_EMPTY_AV);
    av_err("{\"a\":\"\"}", ERR_VALIDATION, MSG_EMPTY_AV);
    av_err("{\"s\":\"x\"}", ERR_VALIDATION, MSG_EMPTY_AV); /* case-sensitive */
    av_err("{\"Null\":true}", ERR_VALIDATION, MSG_EMPTY_AV);
    mv_value *v = av_ok("{\"S\":\"x\",\"foo\":1}");
    assert_int_equal(v->type, MV_S);
    /* null means absent */
    av_err("{\"S\":null}", ERR_VALIDATION, MSG_EMPTY_AV);
    v = av_ok("{\"S\":\"a\",\"N\":null}");
    assert_int_equal(v->type, MV_S);
    /* more than one */
    av_err("{\"S\":\"a\",\"N\":\"1\"}", ERR_VALIDATION, MSG_MULTI_AV);
    av_err("{\"NULL\":true,\"BOOL\":true}", ERR_VALIDATION, MSG_MULTI_AV);
    av_err("{\"S\":\"a\",\"M\":{}}", ERR_VALIDATION, MSG_MULTI_AV);
    /* each type's contents are validated before the count */
    av_err("{\"S\":\"a\",\"N\":\"b\"}", ERR_VALIDATION, MSG_NUM);
    av_err("{\"S\":\"a\",\"SS\":[]}", ERR_VALIDATION,
           "One or more parameter values were invalid: An string set  may not be empty");
    /* a repeated member: the last one counts */
    v = av_ok("{\"S\":\"a\",\"S\":\"b\"}");
    assert_string_equal(v->u.str.ptr, "b");
    /* not an object */
    err e;
    assert_null(mv_from_json(&A, NULL, &e));
    assert_int_equal(e.code, ERR_VALIDATION);
    av_err("\"S\"", ERR_SERIALIZATION, "Unexpected value type in payload");
    av_err("5", ERR_SERIALIZATION, "Unexpected value type in payload");
    av_err("[]", ERR_SERIALIZATION,
           "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue");
    av_err("null", ERR_VALIDATION, MSG_EMPTY_AV);
}

static void test_serialization_errors(void **state)
{
    (void)state;
    const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"S\":5}", "NUMBER_VALUE cannot be converted to String"},
        {"{\"S\":-2147483648}", "NUMBER_VALUE cannot be converted to String"},
        {"{\"S\":34.56}", "DECIMAL_VALUE cannot be converted to String"},
        {"{\"S\":true}", "TRUE_VALUE cannot be converted to String"},
        {"{\"S\":false}", "FALSE_VALUE cannot be converted to String"},
        {"{\"S\":[]}", "Unrecognized collection type class java.lang.String"},
        {"{\"S\":{}}", "Start of structure or map found where not expected"},
        {"{\"N\":5}", "NUMBER_VALUE cannot be converted to String"},
        {"{\"N\":{}}", "Start of structure or map found where not expected"},
        {"{\"BOOL\":\"true\"}", "Unexpected token received from parser"},
        {"{\"BOOL\":1}", "NUMBER_VALUE cannot be converted to Boolean"},
        {"{\"BOOL\":1.5}", "DECIMAL_VALUE cannot be converted to Boolean"},
        {"{\"BOOL\":[]}", "Unrecognized collection type class java.lang.Boolean"},
        {"{\"NULL\":{}}", "Start of structure or map found where not expected"},
        {"{\"NULL\":\"yes\"}", "Unexpected token received from parser"},
        {"{\"B\":5}", "only base-64-encoded strings are convertible to bytes"},
        {"{\"B\":true}", "only base-64-encoded strings are convertible to bytes"},
        {"{\"B\":[]}", "Unrecognized collection type class java.nio.ByteBuffer"},
        {"{\"B\":{}}", "Start of structure or map found where not expected"},
        {"{\"B\":\"23456\"}",
         "Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
        {"{\"B\":\"=+/=\"}", "Invalid last non-pad Base64 character dectected"},
        {"{\"B\":\"+/+=\"}", "Invalid last non-pad Base64 character dectected"},
        {"{\"B\":\"Zh==\"}", "Invalid last non-pad Base64 character dectected"},
        {"{\"B\":\"ab!d\"}", "Invalid Base64 character detected"},
        {"{\"B\":\"ab d\"}", "Invalid Base64 character detected"},
        {"{\"SS\":\"a\"}", "Unexpected field type"},
        {"{\"SS\":5}", "Unexpected field type"},
        {"{\"SS\":{}}", "Start of structure or map found where not expected"},
        {"{\"SS\":[1]}", "NUMBER_VALUE cannot be converted to String"},
        {"{\"NS\":[true]}", "TRUE_VALUE cannot be converted to String"},
        {"{\"BS\":[true]}", "only base-64-encoded strings are convertible to bytes"},
        {"{\"BS\":[\"abc\"]}",
         "Base64 encoded length is expected a multiple of 4 bytes but found: 3"},
        {"{\"L\":\"x\"}", "Unexpected field type"},
        {"{\"L\":{}}", "Start of structure or map found where not expected"},
        {"{\"L\":[1]}", "Unexpected value type in payload"},
        {"{\"L\":[\"S\"]}", "Unexpected value type in payload"},
        {"{\"L\":[[]]}",
         "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"},
        {"{\"M\":[]}", "Unrecognized collection type java.util.Map<java.lang.String, "
                       "com.amazonaws.dynamodb.v20120810.AttributeValue>"},
        {"{\"M\":\"x\"}", "Unexpected field type"},
        {"{\"M\":{\"a\":1}}", "Unexpected value type in payload"},
        {"{\"M\":{\"a\":{\"L\":[{\"S\":1}]}}}", "NUMBER_VALUE cannot be converted to String"},
        /* deserialization errors win over validation errors found earlier */
        {"{\"L\":[{\"SS\":[]},{\"S\":5}]}", "NUMBER_VALUE cannot be converted to String"},
        {"{\"L\":[{\"N\":\"x\"},{\"B\":\"!!!!\"}]}", "Invalid Base64 character detected"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        av_err(cases[i].json, ERR_SERIALIZATION, cases[i].msg);
}

static void test_validation_errors(void **state)
{
    (void)state;
    const char *inv = "One or more parameter values were invalid: ";
    char msg[512];
    av_err("{\"NULL\":false}", ERR_VALIDATION,
           "One or more parameter values were invalid: Null attribute value types must have the "
           "value of true");
    snprintf(msg, sizeof(msg), "%sAn string set  may not be empty", inv);
    av_err("{\"SS\":[]}", ERR_VALIDATION, msg);
    snprintf(msg, sizeof(msg), "%sAn number set  may not be empty", inv);
    av_err("{\"NS\":[]}", ERR_VALIDATION, msg);
    snprintf(msg, sizeof(msg), "%sBinary sets should not be empty", inv);
    av_err("{\"BS\":[]}", ERR_VALIDATION, msg);
    snprintf(msg, sizeof(msg), "%sInput collection [a, a] contains duplicates.", inv);
    av_err("{\"SS\":[\"a\",\"a\"]}", ERR_VALIDATION, msg);
    snprintf(msg, sizeof(msg), "%sInput collection [Yg==, Yg==]of type BS contains duplicates.",
             inv);
    av_err("{\"BS\":[\"Yg==\",\"Yg==\"]}", ERR_VALIDATION, msg);
    av_err("{\"NS\":[\"1\",\"1.0\"]}", ERR_VALIDATION, "Input collection contains duplicates");
    /* numbers */
    av_err("{\"N\":\"\"}", ERR_VALIDATION, MSG_NUM);
    av_err("{\"N\":\"abc\"}", ERR_VALIDATION, MSG_NUM);
    av_err("{\"N\":\" 1\"}", ERR_VALIDATION, MSG_NUM);
    av_err("{\"N\":\"NaN\"}", ERR_VALIDATION, MSG_NUM);
    av_err("{\"NS\":[\"1\",\"b\"]}", ERR_VALIDATION, MSG_NUM);
    av_err("{\"N\":\"123456789012345678901234567890123456789\"}", ERR_VALIDATION,
           "Attempting to store more than 38 significant digits in a Number");
    av_err("{\"N\":\"1e126\"}", ERR_VALIDATION,
           "Number overflow. Attempting to store a number with magnitude larger than supported "
           "range");
    av_err("{\"N\":\"-1e-131\"}", ERR_VALIDATION,
           "Number underflow. Attempting to store a number with magnitude smaller than supported "
           "range");
    /* null members of lists */
    av_err("{\"L\":[null]}", ERR_VALIDATION, MSG_EMPTY_AV);
    av_err("{\"L\":[{}]}", ERR_VALIDATION, MSG_EMPTY_AV);
    av_err("{\"M\":{\"a\":{}}}", ERR_VALIDATION, MSG_EMPTY_AV);
    err e;
    assert_null(av("{\"SS\":[\"a\",null]}", &e));
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_null(av("{\"BS\":[null]}", &e));
    assert_int_equal(e.code, ERR_VALIDATION);
}

/* depth nested single-member maps (or lists) around a string leaf. */
static char *nested(int depth, bool lists)
{
    size_t cap = (size_t)depth * 16 + 32;
    char *s = arena_alloc(&A, cap);
    size_t k = 0;
    for (int i = 0; i < depth; i++)
        k += (size_t)snprintf(s + k, cap - k, lists ? "{\"L\":[" : "{\"M\":{\"n\":");
    k += (size_t)snprintf(s + k, cap - k, "{\"S\":\"leaf\"}");
    for (int i = 0; i < depth; i++)
        k += (size_t)snprintf(s + k, cap - k, lists ? "]}" : "}}");
    return s;
}

static void test_nesting(void **state)
{
    (void)state;
    /* the attribute is level 1: 31 containers (leaf at level 32) are fine,
     * 32 are not */
    assert_non_null(av_ok(nested(31, false)));
    assert_non_null(av_ok(nested(31, true)));
    av_err(nested(32, false), ERR_VALIDATION, MSG_NESTING);
    av_err(nested(32, true), ERR_VALIDATION, MSG_NESTING);
    av_err(nested(200, false), ERR_VALIDATION, MSG_NESTING);
    /* an empty container at level 32 counts too */
    char *s = nested(31, false);
    char *leaf = strstr(s, "{\"S\":\"leaf\"}");
    memcpy(leaf, "{\"M\":{}    }", 12);
    av_err(s, ERR_VALIDATION, MSG_NESTING);
    /* inside an item the same limit applies to each attribute */
    err e;
    char *it = arena_sprintf(&A, "{\"a\":%s,\"b\":{\"S\":\"x\"}}", nested(31, true));
    assert_non_null(item(it, &e));
    it = arena_sprintf(&A, "{\"a\":%s}", nested(32, true));
    assert_null(item(it, &e));
    assert_string_equal(e.msg, MSG_NESTING);
}

static void test_utf8(void **state)
{
    (void)state;
    mv_value *v = av_ok("{\"S\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}");
    assert_int_equal(v->u.str.len, 2 + 3 + 4 + 4);
    const char *bad[] = {
        "{\"S\":\"\xff\"}",             /* not a start byte */
        "{\"S\":\"a\x80\"}",            /* lone continuation */
        "{\"S\":\"\xc3\"}",             /* truncated */
        "{\"S\":\"\xc0\xaf\"}",         /* overlong */
        "{\"S\":\"\xe0\x80\xaf\"}",     /* overlong */
        "{\"S\":\"\xed\xa0\x80\"}",     /* surrogate */
        "{\"S\":\"\xf4\x90\x80\x80\"}", /* > U+10FFFF */
        "{\"S\":\"\xf8\x88\x80\x80\x80\"}",
        "{\"SS\":[\"ok\",\"\xfe\"]}",
        "{\"M\":{\"\xff\":{\"S\":\"x\"}}}", /* names too */
        "{\"L\":[{\"S\":\"\xe2\x82\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err e;
        if (av(bad[i], &e)) fail_msg("invalid UTF-8 accepted: case %zu", i);
        assert_int_equal(e.code, ERR_SERIALIZATION);
    }
    err e;
    assert_null(item("{\"\xc3\x28\":{\"S\":\"x\"}}", &e));
    assert_int_equal(e.code, ERR_SERIALIZATION);
    /* binary values are not text: any bytes */
    v = av_ok("{\"B\":\"/w==\"}");
    assert_int_equal((uint8_t)v->u.str.ptr[0], 0xFF);
}

static void test_map_from_json(void **state)
{
    (void)state;
    err e;
    mv_value *m = item("{\"b\":{\"N\":\"1\"},\"a\":{\"S\":\"x\"},\"c\":{\"L\":[]}}", &e);
    assert_non_null(m);
    assert_int_equal(m->type, MV_M);
    assert_int_equal(m->u.map.n, 3);
    assert_string_equal(m->u.map.members[0].name, "a");
    assert_string_equal(mv_map_get(m, "b", 1)->u.str.ptr, "1");
    m = item("{}", &e);
    assert_non_null(m);
    assert_int_equal(m->u.map.n, 0);
    /* attribute names must be non-empty at the top level only */
    assert_null(item("{\"\":{\"S\":\"x\"}}", &e));
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_non_null(item("{\"m\":{\"M\":{\"\":{\"S\":\"x\"}}}}", &e));
    /* a name given twice keeps its last value */
    m = item("{\"a\":{\"S\":\"1\"},\"b\":{\"S\":\"2\"},\"a\":{\"S\":\"3\"}}", &e);
    assert_non_null(m);
    assert_int_equal(m->u.map.n, 2);
    assert_string_equal(mv_map_get(m, "a", 1)->u.str.ptr, "3");
    /* errors inside */
    assert_null(item("{\"a\":{\"S\":\"1\"},\"b\":{}}", &e));
    assert_string_equal(e.msg, MSG_EMPTY_AV);
    assert_null(item("{\"a\":{\"SS\":[]},\"b\":{\"S\":1}}", &e));
    assert_int_equal(e.code, ERR_SERIALIZATION);
    assert_null(item("{\"a\":5}", &e));
    assert_string_equal(e.msg, "Unexpected value type in payload");
    assert_null(item("[]", &e));
    assert_int_equal(e.code, ERR_SERIALIZATION);
    assert_null(item("\"x\"", &e));
    assert_int_equal(e.code, ERR_SERIALIZATION);
    /* writing a map */
    m = item("{\"z\":{\"BOOL\":true},\"a\":{\"NS\":[\"2\",\"1\"]}}", &e);
    buf b;
    buf_init(&b);
    mv_map_to_json(&b, m);
    assert_string_equal((char *)b.data, "{\"a\":{\"NS\":[\"1\",\"2\"]},\"z\":{\"BOOL\":true}}");
    buf_reset(&b);
    mv_map_to_json(&b, mv_new_map(&A, NULL, 0));
    assert_string_equal((char *)b.data, "{}");
    buf_free(&b);
}

static void test_write_string(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    json_write_string(&b, "", 0);
    assert_string_equal((char *)b.data, "\"\"");
    buf_reset(&b);
    json_write_string(&b, "a\"b\\c/d\x7f", 8);
    assert_string_equal((char *)b.data, "\"a\\\"b\\\\c/d\x7f\"");
    buf_reset(&b);
    json_write_string(&b, "\x00\x01\x1f\n\t", 5);
    assert_string_equal((char *)b.data, "\"\\u0000\\u0001\\u001f\\u000a\\u0009\"");
    /* invalid UTF-8 never reaches the output: replaced by U+FFFD */
    buf_reset(&b);
    json_write_string(&b,
                      "a\xff"
                      "b\xc3",
                      4);
    assert_string_equal((char *)b.data, "\"a\xef\xbf\xbd"
                                        "b\xef\xbf\xbd\"");
    /* every single byte value produces valid JSON */
    for (int c = 0; c < 256; c++) {
        buf_reset(&b);
        char ch = (char)c;
        json_write_string(&b, &ch, 1);
        cJSON *j = cJSON_ParseWithLength((char *)b.data, b.len);
        if (!j) fail_msg("byte 0x%02x: invalid JSON %s", c, (char *)b.data);
        assert_true(cJSON_IsString(j));
        if (c >= 1 && c < 0x80) {
            assert_int_equal(strlen(j->valuestring), 1);
            assert_int_equal((uint8_t)j->valuestring[0], c);
        }
        cJSON_Delete(j);
    }
    /* random valid UTF-8 strings survive a round trip through a JSON parser */
    uint32_t seed = 12345;
    for (int k = 0; k < 2000; k++) {
        char s[256];
        size_t n = 0;
        while (n < 200) {
            seed = seed * 1103515245u + 12345u;
            uint32_t cp = (seed >> 8) % 6 == 0 ? (seed >> 4) % 0x110000 : (seed >> 8) % 0x80;
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) continue;
            if (cp < 0x80) {
                s[n++] = (char)cp;
            } else if (cp < 0x800) {
                s[n++] = (char)(0xC0 | (cp >> 6));
                s[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                s[n++] = (char)(0xE0 | (cp >> 12));
                s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                s[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                s[n++] = (char)(0xF0 | (cp >> 18));
                s[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                s[n++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        buf_reset(&b);
        json_write_string(&b, s, n);
        cJSON *j = cJSON_ParseWithLength((char *)b.data, b.len);
        assert_non_null(j);
        assert_int_equal(strlen(j->valuestring), n);
        assert_memory_equal(j->valuestring, s, n);
        cJSON_Delete(j);
    }
    buf_free(&b);
}

static void test_base64(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n = 99;
        char *e = base64_encode(&A, (const uint8_t *)plain[i], strlen(plain[i]), &n);
        assert_string_equal(e, enc[i]);
        assert_int_equal(n, strlen(enc[i]));
        uint8_t *d = base64_decode(&A, enc[i], strlen(enc[i]), &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
    }
    const char *bad[] = {"Zg=",  "Zg",   "Z===",     "Zh==",     "Zm9=",     "Zm 9", "Zm9v\n",
                         "=m9v", "Zm=v", "Zg==Zg==", "Zm9vY===", "Zm9v====", "-_==", "Zm9v Zm9v"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        if (base64_decode(&A, bad[i], strlen(bad[i]), &n))
            fail_msg("base64 \"%s\" accepted", bad[i]);
    }
    assert_null(base64_decode(&A, NULL, 0, NULL));
    /* long inputs cross the encoder's and decoder's chunk boundaries */
    const size_t sizes[] = {49151, 49152, 49153, 98304, 98305, 200000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t big = sizes[k];
        uint8_t *data = malloc(big);
        assert_non_null(data);
        for (size_t i = 0; i < big; i++)
            data[i] = (uint8_t)(i * 131 + (i >> 7));
        size_t elen, dlen;
        char *e = base64_encode(&A, data, big, &elen);
        assert_int_equal(elen, (big + 2) / 3 * 4);
        assert_int_equal(strlen(e), elen);
        uint8_t *d = base64_decode(&A, e, elen, &dlen);
        assert_non_null(d);
        assert_int_equal(dlen, big);
        assert_memory_equal(d, data, big);
        /* and the B writer agrees with base64_encode */
        mv_value *v = mv_new_str(&A, MV_B, (const char *)data, big);
        const char *j = to_json(v);
        assert_int_equal(strlen(j), elen + 8);
        assert_memory_equal(j + 6, e, elen);
        free(data);
    }
}

static void test_json_text_round_trip(void **state)
{
    (void)state;
    const char *doc =
        "{\"pk\":{\"S\":\"user#1\"},\"n\":{\"N\":\"-12.50\"},\"bin\":{\"B\":\"AAECAwQ=\"},"
        "\"flags\":{\"SS\":[\"x\",\"a\"]},\"nums\":{\"NS\":[\"3\",\"-1\",\"2.5\"]},"
        "\"blobs\":{\"BS\":[\"AQ==\",\"AA==\"]},\"ok\":{\"BOOL\":true},\"nil\":{\"NULL\":true},"
        "\"list\":{\"L\":[{\"S\":\"a\"},{\"M\":{\"k\":{\"N\":\"1\"}}},{\"L\":[]}]},"
        "\"map\":{\"M\":{\"z\":{\"S\":\"\"},\"a\":{\"B\":\"\"}}}}";
    err e;
    mv_value *v = item(doc, &e);
    assert_non_null(v);
    buf b;
    buf_init(&b);
    mv_map_to_json(&b, v);
    mv_value *again = item((char *)b.data, &e);
    assert_non_null(again);
    assert_true(mv_equal(v, again));
    assert_string_equal((char *)b.data,
                        "{\"bin\":{\"B\":\"AAECAwQ=\"},\"blobs\":{\"BS\":[\"AA==\",\"AQ==\"]},"
                        "\"flags\":{\"SS\":[\"a\",\"x\"]},\"list\":{\"L\":[{\"S\":\"a\"},{\"M\":{"
                        "\"k\":{\"N\":\"1\"}}},{\"L\":[]}]},\"map\":{\"M\":{\"a\":{\"B\":\"\"},"
                        "\"z\":{\"S\":\"\"}}},\"n\":{\"N\":\"-12.5\"},\"nil\":{\"NULL\":true},"
                        "\"nums\":{\"NS\":[\"-1\",\"2.5\",\"3\"]},\"ok\":{\"BOOL\":true},"
                        "\"pk\":{\"S\":\"user#1\"}}");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_values, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_type_keys, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_serialization_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_validation_errors, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_nesting, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_utf8, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_map_from_json, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_write_string, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_base64, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_json_text_round_trip, arena_setup, arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
