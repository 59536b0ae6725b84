/* wire.h - the replication protocol's bytes: log entries, frames, handshake.
 *
 * Pure encoding and decoding plus blocking frame I/O on a socket; no
 * replication logic lives here (see repl/link.c for the state machines and
 * docs/REPLICATION.md for the protocol).
 *
 * Frame:   u32 BE length of (type + payload) | u8 type | payload
 *          length is at most REPL_FRAME_MAX; anything larger is a protocol error.
 * Entry:   the value stored in the replication log (rlog column family) and
 *          sent verbatim inside BATCH frames; see repl_entry below and
 *          wire.c for the byte layout (versioned by its first byte).
 * Handshake (the connecting side is the sender of its region's log):
 *   C -> S  HELLO      {version u16, region, nonce_c[32]}
 *   S -> C  CHALLENGE  {region, nonce_s[32], proof_s}
 *   C -> S  AUTH       {proof_c}
 *   S -> C  START      {from_seq u64}   (or ERROR {message})
 * proof_x = HMAC-SHA256(cluster_key, "meridian-repl-1|" role "|" client_region "|"
 *                       server_region "|" nonce_c "|" nonce_s) with role "server" for
 * proof_s and "client" for proof_c: each side proves it holds the key without
 * sending it, and a recorded proof is useless with fresh nonces.
 */
#ifndef MERIDIAN_REPL_WIRE_H
#define MERIDIAN_REPL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"

#define REPL_PROTOCOL_VERSION 1
#define REPL_FRAME_MAX        (64u * 1024 * 1024)
#define REPL_NONCE_LEN        32
#define REPL_PROOF_LEN        32
#define REPL_UID_LEN          16
#define REPL_REGION_MAX       64

typedef enum repl_frame_type {
    REPL_F_HELLO = 1,
    REPL_F_CHALLENGE = 2,
    REPL_F_AUTH = 3,
    REPL_F_START = 4,
    REPL_F_BATCH = 5,     /* sender -> receiver: entries */
    REPL_F_ACK = 6,       /* receiver -> sender: {seq u64} applied durably up to seq */
    REPL_F_HEARTBEAT = 7, /* sender -> receiver: {watermark u64, hlc_now u64} */
    REPL_F_ERROR = 8,     /* either way: {message}; the connection closes after it */
} repl_frame_type;

typedef enum repl_kind {
    REPL_PUT = 1,            /* an item write */
    REPL_TOMBSTONE = 2,      /* an item delete */
    REPL_TABLE = 3,          /* a table descriptor (replica set, settings) */
    REPL_BACKFILL_BEGIN = 4, /* start of a table back-fill; data = descriptor */
    REPL_BACKFILL_ITEM = 5,  /* one item (or tombstone, flags) of a back-fill */
    REPL_BACKFILL_END = 6,   /* end of a table back-fill */
} repl_kind;

#define REPL_FLAG_TOMBSTONE 0x01 /* on REPL_BACKFILL_ITEM */

/* One log entry. Pointers refer into the decoded buffer (or the caller's
 * memory when encoding); nothing is owned. */
typedef struct repl_entry {
    repl_kind kind;
    uint8_t flags;
    uint8_t table_uid[REPL_UID_LEN]; /* the global table's identity */
    uint64_t ts;                     /* version: HLC timestamp ... */
    const char *origin;              /* ... and origin region (NUL-terminated) */
    uint64_t prev_ts;                /* version the write replaced at its origin, */
    const char *prev_origin;         /* 0 and "" if none (conflict accounting) */
    uint64_t commit_ms;              /* wall clock at commit in the origin (latency) */
    const uint8_t *pk;               /* enc(pk), item/codec.h key_encode_scalar */
    size_t pk_len;
    const uint8_t *sk; /* enc(sk) or NULL */
    size_t sk_len;
    const uint8_t *data; /* PUT/BACKFILL_ITEM: item encoding; TABLE/BACKFILL_BEGIN:
                            descriptor JSON; otherwise empty */
    size_t data_len;
} repl_entry;

/* Appends the encoding of e to out. */
void repl_entry_encode(buf *out, const repl_entry *e);
/* Decodes an entry; strings are copied into a (NUL-terminated), byte fields
 * point into p. Returns 0 or -1 (with e set) on malformed input. Never reads
 * outside [p, p + len). */
int repl_entry_decode(arena *a, const uint8_t *p, size_t len, repl_entry *out, err *e);

/* BATCH payload: u32 BE count, then per entry: u64 BE seq, varint length, entry bytes. */
void repl_batch_begin(buf *out); /* reserves the count */
void repl_batch_add(buf *out, uint64_t seq, const uint8_t *entry, size_t len);
void repl_batch_finish(buf *out, uint32_t count); /* writes the count */
typedef struct repl_batch_item {
    uint64_t seq;
    const uint8_t *entry;
    size_t len;
} repl_batch_item;
/* Splits a BATCH payload; items point into p; *items allocated from a. */
int repl_batch_parse(arena *a, const uint8_t *p, size_t len, repl_batch_item **items, size_t *n,
                     err *e);

/* Blocking frame I/O on a connected socket, each bounded by timeout_ms
 * (poll-based; partial reads/writes and EINTR handled). Return 0, or -1 with
 * e set on timeout, EOF, I/O error or an oversized/garbled frame. */
int repl_frame_send(int fd, repl_frame_type type, const void *payload, size_t len, int timeout_ms,
                    err *e);
/* Reads one frame into payload (reset first). */
int repl_frame_recv(int fd, repl_frame_type *type, buf *payload, int timeout_ms, err *e);

/* Handshake. The client (sender of its log) calls repl_handshake_client and
 * learns the server's region and the position to stream from; the server
 * calls repl_handshake_server, which learns the client's region and asks
 * position_for(ctx, client_region) what to send in START. Both return 0, or
 * -1 with e set (ERR_ACCESS_DENIED for a wrong key: a message that does not
 * reveal anything about the key). The server sends an ERROR frame before
 * failing when the client's proof is wrong or its region is unknown
 * (accept_region returns false). */
int repl_handshake_client(int fd, const uint8_t *key, size_t key_len, const char *my_region,
                          char *peer_region /* REPL_REGION_MAX + 1 */, uint64_t *from_seq,
                          int timeout_ms, err *e);
typedef struct repl_server_hooks {
    void *ctx;
    bool (*accept_region)(void *ctx, const char *region);
    uint64_t (*position_for)(void *ctx, const char *region);
} repl_server_hooks;
int repl_handshake_server(int fd, const uint8_t *key, size_t key_len, const char *my_region,
                          const repl_server_hooks *hooks,
                          char *peer_region /* REPL_REGION_MAX + 1 */, int timeout_ms, err *e);

/* Test seam (fuzzers and unit tests only; the server never calls it): the
 * source of the handshake nonces nonce_c and nonce_s. fn fills out with len
 * bytes and returns 0, or -1 to fail the handshake as a RAND_bytes failure
 * would. NULL restores the default, OpenSSL's RAND_bytes. With a fixed
 * source a peer can compute the other side's proof before it has seen it, so
 * call this before any handshake starts, in a test process only. */
typedef int (*repl_nonce_source)(uint8_t *out, size_t len);
void repl_wire_set_nonce_source(repl_nonce_source fn);

/* Small payload helpers for ACK/START/HEARTBEAT. */
void repl_put_u64(buf *out, uint64_t v);
int repl_get_u64(const buf *payload, size_t off, uint64_t *v);

#endif
