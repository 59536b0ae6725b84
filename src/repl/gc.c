/* gc.c - background work of replication, on its own thread
 * (repl__gc_main): trimming the log of what every peer has applied and of
 * what is out of retention (held for departed tables' writes), and
 * collecting tombstones below the global frontier. Each task reads a
 * bounded amount per run, and its runs, failures and time are metrics. */
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

/* Retention may not cut the writes of a departed table (this region's
 * replica is gone, so no back-fill from here can carry them) that a region
 * replicating it has not applied: returns the largest seq <= cut that keeps
 * them, and deletes the departed records every such region has fully
 * applied. Reads the departed records only (one per departed table). */
static uint64_t departed_hold(repl *r, uint64_t cut)
{
    const char *pre = DEPARTED_PREFIX;
    char hi[] = DEPARTED_PREFIX;
    hi[sizeof(hi) - 2]++;
    store_iter *it = store_iter_new(r->d->st, STORE_CF_META, pre, strlen(pre), hi, strlen(hi));
    store_batch *done = store_batch_new(r->d->st);
    uint64_t hold = cut;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        table tmpl;
        uint64_t through;
        if (repl__departed_parse(r, v, vl, &tmpl, &through) < 0) {
            hold = 0; /* cannot tell who needs what: keep everything */
            continue;
        }
        bool pending = false;
        for (size_t i = 0; i < r->n_peers; i++) {
            if (!table_settings_replica(&tmpl.settings, r->links[i].name)) continue;
            uint64_t acked = atomic_load(&r->links[i].acked);
            if (!atomic_load(&r->links[i].acked_known)) acked = 0;
            if (acked < through) {
                pending = true;
                if (acked < hold) hold = acked;
            }
        }
        catalog_free_template(&tmpl);
        if (!pending) store_batch_delete(done, STORE_CF_META, k, kl);
    }
    err e;
    if (store_iter_status(it, &e) < 0) hold = 0;
    if (store_batch_count(done) > 0 && store_write(r->d->st, done, &e) < 0)
        log_warn("cannot delete departed-table records: %s", e.msg);
    store_batch_free(done);
    store_iter_free(it);
    return hold;
}

/* Deletes log entries every peer has applied, and entries out of retention
 * (a peer that has not applied those is re-seeded by back-fill when it
 * returns, see reseed_if_needed). Until each peer has told us its position
 * since this process started, only retention applies. The trim records its
 * mark in the same batch (db_log_trim), so the log never reuses a seq. */
static int collect_log(repl *r)
{
    if (r->n_peers == 0) return 0;
    uint64_t stable = rlog_stable(&r->d->log);
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < r->n_peers && min; i++) {
        if (!atomic_load(&r->links[i].acked_known)) min = 0;
        uint64_t a = atomic_load(&r->links[i].acked);
        if (a < min) min = a;
    }
    uint64_t cut = 0;
    err e;
    if (db_log_retention_cut(r->d, stable, r->retention_ms, r->retention_bytes, repl__now_ms(),
                             &cut, &e) < 0) {
        if (log_every(&r->gc_err_logged_ms, GC_ERR_LOG_MS))
            log_warn("replication log retention: %s", e.msg);
        return -1;
    }
    /* No departure commits between reading the departed records and the
     * trim (repl_departures_lock), so none of its writes can be cut unseen. */
    repl_departures_lock(r);
    uint64_t hold = departed_hold(r, cut); /* also forgets the records no longer needed */
    if (cut > min) {
        if (hold < cut) {
            if (log_every(&r->departed_logged_ms, GC_ERR_LOG_MS))
                log_warn("replication log retention held at %llu (not %llu): writes of a "
                         "departed table are not yet in every region that replicates it",
                         (unsigned long long)hold, (unsigned long long)cut);
            cut = hold > min ? hold : min;
        }
    }
    if (cut > min) {
        log_warn("replication log entries up to %llu are out of retention; peers that have not "
                 "applied them will be re-seeded from a snapshot",
                 (unsigned long long)cut);
        min = cut;
    }
    if (min > stable) min = stable; /* a peer's position is never past the watermark */
    int rc = min <= db_log_trimmed(r->d) ? 0 : db_log_trim(r->d, min, &e);
    repl_departures_unlock(r);
    if (rc < 0 && log_every(&r->gc_err_logged_ms, GC_ERR_LOG_MS))
        log_warn("replication log collection failed: %s", e.msg);
    return rc;
}

/* The tables with a back-fill still owed to some peer (markers in meta). */
typedef struct owed_set {
    uint8_t (*uids)[TABLE_UID_LEN];
    size_t n, cap;
} owed_set;

/* -1 if the markers cannot be read: then nothing may be collected (a table
 * missing from the set would look settled). */
static int load_owed(repl *r, owed_set *o, err *e)
{
    o->n = 0;
    const char *pre = BACKFILL_PREFIX;
    char hi[] = BACKFILL_PREFIX;
    hi[sizeof(hi) - 2]++; /* the prefix's successor: "backfill0" */
    store_iter *it = store_iter_new(r->d->st, STORE_CF_META, pre, strlen(pre), hi, strlen(hi));
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl;
        const char *k = (const char *)store_iter_key(it, &kl);
        if (kl < 2 * TABLE_UID_LEN) continue;
        uint8_t uid[TABLE_UID_LEN];
        bool ok = true;
        for (size_t i = 0; i < TABLE_UID_LEN && ok; i++) {
            unsigned v;
            char h[3] = {k[kl - 2 * TABLE_UID_LEN + 2 * i], k[kl - 2 * TABLE_UID_LEN + 2 * i + 1],
                         0};
            ok = sscanf(h, "%2x", &v) == 1;
            uid[i] = (uint8_t)v;
        }
        if (!ok) continue;
        if (o->n == o->cap) {
            o->cap = o->cap ? 2 * o->cap : 16;
            o->uids = realloc(o->uids, o->cap * sizeof(*o->uids));
            if (!o->uids) abort();
        }
        memcpy(o->uids[o->n++], uid, TABLE_UID_LEN);
    }
    int rc = store_iter_status(it, e);
    store_iter_free(it);
    return rc;
}

/* Tombstones of a table are collected only while its replica set is settled:
 * every replica ACTIVE (this one included) and no back-fill of it owed by
 * this region, so every copy a back-fill may still carry is newer than what
 * is collected (docs/REPLICATION.md). */
static bool table_collectable(void *ctx, table *t)
{
    owed_set *o = ctx;
    for (size_t i = 0; i < o->n; i++)
        if (memcmp(o->uids[i], t->uid, TABLE_UID_LEN) == 0) return false;
    pthread_mutex_lock(&t->settings_mu);
    bool ok = t->settings.n_replicas > 0;
    for (size_t i = 0; i < t->settings.n_replicas; i++) {
        const table_replica *q = &t->settings.replicas[i];
        if (!q->removed && q->status != REPLICA_ACTIVE) ok = false;
    }
    pthread_mutex_unlock(&t->settings_mu);
    return ok;
}

/* Computes the frontiers and collects the tombstones below the horizon: the
 * global frontier (every region has applied every write stamped up to it)
 * minus the grace period. */
static int collect_tombstones(repl *r, owed_set *o)
{
    uint64_t f = repl__applied_frontier(r), g = f;
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t pf = atomic_load(&r->sources[i].frontier);
        if (pf < g) g = pf;
    }
    atomic_store(&r->applied_frontier, f);
    atomic_store(&r->global_frontier, g);
    uint64_t grace = r->grace_ms << HLC_LOGICAL_BITS;
    if (g <= grace) return 0;
    uint64_t n = 0;
    err e;
    if (load_owed(r, o, &e) < 0 || db_collect_tombstones(r->d, g - grace, table_collectable, o,
                                                         TOMB_SCAN_PER_TABLE, &n, &e) < 0) {
        if (log_every(&r->gc_err_logged_ms, GC_ERR_LOG_MS))
            log_warn("tombstone collection failed: %s", e.msg);
        return -1;
    }
    if (n) {
        atomic_fetch_add(&r->tombstones_collected, n);
        log_debug("collected %llu tombstones", (unsigned long long)n);
    }
    return 0;
}

/* The background thread: log collection and retention, tombstone
 * collection. It never blocks the peer listener, and a slow task only delays
 * the others (each task reads a bounded amount per run: segment records, one
 * seek per table, TOMB_SCAN_PER_TABLE entries per table). */
void *repl__gc_main(void *arg)
{
    repl *r = arg;
    uint64_t last[N_GC_TASKS];
    for (int t = 0; t < N_GC_TASKS; t++)
        last[t] = hlc_mono_ms();
    owed_set owed = {0};
    while (atomic_load(&r->running)) {
        for (int t = 0; t < N_GC_TASKS && atomic_load(&r->running); t++) {
            if (hlc_mono_ms() - last[t] < gc_task_period_ms[t]) continue;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int rc = t == GC_LOG ? collect_log(r) : collect_tombstones(r, &owed);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            uint64_t us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u +
                          (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000);
            gc_task *g = &r->gc[t];
            atomic_fetch_add(&g->runs, 1);
            if (rc < 0) atomic_fetch_add(&g->failures, 1);
            atomic_fetch_add(&g->busy_us, us);
            atomic_store(&g->last_us, us);
            atomic_store(&g->last_done_ms, repl__now_ms());
            last[t] = hlc_mono_ms();
        }
        repl__sleep_ms(100);
    }
    free(owed.uids);
    return NULL;
}
