/* fuzz_json_item.c - DynamoDB JSON -> item conversion (item/json.c) as PutItem
 * uses it: the body is parsed by cJSON, then mv_map_from_json (an Item) or
 * mv_from_json (one AttributeValue) builds validated values.
 *
 * Properties checked for every input that converts:
 *   - JSON round trip: mv_map_to_json -> parse -> mv_map_from_json succeeds,
 *     gives an equal item, and writing it again gives the same text;
 *   - codec round trip: item_encode -> item_decode succeeds (the decoder
 *     checks value.h's invariants), is equal, and re-encodes identically;
 *   - mv_clone is equal; sizes are consistent.
 * Raw input is also fed to base64_decode (re-encoding must give the input).
 */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "item/codec.h"
#include "item/json.h"
#include "item/value.h"

static void check_item(arena *a, const mv_value *item)
{
    buf j1, j2, c1, c2;
    buf_init(&j1);
    buf_init(&j2);
    buf_init(&c1);
    buf_init(&c2);

    /* JSON round trip. */
    mv_map_to_json(&j1, item);
    cJSON *p = cJSON_ParseWithLength((const char *)j1.data, j1.len);
    FUZZ_CHECK(p != NULL);
    err e;
    err_clear(&e);
    mv_value *again = mv_map_from_json(a, p, &e);
    if (!again) fprintf(stderr, "re-parse failed: %s\n%.*s\n", e.msg, (int)j1.len, j1.data);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(mv_equal(item, again));
    FUZZ_CHECK(mv_equal(again, item));
    mv_map_to_json(&j2, again);
    FUZZ_CHECK(j1.len == j2.len && memcmp(j1.data, j2.data, j1.len) == 0);
    cJSON_Delete(p);

    /* Binary codec round trip. */
    item_encode(&c1, item);
    mv_value *dec = NULL;
    FUZZ_CHECK(item_decode(a, c1.data, c1.len, &dec) == 0);
    FUZZ_CHECK(mv_equal(item, dec));
    item_encode(&c2, dec);
    FUZZ_CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0);

    mv_value *cl = mv_clone(a, item);
    FUZZ_CHECK(mv_equal(item, cl));
    FUZZ_CHECK(mv_item_size(item) == mv_item_size(dec));
    FUZZ_CHECK(mv_item_size(item) == mv_item_size(cl));

    buf_free(&j1);
    buf_free(&j2);
    buf_free(&c1);
    buf_free(&c2);
}

static void check_value(arena *a, const mv_value *v)
{
    buf j;
    buf_init(&j);
    mv_to_json(&j, v);
    cJSON *p = cJSON_ParseWithLength((const char *)j.data, j.len);
    FUZZ_CHECK(p != NULL);
    err e;
    err_clear(&e);
    mv_value *again = mv_from_json(a, p, &e);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(mv_equal(v, again));
    FUZZ_CHECK(mv_value_size(v) == mv_value_size(again));
    cJSON_Delete(p);
    buf_free(&j);
}

static void check_base64(arena *a, const uint8_t *data, size_t size)
{
    size_t n = 0, m = 0;
    uint8_t *raw = base64_decode(a, (const char *)data, size, &n);
    if (raw) {
        char *text = base64_encode(a, raw, n, &m);
        FUZZ_CHECK(m == size && memcmp(text, data, size) == 0);
    }
    /* Encoding any bytes decodes back to them. */
    char *text = base64_encode(a, data, size, &m);
    uint8_t *back = base64_decode(a, text, m, &n);
    FUZZ_CHECK(back != NULL && n == size && memcmp(back, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena a;
    arena_init(&a);
    char *text = fuzz_cstr(data, size);
    cJSON *j = cJSON_ParseWithLengthOpts(text, size + 1, NULL, 1);
    if (j) {
        err e;
        err_clear(&e);
        if (cJSON_IsObject(j)) {
            mv_value *item = mv_map_from_json(&a, j, &e);
            if (item) {
                FUZZ_CHECK(item->type == MV_M);
                check_item(&a, item);
            } else {
                FUZZ_CHECK(e.code != ERR_NONE && e.msg[0] != '\0');
            }
        }
        err_clear(&e);
        mv_value *v = mv_from_json(&a, j, &e);
        if (v) {
            check_value(&a, v);
        } else {
            FUZZ_CHECK(e.code != ERR_NONE && e.msg[0] != '\0');
        }
        cJSON_Delete(j);
    }
    check_base64(&a, data, size);
    free(text);
    arena_free(&a);
    return 0;
}
