/* main.c - meridian-bench: load generator for DynamoDB-compatible HTTP endpoints.
 *
 * Owns the run as a whole: options, signals, address resolution and a first
 * connection check, the signer self-check against meridian's sigv4_sign(),
 * table setup, the worker threads and the gate between preload and the timed
 * run (so that every thread starts warmup at the same t0), merging the
 * per-thread stats, the report and the exit status:
 *   0  every recorded request succeeded
 *   1  some recorded requests failed (report still printed / written)
 *   2  bad options, setup or preload failure, interrupted before measuring
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "opts.h"
#include "report.h"
#include "sign.h"
#include "table.h"
#include "worker.h"
#include "workload.h"

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ready; /* threads done with connecting and preloading */
    bool go;
    bool abort;
    uint64_t t0;
} gate;

typedef struct thread_ctx {
    worker w;
    gate *g;
    bool preload;
    int preload_rc;
    pthread_t tid;
    bool started;
} thread_ctx;

static void on_signal(int sig)
{
    (void)sig;
    worker_request_stop();
}

static void *thread_main(void *arg)
{
    thread_ctx *t = arg;
    worker_connect_all(&t->w);
    t->preload_rc = t->preload ? worker_preload(&t->w) : 0;
    gate *g = t->g;
    pthread_mutex_lock(&g->mu);
    g->ready++;
    pthread_cond_broadcast(&g->cv);
    while (!g->go)
        pthread_cond_wait(&g->cv, &g->mu);
    bool abort_run = g->abort;
    uint64_t t0 = g->t0;
    pthread_mutex_unlock(&g->mu);
    if (!abort_run) worker_run(&t->w, t0);
    return NULL;
}

static void open_gate(gate *g, bool abort_run, uint64_t t0)
{
    pthread_mutex_lock(&g->mu);
    g->go = true;
    g->abort = abort_run;
    g->t0 = t0;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void raise_fd_limit(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need)
        fprintf(stderr, "meridian-bench: warning: open-file limit %llu is below %u\n",
                (unsigned long long)rl.rlim_cur, need);
}

static int resolve(const bench_opts *o, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "meridian-bench: cannot resolve %s: %s\n", o->host, gai_strerror(rc));
        if (res) freeaddrinfo(res);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* One connection, to fail early and clearly if nothing listens. */
static int probe(const bench_opts *o, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "meridian-bench: socket: %s\n", strerror(errno));
        return -1;
    }
    int err = 0;
    if (connect(fd, sa, len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = poll(&p, 1, (int)(o->timeout_s * 1000));
            socklen_t el = sizeof(err);
            if (n == 0)
                err = ETIMEDOUT;
            else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                err = errno;
        }
    }
    close(fd);
    if (err) {
        fprintf(stderr, "meridian-bench: cannot connect to %s: %s\n", o->endpoint, strerror(err));
        return -1;
    }
    return 0;
}

static int selfcheck(const bench_opts *o)
{
    signer *s = signer_new(o->access_key, o->secret_key, o->region, o->host_header);
    if (!s) {
        fprintf(stderr, "meridian-bench: cannot set up SigV4 signing (OpenSSL)\n");
        return -1;
    }
    char why[2048];
    int rc = signer_selfcheck(s, why, sizeof(why));
    if (rc != 0) fprintf(stderr, "meridian-bench: internal error: signer self-check: %s\n", why);
    signer_free(s);
    return rc;
}

static int setup_table(const bench_opts *o, const workload *wl, const struct sockaddr *sa,
                       socklen_t len)
{
    worker w;
    int rc = worker_init(&w, 0, 1, 1, o, wl, sa, len, o->seed);
    if (rc == 0) {
        worker_connect_all(&w);
        rc = table_ensure(&w, o, stderr);
    }
    worker_free(&w);
    return rc;
}

static void print_preload_failure(thread_ctx *ctx, unsigned n)
{
    errtab all;
    memset(&all, 0, sizeof(all));
    uint64_t errors = 0;
    for (unsigned i = 0; i < n; i++) {
        errtab_merge(&all, &ctx[i].w.pre_types);
        errors += ctx[i].w.pre_errors;
    }
    if (worker_stop_requested() && errors == 0) {
        fprintf(stderr, "meridian-bench: interrupted during preload\n");
        return;
    }
    fprintf(stderr, "meridian-bench: preload failed (%llu errors:", (unsigned long long)errors);
    for (size_t i = 0; i < all.n; i++)
        fprintf(stderr, " %s=%llu", all.e[i].name, (unsigned long long)all.e[i].count);
    fprintf(stderr, ")\n");
}

int main(int argc, char **argv)
{
    bench_opts o;
    int pr = opts_parse(argc, argv, &o, stderr);
    if (pr == 1) return 0;
    if (pr != 0) return 2;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(o.connections + 64);

    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    if (resolve(&o, &addr, &addr_len) != 0 || probe(&o, (struct sockaddr *)&addr, addr_len) != 0)
        return 2;
    if (selfcheck(&o) != 0) return 2;

    workload wl;
    if (workload_init(&wl, &o, o.seed) != 0) {
        fprintf(stderr, "meridian-bench: out of memory\n");
        return 2;
    }
    int exit_code = 2;
    thread_ctx *ctx = NULL;
    unsigned nthreads = o.threads, started = 0;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    stats total;
    bool have_total = false;

    if (o.create_table && setup_table(&o, &wl, (struct sockaddr *)&addr, addr_len) != 0) goto out;

    ctx = calloc(nthreads, sizeof(*ctx));
    if (!ctx) {
        fprintf(stderr, "meridian-bench: out of memory\n");
        goto out;
    }
    for (unsigned i = 0; i < nthreads; i++)
        ctx[i].w.epfd = -1; /* worker_free() of a worker never set up */
    for (unsigned i = 0; i < nthreads; i++) {
        unsigned share = o.connections / nthreads + (i < o.connections % nthreads ? 1 : 0);
        ctx[i].g = &g;
        ctx[i].preload = o.preload;
        if (worker_init(&ctx[i].w, i, nthreads, share, &o, &wl, (struct sockaddr *)&addr, addr_len,
                        o.seed + 0x9e3779b97f4a7c15ULL * (i + 1)) != 0)
            goto out;
    }

    uint64_t pre_start = worker_now_ns();
    for (unsigned i = 0; i < nthreads; i++) {
        int rc = pthread_create(&ctx[i].tid, NULL, thread_main, &ctx[i]);
        if (rc != 0) {
            fprintf(stderr, "meridian-bench: pthread_create: %s\n", strerror(rc));
            break;
        }
        ctx[i].started = true;
        started++;
    }
    pthread_mutex_lock(&g.mu);
    while (g.ready < started)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);

    bool ok = started == nthreads;
    for (unsigned i = 0; ok && i < nthreads; i++)
        if (ctx[i].preload_rc != 0) ok = false;
    if (ok && worker_stop_requested()) ok = false;
    if (started == nthreads && !ok && o.preload) print_preload_failure(ctx, nthreads);
    if (ok && o.preload) {
        double s = (double)(worker_now_ns() - pre_start) / 1e9;
        uint64_t items = workload_preload_items(&wl);
        fprintf(stderr, "meridian-bench: preloaded %llu items in %.2f s (%.0f items/s)\n",
                (unsigned long long)items, s, s > 0 ? (double)items / s : 0.0);
    }
    uint64_t t0 = worker_now_ns();
    open_gate(&g, !ok, t0);
    for (unsigned i = 0; i < nthreads; i++)
        if (ctx[i].started) pthread_join(ctx[i].tid, NULL);
    if (!ok) goto out;

    if (stats_init(&total) != 0) {
        fprintf(stderr, "meridian-bench: out of memory\n");
        goto out;
    }
    have_total = true;
    for (unsigned i = 0; i < nthreads; i++)
        stats_merge(&total, &ctx[i].w.st);

    double duration = o.duration_s;
    uint64_t stopped = worker_stopped_at();
    uint64_t measure_start = t0 + (uint64_t)(o.warmup_s * 1e9 + 0.5);
    if (stopped) {
        double d = stopped > measure_start ? (double)(stopped - measure_start) / 1e9 : 0;
        if (d < duration) duration = d;
        if (duration <= 0) {
            fprintf(stderr, "meridian-bench: interrupted before the measured window\n");
            goto out;
        }
        fprintf(stderr, "meridian-bench: interrupted; reporting %.2f s\n", duration);
    }
    report_print(stdout, &o, &total, duration);
    fflush(stdout);
    exit_code = total.errors ? 1 : 0;
    if (o.json_path && report_json(o.json_path, &o, &total, duration) != 0) exit_code = 2;

out:
    if (have_total) stats_free(&total);
    if (ctx)
        for (unsigned i = 0; i < nthreads; i++)
            worker_free(&ctx[i].w);
    free(ctx);
    workload_free(&wl);
    return exit_code;
}
