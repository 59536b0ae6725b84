/* http.h - the HTTP front end of the API port (libmicrohttpd).
 *
 * Serves POST / (the DynamoDB JSON protocol, handed to api_handle), GET
 * /health and GET /metrics. libmicrohttpd runs one thread per connection
 * (1 MiB stack; connections are capped by --max-connections), which handles
 * that connection's requests in turn, so a write waiting for its fsync blocks
 * nobody else. Limits protect the server from hostile clients:
 * body size, header memory per connection, idle timeout, a deadline for a
 * request's headers (twice the idle timeout: slowloris), and the number of
 * connections. /metrics gets meridian_http_connections and
 * meridian_http_header_timeouts_total from here.
 */
#ifndef MERIDIAN_HTTP_H
#define MERIDIAN_HTTP_H

#include <stddef.h>

#include "api/dispatch.h"
#include "server/metrics.h"

typedef struct http_options {
    const char *host; /* listen address (numeric IPv4/IPv6) */
    int port;
    unsigned idle_timeout; /* seconds before an idle connection is closed */
    unsigned max_connections;
    size_t max_body; /* bytes */
} http_options;

typedef struct http_server http_server;

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
