/* report.h - meridian-bench's counters and how they are reported.
 *
 * Owns `stats` (one per worker thread, merged at the end): the latency
 * histogram of successful requests, operation and error counts, errors by
 * type (the __type of a DynamoDB error body without its namespace, or the
 * transport failure: "connection_closed", "timeout", ...) and by HTTP
 * status; the human-readable summary; and the --json file.
 */
#ifndef MERIDIAN_BENCH_REPORT_H
#define MERIDIAN_BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "hist.h"
#include "opts.h"
#include "workload.h"

#define ERRTAB_SLOTS    32
#define ERRTAB_NAME_MAX 96

typedef struct errtab {
    struct {
        char name[ERRTAB_NAME_MAX];
        uint64_t count;
    } e[ERRTAB_SLOTS];
    size_t n;
    uint64_t other; /* names beyond ERRTAB_SLOTS */
} errtab;

void errtab_add(errtab *t, const char *name, uint64_t count);
void errtab_merge(errtab *dst, const errtab *src);
uint64_t errtab_total(const errtab *t);

typedef struct stats {
    hist lat;     /* successful requests of the measured window */
    uint64_t ops; /* successful requests (2xx) */
    uint64_t ops_by_op[OP_COUNT];
    uint64_t errors;     /* failed requests and failed connection attempts */
    uint64_t get_misses; /* GetItem answered without an Item */
    uint64_t unsent;     /* --rate: scheduled in the window but never sent */
    uint64_t unfinished; /* still unanswered when the run ended */
    errtab by_type;
    errtab by_status; /* "400", "500", ...; transport errors have none */
} stats;

int stats_init(stats *s); /* 0, or -1 on allocation failure */
void stats_free(stats *s);
void stats_merge(stats *dst, const stats *src);

/* Extracts the error type of a DynamoDB error body into out: the part of
 * "__type" after '#', else "HTTP_<status>". */
void report_error_type(int status, const char *body, char *out, size_t out_len);

void report_print(FILE *f, const bench_opts *o, const stats *s, double duration_s);
/* Writes the JSON report; returns 0, or -1 (reported on stderr). */
int report_json(const char *path, const bench_opts *o, const stats *s, double duration_s);

#endif
