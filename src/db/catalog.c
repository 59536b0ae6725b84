/* catalog.c - table catalog in memory and in the meta column family (see catalog.h). */
#include "db/catalog.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define KEY_SEQ          "seq/table_id"
#define KEY_TABLE_PREFIX "table/"

struct catalog {
    store *st;
    pthread_rwlock_t lock;
    pthread_mutex_t ddl_mu; /* serialises CreateTable/DeleteTable/UpdateTable persistence */
    table **tables;         /* sorted by (account, name) */
    table **by_uid;         /* the same tables sorted by uid (catalog_get_uid) */
    size_t n, cap;
    uint64_t next_id;
};

static char *xstrdup(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

static int cmp_an(const char *a1, const char *n1, const char *a2, const char *n2)
{
    int c = strcmp(a1, a2);
    return c ? c : strcmp(n1, n2);
}

/* Index of the first table >= (account, name). */
static size_t lower_bound(const catalog *c, const char *account, const char *name)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_an(c->tables[mid]->account, c->tables[mid]->name, account, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first of the first `count` tables of by_uid whose uid is >= uid. */
static size_t uid_search(const catalog *c, const uint8_t *uid, size_t count)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (memcmp(c->by_uid[mid]->uid, uid, TABLE_UID_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t uid_lower_bound(const catalog *c, const uint8_t *uid)
{
    return uid_search(c, uid, c->n);
}

/* Room for one more table in both arrays (catalog lock held for writing). */
static void catalog_reserve(catalog *c)
{
    if (c->n < c->cap) return;
    c->cap = c->cap ? c->cap * 2 : 16;
    c->tables = realloc(c->tables, c->cap * sizeof(table *));
    c->by_uid = realloc(c->by_uid, c->cap * sizeof(table *));
    if (!c->tables || !c->by_uid) abort();
}

/* Adds t to by_uid; c->n counts it already (lock held for writing). */
static void uid_index_insert(catalog *c, table *t)
{
    assert(c->n > 0);
    size_t i = uid_search(c, t->uid, c->n - 1);
    memmove(c->by_uid + i + 1, c->by_uid + i, (c->n - 1 - i) * sizeof(table *));
    c->by_uid[i] = t;
}

/* Removes t from by_uid; c->n no longer counts it (lock held for writing). */
static void uid_index_remove(catalog *c, table *t)
{
    size_t total = c->n + 1;
    size_t lo = uid_search(c, t->uid, total);
    for (size_t i = lo; i < total; i++)
        if (c->by_uid[i] == t) {
            memmove(c->by_uid + i, c->by_uid + i + 1, (total - i - 1) * sizeof(table *));
            return;
        }
    assert(!"table missing from the uid index");
}

static void table_free(table *t)
{
    free(t->account);
    free(t->name);
    free(t->pk_name);
    free(t->sk_name);
    for (size_t i = 0; i < t->n_attr_defs; i++)
        free(t->attr_defs[i].name);
    free(t->attr_defs);
    pthread_mutex_destroy(&t->settings_mu);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

void table_acquire(table *t)
{
    atomic_fetch_add(&t->refs, 1);
}

void table_release(table *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) table_free(t);
}

static table *table_clone_new(const table *tmpl)
{
    table *t = calloc(1, sizeof(*t));
    if (!t) abort();
    t->id = tmpl->id;
    memcpy(t->uid, tmpl->uid, TABLE_UID_LEN);
    t->account = xstrdup(tmpl->account);
    t->name = xstrdup(tmpl->name);
    t->pk_name = xstrdup(tmpl->pk_name);
    t->pk_type = tmpl->pk_type;
    t->sk_name = xstrdup(tmpl->sk_name);
    t->sk_type = tmpl->sk_type;
    t->n_attr_defs = tmpl->n_attr_defs;
    t->attr_defs = calloc(tmpl->n_attr_defs ? tmpl->n_attr_defs : 1, sizeof(table_attr_def));
    if (!t->attr_defs) abort();
    for (size_t i = 0; i < tmpl->n_attr_defs; i++) {
        t->attr_defs[i].name = xstrdup(tmpl->attr_defs[i].name);
        t->attr_defs[i].type = tmpl->attr_defs[i].type;
    }
    t->created_ms = tmpl->created_ms;
    t->settings = tmpl->settings;
    pthread_mutex_init(&t->settings_mu, NULL);
    /* Writer-preferring, so a steady stream of item writes (readers of this
     * lock) cannot starve DeleteTable. Safe from deadlock because db_write
     * takes the locks of several tables in id order, each once. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&t->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    atomic_init(&t->item_count, 0);
    atomic_init(&t->tombstones, 0);
    atomic_init(&t->size_bytes, 0);
    atomic_init(&t->conflicts, 0);
    atomic_init(&t->refs, 1);
    return t;
}

/* ---- persistence ---- */

static void table_key(buf *k, const char *account, const char *name)
{
    buf_puts(k, KEY_TABLE_PREFIX);
    buf_append(k, account, strlen(account) + 1);
    buf_puts(k, name);
}

static void hex_encode(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_decode(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = s[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

static const char *replica_status_name(replica_status st)
{
    return st == REPLICA_ACTIVE ? "ACTIVE" : "CREATING";
}

char *catalog_descriptor_json(const table *t, const table_settings *s)
{
    cJSON *o = cJSON_CreateObject();
    char numbuf[32], uid[2 * TABLE_UID_LEN + 1];
    snprintf(numbuf, sizeof(numbuf), "%llu", (unsigned long long)t->id);
    cJSON_AddStringToObject(o, "id", numbuf);
    hex_encode(uid, t->uid, TABLE_UID_LEN);
    cJSON_AddStringToObject(o, "uid", uid);
    cJSON_AddStringToObject(o, "account", t->account);
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "pk_name", t->pk_name);
    cJSON_AddStringToObject(o, "pk_type", mv_type_name(t->pk_type));
    if (t->sk_name) {
        cJSON_AddStringToObject(o, "sk_name", t->sk_name);
        cJSON_AddStringToObject(o, "sk_type", mv_type_name(t->sk_type));
    }
    cJSON *defs = cJSON_AddArrayToObject(o, "attr_defs");
    for (size_t i = 0; i < t->n_attr_defs; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", t->attr_defs[i].name);
        cJSON_AddStringToObject(d, "type", mv_type_name(t->attr_defs[i].type));
        cJSON_AddItemToArray(defs, d);
    }
    cJSON_AddNumberToObject(o, "created_ms", (double)t->created_ms);
    cJSON_AddBoolToObject(o, "pay_per_request", s->pay_per_request);
    cJSON_AddNumberToObject(o, "rcu", (double)s->rcu);
    cJSON_AddNumberToObject(o, "wcu", (double)s->wcu);
    cJSON_AddBoolToObject(o, "deletion_protection", s->deletion_protection);
    cJSON_AddNumberToObject(o, "billing_changed_ms", (double)s->billing_changed_ms);
    snprintf(numbuf, sizeof(numbuf), "%llu", (unsigned long long)s->version);
    cJSON_AddStringToObject(o, "version", numbuf);
    cJSON_AddStringToObject(o, "version_origin", s->version_origin);
    cJSON *reps = cJSON_AddArrayToObject(o, "replicas");
    for (size_t i = 0; i < s->n_replicas; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "region", s->replicas[i].region);
        cJSON_AddStringToObject(r, "status", replica_status_name(s->replicas[i].status));
        cJSON_AddBoolToObject(r, "removed", s->replicas[i].removed);
        snprintf(numbuf, sizeof(numbuf), "%llu", (unsigned long long)s->replicas[i].version);
        cJSON_AddStringToObject(r, "version", numbuf);
        cJSON_AddStringToObject(r, "origin", s->replicas[i].origin);
        cJSON_AddItemToArray(reps, r);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) abort();
    return text;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

void catalog_free_template(table *t)
{
    free(t->account);
    free(t->name);
    free(t->pk_name);
    free(t->sk_name);
    for (size_t i = 0; i < t->n_attr_defs; i++)
        free(t->attr_defs[i].name);
    free(t->attr_defs);
    memset(t, 0, sizeof(*t));
}

static mv_type key_type(const char *s)
{
    mv_type ty = s ? mv_type_from_name(s, strlen(s)) : 0;
    return (ty == MV_S || ty == MV_N || ty == MV_B) ? ty : 0;
}

int catalog_parse_descriptor(const char *json, size_t len, table *tmpl)
{
    memset(tmpl, 0, sizeof(*tmpl));
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o) return -1;
    int rc = -1;
    const char *id = jstr(o, "id"), *uid = jstr(o, "uid"), *version = jstr(o, "version");
    const char *account = jstr(o, "account"), *name = jstr(o, "name");
    const char *pk_name = jstr(o, "pk_name"), *sk_name = jstr(o, "sk_name");
    if (!id || !account || !name || !pk_name) goto out;
    tmpl->id = strtoull(id, NULL, 10);
    if (uid && hex_decode(uid, tmpl->uid, TABLE_UID_LEN) < 0) goto out;
    tmpl->account = xstrdup(account);
    tmpl->name = xstrdup(name);
    tmpl->pk_name = xstrdup(pk_name);
    tmpl->pk_type = key_type(jstr(o, "pk_type"));
    if (!tmpl->pk_type) goto out;
    if (sk_name) {
        tmpl->sk_name = xstrdup(sk_name);
        tmpl->sk_type = key_type(jstr(o, "sk_type"));
        if (!tmpl->sk_type) goto out;
    }
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(o, "attr_defs");
    int n = cJSON_GetArraySize(defs);
    if (n < 1 || n > 2) goto out;
    tmpl->attr_defs = calloc((size_t)n, sizeof(table_attr_def));
    if (!tmpl->attr_defs) abort();
    const cJSON *d;
    cJSON_ArrayForEach(d, defs)
    {
        const char *dn = jstr(d, "name");
        mv_type dt = key_type(jstr(d, "type"));
        if (!dn || !dt) goto out;
        tmpl->attr_defs[tmpl->n_attr_defs].name = xstrdup(dn);
        tmpl->attr_defs[tmpl->n_attr_defs].type = dt;
        tmpl->n_attr_defs++;
    }
    tmpl->created_ms = (int64_t)jnum(o, "created_ms");
    table_settings *s = &tmpl->settings;
    s->pay_per_request = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "pay_per_request"));
    s->rcu = (int64_t)jnum(o, "rcu");
    s->wcu = (int64_t)jnum(o, "wcu");
    s->deletion_protection =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deletion_protection"));
    s->billing_changed_ms = (int64_t)jnum(o, "billing_changed_ms");
    s->version = version ? strtoull(version, NULL, 10) : 0;
    const char *vo = jstr(o, "version_origin");
    if (vo && strlen(vo) <= REGION_NAME_MAX)
        snprintf(s->version_origin, sizeof(s->version_origin), "%s", vo);
    const cJSON *reps = cJSON_GetObjectItemCaseSensitive(o, "replicas");
    const cJSON *r;
    cJSON_ArrayForEach(r, reps)
    {
        const char *region = jstr(r, "region"), *status = jstr(r, "status");
        if (!region || !status || strlen(region) > REGION_NAME_MAX ||
            s->n_replicas == TABLE_REPLICAS_MAX)
            goto out;
        snprintf(s->replicas[s->n_replicas].region, sizeof(s->replicas[0].region), "%s", region);
        s->replicas[s->n_replicas].status =
            strcmp(status, "ACTIVE") == 0 ? REPLICA_ACTIVE : REPLICA_CREATING;
        s->replicas[s->n_replicas].removed =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "removed"));
        const char *rv = jstr(r, "version"), *ro = jstr(r, "origin");
        s->replicas[s->n_replicas].version = rv ? strtoull(rv, NULL, 10) : 0;
        if (ro && strlen(ro) <= REGION_NAME_MAX)
            snprintf(s->replicas[s->n_replicas].origin, sizeof(s->replicas[0].origin), "%s", ro);
        s->n_replicas++;
    }
    rc = 0;
out:
    cJSON_Delete(o);
    if (rc < 0) catalog_free_template(tmpl);
    return rc;
}

bool table_settings_newer(const table_settings *a, const table_settings *b)
{
    if (a->version != b->version) return a->version > b->version;
    return strcmp(a->version_origin, b->version_origin) > 0;
}

void table_settings_stamp(table_settings *s, uint64_t version, const char *origin)
{
    s->version = version;
    snprintf(s->version_origin, sizeof(s->version_origin), "%s", origin);
}

size_t table_settings_live(const table_settings *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_replicas; i++)
        if (!s->replicas[i].removed) n++;
    return n;
}

bool table_settings_replicated(const table_settings *s)
{
    return table_settings_live(s) >= 2;
}

static table_replica *find_entry(table_settings *s, const char *region)
{
    for (size_t i = 0; i < s->n_replicas; i++)
        if (strcmp(s->replicas[i].region, region) == 0) return &s->replicas[i];
    return NULL;
}

const table_replica *table_settings_replica(const table_settings *s, const char *region)
{
    const table_replica *r = find_entry((table_settings *)s, region);
    return r && !r->removed ? r : NULL;
}

/* A new entry, kept sorted by region; NULL if the list is full. */
static table_replica *new_entry(table_settings *s, const char *region)
{
    if (s->n_replicas == TABLE_REPLICAS_MAX) return NULL;
    size_t i = 0;
    while (i < s->n_replicas && strcmp(s->replicas[i].region, region) < 0)
        i++;
    memmove(&s->replicas[i + 1], &s->replicas[i], (s->n_replicas - i) * sizeof(table_replica));
    memset(&s->replicas[i], 0, sizeof(table_replica));
    snprintf(s->replicas[i].region, sizeof(s->replicas[i].region), "%s", region);
    s->n_replicas++;
    return &s->replicas[i];
}

static void stamp_entry(table_replica *r, uint64_t version, const char *origin)
{
    r->version = version;
    snprintf(r->origin, sizeof(r->origin), "%s", origin);
}

int table_settings_add_replica(table_settings *s, const char *region, replica_status st,
                               uint64_t version, const char *origin)
{
    table_replica *r = find_entry(s, region);
    if (!r && !(r = new_entry(s, region))) return -1;
    r->status = st;
    r->removed = false;
    stamp_entry(r, version, origin);
    return 0;
}

void table_settings_remove_replica(table_settings *s, const char *region, uint64_t version,
                                   const char *origin)
{
    table_replica *r = find_entry(s, region);
    if (!r) return;
    r->removed = true;
    stamp_entry(r, version, origin);
}

bool table_settings_activate(table_settings *s, const char *region)
{
    table_replica *r = find_entry(s, region);
    if (!r || r->removed || r->status == REPLICA_ACTIVE) return false;
    r->status = REPLICA_ACTIVE;
    return true;
}

static int entry_cmp(const table_replica *a, const table_replica *b)
{
    if (a->version != b->version) return a->version < b->version ? -1 : 1;
    int c = strcmp(a->origin, b->origin);
    return c < 0 ? -1 : c > 0;
}

int table_settings_merge(table_settings *local, const table_settings *in, bool *changed_out)
{
    /* The union of both replica lists must fit, or nothing is merged: a
     * silently dropped entry would make this region's replica set differ
     * from the others' for ever. (Entries are per region, removed ones
     * included, so a deployment of at most TABLE_REPLICAS_MAX regions never
     * overflows; server.c refuses more peers than that.) */
    size_t extra = 0;
    for (size_t i = 0; i < in->n_replicas; i++)
        if (!find_entry(local, in->replicas[i].region)) extra++;
    *changed_out = false;
    if (local->n_replicas + extra > TABLE_REPLICAS_MAX) return -1;
    bool changed = false;
    if (table_settings_newer(in, local)) {
        local->pay_per_request = in->pay_per_request;
        local->rcu = in->rcu;
        local->wcu = in->wcu;
        local->deletion_protection = in->deletion_protection;
        local->billing_changed_ms = in->billing_changed_ms;
        local->version = in->version;
        memcpy(local->version_origin, in->version_origin, sizeof(local->version_origin));
        changed = true;
    }
    for (size_t i = 0; i < in->n_replicas; i++) {
        const table_replica *ri = &in->replicas[i];
        table_replica *rl = find_entry(local, ri->region);
        if (!rl) {
            rl = new_entry(local, ri->region);
            assert(rl); /* room checked above */
            *rl = *ri;
            changed = true;
            continue;
        }
        int c = entry_cmp(ri, rl);
        if (c > 0) {
            *rl = *ri;
            changed = true;
        } else if (c == 0 && !rl->removed && ri->status == REPLICA_ACTIVE &&
                   rl->status != REPLICA_ACTIVE) {
            rl->status = REPLICA_ACTIVE;
            changed = true;
        }
    }
    *changed_out = changed;
    return 0;
}

static table *table_from_json(const char *text, size_t len)
{
    table tmpl;
    if (catalog_parse_descriptor(text, len, &tmpl) < 0) return NULL;
    table *t = table_clone_new(&tmpl);
    catalog_free_template(&tmpl);
    return t;
}

int catalog_open(store *st, catalog **out, err *e)
{
    catalog *c = calloc(1, sizeof(*c));
    if (!c) abort();
    c->st = st;
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->ddl_mu, NULL);
    c->next_id = 1;

    buf v;
    buf_init(&v);
    int r = store_get(st, STORE_CF_META, KEY_SEQ, strlen(KEY_SEQ), &v, e);
    if (r < 0) goto fail;
    if (r == 1 && v.len == 8) c->next_id = load_u64be(v.data);
    buf_free(&v);

    const char *pfx = KEY_TABLE_PREFIX;
    char hi[] = "table0"; /* '/' + 1 == '0': the end of the "table/" range */
    store_iter *it = store_iter_new(st, STORE_CF_META, pfx, strlen(pfx), hi, strlen(hi));
    for (store_iter_first(it); store_iter_valid(it); store_iter_next(it)) {
        size_t vl;
        const uint8_t *val = store_iter_value(it, &vl);
        table *t = table_from_json((const char *)val, vl);
        if (!t) {
            store_iter_free(it);
            err_set(e, ERR_INTERNAL, "corrupt table descriptor in catalog");
            goto fail;
        }
        catalog_reserve(c);
        c->tables[c->n++] = t; /* keys are in (account, name) order already */
        uid_index_insert(c, t);
        if (t->id >= c->next_id) c->next_id = t->id + 1;
    }
    if (store_iter_status(it, e) < 0) {
        store_iter_free(it);
        goto fail;
    }
    store_iter_free(it);
    *out = c;
    return 0;
fail:
    buf_free(&v);
    catalog_close(c);
    return -1;
}

void catalog_close(catalog *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++)
        table_release(c->tables[i]);
    free(c->tables);
    free(c->by_uid);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->ddl_mu);
    free(c);
}

table *catalog_get(catalog *c, const char *account, const char *name)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t i = lower_bound(c, account, name);
    table *t = NULL;
    if (i < c->n && cmp_an(c->tables[i]->account, c->tables[i]->name, account, name) == 0) {
        t = c->tables[i];
        table_acquire(t);
    }
    pthread_rwlock_unlock(&c->lock);
    return t;
}

table *catalog_get_uid(catalog *c, const uint8_t uid[TABLE_UID_LEN])
{
    table *t = NULL;
    pthread_rwlock_rdlock(&c->lock);
    size_t i = uid_lower_bound(c, uid);
    if (i < c->n && memcmp(c->by_uid[i]->uid, uid, TABLE_UID_LEN) == 0) {
        t = c->by_uid[i];
        table_acquire(t);
    }
    pthread_rwlock_unlock(&c->lock);
    return t;
}

int catalog_create(catalog *c, const table *tmpl, table **out, err *e)
{
    pthread_mutex_lock(&c->ddl_mu);
    table *existing = catalog_get(c, tmpl->account, tmpl->name);
    if (existing) {
        table_release(existing);
        pthread_mutex_unlock(&c->ddl_mu);
        return err_set(e, ERR_RESOURCE_IN_USE, "Table already exists: %s", tmpl->name);
    }
    table *t = table_clone_new(tmpl);
    t->id = c->next_id;
    static const uint8_t zero[TABLE_UID_LEN];
    if (memcmp(t->uid, zero, TABLE_UID_LEN) == 0 && RAND_bytes(t->uid, TABLE_UID_LEN) != 1) {
        table_release(t);
        pthread_mutex_unlock(&c->ddl_mu);
        return err_set(e, ERR_INTERNAL, "cannot generate a table identity");
    }

    store_batch *b = store_batch_new(c->st);
    uint8_t seq[8];
    store_u64be(seq, t->id + 1);
    store_batch_put(b, STORE_CF_META, KEY_SEQ, strlen(KEY_SEQ), seq, 8);
    buf k;
    buf_init(&k);
    table_key(&k, t->account, t->name);
    char *json = catalog_descriptor_json(t, &t->settings);
    store_batch_put(b, STORE_CF_META, k.data, k.len, json, strlen(json));
    free(json);
    buf_free(&k);
    int rc = store_write(c->st, b, e);
    store_batch_free(b);
    if (rc < 0) {
        table_release(t);
        pthread_mutex_unlock(&c->ddl_mu);
        return -1;
    }
    c->next_id++;

    pthread_rwlock_wrlock(&c->lock);
    catalog_reserve(c);
    size_t i = lower_bound(c, t->account, t->name);
    memmove(c->tables + i + 1, c->tables + i, (c->n - i) * sizeof(table *));
    c->tables[i] = t;
    c->n++;
    uid_index_insert(c, t);
    table_acquire(t);
    pthread_rwlock_unlock(&c->lock);
    pthread_mutex_unlock(&c->ddl_mu);
    *out = t;
    return 0;
}

void catalog_stats_key(uint8_t k[TABLE_STATS_KEY_LEN], uint64_t id)
{
    memcpy(k, "tbl/", 4);
    store_u64be(k + 4, id);
}

int catalog_delete(catalog *c, const char *account, const char *name, bool force,
                   catalog_settings_fn prepare, void *ctx, table **out, err *e)
{
    pthread_mutex_lock(&c->ddl_mu);
    table *t = catalog_get(c, account, name);
    if (!t) {
        pthread_mutex_unlock(&c->ddl_mu);
        return err_set(e, ERR_RESOURCE_NOT_FOUND,
                       "Requested resource not found: Table: %s not found", name);
    }
    pthread_mutex_lock(&t->settings_mu);
    bool protected_ = t->settings.deletion_protection;
    table_settings s = t->settings;
    pthread_mutex_unlock(&t->settings_mu);
    if (protected_ && !force) {
        table_release(t);
        pthread_mutex_unlock(&c->ddl_mu);
        return err_validation(e, "Resource cannot be deleted as it is currently protected "
                                 "against deletion. Disable deletion protection first.");
    }
    /* Wait for in-flight item writes, then make the table unreachable. The
     * caller's additions are made only now, under both locks: nothing they
     * reserve (a log seq) is held while waiting, and the settings they see
     * are the table's last. */
    pthread_rwlock_wrlock(&t->lock);
    assert(!t->deleted); /* only deleted under ddl_mu, and it was still listed */
    store_batch *b = store_batch_new(c->st);
    int rc = prepare ? prepare(ctx, t, &s, b, e) : 0;
    if (rc == 0) {
        buf k;
        buf_init(&k);
        table_key(&k, account, name);
        store_batch_delete(b, STORE_CF_META, k.data, k.len);
        buf_free(&k);
        uint8_t lo[8], hi[8];
        store_u64be(lo, t->id);
        store_u64be(hi, t->id + 1);
        store_batch_delete_range(b, STORE_CF_ITEMS, lo, 8, hi, 8);
        uint8_t sk[TABLE_STATS_KEY_LEN];
        catalog_stats_key(sk, t->id);
        store_batch_delete(b, STORE_CF_COUNTERS, sk, sizeof(sk));
        rc = store_write(c->st, b, e);
    }
    store_batch_free(b);
    if (rc == 0) t->deleted = true;
    pthread_rwlock_unlock(&t->lock);
    if (rc < 0) {
        table_release(t);
        pthread_mutex_unlock(&c->ddl_mu);
        return -1;
    }
    pthread_rwlock_wrlock(&c->lock);
    size_t i = lower_bound(c, account, name);
    if (i < c->n && c->tables[i] == t) {
        memmove(c->tables + i, c->tables + i + 1, (c->n - i - 1) * sizeof(table *));
        c->n--;
        uid_index_remove(c, t);
        table_release(t); /* the catalog's reference */
    }
    pthread_rwlock_unlock(&c->lock);
    pthread_mutex_unlock(&c->ddl_mu);
    *out = t;
    return 0;
}

int catalog_update_settings(catalog *c, table *t, catalog_settings_fn fn, void *ctx, err *e)
{
    pthread_mutex_lock(&c->ddl_mu);
    int rc = -1;
    if (t->deleted) { /* written only under ddl_mu, so stable here */
        err_set(e, ERR_RESOURCE_NOT_FOUND, "Requested resource not found: Table: %s not found",
                t->name);
        goto out;
    }
    /* No item write in flight across the change. Taken before fn runs, so a
     * replication log seq that fn reserves is not held while waiting for
     * writers (which would stall the log's watermark for every table). */
    pthread_rwlock_wrlock(&t->lock);
    table_settings s;
    pthread_mutex_lock(&t->settings_mu);
    s = t->settings;
    pthread_mutex_unlock(&t->settings_mu);
    store_batch *b = store_batch_new(c->st);
    if (fn(ctx, t, &s, b, e) < 0) {
        store_batch_free(b);
        pthread_rwlock_unlock(&t->lock);
        goto out;
    }
    buf k;
    buf_init(&k);
    table_key(&k, t->account, t->name);
    char *json = catalog_descriptor_json(t, &s);
    store_batch_put(b, STORE_CF_META, k.data, k.len, json, strlen(json));
    free(json);
    buf_free(&k);
    rc = store_write(c->st, b, e);
    store_batch_free(b);
    if (rc == 0) {
        pthread_mutex_lock(&t->settings_mu);
        t->settings = s;
        pthread_mutex_unlock(&t->settings_mu);
    }
    pthread_rwlock_unlock(&t->lock);
out:
    pthread_mutex_unlock(&c->ddl_mu);
    return rc;
}

size_t catalog_list(catalog *c, const char *account, const char *start_after, size_t limit,
                    char ***names, bool *more)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t i = lower_bound(c, account, start_after ? start_after : "");
    if (start_after && i < c->n && strcmp(c->tables[i]->account, account) == 0 &&
        strcmp(c->tables[i]->name, start_after) == 0)
        i++;
    char **out = calloc(limit ? limit : 1, sizeof(char *));
    if (!out) abort();
    size_t n = 0;
    for (; i < c->n && n < limit && strcmp(c->tables[i]->account, account) == 0; i++)
        out[n++] = xstrdup(c->tables[i]->name);
    *more = i < c->n && strcmp(c->tables[i]->account, account) == 0;
    pthread_rwlock_unlock(&c->lock);
    *names = out;
    return n;
}

void catalog_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void catalog_totals(catalog *c, int64_t *items, int64_t *bytes)
{
    int64_t ni = 0, nb = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        ni += atomic_load(&c->tables[i]->item_count);
        nb += atomic_load(&c->tables[i]->size_bytes);
    }
    pthread_rwlock_unlock(&c->lock);
    *items = ni;
    *bytes = nb;
}

size_t catalog_all(catalog *c, table ***out)
{
    pthread_rwlock_rdlock(&c->lock);
    table **ts = calloc(c->n ? c->n : 1, sizeof(table *));
    if (!ts) abort();
    for (size_t i = 0; i < c->n; i++) {
        ts[i] = c->tables[i];
        table_acquire(ts[i]);
    }
    size_t n = c->n;
    pthread_rwlock_unlock(&c->lock);
    *out = ts;
    return n;
}

void catalog_release_all(table **ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        table_release(ts[i]);
    free(ts);
}
