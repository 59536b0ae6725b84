/* sender.c - the sender side of every peer link: one thread per peer
 * (repl__sender_main) connects, handshakes and streams this region's log
 * and table back-fills to the peer, re-seeding it when the log no longer
 * holds what it needs (see repl.c's header and docs/REPLICATION.md). */
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
        source_state *src = repl__source_of(r, q->region);
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

static int reseed_if_needed(sender_conn *c, err *e);

/* Sends log entries after c->pos up to the watermark (one batch). */
static int send_log(sender_conn *c, uint64_t stable, err *e)
{
    repl *r = c->l->r;
    uint8_t lo[8], hi[8];
    store_u64be(lo, c->scanned + 1);
    store_u64be(hi, stable + 1);
    store_iter *it = store_iter_new(r->d->st, STORE_CF_RLOG, lo, 8, hi, 8);
    /* A trim that began before the iterator's snapshot may have removed
     * entries this peer needs: re-seed instead of streaming past the gap. */
    if (db_log_trim_horizon(r->d) > c->scanned) {
        store_iter_free(it);
        return reseed_if_needed(c, e);
    }
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
                        if (repl__departed_peer_replicates(r, en.table_uid, c->l->name,
                                                           &c->departed_send, e) < 0) {
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
    if (rc == 0) {
        c->scanned = full ? through : stable;
        atomic_store(&c->l->scanned, c->scanned);
    }
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
 * is skipped. The trim's horizon (published before its entries go) is what
 * counts, and only entries this peer has not passed (c->scanned: read up to
 * there, nothing for it after c->pos). */
static int reseed_if_needed(sender_conn *c, err *e)
{
    repl *r = c->l->r;
    uint64_t horizon = db_log_trim_horizon(r->d);
    if (c->scanned >= horizon) return 0;
    int n = reseed_all(c, e);
    if (n < 0) return -1;
    log_warn("peer %s needs log entries from %llu, but the log was trimmed through %llu: "
             "re-seeding %d tables from snapshots",
             c->l->name, (unsigned long long)(c->pos + 1), (unsigned long long)horizon, n);
    atomic_fetch_add(&c->l->reseeds, 1);
    c->pos = c->scanned = horizon;
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
    if (peer_pos >= UINT64_MAX / 2)
        return err_set(e, ERR_VALIDATION, "peer %s reports an impossible log position %llu",
                       c->l->name, (unsigned long long)peer_pos);
    /* The back-fills are owed (durably) before the log jumps: a crash in
     * between repeats the repair, never leaves the skip without them. */
    int n = reseed_all(c, e);
    if (n < 0 || db_log_skip_past(r->d, peer_pos, e) < 0) return -1;
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
            uint8_t owed_uid[TABLE_UID_LEN];
            uint64_t owed_gen;
            if (db_safe_point(r->d, &c->hb_seq, &c->hb_ts, &se) < 0) {
                log_warn("no safe point for a heartbeat: %s", se.msg);
                c->hb_ts = 0; /* claims nothing; still keeps the link alive */
            } else if (c->bf_inflight || pending_backfill(r, c->l->name, owed_uid, &owed_gen)) {
                /* Writes this peer misses are still to come by back-fill (a
                 * re-seed, a new replica): the log position does not cover
                 * them, so claim nothing until they are delivered. */
                c->hb_ts = 0;
            }
            c->hb_frontier = repl__applied_frontier(r);
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

void *repl__sender_main(void *arg)
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
            repl__sleep_ms(50);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}
