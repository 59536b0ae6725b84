/* table.c - --create-table: DescribeTable, CreateTable, wait for ACTIVE (see table.h).
 *
 * Owns the JSON of these calls (bodies by snprintf: the table name needs no
 * escaping, opts.c checked it) and the reading of their answers with cJSON.
 */
#include "table.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "report.h"

#define WAIT_ACTIVE_S 60
#define POLL_NS       200000000L

typedef enum describe_result {
    DESC_ACTIVE,
    DESC_NOT_ACTIVE,
    DESC_MISSING,
    DESC_FAILED
} describe_result;

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_error(FILE *err, const char *op, int status, const char *body)
{
    char type[ERRTAB_NAME_MAX];
    report_error_type(status, body, type, sizeof(type));
    const char *msg = NULL;
    cJSON *j = cJSON_Parse(body);
    if (j) {
        msg = json_str(j, "message");
        if (!msg) msg = json_str(j, "Message");
    }
    fprintf(err, "meridian-bench: %s failed: HTTP %d %s%s%s\n", op, status, type, msg ? ": " : "",
            msg ? msg : "");
    cJSON_Delete(j);
}

/* The type of attribute `name` in AttributeDefinitions, or NULL. */
static const char *attr_type(const cJSON *table, const char *name)
{
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(table, "AttributeDefinitions");
    const cJSON *d;
    cJSON_ArrayForEach(d, defs)
    {
        const char *n = json_str(d, "AttributeName");
        if (n && strcmp(n, name) == 0) return json_str(d, "AttributeType");
    }
    return NULL;
}

/* Checks that the key schema is pk S [+ sk N]. */
static bool schema_fits(const cJSON *table, const bench_opts *o, FILE *err)
{
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(table, "KeySchema");
    const char *hash = NULL, *range = NULL;
    const cJSON *k;
    cJSON_ArrayForEach(k, ks)
    {
        const char *n = json_str(k, "AttributeName"), *t = json_str(k, "KeyType");
        if (!n || !t) continue;
        if (strcmp(t, "HASH") == 0) hash = n;
        if (strcmp(t, "RANGE") == 0) range = n;
    }
    bool want_range = opts_has_sort_key(o);
    const char *ht = hash ? attr_type(table, hash) : NULL;
    const char *rt = range ? attr_type(table, range) : NULL;
    bool ok = hash && strcmp(hash, "pk") == 0 && (!ht || strcmp(ht, "S") == 0) &&
              (want_range ? (range && strcmp(range, "sk") == 0 && (!rt || strcmp(rt, "N") == 0))
                          : !range);
    if (!ok)
        fprintf(err,
                "meridian-bench: table %s exists with key schema %s%s%s%s; the %s workload needs "
                "pk (S)%s. Use another --table.\n",
                o->table, hash ? hash : "?", range ? " + " : "", range ? range : "",
                range ? "" : " only", o->workload_name, want_range ? " + sk (N)" : " only");
    return ok;
}

static describe_result describe(worker *w, const bench_opts *o, FILE *err, bool check_schema)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"TableName\":\"%s\"}", o->table);
    int status = 0;
    const char *resp = NULL, *why = NULL;
    if (worker_call(w, "DescribeTable", body, (size_t)n, &status, &resp, &why) != 0) {
        fprintf(err, "meridian-bench: DescribeTable on %s failed: %s\n", o->endpoint, why);
        return DESC_FAILED;
    }
    if (status != 200) {
        char type[ERRTAB_NAME_MAX];
        report_error_type(status, resp, type, sizeof(type));
        if (status == 400 && strcmp(type, "ResourceNotFoundException") == 0) return DESC_MISSING;
        print_error(err, "DescribeTable", status, resp);
        return DESC_FAILED;
    }
    cJSON *j = cJSON_Parse(resp);
    const cJSON *table = j ? cJSON_GetObjectItemCaseSensitive(j, "Table") : NULL;
    const char *st = table ? json_str(table, "TableStatus") : NULL;
    describe_result r = DESC_FAILED;
    if (!st)
        fprintf(err, "meridian-bench: DescribeTable answered without Table.TableStatus\n");
    else if (check_schema && !schema_fits(table, o, err))
        r = DESC_FAILED;
    else
        r = strcmp(st, "ACTIVE") == 0 ? DESC_ACTIVE : DESC_NOT_ACTIVE;
    cJSON_Delete(j);
    return r;
}

static int create(worker *w, const bench_opts *o, FILE *err)
{
    char body[1024];
    bool sk = opts_has_sort_key(o);
    int n =
        snprintf(body, sizeof(body),
                 "{\"TableName\":\"%s\",\"BillingMode\":\"PAY_PER_REQUEST\","
                 "\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}%s],"
                 "\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}%s]}",
                 o->table, sk ? ",{\"AttributeName\":\"sk\",\"AttributeType\":\"N\"}" : "",
                 sk ? ",{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}" : "");
    int status = 0;
    const char *resp = NULL, *why = NULL;
    if (worker_call(w, "CreateTable", body, (size_t)n, &status, &resp, &why) != 0) {
        fprintf(err, "meridian-bench: CreateTable on %s failed: %s\n", o->endpoint, why);
        return -1;
    }
    if (status == 200) return 0;
    char type[ERRTAB_NAME_MAX];
    report_error_type(status, resp, type, sizeof(type));
    if (status == 400 && strcmp(type, "ResourceInUseException") == 0) return 0; /* raced */
    print_error(err, "CreateTable", status, resp);
    return -1;
}

int table_ensure(worker *w, const bench_opts *o, FILE *err)
{
    describe_result r = describe(w, o, err, true);
    if (r == DESC_FAILED) return -1;
    if (r == DESC_MISSING) {
        if (create(w, o, err) != 0) return -1;
        fprintf(err, "meridian-bench: created table %s\n", o->table);
    } else {
        fprintf(err, "meridian-bench: reusing table %s\n", o->table);
    }
    time_t give_up = time(NULL) + WAIT_ACTIVE_S;
    while (r != DESC_ACTIVE) {
        r = describe(w, o, err, true);
        if (r == DESC_FAILED) return -1;
        if (r == DESC_ACTIVE) break;
        if (worker_stop_requested()) return -1;
        if (time(NULL) > give_up) {
            fprintf(err, "meridian-bench: table %s is not ACTIVE after %d s\n", o->table,
                    WAIT_ACTIVE_S);
            return -1;
        }
        struct timespec ts = {0, POLL_NS};
        nanosleep(&ts, NULL);
    }
    return 0;
}
