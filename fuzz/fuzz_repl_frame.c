/* fuzz_repl_frame.c - the replication protocol decoders (repl/wire.c), the
 * handshake, and what a receiver does with the frames that follow it.
 *
 * The first input byte chooses what the rest is fed to (mode = byte % 5):
 *   0: repl_entry_decode; an entry that decodes re-encodes to exactly the
 *      input (the format has one encoding per entry);
 *   1: repl_batch_parse, then repl_entry_decode of every item; a batch that
 *      parses is rebuilt with repl_batch_* and must equal the input;
 *   2: a byte stream read frame by frame with repl_frame_recv (through a
 *      socketpair, the peer end shut down after the input), plus
 *      repl_get_u64 on each payload;
 *   3: the same stream as a client's messages to repl_handshake_server
 *      (region us-east-1), followed by what the client sends once accepted;
 *   4: the same stream as a server's messages to repl_handshake_client
 *      (region us-east-1), followed by its acknowledgements.
 * Handshake nonces come from a fixed source (repl_wire_set_nonce_source), so
 * this target, playing the peer, can compute the proof the code under test
 * expects before the handshake runs. Unless bit 7 of the first byte is set,
 * the proof in the stream (AUTH in mode 3, CHALLENGE's proof_s in mode 4) is
 * replaced by the right one, computed here from the protocol's definition
 * (wire.h) with OpenSSL's HMAC, so most handshakes succeed and the frames
 * after them are reached. Properties: the handshake succeeds exactly when the
 * first frames are well formed (as this target parses them) and the proof
 * is right, and then reports the peer's region (and START's position).
 * After a successful mode 3 handshake, frames are handled as
 * repl.c's receiver does: HEARTBEAT {position, safe_ts, frontier}, BATCH
 * {through u64, batch payload} parsed, decoded, filtered by the applied
 * position and applied with db_apply (table descriptors and back-fill
 * markers need a running repl and are skipped) to a real database in a
 * temporary directory holding two tables with known uids, each BATCH answered
 * with an ACK; after each applied batch every table touched must still scan
 * without an internal error. After a mode 4 handshake, ACK frames are read as
 * the sender does. Everything else the code under test sends stays unread in
 * the socket.
 *
 * FUZZ_REPL_WRITE_SEEDS=DIR makes the target write its seed inputs (built
 * with the real encoders) into DIR and exit: see write_seeds().
 */
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "api/ops.h"
#include "db/db.h"
#include "fuzz_common.h"
#include "item/codec.h"
#include "repl/wire.h"
#include "util/log.h"

#define STREAM_MAX   (64 * 1024) /* stays within a socketpair's buffer */
#define CLUSTER_KEY  "fuzz-cluster-key-0123456789"
#define MY_REGION    "us-east-1" /* the region of the side under test */
#define HS_FRAME_MAX 4096        /* wire.c: longest frame during the handshake */
#define RESET_EVERY  5000        /* mode-3 inputs between database resets */
#define ACCOUNT      "acct1"

static const uint8_t fixed_nonce[REPL_NONCE_LEN] = "meridian-fuzz-fixed-nonce-012345";
static const uint8_t uid_range[TABLE_UID_LEN] = "fuzz-uid-range-1";
static const uint8_t uid_hash[TABLE_UID_LEN] = "fuzz-uid-hash--2";

static char dir[256];
static db the_db;
static bool db_is_open;
static unsigned long db_runs;
static bool verbose; /* FUZZ_REPL_VERBOSE=1: print handshakes and applies (for writing seeds) */

static int fixed_nonce_source(uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = fixed_nonce[i % REPL_NONCE_LEN];
    return 0;
}

/* ------------------------------------------------------------- database */

static void create_table(const uint8_t uid[TABLE_UID_LEN], const char *name, const char *pk,
                         mv_type pkt, const char *sk, mv_type skt)
{
    table_attr_def defs[2] = {{(char *)pk, pkt}, {(char *)sk, skt}};
    table tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    memcpy(tmpl.uid, uid, TABLE_UID_LEN);
    tmpl.account = ACCOUNT;
    tmpl.name = (char *)name;
    tmpl.pk_name = (char *)pk;
    tmpl.pk_type = pkt;
    tmpl.sk_name = (char *)sk;
    tmpl.sk_type = skt;
    tmpl.n_attr_defs = sk ? 2 : 1;
    tmpl.attr_defs = defs;
    tmpl.settings.pay_per_request = true;
    tmpl.created_ms = 1;
    table *t = NULL;
    err e;
    err_clear(&e);
    if (catalog_create(the_db.cat, &tmpl, &t, &e) != 0) {
        fprintf(stderr, "fuzz_repl_frame: catalog_create %s: %s\n", name, e.msg);
        abort();
    }
    table_release(t);
}

static void db_up(void)
{
    store_options so = {.block_cache_bytes = 8u << 20, .sync = false};
    err e;
    err_clear(&e);
    if (db_open(&the_db, dir, MY_REGION, &so, &e) != 0) {
        fprintf(stderr, "fuzz_repl_frame: db_open %s: %s\n", dir, e.msg);
        abort();
    }
    create_table(uid_range, "range", "pk", MV_S, "sk", MV_N);
    create_table(uid_hash, "hash", "id", MV_B, NULL, 0);
    db_is_open = true;
}

static void db_down(void)
{
    if (!db_is_open) return;
    db_close(&the_db);
    fuzz_rmtree(dir);
    db_is_open = false;
}

/* The database, opened on first use and recreated every RESET_EVERY uses. */
static db *get_db(void)
{
    if (db_is_open && ++db_runs % RESET_EVERY == 0) db_down();
    if (!db_is_open) {
        static bool at_exit;
        fuzz_tmpdir(dir, sizeof(dir), "fuzz-repl");
        db_up();
        /* Registered after RocksDB's own static state exists, so that it runs
         * before RocksDB's destructors. */
        if (!at_exit) atexit(db_down);
        at_exit = true;
    }
    return &the_db;
}

static void write_seeds(const char *out_dir);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    repl_wire_set_nonce_source(fixed_nonce_source);
    verbose = getenv("FUZZ_REPL_VERBOSE") != NULL;
    log_set_level(LOG_ERROR);
    const char *seeds = getenv("FUZZ_REPL_WRITE_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

/* -------------------------------------------------------------- decoders */

static void fuzz_entry(arena *a, const uint8_t *p, size_t len)
{
    repl_entry en;
    err e;
    err_clear(&e);
    if (repl_entry_decode(a, p, len, &en, &e) != 0) {
        FUZZ_CHECK(e.code != ERR_NONE);
        return;
    }
    buf b;
    buf_init(&b);
    repl_entry_encode(&b, &en);
    FUZZ_CHECK(b.len == len && memcmp(b.data, p, len) == 0);
    buf_free(&b);
}

static void fuzz_batch(arena *a, const uint8_t *p, size_t len)
{
    repl_batch_item *items = NULL;
    size_t n = 0;
    err e;
    err_clear(&e);
    if (repl_batch_parse(a, p, len, &items, &n, &e) != 0) {
        FUZZ_CHECK(e.code != ERR_NONE);
        return;
    }
    buf b;
    buf_init(&b);
    repl_batch_begin(&b);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(items[i].entry >= p && items[i].entry + items[i].len <= p + len);
        repl_batch_add(&b, items[i].seq, items[i].entry, items[i].len);
        fuzz_entry(a, items[i].entry, items[i].len);
    }
    repl_batch_finish(&b, (uint32_t)n);
    FUZZ_CHECK(b.len == len && memcmp(b.data, p, len) == 0);
    buf_free(&b);
}

/* A socketpair whose [1] end already holds the input and then EOF. */
static int stream_of(const uint8_t *p, size_t len, int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) abort();
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(sv[0], p + off, len - off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    shutdown(sv[0], SHUT_WR);
    return sv[1];
}

static void fuzz_frames(const uint8_t *p, size_t len)
{
    int sv[2];
    int fd = stream_of(p, len, sv);
    buf payload;
    buf_init(&payload);
    for (int i = 0; i < 64; i++) {
        repl_frame_type t;
        err e;
        err_clear(&e);
        if (repl_frame_recv(fd, &t, &payload, 1000, &e) != 0) {
            FUZZ_CHECK(e.code != ERR_NONE);
            break;
        }
        FUZZ_CHECK(payload.len < REPL_FRAME_MAX);
        uint64_t v;
        for (size_t off = 0; off <= payload.len + 1; off += 8)
            (void)repl_get_u64(&payload, off, &v);
    }
    buf_free(&payload);
    close(sv[0]);
    close(sv[1]);
}

/* ------------------------------------------------- handshake, as the peer */

/* One frame of the input stream, as this target reads the protocol. */
typedef struct frame_ref {
    bool complete; /* header and whole payload present, length within max */
    uint8_t type;
    uint8_t *payload;
    size_t plen;
    size_t next; /* offset of the following frame */
} frame_ref;

static frame_ref frame_at(uint8_t *p, size_t len, size_t off, size_t max)
{
    frame_ref f = {0};
    f.next = len;
    if (off > len || len - off < 5) return f;
    uint32_t flen = load_u32be(p + off);
    if (flen < 1 || flen > max || len - off - 4 < flen) return f;
    f.complete = true;
    f.type = p[off + 4];
    f.payload = p + off + 5;
    f.plen = flen - 1;
    f.next = off + 4 + flen;
    return f;
}

/* A u8-length region name (1..64 of [A-Za-z0-9._-]) at *off. */
static bool get_region(const uint8_t *p, size_t len, size_t *off, char out[REPL_REGION_MAX + 1])
{
    if (*off >= len) return false;
    size_t n = p[*off];
    if (n < 1 || n > REPL_REGION_MAX || len - *off - 1 < n) return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[*off + 1 + i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    memcpy(out, p + *off + 1, n);
    out[n] = '\0';
    *off += 1 + n;
    return true;
}

/* proof = HMAC-SHA256(key, "meridian-repl-1|" role "|" client "|" server "|"
 * nonce_c "|" nonce_s), as wire.h defines it. */
static void proof(const char *role, const char *client, const char *server, const uint8_t *nonce_c,
                  const uint8_t *nonce_s, uint8_t out[REPL_PROOF_LEN])
{
    buf m;
    buf_init(&m);
    buf_printf(&m, "meridian-repl-1|%s|%s|%s|", role, client, server);
    buf_append(&m, nonce_c, REPL_NONCE_LEN);
    buf_putc(&m, '|');
    buf_append(&m, nonce_s, REPL_NONCE_LEN);
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), CLUSTER_KEY, (int)strlen(CLUSTER_KEY), m.data, m.len, out, &n) ||
        n != REPL_PROOF_LEN)
        abort();
    buf_free(&m);
}

static bool accept_any(void *ctx, const char *region)
{
    return true;
}

static uint64_t position_of(void *ctx, const char *region)
{
    uint64_t pos = 0;
    err e;
    if (db_applied_position(ctx, region, &pos, &e) < 0) pos = 0;
    return pos + 1;
}

/* After a BATCH was applied: every table it touched still scans. */
static void check_scan(table *t)
{
    arena a;
    arena_init(&a);
    buf out;
    buf_init(&out);
    err e;
    err_clear(&e);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "TableName", t->name);
    op_ctx c = {.d = &the_db,
                .region = MY_REGION,
                .account = t->account,
                .req = req,
                .a = &a,
                .out = &out,
                .e = &e};
    int rc = op_scan(&c);
    if (rc != 0) fprintf(stderr, "Scan of %s after an apply: %s\n", t->name, e.msg);
    if (verbose) fprintf(stderr, "scan %s: %.*s\n", t->name, (int)out.len, (const char *)out.data);
    FUZZ_CHECK(rc == 0);
    cJSON *j = cJSON_ParseWithLength((const char *)out.data, out.len);
    FUZZ_CHECK(cJSON_IsObject(j));
    cJSON_Delete(j);
    cJSON_Delete(req);
    buf_free(&out);
    arena_free(&a);
}

/* What repl.c's apply_batch does with a BATCH from source, minus the
 * descriptor entries (which need a running repl). */
static int apply_batch(db *d, const char *source, const uint8_t *p, size_t len, uint64_t *through)
{
    if (len < 8) return -1;
    *through = load_u64be(p);
    arena a;
    arena_init(&a);
    repl_batch_item *items;
    size_t n;
    int rc = -1;
    err e;
    err_clear(&e);
    uint64_t applied = 0;
    if (repl_batch_parse(&a, p + 8, len - 8, &items, &n, &e) < 0 ||
        db_applied_position(d, source, &applied, &e) < 0)
        goto out;
    repl_entry *ents = arena_calloc(&a, n ? n : 1, sizeof(repl_entry));
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (repl_entry_decode(&a, items[i].entry, items[i].len, &ents[kept], &e) < 0) goto out;
        repl_kind k = ents[kept].kind;
        bool positioned = k == REPL_PUT || k == REPL_TOMBSTONE || k == REPL_TABLE;
        if (!positioned || items[i].seq > applied) kept++;
    }
    db_apply_stats st = {0};
    err_clear(&e);
    if (db_apply(d, source, ents, kept, *through, &st, &e) < 0) {
        FUZZ_CHECK(e.code != ERR_NONE && e.code != ERR_INTERNAL);
        goto out;
    }
    if (verbose)
        fprintf(stderr,
                "apply from %s: %zu entries: applied %llu lost %llu dup %llu skipped %llu\n",
                source, kept, (unsigned long long)st.applied, (unsigned long long)st.lost,
                (unsigned long long)st.duplicates, (unsigned long long)st.skipped);
    uint64_t pos = 0;
    FUZZ_CHECK(db_applied_position(d, source, &pos, &e) == 0);
    FUZZ_CHECK(*through == 0 || pos >= *through);
    bool touched[2] = {false, false};
    for (size_t i = 0; i < kept; i++) {
        if (memcmp(ents[i].table_uid, uid_range, TABLE_UID_LEN) == 0) touched[0] = true;
        if (memcmp(ents[i].table_uid, uid_hash, TABLE_UID_LEN) == 0) touched[1] = true;
    }
    for (int i = 0; i < 2; i++) {
        if (!touched[i]) continue;
        table *t = catalog_get_uid(d->cat, i == 0 ? uid_range : uid_hash);
        FUZZ_CHECK(t != NULL);
        check_scan(t);
        table_release(t);
    }
    rc = 0;
out:
    arena_free(&a);
    return rc;
}

/* repl.c's receiver loop after the handshake, on the rest of the stream. */
static void receive(int fd, const char *source)
{
    db *d = get_db();
    buf payload;
    buf_init(&payload);
    for (int i = 0; i < 64; i++) {
        repl_frame_type t;
        err e;
        err_clear(&e);
        if (repl_frame_recv(fd, &t, &payload, 1000, &e) != 0) break;
        if (t == REPL_F_HEARTBEAT) {
            uint64_t v[3];
            if (payload.len == 24)
                for (int k = 0; k < 3; k++)
                    FUZZ_CHECK(repl_get_u64(&payload, 8 * (size_t)k, &v[k]) == 0);
            continue;
        }
        if (t != REPL_F_BATCH) break;
        uint64_t through = 0;
        if (apply_batch(d, source, payload.data, payload.len, &through) < 0) {
            const char *msg = "apply failed";
            repl_frame_send(fd, REPL_F_ERROR, msg, strlen(msg), 1000, &e);
            break;
        }
        buf ack;
        buf_init(&ack);
        repl_put_u64(&ack, through);
        int rc = repl_frame_send(fd, REPL_F_ACK, ack.data, ack.len, 1000, &e);
        buf_free(&ack);
        if (rc < 0) break;
    }
    buf_free(&payload);
}

/* Mode 3: the input is a client talking to repl_handshake_server. */
static void fuzz_server(uint8_t *p, size_t len, bool fix)
{
    char client[REPL_REGION_MAX + 1] = "";
    const uint8_t *nonce_c = NULL;
    frame_ref hello = frame_at(p, len, 0, HS_FRAME_MAX);
    bool hello_ok = hello.complete && hello.type == REPL_F_HELLO && hello.plen >= 2 &&
                    ((unsigned)hello.payload[0] << 8 | hello.payload[1]) == REPL_PROTOCOL_VERSION;
    size_t off = 2;
    hello_ok = hello_ok && get_region(hello.payload, hello.plen, &off, client) &&
               hello.plen - off == REPL_NONCE_LEN && strcmp(client, MY_REGION) != 0;
    if (hello_ok) nonce_c = hello.payload + off;
    frame_ref auth = frame_at(p, len, hello.next, HS_FRAME_MAX);
    bool auth_ok =
        hello_ok && auth.complete && auth.type == REPL_F_AUTH && auth.plen == REPL_PROOF_LEN;
    bool proof_ok = false;
    if (auth_ok) {
        uint8_t want[REPL_PROOF_LEN];
        proof("client", client, MY_REGION, nonce_c, fixed_nonce, want);
        if (fix) memcpy(auth.payload, want, REPL_PROOF_LEN);
        proof_ok = memcmp(auth.payload, want, REPL_PROOF_LEN) == 0;
    }

    int sv[2];
    int fd = stream_of(p, len, sv);
    char peer[REPL_REGION_MAX + 1];
    err e;
    err_clear(&e);
    repl_server_hooks hooks = {NULL, accept_any, position_of};
    if (proof_ok) hooks.ctx = get_db();
    int rc = repl_handshake_server(fd, (const uint8_t *)CLUSTER_KEY, strlen(CLUSTER_KEY), MY_REGION,
                                   &hooks, peer, 1000, &e);
    if ((rc == 0) != proof_ok)
        fprintf(stderr, "handshake_server rc %d, expected %s: %s\n", rc,
                proof_ok ? "success" : "failure", e.msg);
    if (verbose) fprintf(stderr, "handshake_server rc %d peer '%s' %s\n", rc, peer, e.msg);
    FUZZ_CHECK((rc == 0) == proof_ok);
    if (rc == 0) {
        FUZZ_CHECK(strcmp(peer, client) == 0);
        receive(fd, peer);
    } else {
        FUZZ_CHECK(e.code != ERR_NONE && peer[0] == '\0');
    }
    close(sv[0]);
    close(sv[1]);
}

/* Mode 4: the input is a server answering repl_handshake_client. */
static void fuzz_client(uint8_t *p, size_t len, bool fix)
{
    char server[REPL_REGION_MAX + 1] = "";
    frame_ref chal = frame_at(p, len, 0, HS_FRAME_MAX);
    size_t off = 0;
    bool chal_ok = chal.complete && chal.type == REPL_F_CHALLENGE &&
                   get_region(chal.payload, chal.plen, &off, server) &&
                   chal.plen - off == REPL_NONCE_LEN + REPL_PROOF_LEN;
    bool proof_ok = false;
    if (chal_ok) {
        uint8_t want[REPL_PROOF_LEN];
        const uint8_t *nonce_s = chal.payload + off;
        uint8_t *given = chal.payload + off + REPL_NONCE_LEN;
        proof("server", MY_REGION, server, fixed_nonce, nonce_s, want);
        if (fix) memcpy(given, want, REPL_PROOF_LEN);
        proof_ok = memcmp(given, want, REPL_PROOF_LEN) == 0;
    }
    frame_ref start = frame_at(p, len, chal.next, HS_FRAME_MAX);
    bool expect = proof_ok && strcmp(server, MY_REGION) != 0 && start.complete &&
                  start.type == REPL_F_START && start.plen == 8;

    int sv[2];
    int fd = stream_of(p, len, sv);
    char peer[REPL_REGION_MAX + 1];
    err e;
    err_clear(&e);
    uint64_t from = 0;
    int rc = repl_handshake_client(fd, (const uint8_t *)CLUSTER_KEY, strlen(CLUSTER_KEY), MY_REGION,
                                   peer, &from, 1000, &e);
    if ((rc == 0) != expect)
        fprintf(stderr, "handshake_client rc %d, expected %s: %s\n", rc,
                expect ? "success" : "failure", e.msg);
    if (verbose)
        fprintf(stderr, "handshake_client rc %d peer '%s' from %llu %s\n", rc, peer,
                (unsigned long long)from, e.msg);
    FUZZ_CHECK((rc == 0) == expect);
    if (rc == 0) {
        FUZZ_CHECK(strcmp(peer, server) == 0 && from == load_u64be(start.payload));
        /* The sender's read_ack: ACK {through u64} frames until anything else. */
        buf payload;
        buf_init(&payload);
        for (int i = 0; i < 64; i++) {
            repl_frame_type t;
            uint64_t through;
            if (repl_frame_recv(fd, &t, &payload, 1000, &e) != 0 || t != REPL_F_ACK ||
                repl_get_u64(&payload, 0, &through) < 0)
                break;
        }
        buf_free(&payload);
    } else {
        FUZZ_CHECK(e.code != ERR_NONE && peer[0] == '\0');
    }
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t *p = malloc(size - 1 ? size - 1 : 1);
    if (!p) abort();
    memcpy(p, data + 1, size - 1);
    size_t len = size - 1;
    size_t slen = len < STREAM_MAX ? len : STREAM_MAX;
    bool fix = (data[0] & 0x80) == 0;
    arena a;
    arena_init(&a);
    switch (data[0] % 5) {
    case 0:
        fuzz_entry(&a, p, len);
        break;
    case 1:
        fuzz_batch(&a, p, len);
        break;
    case 2:
        fuzz_frames(p, slen);
        break;
    case 3:
        fuzz_server(p, slen, fix);
        break;
    default:
        fuzz_client(p, slen, fix);
        break;
    }
    arena_free(&a);
    free(p);
    return 0;
}

/* ----------------------------------------------------------------- seeds */

static void frame(buf *out, repl_frame_type t, const void *payload, size_t len)
{
    buf_put_u32be(out, (uint32_t)len + 1);
    buf_putc(out, (uint8_t)t);
    buf_append(out, payload, len);
}

static void save(const char *out_dir, const char *name, uint8_t mode, const buf *b)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fputc(mode, f);
    fwrite(b->data, 1, b->len, f);
    fclose(f);
}

static void hello_frame(buf *out, const char *region)
{
    buf p;
    buf_init(&p);
    buf_put_u16be(&p, REPL_PROTOCOL_VERSION);
    buf_putc(&p, (uint8_t)strlen(region));
    buf_puts(&p, region);
    buf_append(&p, fixed_nonce, REPL_NONCE_LEN);
    frame(out, REPL_F_HELLO, p.data, p.len);
    buf_free(&p);
}

/* A PUT (or TOMBSTONE) of item {pk: S pkv, sk: N skv, v: S val} in table "range". */
static void put_entry(buf *out, repl_kind kind, const char *pkv, const char *skv, const char *val,
                      uint64_t ts, const char *origin)
{
    arena a;
    arena_init(&a);
    err e;
    num n;
    if (num_parse(skv, strlen(skv), &n, &e) != 0) abort();
    mv_value *pk = mv_new_str(&a, MV_S, pkv, strlen(pkv));
    mv_value *sk = mv_new_num(&a, &n);
    mv_member m[3] = {
        {"pk", 2, pk}, {"sk", 2, sk}, {"v", 1, mv_new_str(&a, MV_S, val, strlen(val))}};
    mv_value *item = mv_new_map(&a, m, 3);
    buf kp, ks, data;
    buf_init(&kp);
    buf_init(&ks);
    buf_init(&data);
    key_encode_scalar(&kp, pk);
    key_encode_scalar(&ks, sk);
    if (kind != REPL_TOMBSTONE) item_encode(&data, item);
    repl_entry en = {
        .kind = kind,
        .ts = ts,
        .origin = origin,
        .prev_origin = "",
        .commit_ms = 1795219200000ULL,
        .pk = kp.data,
        .pk_len = kp.len,
        .sk = ks.data,
        .sk_len = ks.len,
        .data = data.data,
        .data_len = data.len,
    };
    memcpy(en.table_uid, uid_range, TABLE_UID_LEN);
    repl_entry_encode(out, &en);
    buf_free(&kp);
    buf_free(&ks);
    buf_free(&data);
    arena_free(&a);
}

/* A PUT of {id: B idv, x: N 1} in table "hash". */
static void put_hash_entry(buf *out, const uint8_t *idv, size_t idl, uint64_t ts)
{
    arena a;
    arena_init(&a);
    err e;
    num n;
    if (num_parse("1", 1, &n, &e) != 0) abort();
    mv_value *id = mv_new_str(&a, MV_B, (const char *)idv, idl);
    mv_member m[2] = {{"id", 2, id}, {"x", 1, mv_new_num(&a, &n)}};
    mv_value *item = mv_new_map(&a, m, 2);
    buf kp, data;
    buf_init(&kp);
    buf_init(&data);
    key_encode_scalar(&kp, id);
    item_encode(&data, item);
    repl_entry en = {.kind = REPL_BACKFILL_ITEM,
                     .ts = ts,
                     .origin = "eu-west-1",
                     .prev_origin = "",
                     .pk = kp.data,
                     .pk_len = kp.len,
                     .data = data.data,
                     .data_len = data.len};
    memcpy(en.table_uid, uid_hash, TABLE_UID_LEN);
    repl_entry_encode(out, &en);
    buf_free(&kp);
    buf_free(&data);
    arena_free(&a);
}

/* Writes the handshake-and-after seeds (modes 3 and 4); the decoder seeds
 * (modes 0-2) are older files of fuzz/corpus/fuzz_repl_frame. */
static void write_seeds(const char *out_dir)
{
    const uint64_t T = (uint64_t)1795219200000ULL << 16;
    buf s, b, en, hb, zero;
    buf_init(&s);
    buf_init(&b);
    buf_init(&en);
    buf_init(&hb);
    buf_init(&zero);
    for (int i = 0; i < REPL_PROOF_LEN; i++)
        buf_putc(&zero, 0);

    /* mode 3: HELLO, AUTH (fixed by the target), BATCH of puts, tombstone, back-fill item */
    hello_frame(&s, "eu-west-1");
    frame(&s, REPL_F_AUTH, zero.data, zero.len);
    buf_put_u64be(&b, 3); /* through */
    buf body;
    buf_init(&body);
    repl_batch_begin(&body);
    put_entry(&en, REPL_PUT, "p", "1", "one", T + 1, "eu-west-1");
    repl_batch_add(&body, 1, en.data, en.len);
    buf_reset(&en);
    put_entry(&en, REPL_PUT, "p", "2.5", "two", T + 2, "eu-west-1");
    repl_batch_add(&body, 2, en.data, en.len);
    buf_reset(&en);
    put_entry(&en, REPL_TOMBSTONE, "p", "1", "", T + 3, "eu-west-1");
    repl_batch_add(&body, 3, en.data, en.len);
    buf_reset(&en);
    put_hash_entry(&en, (const uint8_t *)"\x00\x01\xff", 3, T + 4);
    repl_batch_add(&body, 0, en.data, en.len);
    buf_reset(&en);
    repl_batch_finish(&body, 4);
    buf_append(&b, body.data, body.len);
    frame(&s, REPL_F_BATCH, b.data, b.len);
    buf_put_u64be(&hb, 3);
    buf_put_u64be(&hb, T + 3);
    buf_put_u64be(&hb, T);
    frame(&s, REPL_F_HEARTBEAT, hb.data, hb.len);
    save(out_dir, "hs_server_batch", 3, &s);

    /* mode 3: a concurrent older write from another origin (a conflict), re-sent batch */
    buf_reset(&s);
    hello_frame(&s, "ap-south-1");
    frame(&s, REPL_F_AUTH, zero.data, zero.len);
    buf_reset(&b);
    buf_put_u64be(&b, 7);
    repl_batch_begin(&body);
    put_entry(&en, REPL_PUT, "p", "2.5", "older", T, "ap-south-1");
    repl_batch_add(&body, 7, en.data, en.len);
    buf_reset(&en);
    put_entry(&en, REPL_PUT, "q", "-1e10", "new", T + 9, "ap-south-1");
    repl_batch_add(&body, 8, en.data, en.len);
    buf_reset(&en);
    repl_batch_finish(&body, 2);
    buf_append(&b, body.data, body.len);
    frame(&s, REPL_F_BATCH, b.data, b.len);
    frame(&s, REPL_F_BATCH, b.data, b.len);
    frame(&s, REPL_F_ERROR, "bye", 3);
    save(out_dir, "hs_server_conflict", 3, &s);

    /* mode 3 with bit 7: the AUTH proof is left wrong */
    buf_reset(&s);
    hello_frame(&s, "eu-west-1");
    frame(&s, REPL_F_AUTH, zero.data, zero.len);
    save(out_dir, "hs_server_badproof", 0x80 | 3, &s);

    /* mode 4: CHALLENGE (proof fixed by the target), START, ACKs */
    buf_reset(&s);
    buf_reset(&b);
    buf_putc(&b, 9);
    buf_puts(&b, "eu-west-1");
    buf_append(&b, fixed_nonce, REPL_NONCE_LEN);
    buf_append(&b, zero.data, zero.len);
    frame(&s, REPL_F_CHALLENGE, b.data, b.len);
    buf_reset(&b);
    buf_put_u64be(&b, 42);
    frame(&s, REPL_F_START, b.data, b.len);
    frame(&s, REPL_F_ACK, b.data, b.len);
    frame(&s, REPL_F_ACK, b.data, b.len);
    frame(&s, REPL_F_ERROR, "apply failed", 12);
    save(out_dir, "hs_client_start", 4, &s);

    buf_free(&body);
    buf_free(&s);
    buf_free(&b);
    buf_free(&en);
    buf_free(&hb);
    buf_free(&zero);
}
