/* admin.c - `meridian status`, `meridian verify`, `meridian conflicts`.
 *
 * Each endpoint is a region's API address (http://HOST:PORT). The region
 * name comes from GET /health; DynamoDB and Meridian operations are POSTed
 * with libcurl and signed with auth/sigv4.c, exactly as an SDK would.
 * status also reads the region's GET /replication/status, an operator
 * endpoint: from the region's admin listener (--admin-endpoint, the i-th for
 * the i-th --endpoint) or else from its API endpoint, with the operator's
 * bearer token if --admin-token-file is given (server/http.h).
 * verify compares TableDigest results range by range and, for the ranges
 * that differ, fetches RangeKeys from every region to name the keys. */
#include "cli/admin.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sigv4.h"
#include "util/buf.h"

#define MAX_ENDPOINTS 16
#define VERIFY_RANGES 64
#define MAX_REPORTED  50

typedef struct endpoint {
    const char *url;
    char region[128];
} endpoint;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    buf_append(ctx, p, size * n);
    return size * n;
}

/* GET url+path into out, with `Authorization: Bearer <token>` if token is
 * not NULL; returns the HTTP status or -1. */
static long http_get_as(const char *url, const char *path, const char *token, buf *out)
{
    char full[1024];
    snprintf(full, sizeof(full), "%s%s", url, path);
    CURL *h = curl_easy_init();
    if (!h) return -1;
    struct curl_slist *headers = NULL;
    if (token) {
        buf line;
        buf_init(&line);
        buf_printf(&line, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, (char *)line.data);
        buf_free(&line);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    }
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    long status = -1;
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return status;
}

static long http_get(const char *url, const char *path, buf *out)
{
    return http_get_as(url, path, NULL, out);
}

/* The operator's token from path (one line; trailing white space ignored),
 * malloc'ed, or NULL after printing why. */
static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "meridian: cannot read admin token file %s\n", path);
        return NULL;
    }
    char line[1100];
    char *tok = NULL;
    if (fgets(line, sizeof(line), f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n) tok = strdup(line);
    }
    fclose(f);
    if (!tok) fprintf(stderr, "meridian: admin token file %s is empty\n", path);
    return tok;
}

static int region_of(endpoint *ep)
{
    buf b;
    buf_init(&b);
    long st = http_get(ep->url, "/health", &b);
    cJSON *j = st == 200 ? cJSON_ParseWithLength((char *)b.data, b.len) : NULL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "region");
    int rc = -1;
    if (cJSON_IsString(r)) {
        snprintf(ep->region, sizeof(ep->region), "%s", r->valuestring);
        rc = 0;
    } else {
        fprintf(stderr, "meridian: %s does not answer /health\n", ep->url);
    }
    cJSON_Delete(j);
    buf_free(&b);
    return rc;
}

/* Signed POST of an operation; returns the parsed JSON body (caller frees) or
 * NULL after printing the error. */
static cJSON *call(const endpoint *ep, const char *target, const char *body)
{
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!ak || !sk) {
        fprintf(stderr, "meridian: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n");
        return NULL;
    }
    const char *hostpart = strstr(ep->url, "://");
    hostpart = hostpart ? hostpart + 3 : ep->url;
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)strcspn(hostpart, "/"), hostpart);
    char amz_date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    const char *ctype = "application/x-amz-json-1.0";
    sigv4_header hs[4] = {
        {"host", 4, host, strlen(host)},
        {"x-amz-date", 10, amz_date, strlen(amz_date)},
        {"x-amz-target", 12, target, strlen(target)},
        {"content-type", 12, ctype, strlen(ctype)},
    };
    sigv4_request req = {"POST", "/", "", hs, 4, (const uint8_t *)body, strlen(body)};
    char auth[1024];
    if (sigv4_sign(ak, sk, ep->region, "dynamodb", amz_date, &req, auth, sizeof(auth)) < 0)
        return NULL;
    char line[1200];
    struct curl_slist *headers = NULL;
    snprintf(line, sizeof(line), "X-Amz-Date: %s", amz_date);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof(line), "X-Amz-Target: %s", target);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof(line), "Content-Type: %s", ctype);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof(line), "Authorization: %s", auth);
    headers = curl_slist_append(headers, line);
    headers = curl_slist_append(headers, "Expect:");
    buf out;
    buf_init(&out);
    CURL *h = curl_easy_init();
    long status = -1;
    if (h) {
        char url[1024];
        snprintf(url, sizeof(url), "%s/", ep->url);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
        if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(headers);
    cJSON *j = out.data ? cJSON_ParseWithLength((char *)out.data, out.len) : NULL;
    if (status != 200) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
        fprintf(stderr, "meridian: %s %s failed: %s%s%s\n", ep->region, target,
                cJSON_IsString(t) ? t->valuestring : "no answer", cJSON_IsString(m) ? ": " : "",
                cJSON_IsString(m) ? m->valuestring : "");
        cJSON_Delete(j);
        j = NULL;
    }
    buf_free(&out);
    return j;
}

/* The operator's options of `meridian status` (NULL for other commands). */
typedef struct admin_opts {
    const char *admin_urls[MAX_ENDPOINTS]; /* --admin-endpoint, in order */
    int n_admin;
    const char *token_file; /* --admin-token-file */
} admin_opts;

static int parse_common(int argc, char **argv, endpoint *eps, int *n_eps, const char **table,
                        bool need_table, const char *usage, admin_opts *ao)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, 0, 'e'},
        {"endpoint-url", required_argument, 0, 'e'},
        {"table", required_argument, 0, 't'},
        {"admin-endpoint", required_argument, 0, 'a'},
        {"admin-token-file", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    *n_eps = 0;
    *table = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'e' && *n_eps < MAX_ENDPOINTS) {
            eps[*n_eps].url = optarg;
            eps[*n_eps].region[0] = '\0';
            (*n_eps)++;
        } else if (ch == 't') {
            *table = optarg;
        } else if (ch == 'a' && ao && ao->n_admin < MAX_ENDPOINTS) {
            ao->admin_urls[ao->n_admin++] = optarg;
        } else if (ch == 'T' && ao) {
            ao->token_file = optarg;
        } else {
            fprintf(stderr, "usage: %s\n", usage);
            return -1;
        }
    }
    if (*n_eps == 0 || (need_table && !*table) || optind < argc || (ao && ao->n_admin > *n_eps)) {
        fprintf(stderr, "usage: %s\n", usage);
        return -1;
    }
    for (int i = 0; i < *n_eps; i++)
        if (region_of(&eps[i]) < 0) return -1;
    return 0;
}

static const char *jstr(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int admin_status_main(int argc, char **argv)
{
    endpoint eps[MAX_ENDPOINTS];
    int n;
    const char *unused;
    admin_opts ao = {0};
    if (parse_common(argc, argv, eps, &n, &unused, false,
                     "meridian status --endpoint URL [--endpoint URL ...]\n"
                     "           [--admin-endpoint URL ...] [--admin-token-file FILE]\n"
                     "  (the i-th --admin-endpoint is the admin listener of the i-th --endpoint;\n"
                     "   without one, /replication/status is read from the API endpoint)",
                     &ao) < 0)
        return 2;
    char *token = NULL;
    if (ao.token_file && !(token = read_token_file(ao.token_file))) return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        buf b;
        buf_init(&b);
        const char *status_url = i < ao.n_admin ? ao.admin_urls[i] : eps[i].url;
        long st = http_get_as(status_url, "/replication/status", token, &b);
        cJSON *s = st == 200 ? cJSON_ParseWithLength((char *)b.data, b.len) : NULL;
        if (!s) {
            const cJSON *m = NULL;
            cJSON *ej = b.data ? cJSON_ParseWithLength((char *)b.data, b.len) : NULL;
            m = cJSON_GetObjectItemCaseSensitive(ej, "message");
            fprintf(stderr, "meridian: %s/replication/status answered %ld%s%s%s\n", status_url, st,
                    cJSON_IsString(m) ? ": " : "", cJSON_IsString(m) ? m->valuestring : "",
                    cJSON_IsString(m) ? ""
                    : st == 401       ? " (give --admin-token-file)"
                    : st == 404       ? " (give the region's admin listener with --admin-endpoint)"
                                      : "");
            cJSON_Delete(ej);
            rc = 1;
        }
        buf_free(&b);
        printf("region %s  %s  log position %.0f\n", eps[i].region, eps[i].url,
               jnum(s, "log_position"));
        printf("  %-20s %-5s %12s %10s %10s\n", "PEER", "LINK", "ACKED", "PENDING", "LAG(ms)");
        const cJSON *l;
        double now_ms = (double)time(NULL) * 1000.0;
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(s, "links"))
        {
            /* Lag: how old the newest write applied here from that peer is, while
             * this region's own log still has entries the peer has not acked. */
            double last = jnum(l, "last_applied_commit_ms");
            char lag[32] = "0";
            if (jnum(l, "pending") > 0 && last > 0)
                snprintf(lag, sizeof(lag), "%.0f", now_ms - last);
            printf("  %-20s %-5s %12.0f %10.0f %10s\n", jstr(l, "peer", "?"),
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "up")) ? "up" : "DOWN",
                   jnum(l, "acked"), jnum(l, "pending"), lag);
        }
        cJSON_Delete(s);
        cJSON *lt = call(&eps[i], "DynamoDB_20120810.ListTables", "{}");
        if (!lt) {
            rc = 1;
            continue;
        }
        printf("  %-30s %10s  %s\n", "TABLE", "ITEMS", "REPLICAS");
        const cJSON *name;
        cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(lt, "TableNames"))
        {
            if (!cJSON_IsString(name)) continue;
            char body[600];
            snprintf(body, sizeof(body), "{\"TableName\":\"%s\"}", name->valuestring);
            cJSON *d = call(&eps[i], "DynamoDB_20120810.DescribeTable", body);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "Table");
            buf reps;
            buf_init(&reps);
            const cJSON *r;
            cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(t, "Replicas"))
                buf_printf(&reps, "%s%s %s", reps.len ? ", " : "", jstr(r, "RegionName", "?"),
                           jstr(r, "ReplicaStatus", "?"));
            printf("  %-30s %10.0f  %s\n", name->valuestring, jnum(t, "ItemCount"),
                   reps.len ? (char *)reps.data : "(single region)");
            buf_free(&reps);
            cJSON_Delete(d);
        }
        cJSON_Delete(lt);
        if (i + 1 < n) printf("\n");
    }
    curl_global_cleanup();
    free(token);
    return rc;
}

/* Per-region view of the keys of one range: key JSON -> record hash. */
static cJSON *range_keys(const endpoint *ep, const char *table, int range)
{
    char body[600];
    snprintf(body, sizeof(body), "{\"TableName\":\"%s\",\"Ranges\":%d,\"Range\":%d}", table,
             VERIFY_RANGES, range);
    return call(ep, "Meridian_20261121.RangeKeys", body);
}

static const cJSON *find_key(const cJSON *keys, const char *key_json, char **scratch)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(keys, "Keys"))
    {
        char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(k, "Key"));
        bool eq = s && strcmp(s, key_json) == 0;
        free(*scratch);
        *scratch = s;
        if (eq) return k;
    }
    return NULL;
}

int admin_verify_main(int argc, char **argv)
{
    endpoint eps[MAX_ENDPOINTS];
    int n;
    const char *table;
    if (parse_common(argc, argv, eps, &n, &table, true,
                     "meridian verify --table T --endpoint URL --endpoint URL [...]", NULL) < 0)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cJSON *dig[MAX_ENDPOINTS] = {0};
    int rc = 0;
    char body[600];
    snprintf(body, sizeof(body), "{\"TableName\":\"%s\",\"Ranges\":%d}", table, VERIFY_RANGES);
    for (int i = 0; i < n; i++) {
        dig[i] = call(&eps[i], "Meridian_20261121.TableDigest", body);
        if (!dig[i]) rc = 2;
    }
    int differing = 0, reported = 0;
    for (int r = 0; rc == 0 && r < VERIFY_RANGES; r++) {
        const char *d0 =
            jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dig[0], "Digests"), r),
                 "Digest", "");
        bool same = true;
        for (int i = 1; i < n; i++) {
            const char *di =
                jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dig[i], "Digests"), r),
                     "Digest", "");
            if (strcmp(d0, di) != 0) same = false;
        }
        if (same) continue;
        differing++;
        /* Name the keys: every key present in some region whose record differs. */
        cJSON *keys[MAX_ENDPOINTS] = {0};
        for (int i = 0; i < n; i++)
            keys[i] = range_keys(&eps[i], table, r);
        for (int i = 0; i < n && reported < MAX_REPORTED; i++) {
            const cJSON *k;
            cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(keys[i], "Keys"))
            {
                char *kj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(k, "Key"));
                if (!kj) continue;
                bool differs = false, seen_before = false;
                for (int j = 0; j < n; j++) {
                    char *scratch = NULL;
                    const cJSON *o = find_key(keys[j], kj, &scratch);
                    free(scratch);
                    if (!o || strcmp(jstr(o, "Hash", ""), jstr(k, "Hash", "")) != 0) differs = true;
                    if (j < i && o) seen_before = true;
                }
                if (differs && !seen_before && reported < MAX_REPORTED) {
                    printf("DIFFERS %s:", kj);
                    for (int j = 0; j < n; j++) {
                        char *scratch = NULL;
                        const cJSON *o = find_key(keys[j], kj, &scratch);
                        free(scratch);
                        if (!o)
                            printf("  %s=absent", eps[j].region);
                        else
                            printf("  %s=%s@%.0f", eps[j].region, jstr(o, "Origin", "?"),
                                   jnum(o, "Timestamp"));
                    }
                    printf("\n");
                    reported++;
                }
                free(kj);
            }
        }
        for (int i = 0; i < n; i++)
            cJSON_Delete(keys[i]);
    }
    if (rc == 0) {
        if (differing == 0) {
            printf("table %s is identical in %d regions (", table, n);
            for (int i = 0; i < n; i++)
                printf("%s%s: %.0f items", i ? ", " : "", eps[i].region, jnum(dig[i], "Items"));
            printf("; %d ranges compared)\n", VERIFY_RANGES);
        } else {
            printf("table %s differs in %d of %d ranges across %d regions (replication may still "
                   "be in flight: run again to see whether the difference persists)\n",
                   table, differing, VERIFY_RANGES, n);
            rc = 1;
        }
    }
    for (int i = 0; i < n; i++)
        cJSON_Delete(dig[i]);
    curl_global_cleanup();
    return rc;
}

int admin_conflicts_main(int argc, char **argv)
{
    endpoint eps[MAX_ENDPOINTS];
    int n;
    const char *table;
    if (parse_common(argc, argv, eps, &n, &table, true,
                     "meridian conflicts --endpoint URL --table T", NULL) < 0)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 0;
    char body[600];
    snprintf(body, sizeof(body), "{\"TableName\":\"%s\",\"Limit\":50}", table);
    for (int i = 0; i < n; i++) {
        cJSON *j = call(&eps[i], "Meridian_20261121.ListConflicts", body);
        if (!j) {
            rc = 1;
            continue;
        }
        printf("region %s: %.0f conflicts on table %s (newest first)\n", eps[i].region,
               jnum(j, "Total"), table);
        printf("  %-40s %-28s %-28s\n", "KEY", "WINNER (region@version)", "LOSER");
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "Conflicts"))
        {
            char *kj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "Key"));
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(c, "Winner");
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "Loser");
            char ws[64], ls[64];
            snprintf(ws, sizeof(ws), "%s@%.0f", jstr(w, "Region", "?"), jnum(w, "Timestamp"));
            snprintf(ls, sizeof(ls), "%s@%.0f", jstr(l, "Region", "?"), jnum(l, "Timestamp"));
            printf("  %-40s %-28s %-28s\n", kj ? kj : "?", ws, ls);
            free(kj);
        }
        cJSON_Delete(j);
    }
    curl_global_cleanup();
    return rc;
}
