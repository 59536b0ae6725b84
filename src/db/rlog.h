/* rlog.h - the replication log's sequence numbers and visibility watermark.
 *
 * Every write to a global table appends one entry to the rlog column family
 * under the key u64 BE `seq`, in the same RocksDB batch as the item itself.
 * Sequence numbers are reserved before the batch commits, and batches commit
 * concurrently (group commit), so entries can become durable out of order:
 * seq 7 may be on disk while seq 6 is still being written. A reader streaming
 * the log must therefore stop at the watermark: the largest seq such that
 * every smaller reserved seq has finished (committed or failed). Invariant:
 *   stable < every outstanding reservation, and every seq <= stable that was
 *   committed is readable.
 * A failed batch leaves a hole, which readers simply never see. After a
 * restart nothing is outstanding and the log continues above every seq it
 * ever used: next = max(last key on disk, the persisted high-water mark) + 1
 * (db.c: the mark is written in the batch that trims the log, so a log
 * trimmed empty, or whose newest reservations were holes, never reuses a seq
 * a peer may have recorded as applied).
 *
 * Safe points: every reservation remembers the clock's value when it was
 * made, and the writer stamps its versions only after reserving, so each
 * entry's timestamp is larger than its reservation's clock value. Hence
 * rlog_safe_point's promise: every entry with a seq above the returned
 * watermark carries a timestamp above the returned clock value. A peer that
 * has applied the log through that watermark has every write of this region
 * stamped at or below that value (tombstone collection rests on this).
 */
#ifndef MERIDIAN_RLOG_H
#define MERIDIAN_RLOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock/hlc.h"

typedef struct rlog {
    pthread_mutex_t mu;
    pthread_cond_t advanced; /* broadcast whenever stable grows */
    uint64_t next;           /* next seq to reserve */
    uint64_t stable;         /* watermark: see above */
    hlc *clock;              /* the clock whose timestamps stamp the entries */
    /* Outstanding reservations in increasing order: [first, first + n). The
     * array grows as needed: reserving never blocks, so it is safe while
     * holding other locks. */
    size_t n_out, cap;
    struct rlog_reservation {
        uint64_t first;
        uint64_t n;
        bool done;
        uint64_t clock; /* the clock's value when reserved: entries are stamped above it */
    } * out;
} rlog;

/* last_used: the largest seq ever used (the largest key in the rlog column
 * family, or the persisted high-water mark if larger; 0 if none); clock: the
 * clock writers stamp entries with, after reserving. */
void rlog_init(rlog *l, uint64_t last_used, hlc *clock);
void rlog_destroy(rlog *l);
/* Reserves n consecutive seqs; returns the first. Never blocks on others. */
uint64_t rlog_reserve(rlog *l, uint32_t n);
/* Marks a reservation finished (its batch committed or failed). `first`
 * must be an outstanding reservation, finished once (asserted). */
void rlog_done(rlog *l, uint64_t first);
uint64_t rlog_stable(rlog *l);
/* The largest seq reserved so far (next - 1). */
uint64_t rlog_high(rlog *l);
/* Makes every seq up to `seq` used: later reservations start above it. The
 * skipped seqs are holes (finished reservations). No-op if already past. */
void rlog_advance(rlog *l, uint64_t seq);
/* The watermark (*seq) and a timestamp (returned) such that every entry with
 * a seq above *seq, present or future, is stamped above that timestamp. */
uint64_t rlog_safe_point(rlog *l, uint64_t *seq);
/* Waits until stable > after or timeout_ms passes; returns the watermark. */
uint64_t rlog_wait(rlog *l, uint64_t after, int timeout_ms);

#endif
