/* catalog.h - the table catalog: which tables exist, in which account, with
 * which key schema and settings.
 *
 * Tables live in memory (a sorted array under a rwlock) and in the meta
 * column family, one JSON descriptor per table under the key
 *     "table/" ACCOUNT "\0" NAME
 * plus "seq/table_id", the next table id. Table ids are never reused, so
 * the item keys of a deleted table (prefix = its id) can never be confused
 * with a later table of the same name.
 *
 * Lifetime: catalog_get() returns a counted reference; table_release() drops
 * it. Writers hold t->lock for reading while they write items; DeleteTable
 * takes it for writing, so once it is marked deleted no write can land under
 * its id after its key range has been deleted.
 */
#ifndef MERIDIAN_CATALOG_H
#define MERIDIAN_CATALOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "item/value.h"
#include "store/store.h"

#define TABLE_NAME_MAX 255

typedef struct table_attr_def {
    char *name;
    mv_type type; /* MV_S, MV_N or MV_B */
} table_attr_def;

#define TABLE_REPLICAS_MAX 16
#define TABLE_UID_LEN      16
#define REGION_NAME_MAX    64

typedef enum replica_status {
    REPLICA_CREATING = 1, /* back-fill in progress */
    REPLICA_ACTIVE = 2,
} replica_status;

/* One region's replica. Entries merge one by one on (version, origin), the
 * change that added, re-added or removed the replica; a removed replica stays
 * in the list (`removed`) so that an older add arriving later cannot revive
 * it. Within one incarnation (same version) status only moves CREATING ->
 * ACTIVE, so the replica's own activation never undoes anything else. */
typedef struct table_replica {
    char region[REGION_NAME_MAX + 1];
    replica_status status;
    bool removed;
    uint64_t version;
    char origin[REGION_NAME_MAX + 1];
} table_replica;

/* Everything about a table that can change after creation. For a global
 * table this whole descriptor replicates: `version` (an HLC timestamp) orders
 * descriptor changes and the newest wins in every region. */
typedef struct table_settings {
    bool pay_per_request; /* BillingMode PAY_PER_REQUEST, else PROVISIONED */
    int64_t rcu, wcu;     /* ProvisionedThroughput (0 with PAY_PER_REQUEST) */
    bool deletion_protection;
    int64_t billing_changed_ms; /* LastUpdateToPayPerRequestDateTime */
    uint64_t version;           /* HLC timestamp of the last change (0: never replicated) */
    char version_origin[REGION_NAME_MAX + 1];   /* region of that change: breaks ties */
    size_t n_replicas;                          /* 0 for a plain (single-region) table */
    table_replica replicas[TABLE_REPLICAS_MAX]; /* sorted by region name */
} table_settings;

typedef struct table {
    /* Immutable after creation. */
    uint64_t id;                /* local: the prefix of this table's item keys */
    uint8_t uid[TABLE_UID_LEN]; /* global: the same in every replica region */
    char *account;
    char *name;
    char *pk_name;
    mv_type pk_type;
    char *sk_name; /* NULL for a hash-only table */
    mv_type sk_type;
    size_t n_attr_defs;
    table_attr_def *attr_defs;
    int64_t created_ms;

    /* Mutable, under settings_mu. */
    pthread_mutex_t settings_mu;
    table_settings settings;

    /* Statistics, approximate like DynamoDB's (kept exact while running). */
    _Atomic int64_t item_count;
    _Atomic int64_t size_bytes;
    _Atomic int64_t tombstones; /* deletes in a global table not yet collected */
    _Atomic uint64_t conflicts; /* concurrent writes overwritten here (replication) */

    pthread_rwlock_t lock; /* read: item writers; write: DeleteTable */
    bool deleted;          /* under lock */
    _Atomic int refs;
} table;

typedef struct catalog catalog;

/* Loads every table from the store (statistics start at zero: db_open then
 * reads each table's persisted statistics vector, see db.c). */
int catalog_open(store *st, catalog **out, err *e);
void catalog_close(catalog *c);

/* Counted lookup; NULL if the table does not exist in that account. */
table *catalog_get(catalog *c, const char *account, const char *name);
/* Counted lookup by global identity; NULL if this region has no such table. */
table *catalog_get_uid(catalog *c, const uint8_t uid[TABLE_UID_LEN]);
void table_acquire(table *t);
void table_release(table *t);

/* Creates a table from a filled-in template (id, refs, locks and counters are
 * set here; strings are copied; a zero uid is replaced by a random one).
 * ERR_RESOURCE_IN_USE "Table already exists: NAME". */
int catalog_create(catalog *c, const table *tmpl, table **out, err *e);
/* A change made under the catalog's DDL lock: see catalog_delete and
 * catalog_update_settings. */
typedef int (*catalog_settings_fn)(void *ctx, table *t, table_settings *s, store_batch *b, err *e);
/* Deletes a table and all its items unless its deletion protection is on
 * (ERR_VALIDATION; `force` skips that check, for a replica removed
 * elsewhere). If `prepare` is not NULL it runs first, under the catalog's DDL
 * lock and with no item write in flight (t->lock held for writing): it sees
 * a copy of the table's current settings and may add further operations to
 * the batch that deletes the table (a log entry, a departed-table record),
 * or refuse (-1 with e set: nothing is deleted). Returns the (now deleted)
 * table, counted. */
int catalog_delete(catalog *c, const char *account, const char *name, bool force,
                   catalog_settings_fn prepare, void *ctx, table **out, err *e);
/* Changes t's settings: under the catalog's DDL lock, fn edits a copy of the
 * current settings (returning -1 with e set to refuse; it may add further
 * operations to the batch, such as a replication log entry), and the result
 * is persisted in that batch and published. Item writes to t are held off
 * meanwhile (t->lock), so a write sees the settings entirely before or after.
 * ERR_RESOURCE_NOT_FOUND if t was deleted. */
int catalog_update_settings(catalog *c, table *t, catalog_settings_fn fn, void *ctx, err *e);
/* Names of account's tables after `start_after` (exclusive; NULL for the
 * start), in order, at most limit; returns the count and a malloc'ed array of
 * malloc'ed names in *names (free with catalog_free_names). *more is set if
 * further names follow. */
size_t catalog_list(catalog *c, const char *account, const char *start_after, size_t limit,
                    char ***names, bool *more);
void catalog_free_names(char **names, size_t n);
/* The key of table `id`'s statistics vector in the counters column family
 * (db.c keeps it; DeleteTable deletes it with the table). */
#define TABLE_STATS_KEY_LEN 12
void catalog_stats_key(uint8_t k[TABLE_STATS_KEY_LEN], uint64_t id);
/* Sums over all tables, for metrics. */
void catalog_totals(catalog *c, int64_t *items, int64_t *bytes);
/* The table descriptor as JSON (malloc'ed): what is persisted in meta and
 * what a REPL_TABLE replication entry carries. */
char *catalog_descriptor_json(const table *t, const table_settings *s);
/* Parses a descriptor into a template table (strings are malloc'ed: free with
 * catalog_free_template). Returns -1 on malformed input. */
int catalog_parse_descriptor(const char *json, size_t len, table *tmpl);
void catalog_free_template(table *tmpl);
/* Descriptor order: version, then version_origin (like item versions). The
 * version orders the settings fields (billing, throughput, protection);
 * replica entries carry their own versions. */
bool table_settings_newer(const table_settings *a, const table_settings *b);
/* Merges a received descriptor into local: settings fields if newer, replica
 * entries one by one (see table_replica); *changed tells whether local
 * changed. -1 (local unchanged) if the union of the replica lists would not
 * fit in TABLE_REPLICAS_MAX entries: never drops an entry. */
int table_settings_merge(table_settings *local, const table_settings *incoming, bool *changed);
/* Adds (or re-adds) region's replica as a new incarnation; -1 if full. */
int table_settings_add_replica(table_settings *s, const char *region, replica_status st,
                               uint64_t version, const char *origin);
/* Marks region's replica removed (kept as a removal entry). */
void table_settings_remove_replica(table_settings *s, const char *region, uint64_t version,
                                   const char *origin);
/* CREATING -> ACTIVE for region's current incarnation; true if it changed. */
bool table_settings_activate(table_settings *s, const char *region);
/* Replicas not removed. */
size_t table_settings_live(const table_settings *s);
/* Records a change made now in region `origin`. */
void table_settings_stamp(table_settings *s, uint64_t version, const char *origin);
/* True if the table replicates (it has replicas in other regions). */
bool table_settings_replicated(const table_settings *s);
/* The live (not removed) replica of region, or NULL. */
const table_replica *table_settings_replica(const table_settings *s, const char *region);

/* Snapshot of all tables (counted refs) for background work; free with
 * catalog_release_all. */
size_t catalog_all(catalog *c, table ***out);
void catalog_release_all(table **ts, size_t n);

#endif
