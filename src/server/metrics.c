/* metrics.c - Prometheus text exposition of request counters, latency
 * histograms and storage gauges (see metrics.h for the names). */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/dispatch.h"
#include "api/ops.h"
#include "clock/hlc.h"
#include "repl/repl.h"

static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                   0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define N_BUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))
#define MAX_OPS   32
static const char *outcome_names[3] = {"success", "client_error", "server_error"};

typedef struct op_stats {
    atomic_uint_fast64_t count[3];
    atomic_uint_fast64_t bucket[N_BUCKETS + 1]; /* last: +Inf */
    atomic_uint_fast64_t sum_us;
} op_stats;

struct repl;

struct metrics {
    char region[128];
    uint64_t start_ms;
    op_stats ops[MAX_OPS + 1]; /* last slot: unknown operation */
    struct repl *repl;
};

metrics *metrics_new(const char *region)
{
    metrics *m = calloc(1, sizeof(*m));
    if (!m) abort();
    snprintf(m->region, sizeof(m->region), "%s", region);
    m->start_ms = hlc_wall_ms();
    return m;
}

void metrics_free(metrics *m)
{
    free(m);
}

void metrics_set_repl(metrics *m, struct repl *r)
{
    m->repl = r;
}

void metrics_observe_request(metrics *m, int op, int outcome, double seconds)
{
    size_t slot = (op >= 0 && op < MAX_OPS && (size_t)op < api_op_count()) ? (size_t)op : MAX_OPS;
    op_stats *s = &m->ops[slot];
    if (outcome < 0 || outcome > 2) outcome = 2;
    atomic_fetch_add_explicit(&s->count[outcome], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < N_BUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void metrics_render(metrics *m, db *d, buf *out)
{
    size_t nops = api_op_count();
    if (nops > MAX_OPS) nops = MAX_OPS;
    buf_puts(out, "# HELP meridian_requests_total API requests by operation and outcome.\n"
                  "# TYPE meridian_requests_total counter\n");
    for (size_t i = 0; i <= nops; i++) {
        size_t slot = i < nops ? i : MAX_OPS;
        const char *name = i < nops ? api_op_name(i) : "Unknown";
        for (int o = 0; o < 3; o++)
            buf_printf(out, "meridian_requests_total{operation=\"%s\",outcome=\"%s\"} %llu\n", name,
                       outcome_names[o],
                       (unsigned long long)atomic_load_explicit(&m->ops[slot].count[o],
                                                                memory_order_relaxed));
    }
    buf_puts(out, "# HELP meridian_request_duration_seconds API request latency.\n"
                  "# TYPE meridian_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= nops; i++) {
        size_t slot = i < nops ? i : MAX_OPS;
        const char *name = i < nops ? api_op_name(i) : "Unknown";
        op_stats *s = &m->ops[slot];
        unsigned long long cum = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++) {
            cum += atomic_load_explicit(&s->bucket[b], memory_order_relaxed);
            if (b < N_BUCKETS)
                buf_printf(out,
                           "meridian_request_duration_seconds_bucket{operation=\"%s\",le=\"%g\"} "
                           "%llu\n",
                           name, bucket_le[b], cum);
            else
                buf_printf(out,
                           "meridian_request_duration_seconds_bucket{operation=\"%s\",le=\"+Inf\"} "
                           "%llu\n",
                           name, cum);
        }
        buf_printf(out, "meridian_request_duration_seconds_sum{operation=\"%s\"} %.6f\n", name,
                   (double)atomic_load_explicit(&s->sum_us, memory_order_relaxed) / 1e6);
        buf_printf(out, "meridian_request_duration_seconds_count{operation=\"%s\"} %llu\n", name,
                   cum);
    }
    int64_t items = 0, bytes = 0;
    catalog_totals(d->cat, &items, &bytes);
    buf_printf(out,
               "# HELP meridian_items_stored Items stored in all tables of this region.\n"
               "# TYPE meridian_items_stored gauge\nmeridian_items_stored %lld\n"
               "# HELP meridian_bytes_stored Bytes of item records (keys and values) stored.\n"
               "# TYPE meridian_bytes_stored gauge\nmeridian_bytes_stored %lld\n",
               (long long)(items < 0 ? 0 : items), (long long)(bytes < 0 ? 0 : bytes));
    buf_printf(out,
               "# HELP meridian_disk_bytes Size of the region's SST files.\n"
               "# TYPE meridian_disk_bytes gauge\nmeridian_disk_bytes %llu\n",
               (unsigned long long)store_disk_bytes(d->st));
    uint64_t werr;
    bool failing, full;
    store_write_health(d->st, &werr, &failing, &full);
    buf_printf(out,
               "# HELP meridian_storage_write_errors_total Durable writes the storage refused "
               "(e.g. a full disk).\n"
               "# TYPE meridian_storage_write_errors_total counter\n"
               "meridian_storage_write_errors_total %llu\n"
               "# HELP meridian_disk_full 1 while writes fail because the disk is full.\n"
               "# TYPE meridian_disk_full gauge\nmeridian_disk_full %d\n",
               (unsigned long long)werr, failing && full ? 1 : 0);
    table **ts;
    size_t nt = catalog_all(d->cat, &ts);
    buf_puts(out, "# HELP meridian_replication_conflicts_total Concurrent writes that lost to "
                  "another region's write here.\n"
                  "# TYPE meridian_replication_conflicts_total counter\n");
    for (size_t i = 0; i < nt; i++)
        buf_printf(out, "meridian_replication_conflicts_total{account=\"%s\",table=\"%s\"} %llu\n",
                   ts[i]->account, ts[i]->name, (unsigned long long)atomic_load(&ts[i]->conflicts));
    buf_puts(out, "# HELP meridian_tombstones Deletes in a global table kept until every region "
                  "has them (plus the grace period).\n"
                  "# TYPE meridian_tombstones gauge\n");
    for (size_t i = 0; i < nt; i++) {
        int64_t n = atomic_load(&ts[i]->tombstones);
        buf_printf(out, "meridian_tombstones{account=\"%s\",table=\"%s\"} %lld\n", ts[i]->account,
                   ts[i]->name, (long long)(n < 0 ? 0 : n));
    }
    catalog_release_all(ts, nt);
    query_render_metrics(out);
    repl_render_metrics(m->repl, out);
    buf_printf(out,
               "# HELP meridian_up 1 while the region serves requests.\n"
               "# TYPE meridian_up gauge\nmeridian_up{region=\"%s\"} 1\n"
               "# HELP meridian_start_time_seconds Start time of the process.\n"
               "# TYPE meridian_start_time_seconds gauge\nmeridian_start_time_seconds %.3f\n",
               m->region, (double)m->start_ms / 1000.0);
}
