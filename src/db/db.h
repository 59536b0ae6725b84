/* db.h - the region's database: items of every table, read and written with
 * versions, on top of store/ and catalog.
 *
 * Record format (value in the items column family; key: codec.h):
 *     byte 0      record format (1)
 *     byte 1      flags (bit 0: tombstone: a delete in a global table)
 *     bytes 2-9   version timestamp, HLC (u64 big-endian, see clock/hlc.h)
 *     byte 10     length L of the origin region name (1..255)
 *     L bytes     origin region name
 *     rest        item encoding (item/codec.h)
 * The version (timestamp, origin) is what last-writer-wins compares
 * (db_version_cmp; docs/REPLICATION.md).
 *
 * Writes: db_write() is the single write path. Under a striped lock per
 * item key it reads the current item, lets the caller's mutate callback
 * decide the new item (conditions are evaluated there, on the current item),
 * stamps a fresh HLC version (always above the version it replaces) and
 * commits every item of the call in one atomic, durable RocksDB batch. For a
 * global table the replication log entry of each write is appended to that
 * same batch, so an item and its log entry are always committed together or
 * not at all, and a delete leaves a versioned tombstone.
 */
#ifndef MERIDIAN_DB_H
#define MERIDIAN_DB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock/hlc.h"
#include "db/rlog.h"
#include "db/catalog.h"
#include "item/value.h"
#include "store/store.h"

#define DB_LOCK_STRIPES       4096
#define LOG_SEGMENT_SEQS      4096 /* log seqs per segment record (db.c, counters) */
#define RECORD_FLAG_TOMBSTONE 0x01 /* byte 1 of a record */

typedef struct db {
    store *st;
    catalog *cat;
    hlc clock;
    char region[256];
    pthread_mutex_t stripes[DB_LOCK_STRIPES];
    /* Clock persistence: every timestamp the clock issued, and every
     * replicated version it observed (clamped to the skew bound), is below
     * clock_bound_ms, which is itself on disk (meta "clock/bound"), so the
     * clock restarts above every version it ever issued or applied, deleted
     * ones included, whatever the wall clock says. (A write stamped just above a
     * stored version that is ahead of the clock, db_write's rule, is the one
     * exception: it may be above the bound, which is harmless, as that
     * version stays unique for its item: any later write of the item reads
     * it and stamps above it.) */
    pthread_mutex_t clock_mu;
    _Atomic uint64_t clock_bound_ms;

    rlog log; /* replication log sequence/watermark */
    bool log_ready;
    /* The log's durable marks (meta "rlog/trimmed", "rlog/floor"): every
     * entry <= log_trimmed is deleted, and the log never reuses a seq <=
     * max(log_trimmed, floor). Written under log_mark_mu, only upwards. */
    pthread_mutex_t log_mark_mu;
    _Atomic uint64_t log_trimmed;
    _Atomic uint64_t log_trim_target; /* >= log_trimmed: set before a trim's write */
    uint64_t max_skew_ms;             /* received timestamps may lead by this much */
    _Atomic uint64_t skew_violations; /* received timestamps beyond that */
    _Atomic uint64_t skew_overwrites; /* local writes stamped above such a stored version */
    pthread_mutex_t conflicts_mu;     /* the ring of recent conflicts: */
    struct conflict_slot *conflicts;  /* DB_CONFLICTS_KEPT entries */
    uint64_t conflicts_next;
} db;

/* One overwritten concurrent write, for `meridian conflicts`. */
#define DB_CONFLICTS_KEPT 512
typedef struct db_conflict {
    char account[65];
    char table[256];
    const char *key; /* partition key as DynamoDB JSON, whole (in the arena given to
                        db_recent_conflicts); NULL if it cannot be decoded */
    uint64_t winner_ts, loser_ts;
    char winner_origin[65], loser_origin[65];
    uint64_t at_ms;
} db_conflict;
/* An entry of the ring (db.c): the conflict, and its partition key as
 * stored (the encoded bytes, malloc'ed, of any length), rendered as JSON
 * only when listed. */
struct conflict_slot {
    db_conflict c; /* c.key unused */
    mv_type pk_type;
    uint8_t *pk;
    size_t pk_len;
};

typedef struct item_record {
    uint64_t ts;        /* HLC version timestamp */
    const char *origin; /* region that made the write */
    bool tombstone;
    mv_value *item; /* NULL for a tombstone */
} item_record;

/* Opens the store and catalog in dir and seeds the HLC past every version on disk. */
int db_open(db *d, const char *dir, const char *region, const store_options *opt, err *e);
void db_close(db *d);

/* Length of a record's header: the item encoding starts there. */
size_t record_header_len(const uint8_t *p, size_t len);
void record_encode(buf *out, uint64_t ts, const char *origin, bool tombstone, const mv_value *item);
int record_decode(arena *a, const uint8_t *p, size_t len, item_record *out);

/* Reads one item (NULL in *out if absent). */
int db_get(db *d, table *t, const mv_value *pk, const mv_value *sk, arena *a, mv_value **out,
           err *e);
/* db_get that also gives the version of what is stored: the live item's or
 * the tombstone's (*ts 0 and *origin "" if nothing is stored). */
int db_get_versioned(db *d, table *t, const mv_value *pk, const mv_value *sk, arena *a,
                     mv_value **out, uint64_t *ts, const char **origin, err *e);

/* Decides the new contents of one item from its current contents (NULL if
 * absent). Returns DB_MUTATE_WRITE with *new_item set (NULL deletes the
 * item), DB_MUTATE_SKIP to leave it unchanged, or -1 with e set to abort the
 * whole db_write (e.g. a failed condition). */
#define DB_MUTATE_WRITE 0
#define DB_MUTATE_SKIP  1
typedef int (*db_mutate_fn)(void *ctx, const mv_value *old_item, arena *a, mv_value **new_item,
                            err *e);

typedef struct db_write_op {
    table *t;
    const mv_value *pk;
    const mv_value *sk; /* NULL for hash-only tables */
    db_mutate_fn fn;
    void *ctx;
    /* Filled in by db_write: */
    const mv_value *old_item; /* item before the write (NULL if none) */
    mv_value *new_item;       /* item after (NULL if deleted or absent) */
    bool written;             /* false when the callback chose DB_MUTATE_SKIP */
    uint64_t ts;              /* version stored after the write (0: nothing stored) */
    const char *origin;       /* its region ("" if nothing stored) */
} db_write_op;

/* Applies n operations atomically: all are committed in one durable batch, or
 * none is (if any callback fails, or the store fails). Two operations on the
 * same item in one call are the caller's error (checked here). Returns 0 or
 * -1 with e set; ERR_RESOURCE_NOT_FOUND if a table was deleted meanwhile. */
int db_write(db *d, db_write_op *ops, size_t n, arena *a, err *e);

/* ---- replication (repl/ drives these) ---- */

typedef struct repl_entry repl_entry;

typedef struct db_apply_stats {
    uint64_t applied;    /* won and written */
    uint64_t lost;       /* older than the local version */
    uint64_t duplicates; /* the same version again */
    uint64_t skipped;    /* for a table this region does not have */
} db_apply_stats;

/* Applies item entries received from region `source` (REPL_PUT,
 * REPL_TOMBSTONE, REPL_BACKFILL_ITEM; other kinds are ignored) with
 * last-writer-wins, counting conflicts, and records `position` (if non-zero)
 * as applied from source: all in one atomic, durable batch. Never logs the
 * entries again (the mesh sends every write from its origin to every replica). */
int db_apply(db *d, const char *source, const repl_entry *entries, size_t n, uint64_t position,
             db_apply_stats *stats, err *e);
int db_applied_position(db *d, const char *source, uint64_t *pos, err *e);
/* Advances the clock past a timestamp received from origin, but at most
 * --max-clock-skew-ms ahead of the local wall clock (counted and logged). */
void db_observe_remote(db *d, uint64_t ts, const char *origin);
/* -1, 0, 1 as version a is older than, the same as, newer than version b. */
int db_version_cmp(uint64_t ts_a, const char *origin_a, uint64_t ts_b, const char *origin_b);
/* The BACKFILL_ITEM entry carrying one stored record (key and record bytes
 * as in the items column family) of table t; it points into key and rec (and
 * a). -1 if the record is corrupt. */
int db_backfill_entry(table *t, const uint8_t *key, size_t klen, const uint8_t *rec, size_t len,
                      arena *a, repl_entry *en);
/* Splits a storage key of table t into the enc(pk)/enc(sk) fields of e. */
void db_split_key(table *t, const uint8_t *key, size_t klen, repl_entry *e);
/* This region's safe point (rlog_safe_point): every log entry above *seq is
 * stamped above *ts, also after a restart (the clock bound covers *ts). */
int db_safe_point(db *d, uint64_t *seq, uint64_t *ts, err *e);
/* Reserves the log seq of a descriptor change and, if version is not NULL,
 * stamps its version: after the reservation, as rlog.h requires of every
 * logged timestamp, and below the persisted clock bound. On success the
 * caller calls rlog_done(&d->log, *seq) once its batch has committed or
 * failed (or if it gives up); on failure (-1, e set) nothing is reserved. */
int db_log_reserve(db *d, uint64_t *seq, uint64_t *version, err *e);
/* Deletes every log entry with seq <= through and, in the same batch,
 * records that the log was trimmed through it: after a restart the log
 * continues above `through` even if nothing is left on disk (a peer that
 * recorded such a seq as applied must never see it used again). No-op if the
 * log was already trimmed that far. */
int db_log_trim(db *d, uint64_t through, err *e);
/* The log's size (bytes of keys and entries, and entries) from its segment
 * records: exact but for a segment trimmed in part (db.c). */
int db_log_size(db *d, uint64_t *bytes, uint64_t *entries, err *e);
/* Retention: *cut is the last seq of the log (at most stable) that is out of
 * retention, in whole segments from the oldest: older than max_age_ms (its
 * newest entry committed before now_ms - max_age_ms), or beyond max_bytes
 * counted from the newest entry back (0 for either: no limit); 0 if none.
 * Reads the segment records: one seek, then one step per segment cut. */
int db_log_retention_cut(db *d, uint64_t stable, uint64_t max_age_ms, uint64_t max_bytes,
                         uint64_t now_ms, uint64_t *cut, err *e);
/* Every log entry <= the returned seq has been deleted (trimmed). */
uint64_t db_log_trimmed(db *d);
/* The log entries <= the returned seq may be gone: a trim publishes its
 * target here before its write, so a reader that creates an iterator and
 * then finds this below its position knows the iterator misses nothing it
 * needs (db_log_trimmed is published only after the write). */
uint64_t db_log_trim_horizon(db *d);
/* Makes the log continue above seq, durably (the mark is on disk before any
 * seq above it is reserved): the repair when a peer reports a position
 * beyond the end of this log. */
int db_log_skip_past(db *d, uint64_t seq, err *e);
/* Appends the REPL_TABLE entry carrying t's descriptor with settings s, under
 * the seq reserved by db_log_reserve, to b. */
void db_log_descriptor(db *d, table *t, const table_settings *s, uint64_t seq, store_batch *b);

/* Tombstone collection. Every tombstone is indexed by table and version
 * timestamp (column family tombs). db_collect_tombstones deletes the
 * tombstones with a timestamp at or below horizon in the tables ok(ctx, t)
 * accepts, looking at no more than max_per_table index entries of each
 * table per call (a table that is refused costs one seek, so it never holds
 * up the others), and sets *collected. The caller (repl) chooses the
 * horizon: below it, every region has applied every write
 * (docs/REPLICATION.md, "Tombstone collection"). */
typedef bool (*db_table_filter)(void *ctx, table *t);
int db_collect_tombstones(db *d, uint64_t horizon, db_table_filter ok, void *ctx,
                          size_t max_per_table, uint64_t *collected, err *e);
/* The newest conflicts of one table, newest first; their keys are rendered
 * into a. */
size_t db_recent_conflicts(db *d, const char *account, const char *table_name, db_conflict *out,
                           size_t max, arena *a);

#endif
