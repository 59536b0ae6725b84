/* db.c - versioned item reads and the single write path (see db.h). */
#include "db/db.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/codec.h"
#include "item/json.h"
#include "repl/wire.h"
#include "util/log.h"

#define RECORD_FORMAT 1

static void record_header(buf *out, uint64_t ts, const char *origin, bool tombstone)
{
    size_t ol = strlen(origin);
    if (ol > 255) ol = 255;
    buf_putc(out, RECORD_FORMAT);
    buf_putc(out, tombstone ? RECORD_FLAG_TOMBSTONE : 0);
    buf_put_u64be(out, ts);
    buf_putc(out, (uint8_t)ol);
    buf_append(out, origin, ol);
}

void record_encode(buf *out, uint64_t ts, const char *origin, bool tombstone, const mv_value *item)
{
    record_header(out, ts, origin, tombstone);
    if (!tombstone) item_encode(out, item);
}

size_t record_header_len(const uint8_t *p, size_t len)
{
    return len >= 11 ? 11 + (size_t)p[10] : len;
}

/* The version and tombstone flag of a record; the item too if want_item. */
static int record_decode_ex(arena *a, const uint8_t *p, size_t len, bool want_item,
                            item_record *out)
{
    if (len < 11 || p[0] != RECORD_FORMAT) return -1;
    size_t ol = p[10];
    if (len < 11 + ol) return -1;
    out->tombstone = (p[1] & RECORD_FLAG_TOMBSTONE) != 0;
    out->ts = load_u64be(p + 2);
    out->origin = arena_memdup(a, p + 11, ol);
    out->item = NULL;
    if (out->tombstone) return len == 11 + ol ? 0 : -1;
    return want_item ? item_decode(a, p + 11 + ol, len - 11 - ol, &out->item) : 0;
}

int record_decode(arena *a, const uint8_t *p, size_t len, item_record *out)
{
    return record_decode_ex(a, p, len, true, out);
}

static int cmp_table_id(const void *a, const void *b)
{
    const table *x = *(table *const *)a, *y = *(table *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

#define CLOCK_BOUND_KEY     "clock/bound"
#define CLOCK_BOUND_STEP_MS 1000 /* how far ahead the persisted bound is set */

/* Reads the persisted clock bound and starts the clock at it. */
static int load_clock_bound(db *d, err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(d->st, STORE_CF_META, CLOCK_BOUND_KEY, strlen(CLOCK_BOUND_KEY), &v, e);
    if (r == 1 && v.len == 8) {
        uint64_t bound = load_u64be(v.data);
        atomic_store(&d->clock_bound_ms, bound);
        hlc_observe(&d->clock, bound << HLC_LOGICAL_BITS);
    }
    buf_free(&v);
    return r < 0 ? -1 : 0;
}

/* Writes a u64 mark in meta, durably, on its own. */
static int write_mark(db *d, const char *key, uint64_t value, err *e)
{
    uint8_t v[8];
    store_u64be(v, value);
    store_batch *b = store_batch_new(d->st);
    store_batch_put(b, STORE_CF_META, key, strlen(key), v, 8);
    int rc = store_write(d->st, b, e);
    store_batch_free(b);
    return rc;
}

/* Makes sure the persisted bound is above ms before a version with that
 * physical time is committed: one synchronous meta write per
 * CLOCK_BOUND_STEP_MS of clock progress. */
static int ensure_clock_bound(db *d, uint64_t ms, err *e)
{
    if (ms < atomic_load(&d->clock_bound_ms)) return 0;
    pthread_mutex_lock(&d->clock_mu);
    int rc = 0;
    if (ms >= atomic_load(&d->clock_bound_ms)) {
        uint64_t bound = ms + CLOCK_BOUND_STEP_MS;
        rc = write_mark(d, CLOCK_BOUND_KEY, bound, e);
        if (rc == 0) atomic_store(&d->clock_bound_ms, bound);
    }
    pthread_mutex_unlock(&d->clock_mu);
    return rc;
}

/* ---- persisted statistics and log segments (column family counters) ----
 *
 * Table statistics: "tbl/" u64 BE table id -> [SUM items, SUM bytes, SUM
 * tombstones]. Every batch that changes a table's items adds its change as a
 * merge operand (stats_add), so the figures on disk are exact after any
 * crash and start-up reads one vector per table instead of every item.
 *
 * Log segments: the log is cut into segments of LOG_SEGMENT_SEQS seqs;
 * "seg/" u64 BE segment number -> [SUM bytes, SUM entries, MAX commit ms],
 * and "log/total" -> [SUM bytes, SUM entries] for the whole log. Every batch
 * that appends log entries adds to both; a trim deletes the records of the
 * segments it removes entirely and subtracts them from the total (a segment
 * trimmed only in part stays counted whole until the trim passes its end:
 * the total may exceed the log by less than one segment). Retention reads
 * them (db_log_retention_cut): a few seeks, whatever the size of the log. */
#define STATS_FORMAT_KEY    "stats/format"
#define SEGMENTS_FORMAT_KEY "rlog/segments"
#define LOG_TOTAL_KEY       "log/total"

static void stats_add(store_batch *b, uint64_t table_id, int64_t items, int64_t bytes,
                      int64_t tombs)
{
    if (!items && !bytes && !tombs) return;
    uint8_t k[12];
    catalog_stats_key(k, table_id);
    store_counter c[3] = {{STORE_SUM, items}, {STORE_SUM, bytes}, {STORE_SUM, tombs}};
    store_batch_add(b, k, sizeof(k), c, 3);
}

static void segment_key(uint8_t k[12], uint64_t segno)
{
    memcpy(k, "seg/", 4);
    store_u64be(k + 4, segno);
}

/* Log entries appended by one batch, gathered per segment. */
typedef struct log_account {
    uint64_t segno;
    int64_t bytes, entries;
    uint64_t commit_ms;
    int64_t total_bytes, total_entries;
} log_account;

static void log_account_flush(store_batch *b, log_account *la)
{
    if (la->entries) {
        uint8_t k[12];
        segment_key(k, la->segno);
        store_counter c[3] = {
            {STORE_SUM, la->bytes}, {STORE_SUM, la->entries}, {STORE_MAX, (int64_t)la->commit_ms}};
        store_batch_add(b, k, sizeof(k), c, 3);
    }
    la->bytes = la->entries = 0;
}

static void log_account_entry(store_batch *b, log_account *la, uint64_t seq, size_t bytes,
                              uint64_t commit_ms)
{
    if (la->entries && la->segno != seq / LOG_SEGMENT_SEQS) log_account_flush(b, la);
    la->segno = seq / LOG_SEGMENT_SEQS;
    la->bytes += (int64_t)bytes;
    la->entries++;
    if (commit_ms > la->commit_ms) la->commit_ms = commit_ms;
    la->total_bytes += (int64_t)bytes;
    la->total_entries++;
}

static void log_account_finish(store_batch *b, log_account *la)
{
    log_account_flush(b, la);
    if (la->total_entries) {
        store_counter c[2] = {{STORE_SUM, la->total_bytes}, {STORE_SUM, la->total_entries}};
        store_batch_add(b, LOG_TOTAL_KEY, strlen(LOG_TOTAL_KEY), c, 2);
    }
}

/* Whether a meta mark is present. */
static int has_mark(db *d, const char *key, bool *yes, err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(d->st, STORE_CF_META, key, strlen(key), &v, e);
    buf_free(&v);
    *yes = r == 1;
    return r < 0 ? -1 : 0;
}

/* Statistics per table (DescribeTable, metrics): read from the persisted
 * vectors; the first start of a data directory written before they existed
 * counts every item once and writes them. */
static int load_stats(db *d, err *e)
{
    bool have;
    if (has_mark(d, STATS_FORMAT_KEY, &have, e) < 0) return -1;
    table **ts;
    size_t nt = catalog_all(d->cat, &ts);
    qsort(ts, nt, sizeof(table *), cmp_table_id);
    int rc = 0;
    if (have) {
        for (size_t i = 0; i < nt && rc == 0; i++) {
            uint8_t k[12];
            catalog_stats_key(k, ts[i]->id);
            store_counter c[3];
            size_t n;
            int r = store_get_counters(d->st, k, sizeof(k), c, 3, &n, e);
            if (r < 0) rc = -1;
            if (r == 1 && n == 3) {
                atomic_store(&ts[i]->item_count, c[0].v);
                atomic_store(&ts[i]->size_bytes, c[1].v);
                atomic_store(&ts[i]->tombstones, c[2].v);
            }
        }
        catalog_release_all(ts, nt);
        return rc;
    }
    store_iter *it = store_iter_new(d->st, STORE_CF_ITEMS, NULL, 0, NULL, 0);
    size_t ti = 0;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        if (kl < 8) continue;
        uint64_t id = load_u64be(k);
        while (ti < nt && ts[ti]->id < id)
            ti++;
        if (ti < nt && ts[ti]->id == id) {
            bool tomb = vl > 1 && (v[1] & RECORD_FLAG_TOMBSTONE);
            atomic_fetch_add(tomb ? &ts[ti]->tombstones : &ts[ti]->item_count, 1);
            atomic_fetch_add(&ts[ti]->size_bytes, (int64_t)(kl + vl));
        }
    }
    rc = store_iter_status(it, e);
    store_iter_free(it);
    if (rc == 0) {
        store_batch *b = store_batch_new(d->st);
        for (size_t i = 0; i < nt; i++) {
            uint8_t k[12];
            catalog_stats_key(k, ts[i]->id);
            store_counter c[3] = {{STORE_SUM, atomic_load(&ts[i]->item_count)},
                                  {STORE_SUM, atomic_load(&ts[i]->size_bytes)},
                                  {STORE_SUM, atomic_load(&ts[i]->tombstones)}};
            store_batch_set_counters(b, k, sizeof(k), c, 3);
        }
        uint8_t f = 1;
        store_batch_put(b, STORE_CF_META, STATS_FORMAT_KEY, strlen(STATS_FORMAT_KEY), &f, 1);
        rc = store_write(d->st, b, e);
        store_batch_free(b);
        if (rc == 0 && nt) log_info("table statistics counted once and persisted (%zu tables)", nt);
    }
    catalog_release_all(ts, nt);
    return rc;
}

/* The segment records of a log written before they existed: built once. */
static int load_segments(db *d, err *e)
{
    bool have;
    if (has_mark(d, SEGMENTS_FORMAT_KEY, &have, e) < 0) return -1;
    if (have) return 0;
    store_iter *it = store_iter_new(d->st, STORE_CF_RLOG, NULL, 0, NULL, 0);
    store_batch *b = store_batch_new(d->st);
    log_account la = {0};
    arena a;
    arena_init(&a);
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        if (kl != 8) continue;
        repl_entry en;
        err de;
        uint64_t commit = repl_entry_decode(&a, v, vl, &en, &de) == 0 ? en.commit_ms : 0;
        log_account_entry(b, &la, load_u64be(k), kl + vl, commit);
        if (la.total_entries % 4096 == 0) {
            arena_free(&a);
            arena_init(&a);
        }
    }
    arena_free(&a);
    int rc = store_iter_status(it, e);
    store_iter_free(it);
    if (rc == 0) {
        log_account_finish(b, &la);
        uint8_t f = 1;
        store_batch_put(b, STORE_CF_META, SEGMENTS_FORMAT_KEY, strlen(SEGMENTS_FORMAT_KEY), &f, 1);
        rc = store_write(d->st, b, e);
    }
    store_batch_free(b);
    return rc;
}

#define LOG_TRIMMED_KEY "rlog/trimmed"
#define LOG_FLOOR_KEY   "rlog/floor"

/* A u64 mark in meta (0 if absent). */
static int read_mark(db *d, const char *key, uint64_t *out, err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(d->st, STORE_CF_META, key, strlen(key), &v, e);
    *out = r == 1 && v.len == 8 ? load_u64be(v.data) : 0;
    if (r == 1 && v.len != 8) r = err_set(e, ERR_INTERNAL, "corrupt %s in storage", key);
    buf_free(&v);
    return r < 0 ? -1 : 0;
}

/* The first and last entries of the log (0 if it is empty). */
static int log_ends(db *d, uint64_t *first, uint64_t *last, err *e)
{
    store_iter *it = store_iter_new(d->st, STORE_CF_RLOG, NULL, 0, NULL, 0);
    *first = *last = 0;
    size_t kl;
    store_iter_first(it);
    if (store_iter_valid(it)) {
        const uint8_t *k = store_iter_key(it, &kl);
        if (kl == 8) *first = load_u64be(k);
        store_iter_last(it);
        k = store_iter_valid(it) ? store_iter_key(it, &kl) : NULL;
        if (k && kl == 8) *last = load_u64be(k);
    }
    int rc = store_iter_status(it, e);
    store_iter_free(it);
    return rc;
}

/* The log continues above every seq it ever used: its last entry on disk,
 * or the marks left by trimming and by a skip (db_log_trim, _skip_past). */
static int init_log(db *d, err *e)
{
    uint64_t trimmed, floor, first, last;
    bool have_trimmed;
    if (has_mark(d, LOG_TRIMMED_KEY, &have_trimmed, e) < 0 ||
        read_mark(d, LOG_TRIMMED_KEY, &trimmed, e) < 0 ||
        read_mark(d, LOG_FLOOR_KEY, &floor, e) < 0 || log_ends(d, &first, &last, e) < 0)
        return -1;
    if (!have_trimmed && first > 1) {
        /* A log trimmed before the mark existed: everything below its first
         * entry is gone, and peers behind it must be re-seeded. Recorded once. */
        trimmed = first - 1;
        if (write_mark(d, LOG_TRIMMED_KEY, trimmed, e) < 0) return -1;
    }
    atomic_store(&d->log_trimmed, trimmed);
    atomic_store(&d->log_trim_target, trimmed);
    if (last < trimmed) last = trimmed;
    if (last < floor) last = floor;
    rlog_init(&d->log, last, &d->clock);
    d->log_ready = true;
    return 0;
}

static int migrate_tombs(db *d, err *e);

int db_open(db *d, const char *dir, const char *region, const store_options *opt, err *e)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->region, sizeof(d->region), "%s", region);
    hlc_init(&d->clock);
    for (size_t i = 0; i < DB_LOCK_STRIPES; i++)
        pthread_mutex_init(&d->stripes[i], NULL);
    pthread_mutex_init(&d->clock_mu, NULL);
    atomic_init(&d->clock_bound_ms, 0);
    pthread_mutex_init(&d->log_mark_mu, NULL);
    atomic_init(&d->log_trimmed, 0);
    atomic_init(&d->log_trim_target, 0);
    pthread_mutex_init(&d->conflicts_mu, NULL);
    d->conflicts = calloc(DB_CONFLICTS_KEPT, sizeof(*d->conflicts));
    if (!d->conflicts) abort();
    d->max_skew_ms = 60000;
    atomic_init(&d->skew_violations, 0);
    if (store_open(dir, opt, &d->st, e) < 0 || catalog_open(d->st, &d->cat, e) < 0) {
        db_close(d); /* closes whatever was opened */
        return -1;
    }
    if (load_clock_bound(d, e) < 0 || load_stats(d, e) < 0 || init_log(d, e) < 0 ||
        load_segments(d, e) < 0 || migrate_tombs(d, e) < 0) {
        db_close(d);
        return -1;
    }
    return 0;
}

void db_close(db *d)
{
    catalog_close(d->cat);
    d->cat = NULL;
    store_close(d->st);
    d->st = NULL;
    for (size_t i = 0; i < DB_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&d->stripes[i]);
    pthread_mutex_destroy(&d->clock_mu);
    pthread_mutex_destroy(&d->log_mark_mu);
    pthread_mutex_destroy(&d->conflicts_mu);
    for (size_t i = 0; d->conflicts && i < DB_CONFLICTS_KEPT; i++)
        free(d->conflicts[i].pk);
    free(d->conflicts);
    d->conflicts = NULL;
    if (d->log_ready) rlog_destroy(&d->log);
    d->log_ready = false;
}

/* What is stored under one item key (a live item, a tombstone, or nothing). */
typedef struct slot {
    uint8_t *key;
    size_t klen;
    size_t stripe;
    bool exists; /* a record (live or tombstone) is stored */
    bool tombstone;
    uint64_t ts; /* its version */
    const char *origin;
    size_t stored_len; /* key + record bytes */
    mv_value *item;    /* live item, NULL otherwise */
} slot;

/* Reads what is stored under sl->key; the item itself only if want_item
 * (applying replicated writes needs only the version). */
static int read_slot(db *d, slot *sl, arena *a, bool want_item, err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(d->st, STORE_CF_ITEMS, sl->key, sl->klen, &v, e);
    sl->exists = false;
    sl->tombstone = false;
    sl->ts = 0;
    sl->origin = "";
    sl->stored_len = 0;
    sl->item = NULL;
    if (r == 1) {
        item_record rec;
        if (record_decode_ex(a, v.data, v.len, want_item, &rec) < 0) {
            buf_free(&v);
            return err_set(e, ERR_INTERNAL, "corrupt item record in storage");
        }
        sl->exists = true;
        sl->tombstone = rec.tombstone;
        sl->ts = rec.ts;
        sl->origin = rec.origin;
        sl->item = rec.item;
        sl->stored_len = sl->klen + v.len;
    }
    buf_free(&v);
    return r < 0 ? -1 : 0;
}

int db_get_versioned(db *d, table *t, const mv_value *pk, const mv_value *sk, arena *a,
                     mv_value **out, uint64_t *ts, const char **origin, err *e)
{
    buf k;
    buf_init(&k);
    key_encode_item(&k, t->id, pk, sk);
    slot sl = {.key = k.data, .klen = k.len};
    int rc = read_slot(d, &sl, a, true, e);
    *out = sl.item;
    *ts = sl.ts;
    *origin = sl.origin;
    buf_free(&k);
    return rc;
}

int db_get(db *d, table *t, const mv_value *pk, const mv_value *sk, arena *a, mv_value **out,
           err *e)
{
    uint64_t ts;
    const char *origin;
    return db_get_versioned(d, t, pk, sk, a, out, &ts, &origin, e);
}

static size_t stripe_of(const uint8_t *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t j = 0; j < len; j++)
        h = (h ^ key[j]) * 1099511628211ull;
    return (size_t)(h % DB_LOCK_STRIPES);
}

/* ts, or the largest timestamp the skew bound lets this region's clock
 * reach now (wall clock + --max-clock-skew-ms) if ts is beyond it. */
static uint64_t clamp_to_skew(db *d, uint64_t ts)
{
    uint64_t limit = (hlc_wall_ms() + d->max_skew_ms) << HLC_LOGICAL_BITS;
    return ts < limit ? ts : limit;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_table(const void *a, const void *b)
{
    const table *x = *(table *const *)a, *y = *(table *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The locks of one multi-item write. Order: tables (read) by id, then key
 * stripes by index, each taken once; released in reverse. */
typedef struct lockset {
    table **tables;
    size_t nt, locked_t;
    size_t *stripes;
    size_t ns, locked_s;
} lockset;

static void lockset_init(lockset *ls, arena *a, table **tables, size_t *stripes, size_t n)
{
    ls->tables = arena_calloc(a, n ? n : 1, sizeof(table *));
    ls->stripes = arena_calloc(a, n ? n : 1, sizeof(size_t));
    memcpy(ls->tables, tables, n * sizeof(table *));
    memcpy(ls->stripes, stripes, n * sizeof(size_t));
    qsort(ls->tables, n, sizeof(table *), cmp_table);
    qsort(ls->stripes, n, sizeof(size_t), cmp_size);
    ls->nt = ls->ns = ls->locked_t = ls->locked_s = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || ls->tables[i] != ls->tables[i - 1]) ls->tables[ls->nt++] = ls->tables[i];
    for (size_t i = 0; i < n; i++)
        if (i == 0 || ls->stripes[i] != ls->stripes[i - 1]) ls->stripes[ls->ns++] = ls->stripes[i];
}

/* Fails with ERR_RESOURCE_NOT_FOUND if a table was deleted meanwhile. */
static int lockset_acquire(db *d, lockset *ls, err *e)
{
    for (; ls->locked_t < ls->nt; ls->locked_t++) {
        pthread_rwlock_rdlock(&ls->tables[ls->locked_t]->lock);
        if (ls->tables[ls->locked_t]->deleted) {
            ls->locked_t++;
            return err_set(e, ERR_RESOURCE_NOT_FOUND, "Requested resource not found");
        }
    }
    for (; ls->locked_s < ls->ns; ls->locked_s++)
        pthread_mutex_lock(&d->stripes[ls->stripes[ls->locked_s]]);
    return 0;
}

#ifndef NDEBUG
/* The invariant of a write under a lockset: every table is read-locked and
 * every key's stripe locked (by someone: a held mutex cannot name its owner
 * portably, so this checks that it is not free), in ascending order, each
 * once (SQLite's assert(mutex_held) style: debug and sanitizer builds). */
static bool lockset_held(db *d, const lockset *ls, const size_t *stripes, size_t n)
{
    if (ls->locked_t != ls->nt || ls->locked_s != ls->ns) return false;
    for (size_t i = 1; i < ls->ns; i++)
        if (ls->stripes[i - 1] >= ls->stripes[i]) return false;
    for (size_t i = 1; i < ls->nt; i++)
        if (ls->tables[i - 1]->id >= ls->tables[i]->id) return false;
    for (size_t i = 0; i < ls->ns; i++) {
        pthread_mutex_t *m = &d->stripes[ls->stripes[i]];
        if (pthread_mutex_trylock(m) == 0) {
            pthread_mutex_unlock(m);
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) { /* each key's stripe is one of them */
        bool found = false;
        for (size_t j = 0; j < ls->ns && !found; j++)
            found = ls->stripes[j] == stripes[i];
        if (!found) return false;
    }
    return true;
}
#endif

static void lockset_release(db *d, lockset *ls)
{
    while (ls->locked_s > 0)
        pthread_mutex_unlock(&d->stripes[ls->stripes[--ls->locked_s]]);
    while (ls->locked_t > 0)
        pthread_rwlock_unlock(&ls->tables[--ls->locked_t]->lock);
}

static bool table_replicated(table *t)
{
    pthread_mutex_lock(&t->settings_mu);
    bool r = table_settings_replicated(&t->settings);
    pthread_mutex_unlock(&t->settings_mu);
    return r;
}

void db_split_key(table *t, const uint8_t *key, size_t klen, repl_entry *ent)
{
    const uint8_t *p = key + 12, *end = key + klen; /* table id (8) + hash (4) */
    arena tmp;
    arena_init(&tmp);
    mv_value *v;
    const uint8_t *q = p;
    if (key_decode_scalar(&tmp, t->pk_type, &q, end, &v) < 0) q = end;
    ent->pk = p;
    ent->pk_len = (size_t)(q - p);
    ent->sk = t->sk_name ? q : NULL;
    ent->sk_len = t->sk_name ? (size_t)(end - q) : 0;
    arena_free(&tmp);
}

/* Tombstone index (column family tombs), format 2: key table uid (16) | u64
 * BE version timestamp | item storage key, empty value. Entries are added
 * with every tombstone written and removed by db_collect_tombstones; an
 * entry whose tombstone was overwritten meanwhile is stale and simply
 * dropped there. Grouped by table, so that one table whose tombstones cannot
 * be collected yet (a replica still CREATING, a back-fill owed) is skipped
 * with one seek instead of holding up every other table behind it. (Format 1,
 * before issue 11: key timestamp | item key, value the uid; converted at
 * start-up by migrate_tombs.) */
#define TOMB_UID_OFF     0
#define TOMB_TS_OFF      TABLE_UID_LEN
#define TOMB_KEY_OFF     (TABLE_UID_LEN + 8)
#define TOMBS_FORMAT_KEY "tombs/format"
#define TOMBS_FORMAT     2

static void tomb_index_key(buf *k, const uint8_t uid[TABLE_UID_LEN], uint64_t ts,
                           const uint8_t *key, size_t klen)
{
    buf_append(k, uid, TABLE_UID_LEN);
    buf_put_u64be(k, ts);
    buf_append(k, key, klen);
}

static void index_tombstone(store_batch *b, uint64_t ts, const uint8_t *key, size_t klen,
                            const uint8_t uid[TABLE_UID_LEN])
{
    buf k;
    buf_init(&k);
    tomb_index_key(&k, uid, ts, key, klen);
    store_batch_put(b, STORE_CF_TOMBS, k.data, k.len, "", 0);
    buf_free(&k);
}

/* Rewrites a format-1 tombstone index as format 2, once (in batches; the
 * format mark goes with the last one, so an interrupted conversion is
 * simply redone: a format-1 key is never a valid format-2 key's prefix
 * since its value is the uid, which format 2 never stores). */
static int migrate_tombs(db *d, err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(d->st, STORE_CF_META, TOMBS_FORMAT_KEY, strlen(TOMBS_FORMAT_KEY), &v, e);
    bool done = r == 1 && v.len == 1 && v.data[0] == TOMBS_FORMAT;
    buf_free(&v);
    if (r < 0) return -1;
    if (done) return 0;
    store_iter *it = store_iter_new(d->st, STORE_CF_TOMBS, NULL, 0, NULL, 0);
    store_batch *b = store_batch_new(d->st);
    buf k;
    buf_init(&k);
    size_t moved = 0;
    int rc = 0;
    for (store_iter_first(it); store_iter_valid(it) && rc == 0; store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *kp = store_iter_key(it, &kl);
        const uint8_t *vp = store_iter_value(it, &vl);
        if (vl != TABLE_UID_LEN || kl < 8) continue; /* already format 2 */
        buf_reset(&k);
        tomb_index_key(&k, vp, load_u64be(kp), kp + 8, kl - 8);
        store_batch_delete(b, STORE_CF_TOMBS, kp, kl);
        store_batch_put(b, STORE_CF_TOMBS, k.data, k.len, "", 0);
        if (++moved % 4096 == 0) {
            rc = store_write(d->st, b, e);
            store_batch_clear(b);
        }
    }
    if (rc == 0) rc = store_iter_status(it, e);
    if (rc == 0) {
        uint8_t f = TOMBS_FORMAT;
        store_batch_put(b, STORE_CF_META, TOMBS_FORMAT_KEY, strlen(TOMBS_FORMAT_KEY), &f, 1);
        rc = store_write(d->st, b, e);
    }
    if (rc == 0 && moved) log_info("converted %zu tombstone index entries to format 2", moved);
    buf_free(&k);
    store_batch_free(b);
    store_iter_free(it);
    return rc;
}

int db_backfill_entry(table *t, const uint8_t *key, size_t klen, const uint8_t *rec, size_t len,
                      arena *a, repl_entry *en)
{
    item_record r;
    if (record_decode(a, rec, len, &r) < 0) return -1;
    memset(en, 0, sizeof(*en));
    en->kind = REPL_BACKFILL_ITEM;
    en->flags = r.tombstone ? REPL_FLAG_TOMBSTONE : 0;
    memcpy(en->table_uid, t->uid, TABLE_UID_LEN);
    en->ts = r.ts;
    en->origin = r.origin;
    en->prev_origin = "";
    db_split_key(t, key, klen, en);
    size_t hl = record_header_len(rec, len);
    en->data = r.tombstone ? NULL : rec + hl;
    en->data_len = r.tombstone ? 0 : len - hl;
    return 0;
}

int db_write(db *d, db_write_op *ops, size_t n, arena *a, err *e)
{
    if (n == 0) return 0;
    slot *sl = arena_calloc(a, n, sizeof(*sl));
    size_t *stripes = arena_calloc(a, n, sizeof(size_t));
    table **tables = arena_calloc(a, n, sizeof(table *));
    buf k;
    buf_init(&k);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&k);
        key_encode_item(&k, ops[i].t->id, ops[i].pk, ops[i].sk);
        sl[i].key = (uint8_t *)arena_memdup(a, k.data, k.len);
        sl[i].klen = k.len;
        sl[i].stripe = stripe_of(k.data, k.len);
        stripes[i] = sl[i].stripe;
        tables[i] = ops[i].t;
        ops[i].old_item = NULL;
        ops[i].new_item = NULL;
        ops[i].written = false;
        ops[i].ts = 0;
        ops[i].origin = "";
    }
    buf_free(&k);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (sl[i].klen == sl[j].klen && memcmp(sl[i].key, sl[j].key, sl[i].klen) == 0)
                return err_validation(e, "Provided list of item keys contains duplicates");

    int rc = -1;
    lockset ls;
    lockset_init(&ls, a, tables, stripes, n);
    store_batch *b = NULL;
    bool reserved = false;
    uint64_t first_seq = 0;
    buf rec, ent;
    buf_init(&rec);
    buf_init(&ent);
    if (lockset_acquire(d, &ls, e) < 0) goto out;
    assert(lockset_held(d, &ls, stripes, n));

    for (size_t i = 0; i < n; i++) {
        if (read_slot(d, &sl[i], a, true, e) < 0) goto out;
        ops[i].old_item = sl[i].item;
        mv_value *nw = NULL;
        int r = ops[i].fn(ops[i].ctx, sl[i].item, a, &nw, e);
        if (r < 0) goto out;
        ops[i].ts = sl[i].ts; /* unless written below */
        ops[i].origin = sl[i].origin;
        if (r == DB_MUTATE_SKIP) {
            ops[i].new_item = sl[i].item;
            continue;
        }
        ops[i].new_item = nw;
        ops[i].written = nw || sl[i].item; /* deleting nothing writes nothing */
    }

    /* Writes to global tables are logged for replication, in this batch. */
    bool *logged = arena_calloc(a, n, sizeof(bool));
    uint32_t n_log = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i].written && table_replicated(ops[i].t)) {
            logged[i] = true;
            n_log++;
        }
    if (n_log) {
        first_seq = rlog_reserve(&d->log, n_log);
        reserved = true;
    }

    b = store_batch_new(d->st);
    int64_t *dcount = arena_calloc(a, n, sizeof(int64_t));
    int64_t *dbytes = arena_calloc(a, n, sizeof(int64_t));
    int64_t *dtomb = arena_calloc(a, n, sizeof(int64_t));
    uint64_t seq = first_seq;
    uint64_t wall = hlc_wall_ms();
    log_account la = {0};
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].written) continue;
        uint64_t ts = hlc_now(&d->clock);
        if (ensure_clock_bound(d, HLC_MS(ts), e) < 0) goto out;
        /* A write always orders after the version it replaces, even when that
         * version is ahead of this region's clock (a remote write clamped by
         * --max-clock-skew-ms, or received before a restart): otherwise other
         * regions would keep the older version and never converge. The clock
         * follows only as far as the skew bound allows: a version from a
         * runaway clock moves this one write, never the region's clock (nor
         * its persisted bound, so not after a restart either). The version
         * stays unique: another write to this key reads it and stamps above
         * it, and a write to another key is compared with nothing of this. */
        if (sl[i].exists && ts <= sl[i].ts) {
            if (sl[i].ts == UINT64_MAX) { /* nothing can order after it */
                err_set(e, ERR_INTERNAL, "the stored version of an item is the largest possible");
                goto out;
            }
            ts = sl[i].ts + 1;
            if (clamp_to_skew(d, ts) < ts) atomic_fetch_add(&d->skew_overwrites, 1);
            hlc_observe(&d->clock, clamp_to_skew(d, ts));
        }
        bool live_before = sl[i].item != NULL;
        buf_reset(&rec);
        if (ops[i].new_item || logged[i]) {
            ops[i].ts = ts;
            ops[i].origin = d->region;
            /* A delete in a global table leaves a versioned tombstone. */
            bool tomb = ops[i].new_item == NULL;
            record_encode(&rec, ts, d->region, tomb, ops[i].new_item);
            store_batch_put(b, STORE_CF_ITEMS, sl[i].key, sl[i].klen, rec.data, rec.len);
            dbytes[i] = (int64_t)(sl[i].klen + rec.len) - (int64_t)sl[i].stored_len;
            if (tomb) index_tombstone(b, ts, sl[i].key, sl[i].klen, ops[i].t->uid);
            dtomb[i] = (tomb ? 1 : 0) - (sl[i].tombstone ? 1 : 0);
        } else {
            ops[i].ts = 0; /* a local table's delete leaves nothing */
            ops[i].origin = "";
            store_batch_delete(b, STORE_CF_ITEMS, sl[i].key, sl[i].klen);
            dbytes[i] = -(int64_t)sl[i].stored_len;
            dtomb[i] = sl[i].tombstone ? -1 : 0;
        }
        dcount[i] = (ops[i].new_item ? 1 : 0) - (live_before ? 1 : 0);
        if (!logged[i]) continue;
        repl_entry en;
        memset(&en, 0, sizeof(en));
        en.kind = ops[i].new_item ? REPL_PUT : REPL_TOMBSTONE;
        memcpy(en.table_uid, ops[i].t->uid, TABLE_UID_LEN);
        en.ts = ts;
        en.origin = d->region;
        en.prev_ts = sl[i].ts;
        en.prev_origin = sl[i].origin;
        en.commit_ms = wall;
        db_split_key(ops[i].t, sl[i].key, sl[i].klen, &en);
        if (ops[i].new_item) {
            size_t hdr = record_header_len(rec.data, rec.len);
            en.data = rec.data + hdr;
            en.data_len = rec.len - hdr;
        }
        buf_reset(&ent);
        repl_entry_encode(&ent, &en);
        uint8_t sk[8];
        log_account_entry(b, &la, seq, 8 + ent.len, wall);
        store_u64be(sk, seq++);
        store_batch_put(b, STORE_CF_RLOG, sk, 8, ent.data, ent.len);
    }
    assert(seq == first_seq + n_log); /* every reserved seq used, in order */
    log_account_finish(b, &la);
    for (size_t i = 0; i < n; i++)
        if (ops[i].written) stats_add(b, ops[i].t->id, dcount[i], dbytes[i], dtomb[i]);
    if (store_batch_count(b) > 0 && store_write(d->st, b, e) < 0) goto out;
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&ops[i].t->item_count, dcount[i]);
        atomic_fetch_add(&ops[i].t->size_bytes, dbytes[i]);
        atomic_fetch_add(&ops[i].t->tombstones, dtomb[i]);
    }
    rc = 0;
out:
    if (reserved) rlog_done(&d->log, first_seq);
    buf_free(&rec);
    buf_free(&ent);
    store_batch_free(b);
    lockset_release(d, &ls);
    return rc;
}

/* ---- applying writes from other regions ---- */

#define APPLIED_KEY_PREFIX "repl/applied/"

static void applied_key(buf *k, const char *source)
{
    buf_puts(k, APPLIED_KEY_PREFIX);
    buf_puts(k, source);
}

int db_applied_position(db *d, const char *source, uint64_t *pos, err *e)
{
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    applied_key(&k, source);
    int r = store_get(d->st, STORE_CF_META, k.data, k.len, &v, e);
    *pos = (r == 1 && v.len == 8) ? load_u64be(v.data) : 0;
    buf_free(&k);
    buf_free(&v);
    return r < 0 ? -1 : 0;
}

/* Last-writer-wins order on versions: timestamp, then origin region name. */
int db_version_cmp(uint64_t ts_a, const char *origin_a, uint64_t ts_b, const char *origin_b)
{
    if (ts_a != ts_b) return ts_a < ts_b ? -1 : 1;
    int c = strcmp(origin_a, origin_b);
    return c < 0 ? -1 : c > 0;
}

static void record_conflict(db *d, table *t, const uint8_t *pk, size_t pk_len, uint64_t win_ts,
                            const char *win_origin, uint64_t lose_ts, const char *lose_origin)
{
    atomic_fetch_add(&t->conflicts, 1);
    uint8_t *copy = malloc(pk_len ? pk_len : 1);
    if (!copy) abort();
    memcpy(copy, pk, pk_len);
    pthread_mutex_lock(&d->conflicts_mu);
    struct conflict_slot *s = &d->conflicts[d->conflicts_next % DB_CONFLICTS_KEPT];
    d->conflicts_next++;
    db_conflict *c = &s->c;
    snprintf(c->account, sizeof(c->account), "%s", t->account);
    snprintf(c->table, sizeof(c->table), "%s", t->name);
    free(s->pk);
    s->pk = copy;
    s->pk_len = pk_len;
    s->pk_type = t->pk_type;
    c->winner_ts = win_ts;
    snprintf(c->winner_origin, sizeof(c->winner_origin), "%s", win_origin);
    c->loser_ts = lose_ts;
    snprintf(c->loser_origin, sizeof(c->loser_origin), "%s", lose_origin);
    c->at_ms = hlc_wall_ms();
    pthread_mutex_unlock(&d->conflicts_mu);
}

size_t db_recent_conflicts(db *d, const char *account, const char *table_name, db_conflict *out,
                           size_t max, arena *a)
{
    size_t n = 0;
    mv_type *types = arena_calloc(a, max ? max : 1, sizeof(mv_type));
    const uint8_t **pks = arena_calloc(a, max ? max : 1, sizeof(uint8_t *));
    size_t *lens = arena_calloc(a, max ? max : 1, sizeof(size_t));
    pthread_mutex_lock(&d->conflicts_mu);
    size_t total = d->conflicts_next < DB_CONFLICTS_KEPT ? d->conflicts_next : DB_CONFLICTS_KEPT;
    for (size_t i = 0; i < total && n < max; i++) {
        const struct conflict_slot *s =
            &d->conflicts[(d->conflicts_next - 1 - i) % DB_CONFLICTS_KEPT];
        if (strcmp(s->c.account, account) != 0 || strcmp(s->c.table, table_name) != 0) continue;
        out[n] = s->c;
        types[n] = s->pk_type;
        lens[n] = s->pk_len;
        uint8_t *copy = arena_alloc(a, s->pk_len ? s->pk_len : 1);
        memcpy(copy, s->pk, s->pk_len);
        pks[n++] = copy;
    }
    pthread_mutex_unlock(&d->conflicts_mu);
    for (size_t i = 0; i < n; i++) {
        mv_value *v;
        const uint8_t *p = pks[i];
        out[i].key = NULL;
        if (key_decode_scalar(a, types[i], &p, pks[i] + lens[i], &v) < 0) continue;
        buf js;
        buf_init(&js);
        mv_to_json(&js, v);
        char *s = arena_alloc(a, js.len + 1);
        memcpy(s, js.data ? (const char *)js.data : "", js.len);
        s[js.len] = '\0';
        out[i].key = s;
        buf_free(&js);
    }
    return n;
}

/* Advances the clock past a received timestamp, but never more than
 * max_skew_ms ahead of the local wall clock: a peer with a runaway clock is
 * counted and logged instead of dragging every region's clock along. */
void db_observe_remote(db *d, uint64_t ts, const char *origin)
{
    uint64_t limit = clamp_to_skew(d, UINT64_MAX);
    if (ts > limit) {
        uint64_t n = atomic_fetch_add(&d->skew_violations, 1);
        if (n < 10 || n % 1000 == 0)
            log_warn("write from %s is %llu ms ahead of this region's clock (limit %llu ms)",
                     origin, (unsigned long long)(HLC_MS(ts) - hlc_wall_ms()),
                     (unsigned long long)d->max_skew_ms);
        ts = limit;
    }
    hlc_observe(&d->clock, ts);
}

typedef struct apply_item {
    const repl_entry *en;
    table *t;
    slot sl;
    int prev; /* index of an earlier entry of this batch on the same key, or -1 */
    int64_t dcount, dbytes, dtomb; /* statistics change, applied after the commit */
} apply_item;

/* Whether a replicated item's key attributes are exactly the key it is
 * filed under (en->pk, en->sk), with the table's key types: a peer that
 * sends an item under another key would make the stored item disagree with
 * its own key, and the regions with it. */
static bool replicated_key_matches(const table *t, const repl_entry *en, const mv_value *item,
                                   buf *scratch)
{
    if ((t->sk_name != NULL) != (en->sk != NULL)) return false;
    const char *names[2] = {t->pk_name, t->sk_name};
    const mv_type types[2] = {t->pk_type, t->sk_type};
    const uint8_t *enc[2] = {en->pk, en->sk};
    const size_t lens[2] = {en->pk_len, en->sk_len};
    for (int i = 0; i < 2 && names[i]; i++) {
        const mv_value *v = mv_map_get(item, names[i], strlen(names[i]));
        if (!v || v->type != types[i]) return false;
        buf_reset(scratch);
        key_encode_scalar(scratch, v);
        if (scratch->len != lens[i] || memcmp(scratch->data, enc[i], lens[i]) != 0) return false;
    }
    return true;
}

int db_apply(db *d, const char *source, const repl_entry *entries, size_t n, uint64_t position,
             db_apply_stats *stats, err *e)
{
    arena a;
    arena_init(&a);
    apply_item *it = arena_calloc(&a, n ? n : 1, sizeof(*it));
    size_t m = 0;
    uint64_t max_observed = 0; /* the largest version received, clamped to the skew bound */
    int rc = -1;
    store_batch *b = NULL;
    buf k, rec;
    buf_init(&k);
    buf_init(&rec);
    for (size_t i = 0; i < n; i++) {
        const repl_entry *en = &entries[i];
        if (en->kind != REPL_PUT && en->kind != REPL_TOMBSTONE && en->kind != REPL_BACKFILL_ITEM)
            continue;
        table *t = catalog_get_uid(d->cat, en->table_uid);
        if (!t) {
            if (stats) stats->skipped++;
            continue;
        }
        db_observe_remote(d, en->ts, en->origin);
        uint64_t observed = clamp_to_skew(d, en->ts);
        if (observed > max_observed) max_observed = observed;
        buf_reset(&k);
        uint8_t hdr[12];
        store_u64be(hdr, t->id);
        store_u32be(hdr + 8, key_hash(en->pk, en->pk_len));
        buf_append(&k, hdr, 12);
        buf_append(&k, en->pk, en->pk_len);
        if (en->sk) buf_append(&k, en->sk, en->sk_len);
        it[m].en = en;
        it[m].t = t;
        it[m].sl.key = (uint8_t *)arena_memdup(&a, k.data, k.len);
        it[m].sl.klen = k.len;
        it[m].sl.stripe = stripe_of(k.data, k.len);
        it[m].prev = -1;
        for (size_t j = m; j-- > 0;) /* the stripe (a hash of the key) filters first */
            if (it[j].sl.stripe == it[m].sl.stripe && it[j].sl.klen == k.len &&
                memcmp(it[j].sl.key, k.data, k.len) == 0) {
                it[m].prev = (int)j;
                break;
            }
        m++;
    }
    table **tables = arena_calloc(&a, m ? m : 1, sizeof(table *));
    size_t *stripes = arena_calloc(&a, m ? m : 1, sizeof(size_t));
    for (size_t i = 0; i < m; i++) {
        tables[i] = it[i].t;
        stripes[i] = it[i].sl.stripe;
    }
    lockset ls;
    lockset_init(&ls, &a, tables, stripes, m);
    /* A table deleted meanwhile is not an error here: its entries are moot. */
    for (; ls.locked_t < ls.nt; ls.locked_t++)
        pthread_rwlock_rdlock(&ls.tables[ls.locked_t]->lock);
    for (; ls.locked_s < ls.ns; ls.locked_s++)
        pthread_mutex_lock(&d->stripes[ls.stripes[ls.locked_s]]);
    assert(lockset_held(d, &ls, stripes, m));

    b = store_batch_new(d->st);
    for (size_t i = 0; i < m; i++) {
        apply_item *x = &it[i];
        const repl_entry *en = x->en;
        if (x->t->deleted) continue;
        if (x->prev >= 0) {
            x->sl = it[x->prev].sl; /* the state this batch has already decided */
        } else if (read_slot(d, &x->sl, &a, false, e) < 0) {
            goto out;
        }
        bool tomb = en->kind == REPL_TOMBSTONE ||
                    (en->kind == REPL_BACKFILL_ITEM && (en->flags & REPL_FLAG_TOMBSTONE));
        int cmp = x->sl.exists ? db_version_cmp(en->ts, en->origin, x->sl.ts, x->sl.origin) : 1;
        if (cmp == 0) { /* the same write again: nothing to do */
            if (stats) stats->duplicates++;
            continue;
        }
        if (cmp < 0) {
            /* The incoming write lost. If it came from another region than the
             * version that beat it, neither had seen the other: a conflict. */
            if (strcmp(en->origin, x->sl.origin) != 0 && en->kind != REPL_BACKFILL_ITEM)
                record_conflict(d, x->t, en->pk, en->pk_len, x->sl.ts, x->sl.origin, en->ts,
                                en->origin);
            if (stats) stats->lost++;
            continue;
        }
        /* The incoming write wins. The local version it replaces was
         * concurrent unless it is the very version the writer replaced. */
        if (x->sl.exists && strcmp(x->sl.origin, en->origin) != 0 &&
            en->kind != REPL_BACKFILL_ITEM &&
            !(x->sl.ts == en->prev_ts && strcmp(x->sl.origin, en->prev_origin) == 0))
            record_conflict(d, x->t, en->pk, en->pk_len, en->ts, en->origin, x->sl.ts,
                            x->sl.origin);
        /* The item is checked, then stored as the origin encoded it (the same
         * bytes in every region, and no re-encoding). */
        mv_value *item = NULL;
        if (!tomb && item_decode(&a, en->data, en->data_len, &item) < 0) {
            err_set(e, ERR_VALIDATION, "malformed item in a replicated write from %s", source);
            goto out;
        }
        if (!tomb && !replicated_key_matches(x->t, en, item, &k)) {
            err_set(e, ERR_VALIDATION,
                    "replicated write from %s: the item's key attributes are not its key", source);
            goto out;
        }
        buf_reset(&rec);
        record_header(&rec, en->ts, en->origin, tomb);
        if (!tomb) buf_append(&rec, en->data, en->data_len);
        store_batch_put(b, STORE_CF_ITEMS, x->sl.key, x->sl.klen, rec.data, rec.len);
        if (tomb) index_tombstone(b, en->ts, x->sl.key, x->sl.klen, x->t->uid);
        bool live_before = x->sl.exists && !x->sl.tombstone;
        /* Relative to the state before this batch (an earlier entry of the
         * batch on the same key has already counted its own change). */
        x->dcount = (tomb ? 0 : 1) - (live_before ? 1 : 0);
        x->dtomb = (tomb ? 1 : 0) - (x->sl.exists && x->sl.tombstone ? 1 : 0);
        x->dbytes = (int64_t)(x->sl.klen + rec.len) - (int64_t)x->sl.stored_len;
        /* Later entries of this batch on the same key see this version. */
        x->sl.exists = true;
        x->sl.tombstone = tomb;
        x->sl.ts = en->ts;
        x->sl.origin = en->origin;
        x->sl.item = item;
        x->sl.stored_len = x->sl.klen + rec.len;
        if (stats) stats->applied++;
    }
    if (position) {
        /* Positions only move forward: re-applying an old batch (after a
         * reconnect) must not make the source resend what is already here. */
        uint64_t recorded;
        if (db_applied_position(d, source, &recorded, e) < 0) goto out;
        if (position > recorded) {
            buf_reset(&k);
            applied_key(&k, source);
            uint8_t v[8];
            store_u64be(v, position);
            store_batch_put(b, STORE_CF_META, k.data, k.len, v, 8);
        }
    }
    for (size_t i = 0; i < m; i++)
        stats_add(b, it[i].t->id, it[i].dcount, it[i].dbytes, it[i].dtomb);
    /* The clock restarts above what it observed too (within the skew bound):
     * a write made after reading a replicated version, on any key, orders
     * after it also after a restart. At most one sync write per second of
     * clock progress (ensure_clock_bound). */
    if (max_observed && ensure_clock_bound(d, HLC_MS(max_observed), e) < 0) goto out;
    if (store_batch_count(b) > 0 && store_write(d->st, b, e) < 0) goto out;
    /* Statistics change only once the batch is durable. */
    for (size_t i = 0; i < m; i++) {
        atomic_fetch_add(&it[i].t->item_count, it[i].dcount);
        atomic_fetch_add(&it[i].t->size_bytes, it[i].dbytes);
        atomic_fetch_add(&it[i].t->tombstones, it[i].dtomb);
    }
    rc = 0;
out:
    store_batch_free(b);
    lockset_release(d, &ls);
    for (size_t i = 0; i < m; i++)
        table_release(it[i].t);
    buf_free(&k);
    buf_free(&rec);
    arena_free(&a);
    return rc;
}

int db_safe_point(db *d, uint64_t *seq, uint64_t *ts, err *e)
{
    *ts = rlog_safe_point(&d->log, seq);
    /* The timestamp is promised to peers: a restart must not issue it again. */
    return ensure_clock_bound(d, HLC_MS(*ts), e);
}

int db_log_reserve(db *d, uint64_t *seq, uint64_t *version, err *e)
{
    *seq = rlog_reserve(&d->log, 1);
    if (!version) return 0;
    *version = hlc_now(&d->clock); /* stamped after reserving: rlog.h */
    /* Like an item's version, a descriptor's must stay above every version
     * issued before a restart. */
    if (ensure_clock_bound(d, HLC_MS(*version), e) < 0) {
        rlog_done(&d->log, *seq);
        return -1;
    }
    return 0;
}

int db_log_trim(db *d, uint64_t through, err *e)
{
    pthread_mutex_lock(&d->log_mark_mu);
    int rc = 0;
    if (through > atomic_load(&d->log_trimmed)) {
        /* Only what every reader has passed is trimmed (the caller's rule),
         * and never beyond the watermark: later seqs may still commit. */
        assert(through <= rlog_stable(&d->log));
        uint8_t lo[8], hi[8], v[8];
        store_u64be(lo, 0);
        store_u64be(hi, through + 1);
        store_u64be(v, through);
        /* Readers learn of the trim before any entry goes (see db.h). */
        if (through > atomic_load(&d->log_trim_target)) atomic_store(&d->log_trim_target, through);
        store_batch *b = store_batch_new(d->st);
        store_batch_delete_range(b, STORE_CF_RLOG, lo, 8, hi, 8);
        store_batch_put(b, STORE_CF_META, LOG_TRIMMED_KEY, strlen(LOG_TRIMMED_KEY), v, 8);
        /* The segments now gone entirely leave the total with their records. */
        uint8_t slo[12], shi[12];
        segment_key(slo, 0);
        segment_key(shi, (through + 1) / LOG_SEGMENT_SEQS);
        store_iter *it = store_iter_new(d->st, STORE_CF_COUNTERS, slo, 12, shi, 12);
        int64_t bytes = 0, entries = 0;
        for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
            size_t vl;
            const uint8_t *val = store_iter_value(it, &vl);
            store_counter c[3];
            if (store_counters_decode(val, vl, c, 3) == 3) {
                bytes += c[0].v;
                entries += c[1].v;
            }
        }
        rc = store_iter_status(it, e);
        store_iter_free(it);
        store_batch_delete_range(b, STORE_CF_COUNTERS, slo, 12, shi, 12);
        store_counter c[2] = {{STORE_SUM, -bytes}, {STORE_SUM, -entries}};
        if (entries) store_batch_add(b, LOG_TOTAL_KEY, strlen(LOG_TOTAL_KEY), c, 2);
        if (rc == 0) rc = store_write(d->st, b, e);
        store_batch_free(b);
        if (rc == 0) atomic_store(&d->log_trimmed, through);
    }
    pthread_mutex_unlock(&d->log_mark_mu);
    return rc;
}

int db_log_size(db *d, uint64_t *bytes, uint64_t *entries, err *e)
{
    store_counter c[2];
    size_t n;
    int r = store_get_counters(d->st, LOG_TOTAL_KEY, strlen(LOG_TOTAL_KEY), c, 2, &n, e);
    *bytes = r == 1 && n == 2 && c[0].v > 0 ? (uint64_t)c[0].v : 0;
    *entries = r == 1 && n == 2 && c[1].v > 0 ? (uint64_t)c[1].v : 0;
    return r < 0 ? -1 : 0;
}

int db_log_retention_cut(db *d, uint64_t stable, uint64_t max_age_ms, uint64_t max_bytes,
                         uint64_t now_ms, uint64_t *cut, err *e)
{
    *cut = 0;
    if (!max_age_ms && !max_bytes) return 0;
    uint64_t total, entries;
    if (db_log_size(d, &total, &entries, e) < 0) return -1;
    uint8_t slo[12], shi[12];
    segment_key(slo, 0);
    segment_key(shi, UINT64_MAX);
    store_iter *it = store_iter_new(d->st, STORE_CF_COUNTERS, slo, 12, shi, 12);
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *val = store_iter_value(it, &vl);
        store_counter c[3];
        if (kl != 12 || store_counters_decode(val, vl, c, 3) != 3) continue;
        uint64_t seg_end = (load_u64be(k + 4) + 1) * LOG_SEGMENT_SEQS - 1;
        bool too_old = max_age_ms && (uint64_t)c[2].v + max_age_ms < now_ms;
        bool too_big = max_bytes && total > max_bytes;
        if (!too_old && !too_big) break;
        *cut = seg_end < stable ? seg_end : stable;
        total = total > (uint64_t)c[0].v ? total - (uint64_t)c[0].v : 0;
        if (seg_end >= stable) break;
    }
    int rc = store_iter_status(it, e);
    store_iter_free(it);
    return rc;
}

uint64_t db_log_trim_horizon(db *d)
{
    return atomic_load(&d->log_trim_target);
}

uint64_t db_log_trimmed(db *d)
{
    return atomic_load(&d->log_trimmed);
}

int db_log_skip_past(db *d, uint64_t seq, err *e)
{
    pthread_mutex_lock(&d->log_mark_mu);
    uint64_t floor;
    int rc = read_mark(d, LOG_FLOOR_KEY, &floor, e);
    if (rc == 0 && seq > floor) rc = write_mark(d, LOG_FLOOR_KEY, seq, e);
    /* Durable first, then used: a crash in between only repeats the repair. */
    if (rc == 0) rlog_advance(&d->log, seq);
    pthread_mutex_unlock(&d->log_mark_mu);
    return rc;
}

void db_log_descriptor(db *d, table *t, const table_settings *s, uint64_t seq, store_batch *b)
{
    char *json = catalog_descriptor_json(t, s);
    repl_entry en;
    memset(&en, 0, sizeof(en));
    en.kind = REPL_TABLE;
    memcpy(en.table_uid, t->uid, TABLE_UID_LEN);
    en.ts = s->version;
    en.origin = d->region;
    en.prev_origin = "";
    en.commit_ms = hlc_wall_ms();
    en.pk = (const uint8_t *)"";
    en.data = (const uint8_t *)json;
    en.data_len = strlen(json);
    buf ent;
    buf_init(&ent);
    repl_entry_encode(&ent, &en);
    uint8_t k[8];
    store_u64be(k, seq);
    store_batch_put(b, STORE_CF_RLOG, k, 8, ent.data, ent.len);
    log_account la = {0};
    log_account_entry(b, &la, seq, 8 + ent.len, en.commit_ms);
    log_account_finish(b, &la);
    buf_free(&ent);
    free(json);
}

/* ---- tombstone collection ---- */

#define COLLECT_CHUNK 256

typedef struct tomb_ref {
    uint64_t ts;
    slot sl;
} tomb_ref;

/* Deletes, under their items' locks and in one batch, the tombstones of a
 * chunk of table t's index entries that are still stored with the indexed
 * version, and every index entry of the chunk. t is NULL if the index
 * entries belong to an incarnation of the table that is gone (the uid was
 * re-created here under a new local id): only the entries go. */
static int collect_chunk(db *d, table *t, const uint8_t uid[TABLE_UID_LEN], tomb_ref *refs,
                         size_t n, arena *a, uint64_t *collected, err *e)
{
    table **tables = arena_calloc(a, n ? n : 1, sizeof(table *));
    size_t *stripes = arena_calloc(a, n ? n : 1, sizeof(size_t));
    size_t m = 0;
    if (t)
        for (size_t i = 0; i < n; i++) {
            tables[m] = t;
            stripes[m++] = refs[i].sl.stripe;
        }
    lockset ls;
    lockset_init(&ls, a, tables, stripes, m);
    /* A table deleted meanwhile: its records are gone, the index entries go. */
    for (; ls.locked_t < ls.nt; ls.locked_t++)
        pthread_rwlock_rdlock(&ls.tables[ls.locked_t]->lock);
    for (; ls.locked_s < ls.ns; ls.locked_s++)
        pthread_mutex_lock(&d->stripes[ls.stripes[ls.locked_s]]);
    assert(lockset_held(d, &ls, stripes, m));
    int rc = -1;
    int64_t dbytes = 0;
    uint64_t gone = 0;
    store_batch *b = store_batch_new(d->st);
    buf ik;
    buf_init(&ik);
    for (size_t i = 0; i < n; i++) {
        tomb_ref *x = &refs[i];
        buf_reset(&ik);
        tomb_index_key(&ik, uid, x->ts, x->sl.key, x->sl.klen);
        store_batch_delete(b, STORE_CF_TOMBS, ik.data, ik.len);
        if (!t || t->deleted) continue;
        if (read_slot(d, &x->sl, a, false, e) < 0) goto out;
        /* Still this very tombstone (a newer write may have replaced it). */
        if (x->sl.exists && x->sl.tombstone && x->sl.ts == x->ts) {
            store_batch_delete(b, STORE_CF_ITEMS, x->sl.key, x->sl.klen);
            dbytes -= (int64_t)x->sl.stored_len;
            gone++;
        }
    }
    if (gone) stats_add(b, t->id, 0, dbytes, -(int64_t)gone);
    if (store_write(d->st, b, e) < 0) goto out;
    if (gone) {
        atomic_fetch_add(&t->size_bytes, dbytes);
        atomic_fetch_sub(&t->tombstones, (int64_t)gone);
        *collected += gone;
    }
    rc = 0;
out:
    buf_free(&ik);
    store_batch_free(b);
    lockset_release(d, &ls);
    return rc;
}

/* The first uid after `uid` in index order; false if there is none. */
static bool uid_successor(const uint8_t uid[TABLE_UID_LEN], uint8_t next[TABLE_UID_LEN])
{
    memcpy(next, uid, TABLE_UID_LEN);
    for (size_t i = TABLE_UID_LEN; i-- > 0;)
        if (++next[i] != 0) return true;
    return false;
}

/* Collects table t's (uid's) tombstones at or below horizon, at most max_scan
 * index entries; *more is set if the budget ran out first. */
static int collect_table(db *d, table *t, const uint8_t uid[TABLE_UID_LEN], uint64_t horizon,
                         size_t max_scan, uint64_t *collected, bool *more, err *e)
{
    uint8_t lo[TABLE_UID_LEN + 8], hi[TABLE_UID_LEN + 8];
    memcpy(lo, uid, TABLE_UID_LEN);
    store_u64be(lo + TABLE_UID_LEN, 0);
    memcpy(hi, uid, TABLE_UID_LEN);
    store_u64be(hi + TABLE_UID_LEN, horizon + 1);
    store_iter *it = store_iter_new(d->st, STORE_CF_TOMBS, lo, sizeof(lo), hi, sizeof(hi));
    tomb_ref *refs = calloc(COLLECT_CHUNK, sizeof(*refs));
    if (!refs) abort();
    arena chunk;
    arena_init(&chunk);
    size_t n = 0, scanned = 0;
    int rc = 0;
    *more = false;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        if (scanned++ == max_scan) {
            *more = true;
            break;
        }
        size_t kl;
        const uint8_t *k = store_iter_key(it, &kl);
        if (kl < TOMB_KEY_OFF + 12) { /* not an index entry of ours: it goes */
            store_batch *b = store_batch_new(d->st);
            store_batch_delete(b, STORE_CF_TOMBS, k, kl);
            rc = store_write(d->st, b, e);
            store_batch_free(b);
            if (rc < 0) break;
            continue;
        }
        tomb_ref *x = &refs[n++];
        memset(x, 0, sizeof(*x));
        x->ts = load_u64be(k + TOMB_TS_OFF);
        x->sl.key = (uint8_t *)arena_memdup(&chunk, k + TOMB_KEY_OFF, kl - TOMB_KEY_OFF);
        x->sl.klen = kl - TOMB_KEY_OFF;
        x->sl.stripe = stripe_of(x->sl.key, x->sl.klen);
        /* Entries of an earlier incarnation (another local id) only go. */
        if (load_u64be(x->sl.key) != t->id) {
            if (n > 1) rc = collect_chunk(d, t, uid, refs, n - 1, &chunk, collected, e);
            if (rc == 0) rc = collect_chunk(d, NULL, uid, x, 1, &chunk, collected, e);
            n = 0;
        } else if (n == COLLECT_CHUNK) {
            rc = collect_chunk(d, t, uid, refs, n, &chunk, collected, e);
            n = 0;
        }
        if (n == 0) {
            arena_free(&chunk);
            arena_init(&chunk);
        }
        if (rc < 0) break;
    }
    if (rc == 0 && n) rc = collect_chunk(d, t, uid, refs, n, &chunk, collected, e);
    if (rc == 0) rc = store_iter_status(it, e);
    arena_free(&chunk);
    free(refs);
    store_iter_free(it);
    return rc;
}

int db_collect_tombstones(db *d, uint64_t horizon, db_table_filter ok, void *ctx,
                          size_t max_per_table, uint64_t *collected, err *e)
{
    *collected = 0;
    if (horizon == 0) return 0;
    /* Visit each table present in the index once: one seek per table. */
    store_iter *it = store_iter_new(d->st, STORE_CF_TOMBS, NULL, 0, NULL, 0);
    int rc = 0;
    store_iter_first(it);
    while (rc == 0 && store_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = store_iter_key(it, &kl);
        uint8_t uid[TABLE_UID_LEN], next[TABLE_UID_LEN];
        if (kl < TABLE_UID_LEN) { /* not an index entry: drop it */
            store_batch *b = store_batch_new(d->st);
            store_batch_delete(b, STORE_CF_TOMBS, k, kl);
            rc = store_write(d->st, b, e);
            store_batch_free(b);
            store_iter_next(it);
            continue;
        }
        memcpy(uid, k + TOMB_UID_OFF, TABLE_UID_LEN);
        table *t = catalog_get_uid(d->cat, uid);
        bool has_next = uid_successor(uid, next);
        if (!t) {
            /* The table is gone from this region: so are its index entries,
             * the ones this pass's snapshot shows, one by one and at most
             * max_per_table a pass (a range delete could also take the
             * entries of the uid re-created here meanwhile by a back-fill). */
            store_batch *b = store_batch_new(d->st);
            for (size_t n = 0; n < max_per_table && store_iter_valid(it); n++) {
                const uint8_t *kk = store_iter_key(it, &kl);
                if (kl < TABLE_UID_LEN || memcmp(kk, uid, TABLE_UID_LEN) != 0) break;
                store_batch_delete(b, STORE_CF_TOMBS, kk, kl);
                store_iter_next(it);
            }
            rc = store_batch_count(b) ? store_write(d->st, b, e) : 0;
            store_batch_free(b);
        } else if (ok(ctx, t)) {
            bool more;
            rc = collect_table(d, t, uid, horizon, max_per_table, collected, &more, e);
        }
        table_release(t);
        if (!has_next) break;
        store_iter_seek(it, next, TABLE_UID_LEN);
    }
    if (rc == 0) rc = store_iter_status(it, e);
    store_iter_free(it);
    return rc;
}
