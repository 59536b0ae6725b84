/* fuzz_repl_frame.c - the replication protocol decoders (repl/wire.c).
 *
 * The first input byte chooses what the rest is fed to:
 *   0: repl_entry_decode; an entry that decodes re-encodes to exactly the
 *      input (the format has one encoding per entry);
 *   1: repl_batch_parse, then repl_entry_decode of every item; a batch that
 *      parses is rebuilt with repl_batch_* and must equal the input;
 *   2: a byte stream read frame by frame with repl_frame_recv (through a
 *      socketpair, the peer end shut down after the input), plus
 *      repl_get_u64 on each payload;
 *   3: the same stream as a client's messages to repl_handshake_server;
 *   4: the same stream as a server's messages to repl_handshake_client.
 * Everything sent back by the code under test stays unread in the socket.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "repl/wire.h"

#define STREAM_MAX  (64 * 1024) /* stays within a socketpair's buffer */
#define CLUSTER_KEY "fuzz-cluster-key-0123456789"

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

static bool accept_any(void *ctx, const char *region)
{
    return true;
}

static uint64_t position_zero(void *ctx, const char *region)
{
    return 0;
}

static void fuzz_handshake(const uint8_t *p, size_t len, bool server)
{
    int sv[2];
    int fd = stream_of(p, len, sv);
    char peer[REPL_REGION_MAX + 1];
    err e;
    err_clear(&e);
    int rc;
    if (server) {
        repl_server_hooks hooks = {NULL, accept_any, position_zero};
        rc = repl_handshake_server(fd, (const uint8_t *)CLUSTER_KEY, strlen(CLUSTER_KEY),
                                   "us-east-1", &hooks, peer, 1000, &e);
    } else {
        uint64_t from = 0;
        rc = repl_handshake_client(fd, (const uint8_t *)CLUSTER_KEY, strlen(CLUSTER_KEY),
                                   "us-east-1", peer, &from, 1000, &e);
    }
    /* Nonces are random and the input cannot know the key's proofs. */
    FUZZ_CHECK(rc != 0 && e.code != ERR_NONE);
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
        fuzz_frames(p, len < STREAM_MAX ? len : STREAM_MAX);
        break;
    case 3:
        fuzz_handshake(p, len < STREAM_MAX ? len : STREAM_MAX, true);
        break;
    default:
        fuzz_handshake(p, len < STREAM_MAX ? len : STREAM_MAX, false);
        break;
    }
    arena_free(&a);
    free(p);
    return 0;
}
