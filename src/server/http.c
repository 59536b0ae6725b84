/* http.c - libmicrohttpd glue: request bodies in, responses out (see http.h).
 *
 * Per connection request state (http_req) is created on the first callback
 * of a request, accumulates the body across the upload callbacks, and is
 * freed by the completion callback, whatever happened to the connection.
 *
 * Per connection state (http_conn) lives from libmicrohttpd's "connection
 * started" to its "connection closed" notification, in a list the header
 * reaper scans: a connection whose next request's headers have not all
 * arrived within the header deadline (twice --idle-timeout) is shut down.
 * libmicrohttpd's idle timeout alone does not bound a client that trickles
 * one header byte at a time (slowloris), each byte making it not idle. */
#include "server/http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <zlib.h>

#include "api/dispatch.h"
#include "clock/hlc.h"
#include "item/json.h"
#include "repl/repl.h"
#include "util/log.h"

#define JSON_CONTENT_TYPE "application/x-amz-json-1.0"

/* Request bodies buffered at once, over all connections: past this, new
 * body bytes are refused (the connection is closed) rather than letting
 * many slow or unauthenticated uploads exhaust memory. */
#define BODY_BUDGET ((size_t)512 * 1024 * 1024)

/* One open connection (libmicrohttpd's socket context). */
typedef struct http_conn {
    int fd;
    /* When the connection became ready for a request's headers (accepted, or
     * the previous request completed), CLOCK_MONOTONIC ms; 0 while a request
     * whose headers have all arrived is being read or served. */
    _Atomic uint64_t awaiting_since_ms;
    bool reaped; /* shut down by the reaper (under conns_mu) */
    struct http_conn *prev, *next;
} http_conn;

struct http_server {
    struct MHD_Daemon *daemon;
    api_server *api;
    metrics *m;
    http_role role;
    bool has_token;            /* an admin token is configured: */
    uint8_t token_digest[32];  /* SHA-256 of it */
    http_server *api_listener; /* HTTP_ADMIN: the API listener (metrics), or NULL */
    size_t max_body;
    atomic_size_t buffered; /* body bytes held by requests in progress */
    atomic_int inflight;    /* requests begun and not yet completed */
    atomic_bool draining;   /* shutting down: responses close their connections */

    /* Open connections and the header reaper (see the top of this file). */
    pthread_mutex_t conns_mu;
    pthread_cond_t reaper_cv;
    http_conn *conns; /* under conns_mu */
    size_t n_conns;   /* under conns_mu */
    bool stopping;    /* under conns_mu: the reaper exits */
    bool reaper_started;
    pthread_t reaper;
    uint64_t header_deadline_ms;
    _Atomic uint64_t header_timeouts; /* connections shut down by the reaper */
};

typedef struct http_req {
    buf body;
    size_t counted; /* bytes of body charged to the server's budget */
    int too_big;
    int executing; /* request complete, handler running or response pending */
    struct timespec start;
} http_req;

typedef struct header_list {
    sigv4_header *h;
    size_t n, cap;
} header_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    header_list *l = cls;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        sigv4_header *h = realloc(l->h, cap * sizeof(*h));
        if (!h) return MHD_NO;
        l->h = h;
        l->cap = cap;
    }
    l->h[l->n].name = key;
    l->h[l->n].name_len = key_size;
    l->h[l->n].value = value ? value : "";
    l->h[l->n].value_len = value ? value_size : 0;
    l->n++;
    return MHD_YES;
}

static enum MHD_Result send_buf_with(http_server *h, struct MHD_Connection *conn, int status,
                                     buf *body, const char *content_type, const char *request_id,
                                     const char *version, const char *header, const char *value)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    if (body->len) crc = crc32(crc, body->data, (uInt)body->len);
    size_t len;
    uint8_t *data = buf_detach(body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, data ? data : (void *)"", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    char crcs[16];
    snprintf(crcs, sizeof(crcs), "%lu", (unsigned long)crc);
    MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "x-amz-crc32", crcs);
    if (atomic_load(&h->draining)) MHD_add_response_header(r, "Connection", "close");
    if (request_id) MHD_add_response_header(r, "x-amzn-RequestId", request_id);
    if (version && *version) MHD_add_response_header(r, "x-meridian-version", version);
    if (header) MHD_add_response_header(r, header, value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_buf(http_server *h, struct MHD_Connection *conn, int status, buf *body,
                                const char *content_type, const char *request_id,
                                const char *version)
{
    return send_buf_with(h, conn, status, body, content_type, request_id, version, NULL, NULL);
}

static http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static double elapsed(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static enum MHD_Result serve_api(http_server *h, struct MHD_Connection *conn, const char *url,
                                 const char *method, http_req *r)
{
    api_response resp;
    header_list hl = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &hl);
    sigv4_request req = {
        .method = method,
        .path = url,
        .query = "",
        .headers = hl.h,
        .n_headers = hl.n,
        .body = r->body.data ? r->body.data : (const uint8_t *)"",
        .body_len = r->body.len,
    };
    api_handle(h->api, &req, &resp);
    free(hl.h);
    metrics_observe_request(h->m, resp.op, resp.outcome, elapsed(&r->start));
    return send_buf(h, conn, resp.status, &resp.body, JSON_CONTENT_TYPE, resp.request_id,
                    resp.version);
}

static enum MHD_Result reject_too_large(http_server *h, struct MHD_Connection *conn)
{
    err e;
    err_set(&e, ERR_SERIALIZATION, "Request body exceeds the maximum size of %zu bytes",
            h->max_body);
    buf b;
    buf_init(&b);
    api_error_body(&b, &e);
    metrics_observe_request(h->m, -1, 1, 0);
    return send_buf(h, conn, 413, &b, JSON_CONTENT_TYPE, NULL, NULL);
}

static void render_http_metrics(http_server *h, buf *out)
{
    pthread_mutex_lock(&h->conns_mu);
    size_t open = h->n_conns;
    pthread_mutex_unlock(&h->conns_mu);
    buf_printf(out,
               "# HELP meridian_http_connections Open client connections on the API port.\n"
               "# TYPE meridian_http_connections gauge\nmeridian_http_connections %zu\n"
               "# HELP meridian_http_header_timeouts_total Connections closed because a "
               "request's headers did not all arrive within the header deadline.\n"
               "# TYPE meridian_http_header_timeouts_total counter\n"
               "meridian_http_header_timeouts_total %llu\n",
               open, (unsigned long long)atomic_load(&h->header_timeouts));
}

static enum MHD_Result send_error(http_server *h, struct MHD_Connection *conn, int status,
                                  err_code code, const char *msg, const char *header,
                                  const char *value)
{
    err e;
    err_set(&e, code, "%s", msg);
    buf b;
    buf_init(&b);
    api_error_body(&b, &e);
    return send_buf_with(h, conn, status, &b, "application/json", NULL, NULL, header, value);
}

typedef enum operator_access {
    OPERATOR_OK,
    OPERATOR_NOT_HERE,  /* no token configured, and this is the API listener */
    OPERATOR_NO_TOKEN,  /* a token is configured; the request carries none */
    OPERATOR_BAD_TOKEN, /* ... or another one */
} operator_access;

/* Whether this request may read the operator's endpoints (http.h): the one
 * place where that is decided, for every operator endpoint on either
 * listener. The presented token is compared by its SHA-256 digest in
 * constant time, so neither its bytes nor its length leak through timing. */
static operator_access operator_auth(const http_server *h, struct MHD_Connection *conn)
{
    if (!h->has_token) return h->role == HTTP_ADMIN ? OPERATOR_OK : OPERATOR_NOT_HERE;
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!v) return OPERATOR_NO_TOKEN;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t')) return OPERATOR_NO_TOKEN;
    v += 6;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0) return OPERATOR_NO_TOKEN;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    if (!EVP_Digest(v, n, md, &mdl, EVP_sha256(), NULL) || mdl != 32) return OPERATOR_BAD_TOKEN;
    return CRYPTO_memcmp(md, h->token_digest, 32) == 0 ? OPERATOR_OK : OPERATOR_BAD_TOKEN;
}

/* GET /metrics and /replication/status, for the operator only. */
static enum MHD_Result serve_operator(http_server *h, struct MHD_Connection *conn, const char *url)
{
    switch (operator_auth(h, conn)) {
    case OPERATOR_OK:
        break;
    case OPERATOR_NOT_HERE:
        /* Not 401: no credential opens it on this listener. */
        return send_error(h, conn, 404, ERR_UNKNOWN_OPERATION,
                          "not served on the API listener of this region: see its admin "
                          "listener (--admin-listen), or give the region --admin-token-file to "
                          "serve it here to bearers of the token",
                          NULL, NULL);
    case OPERATOR_NO_TOKEN:
        return send_error(h, conn, 401, ERR_MISSING_AUTH,
                          "this endpoint needs the operator's token: Authorization: Bearer "
                          "<token> (the contents of the region's --admin-token-file)",
                          "WWW-Authenticate", "Bearer realm=\"meridian\"");
    case OPERATOR_BAD_TOKEN:
        return send_error(h, conn, 401, ERR_UNRECOGNIZED_CLIENT,
                          "the bearer token is not the operator's token of this region",
                          "WWW-Authenticate", "Bearer realm=\"meridian\", error=\"invalid_token\"");
    }
    buf b;
    buf_init(&b);
    if (strcmp(url, "/metrics") == 0) {
        metrics_render(h->m, h->api->d, &b);
        http_server *api = h->role == HTTP_API ? h : h->api_listener;
        if (api) render_http_metrics(api, &b);
        return send_buf(h, conn, 200, &b, "text/plain; version=0.0.4", NULL, NULL);
    }
    repl_status_json(h->api->repl, &b);
    return send_buf(h, conn, 200, &b, "application/json", NULL, NULL);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *c = calloc(1, sizeof(*c));
        if (!c || !ci) { /* not watched: only the idle timeout applies */
            free(c);
            *socket_context = NULL;
            return;
        }
        c->fd = ci->connect_fd;
        atomic_init(&c->awaiting_since_ms, hlc_mono_ms());
        pthread_mutex_lock(&h->conns_mu);
        c->next = h->conns;
        if (h->conns) h->conns->prev = c;
        h->conns = c;
        h->n_conns++;
        pthread_mutex_unlock(&h->conns_mu);
        *socket_context = c;
        return;
    }
    /* Closed. libmicrohttpd closes the socket after this notification, so
     * the reaper (which shuts sockets down under conns_mu) never touches a
     * descriptor that has been closed, or reused by another connection. */
    http_conn *c = *socket_context;
    if (!c) return;
    pthread_mutex_lock(&h->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    h->n_conns--;
    pthread_mutex_unlock(&h->conns_mu);
    free(c);
    *socket_context = NULL;
}

/* Shuts down every connection whose request headers are overdue; their
 * threads then see the connection end and close it. */
static void *reaper_main(void *arg)
{
    http_server *h = arg;
    _Atomic uint64_t last_warn_ms = 0;
    pthread_mutex_lock(&h->conns_mu);
    while (!h->stopping) {
        uint64_t now = hlc_mono_ms();
        size_t reaped = 0;
        for (http_conn *c = h->conns; c; c = c->next) {
            uint64_t since = atomic_load(&c->awaiting_since_ms);
            if (c->reaped || since == 0 || now - since < h->header_deadline_ms) continue;
            shutdown(c->fd, SHUT_RDWR);
            c->reaped = true;
            reaped++;
        }
        if (reaped) {
            atomic_fetch_add(&h->header_timeouts, reaped);
            if (log_every(&last_warn_ms, 10000)) {
                log_warn("http: closed %zu connection(s) whose request headers did not arrive "
                         "within %llu s (slow or stalled clients; counted in "
                         "meridian_http_header_timeouts_total)",
                         reaped, (unsigned long long)(h->header_deadline_ms / 1000));
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&h->reaper_cv, &h->conns_mu, &until);
    }
    pthread_mutex_unlock(&h->conns_mu);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_server *h = cls;
    http_req *r = *con_cls;
    if (!r) {
        /* Every header of this request has arrived. */
        http_conn *hc = conn_of(conn);
        if (hc) atomic_store(&hc->awaiting_since_ms, 0);
        r = calloc(1, sizeof(*r));
        if (!r) return MHD_NO;
        buf_init(&r->body);
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        *con_cls = r;
        /* A declared body over the limit is refused before any of it is read. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end || n > h->max_body) {
                r->too_big = 1;
                return reject_too_large(h, conn);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (r->too_big || r->body.len + n > h->max_body) return MHD_NO; /* close */
        if (atomic_fetch_add(&h->buffered, n) + n > BODY_BUDGET) {
            atomic_fetch_sub(&h->buffered, n);
            log_warn("request bodies in progress exceed %zu bytes: closing a connection",
                     BODY_BUDGET);
            return MHD_NO;
        }
        r->counted += n;
        buf_append(&r->body, upload_data, n);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_big) return MHD_YES; /* the 413 is already queued */
    /* The request is complete: from here until its response has been sent it
     * counts for the shutdown drain (uploads still in progress do not: they
     * were never acknowledged and are simply cut off). */
    r->executing = 1;
    atomic_fetch_add(&h->inflight, 1);

    if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0) {
        buf b;
        buf_init(&b);
        buf_puts(&b, "{\"region\":");
        json_write_string(&b, h->api->region, strlen(h->api->region));
        buf_puts(&b, ",\"status\":\"ok\",\"version\":\"" MERIDIAN_VERSION "\"}");
        return send_buf(h, conn, 200, &b, "application/json", NULL, NULL);
    }
    if (strcmp(method, "GET") == 0 &&
        (strcmp(url, "/metrics") == 0 || strcmp(url, "/replication/status") == 0))
        return serve_operator(h, conn, url);
    if (h->role == HTTP_API && strcmp(method, "POST") == 0)
        return serve_api(h, conn, url, method, r);
    buf b;
    buf_init(&b);
    err e;
    err_set(&e, ERR_UNKNOWN_OPERATION, "%s", "");
    api_error_body(&b, &e);
    return send_buf(h, conn, strcmp(method, "GET") == 0 ? 404 : 405, &b, JSON_CONTENT_TYPE, NULL,
                    NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_server *h = cls;
    http_req *r = *con_cls;
    if (!r) return;
    /* The next request's headers are awaited from now on. */
    http_conn *hc = conn_of(conn);
    if (hc) atomic_store(&hc->awaiting_since_ms, hlc_mono_ms());
    atomic_fetch_sub(&h->buffered, r->counted);
    if (r->executing) atomic_fetch_sub(&h->inflight, 1);
    buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* Refusals at the connection limit, or at the system's limits on threads
     * and descriptors, are what an operator must see (at most one line per
     * 10 s); libmicrohttpd's other messages are details. */
    static _Atomic uint64_t last_ms;
    if (strstr(msg, "limit")) {
        if (log_every(&last_ms, 10000)) {
            log_warn("http: %s (new connections are refused while the limit holds; idle ones "
                     "are closed after --idle-timeout)",
                     msg);
            return;
        }
    }
    log_debug("http: %s", msg);
}

static void free_server(http_server *h)
{
    /* Every connection has been closed (and unlinked) by now. */
    while (h->conns) {
        http_conn *c = h->conns;
        h->conns = c->next;
        free(c);
    }
    pthread_cond_destroy(&h->reaper_cv);
    pthread_mutex_destroy(&h->conns_mu);
    free(h);
}

http_server *http_start(const http_options *opt, api_server *api, metrics *m, err *e)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    /* One thread per connection: a request blocked in the group commit's
     * fsync holds up only its own connection, and as many writes as there
     * are connections share one fsync (bench/RESULTS.md: 1.5x the PutItem
     * throughput of a 64-thread epoll pool, whose threads each served several
     * connections in turn). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opt->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)opt->port);
    } else if (inet_pton(AF_INET6, opt->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)opt->port);
        flags |= MHD_USE_IPv6;
    } else {
        err_set(e, ERR_INTERNAL, "invalid listen address %s (use a numeric IP address)", opt->host);
        return NULL;
    }
    http_server *h = calloc(1, sizeof(*h));
    if (!h) abort();
    h->api = api;
    h->m = m;
    h->role = opt->role;
    h->api_listener = opt->api_listener;
    if (opt->admin_token) {
        unsigned int mdl = 0;
        if (!EVP_Digest(opt->admin_token, opt->admin_token_len, h->token_digest, &mdl, EVP_sha256(),
                        NULL) ||
            mdl != 32)
            abort();
        h->has_token = true;
    }
    h->max_body = opt->max_body;
    h->header_deadline_ms = 2000ull * opt->idle_timeout;
    pthread_mutex_init(&h->conns_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->reaper_cv, &ca);
    pthread_condattr_destroy(&ca);
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)opt->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1024 * 1024), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)opt->idle_timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)opt->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_END);
    if (!h->daemon) {
        free_server(h);
        err_set(e, ERR_INTERNAL, "cannot listen on %s:%d (address in use or not available)",
                opt->host, opt->port);
        return NULL;
    }
    if (pthread_create(&h->reaper, NULL, reaper_main, h) != 0) {
        MHD_stop_daemon(h->daemon);
        free_server(h);
        err_set(e, ERR_INTERNAL, "cannot start a thread");
        return NULL;
    }
    h->reaper_started = true;
    return h;
}

void http_quiesce(http_server *h)
{
    atomic_store(&h->draining, true);
    MHD_socket s = MHD_quiesce_daemon(h->daemon);
    if (s != MHD_INVALID_SOCKET) close(s);
}

int http_drain(http_server *h, unsigned timeout_ms)
{
    for (unsigned waited = 0; atomic_load(&h->inflight) > 0; waited += 10) {
        if (waited >= timeout_ms) return -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void http_stop(http_server *h)
{
    if (!h) return;
    if (h->reaper_started) {
        pthread_mutex_lock(&h->conns_mu);
        h->stopping = true;
        pthread_cond_signal(&h->reaper_cv);
        pthread_mutex_unlock(&h->conns_mu);
        pthread_join(h->reaper, NULL);
    }
    MHD_stop_daemon(h->daemon);
    free_server(h);
}
