/* ops_table.c - table operations: CreateTable, DescribeTable, ListTables,
 * DeleteTable, UpdateTable, including global tables (ReplicaUpdates Create /
 * Delete, Replicas in DescribeTable, DeleteTable of a replica; see
 * docs/REPLICATION.md). Tables are ACTIVE as soon as CreateTable returns:
 * creating one is a single catalog write. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ops.h"
#include "clock/hlc.h"
#include "item/json.h"
#include "repl/repl.h"

/* Table operations name a missing TableName differently from item operations. */
static int table_name_param(op_ctx *c, const char **name)
{
    if (!req_get(c->req, "TableName"))
        return err_validation(c->e, "The parameter 'TableName' is required but was not present "
                                    "in the request");
    if (req_string(c, c->req, "TableName", true, name) < 0) return -1;
    return req_table_name(c, "tableName", *name);
}

static int delete_own_replica(op_ctx *c, table *t, bool delete_table, table **gone);

/* TableName of a table operation, looked up in the caller's account (counted
 * reference), with DynamoDB's table-operation "not found" message. */
static int table_param(op_ctx *c, const char **name, table **out)
{
    if (table_name_param(c, name) < 0) return -1;
    *out = catalog_get(c->d->cat, c->account, *name);
    if (!*out)
        return err_set(c->e, ERR_RESOURCE_NOT_FOUND,
                       "Requested resource not found: Table: %s not found", *name);
    return 0;
}

static void write_table_description(op_ctx *c, table *t, const char *status);

/* The whole response {"<key>": TableDescription}. */
static void respond_description(op_ctx *c, const char *key, table *t, const char *status)
{
    buf_printf(c->out, "{\"%s\":", key);
    write_table_description(c, t, status);
    buf_putc(c->out, '}');
}

static void write_str_field(buf *out, const char *name, const char *val, bool comma)
{
    if (comma) buf_putc(out, ',');
    json_write_string(out, name, strlen(name));
    buf_putc(out, ':');
    json_write_string(out, val, strlen(val));
}

/* Writes a TableDescription object for t. */
static void write_table_description(op_ctx *c, table *t, const char *status)
{
    buf *o = c->out;
    table_settings s;
    pthread_mutex_lock(&t->settings_mu);
    s = t->settings;
    pthread_mutex_unlock(&t->settings_mu);

    buf_puts(o, "{\"AttributeDefinitions\":[");
    for (size_t i = 0; i < t->n_attr_defs; i++) {
        buf_puts(o, i ? ",{" : "{");
        write_str_field(o, "AttributeName", t->attr_defs[i].name, false);
        write_str_field(o, "AttributeType", mv_type_name(t->attr_defs[i].type), true);
        buf_putc(o, '}');
    }
    buf_puts(o, "]");
    write_str_field(o, "TableName", t->name, true);
    buf_puts(o, ",\"KeySchema\":[{");
    write_str_field(o, "AttributeName", t->pk_name, false);
    buf_puts(o, ",\"KeyType\":\"HASH\"}");
    if (t->sk_name) {
        buf_puts(o, ",{");
        write_str_field(o, "AttributeName", t->sk_name, false);
        buf_puts(o, ",\"KeyType\":\"RANGE\"}");
    }
    buf_puts(o, "]");
    write_str_field(o, "TableStatus", status, true);
    buf_printf(o, ",\"CreationDateTime\":%.3f", (double)t->created_ms / 1000.0);
    buf_printf(o,
               ",\"ProvisionedThroughput\":{\"NumberOfDecreasesToday\":0,"
               "\"ReadCapacityUnits\":%" PRId64 ",\"WriteCapacityUnits\":%" PRId64 "}",
               s.pay_per_request ? (int64_t)0 : s.rcu, s.pay_per_request ? (int64_t)0 : s.wcu);
    int64_t items = atomic_load(&t->item_count), bytes = atomic_load(&t->size_bytes);
    buf_printf(o, ",\"TableSizeBytes\":%" PRId64 ",\"ItemCount\":%" PRId64, bytes < 0 ? 0 : bytes,
               items < 0 ? 0 : items);
    buf_puts(o, ",\"TableArn\":");
    char arn[600];
    snprintf(arn, sizeof(arn), "arn:aws:dynamodb:%s:%s:table/%s", c->region, t->account, t->name);
    json_write_string(o, arn, strlen(arn));
    buf_printf(o, ",\"TableId\":\"00000000-0000-4000-8000-%012" PRIx64 "\"", t->id);
    if (s.pay_per_request)
        buf_printf(o,
                   ",\"BillingModeSummary\":{\"BillingMode\":\"PAY_PER_REQUEST\","
                   "\"LastUpdateToPayPerRequestDateTime\":%.3f}",
                   (double)s.billing_changed_ms / 1000.0);
    else
        buf_puts(o, ",\"BillingModeSummary\":{\"BillingMode\":\"PROVISIONED\"}");
    buf_printf(o, ",\"DeletionProtectionEnabled\":%s", s.deletion_protection ? "true" : "false");
    if (table_settings_live(&s) > 0) {
        buf_puts(o, ",\"GlobalTableVersion\":\"2019.11.21\",\"Replicas\":[");
        bool first_rep = true;
        for (size_t i = 0; i < s.n_replicas; i++) {
            const table_replica *rp = &s.replicas[i];
            if (rp->removed) continue;
            buf_puts(o, first_rep ? "{" : ",{");
            first_rep = false;
            write_str_field(o, "RegionName", rp->region, false);
            write_str_field(o, "ReplicaStatus",
                            rp->status == REPLICA_ACTIVE ? "ACTIVE" : "CREATING", true);
            int pct =
                rp->status == REPLICA_ACTIVE ? 100 : repl_backfill_percent(c->repl, rp->region);
            if (rp->status != REPLICA_ACTIVE && pct >= 0)
                buf_printf(o, ",\"ReplicaStatusPercentProgress\":\"%d\"", pct);
            buf_putc(o, '}');
        }
        buf_putc(o, ']');
    }
    buf_putc(o, '}');
}

/* Reads BillingMode + ProvisionedThroughput into s (for create: defaults apply). */
static int read_billing(op_ctx *c, table_settings *s, bool create, bool *changed)
{
    const char *mode = NULL;
    if (req_string(c, c->req, "BillingMode", false, &mode) < 0) return -1;
    const cJSON *pt = req_get(c->req, "ProvisionedThroughput");
    *changed = mode || pt;
    if (mode && strcmp(mode, "PROVISIONED") && strcmp(mode, "PAY_PER_REQUEST"))
        return err_validation(c->e,
                              "1 validation error detected: Value '%s' at 'billingMode' failed "
                              "to satisfy constraint: Member must satisfy enum value set: "
                              "[PROVISIONED, PAY_PER_REQUEST]",
                              mode);
    bool ppr = mode ? strcmp(mode, "PAY_PER_REQUEST") == 0 : (create ? false : s->pay_per_request);
    if (ppr && pt)
        return err_validation(c->e, "One or more parameter values were invalid: Neither "
                                    "ReadCapacityUnits nor WriteCapacityUnits can be specified "
                                    "when BillingMode is PAY_PER_REQUEST");
    if (!ppr) {
        if (!pt && create)
            return err_validation(c->e, "One or more parameter values were invalid: "
                                        "ReadCapacityUnits and WriteCapacityUnits must both be "
                                        "specified when BillingMode is PROVISIONED");
        if (!pt && s->pay_per_request)
            return err_validation(c->e, "One or more parameter values were invalid: "
                                        "ProvisionedThroughput must be specified when BillingMode "
                                        "is PROVISIONED");
        if (pt) {
            if (!cJSON_IsObject(pt))
                return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
            bool has_r, has_w;
            long long r = 0, w = 0;
            if (req_int(c, pt, "ReadCapacityUnits", &has_r, &r) < 0 ||
                req_int(c, pt, "WriteCapacityUnits", &has_w, &w) < 0)
                return -1;
            if (!has_r || !has_w)
                return err_validation(c->e,
                                      "1 validation error detected: Value null at "
                                      "'provisionedThroughput.%s' failed to satisfy constraint: "
                                      "Member must not be null",
                                      has_r ? "writeCapacityUnits" : "readCapacityUnits");
            if (r < 1 || w < 1)
                return err_validation(c->e,
                                      "1 validation error detected: Value '%lld' at "
                                      "'provisionedThroughput.%s' failed to satisfy constraint: "
                                      "Member must have value greater than or equal to 1",
                                      r < 1 ? r : w,
                                      r < 1 ? "readCapacityUnits" : "writeCapacityUnits");
            s->rcu = r;
            s->wcu = w;
        }
    }
    if (ppr && !s->pay_per_request) s->billing_changed_ms = (int64_t)hlc_wall_ms();
    s->pay_per_request = ppr;
    if (ppr) s->rcu = s->wcu = 0;
    return 0;
}

static int unsupported(op_ctx *c, const char *param)
{
    return err_validation(c->e, "%s is not supported by this Meridian version", param);
}

/* DynamoDB Streams, encryption at rest with a KMS key and the Standard-IA
 * table class do not exist in Meridian yet: CreateTable and UpdateTable
 * refuse them rather than accept and ignore them. The values that mean
 * "feature off" or "the default", which SDKs and mappers send on their own,
 * are accepted: StreamSpecification {StreamEnabled: false},
 * SSESpecification {Enabled: false} or {} (DynamoDB's default encryption
 * with a key the service owns), TableClass STANDARD. */
static int refuse_unsupported_features(op_ctx *c)
{
    const cJSON *ss = req_get(c->req, "StreamSpecification");
    if (ss) {
        if (!cJSON_IsObject(ss))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        const cJSON *en = req_get(ss, "StreamEnabled");
        if (!en)
            return err_validation(c->e, "1 validation error detected: Value null at "
                                        "'streamSpecification.streamEnabled' failed to satisfy "
                                        "constraint: Member must not be null");
        bool on = false;
        const char *view = NULL;
        if (req_bool(c, ss, "StreamEnabled", &on) < 0 ||
            req_string(c, ss, "StreamViewType", false, &view) < 0)
            return -1;
        if (on)
            return unsupported(c, "StreamSpecification with StreamEnabled true (DynamoDB "
                                  "Streams)");
    }
    const cJSON *sse = req_get(c->req, "SSESpecification");
    if (sse) {
        if (!cJSON_IsObject(sse))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        bool on = false;
        const char *type = NULL, *kms = NULL;
        if (req_bool(c, sse, "Enabled", &on) < 0 ||
            req_string(c, sse, "SSEType", false, &type) < 0 ||
            req_string(c, sse, "KMSMasterKeyId", false, &kms) < 0)
            return -1;
        if (on || type || kms)
            return unsupported(c, "SSESpecification with Enabled true, an SSEType or a "
                                  "KMSMasterKeyId (encryption at rest with a KMS key)");
    }
    const char *cls = NULL;
    if (req_string(c, c->req, "TableClass", false, &cls) < 0) return -1;
    if (cls && strcmp(cls, "STANDARD") != 0) {
        if (strcmp(cls, "STANDARD_INFREQUENT_ACCESS") != 0)
            return err_validation(c->e,
                                  "1 validation error detected: Value '%s' at 'tableClass' "
                                  "failed to satisfy constraint: Member must satisfy enum value "
                                  "set: [STANDARD_INFREQUENT_ACCESS, STANDARD]",
                                  cls);
        return unsupported(c, "TableClass STANDARD_INFREQUENT_ACCESS");
    }
    return 0;
}

int op_create_table(op_ctx *c)
{
    const char *name;
    if (table_name_param(c, &name) < 0) return -1;
    const cJSON *ks = req_get(c->req, "KeySchema");
    const cJSON *ad = req_get(c->req, "AttributeDefinitions");
    if (!ks)
        return err_validation(c->e, "1 validation error detected: Value null at 'keySchema' "
                                    "failed to satisfy constraint: Member must not be null");
    if (!ad)
        return err_validation(c->e, "1 validation error detected: Value null at "
                                    "'attributeDefinitions' failed to satisfy constraint: Member "
                                    "must not be null");
    if (!cJSON_IsArray(ks) || !cJSON_IsArray(ad))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    int nks = cJSON_GetArraySize(ks);
    if (nks < 1 || nks > 2)
        return err_validation(c->e,
                              "1 validation error detected: Value '[]' at 'keySchema' failed to "
                              "satisfy constraint: Member must have length %s",
                              nks < 1 ? "greater than or equal to 1" : "less than or equal to 2");
    if (req_get(c->req, "GlobalSecondaryIndexes")) return unsupported(c, "GlobalSecondaryIndexes");
    if (req_get(c->req, "LocalSecondaryIndexes")) return unsupported(c, "LocalSecondaryIndexes");
    if (refuse_unsupported_features(c) < 0) return -1;

    table tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.account = (char *)c->account;
    tmpl.name = (char *)name;
    const char *kn[2] = {NULL, NULL};
    int idx = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, ks)
    {
        const char *an, *kt;
        if (!cJSON_IsObject(el))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        if (req_string(c, el, "AttributeName", true, &an) < 0 ||
            req_string(c, el, "KeyType", true, &kt) < 0)
            return -1;
        if (strcmp(kt, "HASH") && strcmp(kt, "RANGE"))
            return err_validation(c->e,
                                  "1 validation error detected: Value '%s' at "
                                  "'keySchema.%d.member.keyType' failed to satisfy constraint: "
                                  "Member must satisfy enum value set: [HASH, RANGE]",
                                  kt, idx + 1);
        if (idx == 0 && strcmp(kt, "HASH"))
            return err_validation(c->e,
                                  "Invalid KeySchema: The first KeySchemaElement is not a HASH "
                                  "key type");
        if (idx == 1 && strcmp(kt, "RANGE"))
            return err_validation(c->e, "Invalid KeySchema: The second KeySchemaElement is not a "
                                        "RANGE key type");
        if (strlen(an) == 0 || strlen(an) > 255)
            return err_validation(c->e,
                                  "1 validation error detected: Value '%s' at "
                                  "'keySchema.%d.member.attributeName' failed to satisfy "
                                  "constraint: Member must have length %s",
                                  an, idx + 1,
                                  strlen(an) ? "less than or equal to 255"
                                             : "greater than or equal to 1");
        kn[idx++] = an;
    }
    if (kn[1] && strcmp(kn[0], kn[1]) == 0)
        return err_validation(c->e, "Both the Hash Key and the Range Key element in the "
                                    "KeySchema have the same name");
    int nad = cJSON_GetArraySize(ad);
    if (nad > 2) /* no indexes yet: at most the two key attributes (also bounds the work) */
        return err_validation(c->e, "One or more parameter values were invalid: Number of "
                                    "attributes in KeySchema does not exactly match number of "
                                    "attributes defined in AttributeDefinitions");
    tmpl.attr_defs = arena_calloc(c->a, (size_t)(nad ? nad : 1), sizeof(table_attr_def));
    cJSON_ArrayForEach(el, ad)
    {
        const char *an, *at;
        if (!cJSON_IsObject(el))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        if (req_string(c, el, "AttributeName", true, &an) < 0 ||
            req_string(c, el, "AttributeType", true, &at) < 0)
            return -1;
        mv_type ty = mv_type_from_name(at, strlen(at));
        if (ty != MV_S && ty != MV_N && ty != MV_B)
            return err_validation(c->e,
                                  "1 validation error detected: Value '%s' at "
                                  "'attributeDefinitions.%zu.member.attributeType' failed to "
                                  "satisfy constraint: Member must satisfy enum value set: [B, N, "
                                  "S]",
                                  at, tmpl.n_attr_defs + 1);
        for (size_t i = 0; i < tmpl.n_attr_defs; i++)
            if (strcmp(tmpl.attr_defs[i].name, an) == 0)
                return err_validation(c->e, "Cannot have two attributes with the same name: %s",
                                      an);
        tmpl.attr_defs[tmpl.n_attr_defs].name = (char *)an;
        tmpl.attr_defs[tmpl.n_attr_defs].type = ty;
        tmpl.n_attr_defs++;
    }
    /* Every key attribute must be defined, and nothing else may be. */
    for (int k = 0; k < idx; k++) {
        bool found = false;
        for (size_t i = 0; i < tmpl.n_attr_defs; i++) {
            if (strcmp(tmpl.attr_defs[i].name, kn[k]) == 0) {
                found = true;
                if (k == 0)
                    tmpl.pk_type = tmpl.attr_defs[i].type;
                else
                    tmpl.sk_type = tmpl.attr_defs[i].type;
            }
        }
        if (!found) {
            buf msg;
            buf_init(&msg);
            buf_printf(&msg, "One or more parameter values were invalid: Some index key "
                             "attributes are not defined in AttributeDefinitions. Keys: [");
            for (int j = 0; j < idx; j++)
                buf_printf(&msg, "%s%s", j ? ", " : "", kn[j]);
            buf_puts(&msg, "], AttributeDefinitions: [");
            for (size_t j = 0; j < tmpl.n_attr_defs; j++)
                buf_printf(&msg, "%s%s", j ? ", " : "", tmpl.attr_defs[j].name);
            buf_puts(&msg, "]");
            err_validation(c->e, "%s", (char *)msg.data);
            buf_free(&msg);
            return -1;
        }
    }
    if ((int)tmpl.n_attr_defs != idx)
        return err_validation(c->e, "One or more parameter values were invalid: Number of "
                                    "attributes in KeySchema does not exactly match number of "
                                    "attributes defined in AttributeDefinitions");
    tmpl.pk_name = (char *)kn[0];
    tmpl.sk_name = (char *)kn[1];
    bool changed;
    if (read_billing(c, &tmpl.settings, true, &changed) < 0) return -1;
    bool dp = false;
    if (req_bool(c, c->req, "DeletionProtectionEnabled", &dp) < 0) return -1;
    tmpl.settings.deletion_protection = dp;
    tmpl.created_ms = (int64_t)hlc_wall_ms();

    table *t;
    if (catalog_create(c->d->cat, &tmpl, &t, c->e) < 0) return -1;
    respond_description(c, "TableDescription", t, "ACTIVE");
    table_release(t);
    return 0;
}

int op_describe_table(op_ctx *c)
{
    const char *name;
    table *t;
    if (table_param(c, &name, &t) < 0) return -1;
    respond_description(c, "Table", t, "ACTIVE");
    table_release(t);
    return 0;
}

int op_list_tables(op_ctx *c)
{
    const char *start;
    if (req_string(c, c->req, "ExclusiveStartTableName", false, &start) < 0) return -1;
    if (start && req_table_name(c, "exclusiveStartTableName", start) < 0) return -1;
    bool has_limit;
    long long limit = 100;
    if (req_int(c, c->req, "Limit", &has_limit, &limit) < 0) return -1;
    if (has_limit && (limit < 1 || limit > 100))
        return err_validation(
            c->e,
            "1 validation error detected: Value '%lld' at 'limit' failed to "
            "satisfy constraint: Member must have value %s",
            limit, limit < 1 ? "greater than or equal to 1" : "less than or equal to 100");
    char **names;
    bool more;
    size_t n = catalog_list(c->d->cat, c->account, start, (size_t)limit, &names, &more);
    buf_puts(c->out, "{\"TableNames\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(c->out, ',');
        json_write_string(c->out, names[i], strlen(names[i]));
    }
    buf_putc(c->out, ']');
    if (more && n > 0) write_str_field(c->out, "LastEvaluatedTableName", names[n - 1], true);
    buf_putc(c->out, '}');
    catalog_free_names(names, n);
    return 0;
}

int op_delete_table(op_ctx *c)
{
    const char *name;
    table *t;
    if (table_param(c, &name, &t) < 0) return -1;
    /* A global table loses this region's replica only (the others are told);
     * a local one just goes. Which it is, and whether it is protected, is
     * decided under the catalog's DDL lock (prepare_own_departure). */
    table *gone;
    int rc = delete_own_replica(c, t, true, &gone);
    table_release(t);
    if (rc < 0) return -1;
    respond_description(c, "TableDescription", gone, "DELETING");
    table_release(gone);
    return 0;
}

typedef struct ddl_ctx {
    op_ctx *c;
    const char *region; /* ReplicaUpdates: the region created or deleted */
    bool create;
    uint64_t seq; /* the replication log entry of the change, if logged */
    bool logged;
} ddl_ctx;

/* Stamps a new descriptor version and logs the descriptor, so that every
 * replica region adopts the change (last writer wins on the version). */
static int reserve_descriptor(ddl_ctx *x, uint64_t *version)
{
    if (db_log_reserve(x->c->d, &x->seq, version, x->c->e) < 0) return -1;
    x->logged = true;
    return 0;
}

/* Applies UpdateTable's parameters to a copy of the settings; runs under
 * the catalog's DDL lock (catalog_update_settings). */
static int apply_table_update(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    ddl_ctx *x = ctx;
    op_ctx *c = x->c;
    (void)e;
    bool changed = false;
    if (read_billing(c, s, false, &changed) < 0) return -1;
    const cJSON *dp = req_get(c->req, "DeletionProtectionEnabled");
    if (dp) {
        if (!cJSON_IsBool(dp))
            return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
        s->deletion_protection = cJSON_IsTrue(dp);
        changed = true;
    }
    if (!changed && !req_get(c->req, "StreamSpecification") &&
        !req_get(c->req, "SSESpecification") && !req_get(c->req, "TableClass"))
        return err_validation(c->e, "At least one of ProvisionedThroughput, BillingMode, "
                                    "UpdateStreamEnabled, GlobalSecondaryIndexUpdates or "
                                    "SSESpecification or ReplicaUpdates is required");
    if (table_settings_replicated(s)) {
        uint64_t v;
        if (reserve_descriptor(x, &v) < 0) return -1;
        table_settings_stamp(s, v, c->region);
        db_log_descriptor(c->d, t, s, x->seq, b);
    }
    return 0;
}

/* ReplicaUpdates Create/Delete, under the catalog's DDL lock. */
static int apply_replica_update(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    ddl_ctx *x = ctx;
    op_ctx *c = x->c;
    (void)e;
    bool exists = table_settings_replica(s, x->region) != NULL;
    if (x->create) {
        if (exists || strcmp(x->region, c->region) == 0)
            return err_validation(c->e,
                                  "Failed to create a the new replica of table with name: '%s' "
                                  "because one or more replicas already existed as tables.",
                                  t->name);
        uint64_t v;
        if (reserve_descriptor(x, &v) < 0) return -1;
        if (table_settings_live(s) == 0)
            table_settings_add_replica(s, c->region, REPLICA_ACTIVE, v, c->region);
        if (table_settings_add_replica(s, x->region, REPLICA_CREATING, v, c->region) < 0)
            return err_set(c->e, ERR_LIMIT_EXCEEDED, "A global table can have at most %d replicas",
                           TABLE_REPLICAS_MAX);
        /* This region owes the new replica a back-fill of its contents. */
        buf k;
        buf_init(&k);
        repl_backfill_marker(&k, x->region, t->uid);
        uint8_t gen[8];
        store_u64be(gen, hlc_now(&c->d->clock));
        store_batch_put(b, STORE_CF_META, k.data, k.len, gen, 8);
        buf_free(&k);
    } else {
        if (!exists)
            return err_validation(c->e,
                                  "Update global table operation failed because the replica in "
                                  "region %s does not exist for table %s",
                                  x->region, t->name);
        uint64_t v;
        if (reserve_descriptor(x, &v) < 0) return -1;
        table_settings_remove_replica(s, x->region, v, c->region);
    }
    db_log_descriptor(c->d, t, s, x->seq, b);
    return 0;
}

/* Removes this region's own replica of a global table: the others are told
 * (a logged descriptor without it), then the local table goes. */
typedef struct own_departure {
    op_ctx *c;
    table *expect;       /* the incarnation the request looked up */
    bool plain_if_local; /* DeleteTable: a table not (or no longer) global just goes */
    uint64_t seq;        /* the descriptor's log entry, once reserved */
    bool reserved;
} own_departure;

/* Runs under the catalog's DDL lock with no write of t in flight
 * (catalog_delete), on t's current settings: one atomic batch with the
 * descriptor without this region (logged, so the others learn it), the
 * departed record (so the writes made here and not yet sent still go to
 * the other replicas) and the table's removal. The log seq is reserved only
 * here, after every wait: a request that loses a race with a concurrent
 * DeleteTable reserves nothing (no hole at the top of the log). */
static int prepare_own_departure(void *ctx, table *t, table_settings *s, store_batch *b, err *e)
{
    own_departure *x = ctx;
    if (t != x->expect)
        return err_set(e, ERR_RESOURCE_NOT_FOUND,
                       "Requested resource not found: Table: %s not found", t->name);
    /* Decided here, on the settings as they are under the lock: a
     * concurrent ReplicaUpdates may have made the table global (or local). */
    if (x->plain_if_local && !table_settings_replicated(s)) return 0;
    uint64_t version;
    if (db_log_reserve(x->c->d, &x->seq, &version, e) < 0) return -1;
    x->reserved = true;
    table_settings_remove_replica(s, x->c->region, version, x->c->region);
    db_log_descriptor(x->c->d, t, s, x->seq, b);
    char *json = catalog_descriptor_json(t, s);
    repl_departed_record(b, t->uid, rlog_high(&x->c->d->log), json, strlen(json));
    free(json);
    return 0;
}

static int delete_own_replica(op_ctx *c, table *t, bool delete_table, table **gone)
{
    own_departure x = {.c = c, .expect = t, .plain_if_local = delete_table};
    /* DeleteTable honours deletion protection (checked under the DDL lock);
     * removing this region from ReplicaUpdates does not. */
    repl_departures_lock(c->repl);
    int rc = catalog_delete(c->d->cat, t->account, t->name, !delete_table, prepare_own_departure,
                            &x, gone, c->e);
    repl_departures_unlock(c->repl);
    if (x.reserved) rlog_done(&c->d->log, x.seq);
    if (rc < 0) return -1;
    if (x.reserved) repl_kick(c->repl);
    return 0;
}

/* *own_removed: this region's own replica was deleted (the table is gone here). */
static int replica_update(op_ctx *c, table *t, bool *own_removed)
{
    const cJSON *ru = req_get(c->req, "ReplicaUpdates");
    if (!cJSON_IsArray(ru))
        return err_set(c->e, ERR_SERIALIZATION, "Unexpected value type in payload");
    if (cJSON_GetArraySize(ru) != 1)
        return err_validation(c->e, "One or more parameter values were invalid: exactly one "
                                    "replica update is supported per UpdateTable request");
    const cJSON *u = cJSON_GetArrayItem(ru, 0);
    const cJSON *create = req_get(u, "Create"), *del = req_get(u, "Delete");
    if (!create == !del) {
        if (req_get(u, "Update")) return unsupported(c, "ReplicaUpdates Update");
        return err_validation(c->e, "One or more parameter values were invalid: a replica update "
                                    "must have exactly one of Create or Delete");
    }
    const char *region;
    if (req_string(c, create ? create : del, "RegionName", true, &region) < 0) return -1;
    if (create && !(c->repl && repl_is_peer(c->repl, region)) && strcmp(region, c->region) != 0)
        return err_validation(c->e,
                              "One or more parameter values were invalid: region %s is not a peer "
                              "of this region (start it with --peer %s=HOST:PORT)",
                              region, region);
    if (del && strcmp(region, c->region) == 0) {
        table *gone;
        int rc = delete_own_replica(c, t, false, &gone);
        if (rc == 0) table_release(gone);
        *own_removed = rc == 0;
        return rc;
    }
    ddl_ctx x = {.c = c, .region = region, .create = create != NULL};
    int rc = catalog_update_settings(c->d->cat, t, apply_replica_update, &x, c->e);
    if (x.logged) rlog_done(&c->d->log, x.seq);
    if (rc == 0) repl_kick(c->repl);
    return rc;
}

int op_update_table(op_ctx *c)
{
    const char *name;
    table *t;
    if (table_param(c, &name, &t) < 0) return -1;
    if (req_get(c->req, "GlobalSecondaryIndexUpdates")) {
        table_release(t);
        return unsupported(c, "GlobalSecondaryIndexUpdates");
    }
    if (refuse_unsupported_features(c) < 0) {
        table_release(t);
        return -1;
    }
    int rc;
    if (req_get(c->req, "ReplicaUpdates")) {
        bool own_removed = false;
        rc = replica_update(c, t, &own_removed);
        if (rc == 0 && own_removed) { /* this region's own replica was removed */
            respond_description(c, "TableDescription", t, "DELETING");
            table_release(t);
            return 0;
        }
    } else {
        ddl_ctx x = {.c = c};
        rc = catalog_update_settings(c->d->cat, t, apply_table_update, &x, c->e);
        if (x.logged) rlog_done(&c->d->log, x.seq);
        if (x.logged && rc == 0) repl_kick(c->repl);
    }
    if (rc == 0) {
        respond_description(c, "TableDescription", t, "ACTIVE");
    }
    table_release(t);
    return rc;
}
