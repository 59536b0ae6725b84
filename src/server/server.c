/* server.c - `meridian serve`: start-up, the process's long-lived objects,
 * signal handling and clean shutdown (see server.h). */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/dispatch.h"
#include "auth/credentials.h"
#include "auth/sigv4.h"
#include "db/db.h"
#include "repl/repl.h"
#include "server/http.h"
#include "server/metrics.h"
#include "util/log.h"

#define CLUSTER_KEY_MIN 16
#define CLUSTER_KEY_MAX 1024
#define ADMIN_TOKEN_MIN 16
#define ADMIN_TOKEN_MAX 1024
#define ADMIN_MAX_CONNS 64

void server_usage(void)
{
    fprintf(stderr,
            "usage: meridian serve --region NAME --data DIR --listen HOST:PORT\n"
            "                      --peer-listen HOST:PORT [--peer NAME=HOST:PORT ...]\n"
            "                      --credentials FILE --cluster-key FILE\n"
            "                      [--log-level debug|info|warn|error]\n"
            "                      [--idle-timeout SECONDS] [--max-connections N]\n"
            "                      [--max-clock-skew-ms N] [--clock-offset-ms N (tests only)]\n"
            "                      [--log-retention-ms N] [--log-retention-bytes N]\n"
            "                      [--tombstone-grace-ms N]\n"
            "                      [--admin-listen HOST:PORT] [--admin-token-file FILE]\n");
}

int parse_host_port(const char *s, char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1]) return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return -1;
        h++;
        hl -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535) return -1;
    *host = strndup(h, hl);
    if (!*host) abort();
    *port = (int)p;
    return 0;
}

static int valid_region_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int parse_uint(const char *flag, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < (long)lo || v > (long)hi) {
        fprintf(stderr, "meridian serve: %s must be an integer in [%u, %u]\n", flag, lo, hi);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int server_parse_args(int argc, char **argv, server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_INFO;
    cfg->idle_timeout = 60;
    cfg->max_connections = 16384;
    cfg->max_clock_skew_ms = 60000;
    cfg->log_retention_ms = 7ull * 24 * 3600 * 1000;       /* a week */
    cfg->log_retention_bytes = 64ull * 1024 * 1024 * 1024; /* 64 GiB */
    cfg->tombstone_grace_ms = 24ull * 3600 * 1000;         /* a day */
    static const struct option longopts[] = {
        {"region", required_argument, 0, 'r'},
        {"data", required_argument, 0, 'd'},
        {"listen", required_argument, 0, 'l'},
        {"peer-listen", required_argument, 0, 'L'},
        {"peer", required_argument, 0, 'p'},
        {"credentials", required_argument, 0, 'c'},
        {"cluster-key", required_argument, 0, 'k'},
        {"log-level", required_argument, 0, 'v'},
        {"idle-timeout", required_argument, 0, 'i'},
        {"max-connections", required_argument, 0, 'm'},
        {"max-clock-skew-ms", required_argument, 0, 'S'},
        {"clock-offset-ms", required_argument, 0, 'O'},
        {"log-retention-ms", required_argument, 0, 'R'},
        {"log-retention-bytes", required_argument, 0, 'B'},
        {"tombstone-grace-ms", required_argument, 0, 'G'},
        {"admin-listen", required_argument, 0, 'A'},
        {"admin-token-file", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int ch;
    char *host;
    int port;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            cfg->region = optarg;
            break;
        case 'd':
            cfg->data_dir = optarg;
            break;
        case 'l':
            if (parse_host_port(optarg, &host, &port) < 0) {
                fprintf(stderr, "meridian serve: --listen expects HOST:PORT, got '%s'\n", optarg);
                return -1;
            }
            free((char *)cfg->listen_host);
            cfg->listen_host = host;
            cfg->listen_port = port;
            break;
        case 'L':
            if (parse_host_port(optarg, &host, &port) < 0) {
                fprintf(stderr, "meridian serve: --peer-listen expects HOST:PORT, got '%s'\n",
                        optarg);
                return -1;
            }
            free((char *)cfg->peer_listen_host);
            cfg->peer_listen_host = host;
            cfg->peer_listen_port = port;
            break;
        case 'p': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || parse_host_port(eq + 1, &host, &port) < 0) {
                fprintf(stderr, "meridian serve: --peer expects NAME=HOST:PORT, got '%s'\n",
                        optarg);
                return -1;
            }
            if (cfg->n_peers == SERVER_MAX_PEERS) {
                free(host);
                fprintf(stderr, "meridian serve: at most %d peers\n", SERVER_MAX_PEERS);
                return -1;
            }
            char *name = strndup(optarg, (size_t)(eq - optarg));
            if (!name) abort();
            cfg->peers[cfg->n_peers++] = (server_peer){name, host, port};
            if (!valid_region_name(name)) {
                fprintf(stderr, "meridian serve: invalid peer region name '%s'\n", name);
                return -1;
            }
            for (int i = 0; i < cfg->n_peers - 1; i++)
                if (strcmp(cfg->peers[i].name, name) == 0) {
                    fprintf(stderr, "meridian serve: peer '%s' given twice\n", name);
                    return -1;
                }
            break;
        }
        case 'A':
            if (parse_host_port(optarg, &host, &port) < 0) {
                fprintf(stderr, "meridian serve: --admin-listen expects HOST:PORT, got '%s'\n",
                        optarg);
                return -1;
            }
            free((char *)cfg->admin_listen_host);
            cfg->admin_listen_host = host;
            cfg->admin_listen_port = port;
            break;
        case 'T':
            cfg->admin_token_path = optarg;
            break;
        case 'c':
            cfg->credentials_path = optarg;
            break;
        case 'k':
            cfg->cluster_key_path = optarg;
            break;
        case 'v':
            cfg->log_level = log_level_parse(optarg);
            if (cfg->log_level < 0) {
                fprintf(stderr, "meridian serve: --log-level must be debug, info, warn or error\n");
                return -1;
            }
            break;
        case 'i':
            if (parse_uint("--idle-timeout", optarg, 1, 86400, &cfg->idle_timeout) < 0) return -1;
            break;
        case 'm':
            if (parse_uint("--max-connections", optarg, 1, 1000000, &cfg->max_connections) < 0)
                return -1;
            break;
        case 'S':
            if (parse_uint("--max-clock-skew-ms", optarg, 1, 86400000, &cfg->max_clock_skew_ms) < 0)
                return -1;
            break;
        case 'R':
        case 'B':
        case 'G': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            const char *flag = ch == 'R'   ? "--log-retention-ms"
                               : ch == 'B' ? "--log-retention-bytes"
                                           : "--tombstone-grace-ms";
            if (!*optarg || *end || optarg[0] == '-' || errno == ERANGE ||
                (ch == 'G' && v > 10ull * 365 * 86400000)) {
                fprintf(stderr, "meridian serve: %s must be a whole number%s\n", flag,
                        ch == 'G' ? " of milliseconds, at most ten years" : "");
                return -1;
            }
            if (ch == 'R')
                cfg->log_retention_ms = v;
            else if (ch == 'B')
                cfg->log_retention_bytes = v;
            else
                cfg->tombstone_grace_ms = v;
            break;
        }
        case 'O': {
            char *end;
            cfg->clock_offset_ms = strtoll(optarg, &end, 10);
            if (!*optarg || *end || cfg->clock_offset_ms > 86400000LL * 365 ||
                cfg->clock_offset_ms < -86400000LL * 365) {
                fprintf(stderr, "meridian serve: --clock-offset-ms must be an integer (ms)\n");
                return -1;
            }
            break;
        }
        case 'h':
            server_usage();
            exit(0);
        default:
            server_usage();
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meridian serve: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    const char *missing = !cfg->region             ? "--region"
                          : !cfg->data_dir         ? "--data"
                          : !cfg->listen_host      ? "--listen"
                          : !cfg->peer_listen_host ? "--peer-listen"
                          : !cfg->credentials_path ? "--credentials"
                          : !cfg->cluster_key_path ? "--cluster-key"
                                                   : NULL;
    if (missing) {
        fprintf(stderr, "meridian serve: %s is required\n", missing);
        server_usage();
        return -1;
    }
    if (!valid_region_name(cfg->region)) {
        fprintf(stderr,
                "meridian serve: invalid region name '%s' (1-64 characters of A-Z a-z 0-9 . _ -)\n",
                cfg->region);
        return -1;
    }
    for (int i = 0; i < cfg->n_peers; i++)
        if (strcmp(cfg->peers[i].name, cfg->region) == 0) {
            fprintf(stderr, "meridian serve: --peer names this region itself (%s)\n", cfg->region);
            return -1;
        }
    if (cfg->listen_port == cfg->peer_listen_port && cfg->listen_port != 0 &&
        strcmp(cfg->listen_host, cfg->peer_listen_host) == 0) {
        fprintf(stderr, "meridian serve: --listen and --peer-listen must differ\n");
        return -1;
    }
    if (cfg->admin_listen_host && cfg->admin_listen_port != 0 &&
        ((cfg->admin_listen_port == cfg->listen_port &&
          strcmp(cfg->admin_listen_host, cfg->listen_host) == 0) ||
         (cfg->admin_listen_port == cfg->peer_listen_port &&
          strcmp(cfg->admin_listen_host, cfg->peer_listen_host) == 0))) {
        fprintf(stderr, "meridian serve: --admin-listen must differ from --listen and "
                        "--peer-listen\n");
        return -1;
    }
    return 0;
}

void server_config_free(server_config *cfg)
{
    free((char *)cfg->listen_host);
    free((char *)cfg->peer_listen_host);
    free((char *)cfg->admin_listen_host);
    for (int i = 0; i < cfg->n_peers; i++) {
        free((char *)cfg->peers[i].name);
        free((char *)cfg->peers[i].host);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* Reads a secret file of `what` (for messages) into out: at most max bytes (a
 * longer file is an error, never a truncation), trailing white space and
 * newlines dropped, at least min left. Shared by the cluster key and the
 * admin token. */
static int read_secret_file(const char *path, const char *what, char *out, size_t max, size_t min,
                            size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "meridian serve: cannot read %s file %s: %s\n", what, path,
                strerror(errno));
        return -1;
    }
    char extra;
    ssize_t n = read(fd, out, max);
    ssize_t more = n == (ssize_t)max ? read(fd, &extra, 1) : 0;
    close(fd);
    size_t len = n > 0 ? (size_t)n : 0;
    while (len && strchr("\n\r \t", out[len - 1]))
        len--;
    *out_len = len;
    if (more > 0) {
        fprintf(stderr, "meridian serve: %s file %s is longer than %zu bytes\n", what, path, max);
        return -1;
    }
    if (len < min) {
        fprintf(stderr, "meridian serve: %s file %s must hold a secret of at least %zu bytes\n",
                what, path, min);
        return -1;
    }
    return 0;
}

/* Reads the cluster key, which authenticates links between regions
 * (challenge-response, repl/wire.h): 16 to CLUSTER_KEY_MAX bytes. */
static int check_cluster_key(const char *path, char *key, size_t *key_len)
{
    return read_secret_file(path, "cluster key", key, CLUSTER_KEY_MAX, CLUSTER_KEY_MIN, key_len);
}

/* Reads the operator's bearer token (--admin-token-file): 16 to
 * ADMIN_TOKEN_MAX visible ASCII characters (it travels in an HTTP header),
 * trailing white space and newlines ignored. */
static int read_admin_token(const char *path, char *token, size_t *token_len)
{
    if (read_secret_file(path, "admin token", token, ADMIN_TOKEN_MAX, ADMIN_TOKEN_MIN, token_len) <
        0)
        return -1;
    for (size_t i = 0; i < *token_len; i++)
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7e) {
            fprintf(stderr,
                    "meridian serve: admin token file %s: the token must be one line of visible "
                    "ASCII characters, without spaces\n",
                    path);
            return -1;
        }
    return 0;
}

/* File descriptors: RocksDB keeps up to 512 files open (store.c) plus its
 * WAL and logs; the rest may be connections. Raise the soft limit to the hard
 * one, and lower the connection limit if even that is not enough, so that
 * accept() never fails with EMFILE while connections are below the limit. */
static unsigned fit_connection_limit(unsigned wanted)
{
    const rlim_t reserve = 512 + 128;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)wanted + reserve) return wanted;
    unsigned fit = rl.rlim_cur > reserve + 16 ? (unsigned)(rl.rlim_cur - reserve) : 16;
    log_warn("file descriptor limit %llu allows only %u connections (--max-connections %u)",
             (unsigned long long)rl.rlim_cur, fit, wanted);
    return fit;
}

int server_run(const server_config *cfg)
{
    log_set_level((log_level)cfg->log_level);
    hlc_set_offset_ms((int64_t)cfg->clock_offset_ms);
    log_set_region(cfg->region);

    cred_table creds;
    err e;
    err_clear(&e);
    if (cred_load(cfg->credentials_path, &creds, &e) < 0) {
        fprintf(stderr, "meridian serve: %s\n", e.msg);
        return 1;
    }
    char cluster_key[CLUSTER_KEY_MAX];
    size_t cluster_key_len = 0;
    if (check_cluster_key(cfg->cluster_key_path, cluster_key, &cluster_key_len) < 0) {
        cred_free(&creds);
        return 1;
    }
    static char admin_token[ADMIN_TOKEN_MAX];
    size_t admin_token_len = 0;
    if (cfg->admin_token_path &&
        read_admin_token(cfg->admin_token_path, admin_token, &admin_token_len) < 0) {
        memset(cluster_key, 0, sizeof(cluster_key));
        cred_free(&creds);
        return 1;
    }

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    static db d;
    if (db_open(&d, cfg->data_dir, cfg->region, NULL, &e) < 0) {
        fprintf(stderr, "meridian serve: cannot open data directory %s: %s\n", cfg->data_dir,
                e.msg);
        cred_free(&creds);
        return 1;
    }
    d.max_skew_ms = cfg->max_clock_skew_ms;
    repl_peer_cfg peers[SERVER_MAX_PEERS];
    for (int i = 0; i < cfg->n_peers; i++)
        peers[i] = (repl_peer_cfg){cfg->peers[i].name, cfg->peers[i].host, cfg->peers[i].port};
    repl_config rc = {
        .region = cfg->region,
        .listen_host = cfg->peer_listen_host,
        .listen_port = cfg->peer_listen_port,
        .peers = peers,
        .n_peers = (size_t)cfg->n_peers,
        .key = (const uint8_t *)cluster_key,
        .key_len = cluster_key_len,
        .retention_ms = cfg->log_retention_ms,
        .retention_bytes = cfg->log_retention_bytes,
        .tombstone_grace_ms = cfg->tombstone_grace_ms,
    };
    repl *r = repl_start(&d, &rc, &e);
    memset(cluster_key, 0, sizeof(cluster_key));
    if (!r) {
        fprintf(stderr, "meridian serve: %s\n", e.msg);
        db_close(&d);
        cred_free(&creds);
        return 1;
    }
    sigv4_verifier *verifier = sigv4_verifier_new(&creds, cfg->region, "dynamodb");
    metrics *m = metrics_new(cfg->region);
    metrics_set_repl(m, r);
    api_server api = {.d = &d, .repl = r, .verifier = verifier, .region = cfg->region, .m = m};
    http_options ho = {
        .host = cfg->listen_host,
        .port = cfg->listen_port,
        .idle_timeout = cfg->idle_timeout,
        .max_connections = fit_connection_limit(cfg->max_connections),
        .max_body = 16u * 1024 * 1024 + 64 * 1024,
        .role = HTTP_API,
        .admin_token = cfg->admin_token_path ? admin_token : NULL,
        .admin_token_len = admin_token_len,
    };
    http_server *http = http_start(&ho, &api, m, &e);
    http_server *admin = NULL;
    if (http && cfg->admin_listen_host) {
        /* The operator's listener: /health, /metrics, /replication/status. */
        http_options ao = ho;
        ao.host = cfg->admin_listen_host;
        ao.port = cfg->admin_listen_port;
        ao.max_connections = ADMIN_MAX_CONNS;
        ao.max_body = 64 * 1024;
        ao.role = HTTP_ADMIN;
        ao.api_listener = http;
        admin = http_start(&ao, &api, m, &e);
        if (!admin) {
            http_stop(http);
            http = NULL;
        }
    }
    memset(admin_token, 0, sizeof(admin_token));
    if (!http) {
        fprintf(stderr, "meridian serve: %s\n", e.msg);
        sigv4_verifier_free(verifier);
        metrics_free(m);
        repl_stop(r);
        db_close(&d);
        cred_free(&creds);
        return 1;
    }
    log_info("serving region %s on %s:%d (data %s, %d peers configured)", cfg->region,
             cfg->listen_host, cfg->listen_port, cfg->data_dir, cfg->n_peers);
    if (admin)
        log_info("admin listener on %s:%d: /health, /metrics, /replication/status%s",
                 cfg->admin_listen_host, cfg->admin_listen_port,
                 cfg->admin_token_path ? " (bearer token required)" : "");
    if (cfg->admin_token_path)
        log_info("/metrics and /replication/status need the bearer token of %s%s",
                 cfg->admin_token_path, admin ? " on either listener" : " (API listener)");
    else if (!admin)
        log_info("/metrics and /replication/status are not served: give --admin-listen "
                 "and/or --admin-token-file");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    log_info("received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (admin) http_quiesce(admin);
    http_quiesce(http);
    unsigned drain_ms = (cfg->idle_timeout + 1) * 1000u;
    if (drain_ms > 30000) drain_ms = 30000;
    if (http_drain(http, drain_ms) < 0)
        log_warn("requests still in progress after %u ms: closing their connections", drain_ms);
    http_stop(admin); /* first: it renders the API listener's figures */
    http_stop(http);
    repl_stop(r);
    sigv4_verifier_free(verifier);
    metrics_free(m);
    db_close(&d);
    cred_free(&creds);
    log_info("stopped cleanly");
    return 0;
}
