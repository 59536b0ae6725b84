/* fuzz_http.c - an HTTP request from the point where libmicrohttpd has parsed
 * it down to the DynamoDB operations: what server/http.c's on_request and
 * serve_api do (routing by method and path, header collection, metrics),
 * api_handle (api/dispatch.c: content type, SigV4, X-Amz-Target, UTF-8 and
 * JSON body) and every operation handler, on a real database opened once in
 * a temporary directory (WAL without fsync) with two tables in each of two
 * accounts. Meridian parses no raw HTTP bytes itself (libmicrohttpd does),
 * so the input starts where http.c starts.
 *
 * Input: one mode byte, then a request in a small text form
 *     METHOD \n PATH \n TARGET \n (Name: value \n)* \n BODY
 * TARGET (if not empty) becomes X-Amz-Target; Content-Type
 * application/x-amz-json-1.0 is added unless a header line gives one. Mode
 * (low 3 bits):
 *   0-4: the request is signed with sigv4_sign for account acct1 at the
 *        current time (header lines that HTTP cannot carry are dropped; host,
 *        x-amz-date and authorization are replaced), so nearly every input
 *        gets past authentication into the operations;
 *   5:   the same for account acct2;
 *   6:   signed, then one byte of the body (or of the signature) changed:
 *        it must be refused;
 *   7:   the request as given, unsigned.
 * Properties: a POST's response (api_handle) has a status in {200, 400, 404}
 * (a 500 would be a bug: it means an internal error on a request), its body
 * is valid UTF-8 and one JSON object; an error carries a known DynamoDB
 * `__type` (and a `message`, except UnknownOperation) and a success none;
 * outcome, op and the request id agree; x-meridian-version is
 * "<digits>/us-east-1" or empty. A validly signed request is never refused
 * for its authentication. After a successful PutItem, UpdateItem or
 * DeleteItem, a consistent GetItem of the key agrees (check_write). GET
 * /health, /metrics and /replication/status and the 404/405 answers are
 * exercised as in http.c.
 * Every RESET_EVERY inputs the database is deleted and recreated, so state
 * stays small and a crash reproduces from few inputs.
 */
#include <ctype.h>
#include <stdbool.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api/dispatch.h"
#include "auth/sigv4.h"
#include "db/db.h"
#include "fuzz_common.h"
#include "item/json.h"
#include "repl/repl.h"
#include "server/metrics.h"
#include "util/log.h"

#define REGION      "us-east-1"
#define MAX_HEADERS 32
#define RESET_EVERY 20000
#define JSON_CT     "application/x-amz-json-1.0"

typedef struct key_pair {
    const char *akid, *secret, *account;
} key_pair;

static const key_pair keys[] = {
    {"AKIAFUZZ", "fuzz/secret+KEY0123456789", "acct1"},
    {"AKIAOTHER", "other-secret", "acct2"},
};
static const char creds_text[] = "AKIAFUZZ fuzz/secret+KEY0123456789 acct1\n"
                                 "AKIAOTHER other-secret acct2\n";

static char dir[256];
static cred_table creds;
static db the_db;
static metrics *mx;
static api_server api;
static unsigned long runs;
static bool verbose; /* FUZZ_HTTP_VERBOSE=1: print every response (for writing seeds) */

/* ------------------------------------------------------------ requests */

typedef struct request {
    const char *method, *path;
    sigv4_header h[MAX_HEADERS + 8];
    size_t n;
    const uint8_t *body; /* body[body_len] == '\0' */
    size_t body_len;
    char auth[8192];
    char date[32];
} request;

static sigv4_request as_sigv4(const request *r)
{
    return (sigv4_request){r->method, r->path, "", r->h, r->n, r->body, r->body_len};
}

static void add_header(request *r, const char *name, const char *value)
{
    if (r->n < sizeof(r->h) / sizeof(r->h[0]))
        r->h[r->n++] = (sigv4_header){name, strlen(name), value, strlen(value)};
}

static bool ieq(const char *a, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(a, lit, n) == 0;
}

static const sigv4_header *header(const request *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (ieq(r->h[i].name, r->h[i].name_len, name)) return &r->h[i];
    return NULL;
}

/* Signs r (adding host and x-amz-date) with key k at the current time, as an
 * SDK would; returns false if the headers do not fit the signature buffer. */
static bool sign(request *r, const key_pair *k)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r->date, sizeof(r->date), "%Y%m%dT%H%M%SZ", &tm);
    add_header(r, "host", "127.0.0.1:8000");
    add_header(r, "x-amz-date", r->date);
    sigv4_request q = as_sigv4(r);
    if (sigv4_sign(k->akid, k->secret, REGION, "dynamodb", r->date, &q, r->auth, sizeof(r->auth)) !=
        0)
        return false;
    add_header(r, "Authorization", r->auth);
    return true;
}

/* ----------------------------------------------------- response checks */

static const char *const auth_types[] = {
    "com.amazon.coral.service#MissingAuthenticationTokenException",
    "com.amazon.coral.service#UnrecognizedClientException",
    "com.amazon.coral.service#InvalidSignatureException",
    "com.amazon.coral.service#IncompleteSignatureException",
};

static bool known_type(const char *t)
{
    for (int c = ERR_VALIDATION; c <= ERR_UNAVAILABLE; c++) {
        int status;
        if (strcmp(api_error_type((err_code)c, &status), t) == 0) return true;
    }
    return false;
}

static bool is_auth_type(const char *t)
{
    for (size_t i = 0; i < sizeof(auth_types) / sizeof(auth_types[0]); i++)
        if (strcmp(auth_types[i], t) == 0) return true;
    return false;
}

static void dump(const char *what, int status, const buf *body)
{
    fprintf(stderr, "%s: status %d body %.*s\n", what, status,
            (int)(body->len > 2000 ? 2000 : body->len), body->data ? (const char *)body->data : "");
}

/* Checks an error or success body; returns the parsed object (caller deletes)
 * and its `__type` (NULL on success) in *type. */
static cJSON *check_body(int status, const buf *body, const char **type)
{
    const char *p = body->data ? (const char *)body->data : "";
    if (!utf8_valid((const unsigned char *)p, body->len)) dump("invalid UTF-8", status, body);
    FUZZ_CHECK(utf8_valid((const unsigned char *)p, body->len));
    cJSON *j = cJSON_ParseWithLength(p, body->len);
    if (!j || !cJSON_IsObject(j)) dump("not a JSON object", status, body);
    FUZZ_CHECK(j && cJSON_IsObject(j));
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
    *type = NULL;
    if (status == 200) {
        FUZZ_CHECK(t == NULL);
        return j;
    }
    FUZZ_CHECK(cJSON_IsString(t) && known_type(t->valuestring));
    *type = t->valuestring;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!strstr(t->valuestring, "#UnknownOperationException")) FUZZ_CHECK(cJSON_IsString(m));
    if (m) FUZZ_CHECK(cJSON_IsString(m));
    return j;
}

/* What serve_api does for a POST: api_handle, then metrics. Checks the
 * response; returns its parsed body (caller deletes) and sets *type. */
static cJSON *serve(const request *r, api_response *resp, const char **type)
{
    sigv4_request q = as_sigv4(r);
    api_handle(&api, &q, resp);
    metrics_observe_request(mx, resp->op, resp->outcome, 0.001);
    if (verbose) dump("response", resp->status, &resp->body);
    if (resp->status != 200 && resp->status != 400 && resp->status != 404)
        dump("unexpected status", resp->status, &resp->body);
    FUZZ_CHECK(resp->status == 200 || resp->status == 400 || resp->status == 404);
    FUZZ_CHECK(resp->outcome == (resp->status == 200 ? 0 : resp->status < 500 ? 1 : 2));
    FUZZ_CHECK(resp->op >= -1 && resp->op < (int)api_op_count());
    FUZZ_CHECK(strlen(resp->request_id) == 52);
    for (const char *c = resp->request_id; *c; c++)
        FUZZ_CHECK(isupper((unsigned char)*c) || isdigit((unsigned char)*c));
    if (resp->version[0]) {
        FUZZ_CHECK(resp->status == 200);
        const char *c = resp->version;
        while (isdigit((unsigned char)*c))
            c++;
        FUZZ_CHECK(c > resp->version && strcmp(c, "/" REGION) == 0);
    }
    cJSON *j = check_body(resp->status, &resp->body, type);
    if (resp->status == 404) FUZZ_CHECK(strstr(*type, "#UnknownOperationException") != NULL);
    return j;
}

/* A signed API request built here (table setup, the PutItem oracle). */
static int call(const key_pair *k, const char *op, const char *body, cJSON **out)
{
    request r;
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.path = "/";
    char target[64];
    snprintf(target, sizeof(target), "DynamoDB_20120810.%s", op);
    add_header(&r, "content-type", JSON_CT);
    add_header(&r, "x-amz-target", target);
    r.body = (const uint8_t *)body;
    r.body_len = strlen(body);
    if (!sign(&r, k)) abort();
    api_response resp;
    const char *type;
    cJSON *j = serve(&r, &resp, &type);
    buf_free(&resp.body);
    if (out)
        *out = j;
    else
        cJSON_Delete(j);
    return resp.status;
}

/* ------------------------------------------------------------- database */

static const char *const setup[][2] = {
    {"CreateTable", "{\"TableName\":\"fuzz_hash\",\"KeySchema\":[{\"AttributeName\":\"pk\","
                    "\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":[{\"AttributeName\":\"pk\","
                    "\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}"},
    {"CreateTable",
     "{\"TableName\":\"fuzz_range\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":"
     "\"HASH\"},{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}],\"AttributeDefinitions\":[{"
     "\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},{\"AttributeName\":\"sk\","
     "\"AttributeType\":\"N\"}],\"ProvisionedThroughput\":{\"ReadCapacityUnits\":5,"
     "\"WriteCapacityUnits\":5}}"},
    {"PutItem", "{\"TableName\":\"fuzz_hash\",\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"1\"},"
                "\"s\":{\"SS\":[\"x\",\"y\"]},\"m\":{\"M\":{\"l\":{\"L\":[{\"BOOL\":true},"
                "{\"NULL\":true},{\"B\":\"AAE=\"}]}}}}}"},
    {"PutItem", "{\"TableName\":\"fuzz_range\",\"Item\":{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"1\"},"
                "\"v\":{\"S\":\"one\"}}}"},
    {"PutItem", "{\"TableName\":\"fuzz_range\",\"Item\":{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"2\"},"
                "\"v\":{\"S\":\"two\"},\"c\":{\"N\":\"10\"}}}"},
    {"PutItem",
     "{\"TableName\":\"fuzz_range\",\"Item\":{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"-3.5\"},"
     "\"v\":{\"NS\":[\"1\",\"2\"]}}}"},
};

static void db_up(void)
{
    store_options so = {.block_cache_bytes = 8u << 20, .sync = false};
    err e;
    err_clear(&e);
    if (db_open(&the_db, dir, REGION, &so, &e) != 0) {
        fprintf(stderr, "fuzz_http: db_open %s: %s\n", dir, e.msg);
        abort();
    }
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
            if (call(&keys[k], setup[i][0], setup[i][1], NULL) != 200) abort();
}

static void db_down(void)
{
    db_close(&the_db);
    fuzz_rmtree(dir);
}

static void cleanup(void)
{
    db_down();
    metrics_free(mx);
    sigv4_verifier_free(api.verifier);
    cred_free(&creds);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    verbose = getenv("FUZZ_HTTP_VERBOSE") != NULL;
    log_set_level(LOG_ERROR); /* errors come only with a 500, itself a failure */
    err e;
    err_clear(&e);
    if (cred_parse(creds_text, strlen(creds_text), "fuzz", &creds, &e) != 0) abort();
    fuzz_tmpdir(dir, sizeof(dir), "fuzz-http");
    mx = metrics_new(REGION);
    api = (api_server){.d = &the_db,
                       .repl = NULL,
                       .verifier = sigv4_verifier_new(&creds, REGION, "dynamodb"),
                       .region = REGION,
                       .m = mx};
    if (!api.verifier || !mx) abort();
    db_up();
    atexit(cleanup);
    return 0;
}

/* ------------------------------------------------------------ the input */

static char *next_line(char **p, char *end, size_t *len)
{
    if (*p >= end) return NULL;
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) nl = end;
    *nl = '\0';
    *len = (size_t)(nl - s);
    *p = nl < end ? nl + 1 : end;
    return s;
}

/* Header lines as libmicrohttpd would hand them over: a token name, a value
 * without CR/NUL and with surrounding blanks trimmed. When signing, the
 * headers the signer sets are left out. */
static void parse_headers(request *r, char **p, char *end, bool as_given)
{
    char *line;
    size_t len;
    while ((line = next_line(p, end, &len)) && len > 0) {
        if (r->n >= MAX_HEADERS) continue;
        char *colon = memchr(line, ':', len);
        size_t nl = colon ? (size_t)(colon - line) : len;
        char *v = colon ? colon + 1 : line + len;
        size_t vl = (size_t)(line + len - v);
        if (!as_given) {
            if (!colon || !fuzz_http_token(line, nl) || memchr(v, '\r', vl) || memchr(v, '\0', vl))
                continue;
            while (vl && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (ieq(line, nl, "host") || ieq(line, nl, "x-amz-date") ||
                ieq(line, nl, "authorization"))
                continue;
        }
        r->h[r->n++] = (sigv4_header){line, nl, v, vl};
    }
}

/* on_request's answers to everything but a POST. */
static void serve_other(const char *method, const char *path)
{
    buf b;
    buf_init(&b);
    bool get = strcmp(method, "GET") == 0;
    int status = 200;
    if (get && strcmp(path, "/health") == 0) {
        buf_puts(&b, "{\"region\":");
        json_write_string(&b, REGION, strlen(REGION));
        buf_puts(&b, ",\"status\":\"ok\"}");
    } else if (get && strcmp(path, "/metrics") == 0) {
        metrics_render(mx, &the_db, &b);
        FUZZ_CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
        buf_free(&b);
        return;
    } else if (get && strcmp(path, "/replication/status") == 0) {
        repl_status_json(NULL, &b);
    } else {
        err e;
        err_set(&e, ERR_UNKNOWN_OPERATION, "%s", "");
        api_error_body(&b, &e);
        status = get ? 404 : 405;
    }
    const char *type;
    cJSON *j = check_body(status, &b, &type);
    cJSON_Delete(j);
    buf_free(&b);
}

/* After a successful write of one item, a consistent GetItem of its key in
 * the same account finds: for PutItem exactly the item put; for DeleteItem
 * nothing; for UpdateItem an item, the one returned if ReturnValues ALL_NEW. */
static void check_write(const key_pair *k, const request *r, const char *op, const cJSON *resp)
{
    bool put = strcmp(op, "PutItem") == 0, del = strcmp(op, "DeleteItem") == 0;
    cJSON *req = cJSON_ParseWithLength((const char *)r->body, r->body_len);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "TableName");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(req, put ? "Item" : "Key");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(req, "ReturnValues");
    arena a;
    arena_init(&a);
    err e;
    err_clear(&e);
    mv_value *item = NULL; /* the item put, or the key */
    table *t = NULL;
    if (cJSON_IsString(name) && cJSON_IsObject(src)) item = mv_map_from_json(&a, src, &e);
    if (item) t = catalog_get(the_db.cat, k->account, name->valuestring);
    if (!t) goto out;
    buf body;
    buf_init(&body);
    buf_puts(&body, "{\"TableName\":");
    json_write_string(&body, t->name, strlen(t->name));
    buf_puts(&body, ",\"ConsistentRead\":true,\"Key\":{");
    const mv_value *pk = mv_map_get(item, t->pk_name, strlen(t->pk_name));
    FUZZ_CHECK(pk != NULL);
    json_write_string(&body, t->pk_name, strlen(t->pk_name));
    buf_putc(&body, ':');
    mv_to_json(&body, pk);
    if (t->sk_name) {
        const mv_value *sk = mv_map_get(item, t->sk_name, strlen(t->sk_name));
        FUZZ_CHECK(sk != NULL);
        buf_putc(&body, ',');
        json_write_string(&body, t->sk_name, strlen(t->sk_name));
        buf_putc(&body, ':');
        mv_to_json(&body, sk);
    }
    buf_puts(&body, "}}");
    buf_putc(&body, '\0');
    table_release(t);
    cJSON *got = NULL;
    int status = call(k, "GetItem", (const char *)body.data, &got);
    if (status != 200) fprintf(stderr, "GetItem after %s: %s\n", op, (char *)body.data);
    FUZZ_CHECK(status == 200);
    const cJSON *gi = cJSON_GetObjectItemCaseSensitive(got, "Item");
    if (del) {
        FUZZ_CHECK(gi == NULL);
    } else {
        FUZZ_CHECK(cJSON_IsObject(gi));
        mv_value *back = mv_map_from_json(&a, gi, &e);
        FUZZ_CHECK(back != NULL);
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(resp, "Attributes");
        const mv_value *want = put ? item : NULL;
        if (!put && cJSON_IsString(rv) && strcmp(rv->valuestring, "ALL_NEW") == 0) {
            FUZZ_CHECK(cJSON_IsObject(attrs));
            want = mv_map_from_json(&a, attrs, &e);
            FUZZ_CHECK(want != NULL);
        }
        if (want && !mv_equal(want, back)) {
            char *s = cJSON_PrintUnformatted(gi);
            fprintf(stderr, "%s, then GetItem returned %s\n", op, s);
            free(s);
        }
        FUZZ_CHECK(!want || mv_equal(want, back));
    }
    cJSON_Delete(got);
    buf_free(&body);
out:
    arena_free(&a);
    cJSON_Delete(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (++runs % RESET_EVERY == 0) {
        db_down();
        db_up();
    }
    unsigned mode = data[0] & 7;
    char *text = fuzz_cstr(data + 1, size - 1);
    char *p = text, *end = text + size - 1;
    size_t ml = 0, pl = 0, tl = 0;
    char *method = next_line(&p, end, &ml), *path = next_line(&p, end, &pl);
    char *target = next_line(&p, end, &tl);
    request *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->method = method && ml && !memchr(method, '\0', ml) ? method : "POST";
    if (path) {
        char *q = memchr(path, '?', pl); /* libmicrohttpd's url has no query */
        if (q) *q = '\0';
    }
    r->path = path && path[0] ? path : "/";
    if (target && tl) add_header(r, "x-amz-target", target);
    parse_headers(r, &p, end, mode == 7);
    if (!header(r, "content-type")) add_header(r, "content-type", JSON_CT);
    r->body = (const uint8_t *)p;
    r->body_len = (size_t)(end - p);

    if (strcmp(r->method, "POST") != 0) {
        serve_other(r->method, r->path);
        goto done;
    }
    const key_pair *k = mode == 5 ? &keys[1] : &keys[0];
    bool signed_ok = mode != 7 && sign(r, k);
    uint8_t *tampered = NULL;
    if (mode == 6 && signed_ok) {
        if (r->body_len > 0) {
            tampered = malloc(r->body_len + 1);
            if (!tampered) abort();
            memcpy(tampered, r->body, r->body_len + 1);
            tampered[r->body_len / 2] ^= 0x01;
            r->body = tampered;
        } else {
            size_t al = strlen(r->auth);
            r->auth[al - 1] = r->auth[al - 1] == '0' ? '1' : '0';
        }
    }
    api_response resp;
    const char *type = NULL;
    cJSON *j = serve(r, &resp, &type);
    if (signed_ok && mode != 6 && type && is_auth_type(type)) {
        fprintf(stderr, "a signed request was refused: %s\n", type);
        FUZZ_CHECK(!is_auth_type(type));
    }
    if (mode == 6 && signed_ok)
        FUZZ_CHECK(resp.status == 404 ||
                   (type && strcmp(type, auth_types[2]) == 0)); /* InvalidSignature */
    const char *op = resp.op >= 0 ? api_op_name((size_t)resp.op) : "";
    if (resp.status == 200 && mode != 7 &&
        (strcmp(op, "PutItem") == 0 || strcmp(op, "UpdateItem") == 0 ||
         strcmp(op, "DeleteItem") == 0))
        check_write(k, r, op, j);
    cJSON_Delete(j);
    buf_free(&resp.body);
    free(tampered);
done:
    free(r);
    free(text);
    return 0;
}
