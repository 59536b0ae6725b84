/* hist.c - log-linear latency histogram (see hist.h).
 *
 * A value v (us) below 2*SUB is its own bucket. Above, with e = floor(log2 v)
 * - SUB_BITS, v falls in bucket SUB*e + (v >> e): SUB buckets per power of
 * two, each 2^e wide, so the width is at most v/SUB.
 */
#include "hist.h"

#include <stdlib.h>

#define SUB_BITS 10
#define SUB      (1u << SUB_BITS)
#define MAX_US   60000000ULL /* 60 s */

static unsigned log2_u64(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v);
}

static size_t bucket_of(uint64_t us)
{
    if (us > MAX_US) us = MAX_US;
    if (us < 2 * SUB) return (size_t)us;
    unsigned e = log2_u64(us) - SUB_BITS;
    return (size_t)SUB * e + (size_t)(us >> e);
}

/* Highest value (us) that falls in bucket i. */
static uint64_t bucket_high(size_t i)
{
    if (i < 2 * SUB) return i;
    uint64_t e = i / SUB - 1;
    uint64_t m = i - SUB * e;
    return ((m + 1) << e) - 1;
}

size_t hist_buckets(void)
{
    return bucket_of(MAX_US) + 1;
}

int hist_init(hist *h)
{
    h->total = 0;
    h->max_ns = 0;
    h->counts = calloc(hist_buckets(), sizeof(*h->counts));
    return h->counts ? 0 : -1;
}

void hist_free(hist *h)
{
    free(h->counts);
    h->counts = NULL;
}

void hist_record(hist *h, uint64_t ns)
{
    h->counts[bucket_of((ns + 500) / 1000)]++;
    h->total++;
    if (ns > h->max_ns) h->max_ns = ns;
}

void hist_merge(hist *dst, const hist *src)
{
    size_t n = hist_buckets();
    for (size_t i = 0; i < n; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    if (src->max_ns > dst->max_ns) dst->max_ns = src->max_ns;
}

double hist_max_ms(const hist *h)
{
    return (double)h->max_ns / 1e6;
}

double hist_percentile_ms(const hist *h, double p)
{
    if (h->total == 0) return 0;
    if (p >= 100) return hist_max_ms(h);
    uint64_t want = (uint64_t)((p / 100.0) * (double)h->total + 0.999999);
    if (want < 1) want = 1;
    size_t n = hist_buckets();
    uint64_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            double ms = (double)bucket_high(i) / 1000.0;
            /* A value rounded to 0 us is still a latency: report half a us. */
            if (i == 0) ms = 0.0005;
            double mx = hist_max_ms(h);
            return ms > mx ? mx : ms;
        }
    }
    return hist_max_ms(h);
}
