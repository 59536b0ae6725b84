/* json.h - DynamoDB JSON wire form of attribute values, both directions.
 *
 * Parsing goes through cJSON (the request body is parsed once by the API
 * layer); these functions walk the cJSON tree and build validated mv_values,
 * applying DynamoDB's rules and messages for malformed AttributeValues:
 * exactly one type key, numbers valid (number.h), base64 binary, sets non-empty
 * and without duplicates, NULL must be true, nesting depth at most 32.
 * Writing produces JSON text directly into a buf (no intermediate tree).
 */
#ifndef MERIDIAN_ITEM_JSON_H
#define MERIDIAN_ITEM_JSON_H

#include <cjson/cJSON.h>

#include "item/value.h"
#include "util/buf.h"

/* One AttributeValue object, e.g. {"S":"x"} or {"M":{...}}. */
mv_value *mv_from_json(arena *a, const cJSON *j, err *e);
/* An object of attribute name -> AttributeValue (an Item, a Key, or
 * ExpressionAttributeValues) as an MV_M value. Attribute names must be
 * non-empty. */
mv_value *mv_map_from_json(arena *a, const cJSON *obj, err *e);

/* Writes a JSON string literal (quotes and escapes included). */
void json_write_string(buf *out, const char *s, size_t len);
/* Writes one AttributeValue, e.g. {"N":"1.5"}. */
void mv_to_json(buf *out, const mv_value *v);
/* Writes a map's members as an object of name -> AttributeValue: {"a":{"S":"x"}}. */
void mv_map_to_json(buf *out, const mv_value *map);

/* Base64 (standard alphabet, padded) helpers used for B/BS and pagination keys. */
char *base64_encode(arena *a, const uint8_t *p, size_t len, size_t *out_len);
/* Returns NULL on invalid input. */
uint8_t *base64_decode(arena *a, const char *s, size_t len, size_t *out_len);

#endif
