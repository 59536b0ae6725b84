/* receiver.c - the receiver side: the peer listener (repl__accept_main) and
 * its limits on inbound connections, one thread per inbound connection
 * (handshake, then apply each batch and acknowledge it), heartbeats and
 * claims, and the applied frontier (see repl.c's header). */
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
#include "repl/internal.h"
#include "repl/wire.h"
#include "util/log.h"

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
    uint64_t now = repl__now_ms();
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

void repl__claim_key(buf *k, const char *source)
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
        repl__claim_key(&k, src->name);
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
uint64_t repl__applied_frontier(repl *r)
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
    atomic_store(&src->last_apply_ms, repl__now_ms());
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
    source_state *src = repl__source_of(r, peer);
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
void repl__reap_conns(repl *r, bool all)
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
    repl__sleep_ms(ACCEPT_BACKOFF_MS);
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
            repl__sleep_ms(ACCEPT_BACKOFF_MS);
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

void *repl__accept_main(void *arg)
{
    repl *r = arg;
    while (atomic_load(&r->running)) {
        struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
        int pr = poll(&p, 1, 200);
        repl__reap_conns(r, false);
        if (pr > 0) accept_conn(r);
    }
    return NULL;
}
