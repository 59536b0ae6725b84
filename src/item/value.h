/* value.h - the attribute value model shared by every module.
 *
 * An item is an mv_value of type MV_M whose members are its attributes. Values
 * are immutable once built and normally live in a request arena (arena.h);
 * nothing here is freed individually.
 *
 * Invariants (established by every constructor in this module and by the
 * JSON and binary decoders; assumed by the codec, comparisons and digests):
 *   1. Map members are sorted by name (memcmp order, shorter first on a tie)
 *      and names are unique.
 *   2. Set elements (SS, NS, BS) are sorted by mv_compare_scalar and unique;
 *      sets are never empty.
 *   3. N values hold canonical number text (num_format) in str.
 *   4. B values and BS elements hold the raw bytes (base64 is only the wire form).
 */
#ifndef MERIDIAN_VALUE_H
#define MERIDIAN_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "item/number.h"
#include "util/arena.h"
#include "util/err.h"

typedef enum mv_type {
    MV_S = 1,
    MV_N = 2,
    MV_B = 3,
    MV_BOOL = 4,
    MV_NULL = 5,
    MV_M = 6,
    MV_L = 7,
    MV_SS = 8,
    MV_NS = 9,
    MV_BS = 10,
} mv_type;

typedef struct mv_value mv_value;

typedef struct mv_member {
    const char *name; /* NUL-terminated as well, for convenience */
    size_t name_len;
    const mv_value *value;
} mv_member;

struct mv_value {
    mv_type type;
    union {
        struct {
            const char *ptr; /* S: UTF-8, N: canonical text, B: raw bytes; NUL-terminated */
            size_t len;
        } str;
        bool boolean; /* BOOL; NULL carries no payload (always true in DynamoDB) */
        struct {
            const mv_value **items; /* L: any values; SS/NS/BS: S/N/B values */
            size_t n;
        } list;
        struct {
            mv_member *members;
            size_t n;
        } map;
    } u;
};

/* The DynamoDB type descriptor: "S", "N", ..., "BS". */
const char *mv_type_name(mv_type t);
/* Parses a type descriptor; returns 0 if unknown. */
mv_type mv_type_from_name(const char *s, size_t len);
static inline bool mv_is_set(mv_type t)
{
    return t == MV_SS || t == MV_NS || t == MV_BS;
}
/* The element type of a set type (MV_SS -> MV_S, ...), 0 otherwise. */
mv_type mv_set_elem_type(mv_type set_type);
/* The set type holding elements of a scalar type (MV_S -> MV_SS, ...), 0 otherwise. */
mv_type mv_set_type_of(mv_type elem_type);

/* Constructors (arena-allocated; strings are copied). */
mv_value *mv_new_str(arena *a, mv_type t, const char *p,
                     size_t len); /* S, N (must be canonical), B */
mv_value *mv_new_bool(arena *a, bool b);
mv_value *mv_new_null(arena *a);
/* Takes ownership of the members array (arena memory); sorts it and rejects
 * duplicate names (returns NULL). */
mv_value *mv_new_map(arena *a, mv_member *members, size_t n);
mv_value *mv_new_list(arena *a, const mv_value **items, size_t n);
/* Sorts and checks uniqueness; returns NULL with e set to DynamoDB's
 * "Input collection [...] contains duplicates." or the empty-set message. */
mv_value *mv_new_set(arena *a, mv_type set_type, const mv_value **items, size_t n, err *e);
/* Number from a parsed num (formats canonical text). */
mv_value *mv_new_num(arena *a, const num *n);
/* Parses the text of an N value into n (for arithmetic and comparison). */
int mv_get_num(const mv_value *v, num *n, err *e);

/* Looks up a map member by name; NULL if absent. Binary search (invariant 1). */
const mv_value *mv_map_get(const mv_value *map, const char *name, size_t name_len);
/* Returns a new map equal to map with name set to value (value NULL removes it). */
mv_value *mv_map_set(arena *a, const mv_value *map, const char *name, size_t name_len,
                     const mv_value *value);

/* Orders two scalars of the same type: S and B by unsigned bytes, N numerically.
 * Undefined for other types. */
int mv_compare_scalar(const mv_value *a, const mv_value *b);
/* Deep equality with DynamoDB semantics (types must match; numbers compare
 * numerically; sets as sets; maps regardless of member order). */
bool mv_equal(const mv_value *a, const mv_value *b);

/* DynamoDB's size accounting (bytes): attribute name lengths + value sizes,
 * per the "Item sizes and formats" rules. mv_item_size is for a whole item. */
size_t mv_value_size(const mv_value *v);
size_t mv_item_size(const mv_value *item);

/* Deep copy into another arena. */
mv_value *mv_clone(arena *a, const mv_value *v);

#endif
