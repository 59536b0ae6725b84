/* opts.c - meridian-bench command line parsing and validation (see opts.h).
 *
 * Owns the option table, the usage text, number parsing with range checks,
 * the endpoint URL split into host / port / Host header, and the credential
 * look-up (options first, then the AWS_* environment variables).
 */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 20000
#define MAX_THREADS     64
#define MAX_ITEM_SIZE   (400 * 1024)
#define MAX_COLLECTION  1000
#define MAX_KEYS        10000000000ULL /* keys are "k" + 10 digits */

void opts_usage(FILE *f)
{
    fputs("usage: meridian-bench [options]\n"
          "Drives a DynamoDB-compatible HTTP endpoint with SigV4-signed requests over\n"
          "keep-alive connections and reports throughput and latency.\n"
          "\n"
          "  --endpoint URL       http://HOST:PORT (default http://127.0.0.1:8000)\n"
          "  --region NAME        signing region (default us-east-1)\n"
          "  --access-key ID      default: $AWS_ACCESS_KEY_ID\n"
          "  --secret-key KEY     default: $AWS_SECRET_ACCESS_KEY\n"
          "  --table NAME         table (default bench)\n"
          "  --workload W         put | get | update | query | mix:P (P% get, the rest put);\n"
          "                       default put\n"
          "  --keys N             key space (default 100000)\n"
          "  --item-size BYTES    payload of each written item (default 1024)\n"
          "  --collection N       sort keys per partition key for query (default 10)\n"
          "  --preload            write the key space first (max speed, not timed)\n"
          "  --create-table       create the table (pk S [, sk N for query], on demand)\n"
          "                       or reuse it, and wait until it is ACTIVE\n"
          "  --rate R             open loop: R requests/s in total, latency from the\n"
          "                       intended send time (default: closed loop, max throughput)\n"
          "  --duration S         recorded seconds (default 10)\n"
          "  --warmup S           seconds before, not recorded (default 2)\n"
          "  --connections C      keep-alive connections in total (default 64)\n"
          "  --threads N          event-loop threads (default 1)\n"
          "  --timeout S          a request unanswered this long is an error (default 10)\n"
          "  --seed N             random seed (default: from the clock, printed)\n"
          "  --json FILE          also write the results as JSON\n"
          "  --help\n"
          "\n"
          "Exit status: 0 if every recorded request succeeded, 1 if any failed (the\n"
          "report is still written), 2 on bad options or a failed setup / preload.\n",
          f);
}

bool opts_has_sort_key(const bench_opts *o)
{
    return o->workload == WL_QUERY;
}

static int bad(FILE *err, const char *opt, const char *val, const char *why)
{
    fprintf(err, "meridian-bench: invalid %s '%s': %s\n", opt, val, why);
    return -1;
}

static int parse_u64(FILE *err, const char *opt, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+') return bad(err, opt, s, "expected a positive integer");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end) return bad(err, opt, s, "expected a positive integer");
    if (v < lo || v > hi) {
        fprintf(err, "meridian-bench: %s must be in [%llu, %llu], not %s\n", opt,
                (unsigned long long)lo, (unsigned long long)hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(FILE *err, const char *opt, const char *s, double lo, double hi,
                        double *out)
{
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!*s || errno || !end || *end || !isfinite(v)) return bad(err, opt, s, "expected a number");
    if (v < lo || v > hi) {
        fprintf(err, "meridian-bench: %s must be in [%g, %g], not %s\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int copy_str(FILE *err, const char *opt, const char *s, char *dst, size_t cap)
{
    size_t n = strlen(s);
    if (n == 0 || n >= cap) return bad(err, opt, s, n ? "too long" : "empty");
    memcpy(dst, s, n + 1);
    return 0;
}

/* DynamoDB table names: 3-255 of [a-zA-Z0-9_.-] (so no JSON escaping is needed). */
static bool valid_table_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 255) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Printable ASCII without spaces: what may go into a header or credential scope. */
static bool token_chars(const char *s)
{
    for (; *s; s++)
        if (*s <= ' ' || *s > '~') return false;
    return true;
}

/* Splits "http://host[:port][/]" (host may be "[v6]"). */
static int parse_endpoint(FILE *err, const char *url, bench_opts *o)
{
    static const char scheme[] = "http://";
    if (strlen(url) >= sizeof(o->endpoint)) return bad(err, "--endpoint", url, "too long");
    if (strncmp(url, "https://", 8) == 0)
        return bad(err, "--endpoint", url, "only plain http:// endpoints are supported");
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return bad(err, "--endpoint", url, "expected http://HOST:PORT");
    strcpy(o->endpoint, url);
    const char *p = url + sizeof(scheme) - 1;
    const char *end = p + strcspn(p, "/?#");
    if (*end && strcmp(end, "/") != 0)
        return bad(err, "--endpoint", url, "no path or query allowed (requests go to /)");
    size_t authority = (size_t)(end - p);
    if (authority == 0 || authority >= sizeof(o->host_header))
        return bad(err, "--endpoint", url, "missing or overlong host");
    memcpy(o->host_header, p, authority);
    o->host_header[authority] = '\0';
    if (!token_chars(o->host_header) || strchr(o->host_header, '@'))
        return bad(err, "--endpoint", url, "bad characters in host");

    const char *host = o->host_header, *host_end, *port = NULL;
    if (*host == '[') {
        const char *close = strchr(host, ']');
        if (!close) return bad(err, "--endpoint", url, "unterminated [IPv6] host");
        host++;
        host_end = close;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return bad(err, "--endpoint", url, "garbage after ]");
    } else {
        const char *colon = strchr(host, ':');
        host_end = colon ? colon : host + strlen(host);
        if (colon) port = colon + 1;
    }
    size_t hn = (size_t)(host_end - host);
    if (hn == 0 || hn >= sizeof(o->host)) return bad(err, "--endpoint", url, "bad host");
    memcpy(o->host, host, hn);
    o->host[hn] = '\0';
    uint64_t pv = 80;
    if (port && parse_u64(err, "--endpoint port", port, 1, 65535, &pv) != 0) return -1;
    snprintf(o->port, sizeof(o->port), "%u", (unsigned)pv);
    return 0;
}

static int parse_workload(FILE *err, const char *s, bench_opts *o)
{
    if (strlen(s) >= sizeof(o->workload_name)) return bad(err, "--workload", s, "unknown");
    strcpy(o->workload_name, s);
    if (strcmp(s, "put") == 0) {
        o->workload = WL_PUT;
    } else if (strcmp(s, "get") == 0) {
        o->workload = WL_GET;
    } else if (strcmp(s, "update") == 0) {
        o->workload = WL_UPDATE;
    } else if (strcmp(s, "query") == 0) {
        o->workload = WL_QUERY;
    } else if (strncmp(s, "mix:", 4) == 0) {
        uint64_t p;
        if (parse_u64(err, "--workload mix:P", s + 4, 0, 100, &p) != 0) return -1;
        o->workload = WL_MIX;
        o->mix_get_pct = (int)p;
    } else {
        return bad(err, "--workload", s, "expected put, get, update, query or mix:P");
    }
    return 0;
}

enum {
    OPT_ENDPOINT = 256,
    OPT_REGION,
    OPT_ACCESS_KEY,
    OPT_SECRET_KEY,
    OPT_TABLE,
    OPT_WORKLOAD,
    OPT_KEYS,
    OPT_ITEM_SIZE,
    OPT_COLLECTION,
    OPT_PRELOAD,
    OPT_CREATE_TABLE,
    OPT_RATE,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_CONNECTIONS,
    OPT_THREADS,
    OPT_TIMEOUT,
    OPT_SEED,
    OPT_JSON,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"region", required_argument, NULL, OPT_REGION},
    {"access-key", required_argument, NULL, OPT_ACCESS_KEY},
    {"secret-key", required_argument, NULL, OPT_SECRET_KEY},
    {"table", required_argument, NULL, OPT_TABLE},
    {"workload", required_argument, NULL, OPT_WORKLOAD},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"item-size", required_argument, NULL, OPT_ITEM_SIZE},
    {"collection", required_argument, NULL, OPT_COLLECTION},
    {"preload", no_argument, NULL, OPT_PRELOAD},
    {"create-table", no_argument, NULL, OPT_CREATE_TABLE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"json", required_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

int opts_parse(int argc, char **argv, bench_opts *o, FILE *err)
{
    memset(o, 0, sizeof(*o));
    strcpy(o->region, "us-east-1");
    strcpy(o->table, "bench");
    strcpy(o->workload_name, "put");
    o->workload = WL_PUT;
    o->keys = 100000;
    o->item_size = 1024;
    o->collection = 10;
    o->duration_s = 10;
    o->warmup_s = 2;
    o->timeout_s = 10;
    o->connections = 64;
    o->threads = 1;
    bool seed_given = false, endpoint_given = false;
    const char *ak = NULL, *sk = NULL;

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        uint64_t u = 0;
        int rc = 0;
        switch (c) {
        case OPT_ENDPOINT:
            rc = parse_endpoint(err, optarg, o);
            endpoint_given = true;
            break;
        case OPT_REGION:
            rc = copy_str(err, "--region", optarg, o->region, sizeof(o->region));
            if (rc == 0 && (!token_chars(o->region) || strchr(o->region, '/')))
                rc = bad(err, "--region", optarg, "bad characters");
            break;
        case OPT_ACCESS_KEY:
            ak = optarg;
            break;
        case OPT_SECRET_KEY:
            sk = optarg;
            break;
        case OPT_TABLE:
            if (!valid_table_name(optarg))
                rc = bad(err, "--table", optarg, "3-255 characters of a-z A-Z 0-9 _ . -");
            else
                strcpy(o->table, optarg);
            break;
        case OPT_WORKLOAD:
            rc = parse_workload(err, optarg, o);
            break;
        case OPT_KEYS:
            rc = parse_u64(err, "--keys", optarg, 1, MAX_KEYS, &o->keys);
            break;
        case OPT_ITEM_SIZE:
            rc = parse_u64(err, "--item-size", optarg, 1, MAX_ITEM_SIZE, &u);
            o->item_size = (unsigned)u;
            break;
        case OPT_COLLECTION:
            rc = parse_u64(err, "--collection", optarg, 1, MAX_COLLECTION, &u);
            o->collection = (unsigned)u;
            break;
        case OPT_PRELOAD:
            o->preload = true;
            break;
        case OPT_CREATE_TABLE:
            o->create_table = true;
            break;
        case OPT_RATE:
            rc = parse_double(err, "--rate", optarg, 0.001, 1e8, &o->rate);
            break;
        case OPT_DURATION:
            rc = parse_double(err, "--duration", optarg, 0.1, 86400, &o->duration_s);
            break;
        case OPT_WARMUP:
            rc = parse_double(err, "--warmup", optarg, 0, 86400, &o->warmup_s);
            break;
        case OPT_TIMEOUT:
            rc = parse_double(err, "--timeout", optarg, 0.01, 3600, &o->timeout_s);
            break;
        case OPT_CONNECTIONS:
            rc = parse_u64(err, "--connections", optarg, 1, MAX_CONNECTIONS, &u);
            o->connections = (unsigned)u;
            break;
        case OPT_THREADS:
            rc = parse_u64(err, "--threads", optarg, 1, MAX_THREADS, &u);
            o->threads = (unsigned)u;
            break;
        case OPT_SEED:
            rc = parse_u64(err, "--seed", optarg, 0, UINT64_MAX, &o->seed);
            seed_given = true;
            break;
        case OPT_JSON:
            o->json_path = optarg;
            break;
        case OPT_HELP:
            opts_usage(stdout);
            return 1;
        case ':':
            fprintf(err, "meridian-bench: %s needs a value (see --help)\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(err, "meridian-bench: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return -1;
        }
        if (rc != 0) return -1;
    }
    if (optind < argc) {
        fprintf(err, "meridian-bench: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (!endpoint_given && parse_endpoint(err, "http://127.0.0.1:8000", o) != 0) return -1;

    if (!ak) ak = getenv("AWS_ACCESS_KEY_ID");
    if (!sk) sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!ak || !*ak || !sk || !*sk) {
        fprintf(err, "meridian-bench: no credentials: give --access-key and --secret-key or set "
                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n");
        return -1;
    }
    if (copy_str(err, "--access-key", ak, o->access_key, sizeof(o->access_key)) != 0) return -1;
    if (!token_chars(o->access_key) || strchr(o->access_key, '/') || strchr(o->access_key, ','))
        return bad(err, "--access-key", ak, "bad characters");
    if (strlen(sk) >= sizeof(o->secret_key)) {
        fprintf(err, "meridian-bench: the secret key is too long\n");
        return -1;
    }
    strcpy(o->secret_key, sk);

    if (o->threads > o->connections) {
        fprintf(err, "meridian-bench: --threads (%u) cannot exceed --connections (%u)\n",
                o->threads, o->connections);
        return -1;
    }
    if (!seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o->seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
                  ((uint64_t)getpid() << 32);
    }
    return 0;
}
