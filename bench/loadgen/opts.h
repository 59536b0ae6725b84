/* opts.h - meridian-bench command line: the options, their defaults and checks.
 *
 * Owns bench_opts (everything the run is told) and its parser. The parser
 * validates every value (ranges, endpoint form, table name, credentials from
 * the options or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) so that the rest
 * of the program can trust it.
 */
#ifndef MERIDIAN_BENCH_OPTS_H
#define MERIDIAN_BENCH_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum wl_kind { WL_PUT, WL_GET, WL_UPDATE, WL_QUERY, WL_MIX } wl_kind;

typedef struct bench_opts {
    char endpoint[300];    /* as given, e.g. "http://127.0.0.1:8000" */
    char host[256];        /* host to connect to (brackets of an IPv6 literal removed) */
    char port[8];          /* decimal port */
    char host_header[300]; /* Host header value: "host[:port]" as in the endpoint */
    char region[64];
    char access_key[256];
    char secret_key[256];
    char table[256];
    wl_kind workload;
    int mix_get_pct;        /* mix:P: P% GetItem, the rest PutItem */
    char workload_name[32]; /* as given, e.g. "mix:95" */
    uint64_t keys;          /* key space size */
    unsigned item_size;     /* payload bytes of each written item */
    unsigned collection;    /* sort keys per partition for the query workload */
    bool preload;           /* write the key space before the timed run */
    bool create_table;      /* create the table (or reuse it) and wait for ACTIVE */
    double rate;            /* requests/s in total (open loop); 0 = closed loop */
    double duration_s;      /* recorded run */
    double warmup_s;        /* not recorded, before the run */
    double timeout_s;       /* a request unanswered this long is an error */
    unsigned connections;   /* in total, over all threads */
    unsigned threads;       /* event-loop threads */
    uint64_t seed;          /* random key choice and payloads */
    const char *json_path;  /* --json FILE, or NULL (points into argv) */
} bench_opts;

/* Parses argv into o. Returns 0 to run, 1 if --help was printed (exit 0),
 * -1 on an error (already reported on err, with a hint). */
int opts_parse(int argc, char **argv, bench_opts *o, FILE *err);

void opts_usage(FILE *f);

/* True if the workload's table has a sort key (the query workload). */
bool opts_has_sort_key(const bench_opts *o);

#endif
