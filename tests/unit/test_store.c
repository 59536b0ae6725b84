/* test_store.c - store_approximate_bytes (RocksDB's estimate of a key
 * range's size in SST files) and store_memtable_entries, which /metrics uses
 * for meridian_replication_pending_bytes instead of walking the replication
 * log on every scrape; and the counter vectors of the counters column family
 * (merge operands from concurrent batches, across flushes and restarts). */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "item/codec.h"
#include "store/store.h"
#include "util/err.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

#define ENTRIES    20000
#define ENTRY_SIZE 200

static void put_log(store *s, uint64_t from, uint64_t to)
{
    err e;
    store_batch *b = store_batch_new(s);
    uint8_t v[ENTRY_SIZE];
    for (uint64_t seq = from; seq <= to; seq++) {
        uint8_t k[8];
        store_u64be(k, seq);
        for (size_t i = 0; i < sizeof(v); i++) /* barely compressible */
            v[i] = (uint8_t)((seq * 2654435761u + i * 40503u) >> 7);
        store_batch_put(b, STORE_CF_RLOG, k, 8, v, sizeof(v));
    }
    assert_int_equal(store_write(s, b, &e), 0);
    store_batch_free(b);
}

static uint64_t approx(store *s, uint64_t lo, uint64_t hi)
{
    uint8_t l[8], h[8];
    store_u64be(l, lo);
    store_u64be(h, hi);
    return store_approximate_bytes(s, STORE_CF_RLOG, l, 8, h, 8);
}

static void test_approximate_bytes_of_a_log_range(void **state)
{
    (void)state;
    char dir[] = "/tmp/meridian-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_options opt = {.block_cache_bytes = 1u << 20, .sync = false};
    err e;
    store *s;
    assert_int_equal(store_open(dir, &opt, &s, &e), 0);
    put_log(s, 1, ENTRIES);
    /* Closing flushes the memtable into SST files, which the estimate reads. */
    store_close(s);
    assert_int_equal(store_open(dir, &opt, &s, &e), 0);
    uint64_t all = approx(s, 1, ENTRIES + 1);
    uint64_t half = approx(s, ENTRIES / 2 + 1, ENTRIES + 1);
    uint64_t none = approx(s, ENTRIES + 1, ENTRIES + 1000000);
    uint64_t raw = (uint64_t)ENTRIES * (8 + ENTRY_SIZE);
    assert_true(all >= raw / 4 && all <= raw * 2);
    assert_true(half >= all / 4 && half <= all * 3 / 4 + 4096);
    assert_int_equal(none, 0);
    /* Entries not yet flushed are counted by store_memtable_entries. */
    uint64_t n0 = store_memtable_entries(s, STORE_CF_RLOG);
    put_log(s, ENTRIES + 1, ENTRIES + 500);
    assert_int_equal(store_memtable_entries(s, STORE_CF_RLOG) - n0, 500);
    store_close(s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define ADDERS    4
#define ADDS_EACH 500
static store *g_counters_store;

static void *adder(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < ADDS_EACH; i++) {
        store_batch *b = store_batch_new(g_counters_store);
        store_counter c[3] = {{STORE_SUM, 1}, {STORE_SUM, id}, {STORE_MAX, id * 1000 + i}};
        store_batch_add(b, "k", 1, c, 3);
        err e;
        assert_int_equal(store_write(g_counters_store, b, &e), 0);
        store_batch_free(b);
    }
    return NULL;
}

/* Batches that add to one vector at once, from several threads, each without
 * reading it: every addition counts, in any order, and the vector survives
 * a restart (merged in RocksDB's flush and compaction). A put replaces it; a
 * later operand of another shape makes the key unreadable, never guessed. */
static void test_counter_vectors(void **state)
{
    (void)state;
    char dir[] = "/tmp/meridian-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_options opt = {.block_cache_bytes = 1u << 20, .sync = false};
    err e;
    assert_int_equal(store_open(dir, &opt, &g_counters_store, &e), 0);
    pthread_t t[ADDERS];
    for (long i = 0; i < ADDERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, (void *)(i + 1)), 0);
    for (int i = 0; i < ADDERS; i++)
        pthread_join(t[i], NULL);
    store_counter c[STORE_COUNTERS_MAX];
    size_t n;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(store_get_counters(g_counters_store, "k", 1, c, 3, &n, &e), 1);
        assert_int_equal(n, 3);
        assert_int_equal(c[0].v, ADDERS * ADDS_EACH);
        assert_int_equal(c[1].v, ADDS_EACH * (ADDERS * (ADDERS + 1) / 2));
        assert_int_equal(c[2].v, ADDERS * 1000 + ADDS_EACH - 1);
        store_close(g_counters_store);
        assert_int_equal(store_open(dir, &opt, &g_counters_store, &e), 0);
    }
    assert_int_equal(store_get_counters(g_counters_store, "absent", 6, c, 3, &n, &e), 0);
    store_batch *b = store_batch_new(g_counters_store);
    store_counter set[2] = {{STORE_SUM, 7}, {STORE_MIN, 3}};
    store_batch_set_counters(b, "k", 1, set, 2);
    store_counter add[2] = {{STORE_SUM, -2}, {STORE_MIN, 1}};
    store_batch_add(b, "k", 1, add, 2);
    assert_int_equal(store_write(g_counters_store, b, &e), 0);
    assert_int_equal(store_get_counters(g_counters_store, "k", 1, c, 3, &n, &e), 1);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].v, 5);
    assert_int_equal(c[1].v, 1);
    store_batch_clear(b);
    store_counter other[1] = {{STORE_MAX, 1}};
    store_batch_add(b, "k", 1, other, 1);
    assert_int_equal(store_write(g_counters_store, b, &e), 0);
    assert_int_equal(store_get_counters(g_counters_store, "k", 1, c, 3, &n, &e), -1);
    store_batch_free(b);
    store_close(g_counters_store);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_approximate_bytes_of_a_log_range),
        cmocka_unit_test(test_counter_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
