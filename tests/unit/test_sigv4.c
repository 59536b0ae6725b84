/* test_sigv4.c - unit tests for auth/sigv4.c: published AWS SigV4 test-suite
 * vectors, a botocore-signed DynamoDB request, sign/verify round trips,
 * tampering, unknown keys, the 15-minute window, scope errors, malformed
 * Authorization headers, header canonicalization, the signing-key cache and
 * concurrent verification. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sigv4.h"

/* The aws-sig-v4-test-suite credentials. */
#define SUITE_AKID   "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE   "20150830T123600Z"

#define DDB_AKID   "AKIAMERIDIANTEST"
#define DDB_SECRET "meridian/secret+KEY0123456789abcdefghij"
#define DDB_DATE   "20261121T000000Z"
#define DDB_BODY   "{\"TableName\":\"Music\",\"Key\":{\"Artist\":{\"S\":\"No One You Know\"}}}"

#define MSG_MISMATCH                                                                               \
    "The request signature we calculated does not match the signature you provided. Check your "   \
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
#define MSG_UNRECOGNIZED "The security token included in the request is invalid."

#define MAX_HEADERS 16

/* A mutable request under construction. */
typedef struct test_req {
    sigv4_header h[MAX_HEADERS];
    size_t n;
    sigv4_request r;
    char auth[2048];
} test_req;

typedef struct fixture {
    cred_table creds;
    sigv4_verifier *ddb;   /* us-east-1 / dynamodb */
    sigv4_verifier *suite; /* us-east-1 / service */
} fixture;

static time_t parse_time(const char *amz)
{
    struct tm tm = {0};
    assert_int_equal(sscanf(amz, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static void req_init(test_req *q, const char *method, const char *path, const char *query,
                     const char *body)
{
    memset(q, 0, sizeof(*q));
    q->r.method = method;
    q->r.path = path;
    q->r.query = query;
    q->r.headers = q->h;
    q->r.body = (const uint8_t *)body;
    q->r.body_len = body ? strlen(body) : 0;
}

static void req_add(test_req *q, const char *name, const char *value)
{
    assert_true(q->n < MAX_HEADERS);
    q->h[q->n] = (sigv4_header){name, strlen(name), value, strlen(value)};
    q->n++;
    q->r.n_headers = q->n;
}

/* Replaces the value of the first header called name (exact case). */
static void req_set(test_req *q, const char *name, const char *value)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->h[i].name, name) == 0) {
            q->h[i].value = value;
            q->h[i].value_len = strlen(value);
            return;
        }
    }
    req_add(q, name, value);
}

/* Signs q as it stands and appends the Authorization header. */
static void req_sign(test_req *q, const char *akid, const char *secret, const char *region,
                     const char *service, const char *amz_date)
{
    assert_int_equal(
        sigv4_sign(akid, secret, region, service, amz_date, &q->r, q->auth, sizeof(q->auth)), 0);
    req_add(q, "Authorization", q->auth);
}

/* A DynamoDB GetItem as boto3 sends it (without the Authorization header). */
static void ddb_request(test_req *q)
{
    req_init(q, "POST", "/", "", DDB_BODY);
    req_add(q, "Content-Type", "application/x-amz-json-1.0");
    req_add(q, "X-Amz-Target", "DynamoDB_20120810.GetItem");
    req_add(q, "amz-sdk-invocation-id", "7c0d3e1a-9f1b-4b7e-8a55-123456789abc");
    req_add(q, "X-Amz-Date", DDB_DATE);
    req_add(q, "X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLETOKEN");
    req_add(q, "Host", "localhost:8000");
}

static void signed_ddb_request(test_req *q)
{
    ddb_request(q);
    req_sign(q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *text =
        "# test keys\n" SUITE_AKID " " SUITE_SECRET " suite\n" DDB_AKID " " DDB_SECRET " acct1\n"
        "AKIDOTHER otherSecret\n";
    err e;
    assert_int_equal(cred_parse(text, strlen(text), "test", &f->creds, &e), 0);
    f->ddb = sigv4_verifier_new(&f->creds, "us-east-1", "dynamodb");
    f->suite = sigv4_verifier_new(&f->creds, "us-east-1", "service");
    assert_non_null(f->ddb);
    assert_non_null(f->suite);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sigv4_verifier_free(f->ddb);
    sigv4_verifier_free(f->suite);
    cred_free(&f->creds);
    free(f);
    return 0;
}

/* Verifies q against v at now, expecting success; returns the account. */
static const char *expect_ok(sigv4_verifier *v, const test_req *q, time_t now)
{
    const cred_entry *who = NULL;
    err e;
    err_clear(&e);
    if (sigv4_verify(v, &q->r, now, &who, &e) != 0)
        fail_msg("verify failed: code %d: %s", (int)e.code, e.msg);
    assert_non_null(who);
    return who->account;
}

static void expect_fail(sigv4_verifier *v, const test_req *q, time_t now, err_code code,
                        const char *msg)
{
    const cred_entry *who = (const cred_entry *)q; /* must be reset to NULL */
    err e;
    err_clear(&e);
    assert_int_equal(sigv4_verify(v, &q->r, now, &who, &e), -1);
    assert_null(who);
    if (e.code != code) fail_msg("code %d, wanted %d (%s)", (int)e.code, (int)code, e.msg);
    if (msg && strcmp(e.msg, msg) != 0) fail_msg("message\n  '%s'\nwanted\n  '%s'", e.msg, msg);
}

/* ------------------------------------------------ published test vectors */

/* aws-sig-v4-test-suite get-vanilla. */
static void test_vector_get_vanilla(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "GET", "/", "", NULL);
    req_add(&q, "Host", "example.amazonaws.com");
    req_add(&q, "X-Amz-Date", SUITE_DATE);
    req_sign(&q, SUITE_AKID, SUITE_SECRET, "us-east-1", "service", SUITE_DATE);
    assert_string_equal(q.auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                                "service/aws4_request, SignedHeaders=host;x-amz-date, "
                                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1"
                                "d763fbf31");
    assert_string_equal(expect_ok(f->suite, &q, parse_time(SUITE_DATE)), "suite");
}

/* post-vanilla: same request, POST. */
static void test_vector_post_vanilla(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "POST", "/", "", "");
    req_add(&q, "Host", "example.amazonaws.com");
    req_add(&q, "X-Amz-Date", SUITE_DATE);
    req_sign(&q, SUITE_AKID, SUITE_SECRET, "us-east-1", "service", SUITE_DATE);
    assert_non_null(strstr(q.auth, "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dd"
                                   "db68e92efbe5d6b"));
    expect_ok(f->suite, &q, parse_time(SUITE_DATE));
}

/* get-vanilla-query-order-key-case: the query is sorted. */
static void test_vector_query_order(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "GET", "/", "Param2=value2&Param1=value1", NULL);
    req_add(&q, "Host", "example.amazonaws.com");
    req_add(&q, "X-Amz-Date", SUITE_DATE);
    req_sign(&q, SUITE_AKID, SUITE_SECRET, "us-east-1", "service", SUITE_DATE);
    assert_non_null(strstr(q.auth, "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d"
                                   "3219ec94cdf2500"));
    expect_ok(f->suite, &q, parse_time(SUITE_DATE));
}

/* get-header-key-duplicate: repeated headers joined with ',' in order. */
static void test_vector_header_key_duplicate(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "GET", "/", "", NULL);
    req_add(&q, "Host", "example.amazonaws.com");
    req_add(&q, "My-Header1", "value2");
    req_add(&q, "My-Header1", "value2");
    req_add(&q, "My-Header1", "value1");
    req_add(&q, "X-Amz-Date", SUITE_DATE);
    req_sign(&q, SUITE_AKID, SUITE_SECRET, "us-east-1", "service", SUITE_DATE);
    assert_string_equal(
        q.auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                "aws4_request, SignedHeaders=host;my-header1;x-amz-date, "
                "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
    expect_ok(f->suite, &q, parse_time(SUITE_DATE));
}

/* get-header-value-trim: values trimmed, inner runs of spaces collapsed. */
static void test_vector_header_value_trim(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "GET", "/", "", NULL);
    req_add(&q, "Host", "example.amazonaws.com");
    req_add(&q, "My-Header1", " value1");
    req_add(&q, "My-Header2", " \"a   b   c\"");
    req_add(&q, "X-Amz-Date", SUITE_DATE);
    req_sign(&q, SUITE_AKID, SUITE_SECRET, "us-east-1", "service", SUITE_DATE);
    assert_non_null(strstr(q.auth, "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                                   "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055de"
                                   "e359757a9c736"));
    expect_ok(f->suite, &q, parse_time(SUITE_DATE));
}

/* A GetItem signed by botocore 1.43 (SigV4Auth), Authorization hard-coded. */
static void test_botocore_dynamodb_request(void **state)
{
    fixture *f = *state;
    static const char boto_auth[] =
        "AWS4-HMAC-SHA256 Credential=AKIAMERIDIANTEST/20261121/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=amz-sdk-invocation-id;content-type;host;x-amz-date;x-amz-security-token;"
        "x-amz-target, "
        "Signature=6c85b25ac0cf6854aef52013f7b33041ce40e9b987e0153c7d4df19160fcd0c3";
    test_req q;
    ddb_request(&q);
    char mine[1024];
    assert_int_equal(sigv4_sign(DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE, &q.r, mine,
                                sizeof(mine)),
                     0);
    assert_string_equal(mine, boto_auth);
    req_add(&q, "Authorization", boto_auth);
    assert_string_equal(expect_ok(f->ddb, &q, parse_time(DDB_DATE)), "acct1");
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    test_req q;
    signed_ddb_request(&q);
    assert_string_equal(expect_ok(f->ddb, &q, parse_time(DDB_DATE)), "acct1");

    /* Header names and order as received do not matter to the verifier... */
    test_req r;
    req_init(&r, "POST", "/", "", DDB_BODY);
    req_add(&r, "HOST", "localhost:8000");
    req_add(&r, "authorization", q.auth);
    req_add(&r, "x-amz-security-token", "FQoGZXIvYXdzEXAMPLETOKEN");
    req_add(&r, "X-AMZ-DATE", DDB_DATE);
    req_add(&r, "Amz-Sdk-Invocation-Id", "7c0d3e1a-9f1b-4b7e-8a55-123456789abc");
    req_add(&r, "x-amz-target", "DynamoDB_20120810.GetItem");
    req_add(&r, "content-type", "application/x-amz-json-1.0");
    /* ...nor do headers that were not signed. */
    req_add(&r, "User-Agent", "Boto3/1.35");
    req_add(&r, "Content-Length", "61");
    expect_ok(f->ddb, &r, parse_time(DDB_DATE));

    /* A key whose account defaulted. */
    test_req o;
    ddb_request(&o);
    req_sign(&o, "AKIDOTHER", "otherSecret", "us-east-1", "dynamodb", DDB_DATE);
    assert_string_equal(expect_ok(f->ddb, &o, parse_time(DDB_DATE)), "default");
}

static void test_empty_body_and_query(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "POST", "", NULL, NULL); /* path "" means "/", NULL query and body */
    req_add(&q, "host", "h");
    req_add(&q, "x-amz-date", DDB_DATE);
    req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
    expect_ok(f->ddb, &q, parse_time(DDB_DATE));
}

static void test_path_and_query_encoding(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "GET", "/a b/%7Ec/\xE1\x88\xB4", "b=2&a=%41%2b&a=1&flag&=x&&c=%zz", NULL);
    req_add(&q, "host", "h");
    req_add(&q, "x-amz-date", DDB_DATE);
    req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
    expect_ok(f->ddb, &q, parse_time(DDB_DATE));

    /* Equivalent encodings of the same query sign the same... */
    test_req r;
    req_init(&r, "GET", "/a b/%7Ec/\xE1\x88\xB4", "c=%25zz&a=A%2B&flag=&b=%32&=x&a=1", NULL);
    req_add(&r, "host", "h");
    req_add(&r, "x-amz-date", DDB_DATE);
    req_add(&r, "Authorization", q.auth);
    expect_ok(f->ddb, &r, parse_time(DDB_DATE));

    /* ...a different path does not. */
    r.r.path = "/a b/~c/\xE1\x88\xB4";
    expect_fail(f->ddb, &r, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE, MSG_MISMATCH);
}

/* Found by fuzz/fuzz_sigv4 (fuzz/regressions/fuzz_sigv4/empty-query-pair): a
 * query whose pairs are all empty ("=", "&=&") left the canonical-query
 * storage unallocated, and pointer arithmetic on its NULL data was undefined
 * behaviour (UBSan abort). */
static void test_query_of_empty_pairs(void **state)
{
    fixture *f = *state;
    static const char *const queries[] = {"=", "&=&", "=&=", "&&"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        test_req q;
        req_init(&q, "GET", "/", queries[i], NULL);
        req_add(&q, "host", "h");
        req_add(&q, "x-amz-date", DDB_DATE);
        req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
        expect_ok(f->ddb, &q, parse_time(DDB_DATE));
    }
}

/* ------------------------------------------------------------- tampering */

static void test_tampered_body(void **state)
{
    fixture *f = *state;
    test_req q;
    signed_ddb_request(&q);
    const char *evil = "{\"TableName\":\"Music\",\"Key\":{\"Artist\":{\"S\":\"No One You Knew\"}}}";
    q.r.body = (const uint8_t *)evil;
    q.r.body_len = strlen(evil);
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE, MSG_MISMATCH);
    q.r.body_len = 0;
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE, MSG_MISMATCH);
}

static void test_tampered_headers(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;

    signed_ddb_request(&q);
    req_set(&q, "X-Amz-Target", "DynamoDB_20120810.DeleteItem");
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    signed_ddb_request(&q);
    req_set(&q, "Host", "evil.example.com");
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    /* A second value for a signed header changes its canonical form. */
    signed_ddb_request(&q);
    req_add(&q, "x-amz-target", "DynamoDB_20120810.DeleteItem");
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    /* A signed header removed. */
    signed_ddb_request(&q);
    q.h[2].name = "x-removed";
    q.h[2].name_len = strlen("x-removed");
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    /* The method. */
    signed_ddb_request(&q);
    q.r.method = "PUT";
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    /* A signed header dropped from SignedHeaders (still includes host). */
    signed_ddb_request(&q);
    char *sh = strstr(q.auth, "x-amz-security-token;");
    assert_non_null(sh);
    memmove(sh, sh + strlen("x-amz-security-token;"),
            strlen(sh + strlen("x-amz-security-token;")) + 1);
    q.h[q.n - 1].value_len = strlen(q.auth);
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
}

static void test_tampered_signature(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;
    signed_ddb_request(&q);
    char *sig = strstr(q.auth, "Signature=") + strlen("Signature=");
    assert_int_equal(strlen(sig), 64);

    char orig = sig[10];
    sig[10] = orig == '0' ? '1' : '0';
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
    sig[10] = orig;
    expect_ok(f->ddb, &q, now);

    /* Upper-case hex is not the signature. */
    char saved[65];
    memcpy(saved, sig, 65);
    for (char *p = sig; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    if (strcmp(saved, sig) != 0) expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
    memcpy(sig, saved, 65);

    /* Truncated and extended. */
    sig[63] = '\0';
    q.h[q.n - 1].value_len = strlen(q.auth);
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
    sig[63] = saved[63];
    strcat(q.auth, "00");
    q.h[q.n - 1].value_len = strlen(q.auth);
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);

    /* Signed with another secret. */
    ddb_request(&q);
    req_sign(&q, DDB_AKID, "not-the-secret", "us-east-1", "dynamodb", DDB_DATE);
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
}

static void test_unknown_key(void **state)
{
    fixture *f = *state;
    test_req q;
    ddb_request(&q);
    req_sign(&q, "AKIDNOBODY", DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);

    /* A prefix of a known key is not that key. */
    ddb_request(&q);
    req_sign(&q, "AKIAMERIDIAN", DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);

    /* A verifier with no credentials knows no key. */
    sigv4_verifier *none = sigv4_verifier_new(NULL, "us-east-1", "dynamodb");
    assert_non_null(none);
    signed_ddb_request(&q);
    expect_fail(none, &q, parse_time(DDB_DATE), ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);
    sigv4_verifier_free(none);
}

/* ------------------------------------------------------------ time window */

static void test_expired_boundary(void **state)
{
    fixture *f = *state;
    time_t t = parse_time(DDB_DATE);
    test_req q;
    signed_ddb_request(&q);
    expect_ok(f->ddb, &q, t + 15 * 60);
    expect_fail(f->ddb, &q, t + 15 * 60 + 1, ERR_INVALID_SIGNATURE,
                "Signature expired: 20261121T000000Z is now earlier than 20261121T000001Z "
                "(20261121T001501Z - 15 min.)");
    expect_fail(f->ddb, &q, t + 30 * 60, ERR_INVALID_SIGNATURE,
                "Signature expired: 20261121T000000Z is now earlier than 20261121T001500Z "
                "(20261121T003000Z - 15 min.)");
}

static void test_future_boundary(void **state)
{
    fixture *f = *state;
    time_t t = parse_time(DDB_DATE);
    test_req q;
    signed_ddb_request(&q);
    expect_ok(f->ddb, &q, t - 15 * 60);
    expect_fail(f->ddb, &q, t - 15 * 60 - 1, ERR_INVALID_SIGNATURE,
                "Signature not yet current: 20261121T000000Z is still later than 20261120T235959Z "
                "(20261120T234459Z + 15 min.)");
    expect_fail(f->ddb, &q, t - 86400 * 365, ERR_INVALID_SIGNATURE, NULL);
}

/* The window is checked before the credential scope, as DynamoDB does. */
static void test_expired_before_scope(void **state)
{
    fixture *f = *state;
    test_req q;
    req_init(&q, "POST", "/", "", "{}");
    req_add(&q, "Host", "h");
    req_add(&q, "X-Amz-Date", "20170101T010101Z");
    req_add(&q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=cassandra/2/3/4/aws4_request "
            "SignedHeaders=x-amz-date;host Signature=123");
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE,
                "Signature expired: 20170101T010101Z is now earlier than 20261120T234500Z "
                "(20261121T000000Z - 15 min.)");
}

/* ------------------------------------------------------------ scope errors */

static void test_wrong_region(void **state)
{
    fixture *f = *state;
    test_req q;
    ddb_request(&q);
    req_sign(&q, DDB_AKID, DDB_SECRET, "us-west-2", "dynamodb", DDB_DATE);
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE,
                "Credential should be scoped to a valid region, not 'us-west-2'. ");
}

static void test_wrong_service(void **state)
{
    fixture *f = *state;
    test_req q;
    ddb_request(&q);
    req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamo", DDB_DATE);
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE,
                "Credential should be scoped to correct service: 'dynamodb'. ");
}

static void test_scope_errors_combined(void **state)
{
    fixture *f = *state;
    test_req q;
    ddb_request(&q);
    req_add(&q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAMERIDIANTEST/b/c/d/e, "
            "SignedHeaders=host;x-amz-date, Signature=00");
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE,
                "Credential should be scoped to a valid region, not 'c'. "
                "Credential should be scoped to correct service: 'dynamodb'. "
                "Credential should be scoped with a valid terminator: 'aws4_request', not 'e'. "
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP: 'b' != '20261121', from '20261121T000000Z'.");

    /* Scope date one day off, everything else right. */
    ddb_request(&q);
    req_add(&q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAMERIDIANTEST/20261120/us-east-1/dynamodb/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP: '20261120' != '20261121', from '20261121T000000Z'.");
}

/* ------------------------------------------------------- malformed headers */

static void auth_only(test_req *q, const char *auth)
{
    ddb_request(q);
    req_add(q, "Authorization", auth);
}

static void test_missing_authorization(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;
    ddb_request(&q);
    expect_fail(f->ddb, &q, now, ERR_MISSING_AUTH, "Request is missing Authentication Token");
    auth_only(&q, "");
    expect_fail(f->ddb, &q, now, ERR_MISSING_AUTH, "Request is missing Authentication Token");
    auth_only(&q, "   ");
    expect_fail(f->ddb, &q, now, ERR_MISSING_AUTH, "Request is missing Authentication Token");
    auth_only(&q, "Basic dXNlcjpwYXNz");
    expect_fail(f->ddb, &q, now, ERR_MISSING_AUTH, "Request is missing Authentication Token");
    auth_only(&q, "AWS4");
    expect_fail(f->ddb, &q, now, ERR_MISSING_AUTH, "Request is missing Authentication Token");
    auth_only(&q, "aws4-hmac-sha256 Credential=a");
    expect_fail(f->ddb, &q, now, ERR_MISSING_AUTH, "Request is missing Authentication Token");
}

static void test_missing_parameters(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;
    auth_only(&q, "AWS4-HMAC-SHA256");
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE,
                "Authorization header requires 'Credential' parameter. Authorization header "
                "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
                "parameter. Authorization=AWS4-HMAC-SHA256");

    auth_only(&q, "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host");
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE,
                "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-"
                "SHA256 Credential=a/b/c/d/e, SignedHeaders=host");

    /* An empty value counts as missing; no X-Amz-Date either. */
    req_init(&q, "POST", "/", "", "{}");
    req_add(&q, "Host", "h");
    req_add(&q, "Date", "Sat, 21 Nov 2026 00:00:00 GMT");
    req_add(&q, "Authorization", "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=ab");
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE,
                "Authorization header requires 'Credential' parameter. Authorization header "
                "requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                "Authorization=AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=ab");
}

static void test_missing_equal_sign(void **state)
{
    fixture *f = *state;
    test_req q;
    auth_only(&q, "AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders");
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INCOMPLETE_SIGNATURE,
                "'Credential' not a valid key=value pair (missing equal-sign) in Authorization "
                "header: 'AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders'.");
}

static void test_bad_date_format(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    static const char *bad[] = {"201",
                                "20261121",
                                "20261121T000000",
                                "20261121 000000Z",
                                "2026-11-21T00:00:00Z",
                                "20261321T000000Z",
                                "20260230T000000Z",
                                "20261121T240000Z",
                                "20261121T006000Z",
                                "2026112xT000000Z",
                                "20261121T000000Z0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_req q;
        ddb_request(&q);
        req_set(&q, "X-Amz-Date", bad[i]);
        req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
        char want[256];
        snprintf(want, sizeof(want),
                 "Date must be in ISO-8601 'basic format'. Got '%s'. See "
                 "http://en.wikipedia.org/wiki/ISO_8601",
                 bad[i]);
        expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE, want);
    }
}

static void test_host_must_be_signed(void **state)
{
    fixture *f = *state;
    test_req q;
    auth_only(&q, "AWS4-HMAC-SHA256 Credential=AKIAMERIDIANTEST/20261121/us-east-1/dynamodb/"
                  "aws4_request, SignedHeaders=x-amz-date;x-amz-target;hostx, Signature=00");
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INVALID_SIGNATURE,
                "'Host' must be a 'SignedHeader' in the AWS Authorization.");
}

static void test_unsupported_algorithm(void **state)
{
    fixture *f = *state;
    test_req q;
    auth_only(&q, "AWS4-HMAC-SHA25 Credential=AKIAMERIDIANTEST/20261121/us-east-1/dynamodb/"
                  "aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
    expect_fail(f->ddb, &q, parse_time(DDB_DATE), ERR_INCOMPLETE_SIGNATURE,
                "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for "
                "now). ");
}

static void test_credential_shape(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;
    auth_only(&q, "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=00");
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE,
                "Credential must have exactly 5 slash-delimited elements, e.g. "
                "keyid/date/region/service/term, got 'a/b/c/d'");
    auth_only(&q, "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00");
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE,
                "Credential must have exactly 5 slash-delimited elements, e.g. "
                "keyid/date/region/service/term, got 'a/b/c/d/e/f'");
    auth_only(&q, "AWS4-HMAC-SHA256 Credential=nokey, SignedHeaders=host, Signature=00");
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE, NULL);

    /* Trailing slashes are ignored. */
    signed_ddb_request(&q);
    char *comma = strstr(q.auth, "aws4_request,");
    assert_non_null(comma);
    comma += strlen("aws4_request");
    memmove(comma + 2, comma, strlen(comma) + 1);
    comma[0] = comma[1] = '/';
    q.h[q.n - 1].value_len = strlen(q.auth);
    expect_ok(f->ddb, &q, now);
}

static void test_separators(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;
    signed_ddb_request(&q);
    /* Commas only (no whitespace) between the parameters. */
    char squeezed[2048];
    size_t j = 0;
    const char *sp = strchr(q.auth, ' ');
    memcpy(squeezed, q.auth, (size_t)(sp - q.auth) + 1);
    j = (size_t)(sp - q.auth) + 1;
    for (const char *p = sp + 1; *p; p++)
        if (*p != ' ') squeezed[j++] = *p;
    squeezed[j] = '\0';
    assert_null(strstr(squeezed + 17, " "));
    q.h[q.n - 1].value = squeezed;
    q.h[q.n - 1].value_len = j;
    expect_ok(f->ddb, &q, now);

    /* Whitespace only, extra separators, surrounding whitespace, unknown keys. */
    char spaced[2048];
    j = 0;
    spaced[j++] = ' ';
    spaced[j++] = '\t';
    for (const char *p = q.auth; *p; p++) {
        if (*p == ',')
            spaced[j++] = '\t', spaced[j++] = ' ';
        else
            spaced[j++] = *p;
    }
    const char *tail = " ,, Extra=1 ";
    memcpy(spaced + j, tail, strlen(tail) + 1);
    q.h[q.n - 1].value = spaced;
    q.h[q.n - 1].value_len = strlen(spaced);
    expect_ok(f->ddb, &q, now);
}

static void test_garbage_and_huge_values(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;

    static const char garbage[] = "AWS4-\x01\x02\xff\xfe=\x80, ,=,==,Credential==/=/=";
    ddb_request(&q);
    q.h[q.n] = (sigv4_header){"Authorization", 13, garbage, sizeof(garbage) - 1};
    q.n++;
    q.r.n_headers = q.n;
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE, NULL);

    /* Not NUL-terminated values: the verifier must use the lengths. */
    char notz[] = "AWS4-HMAC-SHA256XXXXXXXX";
    ddb_request(&q);
    q.h[q.n] = (sigv4_header){"Authorization", 13, notz, 16};
    q.n++;
    q.r.n_headers = q.n;
    expect_fail(f->ddb, &q, now, ERR_INCOMPLETE_SIGNATURE,
                "Authorization header requires 'Credential' parameter. Authorization header "
                "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
                "parameter. Authorization=AWS4-HMAC-SHA256");

    /* Huge values everywhere: no crash, messages stay bounded. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[big] = '\0';
    const char *prefix = "AWS4-HMAC-SHA256 Credential=";
    memcpy(huge, prefix, strlen(prefix));
    auth_only(&q, huge);
    err e;
    const cred_entry *who;
    assert_int_equal(sigv4_verify(f->ddb, &q.r, now, &who, &e), -1);
    assert_true(strlen(e.msg) < sizeof(e.msg));

    /* Huge credential, signed headers and signature, all well formed. */
    char *auth = malloc(3 * big + 256);
    assert_non_null(auth);
    char *long_key = malloc(big + 1);
    assert_non_null(long_key);
    memset(long_key, 'K', big);
    long_key[big] = '\0';
    snprintf(auth, 3 * big + 256,
             "AWS4-HMAC-SHA256 Credential=%s/20261121/us-east-1/dynamodb/aws4_request, "
             "SignedHeaders=host;%s, Signature=%s",
             long_key, long_key, long_key);
    auth_only(&q, auth);
    expect_fail(f->ddb, &q, now, ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);

    /* A huge signed header value and body still verify. */
    ddb_request(&q);
    req_add(&q, "X-Big", long_key);
    q.r.body = (const uint8_t *)huge;
    q.r.body_len = big;
    req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
    expect_ok(f->ddb, &q, now);

    /* Huge date header. */
    ddb_request(&q);
    req_set(&q, "X-Amz-Date", long_key);
    req_add(&q, "Authorization",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, "
            "Signature=00");
    assert_int_equal(sigv4_verify(f->ddb, &q.r, now, &who, &e), -1);
    assert_true(strncmp(e.msg, "Date must be in ISO-8601 'basic format'. Got 'KKKK", 50) == 0);

    free(auth);
    free(long_key);
    free(huge);
}

static void test_multiple_spaces_in_values(void **state)
{
    fixture *f = *state;
    time_t now = parse_time(DDB_DATE);
    test_req q;
    req_init(&q, "POST", "/", "", DDB_BODY);
    req_add(&q, "Host", "localhost:8000");
    req_add(&q, "X-Amz-Date", DDB_DATE);
    req_add(&q, "X-Custom", "a b c");
    req_add(&q, "X-List", "one");
    req_add(&q, "X-List", "two  three");
    req_sign(&q, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE);
    expect_ok(f->ddb, &q, now);

    /* The same values with extra, leading and trailing whitespace and tabs. */
    req_set(&q, "X-Custom", "  a   b\t\t c  ");
    req_set(&q, "X-List", "\tone ");
    req_set(&q, "X-Amz-Date", " " DDB_DATE "\t");
    expect_ok(f->ddb, &q, now);

    /* Whitespace inside a value is still significant as one space. */
    req_set(&q, "X-Custom", "a bc");
    expect_fail(f->ddb, &q, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
}

/* ------------------------------------------------------------------ cache */

static void test_cache_hits(void **state)
{
    fixture *f = *state;
    sigv4_verifier *v = sigv4_verifier_new(&f->creds, "us-east-1", "dynamodb");
    assert_non_null(v);
    uint64_t hits = 99, misses = 99;
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 0);

    test_req q;
    signed_ddb_request(&q);
    time_t now = parse_time(DDB_DATE);
    expect_ok(v, &q, now);
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 1);
    for (int i = 0; i < 5; i++)
        expect_ok(v, &q, now);
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(hits, 5);
    assert_int_equal(misses, 1);

    /* A cached key does not make a bad signature pass. */
    test_req bad;
    ddb_request(&bad);
    req_sign(&bad, DDB_AKID, "wrong", "us-east-1", "dynamodb", DDB_DATE);
    expect_fail(v, &bad, now, ERR_INVALID_SIGNATURE, MSG_MISMATCH);
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(hits, 6);

    /* Another date is another key. */
    test_req next;
    ddb_request(&next);
    req_set(&next, "X-Amz-Date", "20261122T000000Z");
    req_sign(&next, DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", "20261122T000000Z");
    expect_ok(v, &next, parse_time("20261122T000000Z"));
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(misses, 2);

    /* Another access key is another key. */
    test_req other;
    ddb_request(&other);
    req_sign(&other, "AKIDOTHER", "otherSecret", "us-east-1", "dynamodb", DDB_DATE);
    expect_ok(v, &other, now);
    expect_ok(v, &other, now);
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(misses, 3);
    assert_int_equal(hits, 7);

    /* Errors before the signature check do not touch the cache. */
    expect_fail(v, &q, now + 3600, ERR_INVALID_SIGNATURE, NULL);
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(hits + misses, 10);

    sigv4_cache_stats(v, NULL, NULL);
    sigv4_verifier_free(v);
}

static void test_cache_many_keys(void **state)
{
    /* More (key, date) pairs than cache slots: still correct, bounded. */
    enum { KEYS = 40, DAYS = 12 };
    char *text = malloc(KEYS * 64);
    assert_non_null(text);
    size_t len = 0;
    for (int i = 0; i < KEYS; i++)
        len += (size_t)snprintf(text + len, KEYS * 64 - len, "KEY%03d secret%03d\n", i, i);
    cred_table creds;
    err e;
    assert_int_equal(cred_parse(text, len, "many", &creds, &e), 0);
    sigv4_verifier *v = sigv4_verifier_new(&creds, "us-east-1", "dynamodb");
    assert_non_null(v);
    for (int round = 0; round < 2; round++) {
        for (int d = 0; d < DAYS; d++) {
            char date[32];
            snprintf(date, sizeof(date), "202611%02dT120000Z", d + 1);
            for (int i = 0; i < KEYS; i++) {
                char key[32], secret[32];
                snprintf(key, sizeof(key), "KEY%03d", i);
                snprintf(secret, sizeof(secret), "secret%03d", i);
                test_req q;
                ddb_request(&q);
                req_set(&q, "X-Amz-Date", date);
                req_sign(&q, key, secret, "us-east-1", "dynamodb", date);
                const cred_entry *who = NULL;
                err_clear(&e);
                if (sigv4_verify(v, &q.r, parse_time(date), &who, &e) != 0)
                    fail_msg("%s %s: %s", key, date, e.msg);
                assert_string_equal(who->access_key, key);
            }
        }
    }
    uint64_t hits, misses;
    sigv4_cache_stats(v, &hits, &misses);
    assert_int_equal(hits + misses, 2 * KEYS * DAYS);
    sigv4_verifier_free(v);
    cred_free(&creds);
    free(text);
}

/* ------------------------------------------------------------ concurrency */

typedef struct thread_arg {
    sigv4_verifier *v;
    int failures;
} thread_arg;

static void *verify_thread(void *p)
{
    thread_arg *a = p;
    test_req q;
    signed_ddb_request(&q);
    test_req bad;
    signed_ddb_request(&bad);
    bad.r.body_len--;
    time_t now = parse_time(DDB_DATE);
    for (int i = 0; i < 300; i++) {
        const cred_entry *who;
        err e;
        if (sigv4_verify(a->v, &q.r, now, &who, &e) != 0) a->failures++;
        if (sigv4_verify(a->v, &bad.r, now, &who, &e) == 0) a->failures++;
    }
    return NULL;
}

static void test_concurrent_verify(void **state)
{
    fixture *f = *state;
    enum { THREADS = 6 };
    pthread_t th[THREADS];
    thread_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (thread_arg){f->ddb, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
}

/* ----------------------------------------------------------------- signer */

static void test_sign_errors(void **state)
{
    test_req q;
    req_init(&q, "POST", "/", "", "{}");
    req_add(&q, "host", "h");
    req_add(&q, "x-amz-date", DDB_DATE);
    char out[512];
    /* Output too small, at every length up to the full size. */
    assert_int_equal(
        sigv4_sign(DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE, &q.r, out, sizeof(out)),
        0);
    size_t need = strlen(out) + 1;
    for (size_t n = 0; n < need; n++) {
        char small[512];
        memset(small, 'x', sizeof(small));
        assert_int_equal(
            sigv4_sign(DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE, &q.r, small, n),
            -1);
        if (n) assert_int_equal(small[0], '\0');
    }
    char exact[512];
    assert_int_equal(
        sigv4_sign(DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE, &q.r, exact, need), 0);
    assert_string_equal(exact, out);
    /* A malformed date. */
    assert_int_equal(sigv4_sign(DDB_AKID, DDB_SECRET, "us-east-1", "dynamodb", "20261121", &q.r,
                                out, sizeof(out)),
                     -1);
    assert_int_equal(
        sigv4_sign(NULL, DDB_SECRET, "us-east-1", "dynamodb", DDB_DATE, &q.r, out, sizeof(out)),
        -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vector_get_vanilla, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_post_vanilla, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_query_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_header_key_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_header_value_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_botocore_dynamodb_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_body_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_and_query_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_of_empty_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_before_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_errors_combined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_equal_sign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_date_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_must_be_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_algorithm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_separators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_huge_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple_spaces_in_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_hits, setup, teardown),
        cmocka_unit_test(test_cache_many_keys),
        cmocka_unit_test_setup_teardown(test_concurrent_verify, setup, teardown),
        cmocka_unit_test(test_sign_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
