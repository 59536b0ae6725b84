/* http.h - the HTTP front ends of a region (libmicrohttpd): the API
 * listener (--listen) and the operator's admin listener (--admin-listen).
 *
 * The API listener serves POST / (the DynamoDB JSON protocol, handed to
 * api_handle) and GET /health; the admin listener serves GET /health only
 * besides the operator's endpoints. The operator's endpoints, GET /metrics
 * and GET /replication/status, name every account's tables, so:
 *   - with an admin token (--admin-token-file), both listeners serve them to
 *     requests carrying `Authorization: Bearer <token>` and answer 401 with a
 *     JSON error (and nothing else) without it;
 *   - without one, only the admin listener serves them (the operator chose
 *     its address), and the API listener answers 404.
 * The check is one function (operator_auth in http.c), for every operator
 * endpoint on either listener (the console will be one more).
 *
 * libmicrohttpd runs one thread per connection (1 MiB stack; connections are
 * capped by --max-connections, 64 on the admin listener), which handles that
 * connection's requests in turn, so a write waiting for its fsync blocks
 * nobody else. Limits protect the server from hostile clients: body size,
 * header memory per connection, idle timeout, a deadline for a request's
 * headers (twice the idle timeout: slowloris), and the number of
 * connections. /metrics gets meridian_http_connections and
 * meridian_http_header_timeouts_total (of the API listener) from here.
 */
#ifndef MERIDIAN_HTTP_H
#define MERIDIAN_HTTP_H

#include <stddef.h>

#include "api/dispatch.h"
#include "server/metrics.h"

typedef struct http_server http_server;

typedef enum http_role {
    HTTP_API,   /* --listen: the DynamoDB API */
    HTTP_ADMIN, /* --admin-listen: the operator's endpoints only */
} http_role;

typedef struct http_options {
    const char *host; /* listen address (numeric IPv4/IPv6) */
    int port;
    unsigned idle_timeout; /* seconds before an idle connection is closed */
    unsigned max_connections;
    size_t max_body; /* bytes */
    http_role role;
    /* The operator's bearer token (--admin-token-file), or NULL: see above.
     * Only its SHA-256 digest is kept. */
    const char *admin_token;
    size_t admin_token_len;
    /* HTTP_ADMIN: the API listener, whose connection figures /metrics shows
     * (NULL: none). */
    http_server *api_listener;
} http_options;

/* Starts serving; returns NULL with e set if the address cannot be bound. */
http_server *http_start(const http_options *opt, api_server *api, metrics *m, err *e);
/* Stops accepting new connections (first step of a drain); responses from
 * now on carry `Connection: close`. */
void http_quiesce(http_server *h);
/* Waits until every request already received in full has had its response
 * sent (or timeout_ms passes: returns -1). Idle keep-alive connections and
 * uploads still in progress do not count. */
int http_drain(http_server *h, unsigned timeout_ms);
/* Waits for in-flight requests, closes every connection, frees. */
void http_stop(http_server *h);

#endif
