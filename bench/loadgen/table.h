/* table.h - meridian-bench's --create-table: make sure the table exists and is ACTIVE.
 *
 * Owns the DescribeTable / CreateTable exchange: an existing table is reused
 * if its key schema fits the workload (pk S, plus sk N for query); a missing
 * one is created with PAY_PER_REQUEST; either way it waits until the table
 * is ACTIVE (at most 60 s).
 */
#ifndef MERIDIAN_BENCH_TABLE_H
#define MERIDIAN_BENCH_TABLE_H

#include <stdio.h>

#include "opts.h"
#include "worker.h"

/* Uses w (one connection is enough) for the calls. Returns 0, or -1 with
 * the reason written to err. */
int table_ensure(worker *w, const bench_opts *o, FILE *err);

#endif
