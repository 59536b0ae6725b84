/* wire.c - the replication protocol's bytes (see wire.h): log-entry codec,
 * BATCH payloads, frame I/O on a socket and the mutual-proof handshake.
 *
 * Entry (format 1), all integers big-endian, "varint" = unsigned LEB128 in
 * its shortest form (a longer encoding of the same value is rejected, so a
 * decodable entry has exactly one encoding):
 *   u8  format        1
 *   u8  kind          repl_kind, 1..6
 *   u8  flags         only REPL_FLAG_TOMBSTONE may be set
 *   16  table_uid
 *   u64 ts
 *   varint len, origin bytes        region name: 0..64 bytes of [A-Za-z0-9._-]
 *   u64 prev_ts
 *   varint len, prev_origin bytes   same rules ("" when there is none)
 *   u64 commit_ms
 *   varint len, pk bytes
 *   u8  sk present (0 or 1); if 1: varint len, sk bytes
 *   varint len, data bytes
 * and nothing after it. The decoder checks every length against the bytes
 * left before reading, copies the two region names into the arena
 * NUL-terminated and points pk/sk/data into the input. The codec checks the
 * structure only (an empty origin decodes); what an entry means is the
 * caller's business. The encoder's inputs come from this process, so a
 * malformed one (kind out of range, unknown flag, bad region name, NULL with
 * a length) is a bug: it aborts with a message rather than write an entry
 * that no region could ever decode.
 *
 * BATCH payload: u32 count | count x (u64 seq | varint len | entry bytes).
 * repl_batch_begin() discards out's contents and writes a zero count at
 * offset 0, repl_batch_add() appends, repl_batch_finish() stores the count at
 * offset 0. repl_batch_parse() bounds the declared count by the payload size
 * (each item takes at least 9 bytes) before allocating, and rejects short
 * items, lengths past the end, count mismatches and trailing bytes.
 *
 * Frame: u32 length of (type + payload) | u8 type | payload; 1 <= length <=
 * REPL_FRAME_MAX. Sends use one sendmsg() with two iovecs (header and
 * payload go out together: no Nagle stall between them) with MSG_NOSIGNAL |
 * MSG_DONTWAIT; receives use recv() with MSG_DONTWAIT, never asking for more
 * than the current frame so the next frame stays in the socket. Either way a
 * call tries the operation first and poll()s only on EAGAIN, so the socket may
 * be blocking or not. timeout_ms bounds the whole call (CLOCK_MONOTONIC
 * deadline, EINTR and early wake-ups recomputed against it); a negative
 * timeout waits forever, 0 does what is possible without waiting. The
 * length is checked as soon as its 4 bytes arrive (0 or over the limit:
 * ERR_VALIDATION); the payload buffer grows as bytes arrive (at most 256 KiB
 * ahead), so a declared length alone makes nothing allocate. Timeouts, EOF
 * and socket errors are ERR_UNAVAILABLE. Unknown frame types are returned.
 *
 * Handshake payloads (region: u8 len + bytes, 1..64 of [A-Za-z0-9._-]):
 *   HELLO      u16 version | region | nonce_c[32]
 *   CHALLENGE  region | nonce_s[32] | proof_s[32]
 *   AUTH       proof_c[32]
 *   START      u64 from_seq
 *   ERROR      reason bytes (printable text; quoted back sanitized, <= 200 bytes)
 * proof = HMAC-SHA256(key, "meridian-repl-1|" role "|" client_region "|"
 * server_region "|" nonce_c "|" nonce_s) (nonces raw; names cannot hold '|'),
 * compared with CRYPTO_memcmp; nonces come from RAND_bytes (tests may substitute
 * a fixed source: repl_wire_set_nonce_source). The timeout
 * bounds the whole handshake; its frames may be at most 4 KiB, so a peer
 * that has proven nothing cannot make us allocate more. Order of checks:
 *   server: HELLO well formed (else ERROR + ERR_VALIDATION) -> version equal
 *           (ERROR + ERR_VALIDATION) -> region valid and not our own
 *           (ERROR + ERR_VALIDATION) -> CHALLENGE -> AUTH well formed ->
 *           proof_c right (else ERROR + ERR_ACCESS_DENIED) -> accept_region
 *           (else ERROR + ERR_VALIDATION) -> START {position_for()}.
 *           accept_region is asked only after the proof, so a peer without
 *           the key cannot probe which region names the cluster accepts.
 *   client: CHALLENGE well formed -> proof_s right (else ERROR to the server
 *           and ERR_ACCESS_DENIED "peer failed to prove the cluster key": a
 *           server without the key never gets a proof_c) -> server region not
 *           ours -> AUTH -> START.
 * An ERROR frame from the peer fails the handshake with ERR_ACCESS_DENIED
 * ("peer refused: <reason>"). Messages are prefixed "replication handshake: ".
 * peer_region and from_seq are written only on success (peer_region is set
 * to "" first). An empty key (or one over INT_MAX bytes) is refused before
 * any I/O.
 */
#include "repl/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define ENTRY_FORMAT     1
#define FRAME_HDR_LEN    5
#define IO_CHUNK         (256u * 1024) /* payload bytes reserved ahead of a recv */
#define HS_FRAME_MAX     4096          /* longest frame accepted during the handshake */
#define HS_LABEL         "meridian-repl-1"
#define HS_PREFIX        "replication handshake: "
#define HS_MAC_INPUT_MAX 256  /* label + role + 2 regions + 2 nonces + separators */
#define ERROR_SEND_MS    1000 /* cap on the best-effort ERROR before failing */
#define REASON_MAX       200  /* longest peer reason quoted in our messages */
#define BATCH_ITEM_MIN   9    /* u64 seq + 1-byte varint length */

/* ---------------------------------------------------------------- helpers */

static void wire_bug(const char *what)
{
    fprintf(stderr, "meridian: repl/wire: %s\n", what);
    abort();
}

static bool region_char_ok(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Index of the first byte outside the region alphabet, or len if none. */
static size_t region_bad_char(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!region_char_ok(s[i])) return i;
    return len;
}

/* A region name for the handshake: 1..REPL_REGION_MAX bytes of the alphabet. */
static bool region_name_ok(const char *s)
{
    if (!s) return false;
    size_t len = strnlen(s, REPL_REGION_MAX + 1);
    return len >= 1 && len <= REPL_REGION_MAX && region_bad_char((const uint8_t *)s, len) == len;
}

/* ------------------------------------------------------------------ entry */

static void put_bytes(buf *out, const void *p, size_t len)
{
    buf_put_varint(out, len);
    buf_append(out, p, len);
}

static size_t encoded_region_len(const char *s, const char *what)
{
    size_t len = strnlen(s, REPL_REGION_MAX + 1);
    if (len > REPL_REGION_MAX || region_bad_char((const uint8_t *)s, len) != len) wire_bug(what);
    return len;
}

void repl_entry_encode(buf *out, const repl_entry *e)
{
    const char *origin = e->origin ? e->origin : "";
    const char *prev = e->prev_origin ? e->prev_origin : "";
    if (e->kind < REPL_PUT || e->kind > REPL_BACKFILL_END)
        wire_bug("repl_entry_encode: kind out of range");
    if (e->flags & ~REPL_FLAG_TOMBSTONE) wire_bug("repl_entry_encode: unknown flag bits");
    if ((!e->pk && e->pk_len) || (!e->sk && e->sk_len) || (!e->data && e->data_len))
        wire_bug("repl_entry_encode: NULL bytes with a non-zero length");
    size_t olen = encoded_region_len(origin, "repl_entry_encode: invalid origin region name");
    size_t plen = encoded_region_len(prev, "repl_entry_encode: invalid prev_origin region name");

    /* 3 bytes + uid + 3 u64 + 6 varints (<= 10 bytes each) + sk flag */
    buf_reserve(out,
                3 + REPL_UID_LEN + 24 + 60 + 1 + olen + plen + e->pk_len + e->sk_len + e->data_len);
    buf_putc(out, ENTRY_FORMAT);
    buf_putc(out, (uint8_t)e->kind);
    buf_putc(out, e->flags);
    buf_append(out, e->table_uid, REPL_UID_LEN);
    buf_put_u64be(out, e->ts);
    put_bytes(out, origin, olen);
    buf_put_u64be(out, e->prev_ts);
    put_bytes(out, prev, plen);
    buf_put_u64be(out, e->commit_ms);
    put_bytes(out, e->pk, e->pk_len);
    if (e->sk) {
        buf_putc(out, 1);
        put_bytes(out, e->sk, e->sk_len);
    } else {
        buf_putc(out, 0);
    }
    put_bytes(out, e->data, e->data_len);
}

/* Bounds-checked cursor over [start, end); ctx names the structure in messages. */
typedef struct reader {
    const uint8_t *start;
    const uint8_t *p;
    const uint8_t *end;
    const char *ctx;
} reader;

static size_t rd_left(const reader *r)
{
    return (size_t)(r->end - r->p);
}

static size_t rd_off(const reader *r)
{
    return (size_t)(r->p - r->start);
}

static int rd_need(const reader *r, size_t n, const char *what, err *e)
{
    if (rd_left(r) >= n) return 0;
    return err_validation(e, "%s: truncated at byte %zu reading %s (%zu needed, %zu left)", r->ctx,
                          rd_off(r), what, n, rd_left(r));
}

static int rd_u8(reader *r, const char *what, uint8_t *v, err *e)
{
    if (rd_need(r, 1, what, e) != 0) return -1;
    *v = *r->p++;
    return 0;
}

static int rd_u64(reader *r, const char *what, uint64_t *v, err *e)
{
    if (rd_need(r, 8, what, e) != 0) return -1;
    *v = load_u64be(r->p);
    r->p += 8;
    return 0;
}

/* A shortest-form varint length that fits in the bytes left after it. */
static int rd_len(reader *r, const char *what, size_t *len, err *e)
{
    const uint8_t *q = r->p;
    uint64_t v;
    if (varint_read(&q, r->end, &v) != 0)
        return err_validation(e, "%s: truncated or overlong length of %s at byte %zu", r->ctx, what,
                              rd_off(r));
    if (q - r->p > 1 && q[-1] == 0)
        return err_validation(e, "%s: length of %s at byte %zu is not in shortest form", r->ctx,
                              what, rd_off(r));
    size_t left = (size_t)(r->end - q);
    if (v > left)
        return err_validation(
            e, "%s: %s of %" PRIu64 " bytes at byte %zu runs past the end (%zu left)", r->ctx, what,
            v, rd_off(r), left);
    r->p = q;
    *len = (size_t)v;
    return 0;
}

static int rd_bytes(reader *r, const char *what, const uint8_t **p, size_t *len, err *e)
{
    if (rd_len(r, what, len, e) != 0) return -1;
    *p = r->p;
    r->p += *len;
    return 0;
}

/* An entry's region name (may be empty), copied NUL-terminated into a. */
static int rd_region(reader *r, arena *a, const char *what, const char **out, err *e)
{
    size_t at = rd_off(r);
    const uint8_t *p;
    size_t len;
    if (rd_bytes(r, what, &p, &len, e) != 0) return -1;
    if (len > REPL_REGION_MAX)
        return err_validation(e, "%s: %s at byte %zu is %zu bytes long (at most %d)", r->ctx, what,
                              at, len, REPL_REGION_MAX);
    size_t bad = region_bad_char(p, len);
    if (bad != len)
        return err_validation(e, "%s: %s at byte %zu contains byte 0x%02x (allowed: A-Za-z0-9._-)",
                              r->ctx, what, at, p[bad]);
    *out = arena_memdup(a, p, len);
    return 0;
}

int repl_entry_decode(arena *a, const uint8_t *p, size_t len, repl_entry *out, err *e)
{
    reader r = {.start = p, .p = p, .end = p + len, .ctx = "replication entry"};
    repl_entry x;
    memset(&x, 0, sizeof(x));
    uint8_t format, kind, sk_present;
    const uint8_t *uid;
    size_t uid_len = REPL_UID_LEN;

    if (!p && len) return err_validation(e, "replication entry: NULL input");
    if (rd_u8(&r, "the format byte", &format, e) != 0) return -1;
    if (format != ENTRY_FORMAT)
        return err_validation(e, "replication entry: unknown format %u (this build reads %d)",
                              format, ENTRY_FORMAT);
    if (rd_u8(&r, "the kind", &kind, e) != 0) return -1;
    if (kind < REPL_PUT || kind > REPL_BACKFILL_END)
        return err_validation(e, "replication entry: unknown kind %u", kind);
    x.kind = (repl_kind)kind;
    if (rd_u8(&r, "the flags", &x.flags, e) != 0) return -1;
    if (x.flags & ~REPL_FLAG_TOMBSTONE)
        return err_validation(e, "replication entry: unknown flags 0x%02x", x.flags);
    if (rd_need(&r, uid_len, "the table uid", e) != 0) return -1;
    uid = r.p;
    memcpy(x.table_uid, uid, uid_len);
    r.p += uid_len;
    if (rd_u64(&r, "the timestamp", &x.ts, e) != 0) return -1;
    if (rd_region(&r, a, "the origin region", &x.origin, e) != 0) return -1;
    if (rd_u64(&r, "the previous timestamp", &x.prev_ts, e) != 0) return -1;
    if (rd_region(&r, a, "the previous origin region", &x.prev_origin, e) != 0) return -1;
    if (rd_u64(&r, "the commit time", &x.commit_ms, e) != 0) return -1;
    if (rd_bytes(&r, "the partition key", &x.pk, &x.pk_len, e) != 0) return -1;
    if (rd_u8(&r, "the sort key flag", &sk_present, e) != 0) return -1;
    if (sk_present > 1)
        return err_validation(e, "replication entry: sort key flag at byte %zu is %u (0 or 1)",
                              rd_off(&r) - 1, sk_present);
    if (sk_present && rd_bytes(&r, "the sort key", &x.sk, &x.sk_len, e) != 0) return -1;
    if (rd_bytes(&r, "the data", &x.data, &x.data_len, e) != 0) return -1;
    if (rd_left(&r) != 0)
        return err_validation(e, "replication entry: %zu trailing bytes after byte %zu",
                              rd_left(&r), rd_off(&r));
    *out = x;
    return 0;
}

/* ------------------------------------------------------------------ batch */

void repl_batch_begin(buf *out)
{
    buf_reset(out);
    buf_put_u32be(out, 0);
}

void repl_batch_add(buf *out, uint64_t seq, const uint8_t *entry, size_t len)
{
    if (out->len < 4) wire_bug("repl_batch_add without repl_batch_begin");
    if (!entry && len) wire_bug("repl_batch_add: NULL entry with a non-zero length");
    buf_reserve(out, 8 + 10 + len);
    buf_put_u64be(out, seq);
    put_bytes(out, entry, len);
}

void repl_batch_finish(buf *out, uint32_t count)
{
    if (out->len < 4) wire_bug("repl_batch_finish without repl_batch_begin");
    store_u32be(out->data, count);
}

int repl_batch_parse(arena *a, const uint8_t *p, size_t len, repl_batch_item **items, size_t *n,
                     err *e)
{
    reader r = {.start = p, .p = p, .end = p + len, .ctx = "BATCH payload"};
    *items = NULL;
    *n = 0;
    if (!p && len) return err_validation(e, "BATCH payload: NULL input");
    if (len < 4)
        return err_validation(e, "BATCH payload: %zu bytes is too short for the entry count", len);
    uint32_t count = load_u32be(p);
    r.p += 4;
    if (count > rd_left(&r) / BATCH_ITEM_MIN)
        return err_validation(
            e, "BATCH payload: declares %" PRIu32 " entries but holds only %zu bytes", count, len);
    repl_batch_item *it = count ? arena_alloc(a, count * sizeof(*it)) : NULL;
    for (uint32_t i = 0; i < count; i++) {
        if (rd_u64(&r, "a sequence number", &it[i].seq, e) != 0) return -1;
        if (rd_bytes(&r, "an entry", &it[i].entry, &it[i].len, e) != 0) return -1;
    }
    if (rd_left(&r) != 0)
        return err_validation(e, "BATCH payload: %zu bytes after the %" PRIu32 " declared entries",
                              rd_left(&r), count);
    *items = it;
    *n = count;
    return 0;
}

/* -------------------------------------------------------------- frame I/O */

typedef struct deadline {
    int64_t at_ms;  /* CLOCK_MONOTONIC ms; < 0: none */
    int timeout_ms; /* as given, for messages */
} deadline;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static deadline deadline_in(int timeout_ms)
{
    deadline d = {.at_ms = -1, .timeout_ms = timeout_ms};
    if (timeout_ms >= 0) d.at_ms = mono_ms() + timeout_ms;
    return d;
}

/* Milliseconds left (0 when passed), or -1 for no deadline. */
static int deadline_left(const deadline *d)
{
    if (d->at_ms < 0) return -1;
    int64_t left = d->at_ms - mono_ms();
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

typedef enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_ERROR } wait_result;

/* Waits for events on fd until the deadline; WAIT_ERROR leaves errno set. */
static wait_result wait_ready(int fd, short events, const deadline *d)
{
    for (;;) {
        int left = deadline_left(d);
        if (left == 0) return WAIT_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        int r = poll(&pfd, 1, left);
        if (r > 0) {
            if (pfd.revents & POLLNVAL) {
                errno = EBADF;
                return WAIT_ERROR;
            }
            return WAIT_READY; /* POLLERR/POLLHUP: the next call reports it */
        }
        if (r < 0 && errno != EINTR) return WAIT_ERROR;
        /* r == 0 (possibly early by rounding) or EINTR: re-check the deadline */
    }
}

static int frame_send(int fd, repl_frame_type type, const void *payload, size_t len,
                      const deadline *d, err *e)
{
    if ((unsigned)type > 0xff)
        return err_validation(e, "cannot send frame type %u: types are one byte", (unsigned)type);
    if (len > REPL_FRAME_MAX - 1)
        return err_validation(e, "cannot send a frame with a %zu-byte payload (limit %u)", len,
                              REPL_FRAME_MAX - 1);
    if (!payload && len) return err_validation(e, "cannot send a frame: NULL payload");

    uint8_t hdr[FRAME_HDR_LEN];
    store_u32be(hdr, (uint32_t)(len + 1));
    hdr[4] = (uint8_t)type;
    struct iovec iov[2] = {{.iov_base = hdr, .iov_len = sizeof(hdr)},
                           {.iov_base = (void *)payload, .iov_len = len}};
    struct iovec *v = iov;
    int nv = len ? 2 : 1;
    size_t total = sizeof(hdr) + len, sent = 0;

    while (sent < total) {
        struct msghdr m;
        memset(&m, 0, sizeof(m));
        m.msg_iov = v;
        m.msg_iovlen = (size_t)nv;
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            size_t k = (size_t)n;
            while (nv > 0 && k >= v->iov_len) {
                k -= v->iov_len;
                v++;
                nv--;
            }
            if (nv > 0) {
                v->iov_base = (uint8_t *)v->iov_base + k;
                v->iov_len -= k;
            }
            continue;
        }
        if (n == 0)
            return err_set(e, ERR_UNAVAILABLE, "send made no progress (%zu of %zu bytes sent)",
                           sent, total);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            wait_result w = wait_ready(fd, POLLOUT, d);
            if (w == WAIT_READY) continue;
            if (w == WAIT_TIMEOUT)
                return err_set(e, ERR_UNAVAILABLE,
                               "timed out after %d ms sending a frame (%zu of %zu bytes sent)",
                               d->timeout_ms, sent, total);
            return err_set(e, ERR_UNAVAILABLE, "poll failed while sending a frame: %s",
                           strerror(errno));
        }
        if (errno == EPIPE || errno == ECONNRESET)
            return err_set(e, ERR_UNAVAILABLE,
                           "peer closed the connection while a frame was being sent (%zu of %zu "
                           "bytes sent)",
                           sent, total);
        return err_set(e, ERR_UNAVAILABLE, "send failed: %s", strerror(errno));
    }
    return 0;
}

typedef enum recv_result { RECV_OK, RECV_EOF, RECV_TIMEOUT, RECV_ERROR } recv_result;

/* Reads 1..want bytes into p (*got = count). RECV_ERROR leaves errno set. */
static recv_result recv_some(int fd, void *p, size_t want, const deadline *d, size_t *got)
{
    for (;;) {
        ssize_t n = recv(fd, p, want, MSG_DONTWAIT);
        if (n > 0) {
            *got = (size_t)n;
            return RECV_OK;
        }
        if (n == 0) return RECV_EOF;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return RECV_ERROR;
        wait_result w = wait_ready(fd, POLLIN, d);
        if (w == WAIT_TIMEOUT) return RECV_TIMEOUT;
        if (w == WAIT_ERROR) return RECV_ERROR;
    }
}

/* The error for a failed read after `have` bytes of a frame of `total` bytes
 * (0: length not known yet). */
static int recv_fail(recv_result rr, size_t have, size_t total, const deadline *d, err *e)
{
    int saved_errno = errno; /* snprintf below may clobber it */
    char progress[96] = "";
    if (have && total)
        snprintf(progress, sizeof(progress), " (got %zu of %zu bytes)", have, total);
    else if (have)
        snprintf(progress, sizeof(progress), " (got %zu bytes of the header)", have);
    switch (rr) {
    case RECV_EOF:
        if (!have) return err_set(e, ERR_UNAVAILABLE, "peer closed the connection");
        return err_set(e, ERR_UNAVAILABLE, "peer closed the connection mid-frame%s", progress);
    case RECV_TIMEOUT:
        return err_set(e, ERR_UNAVAILABLE, "timed out after %d ms reading a frame%s", d->timeout_ms,
                       progress);
    case RECV_ERROR:
        if (saved_errno == ECONNRESET)
            return err_set(e, ERR_UNAVAILABLE, "connection reset by peer%s", progress);
        return err_set(e, ERR_UNAVAILABLE, "recv failed: %s%s", strerror(saved_errno), progress);
    case RECV_OK:
        break;
    }
    return err_set(e, ERR_INTERNAL, "recv_fail called without a failure");
}

static int frame_recv(int fd, repl_frame_type *type, buf *payload, size_t max_len,
                      const deadline *d, err *e)
{
    uint8_t hdr[FRAME_HDR_LEN];
    size_t have = 0, got = 0;
    uint32_t flen = 0;
    recv_result rr;

    buf_reset(payload);
    while (have < FRAME_HDR_LEN) {
        /* Up to the length first, so a bad length is reported without
         * waiting for a type byte that may never come. */
        size_t want = (have < 4 ? 4 : FRAME_HDR_LEN) - have;
        rr = recv_some(fd, hdr + have, want, d, &got);
        if (rr != RECV_OK) return recv_fail(rr, have, flen ? FRAME_HDR_LEN - 1 + flen : 0, d, e);
        have += got;
        if (have == 4) {
            flen = load_u32be(hdr);
            if (flen == 0) return err_validation(e, "malformed frame: length 0");
            if (flen > max_len)
                return err_validation(
                    e, "malformed frame: length %" PRIu32 " exceeds the limit of %zu", flen,
                    max_len);
        }
    }
    size_t total = 4 + (size_t)flen, left = (size_t)flen - 1;
    while (left > 0) {
        size_t chunk = left < IO_CHUNK ? left : IO_CHUNK;
        buf_reserve(payload, chunk);
        rr = recv_some(fd, payload->data + payload->len, chunk, d, &got);
        if (rr != RECV_OK) {
            size_t so_far = FRAME_HDR_LEN + payload->len;
            buf_reset(payload);
            return recv_fail(rr, so_far, total, d, e);
        }
        payload->len += got;
        left -= got;
    }
    if (payload->data) payload->data[payload->len] = 0; /* buf keeps a NUL after the bytes */
    *type = (repl_frame_type)hdr[4];
    return 0;
}

int repl_frame_send(int fd, repl_frame_type type, const void *payload, size_t len, int timeout_ms,
                    err *e)
{
    deadline d = deadline_in(timeout_ms);
    return frame_send(fd, type, payload, len, &d, e);
}

int repl_frame_recv(int fd, repl_frame_type *type, buf *payload, int timeout_ms, err *e)
{
    deadline d = deadline_in(timeout_ms);
    return frame_recv(fd, type, payload, REPL_FRAME_MAX, &d, e);
}

/* ---------------------------------------------------------------- payloads */

void repl_put_u64(buf *out, uint64_t v)
{
    buf_put_u64be(out, v);
}

int repl_get_u64(const buf *payload, size_t off, uint64_t *v)
{
    if (off > payload->len || payload->len - off < 8) return -1;
    *v = load_u64be(payload->data + off);
    return 0;
}

/* -------------------------------------------------------------- handshake */

typedef struct hs {
    int fd;
    deadline d;
    err *e;
} hs;

/* Prefixes e's message with HS_PREFIX; returns -1. */
static int hs_fail(hs *h)
{
    err *e = h->e;
    if (!e) return -1;
    size_t plen = sizeof(HS_PREFIX) - 1, mlen = strnlen(e->msg, sizeof(e->msg) - 1);
    if (plen + mlen > sizeof(e->msg) - 1) mlen = sizeof(e->msg) - 1 - plen;
    memmove(e->msg + plen, e->msg, mlen);
    memcpy(e->msg, HS_PREFIX, plen);
    e->msg[plen + mlen] = '\0';
    return -1;
}

/* Best-effort ERROR frame to the peer; the connection is failing anyway. */
static void hs_send_error(hs *h, const char *reason)
{
    int left = deadline_left(&h->d);
    deadline d = deadline_in(left < 0 || left > ERROR_SEND_MS ? ERROR_SEND_MS : left);
    err ignored;
    (void)frame_send(h->fd, REPL_F_ERROR, reason, strlen(reason), &d, &ignored);
}

/* Sends ERROR {reason} and fails with code and the printf-style message. */
static int hs_refuse(hs *h, const char *reason, err_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int hs_refuse(hs *h, const char *reason, err_code code, const char *fmt, ...)
{
    hs_send_error(h, reason);
    if (h->e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->e->msg, sizeof(h->e->msg), fmt, ap);
        va_end(ap);
        h->e->code = code;
    }
    return hs_fail(h);
}

static int hs_send(hs *h, repl_frame_type type, const buf *p)
{
    if (frame_send(h->fd, type, p->data, p->len, &h->d, h->e) != 0) return hs_fail(h);
    return 0;
}

/* Printable ASCII copy of a peer's ERROR reason, at most REASON_MAX bytes. */
static void quote_reason(const buf *p, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->len && n + 4 < cap && i < REASON_MAX; i++)
        out[n++] = (p->data[i] >= 0x20 && p->data[i] < 0x7f) ? (char)p->data[i] : '?';
    if (p->len > REASON_MAX && n + 4 <= cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Receives the frame the handshake expects next. An ERROR from the peer is
 * a refusal (ERR_ACCESS_DENIED); any other type is a protocol error. */
static int hs_recv(hs *h, repl_frame_type want, const char *want_name, buf *p)
{
    repl_frame_type t;
    if (frame_recv(h->fd, &t, p, HS_FRAME_MAX, &h->d, h->e) != 0) {
        if (h->e && h->e->code == ERR_VALIDATION) hs_send_error(h, "malformed frame");
        return hs_fail(h);
    }
    if (t == want) return 0;
    if (t == REPL_F_ERROR) {
        char reason[REASON_MAX + 8];
        quote_reason(p, reason, sizeof(reason));
        err_set(h->e, ERR_ACCESS_DENIED, "peer refused: %s", reason);
        return hs_fail(h);
    }
    return hs_refuse(h, "unexpected frame type", ERR_VALIDATION, "expected %s, got frame type %u",
                     want_name, (unsigned)t);
}

/* Reads a u8-length region name at *off of p into out (REPL_REGION_MAX + 1). */
static bool hs_get_region(const buf *p, size_t *off, char *out)
{
    if (*off >= p->len) return false;
    size_t len = p->data[*off];
    if (len < 1 || len > REPL_REGION_MAX || p->len - *off - 1 < len) return false;
    const uint8_t *s = p->data + *off + 1;
    if (region_bad_char(s, len) != len) return false;
    memcpy(out, s, len);
    out[len] = '\0';
    *off += 1 + len;
    return true;
}

static void hs_put_region(buf *p, const char *region)
{
    size_t len = strlen(region); /* validated: 1..REPL_REGION_MAX */
    buf_putc(p, (uint8_t)len);
    buf_append(p, region, len);
}

static int hs_proof(const uint8_t *key, size_t key_len, const char *role, const char *client_region,
                    const char *server_region, const uint8_t *nonce_c, const uint8_t *nonce_s,
                    uint8_t out[REPL_PROOF_LEN], err *e)
{
    uint8_t msg[HS_MAC_INPUT_MAX];
    int n = snprintf((char *)msg, sizeof(msg), HS_LABEL "|%s|%s|%s|", role, client_region,
                     server_region);
    if (n < 0 || (size_t)n + 2 * REPL_NONCE_LEN + 1 > sizeof(msg))
        return err_set(e, ERR_INTERNAL, HS_PREFIX "proof input too long");
    size_t len = (size_t)n;
    memcpy(msg + len, nonce_c, REPL_NONCE_LEN);
    len += REPL_NONCE_LEN;
    msg[len++] = '|';
    memcpy(msg + len, nonce_s, REPL_NONCE_LEN);
    len += REPL_NONCE_LEN;
    unsigned int out_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &out_len) ||
        out_len != REPL_PROOF_LEN)
        return err_set(e, ERR_INTERNAL, HS_PREFIX "HMAC-SHA256 failed");
    return 0;
}

static int rand_nonce(uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

static repl_nonce_source nonce_source = rand_nonce;

void repl_wire_set_nonce_source(repl_nonce_source fn)
{
    nonce_source = fn ? fn : rand_nonce;
}

static int hs_check_args(const uint8_t *key, size_t key_len, const char *my_region, err *e)
{
    if (!key || key_len == 0) return err_validation(e, HS_PREFIX "the cluster key is empty");
    if (key_len > INT_MAX) return err_validation(e, HS_PREFIX "the cluster key is too long");
    if (!region_name_ok(my_region))
        return err_validation(e,
                              HS_PREFIX "this region's name is not 1..%d characters of "
                                        "[A-Za-z0-9._-]",
                              REPL_REGION_MAX);
    return 0;
}

int repl_handshake_client(int fd, const uint8_t *key, size_t key_len, const char *my_region,
                          char *peer_region, uint64_t *from_seq, int timeout_ms, err *e)
{
    hs h = {.fd = fd, .d = deadline_in(timeout_ms), .e = e};
    uint8_t nonce_c[REPL_NONCE_LEN], nonce_s[REPL_NONCE_LEN];
    uint8_t want_s[REPL_PROOF_LEN], proof_c[REPL_PROOF_LEN];
    char server_region[REPL_REGION_MAX + 1];
    buf p;
    int rc = -1;

    peer_region[0] = '\0';
    if (hs_check_args(key, key_len, my_region, e) != 0) return -1;
    if (nonce_source(nonce_c, sizeof(nonce_c)) != 0)
        return err_set(e, ERR_INTERNAL, HS_PREFIX "RAND_bytes failed");

    buf_init(&p);
    buf_put_u16be(&p, REPL_PROTOCOL_VERSION);
    hs_put_region(&p, my_region);
    buf_append(&p, nonce_c, sizeof(nonce_c));
    if (hs_send(&h, REPL_F_HELLO, &p) != 0) goto out;

    if (hs_recv(&h, REPL_F_CHALLENGE, "CHALLENGE", &p) != 0) goto out;
    size_t off = 0;
    if (!hs_get_region(&p, &off, server_region) || p.len - off != REPL_NONCE_LEN + REPL_PROOF_LEN) {
        hs_refuse(&h, "malformed CHALLENGE", ERR_VALIDATION,
                  "malformed CHALLENGE (%zu bytes; region must be 1..%d characters of "
                  "[A-Za-z0-9._-])",
                  p.len, REPL_REGION_MAX);
        goto out;
    }
    memcpy(nonce_s, p.data + off, REPL_NONCE_LEN);
    if (hs_proof(key, key_len, "server", my_region, server_region, nonce_c, nonce_s, want_s, e) !=
        0)
        goto out;
    if (CRYPTO_memcmp(want_s, p.data + off + REPL_NONCE_LEN, REPL_PROOF_LEN) != 0) {
        hs_refuse(&h, "cluster key mismatch", ERR_ACCESS_DENIED,
                  "peer failed to prove the cluster key");
        goto out;
    }
    if (strcmp(server_region, my_region) == 0) {
        hs_refuse(&h, "both sides claim the same region", ERR_VALIDATION,
                  "peer claims this region's own name '%s'", my_region);
        goto out;
    }

    if (hs_proof(key, key_len, "client", my_region, server_region, nonce_c, nonce_s, proof_c, e) !=
        0)
        goto out;
    buf_reset(&p);
    buf_append(&p, proof_c, sizeof(proof_c));
    if (hs_send(&h, REPL_F_AUTH, &p) != 0) goto out;

    if (hs_recv(&h, REPL_F_START, "START", &p) != 0) goto out;
    uint64_t seq;
    if (p.len != 8 || repl_get_u64(&p, 0, &seq) != 0) {
        hs_refuse(&h, "malformed START", ERR_VALIDATION, "malformed START (%zu bytes, want 8)",
                  p.len);
        goto out;
    }
    memcpy(peer_region, server_region, strlen(server_region) + 1);
    *from_seq = seq;
    rc = 0;
out:
    buf_free(&p);
    return rc;
}

int repl_handshake_server(int fd, const uint8_t *key, size_t key_len, const char *my_region,
                          const repl_server_hooks *hooks, char *peer_region, int timeout_ms, err *e)
{
    hs h = {.fd = fd, .d = deadline_in(timeout_ms), .e = e};
    uint8_t nonce_c[REPL_NONCE_LEN], nonce_s[REPL_NONCE_LEN];
    uint8_t proof_s[REPL_PROOF_LEN], want_c[REPL_PROOF_LEN];
    char client_region[REPL_REGION_MAX + 1];
    buf p;
    int rc = -1;

    peer_region[0] = '\0';
    if (hs_check_args(key, key_len, my_region, e) != 0) return -1;
    if (!hooks || !hooks->accept_region || !hooks->position_for)
        return err_validation(e, HS_PREFIX "server hooks are missing");

    buf_init(&p);
    if (hs_recv(&h, REPL_F_HELLO, "HELLO", &p) != 0) goto out;
    if (p.len < 2) {
        hs_refuse(&h, "malformed HELLO", ERR_VALIDATION, "malformed HELLO (%zu bytes)", p.len);
        goto out;
    }
    unsigned version = (unsigned)p.data[0] << 8 | p.data[1];
    if (version != REPL_PROTOCOL_VERSION) {
        char reason[64];
        snprintf(reason, sizeof(reason), "unsupported protocol version %u (server speaks %d)",
                 version, REPL_PROTOCOL_VERSION);
        hs_refuse(&h, reason, ERR_VALIDATION, "peer speaks protocol version %u, this server %d",
                  version, REPL_PROTOCOL_VERSION);
        goto out;
    }
    size_t off = 2;
    if (!hs_get_region(&p, &off, client_region) || p.len - off != REPL_NONCE_LEN) {
        hs_refuse(&h, "malformed HELLO", ERR_VALIDATION,
                  "malformed HELLO (%zu bytes; region must be 1..%d characters of "
                  "[A-Za-z0-9._-])",
                  p.len, REPL_REGION_MAX);
        goto out;
    }
    memcpy(nonce_c, p.data + off, REPL_NONCE_LEN);
    if (strcmp(client_region, my_region) == 0) {
        hs_refuse(&h, "region name is the server's own", ERR_VALIDATION,
                  "peer claims this server's own region '%s'", my_region);
        goto out;
    }

    if (nonce_source(nonce_s, sizeof(nonce_s)) != 0) {
        hs_refuse(&h, "internal error", ERR_INTERNAL, "RAND_bytes failed");
        goto out;
    }
    if (hs_proof(key, key_len, "server", client_region, my_region, nonce_c, nonce_s, proof_s, e) !=
            0 ||
        hs_proof(key, key_len, "client", client_region, my_region, nonce_c, nonce_s, want_c, e) !=
            0) {
        hs_send_error(&h, "internal error");
        goto out;
    }
    buf_reset(&p);
    hs_put_region(&p, my_region);
    buf_append(&p, nonce_s, sizeof(nonce_s));
    buf_append(&p, proof_s, sizeof(proof_s));
    if (hs_send(&h, REPL_F_CHALLENGE, &p) != 0) goto out;

    if (hs_recv(&h, REPL_F_AUTH, "AUTH", &p) != 0) goto out;
    if (p.len != REPL_PROOF_LEN) {
        hs_refuse(&h, "malformed AUTH", ERR_VALIDATION, "malformed AUTH (%zu bytes, want %d)",
                  p.len, REPL_PROOF_LEN);
        goto out;
    }
    if (CRYPTO_memcmp(want_c, p.data, REPL_PROOF_LEN) != 0) {
        hs_refuse(&h, "authentication failed", ERR_ACCESS_DENIED,
                  "peer failed to prove the cluster key");
        goto out;
    }
    if (!hooks->accept_region(hooks->ctx, client_region)) {
        hs_refuse(&h, "region not accepted", ERR_VALIDATION,
                  "region '%s' is not accepted by this server", client_region);
        goto out;
    }

    buf_reset(&p);
    repl_put_u64(&p, hooks->position_for(hooks->ctx, client_region));
    if (hs_send(&h, REPL_F_START, &p) != 0) goto out;
    memcpy(peer_region, client_region, strlen(client_region) + 1);
    rc = 0;
out:
    buf_free(&p);
    return rc;
}
