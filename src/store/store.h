/* store.h - the only module that talks to RocksDB.
 *
 * One RocksDB database per region process, with column families:
 *   meta   table catalog and counters (db/catalog.c owns the key layout)
 *   items  item records keyed by item/codec.h key_encode_item
 *   rlog   replication log (appended in the same batch as the item; db/rlog.h)
 *   tombs  index of tombstones by table and version, for their collection (db/db.h)
 *   counters  counter vectors, changed by merge operands (store_batch_add):
 *          statistics and log segment metadata kept exact in the batches
 *          that change what they count, and read without a scan
 * RocksDB's C API (malloc'ed error strings, malloc'ed values) stays behind
 * this interface; callers see err and buf.
 *
 * Durability: store_write() returns only after the batch is in the WAL and
 * the WAL is fsync'ed (WriteOptions.sync). Concurrent writers are grouped by
 * RocksDB's write thread: one leader writes and syncs the WAL for everyone
 * waiting, so N concurrent writes cost one fsync (group commit), not N.
 */
#ifndef MERIDIAN_STORE_H
#define MERIDIAN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

typedef enum store_cf {
    STORE_CF_META = 0,
    STORE_CF_ITEMS,
    STORE_CF_RLOG,
    STORE_CF_TOMBS,
    STORE_CF_COUNTERS,
    STORE_CF_COUNT
} store_cf;

typedef struct store store;
typedef struct store_batch store_batch;
typedef struct store_iter store_iter;

typedef struct store_options {
    size_t block_cache_bytes; /* shared LRU block cache; 0 = default (256 MiB) */
    bool sync;                /* fsync the WAL on every write (default true) */
} store_options;

/* Opens (creating if missing, mode 0700) the database in dir. */
int store_open(const char *dir, const store_options *opt, store **out, err *e);
/* Flushes memtables and closes; safe with NULL. */
void store_close(store *s);

/* Point read. Returns 1 and copies the value into out (after buf_reset) if
 * the key exists, 0 if not, -1 on error. */
int store_get(store *s, store_cf cf, const void *key, size_t klen, buf *out, err *e);

store_batch *store_batch_new(store *s);
void store_batch_free(store_batch *b);
void store_batch_clear(store_batch *b);
void store_batch_put(store_batch *b, store_cf cf, const void *k, size_t kl, const void *v,
                     size_t vl);
void store_batch_delete(store_batch *b, store_cf cf, const void *k, size_t kl);
/* Deletes [from, to). */
void store_batch_delete_range(store_batch *b, store_cf cf, const void *from, size_t fl,
                              const void *to, size_t tl);
size_t store_batch_count(const store_batch *b);

/* Counter vectors (column family counters). A value is a vector of up to
 * STORE_COUNTERS_MAX fields, each with its own merge rule; store_batch_add
 * adds a merge operand that RocksDB folds into the stored vector field by
 * field (SUM adds, MAX and MIN keep the larger or smaller), so concurrent
 * batches can each add their change without reading the current value, in
 * any commit order (the merge is associative and commutative). Encoding: u8
 * n, then n times (u8 rule, i64 BE value). An operand whose shape (n and
 * rules) differs from the stored vector fails the merge, and RocksDB then
 * reports corruption for that key: a key keeps one layout for ever. */
#define STORE_COUNTERS_MAX 8
typedef enum store_rule { STORE_SUM = 1, STORE_MAX = 2, STORE_MIN = 3 } store_rule;
typedef struct store_counter {
    store_rule rule;
    int64_t v;
} store_counter;
void store_batch_add(store_batch *b, const void *k, size_t kl, const store_counter *c, size_t n);
/* Replaces the vector (a put). */
void store_batch_set_counters(store_batch *b, const void *k, size_t kl, const store_counter *c,
                              size_t n);
/* Encodes c (n fields) into out (room for 1 + 9 * n bytes); the length. */
size_t store_counters_encode(uint8_t *out, const store_counter *c, size_t n);
/* The merge RocksDB runs on the counters column family, for tests and
 * fuzzing: `existing` (NULL if none) then each operand in order, the result
 * encoded into out (after buf_reset). -1 if any input is malformed. */
int store_counters_merge(const uint8_t *existing, size_t elen, const uint8_t *const *ops,
                         const size_t *lens, size_t n_ops, buf *out);
/* Decodes a stored vector into c (at most max fields); the field count, or
 * -1 if malformed. */
int store_counters_decode(const uint8_t *p, size_t len, store_counter *c, size_t max);
/* Reads one vector: 1 (fields in c, count in *n), 0 if absent, -1 on error. */
int store_get_counters(store *s, const void *k, size_t kl, store_counter *c, size_t max, size_t *n,
                       err *e);
/* Commits the batch atomically and durably (see above). */
int store_write(store *s, store_batch *b, err *e);

/* Iterator over [lo, hi) of one column family (either bound may be NULL);
 * the bounds are copied. Reads see a consistent snapshot taken at creation. */
store_iter *store_iter_new(store *s, store_cf cf, const void *lo, size_t lol, const void *hi,
                           size_t hil);
void store_iter_free(store_iter *it);
void store_iter_seek(store_iter *it, const void *k, size_t kl);          /* first key >= k */
void store_iter_seek_for_prev(store_iter *it, const void *k, size_t kl); /* last key <= k */
void store_iter_first(store_iter *it);
void store_iter_last(store_iter *it);
void store_iter_next(store_iter *it);
void store_iter_prev(store_iter *it);
bool store_iter_valid(store_iter *it);
const uint8_t *store_iter_key(store_iter *it, size_t *len);
const uint8_t *store_iter_value(store_iter *it, size_t *len);
/* After the iterator becomes invalid: 0 if it simply ran out, -1 (e set) on error. */
int store_iter_status(store_iter *it, err *e);

/* Approximate bytes on disk (SST + WAL) for metrics. */
uint64_t store_disk_bytes(store *s);
/* RocksDB's estimate of the bytes the keys in [lo, hi) of one column family
 * take in SST files (rocksdb_approximate_sizes_cf: from the files' indexes,
 * without reading the range, so the cost does not grow with it). Keys still
 * only in the memtables are not counted (see store_memtable_entries). 0 if
 * it cannot tell. */
uint64_t store_approximate_bytes(store *s, store_cf cf, const void *lo, size_t lol, const void *hi,
                                 size_t hil);
/* The entries in one column family's memtables (active and immutable: not
 * yet in SST files), from RocksDB's counters. */
uint64_t store_memtable_entries(store *s, store_cf cf);

/* Failed writes so far; whether the last write failed; whether it failed
 * because the disk is full (ENOSPC). For metrics. */
void store_write_health(store *s, uint64_t *errors, bool *failing, bool *disk_full);

#endif
