/* db.c - versioned item reads and the single write path (see db.h). */
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item/codec.h"
#include "util/log.h"

#define RECORD_FORMAT         1
#define RECORD_FLAG_TOMBSTONE 0x01

void record_encode(buf *out, uint64_t ts, const char *origin, bool tombstone, const mv_value *item)
{
    size_t ol = strlen(origin);
    if (ol > 255) ol = 255;
    buf_putc(out, RECORD_FORMAT);
    buf_putc(out, tombstone ? RECORD_FLAG_TOMBSTONE : 0);
    buf_put_u64be(out, ts);
    buf_putc(out, (uint8_t)ol);
    buf_append(out, origin, ol);
    if (!tombstone) item_encode(out, item);
}

int record_decode(arena *a, const uint8_t *p, size_t len, item_record *out)
{
    if (len < 11 || p[0] != RECORD_FORMAT) return -1;
    size_t ol = p[10];
    if (len < 11 + ol) return -1;
    out->tombstone = (p[1] & RECORD_FLAG_TOMBSTONE) != 0;
    out->ts = load_u64be(p + 2);
    out->origin = arena_memdup(a, p + 11, ol);
    out->item = NULL;
    if (out->tombstone) return len == 11 + ol ? 0 : -1;
    return item_decode(a, p + 11 + ol, len - 11 - ol, &out->item);
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
        uint8_t v[8];
        store_u64be(v, bound);
        store_batch *b = store_batch_new(d->st);
        store_batch_put(b, STORE_CF_META, CLOCK_BOUND_KEY, strlen(CLOCK_BOUND_KEY), v, 8);
        rc = store_write(d->st, b, e);
        store_batch_free(b);
        if (rc == 0) atomic_store(&d->clock_bound_ms, bound);
    }
    pthread_mutex_unlock(&d->clock_mu);
    return rc;
}

/* One pass over every item at start-up counts items and bytes per table
 * (DescribeTable, metrics). */
static int scan_items(db *d, err *e)
{
    table **ts;
    size_t nt = catalog_all(d->cat, &ts);
    qsort(ts, nt, sizeof(table *), cmp_table_id);
    store_iter *it = store_iter_new(d->st, STORE_CF_ITEMS, NULL, 0, NULL, 0);
    size_t ti = 0;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        store_iter_value(it, &vl);
        if (kl < 8) continue;
        uint64_t id = load_u64be(k);
        while (ti < nt && ts[ti]->id < id)
            ti++;
        if (ti < nt && ts[ti]->id == id) {
            atomic_fetch_add(&ts[ti]->item_count, 1);
            atomic_fetch_add(&ts[ti]->size_bytes, (int64_t)(kl + vl));
        }
    }
    int rc = store_iter_status(it, e);
    store_iter_free(it);
    catalog_release_all(ts, nt);
    return rc;
}

int db_open(db *d, const char *dir, const char *region, const store_options *opt, err *e)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->region, sizeof(d->region), "%s", region);
    hlc_init(&d->clock);
    for (size_t i = 0; i < DB_LOCK_STRIPES; i++)
        pthread_mutex_init(&d->stripes[i], NULL);
    if (store_open(dir, opt, &d->st, e) < 0) return -1;
    if (catalog_open(d->st, &d->cat, e) < 0) {
        store_close(d->st);
        d->st = NULL;
        return -1;
    }
    if (load_clock_bound(d, e) < 0 || scan_items(d, e) < 0) {
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
}

static int read_record(db *d, const uint8_t *key, size_t kl, arena *a, mv_value **item,
                       size_t *stored_len, err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(d->st, STORE_CF_ITEMS, key, kl, &v, e);
    *item = NULL;
    *stored_len = 0;
    if (r == 1) {
        item_record rec;
        if (record_decode(a, v.data, v.len, &rec) < 0) {
            buf_free(&v);
            return err_set(e, ERR_INTERNAL, "corrupt item record in storage");
        }
        *item = rec.item;
        *stored_len = kl + v.len;
    }
    buf_free(&v);
    return r < 0 ? -1 : 0;
}

int db_get(db *d, table *t, const mv_value *pk, const mv_value *sk, arena *a, mv_value **out,
           err *e)
{
    buf k;
    buf_init(&k);
    key_encode_item(&k, t->id, pk, sk);
    size_t unused;
    int rc = read_record(d, k.data, k.len, a, out, &unused, e);
    buf_free(&k);
    return rc;
}

typedef struct op_state {
    uint8_t *key;
    size_t klen;
    size_t stripe;
    size_t old_len;
} op_state;

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

int db_write(db *d, db_write_op *ops, size_t n, arena *a, err *e)
{
    if (n == 0) return 0;
    op_state *st = arena_calloc(a, n, sizeof(*st));
    size_t *stripes = arena_calloc(a, n, sizeof(size_t));
    table **tables = arena_calloc(a, n, sizeof(table *));
    buf k;
    buf_init(&k);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&k);
        key_encode_item(&k, ops[i].t->id, ops[i].pk, ops[i].sk);
        st[i].key = (uint8_t *)arena_memdup(a, k.data, k.len);
        st[i].klen = k.len;
        uint64_t h = 1469598103934665603ull;
        for (size_t j = 0; j < k.len; j++)
            h = (h ^ k.data[j]) * 1099511628211ull;
        st[i].stripe = (size_t)(h % DB_LOCK_STRIPES);
        stripes[i] = st[i].stripe;
        tables[i] = ops[i].t;
        ops[i].old_item = NULL;
        ops[i].new_item = NULL;
        ops[i].written = false;
    }
    buf_free(&k);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (st[i].klen == st[j].klen && memcmp(st[i].key, st[j].key, st[i].klen) == 0)
                return err_validation(e, "Provided list of item keys contains duplicates");

    /* Lock order: tables by id, then stripes by index; each taken once. */
    qsort(tables, n, sizeof(table *), cmp_table);
    qsort(stripes, n, sizeof(size_t), cmp_size);
    size_t nt = 0, ns = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || tables[i] != tables[i - 1]) tables[nt++] = tables[i];
    for (size_t i = 0; i < n; i++)
        if (i == 0 || stripes[i] != stripes[i - 1]) stripes[ns++] = stripes[i];

    int rc = -1;
    size_t locked_t = 0, locked_s = 0;
    store_batch *b = NULL;
    for (; locked_t < nt; locked_t++) {
        pthread_rwlock_rdlock(&tables[locked_t]->lock);
        if (tables[locked_t]->deleted) {
            locked_t++;
            err_set(e, ERR_RESOURCE_NOT_FOUND, "Requested resource not found");
            goto out;
        }
    }
    for (; locked_s < ns; locked_s++)
        pthread_mutex_lock(&d->stripes[stripes[locked_s]]);

    for (size_t i = 0; i < n; i++) {
        mv_value *old;
        if (read_record(d, st[i].key, st[i].klen, a, &old, &st[i].old_len, e) < 0) goto out;
        ops[i].old_item = old;
        mv_value *nw = NULL;
        int r = ops[i].fn(ops[i].ctx, old, a, &nw, e);
        if (r < 0) goto out;
        if (r == DB_MUTATE_SKIP) {
            ops[i].new_item = old;
            continue;
        }
        ops[i].new_item = nw;
        ops[i].written = true;
    }

    b = store_batch_new(d->st);
    int64_t *dcount = arena_calloc(a, n, sizeof(int64_t));
    int64_t *dbytes = arena_calloc(a, n, sizeof(int64_t));
    buf rec;
    buf_init(&rec);
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].written) continue;
        if (ops[i].new_item) {
            uint64_t ts = hlc_now(&d->clock);
            if (ensure_clock_bound(d, HLC_MS(ts), e) < 0) {
                buf_free(&rec);
                goto out;
            }
            buf_reset(&rec);
            record_encode(&rec, ts, d->region, false, ops[i].new_item);
            store_batch_put(b, STORE_CF_ITEMS, st[i].key, st[i].klen, rec.data, rec.len);
            dcount[i] = ops[i].old_item ? 0 : 1;
            dbytes[i] = (int64_t)(st[i].klen + rec.len) - (int64_t)st[i].old_len;
        } else if (ops[i].old_item) {
            store_batch_delete(b, STORE_CF_ITEMS, st[i].key, st[i].klen);
            dcount[i] = -1;
            dbytes[i] = -(int64_t)st[i].old_len;
        }
        /* Issue 3: append the replication log entry for this write here. */
    }
    buf_free(&rec);
    if (store_batch_count(b) > 0 && store_write(d->st, b, e) < 0) goto out;
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&ops[i].t->item_count, dcount[i]);
        atomic_fetch_add(&ops[i].t->size_bytes, dbytes[i]);
    }
    rc = 0;
out:
    store_batch_free(b);
    while (locked_s > 0)
        pthread_mutex_unlock(&d->stripes[stripes[--locked_s]]);
    while (locked_t > 0)
        pthread_rwlock_unlock(&tables[--locked_t]->lock);
    return rc;
}
