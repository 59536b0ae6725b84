/* repl.c - peer links: one sender thread per peer streaming this region's
 * replication log (and table back-fills) to it, and receiver threads applying
 * what the peers stream here. See docs/REPLICATION.md for the protocol.
 *
 * Sender state machine (one per peer, sender_main):
 *   DISCONNECTED --connect+handshake--> STREAMING --I/O error/timeout--> DISCONNECTED
 * In STREAMING the sender keeps at most SEND_WINDOW batches unacknowledged; a
 * BATCH frame's payload is `u64 through | batch` where `through` is the log
 * position the receiver may record once the batch is applied. Back-fills are
 * interleaved between log batches and carry the current position unchanged,
 * so a broken back-fill is simply redone from the start after reconnecting
 * (its marker in meta is deleted only when the END batch is acknowledged).
 *
 * Receiver (one per inbound connection, receiver_main): handshake, then
 * apply each BATCH in order and answer ACK{through} once it is durable.
 * Applies from one source region are serialised by that source's apply_mu.
 *
 * Frontiers (tombstone collection): about once a second each sender sends
 * HEARTBEAT{position, safe_ts, frontier} once the log up to the watermark of
 * its safe point (rlog_safe_point) has been sent: a receiver that has
 * applied through `position` then holds every write of the source stamped at
 * or below safe_ts (its *claim* on that source). A region's applied frontier
 * is the least of its claims and its own safe point; `frontier` reports it to
 * the peers. The least of every region's frontier (the global frontier) minus
 * the grace period is the horizon below which tombstones are collected.
 */
#include "repl/repl.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "item/codec.h"
#include "repl/wire.h"
#include "util/log.h"

#define SEND_WINDOW        16
#define SEND_BATCH_ENTRIES 512
#define SEND_BATCH_BYTES   (1u << 20)
#define IO_TIMEOUT_MS      15000
#define HEARTBEAT_MS       1000
#define RECV_IDLE_LIMIT_MS 30000
#define BACKOFF_MAX_MS     2000
/* Inbound connections before authentication (the handshake): a bounded pool,
 * shared fairly between source addresses, and a short deadline. Once
 * authenticated, a connection holds its source region's own slot
 * (source_state.link) instead, so connections that prove nothing never keep
 * a configured peer out. See accept_conn. */
#define PREAUTH_MAX         32   /* inbound connections in their handshake at once */
#define PREAUTH_PER_ADDR    8    /* ... of them from one address (IPv6: one /64) */
#define PREAUTH_TIMEOUT_MS  3000 /* an inbound handshake, from accept to START */
#define ACCEPT_BACKOFF_MS   100  /* accept loop pause when out of descriptors, no spare */
#define BACKFILL_PREFIX     "backfill/"
#define CLAIM_KEY_PREFIX    "repl/claim/"
#define GC_ERR_LOG_MS       10000  /* at most one background-failure warning per 10 s */
#define TOMB_SCAN_PER_TABLE 100000 /* index entries of one table per collection pass */
#define REFUSED_LOG_MS      1000   /* at most one warning a second per refusal reason */
#define APPLY_ERR_LOG_MS    10000

static const double lat_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,  0.5,    1,     2.5,  5,     10};
#define N_LAT (sizeof(lat_le) / sizeof(lat_le[0]))

/* Why an inbound replication connection was refused or closed
 * (meridian_replication_refused_total{reason}). */
typedef enum refuse_reason {
    REFUSE_AUTH,              /* the peer did not prove the cluster key, or refused ours */
    REFUSE_UNKNOWN_REGION,    /* proven, but not a region configured as a peer here */
    REFUSE_PROTOCOL,          /* malformed or unexpected frames, before or after the handshake */
    REFUSE_INCOMPLETE,        /* the peer went away during the handshake */
    REFUSE_LIMIT,             /* no descriptor or thread for it (EMFILE, ENFILE, ...) */
    REFUSE_PREAUTH_LIMIT,     /* unauthenticated, and PREAUTH_MAX were: made room for a newer one */
    REFUSE_ADDRESS_LIMIT,     /* unauthenticated, and PREAUTH_PER_ADDR were from its address */
    REFUSE_HANDSHAKE_TIMEOUT, /* not authenticated within PREAUTH_TIMEOUT_MS of accept */
    N_REFUSE
} refuse_reason;

static const char *const refuse_names[N_REFUSE] = {
    "auth",  "unknown_region", "protocol",      "incomplete",
    "limit", "preauth_limit",  "address_limit", "handshake_timeout"};

/* Background work, on its own thread (gc_main): each task runs every
 * `period_ms`, and its runs, failures and time spent are metrics
 * (meridian_background_*{task}). */
typedef enum gc_task_id { GC_LOG, GC_TOMBSTONES, N_GC_TASKS } gc_task_id;
static const char *const gc_task_names[N_GC_TASKS] = {"log", "tombstones"};
static const unsigned gc_task_period_ms[N_GC_TASKS] = {5000, 1000};
typedef struct gc_task {
    _Atomic uint64_t runs, failures;
    _Atomic uint64_t busy_us;      /* time spent, all runs */
    _Atomic uint64_t last_us;      /* the last run's duration */
    _Atomic uint64_t last_done_ms; /* wall clock at the end of the last run */
} gc_task;

typedef struct inflight {
    uint64_t through;
    bool backfill_end;
    uint8_t uid[TABLE_UID_LEN];
    uint64_t marker_gen; /* the back-fill marker's value when the back-fill started */
} inflight;

/* Sender side of the link to one peer. */
typedef struct peer_link {
    repl *r;
    char name[REPL_REGION_MAX + 1];
    char host[256];
    int port;
    pthread_t thread;
    bool started;
    _Atomic int up;          /* connected and handshaken */
    _Atomic int fd;          /* current socket, -1 if none (for shutdown) */
    _Atomic uint64_t acked;  /* log position the peer has applied */
    _Atomic int acked_known; /* acked came from the peer since this process started */
    _Atomic uint64_t sent;   /* log position sent */
    _Atomic uint64_t reconnects;
    _Atomic uint64_t backfills_done;
    _Atomic uint64_t bf_sent, bf_total; /* progress of the current back-fill */
    _Atomic uint64_t reseeds;           /* re-seeds from snapshots (log trimmed or inconsistent) */
    _Atomic uint64_t positions_ahead;   /* the peer reported a position beyond this log */
} peer_link;

/* Receiver side: what arrives from one source region. */
typedef struct source_state {
    char name[REPL_REGION_MAX + 1];
    pthread_mutex_t apply_mu;
    _Atomic uint64_t lat_bucket[N_LAT + 1];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t applied_entries;
    _Atomic uint64_t last_apply_ms;
    _Atomic uint64_t last_commit_ms; /* origin commit time of the newest entry applied */
    _Atomic uint64_t claim_ts;       /* every write of the source stamped <= this is here */
    _Atomic uint64_t frontier;       /* the source's applied frontier, as it reported */
    uint64_t conn_gen; /* under apply_mu: the newest inbound connection from the source */
    struct conn *link; /* under repl.conn_mu: its authenticated connection (CONN_PEER) */
} source_state;

/* An inbound connection's place (repl.conn_mu guards state, fd and the list):
 *   CONN_PREAUTH --handshake done--> CONN_PEER (its source's link)
 *   CONN_PREAUTH --evicted by accept_conn--> CONN_CLOSING (socket shut down)
 *   CONN_PEER --a newer link from the same region--> CONN_CLOSING
 *   any --its thread ends (conn_finish: socket closed)--> CONN_DONE (joined, freed)
 * Only the connection's own thread closes its socket, setting fd to -1 under
 * conn_mu, so others may shut it down under conn_mu while fd >= 0. Only the
 * accept thread (or repl_stop once it has ended) joins and frees. */
typedef enum conn_state { CONN_PREAUTH, CONN_PEER, CONN_CLOSING, CONN_DONE } conn_state;

typedef struct conn {
    repl *r;
    struct conn *next;
    int fd;
    conn_state state;
    source_state *src;    /* CONN_PEER: whose link it is */
    uint64_t seq;         /* accept order: the oldest is evicted first */
    uint64_t accepted_ms; /* monotonic; the handshake must end by + PREAUTH_TIMEOUT_MS */
    uint8_t host[16];     /* source address (IPv4 mapped; IPv6: its /64), for the limits */
    char addr[INET6_ADDRSTRLEN + 8]; /* the peer's address and port, for messages */
    pthread_t thread;
} conn;

struct repl {
    db *d;
    char region[REPL_REGION_MAX + 1];
    uint8_t key[1024];
    size_t key_len;
    peer_link *links;
    source_state *sources;
    size_t n_peers;
    int listen_fd;
    pthread_t accept_thread;
    pthread_t gc_thread; /* background work: gc_main */
    bool gc_started;
    gc_task gc[N_GC_TASKS]; /* its statistics, per task */
    _Atomic bool running;
    pthread_mutex_t conn_mu;
    pthread_t conn_mu_owner; /* for assert_conn_locked */
    bool conn_mu_held;
    conn *conns;       /* under conn_mu: every inbound connection not yet joined */
    size_t n_preauth;  /* under conn_mu: of them in CONN_PREAUTH (<= PREAUTH_MAX) */
    uint64_t conn_seq; /* accept thread: accept order */
    int spare_fd;      /* accept thread: closed to accept and refuse when out of descriptors */
    _Atomic uint64_t nofile_logged_ms; /* last "out of descriptors" warning without a spare */
    _Atomic uint64_t kick_gen;
    uint64_t retention_ms;    /* log entries older than this are collected (0: no limit) */
    uint64_t retention_bytes; /* the log is kept below this size (0: no limit) */
    uint64_t grace_ms;        /* tombstone grace period */
    _Atomic uint64_t applied_frontier, global_frontier; /* as last computed (metrics) */
    _Atomic uint64_t tombstones_collected;
    _Atomic uint64_t refused[N_REFUSE];
    _Atomic uint64_t refused_logged_ms[N_REFUSE]; /* last warning per reason (monotonic) */
    _Atomic uint64_t apply_err_logged_ms;         /* last "applying ... failed" error */
    _Atomic uint64_t gc_err_logged_ms;            /* last background failure warning */
    _Atomic uint64_t departed_logged_ms;          /* last "retention held" warning */
};

static uint64_t now_ms(void)
{
    return hlc_wall_ms();
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool repl_is_peer(const repl *r, const char *region)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->links[i].name, region) == 0) return true;
    return false;
}

static source_state *source_of(repl *r, const char *region)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->sources[i].name, region) == 0) return &r->sources[i];
    return NULL;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void repl_backfill_marker(buf *key, const char *peer, const uint8_t uid[TABLE_UID_LEN])
{
    char h[2 * TABLE_UID_LEN + 1];
    hex(h, uid, TABLE_UID_LEN);
    buf_puts(key, BACKFILL_PREFIX);
    buf_puts(key, peer);
    buf_putc(key, '/');
    buf_puts(key, h);
}

#define DEPARTED_PREFIX "departed/"

#define DEPARTED_FORMAT 0x01

void repl_departed_record(store_batch *b, const uint8_t uid[TABLE_UID_LEN], uint64_t through,
                          const void *descriptor_json, size_t len)
{
    char h[2 * TABLE_UID_LEN + 1];
    hex(h, uid, TABLE_UID_LEN);
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    buf_puts(&k, DEPARTED_PREFIX);
    buf_puts(&k, h);
    buf_putc(&v, DEPARTED_FORMAT);
    buf_put_u64be(&v, through);
    buf_append(&v, descriptor_json, len);
    store_batch_put(b, STORE_CF_META, k.data, k.len, v.data, v.len);
    buf_free(&k);
    buf_free(&v);
}

/* Parses a departed record: the replica set it names (tmpl, free with
 * catalog_free_template) and the last seq of its writes. A record written
 * before the seq was recorded (plain JSON) counts as covering the whole log
 * as it is now. -1 if malformed. */
static int departed_parse(repl *r, const uint8_t *v, size_t len, table *tmpl, uint64_t *through)
{
    if (len > 9 && v[0] == DEPARTED_FORMAT) {
        *through = load_u64be(v + 1);
        return catalog_parse_descriptor((const char *)v + 9, len - 9, tmpl);
    }
    *through = rlog_high(&r->d->log);
    return catalog_parse_descriptor((const char *)v, len, tmpl);
}

/* For a table whose replica departed from this region: does `peer` still get
 * the writes made here before the departure? -1 (e set) if that cannot be
 * read: the caller must not guess (a "no" would drop the writes). */
static int departed_peer_replicates(repl *r, const uint8_t *uid, const char *peer, bool *yes,
                                    err *e)
{
    char h[2 * TABLE_UID_LEN + 1];
    hex(h, uid, TABLE_UID_LEN);
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    buf_puts(&k, DEPARTED_PREFIX);
    buf_puts(&k, h);
    *yes = false;
    int got = store_get(r->d->st, STORE_CF_META, k.data, k.len, &v, e);
    if (got == 1) {
        table tmpl;
        uint64_t through;
        if (departed_parse(r, v.data, v.len, &tmpl, &through) == 0) {
            *yes = table_settings_replica(&tmpl.settings, peer) != NULL;
            catalog_free_template(&tmpl);
        } else {
            got = err_set(e, ERR_INTERNAL, "corrupt departed-table record %s", h);
        }
    }
    buf_free(&k);
    buf_free(&v);
    return got < 0 ? -1 : 0;
}

void repl_kick(repl *r)
{
    if (r) atomic_fetch_add(&r->kick_gen, 1);
}

static uint64_t applied_frontier(repl *r);

/* ------------------------------------------------------------------ sender */

typedef struct sender_conn {
    peer_link *l;
    int fd;
    uint64_t pos;        /* last log position sent (the newest entry read so far) */
    uint64_t scanned;    /* the log has been read up to here (>= pos; holes after pos) */
    bool bf_inflight;    /* a back-fill was sent and its END is not acknowledged yet */
    bool departed_known; /* cache of the last departed-table lookup: */
    uint8_t departed_uid[TABLE_UID_LEN];
    bool departed_send;
    inflight q[SEND_WINDOW];
    size_t qh, qn;
    uint64_t last_send;
    /* The next HEARTBEAT, sent once the log through hb_seq has been sent. */
    bool hb_pending;
    uint64_t hb_seq, hb_ts, hb_frontier, last_hb;
    uint8_t deferred_uid[TABLE_UID_LEN]; /* the back-fill last reported as deferred */
} sender_conn;

static int connect_to(const char *host, int port, int timeout_ms, err *e)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return err_set(e, ERR_UNAVAILABLE, "cannot resolve %s", host);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return err_set(e, ERR_UNAVAILABLE, "socket: %s", strerror(errno));
    }
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        return err_set(e, ERR_UNAVAILABLE, "connect: %s", strerror(errno));
    }
    if (rc != 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ||
            soerr) {
            close(fd);
            return err_set(e, ERR_UNAVAILABLE, "connect: %s",
                           soerr ? strerror(soerr) : "timed out");
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Reads one frame from the receiver (an ACK) if one arrives within wait_ms.
 * Returns 0 if one was handled, 1 if none arrived, -1 on a broken link. */
static int read_ack(sender_conn *c, int wait_ms, err *e)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0 && errno != EINTR) return err_set(e, ERR_UNAVAILABLE, "poll: %s", strerror(errno));
    if (pr <= 0) return 1;
    buf payload;
    buf_init(&payload);
    repl_frame_type type;
    int rc = repl_frame_recv(c->fd, &type, &payload, IO_TIMEOUT_MS, e);
    if (rc == 0 && type == REPL_F_ERROR) {
        rc = err_set(e, ERR_UNAVAILABLE, "peer refused: %.*s", (int)payload.len,
                     payload.data ? (char *)payload.data : "");
    } else if (rc == 0 && type == REPL_F_ACK) {
        uint64_t through;
        if (c->qn == 0 || repl_get_u64(&payload, 0, &through) < 0) {
            rc = err_set(e, ERR_VALIDATION, "unexpected acknowledgement");
        } else {
            inflight *f = &c->q[c->qh];
            atomic_store(&c->l->acked, f->through);
            if (f->backfill_end) {
                /* Delete the marker only if nobody re-wrote it meanwhile (a
                 * replica removed and added again owes a new back-fill). */
                buf k, v;
                buf_init(&k);
                buf_init(&v);
                repl_backfill_marker(&k, c->l->name, f->uid);
                int got = store_get(c->l->r->d->st, STORE_CF_META, k.data, k.len, &v, e);
                if (got < 0) rc = -1;
                if (got == 1 && v.len == 8 && load_u64be(v.data) == f->marker_gen) {
                    store_batch *b = store_batch_new(c->l->r->d->st);
                    store_batch_delete(b, STORE_CF_META, k.data, k.len);
                    if (store_write(c->l->r->d->st, b, e) < 0) rc = -1;
                    store_batch_free(b);
                }
                buf_free(&k);
                buf_free(&v);
                c->bf_inflight = false;
                atomic_fetch_add(&c->l->backfills_done, 1);
            }
            c->qh = (c->qh + 1) % SEND_WINDOW;
            c->qn--;
        }
    }
    buf_free(&payload);
    return rc;
}

/* Sends a BATCH frame, `through | batch`, once the window has room. */
static int send_batch(sender_conn *c, buf *batch, uint64_t through, bool backfill_end,
                      const uint8_t *uid, uint64_t marker_gen, err *e)
{
    while (c->qn >= SEND_WINDOW) {
        int rc = read_ack(c, IO_TIMEOUT_MS, e);
        if (rc < 0) return -1;
        if (rc == 1)
            return err_set(e, ERR_UNAVAILABLE, "no acknowledgement for %d s", IO_TIMEOUT_MS / 1000);
    }
    buf frame;
    buf_init(&frame);
    buf_put_u64be(&frame, through);
    buf_append(&frame, batch->data, batch->len);
    int rc = repl_frame_send(c->fd, REPL_F_BATCH, frame.data, frame.len, IO_TIMEOUT_MS, e);
    buf_free(&frame);
    if (rc < 0) return -1;
    inflight *f = &c->q[(c->qh + c->qn) % SEND_WINDOW];
    f->through = through;
    f->backfill_end = backfill_end;
    if (uid) memcpy(f->uid, uid, TABLE_UID_LEN);
    f->marker_gen = marker_gen;
    c->qn++;
    c->last_send = hlc_mono_ms();
    return 0;
}

static void frame_start(buf *batch)
{
    repl_batch_begin(batch);
}

static bool peer_replicates(table *t, const char *peer)
{
    pthread_mutex_lock(&t->settings_mu);
    bool yes = table_settings_replica(&t->settings, peer) != NULL;
    pthread_mutex_unlock(&t->settings_mu);
    return yes;
}

/* Streams table uid's current contents (items and tombstones, with their
 * versions) to the peer, framed by BACKFILL_BEGIN/END. */
static int run_backfill(sender_conn *c, const uint8_t *uid, uint64_t marker_gen, err *e)
{
    repl *r = c->l->r;
    table *t = catalog_get_uid(r->d->cat, uid);
    if (!t || !peer_replicates(t, c->l->name)) {
        /* The table or the replica is gone: nothing to send, forget the marker. */
        if (t) table_release(t);
        buf k;
        buf_init(&k);
        repl_backfill_marker(&k, c->l->name, uid);
        store_batch *b = store_batch_new(r->d->st);
        store_batch_delete(b, STORE_CF_META, k.data, k.len);
        int rc = store_write(r->d->st, b, e);
        store_batch_free(b);
        buf_free(&k);
        return rc;
    }
    log_info("back-filling table %s to %s", t->name, c->l->name);
    atomic_store(&c->l->bf_sent, 0);
    atomic_store(&c->l->bf_total, (uint64_t)atomic_load(&t->item_count));
    table_settings s;
    pthread_mutex_lock(&t->settings_mu);
    s = t->settings;
    pthread_mutex_unlock(&t->settings_mu);
    char *json = catalog_descriptor_json(t, &s);

    int rc = -1;
    buf frame, ent;
    buf_init(&frame);
    buf_init(&ent);
    frame_start(&frame);
    uint32_t count = 0;
    repl_entry en;
    memset(&en, 0, sizeof(en));
    en.kind = REPL_BACKFILL_BEGIN;
    memcpy(en.table_uid, uid, TABLE_UID_LEN);
    en.ts = s.version;
    en.origin = r->region;
    en.prev_origin = "";
    en.pk = (const uint8_t *)"";
    en.data = (const uint8_t *)json;
    en.data_len = strlen(json);
    repl_entry_encode(&ent, &en);
    repl_batch_add(&frame, c->pos, ent.data, ent.len);
    count++;

    uint8_t lo[8], hi[8];
    store_u64be(lo, t->id);
    store_u64be(hi, t->id + 1);
    store_iter *it = store_iter_new(r->d->st, STORE_CF_ITEMS, lo, 8, hi, 8);
    arena a;
    arena_init(&a);
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        if (!atomic_load(&r->running)) {
            err_set(e, ERR_UNAVAILABLE, "stopping");
            goto out;
        }
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        arena_free(&a);
        arena_init(&a);
        if (db_backfill_entry(t, k, kl, v, vl, &a, &en) < 0) continue; /* never stream garbage */
        buf_reset(&ent);
        repl_entry_encode(&ent, &en);
        repl_batch_add(&frame, c->pos, ent.data, ent.len);
        count++;
        atomic_fetch_add(&c->l->bf_sent, 1);
        if (count >= SEND_BATCH_ENTRIES || frame.len >= SEND_BATCH_BYTES) {
            repl_batch_finish(&frame, count);
            if (send_batch(c, &frame, c->pos, false, NULL, 0, e) < 0) goto out;
            frame_start(&frame);
            count = 0;
        }
    }
    if (store_iter_status(it, e) < 0) goto out;
    memset(&en, 0, sizeof(en));
    en.kind = REPL_BACKFILL_END;
    memcpy(en.table_uid, uid, TABLE_UID_LEN);
    en.origin = r->region;
    en.prev_origin = "";
    en.pk = (const uint8_t *)"";
    buf_reset(&ent);
    repl_entry_encode(&ent, &en);
    repl_batch_add(&frame, c->pos, ent.data, ent.len);
    count++;
    repl_batch_finish(&frame, count);
    if (send_batch(c, &frame, c->pos, true, uid, marker_gen, e) < 0) goto out;
    c->bf_inflight = true;
    rc = 0;
out:
    arena_free(&a);
    store_iter_free(it);
    buf_free(&frame);
    buf_free(&ent);
    free(json);
    table_release(t);
    return rc;
}

/* A back-fill into a new replica must hold every delete that some region may
 * have collected without knowing of that replica: this region must hold every
 * write, from each other replica, stamped up to the replica's addition minus
 * the tombstone grace period (docs/REPLICATION.md, "Tombstone collection").
 * Until then it waits (the log keeps streaming meanwhile). */
static bool backfill_ready(sender_conn *c, const uint8_t *uid)
{
    repl *r = c->l->r;
    table *t = catalog_get_uid(r->d->cat, uid);
    if (!t) return true; /* run_backfill forgets the marker */
    table_settings s;
    pthread_mutex_lock(&t->settings_mu);
    s = t->settings;
    pthread_mutex_unlock(&t->settings_mu);
    const table_replica *target = table_settings_replica(&s, c->l->name);
    uint64_t grace = r->grace_ms << HLC_LOGICAL_BITS;
    uint64_t need = target && target->version > grace ? target->version - grace : 0;
    const char *missing = NULL;
    for (size_t i = 0; i < s.n_replicas && !missing; i++) {
        const table_replica *q = &s.replicas[i];
        if (q->removed || strcmp(q->region, r->region) == 0 || strcmp(q->region, c->l->name) == 0)
            continue;
        source_state *src = source_of(r, q->region);
        if (src && atomic_load(&src->claim_ts) < need) missing = src->name;
    }
    if (missing && memcmp(c->deferred_uid, uid, TABLE_UID_LEN) != 0) {
        memcpy(c->deferred_uid, uid, TABLE_UID_LEN);
        log_warn("back-fill of table %s to %s waits until this region has caught up with %s",
                 t->name, c->l->name, missing);
    }
    table_release(t);
    return missing == NULL;
}

/* Back-fills owed to this peer, oldest marker first. */
static int pending_backfill(repl *r, const char *peer, uint8_t *uid, uint64_t *gen)
{
    buf lo, hi;
    buf_init(&lo);
    buf_init(&hi);
    buf_puts(&lo, BACKFILL_PREFIX);
    buf_puts(&lo, peer);
    buf_putc(&lo, '/');
    buf_append(&hi, lo.data, lo.len - 1);
    buf_putc(&hi, '/' + 1);
    store_iter *it = store_iter_new(r->d->st, STORE_CF_META, lo.data, lo.len, hi.data, hi.len);
    store_iter_first(it);
    int found = 0;
    if (store_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = store_iter_key(it, &kl);
        size_t vl;
        const uint8_t *val = store_iter_value(it, &vl);
        *gen = vl == 8 ? load_u64be(val) : 0;
        if (kl == lo.len + 2 * TABLE_UID_LEN) {
            found = 1;
            for (size_t i = 0; i < TABLE_UID_LEN; i++) {
                unsigned v;
                char h[3] = {(char)k[lo.len + 2 * i], (char)k[lo.len + 2 * i + 1], 0};
                if (sscanf(h, "%2x", &v) != 1) found = 0;
                uid[i] = (uint8_t)v;
            }
        }
    }
    store_iter_free(it);
    buf_free(&lo);
    buf_free(&hi);
    return found;
}

/* Sends log entries after c->pos up to the watermark (one batch). */
static int send_log(sender_conn *c, uint64_t stable, err *e)
{
    repl *r = c->l->r;
    uint8_t lo[8], hi[8];
    store_u64be(lo, c->scanned + 1);
    store_u64be(hi, stable + 1);
    store_iter *it = store_iter_new(r->d->st, STORE_CF_RLOG, lo, 8, hi, 8);
    bool full = false;
    buf frame;
    buf_init(&frame);
    frame_start(&frame);
    uint32_t count = 0;
    bool failed = false; /* a read needed to decide failed: the batch is not sent */
    uint64_t through = c->pos;
    arena a;
    arena_init(&a);
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        if (kl != 8) continue;
        uint64_t seq = load_u64be(k);
        repl_entry en;
        err de;
        bool send = false;
        if (repl_entry_decode(&a, v, vl, &en, &de) == 0) {
            if (en.kind == REPL_TABLE) {
                send = true; /* every region learns every descriptor change */
            } else {
                table *t = catalog_get_uid(r->d->cat, en.table_uid);
                if (t) {
                    send = peer_replicates(t, c->l->name);
                    table_release(t);
                } else if (en.origin && strcmp(en.origin, r->region) == 0) {
                    /* Written here before this region's replica departed. */
                    if (!c->departed_known ||
                        memcmp(c->departed_uid, en.table_uid, TABLE_UID_LEN) != 0) {
                        c->departed_known = false;
                        if (departed_peer_replicates(r, en.table_uid, c->l->name, &c->departed_send,
                                                     e) < 0) {
                            failed = true;
                            break;
                        }
                        memcpy(c->departed_uid, en.table_uid, TABLE_UID_LEN);
                        c->departed_known = true;
                    }
                    send = c->departed_send;
                }
            }
        } else {
            log_error("skipping undecodable replication log entry %llu: %s",
                      (unsigned long long)seq, de.msg);
        }
        if (send) {
            repl_batch_add(&frame, seq, v, vl);
            count++;
        }
        through = seq;
        if (count >= SEND_BATCH_ENTRIES || frame.len >= SEND_BATCH_BYTES) {
            full = true;
            break;
        }
    }
    arena_free(&a);
    int rc = failed ? -1 : store_iter_status(it, e);
    store_iter_free(it);
    /* `through` is the newest entry that exists: a peer never acknowledges a
     * position inside a trailing hole (a failed write), so the seqs of that
     * hole can be reused after a restart without the peer skipping them. */
    if (rc == 0 && (count > 0 || through > c->pos)) {
        repl_batch_finish(&frame, count);
        rc = send_batch(c, &frame, through, false, NULL, 0, e);
        if (rc == 0) {
            c->pos = through;
            atomic_store(&c->l->sent, through);
        }
    }
    if (rc == 0) c->scanned = full ? through : stable;
    buf_free(&frame);
    return rc;
}

/* Owes the peer a back-fill of every table it replicates (markers in meta,
 * one atomic batch): after that, whatever the peer missed from the log is
 * carried by snapshots. Returns the number of tables, or -1. */
static int reseed_all(sender_conn *c, err *e)
{
    repl *r = c->l->r;
    table **ts;
    size_t nt = catalog_all(r->d->cat, &ts);
    store_batch *b = store_batch_new(r->d->st);
    int n = 0;
    for (size_t i = 0; i < nt; i++) {
        if (!peer_replicates(ts[i], c->l->name)) continue;
        buf k;
        buf_init(&k);
        repl_backfill_marker(&k, c->l->name, ts[i]->uid);
        uint8_t gen[8];
        store_u64be(gen, hlc_now(&r->d->clock));
        store_batch_put(b, STORE_CF_META, k.data, k.len, gen, 8);
        buf_free(&k);
        n++;
    }
    catalog_release_all(ts, nt);
    int rc = store_write(r->d->st, b, e);
    store_batch_free(b);
    if (rc < 0) return -1;
    atomic_fetch_add(&r->kick_gen, 1);
    return n;
}

/* If the peer needs entries that are no longer in the log (trimmed through
 * out of retention, or its data was lost), every table it replicates is
 * back-filled again and streaming resumes above the trimmed part: nothing
 * is skipped. */
static int reseed_if_needed(sender_conn *c, err *e)
{
    repl *r = c->l->r;
    uint64_t trimmed = db_log_trimmed(r->d);
    if (c->pos >= trimmed) return 0;
    int n = reseed_all(c, e);
    if (n < 0) return -1;
    log_warn("peer %s needs log entries from %llu, but the log was trimmed through %llu: "
             "re-seeding %d tables from snapshots",
             c->l->name, (unsigned long long)(c->pos + 1), (unsigned long long)trimmed, n);
    atomic_fetch_add(&c->l->reseeds, 1);
    c->pos = trimmed;
    if (c->scanned < c->pos) c->scanned = c->pos;
    return 0;
}

/* The peer says it has applied this region's log through a position this
 * log never reached: it recorded seqs that this region has since lost (a
 * restored or replaced data directory) or reused. Never skip: the log jumps
 * past that position (durably), so that every later entry reaches the peer,
 * and every table the peer replicates is back-filled, which carries whatever
 * the peer believes it has but may not. */
static int repair_position_ahead(sender_conn *c, uint64_t peer_pos, err *e)
{
    repl *r = c->l->r;
    uint64_t high = rlog_high(&r->d->log);
    if (peer_pos <= high) return 0;
    atomic_fetch_add(&c->l->positions_ahead, 1);
    log_error("peer %s reports this region's log applied through %llu, beyond its end (%llu): "
              "inconsistent; moving the log past it and re-seeding the peer from snapshots",
              c->l->name, (unsigned long long)peer_pos, (unsigned long long)high);
    if (db_log_skip_past(r->d, peer_pos, e) < 0) return -1;
    int n = reseed_all(c, e);
    if (n < 0) return -1;
    atomic_fetch_add(&c->l->reseeds, 1);
    return 0;
}

static int stream(sender_conn *c, err *e)
{
    repl *r = c->l->r;
    if (repair_position_ahead(c, c->pos, e) < 0 || reseed_if_needed(c, e) < 0) return -1;
    uint64_t seen_kick = (uint64_t)-1, last_bf_check = 0;
    while (atomic_load(&r->running)) {
        /* Collect acknowledgements that have arrived. */
        while (c->qn > 0) {
            int rc = read_ack(c, 0, e);
            if (rc < 0) return -1;
            if (rc == 1) break;
        }
        uint64_t kick = atomic_load(&r->kick_gen);
        if (kick != seen_kick || hlc_mono_ms() - last_bf_check > 2000) {
            seen_kick = kick;
            last_bf_check = hlc_mono_ms();
            uint8_t uid[TABLE_UID_LEN];
            uint64_t gen = 0;
            if (!c->bf_inflight && pending_backfill(r, c->l->name, uid, &gen) &&
                backfill_ready(c, uid)) {
                if (run_backfill(c, uid, gen, e) < 0) return -1;
                seen_kick = (uint64_t)-1; /* look for the next one at once */
                continue;
            }
        }
        /* Entries this peer still needs were collected (retention) while the
         * link stayed up: re-seed, exactly as at connection start. */
        if (reseed_if_needed(c, e) < 0) return -1;
        /* Heartbeat: this region's safe point and applied frontier, taken
         * now, sent once the log through the safe point's watermark is out
         * (the frontier is taken before any later back-fill's snapshot). */
        if (!c->hb_pending && hlc_mono_ms() - c->last_hb >= HEARTBEAT_MS) {
            err se;
            if (db_safe_point(r->d, &c->hb_seq, &c->hb_ts, &se) < 0) {
                log_warn("no safe point for a heartbeat: %s", se.msg);
                c->hb_ts = 0; /* claims nothing; still keeps the link alive */
            }
            c->hb_frontier = applied_frontier(r);
            c->hb_pending = true;
        }
        if (c->hb_pending && c->scanned >= c->hb_seq) {
            buf hb;
            buf_init(&hb);
            repl_put_u64(&hb, c->pos);
            repl_put_u64(&hb, c->hb_ts);
            repl_put_u64(&hb, c->hb_frontier);
            int rc = repl_frame_send(c->fd, REPL_F_HEARTBEAT, hb.data, hb.len, IO_TIMEOUT_MS, e);
            buf_free(&hb);
            if (rc < 0) return -1;
            c->hb_pending = false;
            c->last_hb = c->last_send = hlc_mono_ms();
        }
        uint64_t stable = rlog_stable(&r->d->log);
        if (stable > c->scanned) {
            if (send_log(c, stable, e) < 0) return -1;
            continue;
        }
        if (c->qn > 0) {
            if (read_ack(c, 20, e) < 0) return -1;
        } else {
            rlog_wait(&r->d->log, c->scanned, 50);
        }
    }
    return 0;
}

static void *sender_main(void *arg)
{
    peer_link *l = arg;
    repl *r = l->r;
    unsigned backoff = 100;
    while (atomic_load(&r->running)) {
        err e;
        err_clear(&e);
        int fd = connect_to(l->host, l->port, 2000, &e);
        if (fd >= 0) {
            atomic_store(&l->fd, fd);
            char peer_region[REPL_REGION_MAX + 1];
            uint64_t from = 0;
            if (repl_handshake_client(fd, r->key, r->key_len, r->region, peer_region, &from,
                                      IO_TIMEOUT_MS, &e) == 0) {
                if (strcmp(peer_region, l->name) != 0) {
                    log_error("peer at %s:%d says it is region %s, not %s", l->host, l->port,
                              peer_region, l->name);
                } else {
                    log_info("replication link to %s up (from position %llu)", l->name,
                             (unsigned long long)from);
                    uint64_t up_since = hlc_mono_ms();
                    atomic_store(&l->up, 1);
                    sender_conn c = {.l = l, .fd = fd, .pos = from ? from - 1 : 0};
                    c.scanned = c.pos;
                    c.last_send = hlc_mono_ms();
                    atomic_store(&l->acked, c.pos);
                    atomic_store(&l->acked_known, 1);
                    if (stream(&c, &e) < 0 && atomic_load(&r->running))
                        log_warn("replication link to %s down: %s", l->name, e.msg);
                    /* Back off afresh only after a link that worked for a while:
                     * one that fails at once (say, a batch the peer cannot
                     * apply) is retried ever more slowly. */
                    if (hlc_mono_ms() - up_since > 10000) backoff = 100;
                    atomic_store(&l->up, 0);
                }
            } else if (atomic_load(&r->running)) {
                log_warn("replication handshake with %s at %s:%d failed: %s", l->name, l->host,
                         l->port, e.msg);
            }
            atomic_store(&l->fd, -1);
            close(fd);
            atomic_fetch_add(&l->reconnects, 1);
        } else {
            log_debug("cannot reach peer %s: %s", l->name, e.msg);
        }
        for (unsigned waited = 0; waited < backoff && atomic_load(&r->running); waited += 50)
            sleep_ms(50);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

/* ---------------------------------------------------------------- receiver */

/* The handshake hooks' context: one inbound connection. */
typedef struct hs_ctx {
    repl *r;
    bool region_refused; /* the peer proved the key but is not a configured peer */
} hs_ctx;

static bool hook_accept(void *ctx, const char *region)
{
    hs_ctx *h = ctx;
    h->region_refused = !repl_is_peer(h->r, region);
    return !h->region_refused;
}

static uint64_t hook_position(void *ctx, const char *region)
{
    repl *r = ((hs_ctx *)ctx)->r;
    uint64_t pos = 0;
    err e;
    if (db_applied_position(r->d, region, &pos, &e) < 0) pos = 0;
    return pos + 1;
}

static void observe_latency(source_state *s, uint64_t commit_ms)
{
    uint64_t now = now_ms();
    double sec = now > commit_ms ? (double)(now - commit_ms) / 1000.0 : 0;
    size_t b = 0;
    while (b < N_LAT && sec > lat_le[b])
        b++;
    atomic_fetch_add(&s->lat_bucket[b], 1);
    atomic_fetch_add(&s->lat_sum_us, (uint64_t)(sec * 1e6));
    atomic_store(&s->last_commit_ms, commit_ms);
}

/* Raises *a to v; true if it rose. */
static bool atomic_raise(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load(a);
    while (cur < v)
        if (atomic_compare_exchange_weak(a, &cur, v)) return true;
    return false;
}

static void claim_key(buf *k, const char *source)
{
    buf_puts(k, CLAIM_KEY_PREFIX);
    buf_puts(k, source);
}

/* HEARTBEAT{position, safe_ts, frontier}: once everything up to position is
 * applied here, every write of the source stamped <= safe_ts is here. The
 * claim is persisted (it stays true: applied writes are durable) so that a
 * restart does not hold up back-fills until the source's next heartbeat. */
static void note_heartbeat(repl *r, source_state *src, uint64_t gen, const uint8_t *p, size_t len)
{
    if (len != 24) return; /* an older peer's heartbeat carries no claim */
    uint64_t pos = load_u64be(p), ts = load_u64be(p + 8), frontier = load_u64be(p + 16);
    pthread_mutex_lock(&src->apply_mu);
    uint64_t applied = 0;
    err e;
    bool ok = src->conn_gen == gen && db_applied_position(r->d, src->name, &applied, &e) == 0 &&
              applied >= pos;
    if (ok && atomic_raise(&src->claim_ts, ts)) {
        buf k;
        buf_init(&k);
        claim_key(&k, src->name);
        uint8_t v[8];
        store_u64be(v, ts);
        store_batch *b = store_batch_new(r->d->st);
        store_batch_put(b, STORE_CF_META, k.data, k.len, v, 8);
        if (store_write(r->d->st, b, &e) < 0) log_warn("cannot record claim: %s", e.msg);
        store_batch_free(b);
        buf_free(&k);
    }
    if (ok) atomic_raise(&src->frontier, frontier);
    pthread_mutex_unlock(&src->apply_mu);
}

/* Every write stamped at or below the returned timestamp, from any region, is
 * applied here (0 while some peer has never sent a claim). */
static uint64_t applied_frontier(repl *r)
{
    uint64_t seq, f;
    err e;
    if (db_safe_point(r->d, &seq, &f, &e) < 0) return 0;
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t c = atomic_load(&r->sources[i].claim_ts);
        if (c < f) f = c;
    }
    return f;
}

/* Applies one BATCH frame from source in order; 0 or -1. */
static int apply_batch(repl *r, source_state *src, uint64_t gen, const uint8_t *p, size_t len,
                       uint64_t *through, err *e)
{
    if (len < 8) return err_set(e, ERR_VALIDATION, "short batch");
    *through = load_u64be(p);
    arena a;
    arena_init(&a);
    repl_batch_item *items;
    size_t n;
    int rc = -1;
    if (repl_batch_parse(&a, p + 8, len - 8, &items, &n, e) < 0) goto out;
    pthread_mutex_lock(&src->apply_mu);
    /* A newer connection from the source replaced this one: what is still
     * buffered here is resent there (and a heartbeat read there must not be
     * overtaken by an older batch applied here). */
    if (src->conn_gen != gen) {
        pthread_mutex_unlock(&src->apply_mu);
        err_set(e, ERR_UNAVAILABLE, "replaced by a newer connection");
        goto out;
    }
    /* Entries at or below the recorded position were applied before (a batch
     * re-sent after a reconnect): skip them, so they are not counted again as
     * conflicts. Back-fill entries carry no position of their own. */
    uint64_t applied = 0;
    if (db_applied_position(r->d, src->name, &applied, e) < 0) {
        pthread_mutex_unlock(&src->apply_mu);
        goto out;
    }
    repl_entry *ents = arena_calloc(&a, n ? n : 1, sizeof(repl_entry));
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (repl_entry_decode(&a, items[i].entry, items[i].len, &ents[kept], e) < 0) {
            pthread_mutex_unlock(&src->apply_mu);
            goto out;
        }
        repl_kind k = ents[kept].kind;
        bool positioned = k == REPL_PUT || k == REPL_TOMBSTONE || k == REPL_TABLE;
        if (positioned && items[i].seq <= applied) continue;
        /* A descriptor that does not parse fails the batch before any of it
         * is applied (as an undecodable entry does). */
        if (k == REPL_TABLE || k == REPL_BACKFILL_BEGIN) {
            table tmpl;
            if (catalog_parse_descriptor((const char *)ents[kept].data, ents[kept].data_len,
                                         &tmpl) < 0) {
                pthread_mutex_unlock(&src->apply_mu);
                err_set(e, ERR_VALIDATION, "malformed table descriptor in entry %llu",
                        (unsigned long long)items[i].seq);
                goto out;
            }
            catalog_free_template(&tmpl);
        }
        kept++;
    }
    n = kept;
    size_t run = 0; /* start of the current run of item entries */
    for (size_t i = 0; i <= n; i++) {
        bool item = i < n && (ents[i].kind == REPL_PUT || ents[i].kind == REPL_TOMBSTONE ||
                              ents[i].kind == REPL_BACKFILL_ITEM);
        if (item) continue;
        /* Apply the run of items before this control entry (or the end). The
         * position is recorded with the last run, atomically with it. */
        if (i > run || i == n) {
            if (db_apply(r->d, src->name, ents + run, i - run, i == n ? *through : 0, NULL, e) <
                0) {
                pthread_mutex_unlock(&src->apply_mu);
                goto out;
            }
        }
        if (i < n) {
            int crc = 0;
            if (ents[i].kind == REPL_TABLE || ents[i].kind == REPL_BACKFILL_BEGIN)
                crc = repl_apply_descriptor(r, src->name, ents[i].data, ents[i].data_len, e);
            else if (ents[i].kind == REPL_BACKFILL_END)
                crc = repl_backfill_finished(r, ents[i].table_uid, e);
            if (crc < 0) {
                pthread_mutex_unlock(&src->apply_mu);
                goto out;
            }
        }
        run = i + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (ents[i].kind == REPL_PUT || ents[i].kind == REPL_TOMBSTONE)
            observe_latency(src, ents[i].commit_ms);
    atomic_fetch_add(&src->applied_entries, n);
    atomic_store(&src->last_apply_ms, now_ms());
    pthread_mutex_unlock(&src->apply_mu);
    rc = 0;
out:
    arena_free(&a);
    return rc;
}

/* Counts a refused (or, after the handshake, closed) inbound connection and
 * says so: a warning at most once a second per reason, debug otherwise. */
static void note_refused(repl *r, refuse_reason why, const char *addr, const char *peer,
                         const char *msg)
{
    atomic_fetch_add(&r->refused[why], 1);
    bool warn = log_every(&r->refused_logged_ms[why], REFUSED_LOG_MS);
    log_write(warn ? LOG_WARN : LOG_DEBUG, NULL, "%s replication connection from %s%s%s (%s): %s",
              peer ? "closing the" : "refused a", peer ? peer : "", peer ? " at " : "", addr,
              refuse_names[why], msg);
}

static void conn_lock(repl *r)
{
    pthread_mutex_lock(&r->conn_mu);
    r->conn_mu_owner = pthread_self();
    r->conn_mu_held = true;
}

static void conn_unlock(repl *r)
{
    r->conn_mu_held = false;
    pthread_mutex_unlock(&r->conn_mu);
}

/* conn_mu is held by the calling thread. (Only the holder reads these
 * fields; a thread that does not hold it fails, whatever it reads.) */
static void assert_conn_locked(const repl *r)
{
    assert(r->conn_mu_held && pthread_equal(r->conn_mu_owner, pthread_self()));
    (void)r;
}

/* The pools' invariants (debug builds; conn_mu held). */
static void conns_check(repl *r)
{
#ifndef NDEBUG
    assert_conn_locked(r);
    size_t preauth = 0;
    for (conn *c = r->conns; c; c = c->next) {
        if (c->state == CONN_PREAUTH) {
            preauth++;
            assert(c->fd >= 0);
        }
        if (c->state == CONN_PEER) assert(c->src && c->src->link == c && c->fd >= 0);
        if (c->state == CONN_DONE) assert(c->fd < 0);
    }
    assert(preauth == r->n_preauth && preauth <= PREAUTH_MAX);
    for (size_t i = 0; i < r->n_peers; i++) {
        conn *l = r->sources[i].link;
        assert(!l || (l->state == CONN_PEER && l->src == &r->sources[i]));
    }
#else
    (void)r;
#endif
}

/* The handshake of cn proved the cluster key and a configured region: cn
 * leaves the pre-authentication pool and becomes src's link, replacing (and
 * shutting down) the older one, whose sender has given up on it. False if cn
 * was evicted meanwhile (its socket is shut down: the peer reconnects). */
static bool conn_authenticated(repl *r, conn *cn, source_state *src)
{
    conn_lock(r);
    bool ok = cn->state == CONN_PREAUTH;
    if (ok) {
        assert(r->n_preauth > 0);
        r->n_preauth--;
        conn *old = src->link;
        if (old) {
            assert(old != cn && old->state == CONN_PEER && old->fd >= 0);
            old->state = CONN_CLOSING;
            shutdown(old->fd, SHUT_RDWR);
        }
        src->link = cn;
        cn->src = src;
        cn->state = CONN_PEER;
    } else {
        assert(cn->state == CONN_CLOSING);
    }
    conns_check(r);
    conn_unlock(r);
    return ok;
}

/* Was cn evicted from the pool or replaced by a newer link? */
static bool conn_closing(repl *r, conn *cn)
{
    conn_lock(r);
    bool closing = cn->state == CONN_CLOSING;
    conn_unlock(r);
    return closing;
}

/* The end of cn's thread: it leaves its pool and closes its socket. */
static void conn_finish(repl *r, conn *cn)
{
    conn_lock(r);
    assert(cn->state != CONN_DONE && cn->fd >= 0);
    if (cn->state == CONN_PREAUTH) {
        assert(r->n_preauth > 0);
        r->n_preauth--;
    } else if (cn->state == CONN_PEER) {
        assert(cn->src->link == cn);
        cn->src->link = NULL;
    }
    int fd = cn->fd;
    cn->fd = -1;
    cn->state = CONN_DONE;
    conns_check(r);
    conn_unlock(r);
    close(fd);
}

static void *receiver_main(void *arg)
{
    conn *cn = arg;
    repl *r = cn->r;
    err e;
    err_clear(&e);
    char peer[REPL_REGION_MAX + 1];
    hs_ctx hc = {.r = r};
    repl_server_hooks hooks = {
        .ctx = &hc, .accept_region = hook_accept, .position_for = hook_position};
    /* The whole handshake, counted from accept: a peer proves the key in two
     * round trips, so a connection that has not by then is not one. */
    uint64_t deadline = cn->accepted_ms + PREAUTH_TIMEOUT_MS, now = hlc_mono_ms();
    int left = now < deadline ? (int)(deadline - now) : 1;
    if (repl_handshake_server(cn->fd, r->key, r->key_len, r->region, &hooks, peer, left, &e) < 0) {
        /* An evicted connection was counted by the one that evicted it. */
        if (!atomic_load(&r->running) || conn_closing(r, cn)) goto done;
        refuse_reason why = hc.region_refused             ? REFUSE_UNKNOWN_REGION
                            : e.code == ERR_ACCESS_DENIED ? REFUSE_AUTH
                            : e.code == ERR_UNAVAILABLE   ? REFUSE_INCOMPLETE
                                                          : REFUSE_PROTOCOL;
        if (why == REFUSE_INCOMPLETE && hlc_mono_ms() >= deadline) {
            why = REFUSE_HANDSHAKE_TIMEOUT;
            char msg[sizeof(e.msg) + 64];
            snprintf(msg, sizeof(msg), "not authenticated within %d ms of accept (%s)",
                     PREAUTH_TIMEOUT_MS, e.msg);
            note_refused(r, why, cn->addr, NULL, msg);
        } else {
            note_refused(r, why, cn->addr, NULL, e.msg);
        }
        goto done;
    }
    source_state *src = source_of(r, peer);
    if (!src || !conn_authenticated(r, cn, src)) goto done;
    pthread_mutex_lock(&src->apply_mu);
    uint64_t gen = ++src->conn_gen;
    pthread_mutex_unlock(&src->apply_mu);
    log_info("receiving replication from %s", peer);
    buf payload;
    buf_init(&payload);
    uint64_t last_frame = hlc_mono_ms();
    bool failed = false, logged = false; /* why the loop ended, if not a stop */
    while (atomic_load(&r->running)) {
        repl_frame_type type;
        struct pollfd p = {.fd = cn->fd, .events = POLLIN};
        int pr = poll(&p, 1, 500);
        if (pr == 0) {
            if (hlc_mono_ms() - last_frame > RECV_IDLE_LIMIT_MS) {
                log_warn("replication from %s silent for %d s: closing", peer,
                         RECV_IDLE_LIMIT_MS / 1000);
                break;
            }
            continue;
        }
        if (repl_frame_recv(cn->fd, &type, &payload, IO_TIMEOUT_MS, &e) < 0) {
            failed = true;
            break;
        }
        last_frame = hlc_mono_ms();
        if (type == REPL_F_HEARTBEAT) {
            note_heartbeat(r, src, gen, payload.data, payload.len);
            continue;
        }
        if (type == REPL_F_ERROR) {
            char reason[128];
            size_t n = 0;
            for (size_t i = 0; i < payload.len && n + 1 < sizeof(reason); i++)
                reason[n++] =
                    payload.data[i] >= 0x20 && payload.data[i] < 0x7f ? (char)payload.data[i] : '?';
            reason[n] = '\0';
            log_warn("replication from %s ended: the peer reported an error: %s", peer, reason);
            break;
        }
        if (type != REPL_F_BATCH) {
            err_set(&e, ERR_VALIDATION, "unexpected frame type %d", (int)type);
            failed = true;
            break;
        }
        uint64_t through = 0;
        if (apply_batch(r, src, gen, payload.data, payload.len, &through, &e) < 0) {
            /* A malformed batch is reported (and counted) below. A batch
             * that cannot be stored (a full disk) fails again at each of
             * the sender's retries: an error line every 10 s at most. */
            if (e.code != ERR_VALIDATION)
                log_write(log_every(&r->apply_err_logged_ms, APPLY_ERR_LOG_MS) ? LOG_ERROR
                                                                               : LOG_DEBUG,
                          NULL, "applying replication from %s failed: %s", peer, e.msg);
            failed = logged = true;
            err se;
            const char *msg = "apply failed";
            repl_frame_send(cn->fd, REPL_F_ERROR, msg, strlen(msg), 1000, &se);
            break;
        }
        buf ack;
        buf_init(&ack);
        repl_put_u64(&ack, through);
        int rc = repl_frame_send(cn->fd, REPL_F_ACK, ack.data, ack.len, IO_TIMEOUT_MS, &e);
        buf_free(&ack);
        if (rc < 0) {
            failed = true;
            break;
        }
    }
    buf_free(&payload);
    /* A malformed or unexpected frame is a protocol violation (counted); a
     * connection that broke or closed is not (peers restart, links fail). */
    if (failed && atomic_load(&r->running)) {
        if (e.code == ERR_VALIDATION)
            note_refused(r, REFUSE_PROTOCOL, cn->addr, peer, e.msg);
        else if (conn_closing(r, cn))
            log_info("replication from %s at %s replaced by a newer connection", peer, cn->addr);
        else if (!logged)
            log_info("replication from %s at %s ended: %s", peer, cn->addr, e.msg);
    }
done:
    conn_finish(r, cn);
    return NULL;
}

/* Joins and frees the connections whose threads have ended; with `all`
 * (repl_stop, the accept thread has ended) shuts every other one down first
 * and waits for it. Only the thread calling this changes the list's links, so
 * it may walk the list with conn_mu released (threads take it to finish). */
static void reap_conns(repl *r, bool all)
{
    if (all) {
        conn_lock(r);
        for (conn *c = r->conns; c; c = c->next)
            if (c->state != CONN_DONE) shutdown(c->fd, SHUT_RDWR);
        conn_unlock(r);
        for (conn *c = r->conns; c; c = c->next)
            pthread_join(c->thread, NULL);
        conn_lock(r);
        while (r->conns) {
            conn *c = r->conns;
            assert(c->state == CONN_DONE);
            r->conns = c->next;
            free(c);
        }
        conns_check(r);
        conn_unlock(r);
        return;
    }
    conn *ended = NULL;
    conn_lock(r);
    for (conn **pp = &r->conns; *pp;) {
        conn *c = *pp;
        if (c->state == CONN_DONE) {
            *pp = c->next;
            c->next = ended;
            ended = c;
        } else {
            pp = &c->next;
        }
    }
    conn_unlock(r);
    while (ended) {
        conn *c = ended;
        ended = c->next;
        pthread_join(c->thread, NULL);
        free(c);
    }
}

/* Retention may not cut the writes of a departed table (this region's
 * replica is gone, so no back-fill from here can carry them) that a region
 * replicating it has not applied: returns the largest seq <= cut that keeps
 * them, and deletes the departed records every such region has fully
 * applied. Reads the departed records only (one per departed table). */
static uint64_t departed_hold(repl *r, uint64_t cut)
{
    const char *pre = DEPARTED_PREFIX;
    char hi[] = DEPARTED_PREFIX;
    hi[sizeof(hi) - 2]++;
    store_iter *it = store_iter_new(r->d->st, STORE_CF_META, pre, strlen(pre), hi, strlen(hi));
    store_batch *done = store_batch_new(r->d->st);
    uint64_t hold = cut;
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = store_iter_key(it, &kl);
        const uint8_t *v = store_iter_value(it, &vl);
        table tmpl;
        uint64_t through;
        if (departed_parse(r, v, vl, &tmpl, &through) < 0) {
            hold = 0; /* cannot tell who needs what: keep everything */
            continue;
        }
        bool pending = false;
        for (size_t i = 0; i < r->n_peers; i++) {
            if (!table_settings_replica(&tmpl.settings, r->links[i].name)) continue;
            uint64_t acked = atomic_load(&r->links[i].acked);
            if (!atomic_load(&r->links[i].acked_known)) acked = 0;
            if (acked < through) {
                pending = true;
                if (acked < hold) hold = acked;
            }
        }
        catalog_free_template(&tmpl);
        if (!pending) store_batch_delete(done, STORE_CF_META, k, kl);
    }
    err e;
    if (store_iter_status(it, &e) < 0) hold = 0;
    if (store_batch_count(done) > 0 && store_write(r->d->st, done, &e) < 0)
        log_warn("cannot delete departed-table records: %s", e.msg);
    store_batch_free(done);
    store_iter_free(it);
    return hold;
}

/* Deletes log entries every peer has applied, and entries out of retention
 * (a peer that has not applied those is re-seeded by back-fill when it
 * returns, see reseed_if_needed). Until each peer has told us its position
 * since this process started, only retention applies. The trim records its
 * mark in the same batch (db_log_trim), so the log never reuses a seq. */
static int collect_log(repl *r)
{
    if (r->n_peers == 0) return 0;
    uint64_t stable = rlog_stable(&r->d->log);
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < r->n_peers && min; i++) {
        if (!atomic_load(&r->links[i].acked_known)) min = 0;
        uint64_t a = atomic_load(&r->links[i].acked);
        if (a < min) min = a;
    }
    uint64_t cut = 0;
    err e;
    if (db_log_retention_cut(r->d, stable, r->retention_ms, r->retention_bytes, now_ms(), &cut,
                             &e) < 0) {
        if (log_every(&r->gc_err_logged_ms, GC_ERR_LOG_MS))
            log_warn("replication log retention: %s", e.msg);
        return -1;
    }
    uint64_t hold = departed_hold(r, cut); /* also forgets the records no longer needed */
    if (cut > min) {
        if (hold < cut) {
            if (log_every(&r->departed_logged_ms, GC_ERR_LOG_MS))
                log_warn("replication log retention held at %llu (not %llu): writes of a "
                         "departed table are not yet in every region that replicates it",
                         (unsigned long long)hold, (unsigned long long)cut);
            cut = hold > min ? hold : min;
        }
    }
    if (cut > min) {
        log_warn("replication log entries up to %llu are out of retention; peers that have not "
                 "applied them will be re-seeded from a snapshot",
                 (unsigned long long)cut);
        min = cut;
    }
    if (min > stable) min = stable; /* a peer's position is never past the watermark */
    if (min <= db_log_trimmed(r->d)) return 0;
    if (db_log_trim(r->d, min, &e) < 0) {
        if (log_every(&r->gc_err_logged_ms, GC_ERR_LOG_MS))
            log_warn("replication log collection failed: %s", e.msg);
        return -1;
    }
    return 0;
}

/* The tables with a back-fill still owed to some peer (markers in meta). */
typedef struct owed_set {
    uint8_t (*uids)[TABLE_UID_LEN];
    size_t n, cap;
} owed_set;

/* -1 if the markers cannot be read: then nothing may be collected (a table
 * missing from the set would look settled). */
static int load_owed(repl *r, owed_set *o, err *e)
{
    o->n = 0;
    const char *pre = BACKFILL_PREFIX;
    char hi[] = BACKFILL_PREFIX;
    hi[sizeof(hi) - 2]++; /* the prefix's successor: "backfill0" */
    store_iter *it = store_iter_new(r->d->st, STORE_CF_META, pre, strlen(pre), hi, strlen(hi));
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t kl;
        const char *k = (const char *)store_iter_key(it, &kl);
        if (kl < 2 * TABLE_UID_LEN) continue;
        uint8_t uid[TABLE_UID_LEN];
        bool ok = true;
        for (size_t i = 0; i < TABLE_UID_LEN && ok; i++) {
            unsigned v;
            char h[3] = {k[kl - 2 * TABLE_UID_LEN + 2 * i], k[kl - 2 * TABLE_UID_LEN + 2 * i + 1],
                         0};
            ok = sscanf(h, "%2x", &v) == 1;
            uid[i] = (uint8_t)v;
        }
        if (!ok) continue;
        if (o->n == o->cap) {
            o->cap = o->cap ? 2 * o->cap : 16;
            o->uids = realloc(o->uids, o->cap * sizeof(*o->uids));
            if (!o->uids) abort();
        }
        memcpy(o->uids[o->n++], uid, TABLE_UID_LEN);
    }
    int rc = store_iter_status(it, e);
    store_iter_free(it);
    return rc;
}

/* Tombstones of a table are collected only while its replica set is settled:
 * every replica ACTIVE (this one included) and no back-fill of it owed by
 * this region, so every copy a back-fill may still carry is newer than what
 * is collected (docs/REPLICATION.md). */
static bool table_collectable(void *ctx, table *t)
{
    owed_set *o = ctx;
    for (size_t i = 0; i < o->n; i++)
        if (memcmp(o->uids[i], t->uid, TABLE_UID_LEN) == 0) return false;
    pthread_mutex_lock(&t->settings_mu);
    bool ok = t->settings.n_replicas > 0;
    for (size_t i = 0; i < t->settings.n_replicas; i++) {
        const table_replica *q = &t->settings.replicas[i];
        if (!q->removed && q->status != REPLICA_ACTIVE) ok = false;
    }
    pthread_mutex_unlock(&t->settings_mu);
    return ok;
}

/* Computes the frontiers and collects the tombstones below the horizon: the
 * global frontier (every region has applied every write stamped up to it)
 * minus the grace period. */
static int collect_tombstones(repl *r, owed_set *o)
{
    uint64_t f = applied_frontier(r), g = f;
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t pf = atomic_load(&r->sources[i].frontier);
        if (pf < g) g = pf;
    }
    atomic_store(&r->applied_frontier, f);
    atomic_store(&r->global_frontier, g);
    uint64_t grace = r->grace_ms << HLC_LOGICAL_BITS;
    if (g <= grace) return 0;
    uint64_t n = 0;
    err e;
    if (load_owed(r, o, &e) < 0 || db_collect_tombstones(r->d, g - grace, table_collectable, o,
                                                         TOMB_SCAN_PER_TABLE, &n, &e) < 0) {
        if (log_every(&r->gc_err_logged_ms, GC_ERR_LOG_MS))
            log_warn("tombstone collection failed: %s", e.msg);
        return -1;
    }
    if (n) {
        atomic_fetch_add(&r->tombstones_collected, n);
        log_debug("collected %llu tombstones", (unsigned long long)n);
    }
    return 0;
}

/* The background thread: log collection and retention, tombstone
 * collection. It never blocks the peer listener, and a slow task only delays
 * the others (each task reads a bounded amount per run: segment records, one
 * seek per table, TOMB_SCAN_PER_TABLE entries per table). */
static void *gc_main(void *arg)
{
    repl *r = arg;
    uint64_t last[N_GC_TASKS];
    for (int t = 0; t < N_GC_TASKS; t++)
        last[t] = hlc_mono_ms();
    owed_set owed = {0};
    while (atomic_load(&r->running)) {
        for (int t = 0; t < N_GC_TASKS && atomic_load(&r->running); t++) {
            if (hlc_mono_ms() - last[t] < gc_task_period_ms[t]) continue;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int rc = t == GC_LOG ? collect_log(r) : collect_tombstones(r, &owed);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            uint64_t us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u +
                          (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000);
            gc_task *g = &r->gc[t];
            atomic_fetch_add(&g->runs, 1);
            if (rc < 0) atomic_fetch_add(&g->failures, 1);
            atomic_fetch_add(&g->busy_us, us);
            atomic_store(&g->last_us, us);
            atomic_store(&g->last_done_ms, now_ms());
            last[t] = hlc_mono_ms();
        }
        sleep_ms(100);
    }
    free(owed.uids);
    return NULL;
}

/* "host:port" of an accepted connection ("?" if unknown). */
static void format_addr(const struct sockaddr_storage *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, sa->ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

/* The source address a connection counts against for PREAUTH_PER_ADDR: IPv4
 * (also when IPv4-mapped) as ::ffff:a.b.c.d, IPv6 by its /64 (a host's share
 * of a network; anything finer costs an attacker nothing). */
static void host_key(const struct sockaddr_storage *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        memcpy(out, a->s6_addr, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
    }
}

static size_t preauth_from(repl *r, const uint8_t host[16])
{
    assert_conn_locked(r);
    size_t n = 0;
    for (conn *c = r->conns; c; c = c->next)
        if (c->state == CONN_PREAUTH && memcmp(c->host, host, 16) == 0) n++;
    return n;
}

/* The unauthenticated connection that makes room for a new one from `host`,
 * or NULL if there is room: the oldest from host if it has PREAUTH_PER_ADDR
 * already; else, with the pool full, the oldest of the address holding the
 * most. So a flood from some addresses only ever pushes out its own older
 * connections (and from the pool, those of addresses holding as many), while
 * a peer connecting from another address has its handshake's time. */
static conn *preauth_victim(repl *r, const uint8_t host[16], refuse_reason *why)
{
    assert_conn_locked(r);
    conn *victim = NULL;
    size_t most = 0;
    for (conn *c = r->conns; c; c = c->next)
        if (c->state == CONN_PREAUTH && memcmp(c->host, host, 16) == 0 &&
            (!victim || c->seq < victim->seq))
            victim = c;
    if (victim && preauth_from(r, host) >= PREAUTH_PER_ADDR) {
        *why = REFUSE_ADDRESS_LIMIT;
        return victim;
    }
    if (r->n_preauth < PREAUTH_MAX) return NULL;
    victim = NULL;
    for (conn *c = r->conns; c; c = c->next) {
        if (c->state != CONN_PREAUTH) continue;
        size_t n = preauth_from(r, c->host);
        if (n > most || (n == most && c->seq < victim->seq)) {
            most = n;
            victim = c;
        }
    }
    assert(victim);
    *why = REFUSE_PREAUTH_LIMIT;
    return victim;
}

/* Out of file descriptors (EMFILE/ENFILE): the pending connection would keep
 * the listening socket readable, and the loop spinning. Close the spare
 * descriptor to accept it, close it at once (counted, reason "limit"), take
 * the spare again; without a spare, pause accepting for a moment instead. */
static void refuse_no_descriptor(repl *r, int err_no)
{
    if (r->spare_fd >= 0) {
        close(r->spare_fd);
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        int fd = accept4(r->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
        int accept_errno = errno;
        if (fd >= 0) close(fd);
        r->spare_fd = fcntl(r->listen_fd, F_DUPFD_CLOEXEC, 0);
        if (fd >= 0) {
            char addr[INET6_ADDRSTRLEN + 8], msg[160];
            format_addr(&sa, addr, sizeof(addr));
            snprintf(msg, sizeof(msg), "out of file descriptors (%s): closed at once",
                     strerror(err_no));
            note_refused(r, REFUSE_LIMIT, addr, NULL, msg);
            return;
        }
        if (accept_errno == EAGAIN || accept_errno == EWOULDBLOCK) return; /* it went away */
    }
    if (log_every(&r->nofile_logged_ms, REFUSED_LOG_MS))
        log_warn("cannot accept replication connections: %s (pausing %d ms)", strerror(err_no),
                 ACCEPT_BACKOFF_MS);
    sleep_ms(ACCEPT_BACKOFF_MS);
}

/* Errors of accept() that concern one pending connection (now gone) or none. */
static bool accept_error_passes(int err_no)
{
    switch (err_no) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
        return true;
    default:
        return false;
    }
}

/* Accepts one pending connection into the pre-authentication pool (making
 * room by evicting another, preauth_victim) and starts its receiver thread. */
static void accept_conn(repl *r)
{
    if (r->spare_fd < 0) r->spare_fd = fcntl(r->listen_fd, F_DUPFD_CLOEXEC, 0);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    int fd = accept4(r->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
    if (fd < 0) {
        int err_no = errno;
        if (err_no == EMFILE || err_no == ENFILE) {
            refuse_no_descriptor(r, err_no);
        } else if (!accept_error_passes(err_no)) {
            if (log_every(&r->nofile_logged_ms, REFUSED_LOG_MS))
                log_warn("cannot accept replication connections: %s (pausing %d ms)",
                         strerror(err_no), ACCEPT_BACKOFF_MS);
            sleep_ms(ACCEPT_BACKOFF_MS);
        }
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn *cn = calloc(1, sizeof(*cn));
    if (!cn) abort();
    cn->r = r;
    cn->fd = fd;
    cn->state = CONN_PREAUTH;
    cn->seq = ++r->conn_seq;
    cn->accepted_ms = hlc_mono_ms();
    host_key(&sa, cn->host);
    format_addr(&sa, cn->addr, sizeof(cn->addr));

    refuse_reason why = REFUSE_PREAUTH_LIMIT;
    conn_lock(r);
    conn *victim = preauth_victim(r, cn->host, &why);
    if (victim) {
        assert(victim->fd >= 0);
        victim->state = CONN_CLOSING;
        r->n_preauth--;
        shutdown(victim->fd, SHUT_RDWR);
    }
    conns_check(r);
    conn_unlock(r);
    if (victim) {
        char msg[160];
        if (why == REFUSE_ADDRESS_LIMIT)
            snprintf(msg, sizeof(msg),
                     "%d unauthenticated connections from its address: the oldest makes room",
                     PREAUTH_PER_ADDR);
        else
            snprintf(msg, sizeof(msg),
                     "%d unauthenticated connections: the oldest of the busiest address makes room "
                     "for %s",
                     PREAUTH_MAX, cn->addr);
        note_refused(r, why, victim->addr, NULL, msg);
        /* Its socket is shut down: its handshake fails at once. Waiting for
         * it keeps the unauthenticated threads within PREAUTH_MAX. */
        pthread_join(victim->thread, NULL);
        conn_lock(r);
        assert(victim->state == CONN_DONE);
        for (conn **pp = &r->conns; *pp; pp = &(*pp)->next)
            if (*pp == victim) {
                *pp = victim->next;
                break;
            }
        conn_unlock(r);
        free(victim);
    }

    conn_lock(r);
    cn->next = r->conns;
    r->conns = cn;
    r->n_preauth++;
    int rc = pthread_create(&cn->thread, NULL, receiver_main, cn);
    if (rc != 0) {
        r->conns = cn->next; /* still first: only this thread links and unlinks */
        r->n_preauth--;
    }
    conns_check(r);
    conn_unlock(r);
    if (rc != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "cannot start a thread for it: %s", strerror(rc));
        note_refused(r, REFUSE_LIMIT, cn->addr, NULL, msg);
        close(fd);
        free(cn);
    }
}

static void *accept_main(void *arg)
{
    repl *r = arg;
    while (atomic_load(&r->running)) {
        struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
        int pr = poll(&p, 1, 200);
        reap_conns(r, false);
        if (pr > 0) accept_conn(r);
    }
    return NULL;
}

/* ------------------------------------------------------------ descriptors */

typedef struct merge_ctx {
    repl *r;
    const table_settings *incoming;
} merge_ctx;

/* Merges a received descriptor (table_settings_merge) and owes a back-fill
 * to every replica that is new to this region's view, whatever this region's
 * own status: a partial copy is harmless under last writer wins, and it
 * carries this region's own writes the new replica would otherwise miss. */
static int merge_settings(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    merge_ctx *m = ctx;
    table_settings old = *s;
    bool changed;
    if (table_settings_merge(s, m->incoming, &changed) < 0)
        return err_set(e, ERR_VALIDATION,
                       "table %s: the replica set received names more than %d regions", t->name,
                       TABLE_REPLICAS_MAX);
    if (!changed) return 0;
    for (size_t i = 0; i < s->n_replicas; i++) {
        const table_replica *rp = &s->replicas[i];
        if (rp->removed || strcmp(rp->region, m->r->region) == 0 ||
            table_settings_replica(&old, rp->region))
            continue;
        buf k;
        buf_init(&k);
        repl_backfill_marker(&k, rp->region, t->uid);
        uint8_t gen[8];
        store_u64be(gen, rp->version);
        store_batch_put(b, STORE_CF_META, k.data, k.len, gen, 8);
        buf_free(&k);
    }
    return 0;
}

/* This region's replica was removed elsewhere: drop the local table, and
 * keep sending the writes made here before to the remaining replicas. */
typedef struct depart_ctx {
    repl *r;
    table *expect; /* the incarnation to delete */
} depart_ctx;

static int prepare_depart(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    depart_ctx *x = ctx;
    if (t != x->expect)
        return err_set(e, ERR_RESOURCE_NOT_FOUND,
                       "Requested resource not found: Table: %s not found", t->name);
    /* No write of t is in flight (catalog_delete): all its log entries are
     * at or below the log's current high. */
    char *json = catalog_descriptor_json(t, s);
    repl_departed_record(b, t->uid, rlog_high(&x->r->d->log), json, strlen(json));
    free(json);
    return 0;
}

int repl_depart_table(repl *r, table *t, err *e)
{
    depart_ctx x = {.r = r, .expect = t};
    table *gone = NULL;
    int rc = catalog_delete(r->d->cat, t->account, t->name, true, prepare_depart, &x, &gone, e);
    if (rc == 0) table_release(gone);
    return rc;
}

static int depart(repl *r, table *t, const char *source, err *e)
{
    log_info("replica of table %s in this region removed (by %s)", t->name, source);
    int rc = repl_depart_table(r, t, e);
    if (rc < 0 && e->code == ERR_RESOURCE_NOT_FOUND) rc = 0;
    return rc;
}

int repl_apply_descriptor(repl *r, const char *source, const uint8_t *json, size_t len, err *e)
{
    table tmpl;
    if (catalog_parse_descriptor((const char *)json, len, &tmpl) < 0)
        return err_set(e, ERR_VALIDATION, "malformed table descriptor from %s", source);
    int rc = 0;
    /* Later descriptor changes made here must order after this one. */
    db_observe_remote(r->d, tmpl.settings.version, source);
    for (size_t i = 0; i < tmpl.settings.n_replicas; i++)
        db_observe_remote(r->d, tmpl.settings.replicas[i].version, source);
    table *local = catalog_get_uid(r->d->cat, tmpl.uid);
    if (!local) {
        if (table_settings_replica(&tmpl.settings, r->region)) {
            table *clash = catalog_get(r->d->cat, tmpl.account, tmpl.name);
            if (clash) {
                log_error("cannot create replica of table %s: a different table of that name "
                          "exists here",
                          tmpl.name);
                table_release(clash);
            } else {
                table *t = NULL;
                rc = catalog_create(r->d->cat, &tmpl, &t, e);
                if (rc == 0) {
                    log_info("created replica of table %s (from %s)", t->name, source);
                    table_release(t);
                } else if (e->code == ERR_RESOURCE_IN_USE) {
                    rc = 0;
                }
            }
        }
    } else {
        table_settings probe;
        pthread_mutex_lock(&local->settings_mu);
        probe = local->settings;
        pthread_mutex_unlock(&local->settings_mu);
        bool changed = false;
        if (table_settings_merge(&probe, &tmpl.settings, &changed) < 0) {
            rc = err_set(e, ERR_VALIDATION,
                         "table %s from %s: the replica set names more than %d regions (a "
                         "deployment has at most that many)",
                         local->name, source, TABLE_REPLICAS_MAX);
        } else if (changed) {
            merge_ctx m = {.r = r, .incoming = &tmpl.settings};
            rc = catalog_update_settings(r->d->cat, local, merge_settings, &m, e);
            if (rc == 0) repl_kick(r);
            if (rc < 0 && e->code == ERR_RESOURCE_NOT_FOUND) rc = 0;
        }
        if (rc == 0 && !table_settings_replica(&probe, r->region)) rc = depart(r, local, source, e);
    }
    if (local) table_release(local);
    catalog_free_template(&tmpl);
    return rc;
}

typedef struct activate_ctx {
    repl *r;
    uint64_t seq;
    bool logged;
} activate_ctx;

static int activate(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    activate_ctx *a = ctx;
    (void)e;
    /* Only this replica's status changes: the settings version is left alone,
     * so the activation cannot undo a settings change made elsewhere. */
    if (table_settings_activate(s, a->r->region)) {
        db_log_reserve(a->r->d, &a->seq, NULL, e); /* no version: cannot fail */
        a->logged = true;
        db_log_descriptor(a->r->d, t, s, a->seq, b);
    }
    return 0;
}

int repl_backfill_finished(repl *r, const uint8_t uid[TABLE_UID_LEN], err *e)
{
    table *t = catalog_get_uid(r->d->cat, uid);
    if (!t) return 0;
    activate_ctx a = {.r = r};
    int rc = catalog_update_settings(r->d->cat, t, activate, &a, e);
    if (a.logged) rlog_done(&r->d->log, a.seq);
    if (rc == 0 && a.logged) log_info("replica of table %s is ACTIVE", t->name);
    table_release(t);
    if (rc < 0 && e->code == ERR_RESOURCE_NOT_FOUND) rc = 0;
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static int listen_on(const char *host, int port, err *e)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return err_set(e, ERR_INTERNAL, "invalid peer-listen address %s", host);
    /* Non-blocking: accept_conn never waits for a connection that went away. */
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int err_no = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return err_set(e, ERR_INTERNAL, "cannot listen for peers on %s:%d: %s", host, port,
                       strerror(err_no));
    }
    freeaddrinfo(res);
    return fd;
}

repl *repl_start(db *d, const repl_config *cfg, err *e)
{
    repl *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->spare_fd = -1;
    r->d = d;
    snprintf(r->region, sizeof(r->region), "%s", cfg->region);
    r->key_len = cfg->key_len < sizeof(r->key) ? cfg->key_len : sizeof(r->key);
    r->retention_ms = cfg->retention_ms;
    r->retention_bytes = cfg->retention_bytes;
    r->grace_ms = cfg->tombstone_grace_ms;
    memcpy(r->key, cfg->key, r->key_len);
    r->n_peers = cfg->n_peers;
    r->links = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof(peer_link));
    r->sources = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof(source_state));
    if (!r->links || !r->sources) abort();
    pthread_mutex_init(&r->conn_mu, NULL);
    for (size_t i = 0; i < cfg->n_peers; i++) {
        peer_link *l = &r->links[i];
        l->r = r;
        snprintf(l->name, sizeof(l->name), "%s", cfg->peers[i].name);
        snprintf(l->host, sizeof(l->host), "%s", cfg->peers[i].host);
        l->port = cfg->peers[i].port;
        atomic_init(&l->fd, -1);
        source_state *s = &r->sources[i];
        snprintf(s->name, sizeof(s->name), "%s", cfg->peers[i].name);
        pthread_mutex_init(&s->apply_mu, NULL);
        buf k, v;
        buf_init(&k);
        buf_init(&v);
        claim_key(&k, s->name);
        err ce;
        if (store_get(d->st, STORE_CF_META, k.data, k.len, &v, &ce) == 1 && v.len == 8)
            atomic_store(&s->claim_ts, load_u64be(v.data));
        buf_free(&k);
        buf_free(&v);
    }
    r->listen_fd = listen_on(cfg->listen_host, cfg->listen_port, e);
    if (r->listen_fd < 0) {
        repl_stop(r);
        return NULL;
    }
    r->spare_fd = fcntl(r->listen_fd, F_DUPFD_CLOEXEC, 0); /* see refuse_no_descriptor */
    atomic_store(&r->running, true);
    if (pthread_create(&r->accept_thread, NULL, accept_main, r) != 0) {
        atomic_store(&r->running, false);
        err_set(e, ERR_INTERNAL, "cannot start the replication listener");
        repl_stop(r);
        return NULL;
    }
    r->gc_started = pthread_create(&r->gc_thread, NULL, gc_main, r) == 0;
    if (!r->gc_started) log_error("cannot start the background thread: logs and tombstones grow");
    for (size_t i = 0; i < r->n_peers; i++)
        r->links[i].started =
            pthread_create(&r->links[i].thread, NULL, sender_main, &r->links[i]) == 0;
    return r;
}

void repl_stop(repl *r)
{
    if (!r) return;
    bool was_running = atomic_exchange(&r->running, false);
    if (was_running) {
        pthread_join(r->accept_thread, NULL);
        if (r->gc_started) pthread_join(r->gc_thread, NULL);
        for (size_t i = 0; i < r->n_peers; i++) {
            int fd = atomic_load(&r->links[i].fd);
            if (fd >= 0) shutdown(fd, SHUT_RDWR);
        }
        for (size_t i = 0; i < r->n_peers; i++)
            if (r->links[i].started) pthread_join(r->links[i].thread, NULL);
        reap_conns(r, true);
    }
    if (r->listen_fd > 0) close(r->listen_fd);
    if (r->spare_fd >= 0) close(r->spare_fd);
    for (size_t i = 0; i < r->n_peers; i++)
        pthread_mutex_destroy(&r->sources[i].apply_mu);
    pthread_mutex_destroy(&r->conn_mu);
    free(r->links);
    free(r->sources);
    memset(r->key, 0, sizeof(r->key));
    free(r);
}

/* ------------------------------------------------------------ observability */

void repl_render_metrics(repl *r, buf *out)
{
    if (!r) return;
    uint64_t stable = rlog_stable(&r->d->log);
    buf_puts(out, "# HELP meridian_replication_link_up 1 while the link to a peer streams.\n"
                  "# TYPE meridian_replication_link_up gauge\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out, "meridian_replication_link_up{source=\"%s\",peer=\"%s\"} %d\n", r->region,
                   r->links[i].name, atomic_load(&r->links[i].up));
    /* What each peer still owes an acknowledgement for, in constant time
     * whatever the length of the log (a scrape no longer walks it): entries
     * are the log positions after the peer's acknowledged one up to the
     * watermark; bytes are an estimate: RocksDB's of that key range of the
     * log in SST files (store_approximate_bytes), plus the part still in the
     * memtables, which hold the newest entries: as many of those as are
     * pending, at the average size of the newest (at most 32, read). */
    uint64_t mem_entries = store_memtable_entries(r->d->st, STORE_CF_RLOG), newest_avg = 0;
    uint64_t min_acked = stable;
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t a = atomic_load(&r->links[i].acked);
        if (a < min_acked) min_acked = a;
    }
    if (mem_entries && min_acked < stable) {
        /* The newest pending positions, at most 32 of them: the walk is
         * bounded by the key range, whatever was deleted in it. */
        uint8_t lo[8], hi[8];
        store_u64be(lo, stable - min_acked > 32 ? stable - 31 : min_acked + 1);
        store_u64be(hi, stable + 1);
        store_iter *it = store_iter_new(r->d->st, STORE_CF_RLOG, lo, 8, hi, 8);
        uint64_t sum = 0, n = 0;
        for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
            size_t kl, vl;
            store_iter_key(it, &kl);
            store_iter_value(it, &vl);
            if (kl != 8) continue;
            sum += kl + vl;
            n++;
        }
        store_iter_free(it);
        newest_avg = n ? sum / n : 0;
    }
    buf_puts(out, "# HELP meridian_replication_pending_entries Replication log positions not yet "
                  "acknowledged by a peer (the log watermark minus the peer's acknowledged "
                  "position).\n"
                  "# TYPE meridian_replication_pending_entries gauge\n");
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t acked = atomic_load(&r->links[i].acked);
        buf_printf(out, "meridian_replication_pending_entries{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name,
                   (unsigned long long)(stable > acked ? stable - acked : 0));
    }
    buf_puts(out, "# HELP meridian_replication_pending_bytes Approximate bytes of the log "
                  "entries not yet acknowledged by a peer (estimated from RocksDB's figures, "
                  "without reading the log).\n"
                  "# TYPE meridian_replication_pending_bytes gauge\n");
    for (size_t i = 0; i < r->n_peers; i++) {
        uint64_t acked = atomic_load(&r->links[i].acked), bytes = 0;
        if (acked < stable) {
            uint8_t lo[8], hi[8];
            store_u64be(lo, acked + 1);
            store_u64be(hi, stable + 1);
            bytes = store_approximate_bytes(r->d->st, STORE_CF_RLOG, lo, 8, hi, 8);
            uint64_t in_mem = stable - acked < mem_entries ? stable - acked : mem_entries;
            bytes += in_mem * newest_avg;
        }
        buf_printf(out, "meridian_replication_pending_bytes{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name, (unsigned long long)bytes);
    }
    buf_puts(out, "# HELP meridian_replication_latency_seconds Commit in the source region to "
                  "apply here.\n"
                  "# TYPE meridian_replication_latency_seconds histogram\n");
    for (size_t i = 0; i < r->n_peers; i++) {
        source_state *s = &r->sources[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b <= N_LAT; b++) {
            cum += atomic_load(&s->lat_bucket[b]);
            if (b < N_LAT)
                buf_printf(out,
                           "meridian_replication_latency_seconds_bucket{source=\"%s\","
                           "destination=\"%s\",le=\"%g\"} %llu\n",
                           s->name, r->region, lat_le[b], cum);
            else
                buf_printf(out,
                           "meridian_replication_latency_seconds_bucket{source=\"%s\","
                           "destination=\"%s\",le=\"+Inf\"} %llu\n",
                           s->name, r->region, cum);
        }
        buf_printf(out,
                   "meridian_replication_latency_seconds_sum{source=\"%s\",destination=\"%s\"} "
                   "%.6f\n",
                   s->name, r->region, (double)atomic_load(&s->lat_sum_us) / 1e6);
        buf_printf(out,
                   "meridian_replication_latency_seconds_count{source=\"%s\",destination=\"%s\"} "
                   "%llu\n",
                   s->name, r->region, cum);
    }
    buf_puts(out, "# HELP meridian_replication_last_applied_timestamp_seconds Origin commit time "
                  "of the newest write applied from a source.\n"
                  "# TYPE meridian_replication_last_applied_timestamp_seconds gauge\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out,
                   "meridian_replication_last_applied_timestamp_seconds{source=\"%s\","
                   "destination=\"%s\"} %.3f\n",
                   r->sources[i].name, r->region,
                   (double)atomic_load(&r->sources[i].last_commit_ms) / 1000.0);
    buf_printf(out,
               "# HELP meridian_replication_applied_frontier_ms Every write stamped at or before "
               "this time (ms) is applied in this region (0: not known yet).\n"
               "# TYPE meridian_replication_applied_frontier_ms gauge\n"
               "meridian_replication_applied_frontier_ms %llu\n"
               "# HELP meridian_replication_global_frontier_ms The same, known to hold in every "
               "region; tombstones older than this minus the grace period are collected.\n"
               "# TYPE meridian_replication_global_frontier_ms gauge\n"
               "meridian_replication_global_frontier_ms %llu\n"
               "# HELP meridian_tombstones_collected_total Tombstones deleted once every region "
               "had them.\n"
               "# TYPE meridian_tombstones_collected_total counter\n"
               "meridian_tombstones_collected_total %llu\n",
               (unsigned long long)HLC_MS(atomic_load(&r->applied_frontier)),
               (unsigned long long)HLC_MS(atomic_load(&r->global_frontier)),
               (unsigned long long)atomic_load(&r->tombstones_collected));
    buf_printf(out,
               "# HELP meridian_replication_clock_skew_violations_total Received timestamps too "
               "far ahead of the local clock.\n"
               "# TYPE meridian_replication_clock_skew_violations_total counter\n"
               "meridian_replication_clock_skew_violations_total %llu\n",
               (unsigned long long)atomic_load(&r->d->skew_violations));
    buf_printf(out,
               "# HELP meridian_clock_skew_overwrites_total Local writes stamped just above a "
               "stored version from a clock beyond the skew bound (the clock itself stays "
               "within it).\n"
               "# TYPE meridian_clock_skew_overwrites_total counter\n"
               "meridian_clock_skew_overwrites_total %llu\n",
               (unsigned long long)atomic_load(&r->d->skew_overwrites));
    buf_printf(out,
               "# HELP meridian_replication_log_trimmed_seq Every log entry up to this seq has "
               "been deleted (applied by every peer, or out of retention).\n"
               "# TYPE meridian_replication_log_trimmed_seq gauge\n"
               "meridian_replication_log_trimmed_seq %llu\n"
               "# HELP meridian_replication_log_high_seq The newest log seq used.\n"
               "# TYPE meridian_replication_log_high_seq gauge\n"
               "meridian_replication_log_high_seq %llu\n",
               (unsigned long long)db_log_trimmed(r->d), (unsigned long long)rlog_high(&r->d->log));
    static const char *const gc_help[][2] = {{"meridian_background_runs_total", "counter"},
                                             {"meridian_background_failures_total", "counter"},
                                             {"meridian_background_seconds_total", "counter"},
                                             {"meridian_background_last_run_seconds", "gauge"},
                                             {"meridian_background_last_done_ms", "gauge"}};
    static const char *const gc_text[] = {
        "Runs of a background task (task: log = log collection and retention, tombstones = "
        "tombstone collection).",
        "Runs of a background task that failed (logged, retried at its next run).",
        "Time spent in a background task.", "Duration of the task's last run.",
        "Wall clock (ms) when the task last finished a run."};
    for (size_t m = 0; m < 5; m++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", gc_help[m][0], gc_text[m], gc_help[m][0],
                   gc_help[m][1]);
        for (int t = 0; t < N_GC_TASKS; t++) {
            const gc_task *g = &r->gc[t];
            if (m < 2)
                buf_printf(out, "%s{task=\"%s\"} %llu\n", gc_help[m][0], gc_task_names[t],
                           (unsigned long long)atomic_load(m == 0 ? &g->runs : &g->failures));
            else if (m < 4)
                buf_printf(out, "%s{task=\"%s\"} %.6f\n", gc_help[m][0], gc_task_names[t],
                           (double)atomic_load(m == 2 ? &g->busy_us : &g->last_us) / 1e6);
            else
                buf_printf(out, "%s{task=\"%s\"} %llu\n", gc_help[m][0], gc_task_names[t],
                           (unsigned long long)atomic_load(&g->last_done_ms));
        }
    }
    buf_puts(out, "# HELP meridian_replication_reseeds_total Peers re-seeded from snapshots "
                  "because the log no longer held what they needed.\n"
                  "# TYPE meridian_replication_reseeds_total counter\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out, "meridian_replication_reseeds_total{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name,
                   (unsigned long long)atomic_load(&r->links[i].reseeds));
    buf_puts(out, "# HELP meridian_replication_position_ahead_total A peer reported this "
                  "region's log applied beyond its end (inconsistent; repaired by re-seeding).\n"
                  "# TYPE meridian_replication_position_ahead_total counter\n");
    for (size_t i = 0; i < r->n_peers; i++)
        buf_printf(out,
                   "meridian_replication_position_ahead_total{source=\"%s\",peer=\"%s\"} %llu\n",
                   r->region, r->links[i].name,
                   (unsigned long long)atomic_load(&r->links[i].positions_ahead));
    buf_puts(out, "# HELP meridian_replication_refused_total Inbound replication connections "
                  "refused or closed before authentication, or after it for a protocol "
                  "violation.\n"
                  "# TYPE meridian_replication_refused_total counter\n");
    for (size_t i = 0; i < N_REFUSE; i++)
        buf_printf(out, "meridian_replication_refused_total{reason=\"%s\"} %llu\n", refuse_names[i],
                   (unsigned long long)atomic_load(&r->refused[i]));
}

int repl_backfill_percent(repl *r, const char *peer)
{
    if (!r) return -1;
    for (size_t i = 0; i < r->n_peers; i++) {
        peer_link *l = &r->links[i];
        if (strcmp(l->name, peer) != 0) continue;
        uint64_t total = atomic_load(&l->bf_total), sent = atomic_load(&l->bf_sent);
        if (total == 0) return 0;
        return sent >= total ? 99 : (int)(sent * 100 / total);
    }
    return -1;
}

void repl_status_json(repl *r, buf *out)
{
    /* log_first: the oldest seq the log may still hold (everything before
     * it was trimmed); no entry is read. */
    uint64_t stable = r ? rlog_stable(&r->d->log) : 0;
    uint64_t first = r ? db_log_trimmed(r->d) + 1 : 0;
    /* log_high: the newest seq used; log_last: the newest entry on disk (one
     * seek). Seqs between them are holes (reservations whose batch failed). */
    uint64_t high = r ? rlog_high(&r->d->log) : 0, last = 0;
    if (r) {
        store_iter *it = store_iter_new(r->d->st, STORE_CF_RLOG, NULL, 0, NULL, 0);
        store_iter_last(it);
        size_t kl;
        const uint8_t *k = store_iter_valid(it) ? store_iter_key(it, &kl) : NULL;
        if (k && kl == 8) last = load_u64be(k);
        store_iter_free(it);
    }
    buf_printf(out,
               "{\"region\":\"%s\",\"log_position\":%llu,\"log_first\":%llu,"
               "\"log_high\":%llu,\"log_last\":%llu,"
               "\"applied_frontier_ms\":%llu,\"global_frontier_ms\":%llu,\"links\":[",
               r ? r->region : "", (unsigned long long)stable, (unsigned long long)first,
               (unsigned long long)high, (unsigned long long)last,
               r ? (unsigned long long)HLC_MS(atomic_load(&r->applied_frontier)) : 0ull,
               r ? (unsigned long long)HLC_MS(atomic_load(&r->global_frontier)) : 0ull);
    for (size_t i = 0; r && i < r->n_peers; i++) {
        peer_link *l = &r->links[i];
        source_state *s = &r->sources[i];
        uint64_t acked = atomic_load(&l->acked);
        buf_printf(out,
                   "%s{\"peer\":\"%s\",\"up\":%s,\"acked\":%llu,\"pending\":%llu,"
                   "\"backfill_sent\":%llu,\"backfill_total\":%llu,\"last_applied_commit_ms\":"
                   "%llu}",
                   i ? "," : "", l->name, atomic_load(&l->up) ? "true" : "false",
                   (unsigned long long)acked,
                   (unsigned long long)(stable > acked ? stable - acked : 0),
                   (unsigned long long)atomic_load(&l->bf_sent),
                   (unsigned long long)atomic_load(&l->bf_total),
                   (unsigned long long)atomic_load(&s->last_commit_ms));
    }
    buf_puts(out, "]}");
}
