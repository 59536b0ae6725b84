/* worker.c - event loop, scheduling and accounting of one meridian-bench thread (see worker.h).
 *
 * Owns the epoll loop (epoll_pwait2 for sub-millisecond wake-ups, epoll_wait
 * if the kernel lacks it), the idle-connection stack, reconnects with
 * backoff, request timeouts, the request framing (headers are assembled in
 * front of the body, which the workload writes at c->out + HDR_ROOM, so a
 * request is one contiguous send) and what each answer counts as.
 *
 * A request counts in the measured window if its start time (the intended
 * send time in open loop, the actual one in closed loop) is in
 * [measure_start, measure_end). Successful answers go to the histogram;
 * non-2xx answers and transport failures are errors, by type.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#ifndef MERIDIAN_VERSION
#define MERIDIAN_VERSION "0"
#endif

#define HDR_ROOM       2048 /* bytes reserved in front of every body for headers */
#define CALL_BODY_MAX  (16u << 20)
#define CALL_OUT_MIN   8192
#define SCRATCH_LEN    65536
#define MAX_EVENTS     256
#define MAX_SLEEP_NS   50000000ULL /* wake at least every 50 ms (stop requests) */
#define CHECK_EVERY_NS 20000000ULL /* request / connect timeout scan */
#define BACKOFF_MIN_NS 50000000ULL /* first reconnect delay after a failed connect */
#define BACKOFF_MAX_NS 1000000000ULL
#define STOP_DRAIN_NS  1000000000ULL /* after Ctrl-C, wait this long for answers */
#define GET_CAPTURE    64            /* enough to see "Item" at the start of a GetItem answer */

static atomic_int g_stop;
static _Atomic uint64_t g_stopped_at;

void worker_request_stop(void)
{
    atomic_store_explicit(&g_stop, 1, memory_order_relaxed);
}

bool worker_stop_requested(void)
{
    return atomic_load_explicit(&g_stop, memory_order_relaxed) != 0;
}

uint64_t worker_stopped_at(void)
{
    return atomic_load(&g_stopped_at);
}

uint64_t worker_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t secs_ns(double s)
{
    return (uint64_t)(s * 1e9 + 0.5);
}

/* ------------------------------------------------------------ lifecycle */

int worker_init(worker *w, unsigned id, unsigned nthreads, unsigned nconns, const bench_opts *o,
                const workload *wl, const struct sockaddr *addr, socklen_t addr_len, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->nthreads = nthreads;
    w->o = o;
    w->wl = wl;
    w->addr = addr;
    w->addr_len = addr_len;
    w->epfd = -1;
    w->timeout_ns = secs_ns(o->timeout_s);
    w->next_retry_ns = UINT64_MAX;
    w->date_sec = -1;
    rng_seed(&w->rng, seed);
    if (stats_init(&w->st) != 0) goto oom;
    w->conns = calloc(nconns, sizeof(*w->conns));
    w->idle = calloc(nconns, sizeof(*w->idle));
    w->scratch = malloc(SCRATCH_LEN);
    if (!w->conns || !w->idle || !w->scratch) goto oom;
    for (unsigned i = 0; i < nconns; i++)
        w->conns[i].fd = -1;
    size_t body_cap = wl->max_body > CALL_OUT_MIN ? wl->max_body : CALL_OUT_MIN;
    for (unsigned i = 0; i < nconns; i++) {
        if (conn_init(&w->conns[i], HDR_ROOM + body_cap) != 0) goto oom;
        w->nconns = i + 1;
    }
    w->nclosed = nconns;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        fprintf(stderr, "meridian-bench: epoll_create1: %s\n", strerror(errno));
        return -1;
    }
    w->sg = signer_new(o->access_key, o->secret_key, o->region, o->host_header);
    if (!w->sg) {
        fprintf(stderr, "meridian-bench: cannot set up SigV4 signing (OpenSSL)\n");
        return -1;
    }
    return 0;
oom:
    fprintf(stderr, "meridian-bench: out of memory setting up %u connections\n", nconns);
    return -1;
}

void worker_free(worker *w)
{
    if (w->conns)
        for (unsigned i = 0; i < w->nconns; i++)
            conn_free(&w->conns[i]);
    free(w->conns);
    free(w->idle);
    free(w->scratch);
    if (w->epfd >= 0) close(w->epfd);
    signer_free(w->sg);
    stats_free(&w->st);
    memset(w, 0, sizeof(*w));
    w->epfd = -1;
}

/* ------------------------------------------------------------ idle stack */

static void push_idle(worker *w, conn *c)
{
    if (c->in_idle) return;
    c->in_idle = true;
    w->idle[w->nidle++] = c;
}

static conn *pop_idle(worker *w)
{
    while (w->nidle) {
        conn *c = w->idle[--w->nidle];
        c->in_idle = false;
        if (c->state == CONN_IDLE) return c;
    }
    return NULL;
}

/* ----------------------------------------------------------- accounting */

static bool in_window(const worker *w, uint64_t t)
{
    return w->phase == PH_RUN && !w->stopping && t >= w->measure_start && t < w->measure_end;
}

static const char *connect_reason(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return "connect_refused";
    case ETIMEDOUT:
        return "connect_timeout";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "connect_unreachable";
    case EMFILE:
    case ENFILE:
        return "connect_fd_limit";
    default:
        return "connect_failed";
    }
}

static void count_connect_error(worker *w, const char *why, uint64_t now)
{
    w->last_connect_error = why;
    if (in_window(w, now)) {
        w->st.errors++;
        errtab_add(&w->st.by_type, why, 1);
    }
}

/* The request on c failed (type names the reason; status is 0 for
 * transport failures). */
static void account_failure(worker *w, conn *c, const char *type, int status)
{
    w->inflight--;
    switch (w->phase) {
    case PH_RUN:
        if (c->counted) {
            w->st.errors++;
            errtab_add(&w->st.by_type, type, 1);
            if (status) {
                char s[16];
                snprintf(s, sizeof(s), "%d", status);
                errtab_add(&w->st.by_status, s, 1);
            }
        }
        break;
    case PH_PRELOAD:
        w->pre_errors++;
        errtab_add(&w->pre_types, type, 1);
        break;
    case PH_CALL:
        w->call_done = true;
        w->call_error = type;
        break;
    case PH_NONE:
        break;
    }
}

static void close_conn(worker *w, conn *c, uint64_t now, bool connect_failed)
{
    if (c->state != CONN_CLOSED) {
        conn_close(c, w->epfd);
        w->nclosed++;
    }
    if (connect_failed) {
        c->backoff_ns = c->backoff_ns ? c->backoff_ns * 2 : BACKOFF_MIN_NS;
        if (c->backoff_ns > BACKOFF_MAX_NS) c->backoff_ns = BACKOFF_MAX_NS;
        c->retry_at_ns = now + c->backoff_ns;
    } else {
        c->retry_at_ns = now; /* reconnect at the next pass */
    }
    if (c->retry_at_ns < w->next_retry_ns) w->next_retry_ns = c->retry_at_ns;
}

static void fail_request(worker *w, conn *c, const char *why, uint64_t now)
{
    account_failure(w, c, why ? why : "connection_error", 0);
    close_conn(w, c, now, false);
}

static void on_connected(worker *w, conn *c, uint64_t now)
{
    c->backoff_ns = 0;
    w->last_progress_ns = now;
    push_idle(w, c);
}

/* A whole response arrived on c. */
static void complete(worker *w, conn *c, uint64_t now)
{
    bool ok = c->status >= 200 && c->status <= 299;
    w->last_progress_ns = now;
    if (w->phase == PH_CALL) {
        w->inflight--;
        w->call_done = true;
        w->call_error = NULL;
    } else if (ok) {
        w->inflight--;
        if (w->phase == PH_RUN && c->counted) {
            hist_record(&w->st.lat, now - c->start_ns);
            w->st.ops++;
            w->st.ops_by_op[c->op]++;
            if (c->op == OP_GET && !strstr(c->body, "\"Item\"")) w->st.get_misses++;
        } else if (w->phase == PH_PRELOAD) {
            w->pre_done++;
        }
    } else {
        char type[ERRTAB_NAME_MAX];
        report_error_type(c->status, c->body, type, sizeof(type));
        account_failure(w, c, type, c->status);
    }
    /* An answer that came before the whole request was sent (e.g. 413) leaves
     * the stream out of step: start afresh. */
    if (!c->keep_alive || c->send_left) {
        close_conn(w, c, now, false);
    } else {
        c->state = CONN_IDLE;
        push_idle(w, c);
    }
}

/* ------------------------------------------------------------- requests */

typedef struct hdr_writer {
    char *p;
} hdr_writer;

static void hw_put(hdr_writer *h, const char *s, size_t n)
{
    memcpy(h->p, s, n);
    h->p += n;
}

#define HW_LIT(h, lit) hw_put((h), (lit), sizeof(lit) - 1)

/* Frames and sends the request whose body (body_len bytes) is already at
 * c->out + HDR_ROOM. c->op, start_ns, counted and capture_max are set.
 * Failures are accounted for here. */
static void send_request(worker *w, conn *c, const char *op, size_t body_len, uint64_t now)
{
    const char *body = c->out + HDR_ROOM;
    time_t t = time(NULL);
    if ((long long)t != w->date_sec) {
        signer_format_date(t, w->date);
        w->date_sec = (long long)t;
    }
    w->inflight++;
    c->sent_ns = now;
    char auth[1024];
    size_t an = signer_authorization(w->sg, w->date, op, body, body_len, auth, sizeof(auth));
    size_t hl = strlen(w->o->host_header), opl = strlen(op);
    if (an == 0 || hl + opl + an + 400 > HDR_ROOM) {
        fail_request(w, c, "signing_failed", now);
        return;
    }
    char hdr[HDR_ROOM];
    hdr_writer h = {hdr};
    HW_LIT(&h, "POST / HTTP/1.1\r\nHost: ");
    hw_put(&h, w->o->host_header, hl);
    HW_LIT(&h,
           "\r\nContent-Type: " SIGN_CONTENT_TYPE "\r\nUser-Agent: meridian-bench/" MERIDIAN_VERSION
           "\r\nX-Amz-Target: " SIGN_TARGET_PREFIX);
    hw_put(&h, op, opl);
    HW_LIT(&h, "\r\nX-Amz-Date: ");
    hw_put(&h, w->date, SIGN_AMZ_DATE_LEN);
    HW_LIT(&h, "\r\nAuthorization: ");
    hw_put(&h, auth, an);
    HW_LIT(&h, "\r\nContent-Length: ");
    char digits[24];
    int nd = 0;
    size_t v = body_len;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd)
        *h.p++ = digits[--nd];
    HW_LIT(&h, "\r\n\r\n");
    size_t hn = (size_t)(h.p - hdr);
    char *start = c->out + HDR_ROOM - hn;
    memcpy(start, hdr, hn);
    if (conn_send(c, w->epfd, start, hn + body_len) == CONN_IO_ERROR)
        fail_request(w, c, c->why, now);
}

static uint64_t intended(const worker *w, uint64_t i)
{
    return w->sched_start + (uint64_t)((double)i * w->interval_ns);
}

/* Number of scheduled requests with an intended time before t. */
static uint64_t sched_count(const worker *w, uint64_t t)
{
    if (t <= w->sched_start) return 0;
    uint64_t n = (uint64_t)((double)(t - w->sched_start) / w->interval_ns);
    while (intended(w, n) < t)
        n++;
    while (n > 0 && intended(w, n - 1) >= t)
        n--;
    return n;
}

/* Gives idle connection c its next request; false if there is none now. */
static bool dispatch_one(worker *w, conn *c)
{
    uint64_t now = worker_now_ns();
    uint64_t key = 0;
    int64_t sk = -1;
    op_kind op;
    switch (w->phase) {
    case PH_PRELOAD:
        if (w->pre_errors || w->pre_next >= w->pre_end || worker_stop_requested()) return false;
        workload_preload_item(w->wl, w->pre_next, &key, &sk);
        w->pre_next += w->pre_stride;
        op = OP_PUT;
        c->start_ns = now;
        c->counted = false;
        break;
    case PH_RUN:
        if (w->stopping) return false;
        if (w->interval_ns > 0) {
            if (w->issued >= w->total_sched) return false;
            uint64_t t = intended(w, w->issued);
            if (t > now) return false;
            w->issued++;
            c->start_ns = t;
        } else {
            if (now >= w->measure_end) return false;
            c->start_ns = now;
        }
        c->counted = c->start_ns >= w->measure_start && c->start_ns < w->measure_end;
        op = workload_pick(w->wl, &w->rng, &key);
        break;
    default:
        return false;
    }
    c->op = op;
    c->capture_max = op == OP_GET ? GET_CAPTURE : 0;
    size_t n = workload_body(w->wl, op, key, sk, &w->rng, c->out + HDR_ROOM);
    send_request(w, c, op_names[op], n, now);
    return true;
}

static void dispatch(worker *w)
{
    while (w->nidle) {
        conn *c = pop_idle(w);
        if (!c) break;
        if (!dispatch_one(w, c)) {
            push_idle(w, c);
            break;
        }
    }
}

/* ------------------------------------------------------------ the loop */

static void reconnect_due(worker *w, uint64_t now)
{
    if (!w->nclosed || now < w->next_retry_ns) return;
    if (w->phase == PH_RUN && (w->stopping || now >= w->measure_end)) return;
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->state != CONN_CLOSED) continue;
        if (c->retry_at_ns <= now) {
            c->sent_ns = now;
            if (conn_connect(c, w->epfd, w->addr, w->addr_len) == 0) {
                w->nclosed--;
                if (c->state == CONN_IDLE) on_connected(w, c, now);
            } else {
                count_connect_error(w, connect_reason(errno), now);
                close_conn(w, c, now, true);
            }
        }
        if (c->state == CONN_CLOSED && c->retry_at_ns < next) next = c->retry_at_ns;
    }
    w->next_retry_ns = next;
}

/* Fails requests unanswered for --timeout and connects pending as long. */
static void expire(worker *w, uint64_t now)
{
    if (now < w->next_timeout_check_ns) return;
    w->next_timeout_check_ns = now + CHECK_EVERY_NS;
    for (unsigned i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (now < c->sent_ns || now - c->sent_ns < w->timeout_ns) continue;
        if (c->state == CONN_BUSY) {
            fail_request(w, c, "timeout", now);
        } else if (c->state == CONN_CONNECTING) {
            count_connect_error(w, "connect_timeout", now);
            close_conn(w, c, now, true);
        }
    }
}

static void on_event(worker *w, conn *c, uint32_t events)
{
    switch (c->state) {
    case CONN_CLOSED:
        return; /* closed earlier in this batch */
    case CONN_CONNECTING: {
        uint64_t now = worker_now_ns();
        if (conn_connected(c, w->epfd) == 0) {
            on_connected(w, c, now);
        } else {
            count_connect_error(w, connect_reason(errno), now);
            close_conn(w, c, now, true);
        }
        return;
    }
    case CONN_IDLE:
        /* The server closed an idle connection (or sent something unasked). */
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
            conn_read(c, w->scratch, SCRATCH_LEN) != CONN_IO_AGAIN)
            close_conn(w, c, worker_now_ns(), false);
        return;
    case CONN_BUSY:
        if ((events & EPOLLOUT) && c->send_left && conn_flush(c, w->epfd) == CONN_IO_ERROR) {
            fail_request(w, c, c->why, worker_now_ns());
            return;
        }
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            conn_io r = conn_read(c, w->scratch, SCRATCH_LEN);
            if (r == CONN_IO_DONE)
                complete(w, c, worker_now_ns());
            else if (r == CONN_IO_ERROR)
                fail_request(w, c, c->why, worker_now_ns());
        }
        return;
    }
}

static uint64_t next_wake(const worker *w, uint64_t now)
{
    uint64_t t = now + MAX_SLEEP_NS;
    if (w->nclosed && w->next_retry_ns < t) t = w->next_retry_ns;
    if (w->next_timeout_check_ns < t) t = w->next_timeout_check_ns;
    if (w->phase == PH_RUN) {
        if (!w->stopping && now < w->measure_end && w->measure_end < t) t = w->measure_end;
        if (w->interval_ns > 0 && w->nidle && !w->stopping && w->issued < w->total_sched) {
            uint64_t it = intended(w, w->issued);
            if (it < t) t = it;
        }
        if (w->drain_deadline < t) t = w->drain_deadline;
    }
    return t;
}

static void poll_events(worker *w, uint64_t wake)
{
    static _Atomic bool no_pwait2;
    struct epoll_event ev[MAX_EVENTS];
    uint64_t now = worker_now_ns();
    uint64_t wait = wake > now ? wake - now : 0;
    int n = -1;
    bool done = false;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {(time_t)(wait / 1000000000ULL), (long)(wait % 1000000000ULL)};
        n = epoll_pwait2(w->epfd, ev, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
        else
            done = true;
    }
    if (!done) n = epoll_wait(w->epfd, ev, MAX_EVENTS, (int)((wait + 999999) / 1000000));
    if (n < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "meridian-bench: epoll: %s\n", strerror(errno));
            worker_request_stop();
        }
        return;
    }
    for (int i = 0; i < n; i++)
        on_event(w, ev[i].data.ptr, ev[i].events);
}

static void tick(worker *w)
{
    uint64_t now = worker_now_ns();
    reconnect_due(w, now);
    expire(w, now);
    dispatch(w);
}

/* --------------------------------------------------------------- phases */

void worker_connect_all(worker *w)
{
    uint64_t now = worker_now_ns();
    for (unsigned i = 0; i < w->nconns; i++)
        w->conns[i].retry_at_ns = 0;
    w->next_retry_ns = 0;
    w->last_progress_ns = now;
    reconnect_due(w, now);
}

int worker_call(worker *w, const char *op, const char *body, size_t body_len, int *status,
                const char **resp_body, const char **why)
{
    *why = NULL;
    if (w->nconns == 0 || body_len > w->conns[0].out_cap - HDR_ROOM) {
        *why = "request_too_large";
        return -1;
    }
    w->phase = PH_CALL;
    uint64_t now = worker_now_ns();
    uint64_t deadline = now + w->timeout_ns;
    conn *c;
    for (;;) {
        now = worker_now_ns();
        reconnect_due(w, now);
        expire(w, now);
        c = pop_idle(w);
        if (c) break;
        if (worker_stop_requested()) {
            *why = "interrupted";
            goto fail;
        }
        if (now >= deadline) {
            *why = w->last_connect_error ? w->last_connect_error : "connect_timeout";
            goto fail;
        }
        uint64_t wake = next_wake(w, now);
        poll_events(w, wake < deadline ? wake : deadline);
    }
    memcpy(c->out + HDR_ROOM, body, body_len);
    c->capture_max = CALL_BODY_MAX;
    c->counted = false;
    c->start_ns = now;
    c->op = -1;
    w->call_done = false;
    w->call_error = NULL;
    send_request(w, c, op, body_len, now);
    while (!w->call_done) {
        if (worker_stop_requested()) {
            *why = "interrupted";
            goto fail;
        }
        now = worker_now_ns();
        expire(w, now);
        if (w->call_done) break;
        poll_events(w, next_wake(w, now));
    }
    w->phase = PH_NONE;
    if (w->call_error) {
        *why = w->call_error;
        return -1;
    }
    if (c->body_overflow) {
        *why = "response_too_large";
        return -1;
    }
    *status = c->status;
    *resp_body = c->body ? c->body : "";
    return 0;
fail:
    w->phase = PH_NONE;
    return -1;
}

int worker_preload(worker *w)
{
    w->phase = PH_PRELOAD;
    w->pre_stride = w->nthreads;
    w->pre_next = w->id;
    w->pre_end = workload_preload_items(w->wl);
    w->last_progress_ns = worker_now_ns();
    for (;;) {
        tick(w);
        uint64_t now = worker_now_ns();
        bool nothing_left = w->pre_next >= w->pre_end || w->pre_errors || worker_stop_requested();
        if (nothing_left && w->inflight == 0) break;
        if (now - w->last_progress_ns > w->timeout_ns) {
            w->pre_errors++;
            errtab_add(&w->pre_types, w->last_connect_error ? w->last_connect_error : "no_progress",
                       1);
            break;
        }
        poll_events(w, next_wake(w, now));
    }
    w->phase = PH_NONE;
    return (w->pre_errors || w->pre_next < w->pre_end || worker_stop_requested()) ? -1 : 0;
}

static void begin_stop(worker *w, uint64_t now)
{
    w->stopping = true;
    uint64_t expected = 0;
    atomic_compare_exchange_strong(&g_stopped_at, &expected, now);
    if (now < w->measure_end) {
        w->measure_end = now > w->measure_start ? now : w->measure_start;
        if (w->interval_ns > 0) w->total_sched = sched_count(w, w->measure_end);
    }
    if (now + STOP_DRAIN_NS < w->drain_deadline) w->drain_deadline = now + STOP_DRAIN_NS;
}

void worker_run(worker *w, uint64_t t0)
{
    const bench_opts *o = w->o;
    w->phase = PH_RUN;
    w->stopping = false;
    w->measure_start = t0 + secs_ns(o->warmup_s);
    w->measure_end = w->measure_start + secs_ns(o->duration_s);
    w->drain_deadline = w->measure_end + w->timeout_ns + CHECK_EVERY_NS;
    if (o->rate > 0) {
        w->interval_ns = 1e9 * (double)w->nthreads / o->rate;
        w->sched_start = t0 + (uint64_t)(w->interval_ns * w->id / w->nthreads);
        w->issued = 0;
        w->total_sched = sched_count(w, w->measure_end);
    }
    for (;;) {
        uint64_t now = worker_now_ns();
        if (worker_stop_requested() && !w->stopping) begin_stop(w, now);
        if (now >= w->measure_end || w->stopping) {
            if (w->inflight == 0 || now >= w->drain_deadline) break;
        }
        tick(w);
        poll_events(w, next_wake(w, worker_now_ns()));
    }
    if (w->interval_ns > 0) {
        uint64_t first = sched_count(w, w->measure_start);
        uint64_t from = w->issued > first ? w->issued : first;
        if (w->total_sched > from) w->st.unsent += w->total_sched - from;
    }
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state == CONN_BUSY && w->conns[i].counted) w->st.unfinished++;
    w->phase = PH_NONE;
}
