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

typedef struct table_settings {
    bool pay_per_request; /* BillingMode PAY_PER_REQUEST, else PROVISIONED */
    int64_t rcu, wcu;     /* ProvisionedThroughput (0 with PAY_PER_REQUEST) */
    bool deletion_protection;
    int64_t billing_changed_ms; /* LastUpdateToPayPerRequestDateTime */
} table_settings;

typedef struct table {
    /* Immutable after creation. */
    uint64_t id;
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

    pthread_rwlock_t lock; /* read: item writers; write: DeleteTable */
    bool deleted;          /* under lock */
    _Atomic int refs;
} table;

typedef struct catalog catalog;

/* Loads every table from the store (statistics start at zero: db_open
 * recounts them in its start-up pass over the items). */
int catalog_open(store *st, catalog **out, err *e);
void catalog_close(catalog *c);

/* Counted lookup; NULL if the table does not exist in that account. */
table *catalog_get(catalog *c, const char *account, const char *name);
void table_acquire(table *t);
void table_release(table *t);

/* Creates a table from a filled-in template (id, refs, locks and counters are
 * set here; strings are copied). ERR_RESOURCE_IN_USE "Table already exists: NAME". */
int catalog_create(catalog *c, const table *tmpl, table **out, err *e);
/* Deletes a table and all its items unless its deletion protection is on
 * (ERR_VALIDATION). Returns the (now deleted) table, counted. */
int catalog_delete(catalog *c, const char *account, const char *name, table **out, err *e);
/* Changes t's settings: under the catalog's DDL lock, fn edits a copy of the
 * current settings (returning -1 with e set to refuse), and the result is
 * persisted and published. ERR_RESOURCE_NOT_FOUND if t was deleted. */
typedef int (*catalog_settings_fn)(void *ctx, table_settings *s, err *e);
int catalog_update_settings(catalog *c, table *t, catalog_settings_fn fn, void *ctx, err *e);
/* Names of account's tables after `start_after` (exclusive; NULL for the
 * start), in order, at most limit; returns the count and a malloc'ed array of
 * malloc'ed names in *names (free with catalog_free_names). *more is set if
 * further names follow. */
size_t catalog_list(catalog *c, const char *account, const char *start_after, size_t limit,
                    char ***names, bool *more);
void catalog_free_names(char **names, size_t n);
/* Sums over all tables, for metrics. */
void catalog_totals(catalog *c, int64_t *items, int64_t *bytes);
/* Snapshot of all tables (counted refs) for background work; free with
 * catalog_release_all. */
size_t catalog_all(catalog *c, table ***out);
void catalog_release_all(table **ts, size_t n);

#endif
