/* repl/internal.h - what the replication files share: the state of the
 * peer links, of the sources and of the inbound connections, the one
 * `struct repl`, and the internal functions one file defines for another
 * (prefixed repl__, as libuv's uv__). Not for use outside src/repl/.
 *
 * Files: repl.c (start, stop, shared helpers, metrics and status), sender.c
 * (one thread per peer streaming this region's log and back-fills),
 * receiver.c (the peer listener, inbound connections and their limits, and
 * applying what arrives), gc.c (background work: log collection and
 * retention, tombstone collection), descriptor.c (table descriptors
 * received from other regions). The protocol is in docs/REPLICATION.md.
 */
#ifndef MERIDIAN_REPL_INTERNAL_H
#define MERIDIAN_REPL_INTERNAL_H

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "repl/repl.h"
#include "repl/wire.h"

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

/* Background work, on its own thread (repl__gc_main): each task runs every
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
    _Atomic int up;           /* connected and handshaken */
    _Atomic int fd;           /* current socket, -1 if none (for shutdown) */
    _Atomic uint64_t acked;   /* log position the peer has applied */
    _Atomic int acked_known;  /* acked came from the peer since this process started */
    _Atomic uint64_t sent;    /* log position sent */
    _Atomic uint64_t scanned; /* the log read up to here: nothing for the peer in (sent, scanned] */
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
    pthread_t gc_thread; /* background work: repl__gc_main */
    bool gc_started;
    gc_task gc[N_GC_TASKS]; /* its statistics, per task */
    _Atomic bool running;
    pthread_mutex_t departed_mu; /* repl_departures_lock: departures vs. retention */
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
    _Atomic uint64_t refused_logged_ms[N_REFUSE];  /* last warning per reason (monotonic) */
    _Atomic uint64_t apply_err_logged_ms;          /* last "applying ... failed" error */
    _Atomic uint64_t gc_err_logged_ms;             /* last background failure warning */
    _Atomic uint64_t descriptors_refused;          /* replica sets too large to merge */
    _Atomic uint64_t descriptor_refused_logged_ms; /* last such error logged */
    _Atomic uint64_t departed_logged_ms;           /* last "retention held" warning */
};

#define DEPARTED_PREFIX "departed/"
#define DEPARTED_FORMAT 0x01

/* repl.c */
uint64_t repl__now_ms(void); /* wall clock (hlc_wall_ms) */
void repl__sleep_ms(unsigned ms);
source_state *repl__source_of(repl *r, const char *region);
/* Parses a departed record (see repl_departed_record): the replica set it
 * names (free with catalog_free_template) and the last seq of its writes. */
int repl__departed_parse(repl *r, const uint8_t *v, size_t len, table *tmpl, uint64_t *through);
/* For a table whose replica departed from this region: does `peer` still get
 * the writes made here before the departure? -1 (e set) if that cannot be read. */
int repl__departed_peer_replicates(repl *r, const uint8_t *uid, const char *peer, bool *yes,
                                   err *e);
/* sender.c: one per peer link. */
void *repl__sender_main(void *arg);
/* receiver.c */
void *repl__accept_main(void *arg);
/* Joins finished inbound connections (all: shuts every one down first). */
void repl__reap_conns(repl *r, bool all);
/* This region's applied frontier (see repl.c's header). */
uint64_t repl__applied_frontier(repl *r);
/* The meta key of the claim on a source (its persisted claim_ts). */
void repl__claim_key(buf *k, const char *source);
/* gc.c: the background thread. */
void *repl__gc_main(void *arg);

#endif
