/* codec.h - binary encodings of items and keys (the on-disk format).
 *
 * Item encoding (values in the items column family): a compact, versioned
 * binary form of an MV_M value; see codec.c for the byte layout. It is the
 * only representation of items on disk: JSON never reaches storage.
 *
 * Key encoding: an item's storage key is
 *     table_id (u64 BE) | hash32(enc(pk)) (u32 BE) | enc(pk) [| enc(sk)]
 * where enc() is an order-preserving, self-delimiting encoding of an S, N or B
 * scalar: memcmp order of enc(x) equals DynamoDB's order of x (bytes for S and
 * B, numeric for N), and no encoding is a prefix of another. Hence
 *   - all items of one partition are contiguous and sorted by sort key, so a
 *     Query is one forward or backward range walk;
 *   - a table's partitions are spread over the 32-bit hash space, so Scan
 *     segment i of N is the hash range [i*2^32/N, (i+1)*2^32/N), and replica
 *     digests (meridian verify) are computed per hash range.
 * The hash (key_hash) is part of the on-disk format and must never change.
 */
#ifndef MERIDIAN_CODEC_H
#define MERIDIAN_CODEC_H

#include <stdint.h>

#include "item/value.h"
#include "util/buf.h"

/* Appends the binary encoding of item (an MV_M value) to out. */
void item_encode(buf *out, const mv_value *item);
/* Decodes an item encoding; returns 0, or -1 if the bytes are malformed
 * (never reads outside [p, p+len)). Values are allocated from a. */
int item_decode(arena *a, const uint8_t *p, size_t len, mv_value **out);

/* Appends enc(v) for an S, N or B value. */
void key_encode_scalar(buf *out, const mv_value *v);
/* Decodes enc() of a scalar of type t at [*p, end), advancing *p. */
int key_decode_scalar(arena *a, mv_type t, const uint8_t **p, const uint8_t *end, mv_value **out);

/* Stable 32-bit hash of an encoded partition key (part of the on-disk format). */
uint32_t key_hash(const uint8_t *enc_pk, size_t len);

/* Appends table_id | hash | enc(pk) | enc(sk) (sk may be NULL for hash-only tables). */
void key_encode_item(buf *out, uint64_t table_id, const mv_value *pk, const mv_value *sk);
/* Appends table_id | hash | enc(pk): the prefix shared by a partition's items. */
void key_encode_partition(buf *out, uint64_t table_id, const mv_value *pk);
/* Decodes a storage key produced by key_encode_item given the key types
 * (sk_type 0 for hash-only tables). */
int key_decode_item(arena *a, const uint8_t *p, size_t len, mv_type pk_type, mv_type sk_type,
                    mv_value **pk, mv_value **sk);

#endif
