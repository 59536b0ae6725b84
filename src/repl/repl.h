/* repl.h - replication between regions: peer links, back-fill, and the
 * application of table descriptors received from other regions.
 *
 * Every region runs one sender thread per peer (it connects to the peer's
 * --peer-listen address and streams this region's replication log there)
 * and a listener whose receiver threads apply what other regions stream to
 * it. The protocol and its guarantees are in docs/REPLICATION.md; the bytes
 * in repl/wire.h; the storage side (log append, last-writer-wins apply) in
 * db/db.c.
 */
#ifndef MERIDIAN_REPL_H
#define MERIDIAN_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/buf.h"

typedef struct repl_peer_cfg {
    const char *name;
    const char *host;
    int port;
} repl_peer_cfg;

typedef struct repl_config {
    const char *region;
    const char *listen_host; /* --peer-listen */
    int listen_port;
    const repl_peer_cfg *peers;
    size_t n_peers;
    const uint8_t *key; /* cluster key */
    size_t key_len;
    uint64_t retention_ms;    /* keep unacknowledged log entries at most this long (0: forever) */
    uint64_t retention_bytes; /* and at most this many bytes of log (0: no limit) */
    uint64_t tombstone_grace_ms; /* tombstones stay this long after every region has them */
} repl_config;

typedef struct repl repl;

/* Binds the peer-listen address and starts every thread. NULL with e set
 * if the address cannot be bound. */
repl *repl_start(db *d, const repl_config *cfg, err *e);
/* Stops and joins every thread, closing every link; safe with NULL. */
void repl_stop(repl *r);

/* True if region is one of this region's configured peers. */
bool repl_is_peer(const repl *r, const char *region);
/* Asks the sender to `peer` to back-fill table t (persisted marker key in
 * meta: "backfill/PEER/UIDHEX"; the caller puts it in its batch with
 * repl_backfill_marker, then calls repl_kick so the sender looks at once). */
void repl_backfill_marker(buf *key, const char *peer, const uint8_t uid[TABLE_UID_LEN]);
void repl_kick(repl *r);

/* Progress (0-100) of the back-fill this region is sending to peer, or -1. */
int repl_backfill_percent(repl *r, const char *peer);

/* Records, in b, that this region's replica of table t departs: its writes
 * still in the log (every one at or below log seq `through`) keep going to
 * the regions listed in `descriptor_json` (the replica set without this
 * region) although the table is gone here, and retention keeps them until
 * each of those regions has them (the record is deleted then). Meta key
 * "departed/UIDHEX", value: 0x01 | u64 BE through | descriptor JSON. */
void repl_departed_record(store_batch *b, const uint8_t uid[TABLE_UID_LEN], uint64_t through,
                          const void *descriptor_json, size_t len);
/* Departures (catalog_delete of a replicated table with its departed
 * record) and the log's retention serialise on this lock, so retention
 * never misses a departed record committed while it decides (lock order:
 * before the catalog's DDL lock). Safe with r NULL (no replication). */
void repl_departures_lock(repl *r);
void repl_departures_unlock(repl *r);
/* This region's replica of t departs because another region removed it:
 * the local table goes, with its departed record (see above). */
int repl_depart_table(repl *r, table *t, err *e);

/* Prometheus text for replication (appended to /metrics). */
void repl_render_metrics(repl *r, buf *out);
/* Links and lag as JSON for `meridian status` (GET /replication/status). */
void repl_status_json(repl *r, buf *out);

/* Applies a table descriptor received from another region (REPL_TABLE or
 * REPL_BACKFILL_BEGIN): creates, updates or removes the local replica. */
int repl_apply_descriptor(repl *r, const char *source, const uint8_t *json, size_t len, err *e);
/* A back-fill of the table finished here: a CREATING local replica becomes
 * ACTIVE and says so to the other regions. */
int repl_backfill_finished(repl *r, const uint8_t uid[TABLE_UID_LEN], err *e);

#endif
