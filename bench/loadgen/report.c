/* report.c - counters, summary and JSON report of meridian-bench (see report.h).
 *
 * Owns the small error tables (linear search over at most ERRTAB_SLOTS names:
 * errors are rare and the table is per thread), the extraction of __type
 * from error bodies (cJSON), and both output formats.
 */
#include "report.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

void errtab_add(errtab *t, const char *name, uint64_t count)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].name, name) == 0) {
            t->e[i].count += count;
            return;
        }
    }
    if (t->n == ERRTAB_SLOTS) {
        t->other += count;
        return;
    }
    snprintf(t->e[t->n].name, ERRTAB_NAME_MAX, "%s", name);
    t->e[t->n].count = count;
    t->n++;
}

void errtab_merge(errtab *dst, const errtab *src)
{
    for (size_t i = 0; i < src->n; i++)
        errtab_add(dst, src->e[i].name, src->e[i].count);
    dst->other += src->other;
}

uint64_t errtab_total(const errtab *t)
{
    uint64_t sum = t->other;
    for (size_t i = 0; i < t->n; i++)
        sum += t->e[i].count;
    return sum;
}

int stats_init(stats *s)
{
    memset(s, 0, sizeof(*s));
    return hist_init(&s->lat);
}

void stats_free(stats *s)
{
    hist_free(&s->lat);
}

void stats_merge(stats *dst, const stats *src)
{
    hist_merge(&dst->lat, &src->lat);
    dst->ops += src->ops;
    for (int i = 0; i < OP_COUNT; i++)
        dst->ops_by_op[i] += src->ops_by_op[i];
    dst->errors += src->errors;
    dst->get_misses += src->get_misses;
    dst->unsent += src->unsent;
    dst->unfinished += src->unfinished;
    errtab_merge(&dst->by_type, &src->by_type);
    errtab_merge(&dst->by_status, &src->by_status);
}

void report_error_type(int status, const char *body, char *out, size_t out_len)
{
    snprintf(out, out_len, "HTTP_%d", status);
    if (!body || !*body) return;
    cJSON *j = cJSON_Parse(body);
    if (!j) return;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
    if (cJSON_IsString(t) && t->valuestring[0]) {
        const char *name = strrchr(t->valuestring, '#');
        name = name ? name + 1 : t->valuestring;
        if (*name) snprintf(out, out_len, "%s", name);
    }
    cJSON_Delete(j);
}

static const char *mode_name(const bench_opts *o, char *tmp, size_t n)
{
    if (o->rate > 0) {
        snprintf(tmp, n, "open loop at %.6g req/s", o->rate);
        return tmp;
    }
    return "closed loop (max throughput)";
}

void report_print(FILE *f, const bench_opts *o, const stats *s, double duration_s)
{
    char mode[64];
    double ops_s = duration_s > 0 ? (double)s->ops / duration_s : 0;
    fprintf(f, "meridian-bench: %s on %s table %s, %u connection%s, %u thread%s, %s\n",
            o->workload_name, o->endpoint, o->table, o->connections, o->connections == 1 ? "" : "s",
            o->threads, o->threads == 1 ? "" : "s", mode_name(o, mode, sizeof(mode)));
    fprintf(f, "  duration %.2f s (warmup %.3g s), seed %llu\n", duration_s, o->warmup_s,
            (unsigned long long)o->seed);
    fprintf(f, "  ops %llu  (%.1f ops/s)   errors %llu\n", (unsigned long long)s->ops, ops_s,
            (unsigned long long)s->errors);
    if (o->workload == WL_MIX) {
        fprintf(f, "  by operation:");
        for (int i = 0; i < OP_COUNT; i++)
            if (s->ops_by_op[i])
                fprintf(f, " %s %llu", op_names[i], (unsigned long long)s->ops_by_op[i]);
        fputc('\n', f);
    }
    fprintf(f, "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
            hist_percentile_ms(&s->lat, 50), hist_percentile_ms(&s->lat, 90),
            hist_percentile_ms(&s->lat, 99), hist_percentile_ms(&s->lat, 99.9),
            hist_max_ms(&s->lat));
    if (s->get_misses)
        fprintf(f, "  note: %llu GetItem answers had no Item (key not preloaded?)\n",
                (unsigned long long)s->get_misses);
    if (s->errors) {
        fprintf(f, "  errors by type:");
        for (size_t i = 0; i < s->by_type.n; i++)
            fprintf(f, " %s=%llu", s->by_type.e[i].name, (unsigned long long)s->by_type.e[i].count);
        if (s->by_type.other) fprintf(f, " other=%llu", (unsigned long long)s->by_type.other);
        fputc('\n', f);
        if (s->by_status.n) {
            fprintf(f, "  errors by HTTP status:");
            for (size_t i = 0; i < s->by_status.n; i++)
                fprintf(f, " %s=%llu", s->by_status.e[i].name,
                        (unsigned long long)s->by_status.e[i].count);
            fputc('\n', f);
        }
    }
    if (s->unsent)
        fprintf(f,
                "  WARNING: %llu scheduled requests were never sent (every connection busy): "
                "the endpoint did not sustain --rate\n",
                (unsigned long long)s->unsent);
    if (s->unfinished)
        fprintf(f, "  WARNING: %llu requests were still unanswered at the end\n",
                (unsigned long long)s->unfinished);
}

static cJSON *errtab_json(const errtab *t)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (!cJSON_AddNumberToObject(o, t->e[i].name, (double)t->e[i].count)) goto fail;
    if (t->other && !cJSON_AddNumberToObject(o, "other", (double)t->other)) goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

int report_json(const char *path, const bench_opts *o, const stats *s, double duration_s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *by_type = errtab_json(&s->by_type);
    cJSON *by_status = errtab_json(&s->by_status);
    cJSON *by_op = cJSON_CreateObject();
    char *text = NULL;
    int rc = -1;
    if (!j || !by_type || !by_status || !by_op) goto done;
    for (int i = 0; i < OP_COUNT; i++)
        if (s->ops_by_op[i] &&
            !cJSON_AddNumberToObject(by_op, op_names[i], (double)s->ops_by_op[i]))
            goto done;
    double ops_s = duration_s > 0 ? (double)s->ops / duration_s : 0;
    char seed[24];
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)o->seed);
    bool ok = cJSON_AddStringToObject(j, "workload", o->workload_name) &&
              cJSON_AddStringToObject(j, "endpoint", o->endpoint) &&
              cJSON_AddStringToObject(j, "table", o->table) &&
              cJSON_AddNumberToObject(j, "connections", o->connections) &&
              cJSON_AddNumberToObject(j, "threads", o->threads) &&
              (o->rate > 0 ? cJSON_AddNumberToObject(j, "rate", o->rate) != NULL
                           : cJSON_AddNullToObject(j, "rate") != NULL) &&
              cJSON_AddNumberToObject(j, "duration_s", duration_s) &&
              cJSON_AddNumberToObject(j, "warmup_s", o->warmup_s) &&
              cJSON_AddNumberToObject(j, "keys", (double)o->keys) &&
              cJSON_AddNumberToObject(j, "item_size", o->item_size) &&
              cJSON_AddRawToObject(j, "seed", seed) && /* exact, beyond 2^53 too */
              cJSON_AddNumberToObject(j, "ops", (double)s->ops) &&
              cJSON_AddNumberToObject(j, "ops_per_s", ops_s) &&
              cJSON_AddNumberToObject(j, "errors", (double)s->errors) &&
              cJSON_AddNumberToObject(j, "p50_ms", hist_percentile_ms(&s->lat, 50)) &&
              cJSON_AddNumberToObject(j, "p90_ms", hist_percentile_ms(&s->lat, 90)) &&
              cJSON_AddNumberToObject(j, "p99_ms", hist_percentile_ms(&s->lat, 99)) &&
              cJSON_AddNumberToObject(j, "p999_ms", hist_percentile_ms(&s->lat, 99.9)) &&
              cJSON_AddNumberToObject(j, "max_ms", hist_max_ms(&s->lat)) &&
              cJSON_AddNumberToObject(j, "get_misses", (double)s->get_misses) &&
              cJSON_AddNumberToObject(j, "unsent", (double)s->unsent) &&
              cJSON_AddNumberToObject(j, "unfinished", (double)s->unfinished);
    if (!ok) goto done;
    cJSON_AddItemToObject(j, "ops_by_type", by_op);
    by_op = NULL;
    cJSON_AddItemToObject(j, "errors_by_type", by_type);
    by_type = NULL;
    cJSON_AddItemToObject(j, "errors_by_status", by_status);
    by_status = NULL;
    text = cJSON_Print(j);
    if (!text) goto done;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "meridian-bench: cannot write %s: %s\n", path, strerror(errno));
        goto done;
    }
    bool written = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (fclose(f) != 0) written = false;
    if (!written) {
        fprintf(stderr, "meridian-bench: error writing %s\n", path);
        goto done;
    }
    rc = 0;
done:
    if (rc != 0 && !text)
        fprintf(stderr, "meridian-bench: out of memory building the JSON report\n");
    cJSON_free(text);
    cJSON_Delete(j);
    cJSON_Delete(by_type);
    cJSON_Delete(by_status);
    cJSON_Delete(by_op);
    return rc;
}
