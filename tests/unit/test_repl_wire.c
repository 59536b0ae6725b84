/* test_repl_wire.c - unit tests for repl/wire.c: log-entry round trips for
 * every kind (with and without a sort key, empty data, 64-byte region names)
 * and the documented byte layout, rejection of every truncation, trailing
 * bytes and each malformed field, mutation fuzzing (decode never reads out
 * of bounds; whatever decodes re-encodes to the same bytes), BATCH payload
 * build/parse and malformed batches, the u64 payload helpers, frame I/O over
 * a socketpair (round trips, unknown types, a frame trickled in by a helper
 * thread, a large frame through a full socket buffer, bad lengths, EOF
 * before/inside a frame, receive and send timeouts, a closed peer without
 * SIGPIPE), and the handshake with client and server in two threads
 * (success, wrong key on either side, refused and own region, version
 * mismatch, garbage or the wrong frame instead of HELLO, a forged AUTH, a
 * server without the key, a silent server, bad arguments), and with fixed
 * nonces (repl_wire_set_nonce_source): every handshake byte against the
 * documented layout and an independent HMAC of the documented proof message,
 * a client answering before seeing the server's nonce, a replayed AUTH
 * refused under another nonce, a failing nonce source on either side. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "repl/wire.h"
#define UNIT_RNG_SEED 0x9E3779B97F4A7C15ULL
#include "unit.h"

/* 64 characters: every kind of character a region name may hold. */
#define REGION_MAX_NAME "Aa0._-zZ9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HS_TIMEOUT      5000 /* generous: a failing handshake must end long before */
#define HS_QUICK_MS     2000 /* ... within this */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* Writes all of p with plain blocking writes (test-side raw bytes). */
static void write_raw(int fd, const void *p, size_t len)
{
    const uint8_t *q = p;
    while (len) {
        ssize_t n = send(fd, q, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        assert_true(n > 0);
        q += n;
        len -= (size_t)n;
    }
}

/* Decoding from an exactly sized heap copy, so ASan sees any over-read. */
static int decode_copy(const uint8_t *p, size_t len, repl_entry *out, err *e)
{
    uint8_t *c = malloc(len ? len : 1);
    assert_non_null(c);
    if (len) memcpy(c, p, len);
    int rc = repl_entry_decode(&A, c, len, out, e);
    if (rc == 0) {
        /* byte fields point into the input; re-point them at p before freeing */
        if (out->pk) out->pk = p + (out->pk - c);
        if (out->sk) out->sk = p + (out->sk - c);
        if (out->data) out->data = p + (out->data - c);
    }
    free(c);
    return rc;
}

/* ------------------------------------------------------------------ entry */

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void assert_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    assert_int_equal(alen, blen);
    if (alen) assert_memory_equal(a, b, alen);
}

static void assert_entry_eq(const repl_entry *x, const repl_entry *y)
{
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->flags, y->flags);
    assert_memory_equal(x->table_uid, y->table_uid, REPL_UID_LEN);
    assert_true(x->ts == y->ts);
    assert_string_equal(x->origin ? x->origin : "", y->origin);
    assert_true(x->prev_ts == y->prev_ts);
    assert_string_equal(x->prev_origin ? x->prev_origin : "", y->prev_origin);
    assert_true(x->commit_ms == y->commit_ms);
    assert_bytes(x->pk, x->pk_len, y->pk, y->pk_len);
    if (x->sk) {
        assert_non_null(y->sk);
        assert_bytes(x->sk, x->sk_len, y->sk, y->sk_len);
    } else {
        assert_null(y->sk);
        assert_int_equal(y->sk_len, 0);
    }
    assert_bytes(x->data, x->data_len, y->data, y->data_len);
}

static void roundtrip(const repl_entry *in)
{
    buf b, b2;
    buf_init(&b);
    buf_init(&b2);
    repl_entry_encode(&b, in);
    repl_entry out;
    err e;
    assert_int_equal(decode_copy(b.data, b.len, &out, &e), 0);
    assert_entry_eq(in, &out);
    /* region names are arena copies, not pointers into the input */
    assert_true((const uint8_t *)out.origin < b.data ||
                (const uint8_t *)out.origin >= b.data + b.len);
    repl_entry_encode(&b2, &out);
    assert_bytes(b.data, b.len, b2.data, b2.len);
    buf_free(&b);
    buf_free(&b2);
}

static void test_entry_roundtrip_every_kind(void **state)
{
    (void)state;
    static uint8_t pk[40], sk[300], data[1000];
    fill(pk, sizeof(pk), 1);
    fill(sk, sizeof(sk), 2);
    fill(data, sizeof(data), 3);
    const char *origins[] = {"us-east-1", REGION_MAX_NAME, "x"};
    const char *prevs[] = {"", "eu_west.2", REGION_MAX_NAME};
    size_t sk_lens[] = {0, 1, sizeof(sk)};
    size_t data_lens[] = {0, 1, 127, 128, sizeof(data)};
    int n = 0;
    for (int kind = REPL_PUT; kind <= REPL_BACKFILL_END; kind++) {
        for (int skv = -1; skv < 3; skv++) {
            for (size_t di = 0; di < sizeof(data_lens) / sizeof(data_lens[0]); di++) {
                for (size_t ri = 0; ri < 3; ri++) {
                    repl_entry in;
                    memset(&in, 0, sizeof(in));
                    in.kind = (repl_kind)kind;
                    in.flags = (kind == REPL_BACKFILL_ITEM && (di & 1)) ? REPL_FLAG_TOMBSTONE : 0;
                    fill(in.table_uid, REPL_UID_LEN, (uint8_t)kind);
                    in.ts = rng();
                    in.origin = origins[ri];
                    in.prev_ts = ri ? rng() : 0;
                    in.prev_origin = prevs[ri];
                    in.commit_ms = rng();
                    in.pk = kind == REPL_TABLE ? NULL : pk;
                    in.pk_len = kind == REPL_TABLE ? 0 : 1 + (size_t)(rng() % sizeof(pk));
                    if (skv >= 0) {
                        in.sk = sk;
                        in.sk_len = sk_lens[skv];
                    }
                    in.data = data_lens[di] ? data : NULL;
                    in.data_len = data_lens[di];
                    roundtrip(&in);
                    n++;
                }
            }
        }
    }
    assert_int_equal(n, 6 * 4 * 5 * 3);

    /* NULL region pointers encode as "" */
    repl_entry in;
    memset(&in, 0, sizeof(in));
    in.kind = REPL_BACKFILL_END;
    buf b;
    buf_init(&b);
    repl_entry_encode(&b, &in);
    repl_entry out;
    err e;
    assert_int_equal(decode_copy(b.data, b.len, &out, &e), 0);
    assert_string_equal(out.origin, "");
    assert_string_equal(out.prev_origin, "");
    assert_null(out.sk);
    assert_int_equal(out.pk_len, 0);
    assert_int_equal(out.data_len, 0);
    buf_free(&b);
}

/* The layout documented at the top of wire.c, byte by byte. */
static void test_entry_layout(void **state)
{
    (void)state;
    repl_entry in;
    memset(&in, 0, sizeof(in));
    in.kind = REPL_PUT;
    in.flags = 0;
    for (int i = 0; i < REPL_UID_LEN; i++)
        in.table_uid[i] = (uint8_t)(0xA0 + i);
    in.ts = 0x0102030405060708ULL;
    in.origin = "us";
    in.prev_ts = 0x1112131415161718ULL;
    in.prev_origin = "eu";
    in.commit_ms = 0x2122232425262728ULL;
    in.pk = (const uint8_t *)"K";
    in.pk_len = 1;
    in.sk = (const uint8_t *)"ss";
    in.sk_len = 2;
    static uint8_t data[200];
    fill(data, sizeof(data), 9);
    in.data = data;
    in.data_len = sizeof(data);

    buf want;
    buf_init(&want);
    buf_putc(&want, 1);
    buf_putc(&want, REPL_PUT);
    buf_putc(&want, 0);
    buf_append(&want, in.table_uid, REPL_UID_LEN);
    const uint8_t tail1[] = {1, 2, 3, 4, 5, 6, 7, 8, 2, 'u', 's'};
    buf_append(&want, tail1, sizeof(tail1));
    const uint8_t tail2[] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 2, 'e', 'u'};
    buf_append(&want, tail2, sizeof(tail2));
    const uint8_t tail3[] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
                             1,    'K',  1,    2,    's',  's',  0xC8, 0x01};
    buf_append(&want, tail3, sizeof(tail3));
    buf_append(&want, data, sizeof(data));

    buf got;
    buf_init(&got);
    buf_put_u32be(&got, 0xDEADBEEF); /* encode appends */
    repl_entry_encode(&got, &in);
    assert_int_equal(load_u32be(got.data), 0xDEADBEEF);
    assert_bytes(got.data + 4, got.len - 4, want.data, want.len);

    /* absent sort key: a single 0 byte */
    in.sk = NULL;
    in.sk_len = 0;
    in.data = NULL;
    in.data_len = 0;
    buf_reset(&got);
    repl_entry_encode(&got, &in);
    size_t at = 3 + REPL_UID_LEN + 8 + 3 + 8 + 3 + 8 + 2;
    assert_int_equal(got.len, at + 2);
    assert_int_equal(got.data[at], 0);
    assert_int_equal(got.data[at + 1], 0);
    buf_free(&want);
    buf_free(&got);
}

static void valid_entry(buf *b)
{
    static uint8_t data[150];
    fill(data, sizeof(data), 5);
    repl_entry in;
    memset(&in, 0, sizeof(in));
    in.kind = REPL_BACKFILL_ITEM;
    in.flags = REPL_FLAG_TOMBSTONE;
    fill(in.table_uid, REPL_UID_LEN, 0x40);
    in.ts = 1700000000000ULL << 16;
    in.origin = "ap-south-1";
    in.prev_ts = 1600000000000ULL << 16;
    in.prev_origin = "us-west-2";
    in.commit_ms = 1700000000123ULL;
    in.pk = (const uint8_t *)"partition";
    in.pk_len = 9;
    in.sk = (const uint8_t *)"sort";
    in.sk_len = 4;
    in.data = data;
    in.data_len = sizeof(data);
    repl_entry_encode(b, &in);
}

static void test_entry_truncations(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    valid_entry(&b);
    repl_entry out;
    err e;
    for (size_t n = 0; n < b.len; n++) {
        err_clear(&e);
        assert_int_equal(decode_copy(b.data, n, &out, &e), -1);
        assert_int_equal(e.code, ERR_VALIDATION);
        assert_non_null(strstr(e.msg, "replication entry"));
    }
    assert_int_equal(decode_copy(b.data, b.len, &out, &e), 0);
    buf_putc(&b, 0);
    assert_int_equal(decode_copy(b.data, b.len, &out, &e), -1);
    assert_non_null(strstr(e.msg, "1 trailing bytes"));
    assert_int_equal(repl_entry_decode(&A, NULL, 0, &out, &e), -1);
    buf_free(&b);
}

/* Offsets into valid_entry()'s encoding. */
#define OFF_FORMAT 0
#define OFF_KIND   1
#define OFF_FLAGS  2
#define OFF_ORIGIN (3 + REPL_UID_LEN + 8) /* its length byte */

static void expect_reject(const buf *b, const char *needle)
{
    repl_entry out;
    err e;
    err_clear(&e);
    assert_int_equal(decode_copy(b->data, b->len, &out, &e), -1);
    assert_int_equal(e.code, ERR_VALIDATION);
    if (!strstr(e.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
}

static void test_entry_rejects(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    valid_entry(&b);
    size_t sk_flag = OFF_ORIGIN + 1 + 10 + 8 + 1 + 9 + 8 + 1 + 9;
    assert_int_equal(b.data[sk_flag], 1);

    buf m;
    buf_init(&m);
#define MUTATE(off, val, needle)                                                                   \
    do {                                                                                           \
        buf_reset(&m);                                                                             \
        buf_append(&m, b.data, b.len);                                                             \
        m.data[(off)] = (uint8_t)(val);                                                            \
        expect_reject(&m, needle);                                                                 \
    } while (0)
    MUTATE(OFF_FORMAT, 0, "unknown format 0");
    MUTATE(OFF_FORMAT, 2, "unknown format 2");
    MUTATE(OFF_KIND, 0, "unknown kind 0");
    MUTATE(OFF_KIND, 7, "unknown kind 7");
    MUTATE(OFF_FLAGS, 0x02, "unknown flags");
    MUTATE(OFF_FLAGS, 0x81, "unknown flags");
    MUTATE(OFF_ORIGIN + 1, '|', "contains byte 0x7c");
    MUTATE(OFF_ORIGIN + 1, 0, "contains byte 0x00");
    MUTATE(OFF_ORIGIN + 3, ' ', "contains byte 0x20");
    MUTATE(OFF_ORIGIN + 10, 0xC3, "contains byte 0xc3");
    MUTATE(sk_flag, 2, "sort key flag");
    MUTATE(sk_flag, 0xFF, "sort key flag");
    MUTATE(OFF_ORIGIN, 0x7F, "127 bytes long");
#undef MUTATE

    /* a 65-byte origin (decodable length, too long a name) */
    buf_reset(&m);
    buf_append(&m, b.data, OFF_ORIGIN);
    buf_putc(&m, 65);
    for (int i = 0; i < 65; i++)
        buf_putc(&m, 'a');
    buf_append(&m, b.data + OFF_ORIGIN + 11, b.len - OFF_ORIGIN - 11);
    expect_reject(&m, "65 bytes long");
    /* ... while 64 decodes */
    buf_reset(&m);
    buf_append(&m, b.data, OFF_ORIGIN);
    buf_putc(&m, 64);
    for (int i = 0; i < 64; i++)
        buf_putc(&m, 'a');
    buf_append(&m, b.data + OFF_ORIGIN + 11, b.len - OFF_ORIGIN - 11);
    repl_entry out;
    err e;
    assert_int_equal(decode_copy(m.data, m.len, &out, &e), 0);
    assert_int_equal(strlen(out.origin), 64);

    /* non-shortest length: 10 as 0x8A 0x00 */
    buf_reset(&m);
    buf_append(&m, b.data, OFF_ORIGIN);
    buf_putc(&m, 0x8A);
    buf_putc(&m, 0x00);
    buf_append(&m, b.data + OFF_ORIGIN + 1, b.len - OFF_ORIGIN - 1);
    expect_reject(&m, "shortest form");

    /* absurd lengths: 2^63 and an 11-byte varint */
    buf_reset(&m);
    buf_append(&m, b.data, OFF_ORIGIN);
    buf_put_varint(&m, 1ULL << 63);
    buf_append(&m, b.data + OFF_ORIGIN + 1, b.len - OFF_ORIGIN - 1);
    expect_reject(&m, "runs past the end");
    buf_reset(&m);
    buf_append(&m, b.data, OFF_ORIGIN);
    for (int i = 0; i < 10; i++)
        buf_putc(&m, 0xFF);
    buf_putc(&m, 0x01);
    buf_append(&m, b.data + OFF_ORIGIN + 1, b.len - OFF_ORIGIN - 1);
    expect_reject(&m, "overlong length");

    buf_free(&m);
    buf_free(&b);
}

static void test_entry_mutations(void **state)
{
    (void)state;
    buf seeds[3];
    for (int i = 0; i < 3; i++)
        buf_init(&seeds[i]);
    valid_entry(&seeds[0]);
    repl_entry small;
    memset(&small, 0, sizeof(small));
    small.kind = REPL_TOMBSTONE;
    small.origin = "r1";
    small.pk = (const uint8_t *)"k";
    small.pk_len = 1;
    repl_entry_encode(&seeds[1], &small);
    small.kind = REPL_TABLE;
    small.origin = REGION_MAX_NAME;
    small.prev_origin = REGION_MAX_NAME;
    small.data = (const uint8_t *)"{\"TableName\":\"t\"}";
    small.data_len = 17;
    repl_entry_encode(&seeds[2], &small);

    buf m, re;
    buf_init(&m);
    buf_init(&re);
    int decoded = 0;
    for (int iter = 0; iter < 6000; iter++) {
        const buf *s = &seeds[iter % 3];
        buf_reset(&m);
        buf_append(&m, s->data, s->len);
        int edits = 1 + (int)(rng() % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t)(rng() % m.len);
            switch (rng() % 4) {
            case 0:
                m.data[at] = (uint8_t)rng();
                break;
            case 1:
                m.data[at] ^= (uint8_t)(1u << (rng() % 8));
                break;
            case 2: /* delete a byte */
                if (m.len > 1) {
                    memmove(m.data + at, m.data + at + 1, m.len - at - 1);
                    m.len--;
                }
                break;
            default: /* insert a byte */
                buf_putc(&m, 0);
                memmove(m.data + at + 1, m.data + at, m.len - at - 1);
                m.data[at] = (uint8_t)rng();
                break;
            }
        }
        repl_entry out;
        err e;
        err_clear(&e);
        if (decode_copy(m.data, m.len, &out, &e) == 0) {
            decoded++;
            buf_reset(&re);
            repl_entry_encode(&re, &out); /* must not abort: decode validated everything */
            assert_bytes(re.data, re.len, m.data, m.len);
        } else {
            assert_int_equal(e.code, ERR_VALIDATION);
            assert_true(e.msg[0] != '\0');
        }
    }
    assert_true(decoded > 0); /* some mutations (in uid, ts, data) stay valid */
    for (int i = 0; i < 3; i++)
        buf_free(&seeds[i]);
    buf_free(&m);
    buf_free(&re);
}

/* ------------------------------------------------------------------ batch */

static void test_batch_roundtrip(void **state)
{
    (void)state;
    buf b, ent;
    buf_init(&b);
    buf_init(&ent);
    repl_batch_item *items;
    size_t n;
    err e;

    /* empty batch */
    buf_putc(&b, 0x55); /* begin discards what was there */
    repl_batch_begin(&b);
    repl_batch_finish(&b, 0);
    assert_int_equal(b.len, 4);
    assert_int_equal(repl_batch_parse(&A, b.data, b.len, &items, &n, &e), 0);
    assert_int_equal(n, 0);

    /* entries of many sizes, including empty and multi-byte lengths */
    valid_entry(&ent);
    size_t sizes[] = {0, 1, 127, 128, 300, ent.len, 5000};
    uint8_t *blob = malloc(5000);
    assert_non_null(blob);
    fill(blob, 5000, 77);
    const int count = 50;
    repl_batch_begin(&b);
    for (int i = 0; i < count; i++) {
        size_t len = sizes[i % 7];
        const uint8_t *p = (i % 7 == 5) ? ent.data : blob;
        repl_batch_add(&b, 1000 + (uint64_t)i * 3, len ? p : NULL, len);
    }
    repl_batch_finish(&b, count);
    assert_int_equal(load_u32be(b.data), count);
    assert_int_equal(repl_batch_parse(&A, b.data, b.len, &items, &n, &e), 0);
    assert_int_equal(n, count);
    for (int i = 0; i < count; i++) {
        assert_true(items[i].seq == 1000 + (uint64_t)i * 3);
        size_t len = sizes[i % 7];
        assert_int_equal(items[i].len, len);
        const uint8_t *p = (i % 7 == 5) ? ent.data : blob;
        if (len) assert_memory_equal(items[i].entry, p, len);
        assert_true(items[i].entry >= b.data && items[i].entry + items[i].len <= b.data + b.len);
        if (i % 7 == 5) {
            repl_entry out;
            assert_int_equal(repl_entry_decode(&A, items[i].entry, items[i].len, &out, &e), 0);
        }
    }
    free(blob);
    buf_free(&b);
    buf_free(&ent);
}

static void expect_batch_reject(const uint8_t *p, size_t len, const char *needle)
{
    static repl_batch_item dummy;
    repl_batch_item *items = &dummy; /* must come back NULL */
    size_t n = 99;
    err e;
    err_clear(&e);
    uint8_t *c = malloc(len ? len : 1);
    assert_non_null(c);
    if (len) memcpy(c, p, len);
    int rc = repl_batch_parse(&A, c, len, &items, &n, &e);
    free(c);
    assert_int_equal(rc, -1);
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_null(items);
    assert_int_equal(n, 0);
    if (needle && !strstr(e.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
}

static void test_batch_malformed(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    const uint8_t e1[] = {1, 2, 3}, e2[] = {4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    repl_batch_begin(&b);
    repl_batch_add(&b, 7, e1, sizeof(e1));
    repl_batch_add(&b, 8, e2, sizeof(e2));
    repl_batch_finish(&b, 2);

    /* every truncation */
    for (size_t n = 0; n < b.len; n++)
        expect_batch_reject(b.data, n, NULL);
    expect_batch_reject(b.data, 3, "too short");

    buf m;
    buf_init(&m);
    /* trailing byte */
    buf_append(&m, b.data, b.len);
    buf_putc(&m, 0);
    expect_batch_reject(m.data, m.len, "after the 2 declared entries");
    /* count says 1: the second item is trailing */
    store_u32be(m.data, 1);
    expect_batch_reject(m.data, b.len, "after the 1 declared entries");
    /* count says 3 but only 2 are there (and bytes allow 3 by size) */
    buf_reset(&m);
    buf_append(&m, b.data, b.len);
    buf_putc(&m, 0);
    buf_putc(&m, 0);
    buf_putc(&m, 0);
    buf_putc(&m, 0);
    buf_putc(&m, 0);
    buf_putc(&m, 0);
    store_u32be(m.data, 3);
    expect_batch_reject(m.data, m.len, "truncated");
    /* counts no payload of this size could hold: refused before allocating */
    store_u32be(m.data, 0xFFFFFFFFu);
    expect_batch_reject(m.data, m.len, "declares 4294967295 entries");
    uint8_t only_count[4] = {0, 0, 0, 1};
    expect_batch_reject(only_count, 4, "declares 1 entries");
    /* item length past the end */
    buf_reset(&m);
    buf_put_u32be(&m, 1);
    buf_put_u64be(&m, 1);
    buf_put_varint(&m, 100);
    buf_append(&m, e2, sizeof(e2));
    expect_batch_reject(m.data, m.len, "runs past the end");
    /* item length not in shortest form */
    buf_reset(&m);
    buf_put_u32be(&m, 1);
    buf_put_u64be(&m, 1);
    buf_putc(&m, 0x83);
    buf_putc(&m, 0x00);
    buf_append(&m, e1, sizeof(e1));
    expect_batch_reject(m.data, m.len, "shortest form");

    /* random junk never crashes */
    for (int i = 0; i < 3000; i++) {
        uint8_t junk[64];
        size_t len = (size_t)(rng() % sizeof(junk));
        for (size_t k = 0; k < len; k++)
            junk[k] = (uint8_t)rng();
        if (len >= 4 && (i & 1)) store_u32be(junk, (uint32_t)(rng() % 4));
        repl_batch_item *items;
        size_t n;
        err e;
        uint8_t *c = malloc(len ? len : 1);
        assert_non_null(c);
        memcpy(c, junk, len);
        if (repl_batch_parse(&A, c, len, &items, &n, &e) == 0) {
            for (size_t k = 0; k < n; k++)
                assert_true(items[k].entry >= c && items[k].entry + items[k].len <= c + len);
        }
        free(c);
    }
    buf_free(&m);
    buf_free(&b);
}

static void test_u64_helpers(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    repl_put_u64(&b, 0x0102030405060708ULL);
    repl_put_u64(&b, UINT64_MAX);
    const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(b.data, want, 8);
    uint64_t v = 0;
    assert_int_equal(repl_get_u64(&b, 0, &v), 0);
    assert_true(v == 0x0102030405060708ULL);
    assert_int_equal(repl_get_u64(&b, 8, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(repl_get_u64(&b, 9, &v), -1);
    assert_int_equal(repl_get_u64(&b, 16, &v), -1);
    assert_int_equal(repl_get_u64(&b, SIZE_MAX, &v), -1);
    assert_int_equal(repl_get_u64(&b, SIZE_MAX - 4, &v), -1);
    buf empty;
    buf_init(&empty);
    assert_int_equal(repl_get_u64(&empty, 0, &v), -1);
    buf_free(&b);
}

/* ------------------------------------------------------------------ frames */

static void test_frame_roundtrip(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    err e;
    buf p;
    buf_init(&p);
    repl_frame_type t;
    uint8_t big[70000];
    fill(big, sizeof(big), 3);

    assert_int_equal(repl_frame_send(sv[0], REPL_F_ACK, "12345678", 8, 1000, &e), 0);
    assert_int_equal(repl_frame_send(sv[0], REPL_F_HEARTBEAT, NULL, 0, 1000, &e), 0);
    assert_int_equal(repl_frame_send(sv[0], (repl_frame_type)200, "x", 1, 1000, &e), 0);
    assert_int_equal(repl_frame_send(sv[0], REPL_F_BATCH, big, sizeof(big), 1000, &e), 0);

    buf_append(&p, "stale", 5);
    assert_int_equal(repl_frame_recv(sv[1], &t, &p, 1000, &e), 0);
    assert_int_equal(t, REPL_F_ACK);
    assert_bytes(p.data, p.len, (const uint8_t *)"12345678", 8);
    assert_int_equal(p.data[p.len], 0); /* buf's NUL terminator kept */
    assert_int_equal(repl_frame_recv(sv[1], &t, &p, 1000, &e), 0);
    assert_int_equal(t, REPL_F_HEARTBEAT);
    assert_int_equal(p.len, 0);
    assert_int_equal(repl_frame_recv(sv[1], &t, &p, 1000, &e), 0);
    assert_int_equal((int)t, 200); /* unknown types are the caller's call */
    assert_bytes(p.data, p.len, (const uint8_t *)"x", 1);
    assert_int_equal(repl_frame_recv(sv[1], &t, &p, 1000, &e), 0);
    assert_int_equal(t, REPL_F_BATCH);
    assert_bytes(p.data, p.len, big, sizeof(big));

    /* the bytes on the wire */
    assert_int_equal(repl_frame_send(sv[0], REPL_F_START, "\x01\x02", 2, 1000, &e), 0);
    uint8_t raw[7];
    assert_int_equal(recv(sv[1], raw, sizeof(raw), MSG_WAITALL), 7);
    const uint8_t want[] = {0, 0, 0, 3, REPL_F_START, 1, 2};
    assert_memory_equal(raw, want, 7);

    /* sender-side limits */
    err_clear(&e);
    assert_int_equal(repl_frame_send(sv[0], REPL_F_BATCH, big, REPL_FRAME_MAX, 1000, &e), -1);
    assert_int_equal(e.code, ERR_VALIDATION);
    assert_int_equal(repl_frame_send(sv[0], (repl_frame_type)256, "x", 1, 1000, &e), -1);
    assert_int_equal(repl_frame_send(sv[0], REPL_F_BATCH, NULL, 5, 1000, &e), -1);

    buf_free(&p);
    close(sv[0]);
    close(sv[1]);
}

typedef struct trickle {
    int fd;
    const uint8_t *p;
    size_t len;
    size_t step;
    int pause_us;
} trickle;

static void *trickle_thread(void *arg)
{
    trickle *t = arg;
    for (size_t off = 0; off < t->len; off += t->step) {
        size_t n = t->len - off < t->step ? t->len - off : t->step;
        const uint8_t *q = t->p + off;
        while (n) {
            ssize_t w = send(t->fd, q, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return NULL;
            q += w;
            n -= (size_t)w;
        }
        if (t->pause_us) usleep((useconds_t)t->pause_us);
    }
    return NULL;
}

static void test_frame_split_writes(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    /* two frames back to back, written 1..7 bytes at a time */
    uint8_t payload[3001];
    fill(payload, sizeof(payload), 11);
    buf wire;
    buf_init(&wire);
    buf_put_u32be(&wire, sizeof(payload) + 1);
    buf_putc(&wire, REPL_F_BATCH);
    buf_append(&wire, payload, sizeof(payload));
    buf_put_u32be(&wire, 9);
    buf_putc(&wire, REPL_F_ACK);
    buf_put_u64be(&wire, 42);

    for (size_t step = 1; step <= 7; step += 6) {
        trickle t = {.fd = sv[0],
                     .p = wire.data,
                     .len = wire.len,
                     .step = step,
                     .pause_us = step == 1 ? 20 : 200};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, trickle_thread, &t), 0);
        buf p;
        buf_init(&p);
        repl_frame_type type;
        err e;
        int rc1 = repl_frame_recv(sv[1], &type, &p, 10000, &e);
        repl_frame_type type1 = type;
        int ok1 = rc1 == 0 && p.len == sizeof(payload) && !memcmp(p.data, payload, p.len);
        int rc2 = repl_frame_recv(sv[1], &type, &p, 10000, &e);
        pthread_join(th, NULL);
        assert_int_equal(rc1, 0);
        assert_int_equal(type1, REPL_F_BATCH);
        assert_true(ok1);
        assert_int_equal(rc2, 0);
        assert_int_equal(type, REPL_F_ACK);
        uint64_t v;
        assert_int_equal(repl_get_u64(&p, 0, &v), 0);
        assert_true(v == 42);
        buf_free(&p);
    }
    buf_free(&wire);
    close(sv[0]);
    close(sv[1]);
}

typedef struct reader_arg {
    int fd;
    int rc;
    repl_frame_type type;
    buf p;
    err e;
} reader_arg;

static void *reader_thread(void *arg)
{
    reader_arg *r = arg;
    usleep(20000); /* let the sender fill the socket buffer first */
    r->rc = repl_frame_recv(r->fd, &r->type, &r->p, 10000, &r->e);
    return NULL;
}

/* A frame far larger than the socket buffer: partial writes and EAGAIN. */
static void test_frame_large(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    size_t len = 8u * 1024 * 1024 + 13;
    uint8_t *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (uint8_t)(i * 31 + (i >> 13));
    reader_arg r = {.fd = sv[1]};
    buf_init(&r.p);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_thread, &r), 0);
    err e;
    int rc = repl_frame_send(sv[0], REPL_F_BATCH, big, len, 10000, &e);
    pthread_join(th, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.type, REPL_F_BATCH);
    assert_int_equal(r.p.len, len);
    assert_memory_equal(r.p.data, big, len);
    buf_free(&r.p);
    free(big);
    close(sv[0]);
    close(sv[1]);
}

static void expect_recv_fail(int fd, int timeout_ms, err_code code, const char *needle)
{
    buf p;
    buf_init(&p);
    repl_frame_type t;
    err e;
    err_clear(&e);
    assert_int_equal(repl_frame_recv(fd, &t, &p, timeout_ms, &e), -1);
    assert_int_equal(e.code, code);
    if (!strstr(e.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
    buf_free(&p);
}

static void test_frame_bad_length(void **state)
{
    (void)state;
    int sv[2];
    uint8_t hdr[4];

    /* oversize: refused from the 4 length bytes alone (no type byte sent) */
    make_pair(sv);
    store_u32be(hdr, REPL_FRAME_MAX + 1);
    write_raw(sv[0], hdr, 4);
    int64_t t0 = now_ms();
    expect_recv_fail(sv[1], 5000, ERR_VALIDATION, "exceeds the limit");
    assert_true(now_ms() - t0 < 1000);
    close(sv[0]);
    close(sv[1]);

    make_pair(sv);
    store_u32be(hdr, 0xFFFFFFFFu);
    write_raw(sv[0], hdr, 4);
    expect_recv_fail(sv[1], 5000, ERR_VALIDATION, "length 4294967295");
    close(sv[0]);
    close(sv[1]);

    make_pair(sv);
    store_u32be(hdr, 0);
    write_raw(sv[0], hdr, 4);
    expect_recv_fail(sv[1], 5000, ERR_VALIDATION, "length 0");
    close(sv[0]);
    close(sv[1]);

    /* exactly the limit is a legal length (the read then times out) */
    make_pair(sv);
    store_u32be(hdr, REPL_FRAME_MAX);
    write_raw(sv[0], hdr, 4);
    write_raw(sv[0], "\x05", 1);
    expect_recv_fail(sv[1], 50, ERR_UNAVAILABLE, "timed out after 50 ms reading a frame");
    close(sv[0]);
    close(sv[1]);
}

static void test_frame_eof(void **state)
{
    (void)state;
    int sv[2];

    make_pair(sv);
    close(sv[0]);
    expect_recv_fail(sv[1], 1000, ERR_UNAVAILABLE, "peer closed the connection");
    close(sv[1]);

    /* inside the header */
    make_pair(sv);
    write_raw(sv[0], "\x00\x00", 2);
    close(sv[0]);
    expect_recv_fail(sv[1], 1000, ERR_UNAVAILABLE, "mid-frame (got 2 bytes of the header)");
    close(sv[1]);

    /* inside the payload */
    make_pair(sv);
    uint8_t f[5 + 10];
    store_u32be(f, 1 + 100);
    f[4] = REPL_F_BATCH;
    memset(f + 5, 'z', 10);
    write_raw(sv[0], f, sizeof(f));
    shutdown(sv[0], SHUT_WR);
    expect_recv_fail(sv[1], 1000, ERR_UNAVAILABLE, "mid-frame (got 15 of 105 bytes)");
    close(sv[0]);
    close(sv[1]);

    /* header complete, no payload yet */
    make_pair(sv);
    write_raw(sv[0], f, 5);
    close(sv[0]);
    expect_recv_fail(sv[1], 1000, ERR_UNAVAILABLE, "mid-frame (got 5 of 105 bytes)");
    close(sv[1]);
}

static void test_frame_timeouts(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);

    /* nothing arrives */
    int64_t t0 = now_ms();
    expect_recv_fail(sv[1], 50, ERR_UNAVAILABLE, "timed out after 50 ms reading a frame");
    int64_t el = now_ms() - t0;
    assert_true(el >= 49);
    assert_true(el < 1000);

    /* a zero timeout does not wait */
    t0 = now_ms();
    expect_recv_fail(sv[1], 0, ERR_UNAVAILABLE, "timed out after 0 ms");
    assert_true(now_ms() - t0 < 50);

    /* part of a frame, then silence */
    uint8_t f[5 + 3];
    store_u32be(f, 1 + 20);
    f[4] = REPL_F_ACK;
    memset(f + 5, 1, 3);
    write_raw(sv[0], f, sizeof(f));
    t0 = now_ms();
    expect_recv_fail(sv[1], 50, ERR_UNAVAILABLE, "(got 8 of 25 bytes)");
    assert_true(now_ms() - t0 < 1000);
    close(sv[0]);
    close(sv[1]);

    /* sending into a full socket nobody reads */
    make_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    size_t len = 4u * 1024 * 1024;
    uint8_t *big = calloc(1, len);
    assert_non_null(big);
    err e;
    err_clear(&e);
    t0 = now_ms();
    assert_int_equal(repl_frame_send(sv[0], REPL_F_BATCH, big, len, 50, &e), -1);
    el = now_ms() - t0;
    assert_int_equal(e.code, ERR_UNAVAILABLE);
    if (!strstr(e.msg, "timed out after 50 ms sending a frame")) fail_msg("%s", e.msg);
    assert_true(el >= 49);
    assert_true(el < 1000);
    free(big);
    close(sv[0]);
    close(sv[1]);
}

/* Sending to a closed peer fails cleanly (no SIGPIPE kills the test). */
static void test_frame_send_closed_peer(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    err e;
    err_clear(&e);
    assert_int_equal(repl_frame_send(sv[0], REPL_F_ACK, "12345678", 8, 1000, &e), -1);
    assert_int_equal(e.code, ERR_UNAVAILABLE);
    assert_non_null(strstr(e.msg, "peer closed the connection"));
    close(sv[0]);

    /* a bad descriptor */
    buf p;
    buf_init(&p);
    repl_frame_type t;
    assert_int_equal(repl_frame_recv(-1, &t, &p, 100, &e), -1);
    assert_int_equal(e.code, ERR_UNAVAILABLE);
    assert_int_equal(repl_frame_send(-1, REPL_F_ACK, "1", 1, 100, &e), -1);
    assert_int_equal(e.code, ERR_UNAVAILABLE);
    buf_free(&p);
}

/* --------------------------------------------------------------- handshake */

#define KEY   "correct horse battery staple, 32b"
#define OTHER "correct horse battery staple, 32c"

typedef struct hooks_ctx {
    const char *accept; /* the one region accepted, or NULL for any */
    int accept_calls;
    int position_calls;
    char asked[REPL_REGION_MAX + 1];
} hooks_ctx;

static bool hook_accept(void *ctx, const char *region)
{
    hooks_ctx *h = ctx;
    h->accept_calls++;
    snprintf(h->asked, sizeof(h->asked), "%s", region);
    return !h->accept || strcmp(h->accept, region) == 0;
}

static uint64_t hook_position(void *ctx, const char *region)
{
    hooks_ctx *h = ctx;
    h->position_calls++;
    return 0x0123456789ABCDEFULL + strlen(region);
}

typedef struct side {
    int fd;
    const char *key;
    const char *region;
    const repl_server_hooks *hooks; /* server only */
    int timeout_ms;
    int rc;
    err e;
    char peer[REPL_REGION_MAX + 1];
    uint64_t from_seq;
} side;

static void *client_main(void *arg)
{
    side *s = arg;
    strcpy(s->peer, "untouched");
    s->rc = repl_handshake_client(s->fd, (const uint8_t *)s->key, strlen(s->key), s->region,
                                  s->peer, &s->from_seq, s->timeout_ms, &s->e);
    return NULL;
}

static void *server_main(void *arg)
{
    side *s = arg;
    strcpy(s->peer, "untouched");
    s->rc = repl_handshake_server(s->fd, (const uint8_t *)s->key, strlen(s->key), s->region,
                                  s->hooks, s->peer, s->timeout_ms, &s->e);
    return NULL;
}

/* Runs both sides on a socketpair; returns the elapsed milliseconds. Neither
 * thread closes its socket, so a side that fails must tell the other. */
static int64_t run_handshake(side *c, side *s)
{
    int sv[2];
    make_pair(sv);
    c->fd = sv[0];
    s->fd = sv[1];
    err_clear(&c->e);
    err_clear(&s->e);
    c->from_seq = 7;
    int64_t t0 = now_ms();
    pthread_t tc, ts;
    assert_int_equal(pthread_create(&ts, NULL, server_main, s), 0);
    assert_int_equal(pthread_create(&tc, NULL, client_main, c), 0);
    pthread_join(tc, NULL);
    pthread_join(ts, NULL);
    int64_t el = now_ms() - t0;
    close(sv[0]);
    close(sv[1]);
    return el;
}

static void expect_err(const err *e, err_code code, const char *needle)
{
    if (e->code != code) fail_msg("code %d, want %d (\"%s\")", e->code, code, e->msg);
    if (!strstr(e->msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e->msg, needle);
}

static void test_handshake_success(void **state)
{
    (void)state;
    const char *pairs[][2] = {{"us-east-1", "eu-west-1"}, {REGION_MAX_NAME, "a"}};
    for (int i = 0; i < 2; i++) {
        hooks_ctx hc = {.accept = pairs[i][0]};
        repl_server_hooks hooks = {
            .ctx = &hc, .accept_region = hook_accept, .position_for = hook_position};
        side c = {.key = KEY, .region = pairs[i][0], .timeout_ms = HS_TIMEOUT};
        side s = {.key = KEY, .region = pairs[i][1], .hooks = &hooks, .timeout_ms = HS_TIMEOUT};
        run_handshake(&c, &s);
        if (c.rc) fail_msg("client: %s", c.e.msg);
        if (s.rc) fail_msg("server: %s", s.e.msg);
        assert_string_equal(c.peer, pairs[i][1]);
        assert_string_equal(s.peer, pairs[i][0]);
        assert_true(c.from_seq == 0x0123456789ABCDEFULL + strlen(pairs[i][0]));
        assert_int_equal(hc.accept_calls, 1);
        assert_int_equal(hc.position_calls, 1);
        assert_string_equal(hc.asked, pairs[i][0]);
    }
}

static void test_handshake_wrong_key(void **state)
{
    (void)state;
    for (int which = 0; which < 2; which++) {
        hooks_ctx hc = {0};
        repl_server_hooks hooks = {
            .ctx = &hc, .accept_region = hook_accept, .position_for = hook_position};
        side c = {.key = which ? KEY : OTHER, .region = "c1", .timeout_ms = HS_TIMEOUT};
        side s = {
            .key = which ? OTHER : KEY, .region = "s1", .hooks = &hooks, .timeout_ms = HS_TIMEOUT};
        int64_t el = run_handshake(&c, &s);
        assert_int_equal(c.rc, -1);
        assert_int_equal(s.rc, -1);
        assert_true(el < HS_QUICK_MS);
        expect_err(&c.e, ERR_ACCESS_DENIED, "peer failed to prove the cluster key");
        expect_err(&s.e, ERR_ACCESS_DENIED, "peer refused: cluster key mismatch");
        assert_string_equal(c.peer, "");
        assert_string_equal(s.peer, "");
        assert_true(c.from_seq == 7);
        assert_int_equal(hc.accept_calls, 0);
        assert_int_equal(hc.position_calls, 0);
    }
    /* a key that is a prefix of the other is still wrong */
    hooks_ctx hc = {0};
    repl_server_hooks hooks = {
        .ctx = &hc, .accept_region = hook_accept, .position_for = hook_position};
    side c = {.key = "k", .region = "c1", .timeout_ms = HS_TIMEOUT};
    side s = {.key = "kk", .region = "s1", .hooks = &hooks, .timeout_ms = HS_TIMEOUT};
    run_handshake(&c, &s);
    assert_int_equal(c.rc, -1);
    assert_int_equal(s.rc, -1);
}

static void test_handshake_region_refused(void **state)
{
    (void)state;
    hooks_ctx hc = {.accept = "someone-else"};
    repl_server_hooks hooks = {
        .ctx = &hc, .accept_region = hook_accept, .position_for = hook_position};
    side c = {.key = KEY, .region = "intruder", .timeout_ms = HS_TIMEOUT};
    side s = {.key = KEY, .region = "s1", .hooks = &hooks, .timeout_ms = HS_TIMEOUT};
    int64_t el = run_handshake(&c, &s);
    assert_true(el < HS_QUICK_MS);
    assert_int_equal(c.rc, -1);
    assert_int_equal(s.rc, -1);
    expect_err(&s.e, ERR_VALIDATION, "region 'intruder' is not accepted");
    expect_err(&c.e, ERR_ACCESS_DENIED, "peer refused: region not accepted");
    assert_int_equal(hc.accept_calls, 1);
    assert_int_equal(hc.position_calls, 0);
    assert_string_equal(s.peer, "");

    /* a client claiming the server's own name */
    hooks_ctx hc2 = {0};
    hooks.ctx = &hc2;
    side c2 = {.key = KEY, .region = "same", .timeout_ms = HS_TIMEOUT};
    side s2 = {.key = KEY, .region = "same", .hooks = &hooks, .timeout_ms = HS_TIMEOUT};
    el = run_handshake(&c2, &s2);
    assert_true(el < HS_QUICK_MS);
    assert_int_equal(c2.rc, -1);
    assert_int_equal(s2.rc, -1);
    expect_err(&s2.e, ERR_VALIDATION, "peer claims this server's own region 'same'");
    expect_err(&c2.e, ERR_ACCESS_DENIED, "peer refused");
    assert_int_equal(hc2.accept_calls, 0);
}

/* A rogue peer speaking raw frames against the real server. */
typedef struct rogue_server {
    side s;
    hooks_ctx hc;
    repl_server_hooks hooks;
    pthread_t th;
    int peer_fd; /* the rogue's end */
} rogue_server;

static void rogue_server_start(rogue_server *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    int sv[2];
    make_pair(sv);
    r->hooks = (repl_server_hooks){
        .ctx = &r->hc, .accept_region = hook_accept, .position_for = hook_position};
    r->s = (side){
        .fd = sv[1], .key = KEY, .region = "srv", .hooks = &r->hooks, .timeout_ms = timeout_ms};
    r->peer_fd = sv[0];
    assert_int_equal(pthread_create(&r->th, NULL, server_main, &r->s), 0);
}

static void rogue_server_end(rogue_server *r)
{
    pthread_join(r->th, NULL);
    close(r->peer_fd);
    close(r->s.fd);
}

/* The ERROR frame the server sent the rogue. */
static void expect_error_frame(int fd, const char *needle)
{
    buf p;
    buf_init(&p);
    repl_frame_type t;
    err e;
    assert_int_equal(repl_frame_recv(fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_ERROR);
    if (!strstr((const char *)p.data, needle))
        fail_msg("ERROR \"%s\" lacks \"%s\"", p.data, needle);
    buf_free(&p);
}

static void hello(buf *p, uint16_t version, const char *region)
{
    buf_reset(p);
    buf_put_u16be(p, version);
    buf_putc(p, (uint8_t)strlen(region));
    buf_puts(p, region);
    for (int i = 0; i < REPL_NONCE_LEN; i++)
        buf_putc(p, (uint8_t)i);
}

static void test_handshake_bad_hello(void **state)
{
    (void)state;
    rogue_server r;
    buf p;
    buf_init(&p);
    err e;

    /* garbage instead of a frame: an HTTP request */
    rogue_server_start(&r, HS_TIMEOUT);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    write_raw(r.peer_fd, http, strlen(http));
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_VALIDATION, "replication handshake: malformed frame");
    assert_string_equal(r.s.peer, "");

    /* a well-formed frame of the wrong type */
    rogue_server_start(&r, HS_TIMEOUT);
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_BATCH, "\0\0\0\0", 4, 1000, &e), 0);
    expect_error_frame(r.peer_fd, "unexpected frame type");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_VALIDATION, "expected HELLO, got frame type 5");

    /* another protocol version */
    rogue_server_start(&r, HS_TIMEOUT);
    hello(&p, 2, "c1");
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_HELLO, p.data, p.len, 1000, &e), 0);
    expect_error_frame(r.peer_fd, "unsupported protocol version 2");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_VALIDATION, "protocol version 2");

    /* region names: bad character, empty, too long; a short nonce */
    const char *bad[] = {"us east", "a|b", "", NULL};
    for (int i = 0; i < 4; i++) {
        rogue_server_start(&r, HS_TIMEOUT);
        if (bad[i]) {
            hello(&p, REPL_PROTOCOL_VERSION, bad[i]);
        } else {
            hello(&p, REPL_PROTOCOL_VERSION, "ok");
            p.len--; /* 31-byte nonce */
        }
        assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_HELLO, p.data, p.len, 1000, &e), 0);
        expect_error_frame(r.peer_fd, "malformed HELLO");
        rogue_server_end(&r);
        expect_err(&r.s.e, ERR_VALIDATION, "malformed HELLO");
    }
    rogue_server_start(&r, HS_TIMEOUT);
    hello(&p, REPL_PROTOCOL_VERSION, REGION_MAX_NAME "x");
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_HELLO, p.data, p.len, 1000, &e), 0);
    expect_error_frame(r.peer_fd, "malformed HELLO");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_VALIDATION, "malformed HELLO");

    /* a client that never speaks: the server gives up at its timeout */
    int64_t t0 = now_ms();
    rogue_server_start(&r, 100);
    rogue_server_end(&r);
    assert_true(now_ms() - t0 < 1000);
    expect_err(&r.s.e, ERR_UNAVAILABLE, "replication handshake: timed out after 100 ms");

    /* a client that hangs up half-way through HELLO */
    rogue_server_start(&r, HS_TIMEOUT);
    hello(&p, REPL_PROTOCOL_VERSION, "c1");
    uint8_t hdr[5];
    store_u32be(hdr, (uint32_t)p.len + 1);
    hdr[4] = REPL_F_HELLO;
    write_raw(r.peer_fd, hdr, 5);
    write_raw(r.peer_fd, p.data, 10);
    shutdown(r.peer_fd, SHUT_WR);
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_UNAVAILABLE, "peer closed the connection mid-frame");
    buf_free(&p);
}

/* A client without the key that skips verifying proof_s and forges AUTH. */
static void test_handshake_forged_auth(void **state)
{
    (void)state;
    rogue_server r;
    rogue_server_start(&r, HS_TIMEOUT);
    buf p;
    buf_init(&p);
    err e;
    repl_frame_type t;
    hello(&p, REPL_PROTOCOL_VERSION, "c1");
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_HELLO, p.data, p.len, 1000, &e), 0);
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_CHALLENGE);
    assert_int_equal(p.len, 1 + 3 + REPL_NONCE_LEN + REPL_PROOF_LEN);
    assert_int_equal(p.data[0], 3);
    assert_memory_equal(p.data + 1, "srv", 3);
    uint8_t forged[REPL_PROOF_LEN];
    memset(forged, 0xAB, sizeof(forged));
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_AUTH, forged, sizeof(forged), 1000, &e), 0);
    expect_error_frame(r.peer_fd, "authentication failed");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_ACCESS_DENIED, "peer failed to prove the cluster key");
    assert_int_equal(r.hc.accept_calls, 0);

    /* a proof of the wrong length */
    rogue_server_start(&r, HS_TIMEOUT);
    hello(&p, REPL_PROTOCOL_VERSION, "c1");
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_HELLO, p.data, p.len, 1000, &e), 0);
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_AUTH, forged, 31, 1000, &e), 0);
    expect_error_frame(r.peer_fd, "malformed AUTH");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_VALIDATION, "malformed AUTH");
    buf_free(&p);
}

/* A server without the key: the client refuses before sending any proof. */
typedef struct rogue_client_run {
    side c;
    pthread_t th;
    int peer_fd;
} rogue_client_run;

static void rogue_client_start(rogue_client_run *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    int sv[2];
    make_pair(sv);
    r->c = (side){.fd = sv[0], .key = KEY, .region = "cli", .timeout_ms = timeout_ms};
    r->peer_fd = sv[1];
    assert_int_equal(pthread_create(&r->th, NULL, client_main, &r->c), 0);
}

static void rogue_client_end(rogue_client_run *r)
{
    pthread_join(r->th, NULL);
    close(r->peer_fd);
    close(r->c.fd);
}

static void test_handshake_server_without_key(void **state)
{
    (void)state;
    rogue_client_run r;
    buf p;
    buf_init(&p);
    err e;
    repl_frame_type t;

    rogue_client_start(&r, HS_TIMEOUT);
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_HELLO);
    assert_int_equal(p.len, 2 + 1 + 3 + REPL_NONCE_LEN);
    assert_int_equal(p.data[0], 0);
    assert_int_equal(p.data[1], REPL_PROTOCOL_VERSION);
    assert_int_equal(p.data[2], 3);
    assert_memory_equal(p.data + 3, "cli", 3);
    buf_reset(&p);
    buf_putc(&p, 3);
    buf_puts(&p, "srv");
    for (int i = 0; i < REPL_NONCE_LEN + REPL_PROOF_LEN; i++)
        buf_putc(&p, (uint8_t)(i * 13));
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_CHALLENGE, p.data, p.len, 1000, &e), 0);
    /* the next frame is an ERROR, never an AUTH */
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_ERROR);
    rogue_client_end(&r);
    expect_err(&r.c.e, ERR_ACCESS_DENIED, "peer failed to prove the cluster key");
    assert_string_equal(r.c.peer, "");

    /* a malformed CHALLENGE */
    rogue_client_start(&r, HS_TIMEOUT);
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_CHALLENGE, "\x03srv", 4, 1000, &e), 0);
    expect_error_frame(r.peer_fd, "malformed CHALLENGE");
    rogue_client_end(&r);
    expect_err(&r.c.e, ERR_VALIDATION, "malformed CHALLENGE");

    /* a silent server: the client times out instead of hanging */
    rogue_client_start(&r, 100);
    int64_t t0 = now_ms();
    pthread_join(r.th, NULL);
    int64_t el = now_ms() - t0;
    close(r.peer_fd);
    close(r.c.fd);
    expect_err(&r.c.e, ERR_UNAVAILABLE, "replication handshake: timed out after 100 ms");
    assert_true(el < 1000);

    /* a server that hangs up */
    rogue_client_start(&r, HS_TIMEOUT);
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    shutdown(r.peer_fd, SHUT_RDWR);
    rogue_client_end(&r);
    expect_err(&r.c.e, ERR_UNAVAILABLE, "peer closed the connection");
    buf_free(&p);
}

static void test_handshake_bad_args(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    err e;
    char peer[REPL_REGION_MAX + 1];
    uint64_t seq;
    hooks_ctx hc = {0};
    repl_server_hooks hooks = {
        .ctx = &hc, .accept_region = hook_accept, .position_for = hook_position};
    const uint8_t *k = (const uint8_t *)KEY;

    assert_int_equal(repl_handshake_client(sv[0], k, 0, "c", peer, &seq, 100, &e), -1);
    expect_err(&e, ERR_VALIDATION, "cluster key is empty");
    assert_int_equal(repl_handshake_client(sv[0], NULL, 5, "c", peer, &seq, 100, &e), -1);
    expect_err(&e, ERR_VALIDATION, "cluster key is empty");
    const char *bad[] = {"", "has space", "x/y", REGION_MAX_NAME "z", "\xC3\xA9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(repl_handshake_client(sv[0], k, 4, bad[i], peer, &seq, 100, &e), -1);
        expect_err(&e, ERR_VALIDATION, "region's name");
        assert_int_equal(repl_handshake_server(sv[1], k, 4, bad[i], &hooks, peer, 100, &e), -1);
        expect_err(&e, ERR_VALIDATION, "region's name");
    }
    assert_int_equal(repl_handshake_server(sv[1], k, 4, "s", NULL, peer, 100, &e), -1);
    expect_err(&e, ERR_VALIDATION, "hooks");
    repl_server_hooks half = {.ctx = &hc, .accept_region = hook_accept};
    assert_int_equal(repl_handshake_server(sv[1], k, 4, "s", &half, peer, 100, &e), -1);
    expect_err(&e, ERR_VALIDATION, "hooks");

    /* nothing was written by any of those */
    uint8_t c;
    assert_int_equal(recv(sv[0], &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
    close(sv[0]);
    close(sv[1]);
}

/* ------------------------------------------------- fixed nonces (the seam) */

static uint8_t nonce_fill = 0xA5;
static int nonce_calls;

/* Nonces of nonce_fill, nonce_fill + 1, ...: the same for both sides. */
static int fixed_nonces(uint8_t *out, size_t len)
{
    nonce_calls++;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(nonce_fill + i);
    return 0;
}

static int failing_nonces(uint8_t *out, size_t len)
{
    (void)out;
    (void)len;
    nonce_calls++;
    return -1;
}

/* The proof as wire.h defines it, computed here independently of wire.c. */
static void spec_proof(const char *key, const char *role, const char *client, const char *server,
                       const uint8_t *nc, const uint8_t *ns, uint8_t out[REPL_PROOF_LEN])
{
    uint8_t msg[256];
    int n = snprintf((char *)msg, sizeof(msg), "meridian-repl-1|%s|%s|%s|", role, client, server);
    assert_true(n > 0 && (size_t)n + 2 * REPL_NONCE_LEN + 1 <= sizeof(msg));
    size_t len = (size_t)n;
    memcpy(msg + len, nc, REPL_NONCE_LEN);
    len += REPL_NONCE_LEN;
    msg[len++] = '|';
    memcpy(msg + len, ns, REPL_NONCE_LEN);
    len += REPL_NONCE_LEN;
    unsigned int olen = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), msg, len, out, &olen));
    assert_int_equal(olen, REPL_PROOF_LEN);
}

/* With a fixed nonce source, both sides' bytes are fully determined: the
 * real client's HELLO and AUTH and the real server's CHALLENGE match the
 * documented layout and the HMAC of the documented message, byte for byte
 * (the existing tests only pit wire.c against itself), and a peer can answer
 * without waiting for the other side's nonce. */
/* A client's HELLO (with the client nonce given) and AUTH sent at once, as
 * only a client that knows the server's nonce could; the server's
 * CHALLENGE is then read into p. */
static void send_hello_and_auth(rogue_server *r, buf *p, const uint8_t *nonce,
                                const uint8_t *proof_c)
{
    err e;
    repl_frame_type t;
    hello(p, REPL_PROTOCOL_VERSION, "cli");
    memcpy(p->data + p->len - REPL_NONCE_LEN, nonce, REPL_NONCE_LEN);
    assert_int_equal(repl_frame_send(r->peer_fd, REPL_F_HELLO, p->data, p->len, 1000, &e), 0);
    assert_int_equal(repl_frame_send(r->peer_fd, REPL_F_AUTH, proof_c, REPL_PROOF_LEN, 1000, &e),
                     0);
    assert_int_equal(repl_frame_recv(r->peer_fd, &t, p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_CHALLENGE);
}

static void test_handshake_fixed_nonce_vectors(void **state)
{
    (void)state;
    repl_wire_set_nonce_source(fixed_nonces);
    uint8_t nonce[REPL_NONCE_LEN], proof_s[REPL_PROOF_LEN], proof_c[REPL_PROOF_LEN];
    fixed_nonces(nonce, sizeof(nonce));
    spec_proof(KEY, "server", "cli", "srv", nonce, nonce, proof_s);
    spec_proof(KEY, "client", "cli", "srv", nonce, nonce, proof_c);
    buf p, want;
    buf_init(&p);
    buf_init(&want);
    err e;
    repl_frame_type t;

    /* the real client against a scripted server */
    rogue_client_run rc;
    rogue_client_start(&rc, HS_TIMEOUT);
    assert_int_equal(repl_frame_recv(rc.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_HELLO);
    buf_put_u16be(&want, REPL_PROTOCOL_VERSION);
    buf_putc(&want, 3);
    buf_puts(&want, "cli");
    buf_append(&want, nonce, sizeof(nonce));
    assert_bytes(p.data, p.len, want.data, want.len);
    buf_reset(&p);
    buf_putc(&p, 3);
    buf_puts(&p, "srv");
    buf_append(&p, nonce, sizeof(nonce));
    buf_append(&p, proof_s, sizeof(proof_s));
    assert_int_equal(repl_frame_send(rc.peer_fd, REPL_F_CHALLENGE, p.data, p.len, 1000, &e), 0);
    assert_int_equal(repl_frame_recv(rc.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_AUTH);
    assert_bytes(p.data, p.len, proof_c, sizeof(proof_c));
    buf_reset(&p);
    repl_put_u64(&p, 99);
    assert_int_equal(repl_frame_send(rc.peer_fd, REPL_F_START, p.data, p.len, 1000, &e), 0);
    rogue_client_end(&rc);
    if (rc.c.rc) fail_msg("client: %s", rc.c.e.msg);
    assert_string_equal(rc.c.peer, "srv");
    assert_true(rc.c.from_seq == 99);

    /* the real server against a client that sends everything up front,
     * AUTH included, as only a known server nonce allows */
    rogue_server r;
    rogue_server_start(&r, HS_TIMEOUT);
    send_hello_and_auth(&r, &p, nonce, proof_c);
    buf_reset(&want);
    buf_putc(&want, 3);
    buf_puts(&want, "srv");
    buf_append(&want, nonce, sizeof(nonce));
    buf_append(&want, proof_s, sizeof(proof_s));
    assert_bytes(p.data, p.len, want.data, want.len);
    assert_int_equal(repl_frame_recv(r.peer_fd, &t, &p, 2000, &e), 0);
    assert_int_equal(t, REPL_F_START);
    uint64_t seq;
    assert_int_equal(repl_get_u64(&p, 0, &seq), 0);
    assert_true(seq == 0x0123456789ABCDEFULL + 3);
    rogue_server_end(&r);
    if (r.s.rc) fail_msg("server: %s", r.s.e.msg);
    assert_string_equal(r.s.peer, "cli");

    /* Replay: the same recorded client frames against a server whose nonce
     * differs are refused (proof_c binds nonce_s). */
    nonce_fill = 0x5A;
    rogue_server_start(&r, HS_TIMEOUT);
    send_hello_and_auth(&r, &p, nonce, proof_c);
    expect_error_frame(r.peer_fd, "authentication failed");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_ACCESS_DENIED, "peer failed to prove the cluster key");
    assert_int_equal(r.hc.accept_calls, 0);

    nonce_fill = 0xA5;
    repl_wire_set_nonce_source(NULL);
    buf_free(&p);
    buf_free(&want);
}

/* A nonce source that fails: the client gives up before any I/O, the server
 * after HELLO with an ERROR frame; both with ERR_INTERNAL. */
static void test_handshake_nonce_failure(void **state)
{
    (void)state;
    repl_wire_set_nonce_source(failing_nonces);
    nonce_calls = 0;
    int sv[2];
    make_pair(sv);
    char peer[REPL_REGION_MAX + 1];
    uint64_t seq = 5;
    err e;
    err_clear(&e);
    assert_int_equal(repl_handshake_client(sv[0], (const uint8_t *)KEY, strlen(KEY), "cli", peer,
                                           &seq, 1000, &e),
                     -1);
    expect_err(&e, ERR_INTERNAL, "replication handshake: RAND_bytes failed");
    assert_int_equal(nonce_calls, 1);
    assert_string_equal(peer, "");
    assert_true(seq == 5);
    uint8_t c;
    assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
    close(sv[0]);
    close(sv[1]);

    rogue_server r;
    rogue_server_start(&r, HS_TIMEOUT);
    buf p;
    buf_init(&p);
    hello(&p, REPL_PROTOCOL_VERSION, "cli");
    assert_int_equal(repl_frame_send(r.peer_fd, REPL_F_HELLO, p.data, p.len, 1000, &e), 0);
    expect_error_frame(r.peer_fd, "internal error");
    rogue_server_end(&r);
    expect_err(&r.s.e, ERR_INTERNAL, "RAND_bytes failed");
    assert_string_equal(r.s.peer, "");
    assert_int_equal(r.hc.accept_calls, 0);
    assert_int_equal(nonce_calls, 2);
    buf_free(&p);

    /* NULL restores RAND_bytes: two clients' nonces differ */
    repl_wire_set_nonce_source(NULL);
    uint8_t first[REPL_NONCE_LEN];
    for (int i = 0; i < 2; i++) {
        rogue_client_run rc;
        rogue_client_start(&rc, 200);
        repl_frame_type t;
        buf_init(&p);
        assert_int_equal(repl_frame_recv(rc.peer_fd, &t, &p, 2000, &e), 0);
        assert_int_equal(p.len, 2 + 1 + 3 + REPL_NONCE_LEN);
        if (i == 0)
            memcpy(first, p.data + p.len - REPL_NONCE_LEN, REPL_NONCE_LEN);
        else
            assert_memory_not_equal(first, p.data + p.len - REPL_NONCE_LEN, REPL_NONCE_LEN);
        shutdown(rc.peer_fd, SHUT_RDWR);
        rogue_client_end(&rc);
        buf_free(&p);
    }
    assert_int_equal(nonce_calls, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_entry_roundtrip_every_kind, arena_setup,
                                        arena_teardown),
        cmocka_unit_test_setup_teardown(test_entry_layout, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_entry_truncations, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_entry_rejects, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_entry_mutations, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_batch_roundtrip, arena_setup, arena_teardown),
        cmocka_unit_test_setup_teardown(test_batch_malformed, arena_setup, arena_teardown),
        cmocka_unit_test(test_u64_helpers),
        cmocka_unit_test(test_frame_roundtrip),
        cmocka_unit_test(test_frame_split_writes),
        cmocka_unit_test(test_frame_large),
        cmocka_unit_test(test_frame_bad_length),
        cmocka_unit_test(test_frame_eof),
        cmocka_unit_test(test_frame_timeouts),
        cmocka_unit_test(test_frame_send_closed_peer),
        cmocka_unit_test(test_handshake_success),
        cmocka_unit_test(test_handshake_wrong_key),
        cmocka_unit_test(test_handshake_region_refused),
        cmocka_unit_test(test_handshake_bad_hello),
        cmocka_unit_test(test_handshake_forged_auth),
        cmocka_unit_test(test_handshake_server_without_key),
        cmocka_unit_test(test_handshake_bad_args),
        cmocka_unit_test(test_handshake_fixed_nonce_vectors),
        cmocka_unit_test(test_handshake_nonce_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
