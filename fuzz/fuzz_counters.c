/* fuzz_counters.c - counter vectors of the counters column family
 * (store/store.c): the decoder of stored values and the merge RocksDB runs.
 *
 * The first input byte chooses what the rest is fed to:
 *   0: store_counters_decode; what decodes re-encodes to exactly the input
 *      (one encoding per vector);
 *   1: store_counters_merge of an existing value and operands (the rest is a
 *      sequence of length-prefixed parts: the first is the existing value,
 *      length 0 for none); the merge succeeds exactly when every part decodes
 *      and all have one shape, its result decodes, and merging the operands
 *      first (RocksDB's partial merge) and then into the existing value gives
 *      the same bytes (associativity); with all parts SUM, the result is the
 *      wrapping sum field by field.
 */
#include "fuzz_common.h"
#include "store/store.h"

#define MAX_PARTS 16

static void fuzz_decode(const uint8_t *p, size_t len)
{
    store_counter c[STORE_COUNTERS_MAX];
    int n = store_counters_decode(p, len, c, STORE_COUNTERS_MAX);
    if (n < 0) return;
    FUZZ_CHECK(n <= STORE_COUNTERS_MAX);
    uint8_t out[1 + 9 * STORE_COUNTERS_MAX];
    size_t ol = store_counters_encode(out, c, (size_t)n);
    FUZZ_CHECK(ol == len && memcmp(out, p, len) == 0);
}

static void fuzz_merge(const uint8_t *p, size_t len)
{
    const uint8_t *part[MAX_PARTS];
    size_t plen[MAX_PARTS], n = 0;
    while (len > 0 && n < MAX_PARTS) {
        size_t l = p[0];
        if (l > len - 1) l = len - 1;
        part[n] = p + 1;
        plen[n++] = l;
        p += 1 + l;
        len -= 1 + l;
    }
    if (n == 0) return;
    const uint8_t *existing = plen[0] ? part[0] : NULL;
    const uint8_t *const *ops = part + 1;
    const size_t *op_lens = plen + 1;
    size_t n_ops = n - 1;
    buf full, partial, two;
    buf_init(&full);
    buf_init(&partial);
    buf_init(&two);
    int rc = store_counters_merge(existing, plen[0], ops, op_lens, n_ops, &full);

    /* Expected outcome: every part decodes and all share one shape. */
    bool ok = true, all_sum = true;
    store_counter first[STORE_COUNTERS_MAX], c[STORE_COUNTERS_MAX], sum[STORE_COUNTERS_MAX];
    int shape = -1;
    for (size_t i = existing ? 0 : 1; i < n && ok; i++) {
        int k = store_counters_decode(part[i], plen[i], c, STORE_COUNTERS_MAX);
        if (k < 0) {
            ok = false;
            break;
        }
        if (shape < 0) {
            shape = k;
            memcpy(first, c, (size_t)k * sizeof(*c));
            memcpy(sum, c, (size_t)k * sizeof(*c));
            for (int f = 0; f < k; f++)
                all_sum = all_sum && c[f].rule == STORE_SUM;
            continue;
        }
        if (k != shape) ok = false;
        for (int f = 0; ok && f < k; f++) {
            if (c[f].rule != first[f].rule) ok = false;
            sum[f].v = (int64_t)((uint64_t)sum[f].v + (uint64_t)c[f].v);
        }
    }
    FUZZ_CHECK((rc == 0) == ok);
    if (rc == 0) {
        int k = store_counters_decode(full.data, full.len, c, STORE_COUNTERS_MAX);
        FUZZ_CHECK(k == (shape < 0 ? 0 : shape));
        if (all_sum)
            for (int f = 0; f < k; f++)
                FUZZ_CHECK(c[f].v == sum[f].v);
        /* Partial merge of the operands, then the full merge: the same. */
        if (n_ops > 0) {
            FUZZ_CHECK(store_counters_merge(NULL, 0, ops, op_lens, n_ops, &partial) == 0);
            const uint8_t *one[1] = {partial.data};
            size_t one_len[1] = {partial.len};
            FUZZ_CHECK(store_counters_merge(existing, plen[0], one, one_len, 1, &two) == 0);
            FUZZ_CHECK(two.len == full.len && memcmp(two.data, full.data, full.len) == 0);
        }
    }
    buf_free(&full);
    buf_free(&partial);
    buf_free(&two);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] % 2 == 0)
        fuzz_decode(data + 1, size - 1);
    else
        fuzz_merge(data + 1, size - 1);
    return 0;
}
