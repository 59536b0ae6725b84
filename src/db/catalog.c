/* catalog.c - table catalog in memory and in the meta column family (see catalog.h). */
#include "db/catalog.h"

#include <cjson/cJSON.h>
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
    atomic_init(&t->size_bytes, 0);
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

static char *table_to_json(const table *t, const table_settings *s)
{
    cJSON *o = cJSON_CreateObject();
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)t->id);
    cJSON_AddStringToObject(o, "id", idbuf);
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

static table *table_from_json(const char *text, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!o) return NULL;
    table tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    const char *id = jstr(o, "id");
    tmpl.account = (char *)jstr(o, "account");
    tmpl.name = (char *)jstr(o, "name");
    tmpl.pk_name = (char *)jstr(o, "pk_name");
    const char *pkt = jstr(o, "pk_type");
    tmpl.sk_name = (char *)jstr(o, "sk_name");
    const char *skt = jstr(o, "sk_type");
    table *t = NULL;
    if (!id || !tmpl.account || !tmpl.name || !tmpl.pk_name || !pkt) goto out;
    tmpl.id = strtoull(id, NULL, 10);
    tmpl.pk_type = mv_type_from_name(pkt, strlen(pkt));
    if (tmpl.sk_name) {
        if (!skt) goto out;
        tmpl.sk_type = mv_type_from_name(skt, strlen(skt));
    }
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(o, "attr_defs");
    size_t n = (size_t)cJSON_GetArraySize(defs);
    table_attr_def *ad = calloc(n ? n : 1, sizeof(*ad));
    if (!ad) abort();
    size_t i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, defs)
    {
        const char *dn = jstr(d, "name"), *dt = jstr(d, "type");
        if (!dn || !dt) {
            free(ad);
            goto out;
        }
        ad[i].name = (char *)dn;
        ad[i].type = mv_type_from_name(dt, strlen(dt));
        i++;
    }
    tmpl.n_attr_defs = i;
    tmpl.attr_defs = ad;
    tmpl.created_ms = (int64_t)jnum(o, "created_ms");
    tmpl.settings.pay_per_request =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "pay_per_request"));
    tmpl.settings.rcu = (int64_t)jnum(o, "rcu");
    tmpl.settings.wcu = (int64_t)jnum(o, "wcu");
    tmpl.settings.deletion_protection =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deletion_protection"));
    tmpl.settings.billing_changed_ms = (int64_t)jnum(o, "billing_changed_ms");
    t = table_clone_new(&tmpl);
    free(ad);
out:
    cJSON_Delete(o);
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
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->tables = realloc(c->tables, c->cap * sizeof(table *));
            if (!c->tables) abort();
        }
        c->tables[c->n++] = t; /* keys are in (account, name) order already */
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

    store_batch *b = store_batch_new(c->st);
    uint8_t seq[8];
    store_u64be(seq, t->id + 1);
    store_batch_put(b, STORE_CF_META, KEY_SEQ, strlen(KEY_SEQ), seq, 8);
    buf k;
    buf_init(&k);
    table_key(&k, t->account, t->name);
    char *json = table_to_json(t, &t->settings);
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
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->tables = realloc(c->tables, c->cap * sizeof(table *));
        if (!c->tables) abort();
    }
    size_t i = lower_bound(c, t->account, t->name);
    memmove(c->tables + i + 1, c->tables + i, (c->n - i) * sizeof(table *));
    c->tables[i] = t;
    c->n++;
    table_acquire(t);
    pthread_rwlock_unlock(&c->lock);
    pthread_mutex_unlock(&c->ddl_mu);
    *out = t;
    return 0;
}

int catalog_delete(catalog *c, const char *account, const char *name, table **out, err *e)
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
    pthread_mutex_unlock(&t->settings_mu);
    if (protected_) {
        table_release(t);
        pthread_mutex_unlock(&c->ddl_mu);
        return err_validation(e, "Resource cannot be deleted as it is currently protected "
                                 "against deletion. Disable deletion protection first.");
    }
    /* Wait for in-flight item writes, then make the table unreachable. */
    pthread_rwlock_wrlock(&t->lock);
    store_batch *b = store_batch_new(c->st);
    buf k;
    buf_init(&k);
    table_key(&k, account, name);
    store_batch_delete(b, STORE_CF_META, k.data, k.len);
    buf_free(&k);
    uint8_t lo[8], hi[8];
    store_u64be(lo, t->id);
    store_u64be(hi, t->id + 1);
    store_batch_delete_range(b, STORE_CF_ITEMS, lo, 8, hi, 8);
    int rc = store_write(c->st, b, e);
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
    table_settings s;
    pthread_mutex_lock(&t->settings_mu);
    s = t->settings;
    pthread_mutex_unlock(&t->settings_mu);
    if (fn(ctx, &s, e) < 0) goto out;
    store_batch *b = store_batch_new(c->st);
    buf k;
    buf_init(&k);
    table_key(&k, t->account, t->name);
    char *json = table_to_json(t, &s);
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
