/* descriptor.c - table descriptors received from other regions: merging
 * replica sets and settings, creating a replica here, departing when this
 * region's replica was removed, and activation after a back-fill. */
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

/* ------------------------------------------------------------ descriptors */

typedef struct merge_ctx {
    repl *r;
    const table_settings *incoming;
    bool refused; /* the union of replica entries did not fit */
} merge_ctx;

/* Merges a received descriptor (table_settings_merge) and owes a back-fill
 * to every replica that is new to this region's view, whatever this region's
 * own status: a partial copy is harmless under last writer wins, and it
 * carries this region's own writes the new replica would otherwise miss. */
static int merge_settings(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    merge_ctx *m = ctx;
    table_settings old = *s;
    bool changed;
    if (table_settings_merge(s, m->incoming, &changed) < 0) {
        m->refused = true;
        return err_set(e, ERR_VALIDATION,
                       "table %s: the replica set received names more than %d regions", t->name,
                       TABLE_REPLICAS_MAX);
    }
    if (!changed) return 0;
    for (size_t i = 0; i < s->n_replicas; i++) {
        const table_replica *rp = &s->replicas[i];
        if (rp->removed || strcmp(rp->region, m->r->region) == 0 ||
            table_settings_replica(&old, rp->region))
            continue;
        buf k;
        buf_init(&k);
        repl_backfill_marker(&k, rp->region, t->uid);
        uint8_t gen[8];
        store_u64be(gen, rp->version);
        store_batch_put(b, STORE_CF_META, k.data, k.len, gen, 8);
        buf_free(&k);
    }
    return 0;
}

/* This region's replica was removed elsewhere: drop the local table, and
 * keep sending the writes made here before to the remaining replicas. */
typedef struct depart_ctx {
    repl *r;
    table *expect; /* the incarnation to delete */
} depart_ctx;

static int prepare_depart(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    depart_ctx *x = ctx;
    if (t != x->expect)
        return err_set(e, ERR_RESOURCE_NOT_FOUND,
                       "Requested resource not found: Table: %s not found", t->name);
    /* No write of t is in flight (catalog_delete): all its log entries are
     * at or below the log's current high. */
    char *json = catalog_descriptor_json(t, s);
    repl_departed_record(b, t->uid, rlog_high(&x->r->d->log), json, strlen(json));
    free(json);
    return 0;
}

int repl_depart_table(repl *r, table *t, err *e)
{
    depart_ctx x = {.r = r, .expect = t};
    table *gone = NULL;
    repl_departures_lock(r);
    int rc = catalog_delete(r->d->cat, t->account, t->name, true, prepare_depart, &x, &gone, e);
    repl_departures_unlock(r);
    if (rc == 0) table_release(gone);
    return rc;
}

static int depart(repl *r, table *t, const char *source, err *e)
{
    log_info("replica of table %s in this region removed (by %s)", t->name, source);
    int rc = repl_depart_table(r, t, e);
    if (rc < 0 && e->code == ERR_RESOURCE_NOT_FOUND) rc = 0;
    return rc;
}

int repl_apply_descriptor(repl *r, const char *source, const uint8_t *json, size_t len, err *e)
{
    table tmpl;
    if (catalog_parse_descriptor((const char *)json, len, &tmpl) < 0)
        return err_set(e, ERR_VALIDATION, "malformed table descriptor from %s", source);
    int rc = 0;
    /* Later descriptor changes made here must order after this one. */
    db_observe_remote(r->d, tmpl.settings.version, source);
    for (size_t i = 0; i < tmpl.settings.n_replicas; i++)
        db_observe_remote(r->d, tmpl.settings.replicas[i].version, source);
    table *local = catalog_get_uid(r->d->cat, tmpl.uid);
    if (!local) {
        if (table_settings_replica(&tmpl.settings, r->region)) {
            table *clash = catalog_get(r->d->cat, tmpl.account, tmpl.name);
            if (clash) {
                log_error("cannot create replica of table %s: a different table of that name "
                          "exists here",
                          tmpl.name);
                table_release(clash);
            } else {
                table *t = NULL;
                rc = catalog_create(r->d->cat, &tmpl, &t, e);
                if (rc == 0) {
                    log_info("created replica of table %s (from %s)", t->name, source);
                    table_release(t);
                } else if (e->code == ERR_RESOURCE_IN_USE) {
                    rc = 0;
                }
            }
        }
    } else {
        table_settings probe;
        pthread_mutex_lock(&local->settings_mu);
        probe = local->settings;
        pthread_mutex_unlock(&local->settings_mu);
        bool changed = false;
        merge_ctx m = {.r = r, .incoming = &tmpl.settings};
        if (table_settings_merge(&probe, &tmpl.settings, &changed) < 0) {
            m.refused = true;
        } else if (changed) {
            rc = catalog_update_settings(r->d->cat, local, merge_settings, &m, e);
            if (rc == 0) repl_kick(r);
            if (rc < 0 && e->code == ERR_RESOURCE_NOT_FOUND) rc = 0;
        }
        if (m.refused) {
            /* Never dropped silently, and never a reason to stop the link
             * (every other table from this source would stop with it): the
             * descriptor is refused, logged and counted; the table keeps
             * its replica set here until an operator removes regions. */
            rc = 0;
            atomic_fetch_add(&r->descriptors_refused, 1);
            if (log_every(&r->descriptor_refused_logged_ms, 10000))
                log_error("table %s: a descriptor from %s names more regions than a replica set "
                          "holds (%d); refused, this region keeps its replica set",
                          local->name, source, TABLE_REPLICAS_MAX);
        }
        if (rc == 0 && !table_settings_replica(&probe, r->region)) rc = depart(r, local, source, e);
    }
    if (local) table_release(local);
    catalog_free_template(&tmpl);
    return rc;
}

typedef struct activate_ctx {
    repl *r;
    uint64_t seq;
    bool logged;
} activate_ctx;

static int activate(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    activate_ctx *a = ctx;
    (void)e;
    /* Only this replica's status changes: the settings version is left alone,
     * so the activation cannot undo a settings change made elsewhere. */
    if (table_settings_activate(s, a->r->region)) {
        db_log_reserve(a->r->d, &a->seq, NULL, e); /* no version: cannot fail */
        a->logged = true;
        db_log_descriptor(a->r->d, t, s, a->seq, b);
    }
    return 0;
}

int repl_backfill_finished(repl *r, const uint8_t uid[TABLE_UID_LEN], err *e)
{
    table *t = catalog_get_uid(r->d->cat, uid);
    if (!t) return 0;
    activate_ctx a = {.r = r};
    int rc = catalog_update_settings(r->d->cat, t, activate, &a, e);
    if (a.logged) rlog_done(&r->d->log, a.seq);
    if (rc == 0 && a.logged) log_info("replica of table %s is ACTIVE", t->name);
    table_release(t);
    if (rc < 0 && e->code == ERR_RESOURCE_NOT_FOUND) rc = 0;
    return rc;
}
