/* ops_admin.c - Meridian's own operations, for the `meridian verify` and
 * `meridian conflicts` commands. They are ordinary signed API calls (target
 * "Meridian_20261121.<Op>"), so they see only the caller's account.
 *
 * TableDigest {TableName, Ranges}: splits the table's 32-bit key-hash space
 * into Ranges equal ranges (the same split as Scan segments) and returns per
 * range the number of records and a digest: the sum mod 2^64 of the first 8
 * bytes of SHA-256(key | record) over its live items (with their versions).
 * Tombstones are left out: each region collects them on its own schedule, and
 * a tombstone and no record at all both mean "absent". Regions holding the
 * same items give the same digests whatever their local table ids, so
 * comparing digests compares contents.
 * RangeKeys {TableName, Ranges, Range}: the items of one range (key, version,
 * record hash), to name the keys that differ.
 * ListConflicts {TableName, Limit}: the newest conflicts seen here. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "api/ops.h"
#include "item/codec.h"
#include "item/json.h"

#define DIGEST_RANGES_DEFAULT 64
#define DIGEST_RANGES_MAX     4096
#define RANGE_KEYS_MAX        100000

static uint64_t record_hash(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    uint8_t md[32];
    unsigned int mdl = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) abort();
    /* The table id (first 8 bytes) is local to each region: leave it out. */
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, k + 8, kl - 8);
    EVP_DigestUpdate(ctx, v, vl);
    EVP_DigestFinal_ex(ctx, md, &mdl);
    EVP_MD_CTX_free(ctx);
    return load_u64be(md);
}

static int read_ranges(op_ctx *c, long long *ranges)
{
    bool present;
    *ranges = DIGEST_RANGES_DEFAULT;
    if (req_int(c, c->req, "Ranges", &present, ranges) < 0) return -1;
    if (*ranges < 1 || *ranges > DIGEST_RANGES_MAX)
        return err_validation(c->e, "Ranges must be between 1 and %d", DIGEST_RANGES_MAX);
    return 0;
}

static size_t range_of(const uint8_t *k, size_t kl, long long ranges)
{
    uint32_t h = kl >= 12 ? load_u32be(k + 8) : 0;
    return (size_t)(((uint64_t)h * (uint64_t)ranges) >> 32);
}

int op_table_digest(op_ctx *c)
{
    const char *name;
    long long ranges;
    if (req_string(c, c->req, "TableName", true, &name) < 0 || read_ranges(c, &ranges) < 0)
        return -1;
    table *t;
    if (req_table(c, name, &t) < 0) return -1;
    uint64_t *sum = arena_calloc(c->a, (size_t)ranges, sizeof(uint64_t));
    uint64_t *count = arena_calloc(c->a, (size_t)ranges, sizeof(uint64_t));
    uint8_t lo[8], hi[8];
    store_u64be(lo, t->id);
    store_u64be(hi, t->id + 1);
    store_iter *it = store_iter_new(c->d->st, STORE_CF_ITEMS, lo, 8, hi, 8);
    uint64_t live = 0;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        if (kl < 12 || (vl > 1 && (v[1] & RECORD_FLAG_TOMBSTONE))) continue;
        size_t r = range_of(k, kl, ranges);
        sum[r] += record_hash(k, kl, v, vl);
        count[r]++;
        live++;
    }
    int rc = store_iter_status(it, c->e);
    store_iter_free(it);
    if (rc == 0) {
        buf_puts(c->out, "{\"Region\":");
        json_write_string(c->out, c->region, strlen(c->region));
        buf_printf(c->out, ",\"Ranges\":%lld,\"Items\":%llu,\"Digests\":[", ranges,
                   (unsigned long long)live);
        for (long long i = 0; i < ranges; i++)
            buf_printf(c->out, "%s{\"Count\":%llu,\"Digest\":\"%016llx\"}", i ? "," : "",
                       (unsigned long long)count[i], (unsigned long long)sum[i]);
        buf_puts(c->out, "]}");
    }
    table_release(t);
    return rc;
}

int op_range_keys(op_ctx *c)
{
    const char *name;
    long long ranges, range = 0;
    bool present;
    if (req_string(c, c->req, "TableName", true, &name) < 0 || read_ranges(c, &ranges) < 0 ||
        req_int(c, c->req, "Range", &present, &range) < 0)
        return -1;
    if (!present || range < 0 || range >= ranges)
        return err_validation(c->e, "Range must be between 0 and Ranges - 1");
    table *t;
    if (req_table(c, name, &t) < 0) return -1;
    /* The range's keys: table id | hash in [lo, hi). */
    uint64_t hlo = ((uint64_t)range << 32) / (uint64_t)ranges;
    uint64_t hhi = ((uint64_t)(range + 1) << 32) / (uint64_t)ranges;
    if (((uint64_t)range << 32) % (uint64_t)ranges) hlo++;
    if (((uint64_t)(range + 1) << 32) % (uint64_t)ranges) hhi++;
    uint8_t lo[12], hi[12];
    store_u64be(lo, t->id);
    store_u32be(lo + 8, (uint32_t)hlo);
    size_t hil = 12;
    if (hhi > 0xffffffffull) {
        store_u64be(hi, t->id + 1);
        hil = 8;
    } else {
        store_u64be(hi, t->id);
        store_u32be(hi + 8, (uint32_t)hhi);
    }
    store_iter *it = store_iter_new(c->d->st, STORE_CF_ITEMS, lo, 12, hi, hil);
    buf_puts(c->out, "{\"Keys\":[");
    size_t n = 0;
    bool truncated = false;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        if (range_of(k, kl, ranges) != (size_t)range || (vl > 1 && (v[1] & RECORD_FLAG_TOMBSTONE)))
            continue;
        if (n == RANGE_KEYS_MAX) {
            truncated = true;
            break;
        }
        mv_value *pk, *sk;
        item_record rec;
        if (key_decode_item(c->a, k, kl, t->pk_type, t->sk_name ? t->sk_type : 0, &pk, &sk) < 0 ||
            record_decode(c->a, v, vl, &rec) < 0)
            continue;
        mv_member m[2] = {{t->pk_name, strlen(t->pk_name), pk}, {NULL, 0, NULL}};
        size_t nm = 1;
        if (t->sk_name) m[nm++] = (mv_member){t->sk_name, strlen(t->sk_name), sk};
        mv_member *mm = arena_calloc(c->a, nm, sizeof(mv_member));
        memcpy(mm, m, nm * sizeof(mv_member));
        buf_puts(c->out, n ? ",{\"Key\":" : "{\"Key\":");
        mv_map_to_json(c->out, mv_new_map(c->a, mm, nm));
        buf_printf(c->out, ",\"Timestamp\":%llu,\"Origin\":", (unsigned long long)rec.ts);
        json_write_string(c->out, rec.origin, strlen(rec.origin));
        buf_printf(c->out, ",\"Hash\":\"%016llx\"}", (unsigned long long)record_hash(k, kl, v, vl));
        n++;
    }
    int rc = store_iter_status(it, c->e);
    store_iter_free(it);
    buf_printf(c->out, "],\"Truncated\":%s}", truncated ? "true" : "false");
    table_release(t);
    return rc;
}

int op_list_conflicts(op_ctx *c)
{
    const char *name;
    long long limit = 20;
    bool present;
    if (req_string(c, c->req, "TableName", true, &name) < 0 ||
        req_int(c, c->req, "Limit", &present, &limit) < 0)
        return -1;
    if (limit < 1 || limit > DB_CONFLICTS_KEPT)
        return err_validation(c->e, "Limit must be between 1 and %d", DB_CONFLICTS_KEPT);
    table *t;
    if (req_table(c, name, &t) < 0) return -1;
    db_conflict *list = arena_calloc(c->a, (size_t)limit, sizeof(db_conflict));
    size_t n = db_recent_conflicts(c->d, c->account, name, list, (size_t)limit, c->a);
    buf_printf(c->out, "{\"Total\":%llu,\"Conflicts\":[",
               (unsigned long long)atomic_load(&t->conflicts));
    for (size_t i = 0; i < n; i++) {
        db_conflict *x = &list[i];
        buf_printf(c->out, "%s{\"Key\":%s,\"Winner\":{\"Region\":", i ? "," : "",
                   x->key ? x->key : "null");
        json_write_string(c->out, x->winner_origin, strlen(x->winner_origin));
        buf_printf(c->out,
                   ",\"Timestamp\":%llu},\"Loser\":{\"Region\":", (unsigned long long)x->winner_ts);
        json_write_string(c->out, x->loser_origin, strlen(x->loser_origin));
        buf_printf(c->out, ",\"Timestamp\":%llu},\"DetectedAt\":%.3f}",
                   (unsigned long long)x->loser_ts, (double)x->at_ms / 1000.0);
    }
    buf_puts(c->out, "]}");
    table_release(t);
    return 0;
}
