/* codec.c - binary encodings of items and keys (see codec.h). Everything in
 * this file is on-disk format: changing any byte layout or the hash breaks
 * existing data.
 *
 * Item encoding (item_encode / item_decode):
 *     item    = version:u8 (0x01)  count:varint  member*      (members of the MV_M)
 *     member  = name_len:varint  name:bytes  value
 *     value   = type:u8 (the mv_type number, 1..10)  payload
 *   payloads by type:
 *     S, B    : len:varint  bytes
 *     N       : the number's key encoding (num_key_encode: self-delimiting,
 *               at most NUM_KEY_MAX bytes); decoding formats canonical text
 *     BOOL    : u8, 0 or 1
 *     NULL    : nothing
 *     M       : count:varint  member*      (names strictly increasing)
 *     L       : count:varint  value*
 *     SS, BS  : count:varint  (len:varint bytes)*   (elements strictly increasing)
 *     NS      : count:varint  num_key_encode*        (elements strictly increasing)
 * varints are unsigned LEB128 (buf_put_varint). The decoder checks every
 * length against the bytes that remain before allocating, rejects unknown
 * type bytes, non-canonical BOOLs and numbers, unsorted or duplicate map names
 * and set elements, empty sets, nesting deeper than DECODE_MAX_DEPTH, and
 * trailing bytes, so that every decoded value satisfies value.h's invariants.
 *
 * Scalar key encoding (key_encode_scalar), order-preserving and
 * self-delimiting:
 *     S, B    : the bytes with each 0x00 written as 0x00 0xFF, then 0x00 0x01.
 *               The terminator sorts below an escaped 0x00 and below every
 *               other byte, so a proper prefix sorts first ("a" < "a\0" < "ab").
 *     N       : num_key_encode (see number.c).
 */
#include "item/codec.h"

#include <string.h>

#define ITEM_FORMAT_VERSION 0x01
/* Deepest nesting the decoder accepts. DynamoDB itself allows 32 levels; the
 * margin keeps any item this server ever wrote readable while bounding the
 * decoder's recursion. */
#define DECODE_MAX_DEPTH 64

/* ---- item encoding ---- */

static void encode_value(buf *out, const mv_value *v);

static void encode_bytes(buf *out, const char *p, size_t len)
{
    buf_put_varint(out, len);
    buf_append(out, p, len);
}

/* N values hold canonical text (value.h invariant 3), so parsing succeeds;
 * zero is written should it ever not. */
static void encode_num_text(buf *out, const mv_value *v)
{
    num n;
    uint8_t k[NUM_KEY_MAX];
    if (mv_get_num(v, &n, NULL) < 0) memset(&n, 0, sizeof(n));
    buf_append(out, k, num_key_encode(&n, k));
}

static void encode_members(buf *out, const mv_value *map)
{
    buf_put_varint(out, map->u.map.n);
    for (size_t i = 0; i < map->u.map.n; i++) {
        const mv_member *m = &map->u.map.members[i];
        encode_bytes(out, m->name, m->name_len);
        encode_value(out, m->value);
    }
}

static void encode_value(buf *out, const mv_value *v)
{
    buf_putc(out, (uint8_t)v->type);
    switch (v->type) {
    case MV_S:
    case MV_B:
        encode_bytes(out, v->u.str.ptr, v->u.str.len);
        break;
    case MV_N:
        encode_num_text(out, v);
        break;
    case MV_BOOL:
        buf_putc(out, v->u.boolean ? 1 : 0);
        break;
    case MV_NULL:
        break;
    case MV_M:
        encode_members(out, v);
        break;
    case MV_L:
        buf_put_varint(out, v->u.list.n);
        for (size_t i = 0; i < v->u.list.n; i++)
            encode_value(out, v->u.list.items[i]);
        break;
    case MV_SS:
    case MV_BS:
    case MV_NS:
        buf_put_varint(out, v->u.list.n);
        for (size_t i = 0; i < v->u.list.n; i++) {
            const mv_value *el = v->u.list.items[i];
            if (v->type == MV_NS)
                encode_num_text(out, el);
            else
                encode_bytes(out, el->u.str.ptr, el->u.str.len);
        }
        break;
    }
}

void item_encode(buf *out, const mv_value *item)
{
    buf_putc(out, ITEM_FORMAT_VERSION);
    if (!item || item->type != MV_M) {
        buf_put_varint(out, 0);
        return;
    }
    encode_members(out, item);
}

/* ---- item decoding ---- */

typedef struct reader {
    arena *a;
    const uint8_t *p;
    const uint8_t *end;
} reader;

static size_t remaining(const reader *r)
{
    return (size_t)(r->end - r->p);
}

static int read_u8(reader *r, uint8_t *out)
{
    if (r->p >= r->end) return -1;
    *out = *r->p++;
    return 0;
}

/* A varint that counts things each taking at least min_bytes of the input
 * that follows: anything larger is malformed (and never allocated for). */
static int read_count(reader *r, size_t min_bytes, size_t *out)
{
    uint64_t v;
    if (varint_read(&r->p, r->end, &v) < 0) return -1;
    if (v > remaining(r) / min_bytes) return -1;
    *out = (size_t)v;
    return 0;
}

/* Reads len:varint bytes; the result points into the input. */
static int read_bytes(reader *r, const uint8_t **p, size_t *len)
{
    if (read_count(r, 1, len) < 0) return -1;
    *p = r->p;
    r->p += *len;
    return 0;
}

static int bytes_order(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

static mv_value *decode_value(reader *r, int depth);

static mv_value *decode_str(reader *r, mv_type t)
{
    const uint8_t *p;
    size_t len;
    if (read_bytes(r, &p, &len) < 0) return NULL;
    return mv_new_str(r->a, t, (const char *)p, len);
}

static int decode_num(reader *r, num *n)
{
    return num_key_decode(&r->p, r->end, n);
}

static mv_value *decode_members(reader *r, int depth)
{
    size_t n;
    /* A member takes at least 2 bytes: name length and type (NULL has no
     * payload, and nested names may be empty). */
    if (read_count(r, 2, &n) < 0) return NULL;
    mv_member *ms = n ? arena_alloc(r->a, n * sizeof(*ms)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *name;
        size_t len;
        if (read_bytes(r, &name, &len) < 0) return NULL;
        if (i > 0 &&
            bytes_order((const uint8_t *)ms[i - 1].name, ms[i - 1].name_len, name, len) >= 0)
            return NULL;
        ms[i].name = arena_memdup(r->a, name, len);
        ms[i].name_len = len;
        ms[i].value = decode_value(r, depth + 1);
        if (!ms[i].value) return NULL;
    }
    mv_value *v = arena_alloc(r->a, sizeof(*v));
    v->type = MV_M;
    v->u.map.members = ms;
    v->u.map.n = n;
    return v;
}

static mv_value *decode_set(reader *r, mv_type t)
{
    size_t n;
    if (read_count(r, 1, &n) < 0 || n == 0) return NULL;
    const mv_value **items = arena_alloc(r->a, n * sizeof(*items));
    num prev, cur;
    for (size_t i = 0; i < n; i++) {
        mv_value *el;
        if (t == MV_NS) {
            if (decode_num(r, &cur) < 0) return NULL;
            if (i > 0 && num_cmp(&prev, &cur) >= 0) return NULL;
            prev = cur;
            el = mv_new_num(r->a, &cur);
        } else {
            el = decode_str(r, t == MV_SS ? MV_S : MV_B);
            if (!el) return NULL;
            if (i > 0 &&
                bytes_order((const uint8_t *)items[i - 1]->u.str.ptr, items[i - 1]->u.str.len,
                            (const uint8_t *)el->u.str.ptr, el->u.str.len) >= 0)
                return NULL;
        }
        items[i] = el;
    }
    mv_value *v = arena_alloc(r->a, sizeof(*v));
    v->type = t;
    v->u.list.items = items;
    v->u.list.n = n;
    return v;
}

static mv_value *decode_value(reader *r, int depth)
{
    if (depth > DECODE_MAX_DEPTH) return NULL;
    uint8_t t;
    if (read_u8(r, &t) < 0) return NULL;
    switch (t) {
    case MV_S:
    case MV_B:
        return decode_str(r, (mv_type)t);
    case MV_N: {
        num n;
        if (decode_num(r, &n) < 0) return NULL;
        return mv_new_num(r->a, &n);
    }
    case MV_BOOL: {
        uint8_t b;
        if (read_u8(r, &b) < 0 || b > 1) return NULL;
        return mv_new_bool(r->a, b == 1);
    }
    case MV_NULL:
        return mv_new_null(r->a);
    case MV_M:
        return decode_members(r, depth);
    case MV_L: {
        size_t n;
        /* An element takes at least its type byte. */
        if (read_count(r, 1, &n) < 0) return NULL;
        const mv_value **items = n ? arena_alloc(r->a, n * sizeof(*items)) : NULL;
        for (size_t i = 0; i < n; i++) {
            items[i] = decode_value(r, depth + 1);
            if (!items[i]) return NULL;
        }
        return mv_new_list(r->a, items, n);
    }
    case MV_SS:
    case MV_NS:
    case MV_BS:
        return decode_set(r, (mv_type)t);
    default:
        return NULL;
    }
}

int item_decode(arena *a, const uint8_t *p, size_t len, mv_value **out)
{
    reader r = {.a = a, .p = p, .end = p + len};
    uint8_t version;
    if (!p || read_u8(&r, &version) < 0 || version != ITEM_FORMAT_VERSION) return -1;
    mv_value *item = decode_members(&r, 1);
    if (!item || r.p != r.end) return -1;
    *out = item;
    return 0;
}

/* ---- key encoding ---- */

void key_encode_scalar(buf *out, const mv_value *v)
{
    if (v->type == MV_N) {
        encode_num_text(out, v);
        return;
    }
    const uint8_t *p = (const uint8_t *)v->u.str.ptr;
    size_t len = v->u.str.len, run = 0;
    buf_reserve(out, len + 2);
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0x00) continue;
        buf_append(out, p + run, i + 1 - run); /* up to and including the 0x00 */
        buf_putc(out, 0xFF);
        run = i + 1;
    }
    buf_append(out, p + run, len - run);
    buf_putc(out, 0x00);
    buf_putc(out, 0x01);
}

int key_decode_scalar(arena *a, mv_type t, const uint8_t **p, const uint8_t *end, mv_value **out)
{
    const uint8_t *q = *p;
    if (t == MV_N) {
        num n;
        if (num_key_decode(&q, end, &n) < 0) return -1;
        *out = mv_new_num(a, &n);
        *p = q;
        return 0;
    }
    if (t != MV_S && t != MV_B) return -1;
    /* First pass: find the terminator and the decoded length. */
    size_t n = 0;
    const uint8_t *s = q;
    for (;;) {
        if (s >= end) return -1;
        if (*s != 0x00) {
            s++;
            n++;
            continue;
        }
        if (s + 1 >= end) return -1;
        if (s[1] == 0x01) break;
        if (s[1] != 0xFF) return -1;
        s += 2;
        n++;
    }
    char *dst = arena_alloc(a, n + 1);
    size_t k = 0;
    while (q < s) {
        dst[k++] = (char)*q;
        q += *q == 0x00 ? 2 : 1;
    }
    dst[k] = '\0';
    mv_value *v = arena_alloc(a, sizeof(*v));
    v->type = t;
    v->u.str.ptr = dst;
    v->u.str.len = n;
    *out = v;
    *p = s + 2;
    return 0;
}

/* On-disk format: FNV-1a (64-bit) over the encoded partition key, folded to
 * 32 bits (high half XOR low half), then the MurmurHash3 fmix32 finaliser for
 * avalanche. Never change it: stored keys and Scan segments depend on it. */
uint32_t key_hash(const uint8_t *enc_pk, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= enc_pk[i];
        h *= 0x100000001b3ULL;
    }
    uint32_t x = (uint32_t)(h ^ (h >> 32));
    x ^= x >> 16;
    x *= 0x85ebca6bU;
    x ^= x >> 13;
    x *= 0xc2b2ae35U;
    x ^= x >> 16;
    return x;
}

void key_encode_partition(buf *out, uint64_t table_id, const mv_value *pk)
{
    buf enc;
    buf_init(&enc);
    key_encode_scalar(&enc, pk);
    buf_put_u64be(out, table_id);
    buf_put_u32be(out, key_hash(enc.data, enc.len));
    buf_append(out, enc.data, enc.len);
    buf_free(&enc);
}

void key_encode_item(buf *out, uint64_t table_id, const mv_value *pk, const mv_value *sk)
{
    key_encode_partition(out, table_id, pk);
    if (sk) key_encode_scalar(out, sk);
}

int key_decode_item(arena *a, const uint8_t *p, size_t len, mv_type pk_type, mv_type sk_type,
                    mv_value **pk, mv_value **sk)
{
    if (!p || len < 12) return -1;
    const uint8_t *end = p + len;
    const uint8_t *q = p + 12;
    uint32_t hash = load_u32be(p + 8);
    mv_value *pkv = NULL, *skv = NULL;
    if (key_decode_scalar(a, pk_type, &q, end, &pkv) < 0) return -1;
    if (key_hash(p + 12, (size_t)(q - (p + 12))) != hash) return -1;
    if (sk_type) {
        if (key_decode_scalar(a, sk_type, &q, end, &skv) < 0) return -1;
    }
    if (q != end) return -1;
    if (pk) *pk = pkv;
    if (sk) *sk = skv;
    return 0;
}
