/* worker.h - one event-loop thread of meridian-bench and its connections.
 *
 * A worker owns an epoll set, its share of the connections, a signer, a
 * random generator and its own stats, so threads share nothing while they
 * run. It runs one phase at a time:
 *   - worker_call():    one request, answer kept (table setup, main thread);
 *   - worker_preload(): PutItem of its share of the key space, as fast as the
 *                       connections go, not recorded;
 *   - worker_run():     warmup then the measured window, closed loop (each
 *                       connection sends its next request when the previous
 *                       one is answered) or open loop at --rate (requests
 *                       scheduled at fixed intervals; latency counts from the
 *                       intended send time, including any wait for a free
 *                       connection, so coordinated omission is not hidden).
 * Closed connections are reconnected (with backoff if connecting fails).
 */
#ifndef MERIDIAN_BENCH_WORKER_H
#define MERIDIAN_BENCH_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"
#include "opts.h"
#include "report.h"
#include "sign.h"
#include "workload.h"

typedef enum worker_phase { PH_NONE, PH_CALL, PH_PRELOAD, PH_RUN } worker_phase;

typedef struct worker {
    unsigned id, nthreads;
    const bench_opts *o;
    const workload *wl;
    const struct sockaddr *addr;
    socklen_t addr_len;
    int epfd;
    conn *conns;
    unsigned nconns;
    conn **idle; /* stack of connections ready for a request */
    unsigned nidle;
    unsigned inflight;
    unsigned nclosed;
    uint64_t next_retry_ns;
    uint64_t next_timeout_check_ns;
    uint64_t timeout_ns;
    uint64_t last_progress_ns;
    const char *last_connect_error;
    signer *sg;
    rng rng;
    char *scratch; /* read buffer */
    char date[SIGN_AMZ_DATE_LEN + 1];
    long long date_sec;
    worker_phase phase;
    stats st;

    /* preload: items pre_next, pre_next + stride, ... below pre_end */
    uint64_t pre_next, pre_end, pre_stride, pre_done, pre_errors;
    errtab pre_types;

    /* run */
    uint64_t measure_start, measure_end, drain_deadline;
    bool stopping;
    double interval_ns; /* open loop: between two intended sends */
    uint64_t sched_start, issued, total_sched;

    /* call */
    bool call_done;
    const char *call_error;
} worker;

/* Sets up a worker with nconns connections (not yet connected). seed seeds
 * its random generator. Returns 0, or -1 with a message on stderr. */
int worker_init(worker *w, unsigned id, unsigned nthreads, unsigned nconns, const bench_opts *o,
                const workload *wl, const struct sockaddr *addr, socklen_t addr_len, uint64_t seed);
void worker_free(worker *w);

/* Starts connecting every connection. */
void worker_connect_all(worker *w);

/* Sends one request (op e.g. "DescribeTable") and waits for its answer for
 * at most --timeout. Returns 0 with the HTTP status and the body (valid until
 * the next call on this worker), or -1 with a reason in *why. */
int worker_call(worker *w, const char *op, const char *body, size_t body_len, int *status,
                const char **resp_body, const char **why);

/* Writes this worker's share of the key space. Returns 0, or -1 if any write
 * failed (counted in pre_errors / pre_types), nothing progressed for
 * --timeout, or a stop was requested. */
int worker_preload(worker *w);

/* Runs warmup and the measured window, starting at t0 (CLOCK_MONOTONIC ns):
 * warmup [t0, t0 + warmup), measured [t0 + warmup, t0 + warmup + duration). */
void worker_run(worker *w, uint64_t t0);

uint64_t worker_now_ns(void);

/* For the signal handler: ask every worker to stop (async-signal-safe). */
void worker_request_stop(void);
bool worker_stop_requested(void);
/* CLOCK_MONOTONIC ns at which the first worker noticed a stop during the
 * measured window, or 0. */
uint64_t worker_stopped_at(void);

#endif
