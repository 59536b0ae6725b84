/* server.h - `meridian serve`: one region process.
 *
 * Owns start-up (command line, credentials, cluster key, data directory),
 * the long-lived objects of the process (db, verifier, metrics, the HTTP
 * listeners: API and, with --admin-listen, the operator's) and shutdown: SIGTERM/SIGINT stop
 * accepting connections, let in-flight requests finish, flush and close the database, exit 0.
 */
#ifndef MERIDIAN_SERVER_H
#define MERIDIAN_SERVER_H

#include "db/catalog.h"

/* Every region of a deployment fits in one table's replica list
 * (catalog.h TABLE_REPLICAS_MAX, this region included). */
#define SERVER_MAX_PEERS (TABLE_REPLICAS_MAX - 1)

typedef struct server_peer {
    const char *name; /* region name */
    const char *host; /* peer-listen address of that region */
    int port;
} server_peer;

typedef struct server_config {
    const char *region;
    const char *data_dir;
    const char *listen_host;
    int listen_port;
    const char *peer_listen_host;
    int peer_listen_port;
    server_peer peers[SERVER_MAX_PEERS];
    int n_peers;
    const char *credentials_path;
    const char *cluster_key_path;
    const char *admin_listen_host; /* NULL: no admin listener */
    int admin_listen_port;
    const char *admin_token_path; /* NULL: no operator token */
    int log_level;
    unsigned idle_timeout;
    unsigned max_connections;
    long long clock_offset_ms;           /* test only: shifts this region's wall clock */
    unsigned max_clock_skew_ms;          /* received timestamps may lead the local clock by this */
    unsigned long long log_retention_ms; /* replication log kept for unreachable peers */
    unsigned long long log_retention_bytes; /* ... and at most this large */
    unsigned long long tombstone_grace_ms;  /* deletes kept after every region has them */
} server_config;

/* Parses `serve` arguments (argv[0] is "serve"). Prints the problem and
 * returns -1 on bad usage. */
int server_parse_args(int argc, char **argv, server_config *cfg);
/* Frees what server_parse_args allocated. */
void server_config_free(server_config *cfg);
/* Runs the region until SIGTERM/SIGINT; returns the process exit code. */
int server_run(const server_config *cfg);
void server_usage(void);

/* Splits "HOST:PORT" (HOST may be [v6]) into host (malloc'ed) and port. */
int parse_host_port(const char *s, char **host, int *port);

#endif
