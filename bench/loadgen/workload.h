/* workload.h - what meridian-bench asks: operations, keys and request bodies.
 *
 * Owns the random generator (xoshiro256**), the choice of operation and key
 * for each request (uniform over the key space), the preload order, and the
 * JSON bodies, written by copying fixed pieces (no formatting, no malloc per
 * request). Keys are "k" + 10 digits, so bodies of one kind have one length.
 * Written items carry a binary payload "v" of --item-size bytes, cut at a
 * random offset from a pool of random base64 text, so that items differ.
 */
#ifndef MERIDIAN_BENCH_WORKLOAD_H
#define MERIDIAN_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opts.h"

typedef enum op_kind { OP_PUT, OP_GET, OP_UPDATE, OP_QUERY, OP_COUNT } op_kind;

/* X-Amz-Target operation names, indexed by op_kind. */
extern const char *const op_names[OP_COUNT];

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
uint64_t rng_below(rng *r, uint64_t n); /* uniform in [0, n), n > 0 */

typedef struct workload {
    const bench_opts *o;
    char *pool;        /* random base64 text */
    size_t pool_quads; /* offsets are chosen in units of 4 characters */
    size_t quads;      /* full base64 quads of one payload */
    char tail[5];      /* encoding of the last item_size % 3 bytes, or "" */
    size_t tail_len;
    size_t max_body; /* upper bound of any body this workload writes */
} workload;

/* Returns 0, or -1 on allocation failure. */
int workload_init(workload *w, const bench_opts *o, uint64_t seed);
void workload_free(workload *w);

/* The next timed request: its operation and partition key. */
op_kind workload_pick(const workload *w, rng *r, uint64_t *key);

/* The body of op on partition key `key` into out (room for max_body bytes);
 * returns its length. For OP_PUT, sk >= 0 adds the sort key "sk". */
size_t workload_body(const workload *w, op_kind op, uint64_t key, int64_t sk, rng *r, char *out);

/* Items --preload writes, and the key / sort key (or -1) of item i. */
uint64_t workload_preload_items(const workload *w);
void workload_preload_item(const workload *w, uint64_t i, uint64_t *key, int64_t *sk);

/* "k0000000042" for key 42 into out (room for 12 bytes, NUL-terminated). */
void workload_key_string(uint64_t key, char *out);

#endif
