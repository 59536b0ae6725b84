/* workload.c - operations, keys and request bodies of meridian-bench (see workload.h).
 *
 * Owns the random generator, the payload pool and the body layouts:
 *   PutItem    {"TableName":T,"Item":{"pk":{"S":K}[,"sk":{"N":J}],"v":{"B":payload}}}
 *   GetItem    {"TableName":T,"Key":{"pk":{"S":K}}}
 *   UpdateItem {"TableName":T,"Key":{"pk":{"S":K}},"UpdateExpression":"ADD #c :one",...}
 *   Query      {"TableName":T,"KeyConditionExpression":"pk = :p",...}
 * The table name is checked by opts.c to need no JSON escaping.
 */
#include "workload.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define POOL_SPREAD_QUADS 16384 /* payload start offsets to choose from */
#define KEY_LEN           11    /* "k" + 10 digits */

const char *const op_names[OP_COUNT] = {"PutItem", "GetItem", "UpdateItem", "Query"};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rng_below(rng *r, uint64_t n)
{
    /* Rejection keeps it exactly uniform; the loop almost never repeats. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t v;
    do {
        v = rng_next(r);
    } while (v >= limit);
    return v % n;
}

int workload_init(workload *w, const bench_opts *o, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->o = o;
    w->quads = o->item_size / 3;
    w->pool_quads = w->quads + POOL_SPREAD_QUADS;
    size_t raw_len = 3 * w->pool_quads;
    uint8_t *raw = malloc(raw_len);
    w->pool = malloc(4 * w->pool_quads + 1);
    if (!raw || !w->pool) {
        free(raw);
        workload_free(w);
        return -1;
    }
    rng r;
    rng_seed(&r, seed ^ 0x5eed0f9a1100adULL);
    for (size_t i = 0; i < raw_len; i++)
        raw[i] = (uint8_t)(rng_next(&r) >> 56);
    EVP_EncodeBlock((unsigned char *)w->pool, raw, (int)raw_len);
    size_t rem = o->item_size % 3;
    if (rem) {
        EVP_EncodeBlock((unsigned char *)w->tail, raw, (int)rem);
        w->tail_len = 4;
    }
    free(raw);
    w->max_body = 512 + strlen(o->table) + 4 * w->quads + w->tail_len;
    return 0;
}

void workload_free(workload *w)
{
    free(w->pool);
    w->pool = NULL;
}

op_kind workload_pick(const workload *w, rng *r, uint64_t *key)
{
    const bench_opts *o = w->o;
    *key = rng_below(r, o->keys);
    switch (o->workload) {
    case WL_PUT:
        return OP_PUT;
    case WL_GET:
        return OP_GET;
    case WL_UPDATE:
        return OP_UPDATE;
    case WL_QUERY:
        return OP_QUERY;
    case WL_MIX:
        return (int)rng_below(r, 100) < o->mix_get_pct ? OP_GET : OP_PUT;
    }
    return OP_PUT;
}

uint64_t workload_preload_items(const workload *w)
{
    return w->o->keys * (opts_has_sort_key(w->o) ? w->o->collection : 1);
}

void workload_preload_item(const workload *w, uint64_t i, uint64_t *key, int64_t *sk)
{
    if (opts_has_sort_key(w->o)) {
        *key = i / w->o->collection;
        *sk = (int64_t)(i % w->o->collection);
    } else {
        *key = i;
        *sk = -1;
    }
}

void workload_key_string(uint64_t key, char *out)
{
    out[0] = 'k';
    for (int i = KEY_LEN - 1; i >= 1; i--) {
        out[i] = (char)('0' + key % 10);
        key /= 10;
    }
    out[KEY_LEN] = '\0';
}

typedef struct writer {
    char *p;
} writer;

static void put(writer *wr, const char *s, size_t n)
{
    memcpy(wr->p, s, n);
    wr->p += n;
}

#define PUT_LIT(wr, lit) put((wr), (lit), sizeof(lit) - 1)

static void put_u64(writer *wr, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *wr->p++ = tmp[--n];
}

static void put_table(writer *wr, const workload *w)
{
    PUT_LIT(wr, "{\"TableName\":\"");
    put(wr, w->o->table, strlen(w->o->table));
    PUT_LIT(wr, "\",");
}

static void put_key(writer *wr, uint64_t key)
{
    char k[KEY_LEN + 1];
    workload_key_string(key, k);
    put(wr, k, KEY_LEN);
}

size_t workload_body(const workload *w, op_kind op, uint64_t key, int64_t sk, rng *r, char *out)
{
    writer wr = {out};
    put_table(&wr, w);
    switch (op) {
    case OP_PUT: {
        PUT_LIT(&wr, "\"Item\":{\"pk\":{\"S\":\"");
        put_key(&wr, key);
        PUT_LIT(&wr, "\"},");
        if (sk >= 0) {
            PUT_LIT(&wr, "\"sk\":{\"N\":\"");
            put_u64(&wr, (uint64_t)sk);
            PUT_LIT(&wr, "\"},");
        }
        PUT_LIT(&wr, "\"v\":{\"B\":\"");
        size_t off = (size_t)rng_below(r, POOL_SPREAD_QUADS + 1);
        put(&wr, w->pool + 4 * off, 4 * w->quads);
        put(&wr, w->tail, w->tail_len);
        PUT_LIT(&wr, "\"}}}");
        break;
    }
    case OP_GET:
        PUT_LIT(&wr, "\"Key\":{\"pk\":{\"S\":\"");
        put_key(&wr, key);
        PUT_LIT(&wr, "\"}}}");
        break;
    case OP_UPDATE:
        PUT_LIT(&wr, "\"Key\":{\"pk\":{\"S\":\"");
        put_key(&wr, key);
        PUT_LIT(&wr, "\"}},\"UpdateExpression\":\"ADD #c :one\","
                     "\"ExpressionAttributeNames\":{\"#c\":\"c\"},"
                     "\"ExpressionAttributeValues\":{\":one\":{\"N\":\"1\"}}}");
        break;
    case OP_QUERY:
    case OP_COUNT:
        PUT_LIT(&wr, "\"KeyConditionExpression\":\"pk = :p\","
                     "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"");
        put_key(&wr, key);
        PUT_LIT(&wr, "\"}}}");
        break;
    }
    return (size_t)(wr.p - out);
}
