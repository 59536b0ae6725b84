/* hist.h - HDR-style latency histogram of meridian-bench.
 *
 * Log-linear buckets over microseconds: exact (1 us wide) below 2048 us, then
 * 1024 sub-buckets per power of two, so any recorded value is known within
 * 0.1% (relative). The range ends at 60 s; longer values count in the top
 * bucket, and the exact maximum is kept aside. One histogram per thread,
 * merged at the end; recording is a few instructions and never allocates.
 */
#ifndef MERIDIAN_BENCH_HIST_H
#define MERIDIAN_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct hist {
    uint64_t *counts; /* hist_buckets() entries */
    uint64_t total;
    uint64_t max_ns; /* exact */
} hist;

/* Returns 0, or -1 if the buckets cannot be allocated. */
int hist_init(hist *h);
void hist_free(hist *h);
void hist_record(hist *h, uint64_t ns);
void hist_merge(hist *dst, const hist *src);
/* The value (ms) at or below which p percent of the recorded values lie
 * (highest value of that bucket, capped at the maximum); 0 if empty. */
double hist_percentile_ms(const hist *h, double p);
double hist_max_ms(const hist *h);
size_t hist_buckets(void);

#endif
