/* metrics.h - Prometheus metrics of one region (served at GET /metrics, an
 * operator endpoint behind the admin token or on the admin listener only:
 * server/http.h).
 *
 * Names (a contract: dashboards and tests read them):
 *   meridian_requests_total{operation,outcome}        counter; outcome is
 *       success | client_error | server_error
 *   meridian_request_duration_seconds{operation}      histogram
 *   meridian_items_stored, meridian_bytes_stored      gauges (all tables)
 *   meridian_disk_bytes                               gauge (SST files)
 *   meridian_up, meridian_start_time_seconds          gauges
 *   meridian_storage_write_errors_total, meridian_disk_full  counter, gauge
 *   meridian_http_connections, meridian_http_header_timeouts_total
 *                                                     gauge, counter (server/http.c)
 *   meridian_replication_conflicts_total{account,table} counter
 *   meridian_tombstones_skipped_total                counter (api/ops_query.c)
 *   meridian_replication_* per peer                   see repl/repl.c (pending_entries:
 *       log positions not yet acknowledged; pending_bytes: an estimate)
 * Updates are lock-free atomic increments; rendering reads them relaxed.
 */
#ifndef MERIDIAN_METRICS_H
#define MERIDIAN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/buf.h"

typedef struct metrics metrics;

metrics *metrics_new(const char *region);
void metrics_free(metrics *m);
/* op: dispatcher index (api_op_name) or -1 for requests that named no known
 * operation; outcome 0/1/2 as in api_response. */
void metrics_observe_request(metrics *m, int op, int outcome, double seconds);
struct repl;
/* Replication metrics (and per-table conflicts) are rendered from r too. */
void metrics_set_repl(metrics *m, struct repl *r);
void metrics_render(metrics *m, db *d, buf *out);

#endif
