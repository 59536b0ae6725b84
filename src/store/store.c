/* store.c - RocksDB behind a small interface (see store.h).
 *
 * Tuning: LZ4 for SST files, a bloom filter (10 bits/key) and a shared LRU
 * block cache on every column family so point reads of items mostly avoid
 * disk; background work spread over the machine's cores.
 */
#include "store/store.h"

#include "util/log.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const cf_names[STORE_CF_COUNT + 1] = {"meta",  "items",    "rlog",
                                                         "tombs", "counters", "default"};

struct store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_options_t *counter_opts; /* opts plus the counters' merge operator */
    rocksdb_block_based_table_options_t *bbo;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *filter; /* owned by bbo once set */
    rocksdb_column_family_handle_t *cf[STORE_CF_COUNT + 1];
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    char *dir;
    /* Failed writes: their total, and the current run of failures (0 once a
     * write succeeds again), for the log lines and metrics. */
    _Atomic uint64_t write_errors;
    _Atomic uint64_t failing;
    _Atomic bool disk_full;
};

struct store_batch {
    store *s;
    rocksdb_writebatch_t *wb;
};

struct store_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    const rocksdb_snapshot_t *snap;
    rocksdb_t *db;
    char *lo; /* bounds must outlive the iterator */
    char *hi;
    size_t lol, hil;
};

static int fail(err *e, char *rerr, const char *what)
{
    err_set(e, ERR_INTERNAL, "storage error (%s): %s", what, rerr ? rerr : "unknown");
    free(rerr);
    return -1;
}

/* ---- counter vectors (see store.h) ---- */

size_t store_counters_encode(uint8_t *out, const store_counter *c, size_t n)
{
    out[0] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        out[1 + 9 * i] = (uint8_t)c[i].rule;
        store_u64be(out + 2 + 9 * i, (uint64_t)c[i].v);
    }
    return 1 + 9 * n;
}

int store_counters_decode(const uint8_t *p, size_t len, store_counter *c, size_t max)
{
    if (len < 1 || p[0] > max || p[0] > STORE_COUNTERS_MAX || len != 1 + 9 * (size_t)p[0])
        return -1;
    for (size_t i = 0; i < p[0]; i++) {
        c[i].rule = (store_rule)p[1 + 9 * i];
        if (c[i].rule < STORE_SUM || c[i].rule > STORE_MIN) return -1;
        c[i].v = (int64_t)load_u64be(p + 2 + 9 * i);
    }
    return p[0];
}

/* Folds operand b into a, field by field; false if their shapes (field
 * count and rules) differ, which only a change of a key's layout could
 * cause: the merge then fails rather than inventing a value. */
static bool counters_fold(store_counter *a, size_t na, const store_counter *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < nb; i++)
        if (a[i].rule != b[i].rule) return false;
    for (size_t i = 0; i < nb; i++) {
        switch (b[i].rule) {
        case STORE_SUM:
            a[i].v = (int64_t)((uint64_t)a[i].v + (uint64_t)b[i].v);
            break;
        case STORE_MAX:
            a[i].v = b[i].v > a[i].v ? b[i].v : a[i].v;
            break;
        case STORE_MIN:
            a[i].v = b[i].v < a[i].v ? b[i].v : a[i].v;
            break;
        }
    }
    return true;
}

/* The merge itself: existing (may be NULL) then the operands in order. A
 * malformed value or operand fails the merge (RocksDB reports corruption)
 * rather than inventing counts. */
static char *counters_merge(const char *existing, size_t elen, const char *const *ops,
                            const size_t *op_lens, int n_ops, unsigned char *success,
                            size_t *new_len)
{
    store_counter acc[STORE_COUNTERS_MAX], one[STORE_COUNTERS_MAX];
    size_t n = 0;
    bool ok = true;
    if (existing) {
        int k = store_counters_decode((const uint8_t *)existing, elen, acc, STORE_COUNTERS_MAX);
        ok = k >= 0;
        n = ok ? (size_t)k : 0;
    }
    for (int i = 0; ok && i < n_ops; i++) {
        int k = store_counters_decode((const uint8_t *)ops[i], op_lens[i], one, STORE_COUNTERS_MAX);
        if (k < 0) {
            ok = false;
        } else if (!existing && i == 0) {
            memcpy(acc, one, (size_t)k * sizeof(*one));
            n = (size_t)k;
        } else {
            ok = counters_fold(acc, n, one, (size_t)k);
        }
    }
    /* RocksDB's C wrapper copies the returned buffer whatever *success says:
     * always a valid allocation and length (empty on failure). */
    char *out = malloc(1 + 9 * STORE_COUNTERS_MAX);
    if (!out) abort();
    *new_len = ok ? store_counters_encode((uint8_t *)out, acc, n) : 0;
    *success = ok;
    return out;
}

int store_counters_merge(const uint8_t *existing, size_t elen, const uint8_t *const *ops,
                         const size_t *lens, size_t n_ops, buf *out)
{
    unsigned char ok;
    size_t len = 0;
    char *v = counters_merge((const char *)existing, elen, (const char *const *)ops, lens,
                             (int)n_ops, &ok, &len);
    buf_reset(out);
    if (!ok) {
        free(v);
        return -1;
    }
    buf_append(out, v, len);
    free(v);
    return 0;
}

static char *counters_full_merge(void *state, const char *key, size_t kl, const char *existing,
                                 size_t elen, const char *const *ops, const size_t *op_lens,
                                 int n_ops, unsigned char *success, size_t *new_len)
{
    (void)state, (void)key, (void)kl;
    return counters_merge(existing, elen, ops, op_lens, n_ops, success, new_len);
}

static char *counters_partial_merge(void *state, const char *key, size_t kl, const char *const *ops,
                                    const size_t *op_lens, int n_ops, unsigned char *success,
                                    size_t *new_len)
{
    (void)state, (void)key, (void)kl;
    return counters_merge(NULL, 0, ops, op_lens, n_ops, success, new_len);
}

static void counters_delete_value(void *state, const char *v, size_t len)
{
    (void)state, (void)len;
    free((char *)v);
}

static const char *counters_name(void *state)
{
    (void)state;
    return "meridian.counters.v1";
}

static void counters_destroy(void *state)
{
    (void)state;
}

void store_batch_add(store_batch *b, const void *k, size_t kl, const store_counter *c, size_t n)
{
    assert(n <= STORE_COUNTERS_MAX);
    uint8_t v[1 + 9 * STORE_COUNTERS_MAX];
    size_t vl = store_counters_encode(v, c, n);
    rocksdb_writebatch_merge_cf(b->wb, b->s->cf[STORE_CF_COUNTERS], k, kl, (const char *)v, vl);
}

void store_batch_set_counters(store_batch *b, const void *k, size_t kl, const store_counter *c,
                              size_t n)
{
    assert(n <= STORE_COUNTERS_MAX);
    uint8_t v[1 + 9 * STORE_COUNTERS_MAX];
    size_t vl = store_counters_encode(v, c, n);
    rocksdb_writebatch_put_cf(b->wb, b->s->cf[STORE_CF_COUNTERS], k, kl, (const char *)v, vl);
}

int store_get_counters(store *s, const void *k, size_t kl, store_counter *c, size_t max, size_t *n,
                       err *e)
{
    buf v;
    buf_init(&v);
    int r = store_get(s, STORE_CF_COUNTERS, k, kl, &v, e);
    *n = 0;
    if (r == 1) {
        int got = store_counters_decode(v.data, v.len, c, max);
        if (got < 0)
            r = err_set(e, ERR_INTERNAL, "corrupt counter vector in storage");
        else
            *n = (size_t)got;
    }
    buf_free(&v);
    return r;
}

int store_open(const char *dir, const store_options *opt, store **out, err *e)
{
    *out = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(e, ERR_INTERNAL, "cannot create data directory %s: %s", dir,
                       strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(e, ERR_INTERNAL, "data directory %s is not a directory", dir);
    if ((st.st_mode & 0077) && chmod(dir, 0700) != 0)
        return err_set(e, ERR_INTERNAL, "cannot restrict permissions of %s: %s", dir,
                       strerror(errno));

    store *s = calloc(1, sizeof(*s));
    if (!s) return err_set(e, ERR_INTERNAL, "out of memory");
    size_t cache = opt && opt->block_cache_bytes ? opt->block_cache_bytes : (256u << 20);

    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_set_create_missing_column_families(s->opts, 1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    rocksdb_options_increase_parallelism(s->opts, cores > 1 ? (int)cores : 2);
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_open_files(s->opts, 512);
    /* RocksDB's own LOG file: fatal messages only. RocksDB 7.8 (Debian's)
     * aborts on an assertion when its LOG writer is used again after one of
     * its writes failed, which a full disk does at once (the fault-injection
     * suite found it). Storage errors are logged by us (store_write). */
    rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL_LEVEL */);
    s->bbo = rocksdb_block_based_options_create();
    s->cache = rocksdb_cache_create_lru(cache);
    rocksdb_block_based_options_set_block_cache(s->bbo, s->cache);
    s->filter = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(s->bbo, s->filter);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->bbo, 1);
    rocksdb_options_set_block_based_table_factory(s->opts, s->bbo);

    s->counter_opts = rocksdb_options_create_copy(s->opts);
    rocksdb_options_set_merge_operator(
        s->counter_opts,
        rocksdb_mergeoperator_create(NULL, counters_destroy, counters_full_merge,
                                     counters_partial_merge, counters_delete_value, counters_name));
    const rocksdb_options_t *cf_opts[STORE_CF_COUNT + 1];
    for (int i = 0; i <= STORE_CF_COUNT; i++)
        cf_opts[i] = i == STORE_CF_COUNTERS ? s->counter_opts : s->opts;
    char *rerr = NULL;
    s->db = rocksdb_open_column_families(s->opts, dir, STORE_CF_COUNT + 1, cf_names, cf_opts, s->cf,
                                         &rerr);
    if (rerr) {
        fail(e, rerr, "open");
        s->db = NULL;
        store_close(s);
        return -1;
    }
    s->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts, opt ? opt->sync : 1);
    s->dir = strdup(dir);
    if (!s->dir) abort();
    s->ropts = rocksdb_readoptions_create();
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s) return;
    if (s->db) {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (int i = 0; i < STORE_CF_COUNT; i++) {
            char *rerr = NULL;
            rocksdb_flush_cf(s->db, fo, s->cf[i], &rerr);
            free(rerr); /* the WAL already holds everything; a failed flush loses nothing */
        }
        rocksdb_flushoptions_destroy(fo);
        for (int i = 0; i <= STORE_CF_COUNT; i++)
            if (s->cf[i]) rocksdb_column_family_handle_destroy(s->cf[i]);
        rocksdb_close(s->db);
    }
    if (s->wopts) rocksdb_writeoptions_destroy(s->wopts);
    if (s->ropts) rocksdb_readoptions_destroy(s->ropts);
    if (s->opts) rocksdb_options_destroy(s->opts);
    if (s->counter_opts) rocksdb_options_destroy(s->counter_opts); /* and its merge operator */
    if (s->bbo) rocksdb_block_based_options_destroy(s->bbo);       /* frees the filter policy */
    if (s->cache) rocksdb_cache_destroy(s->cache);
    free(s->dir);
    free(s);
}

int store_get(store *s, store_cf cf, const void *key, size_t klen, buf *out, err *e)
{
    char *rerr = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(s->db, s->ropts, s->cf[cf], key, klen, &rerr);
    if (rerr) return fail(e, rerr, "get");
    buf_reset(out);
    if (!ps) return 0;
    size_t vl = 0;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    buf_append(out, v, vl);
    rocksdb_pinnableslice_destroy(ps);
    return 1;
}

store_batch *store_batch_new(store *s)
{
    store_batch *b = malloc(sizeof(*b));
    if (!b) abort();
    b->s = s;
    b->wb = rocksdb_writebatch_create();
    return b;
}

void store_batch_free(store_batch *b)
{
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void store_batch_clear(store_batch *b)
{
    rocksdb_writebatch_clear(b->wb);
}

void store_batch_put(store_batch *b, store_cf cf, const void *k, size_t kl, const void *v,
                     size_t vl)
{
    rocksdb_writebatch_put_cf(b->wb, b->s->cf[cf], k, kl, v, vl);
}

void store_batch_delete(store_batch *b, store_cf cf, const void *k, size_t kl)
{
    rocksdb_writebatch_delete_cf(b->wb, b->s->cf[cf], k, kl);
}

void store_batch_delete_range(store_batch *b, store_cf cf, const void *from, size_t fl,
                              const void *to, size_t tl)
{
    rocksdb_writebatch_delete_range_cf(b->wb, b->s->cf[cf], from, fl, to, tl);
}

size_t store_batch_count(const store_batch *b)
{
    return (size_t)rocksdb_writebatch_count(b->wb);
}

/* A failed write is logged when it starts a run of failures (and every
 * 1000th after), a success after failures says so: an operator sees a full
 * disk come and go without a log line per request. */
static void write_failed(store *s, const char *msg)
{
    atomic_fetch_add(&s->write_errors, 1);
    uint64_t n = atomic_fetch_add(&s->failing, 1);
    bool full = strstr(msg, "No space left") != NULL;
    if (full) atomic_store(&s->disk_full, true);
    if (n % 1000) return;
    if (full)
        log_error("disk full: writes to %s fail (%s); write requests get "
                  "InternalServerError and replicated writes wait until space is freed",
                  s->dir, msg);
    else
        log_error("storage writes to %s fail: %s", s->dir, msg);
}

int store_write(store *s, store_batch *b, err *e)
{
    char *rerr = NULL;
    rocksdb_write(s->db, s->wopts, b->wb, &rerr);
    if (rerr) {
        write_failed(s, rerr);
        return fail(e, rerr, "write");
    }
    if (atomic_load_explicit(&s->failing, memory_order_relaxed)) {
        uint64_t n = atomic_exchange(&s->failing, 0);
        if (n) {
            bool full = atomic_exchange(&s->disk_full, false);
            log_info("storage writes to %s succeed again after %llu failed%s", s->dir,
                     (unsigned long long)n, full ? " (the disk has space again)" : "");
        }
    }
    return 0;
}

void store_write_health(store *s, uint64_t *errors, bool *failing, bool *disk_full)
{
    *errors = atomic_load(&s->write_errors);
    *failing = atomic_load(&s->failing) != 0;
    *disk_full = atomic_load(&s->disk_full);
}

static char *dup_bound(const void *p, size_t n)
{
    if (!p) return NULL;
    char *d = malloc(n ? n : 1);
    if (!d) abort();
    memcpy(d, p, n);
    return d;
}

store_iter *store_iter_new(store *s, store_cf cf, const void *lo, size_t lol, const void *hi,
                           size_t hil)
{
    store_iter *it = calloc(1, sizeof(*it));
    if (!it) abort();
    it->db = s->db;
    it->ro = rocksdb_readoptions_create();
    it->snap = rocksdb_create_snapshot(s->db);
    rocksdb_readoptions_set_snapshot(it->ro, it->snap);
    it->lo = dup_bound(lo, lol);
    it->hi = dup_bound(hi, hil);
    it->lol = lol;
    it->hil = hil;
    if (it->lo) rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lo, lol);
    if (it->hi) rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->hi, hil);
    it->it = rocksdb_create_iterator_cf(s->db, it->ro, s->cf[cf]);
    return it;
}

void store_iter_free(store_iter *it)
{
    if (!it) return;
    rocksdb_iter_destroy(it->it);
    rocksdb_release_snapshot(it->db, it->snap);
    rocksdb_readoptions_destroy(it->ro);
    free(it->lo);
    free(it->hi);
    free(it);
}

void store_iter_seek(store_iter *it, const void *k, size_t kl)
{
    rocksdb_iter_seek(it->it, k, kl);
}

void store_iter_seek_for_prev(store_iter *it, const void *k, size_t kl)
{
    rocksdb_iter_seek_for_prev(it->it, k, kl);
}

void store_iter_first(store_iter *it)
{
    rocksdb_iter_seek_to_first(it->it);
}

void store_iter_last(store_iter *it)
{
    rocksdb_iter_seek_to_last(it->it);
}

void store_iter_next(store_iter *it)
{
    rocksdb_iter_next(it->it);
}

void store_iter_prev(store_iter *it)
{
    rocksdb_iter_prev(it->it);
}

bool store_iter_valid(store_iter *it)
{
    return rocksdb_iter_valid(it->it) != 0;
}

const uint8_t *store_iter_key(store_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *store_iter_value(store_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

int store_iter_status(store_iter *it, err *e)
{
    char *rerr = NULL;
    rocksdb_iter_get_error(it->it, &rerr);
    if (rerr) return fail(e, rerr, "iterate");
    return 0;
}

uint64_t store_approximate_bytes(store *s, store_cf cf, const void *lo, size_t lol, const void *hi,
                                 size_t hil)
{
    const char *start = lo, *limit = hi;
    uint64_t size = 0;
    char *rerr = NULL;
    rocksdb_approximate_sizes_cf(s->db, s->cf[cf], 1, &start, &lol, &limit, &hil, &size, &rerr);
    if (rerr) {
        free(rerr);
        return 0;
    }
    return size;
}

uint64_t store_memtable_entries(store *s, store_cf cf)
{
    uint64_t active = 0, imm = 0;
    rocksdb_property_int_cf(s->db, s->cf[cf], "rocksdb.num-entries-active-mem-table", &active);
    rocksdb_property_int_cf(s->db, s->cf[cf], "rocksdb.num-entries-imm-mem-tables", &imm);
    return active + imm;
}

uint64_t store_disk_bytes(store *s)
{
    uint64_t total = 0;
    for (int i = 0; i < STORE_CF_COUNT; i++) {
        uint64_t v = 0;
        if (rocksdb_property_int_cf(s->db, s->cf[i], "rocksdb.total-sst-files-size", &v) == 0)
            total += v;
    }
    return total;
}
