/* repl.c - replication between regions: start and stop, the helpers the
 * other parts share, metrics and status (the parts: repl/internal.h). Peer
 * links: one sender thread per peer streaming this region's replication log
 * (and table back-fills) to it, and receiver threads applying what the
 * peers stream here. See docs/REPLICATION.md for the protocol.
 *
 * Sender state machine (one per peer, repl__sender_main):
 *   DISCONNECTED --connect+handshake--> STREAMING --I/O error/timeout--> DISCONNECTED
 * In STREAMING the sender keeps at most SEND_WINDOW batches unacknowledged; a
 * BATCH frame's payload is `u64 through | batch` where `through` is the log
 * position the receiver may record once the batch is applied. Back-fills are
 * interleaved between log batches and carry the current position unchanged,
 * so a broken back-fill is simply redone from the start after reconnecting
 * (its marker in meta is deleted only when the END batch is acknowledged).
 *
 * Receiver (one per inbound connection, receiver_main): handshake, then
 * apply each BATCH in order and answer ACK{through} once it is durable.
 * Applies from one source region are serialised by that source's apply_mu.
 *
 * Frontiers (tombstone collection): about once a second each sender sends
 * HEARTBEAT{position, safe_ts, frontier} once the log up to the watermark of
 * its safe point (rlog_safe_point) has been sent: a receiver that has
 * applied through `position` then holds every write of the source stamped at
 * or below safe_ts (its *claim* on that source). A region's applied frontier
 * is the least of its claims and its own safe point; `frontier` reports it to
 * the peers. The least of every region's frontier (the global frontier) minus
 * the grace period is the horizon below which tombstones are collected.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "item/codec.h"
#include "repl/internal.h"
#include "repl/wire.h"
#include "util/log.h"

uint64_t repl__now_ms(void)
{
    return hlc_wall_ms();
}

void repl__sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool repl_is_peer(const repl *r, const char *region)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->links[i].name, region) == 0) return true;
    return false;
}

source_state *repl__source_of(repl *r, const char *region)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->sources[i].name, region) == 0) return &r->sources[i];
    return NULL;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void repl_backfill_marker(buf *key, const char *peer, const uint8_t uid[TABLE_UID_LEN])
{
    char h[2 * TABLE_UID_LEN + 1];
    hex(h, uid, TABLE_UID_LEN);
    buf_puts(key, BACKFILL_PREFIX);
    buf_puts(key, peer);
    buf_putc(key, '/');
    buf_puts(key, h);
}

void repl_departed_record(store_batch *b, const uint8_t uid[TABLE_UID_LEN], uint64_t through,
                          const void *descriptor_json, size_t len)
{
    char h[2 * TABLE_UID_LEN + 1];
    hex(h, uid, TABLE_UID_LEN);
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    buf_puts(&k, DEPARTED_PREFIX);
    buf_puts(&k, h);
    buf_putc(&v, DEPARTED_FORMAT);
    buf_put_u64be(&v, through);
    buf_append(&v, descriptor_json, len);
    store_batch_put(b, STORE_CF_META, k.data, k.len, v.data, v.len);
    buf_free(&k);
    buf_free(&v);
}

/* Parses a departed record: the replica set it names (tmpl, free with
 * catalog_free_template) and the last seq of its writes. A record written
 * before the seq was recorded (plain JSON) counts as covering the whole log
 * as it is now. -1 if malformed. */
int repl__departed_parse(repl *r, const uint8_t *v, size_t len, table *tmpl, uint64_t *through)
{
    if (len > 9 && v[0] == DEPARTED_FORMAT) {
        *through = load_u64be(v + 1);
        return catalog_parse_descriptor((const char *)v + 9, len - 9, tmpl);
    }
    *through = rlog_high(&r->d->log);
    return catalog_parse_descriptor((const char *)v, len, tmpl);
}

/* For a table whose replica departed from this region: does `peer` still get
 * the writes made here before the departure? -1 (e set) if that cannot be
 * read: the caller must not guess (a "no" would drop the writes). */
int repl__departed_peer_replicates(repl *r, const uint8_t *uid, const char *peer, bool *yes, err *e)
{
    char h[2 * TABLE_UID_LEN + 1];
    hex(h, uid, TABLE_UID_LEN);
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    buf_puts(&k, DEPARTED_PREFIX);
    buf_puts(&k, h);
    *yes = false;
    int got = store_get(r->d->st, STORE_CF_META, k.data, k.len, &v, e);
    if (got == 1) {
        table tmpl;
        uint64_t through;
        if (repl__departed_parse(r, v.data, v.len, &tmpl, &through) == 0) {
            *yes = table_settings_replica(&tmpl.settings, peer) != NULL;
            catalog_free_template(&tmpl);
        } else {
            got = err_set(e, ERR_INTERNAL, "corrupt departed-table record %s", h);
        }
    }
    buf_free(&k);
    buf_free(&v);
    return got < 0 ? -1 : 0;
}

void repl_departures_lock(repl *r)
{
    if (r) pthread_mutex_lock(&r->departed_mu);
}

void repl_departures_unlock(repl *r)
{
    if (r) pthread_mutex_unlock(&r->departed_mu);
}

void repl_kick(repl *r)
{
    if (r) atomic_fetch_add(&r->kick_gen, 1);
}

/* ---------------------------------------------------------------- lifecycle */

static int listen_on(const char *host, int port, err *e)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return err_set(e, ERR_INTERNAL, "invalid peer-listen address %s", host);
    /* Non-blocking: accept_conn never waits for a connection that went away. */
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int err_no = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return err_set(e, ERR_INTERNAL, "cannot listen for peers on %s:%d: %s", host, port,
                       strerror(err_no));
    }
    freeaddrinfo(res);
    return fd;
}

repl *repl_start(db *d, const repl_config *cfg, err *e)
{
    repl *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->spare_fd = -1;
    r->d = d;
    snprintf(r->region, sizeof(r->region), "%s", cfg->region);
    r->key_len = cfg->key_len < sizeof(r->key) ? cfg->key_len : sizeof(r->key);
    r->retention_ms = cfg->retention_ms;
    r->retention_bytes = cfg->retention_bytes;
    r->grace_ms = cfg->tombstone_grace_ms;
    memcpy(r->key, cfg->key, r->key_len);
    r->n_peers = cfg->n_peers;
    r->links = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof(peer_link));
    r->sources = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof(source_state));
    if (!r->links || !r->sources) abort();
    pthread_mutex_init(&r->conn_mu, NULL);
    pthread_mutex_init(&r->departed_mu, NULL);
    for (size_t i = 0; i < cfg->n_peers; i++) {
        peer_link *l = &r->links[i];
        l->r = r;
        snprintf(l->name, sizeof(l->name), "%s", cfg->peers[i].name);
        snprintf(l->host, sizeof(l->host), "%s", cfg->peers[i].host);
        l->port = cfg->peers[i].port;
        atomic_init(&l->fd, -1);
        source_state *s = &r->sources[i];
        snprintf(s->name, sizeof(s->name), "%s", cfg->peers[i].name);
        pthread_mutex_init(&s->apply_mu, NULL);
        buf k, v;
        buf_init(&k);
        buf_init(&v);
        repl__claim_key(&k, s->name);
        err ce;
        if (store_get(d->st, STORE_CF_META, k.data, k.len, &v, &ce) == 1 && v.len == 8)
            atomic_store(&s->claim_ts, load_u64be(v.data));
        buf_free(&k);
        buf_free(&v);
    }
    r->listen_fd = listen_on(cfg->listen_host, cfg->listen_port, e);
    if (r->listen_fd < 0) {
        repl_stop(r);
        return NULL;
    }
    r->spare_fd = fcntl(r->listen_fd, F_DUPFD_CLOEXEC, 0); /* see refuse_no_descriptor */
    atomic_store(&r->running, true);
    if (pthread_create(&r->accept_thread, NULL, repl__accept_main, r) != 0) {
        atomic_store(&r->running, false);
        err_set(e, ERR_INTERNAL, "cannot start the replication listener");
        repl_stop(r);
        return NULL;
    }
    r->gc_started = pthread_create(&r->gc_thread, NULL, repl__gc_main, r) == 0;
    if (!r->gc_started) log_error("cannot start the background thread: logs and tombstones grow");
    for (size_t i = 0; i < r->n_peers; i++)
        r->links[i].started =
            pthread_create(&r->links[i].thread, NULL, repl__sender_main, &r->links[i]) == 0;
    return r;
}

void repl_stop(repl *r)
{
    if (!r) return;
    bool was_running = atomic_exchange(&r->running, false);
    if (was_running) {
        pthread_join(r->accept_thread, NULL);
        if (r->gc_started) pthread_join(r->gc_thread, NULL);
        for (size_t i = 0; i < r->n_peers; i++) {
            int fd = atomic_load(&r->links[i].fd);
            if (fd >= 0) shutdown(fd, SHUT_RDWR);
        }
        for (size_t i = 0; i < r->n_peers; i++)
            if (r->links[i].started) pthread_join(r->links[i].thread, NULL);
        repl__reap_conns(r, true);
    }
    if (r->listen_fd > 0) close(r->listen_fd);
    if (r->spare_fd >= 0) close(r->spare_fd);
    for (size_t i = 0; i < r->n_peers; i++)
        pthread_mutex_destroy(&r->sources[i].apply_mu);
    pthread_mutex_destroy(&r->conn_mu);
    pthread_mutex_destroy(&r->departed_mu);
    free(r->links);
    free(r->sources);
    memset(r->key, 0, sizeof(r->key));
    free(r);
}

/* ------------------------------------------------------------ observability */

/* Log positions a peer still needs to acknowledge: those after its
 * acknowledged position up to the watermark, but none past what the sender
 * has read and sent when everything it sent is acknowledged (the positions
 * it read past were holes or not for this peer: failed writes at the top of
 * the log leave nothing pending). */
static uint64_t link_pending(const peer_link *l, uint64_t stable)
{
    uint64_t acked = atomic_load(&l->acked), sent = atomic_load(&l->sent);
    uint64_t scanned = atomic_load(&l->scanned);
    if (atomic_load(&l->up) && scanned >= stable && sent <= acked) return 0;
    return stable > acked ? stable - acked : 0;
}

void repl_render_metrics(repl *r, buf *out)
{
    if (!r) return;
    uint64_t stable = rlog_stable(&r->d->log);
    buf_puts(out, "# HELP meridian_replication_link_up 1 while the link to a peer streams.\n"
                  "# TYPE meridian_replication_link_up gauge\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out, "meridian_replication_link_up{source=\"%s\",peer=\"%s\"} %d\n", r->region,
                   r->links[i].name, atomic_load(&r->links[i].up));
    /* What each peer still owes an acknowledgement for, in constant time
     * whatever the length of the log (a scrape no longer walks it): entries
     * are the log positions after the peer's acknowledged one up to the
     * watermark; bytes are an estimate: RocksDB's of that key range of the
     * log in SST files (store_approximate_bytes), plus the part still in the
     * memtables, which hold the newest entries: as many of those as are
     * pending, at the average size of the newest (at most 32, read). */
    uint64_t mem_entries = store_memtable_entries(r->d->st, STORE_CF_RLOG), newest_avg = 0;
    uint64_t min_acked = stable;
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t a = atomic_load(&r->links[i].acked);
        if (a < min_acked) min_acked = a;
    }
    if (mem_entries && min_acked < stable) {
        /* The newest pending positions, at most 32 of them: the walk is
         * bounded by the key range, whatever was deleted in it. */
        uint8_t lo[8], hi[8];
        store_u64be(lo, stable - min_acked > 32 ? stable - 31 : min_acked + 1);
        store_u64be(hi, stable + 1);
        store_iter *it = store_iter_new(r->d->st, STORE_CF_RLOG, lo, 8, hi, 8);
        uint64_t sum = 0, n = 0;
        for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
            size_t kl, vl;
            store_iter_key(it, &kl);
            store_iter_value(it, &vl);
            if (kl != 8) continue;
            sum += kl + vl;
            n++;
        }
        store_iter_free(it);
        newest_avg = n ? sum / n : 0;
    }
    buf_puts(out, "# HELP meridian_replication_pending_entries Replication log positions not yet "
                  "acknowledged by a peer (the log watermark minus the peer's acknowledged "
                  "position; 0 once the sender has read to the watermark and the peer has "
                  "acknowledged all it was sent).\n"
                  "# TYPE meridian_replication_pending_entries gauge\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out, "meridian_replication_pending_entries{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name,
                   (unsigned long long)link_pending(&r->links[i], stable));
    buf_puts(out, "# HELP meridian_replication_pending_bytes Approximate bytes of the log "
                  "entries not yet acknowledged by a peer (estimated from RocksDB's figures, "
                  "without reading the log).\n"
                  "# TYPE meridian_replication_pending_bytes gauge\n");
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t acked = atomic_load(&r->links[i].acked), bytes = 0;
        if (acked < stable) {
            uint8_t lo[8], hi[8];
            store_u64be(lo, acked + 1);
            store_u64be(hi, stable + 1);
            bytes = store_approximate_bytes(r->d->st, STORE_CF_RLOG, lo, 8, hi, 8);
            uint64_t in_mem = stable - acked < mem_entries ? stable - acked : mem_entries;
            bytes += in_mem * newest_avg;
        }
        buf_printf(out, "meridian_replication_pending_bytes{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name, (unsigned long long)bytes);
    }
    buf_puts(out, "# HELP meridian_replication_latency_seconds Commit in the source region to "
                  "apply here.\n"
                  "# TYPE meridian_replication_latency_seconds histogram\n");
    for (size_t i = 0; i < r->n_peers; i++) {
        source_state *s = &r->sources[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b <= N_LAT; b++) {
            cum += atomic_load(&s->lat_bucket[b]);
            if (b < N_LAT)
                buf_printf(out,
                           "meridian_replication_latency_seconds_bucket{source=\"%s\","
                           "destination=\"%s\",le=\"%g\"} %llu\n",
                           s->name, r->region, lat_le[b], cum);
            else
                buf_printf(out,
                           "meridian_replication_latency_seconds_bucket{source=\"%s\","
                           "destination=\"%s\",le=\"+Inf\"} %llu\n",
                           s->name, r->region, cum);
        }
        buf_printf(out,
                   "meridian_replication_latency_seconds_sum{source=\"%s\",destination=\"%s\"} "
                   "%.6f\n",
                   s->name, r->region, (double)atomic_load(&s->lat_sum_us) / 1e6);
        buf_printf(out,
                   "meridian_replication_latency_seconds_count{source=\"%s\",destination=\"%s\"} "
                   "%llu\n",
                   s->name, r->region, cum);
    }
    buf_puts(out, "# HELP meridian_replication_last_applied_timestamp_seconds Origin commit time "
                  "of the newest write applied from a source.\n"
                  "# TYPE meridian_replication_last_applied_timestamp_seconds gauge\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out,
                   "meridian_replication_last_applied_timestamp_seconds{source=\"%s\","
                   "destination=\"%s\"} %.3f\n",
                   r->sources[i].name, r->region,
                   (double)atomic_load(&r->sources[i].last_commit_ms) / 1000.0);
    buf_printf(out,
               "# HELP meridian_replication_applied_frontier_ms Every write stamped at or before "
               "this time (ms) is applied in this region (0: not known yet).\n"
               "# TYPE meridian_replication_applied_frontier_ms gauge\n"
               "meridian_replication_applied_frontier_ms %llu\n"
               "# HELP meridian_replication_global_frontier_ms The same, known to hold in every "
               "region; tombstones older than this minus the grace period are collected.\n"
               "# TYPE meridian_replication_global_frontier_ms gauge\n"
               "meridian_replication_global_frontier_ms %llu\n"
               "# HELP meridian_tombstones_collected_total Tombstones deleted once every region "
               "had them.\n"
               "# TYPE meridian_tombstones_collected_total counter\n"
               "meridian_tombstones_collected_total %llu\n",
               (unsigned long long)HLC_MS(atomic_load(&r->applied_frontier)),
               (unsigned long long)HLC_MS(atomic_load(&r->global_frontier)),
               (unsigned long long)atomic_load(&r->tombstones_collected));
    buf_printf(out,
               "# HELP meridian_replication_clock_skew_violations_total Received timestamps too "
               "far ahead of the local clock.\n"
               "# TYPE meridian_replication_clock_skew_violations_total counter\n"
               "meridian_replication_clock_skew_violations_total %llu\n",
               (unsigned long long)atomic_load(&r->d->skew_violations));
    buf_printf(out,
               "# HELP meridian_clock_skew_overwrites_total Local writes stamped just above a "
               "stored version from a clock beyond the skew bound (the clock itself stays "
               "within it).\n"
               "# TYPE meridian_clock_skew_overwrites_total counter\n"
               "meridian_clock_skew_overwrites_total %llu\n",
               (unsigned long long)atomic_load(&r->d->skew_overwrites));
    buf_printf(out,
               "# HELP meridian_replication_log_trimmed_seq Every log entry up to this seq has "
               "been deleted (applied by every peer, or out of retention).\n"
               "# TYPE meridian_replication_log_trimmed_seq gauge\n"
               "meridian_replication_log_trimmed_seq %llu\n"
               "# HELP meridian_replication_log_high_seq The newest log seq used.\n"
               "# TYPE meridian_replication_log_high_seq gauge\n"
               "meridian_replication_log_high_seq %llu\n",
               (unsigned long long)db_log_trimmed(r->d), (unsigned long long)rlog_high(&r->d->log));
    static const char *const gc_help[][2] = {{"meridian_background_runs_total", "counter"},
                                             {"meridian_background_failures_total", "counter"},
                                             {"meridian_background_seconds_total", "counter"},
                                             {"meridian_background_last_run_seconds", "gauge"},
                                             {"meridian_background_last_done_ms", "gauge"}};
    static const char *const gc_text[] = {
        ("Runs of a background task (task: log = log collection and retention, tombstones = "
         "tombstone collection)."),
        "Runs of a background task that failed (logged, retried at its next run).",
        "Time spent in a background task.", "Duration of the task's last run.",
        "Wall clock (ms) when the task last finished a run."};
    for (size_t m = 0; m < 5; m++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", gc_help[m][0], gc_text[m], gc_help[m][0],
                   gc_help[m][1]);
        for (int t = 0; t < N_GC_TASKS; t++) {
            const gc_task *g = &r->gc[t];
            if (m < 2)
                buf_printf(out, "%s{task=\"%s\"} %llu\n", gc_help[m][0], gc_task_names[t],
                           (unsigned long long)atomic_load(m == 0 ? &g->runs : &g->failures));
            else if (m < 4)
                buf_printf(out, "%s{task=\"%s\"} %.6f\n", gc_help[m][0], gc_task_names[t],
                           (double)atomic_load(m == 2 ? &g->busy_us : &g->last_us) / 1e6);
            else
                buf_printf(out, "%s{task=\"%s\"} %llu\n", gc_help[m][0], gc_task_names[t],
                           (unsigned long long)atomic_load(&g->last_done_ms));
        }
    }
    buf_printf(out,
               "# HELP meridian_replication_descriptors_refused_total Table descriptors from "
               "other regions refused: their replica set names more regions than fit.\n"
               "# TYPE meridian_replication_descriptors_refused_total counter\n"
               "meridian_replication_descriptors_refused_total %llu\n",
               (unsigned long long)atomic_load(&r->descriptors_refused));
    buf_puts(out, "# HELP meridian_replication_reseeds_total Peers re-seeded from snapshots "
                  "because the log no longer held what they needed.\n"
                  "# TYPE meridian_replication_reseeds_total counter\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out, "meridian_replication_reseeds_total{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name,
                   (unsigned long long)atomic_load(&r->links[i].reseeds));
    buf_puts(out, "# HELP meridian_replication_position_ahead_total A peer reported this "
                  "region's log applied beyond its end (inconsistent; repaired by re-seeding).\n"
                  "# TYPE meridian_replication_position_ahead_total counter\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out,
                   "meridian_replication_position_ahead_total{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name,
                   (unsigned long long)atomic_load(&r->links[i].positions_ahead));
    buf_puts(out, "# HELP meridian_replication_refused_total Inbound replication connections "
                  "refused or closed before authentication, or after it for a protocol "
                  "violation.\n"
                  "# TYPE meridian_replication_refused_total counter\n");
    for (size_t i = 0; i < N_REFUSE; i++)
        buf_printf(out, "meridian_replication_refused_total{reason=\"%s\"} %llu\n", refuse_names[i],
                   (unsigned long long)atomic_load(&r->refused[i]));
}

int repl_backfill_percent(repl *r, const char *peer)
{
    if (!r) return -1;
    for (size_t i = 0; i < r->n_peers; i++) {
        peer_link *l = &r->links[i];
        if (strcmp(l->name, peer) != 0) continue;
        uint64_t total = atomic_load(&l->bf_total), sent = atomic_load(&l->bf_sent);
        if (total == 0) return 0;
        return sent >= total ? 99 : (int)(sent * 100 / total);
    }
    return -1;
}

void repl_status_json(repl *r, buf *out)
{
    /* log_first: the oldest seq the log may still hold (everything before
     * it was trimmed); no entry is read. */
    uint64_t stable = r ? rlog_stable(&r->d->log) : 0;
    uint64_t first = r ? db_log_trimmed(r->d) + 1 : 0;
    /* log_high: the newest seq used; log_last: the newest entry on disk (one
     * seek). Seqs between them are holes (reservations whose batch failed). */
    uint64_t high = r ? rlog_high(&r->d->log) : 0, last = 0;
    if (r) {
        store_iter *it = store_iter_new(r->d->st, STORE_CF_RLOG, NULL, 0, NULL, 0);
        store_iter_last(it);
        size_t kl;
        const uint8_t *k = store_iter_valid(it) ? store_iter_key(it, &kl) : NULL;
        if (k && kl == 8) last = load_u64be(k);
        store_iter_free(it);
    }
    buf_printf(out,
               "{\"region\":\"%s\",\"log_position\":%llu,\"log_first\":%llu,"
               "\"log_high\":%llu,\"log_last\":%llu,"
               "\"applied_frontier_ms\":%llu,\"global_frontier_ms\":%llu,\"links\":[",
               r ? r->region : "", (unsigned long long)stable, (unsigned long long)first,
               (unsigned long long)high, (unsigned long long)last,
               r ? (unsigned long long)HLC_MS(atomic_load(&r->applied_frontier)) : 0ull,
               r ? (unsigned long long)HLC_MS(atomic_load(&r->global_frontier)) : 0ull);
    for (size_t i = 0; r && i < r->n_peers; i++) {
        peer_link *l = &r->links[i];
        source_state *s = &r->sources[i];
        uint64_t acked = atomic_load(&l->acked);
        buf_printf(out,
                   "%s{\"peer\":\"%s\",\"up\":%s,\"acked\":%llu,\"pending\":%llu,"
                   "\"backfill_sent\":%llu,\"backfill_total\":%llu,\"last_applied_commit_ms\":"
                   "%llu}",
                   i ? "," : "", l->name, atomic_load(&l->up) ? "true" : "false",
                   (unsigned long long)acked, (unsigned long long)link_pending(l, stable),
                   (unsigned long long)atomic_load(&l->bf_sent),
                   (unsigned long long)atomic_load(&l->bf_total),
                   (unsigned long long)atomic_load(&s->last_commit_ms));
    }
    buf_puts(out, "]}");
}
