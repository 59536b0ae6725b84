/* up.c - `meridian up [--regions a,b,c] [--dir DIR] [--base-port P]`.
 *
 * Starts one `meridian serve` child process per region on 127.0.0.1, wired
 * to each other as peers, with a generated credentials file, cluster key and
 * operator token (admin.token) kept in DIR (so data and keys survive
 * restarts), prints each endpoint and the environment to export, and stops
 * every region on Ctrl-C (SIGINT) or SIGTERM. Region i listens for the API on
 * P+i, for peers on P+100+i and for the operator (/metrics,
 * /replication/status, behind the token) on P+200+i.
 */
#include "cli/up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UP_MAX_REGIONS 16

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int random_token(char *out, size_t len, const char *alphabet)
{
    unsigned char raw[128];
    if (len > sizeof(raw)) return -1;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, raw, len);
    close(fd);
    if (n != (ssize_t)len) return -1;
    size_t na = strlen(alphabet);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[raw[i] % na];
    out[len] = '\0';
    return 0;
}

/* Creates path with content (mode 0600) unless it exists: written to a
 * temporary file, synced, then linked into place, so a crash never leaves a
 * half-written key file behind. */
static int ensure_file(const char *path, const char *content)
{
    if (access(path, F_OK) == 0) return 0;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t len = strlen(content);
    ssize_t w = write(fd, content, len);
    int rc = (w == (ssize_t)len && fsync(fd) == 0) ? 0 : -1;
    close(fd);
    /* link() fails with EEXIST if another `up` won the race: keep theirs. */
    if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST) rc = -1;
    unlink(tmp);
    return rc;
}

static int read_first_key(const char *path, char *akid, size_t an, char *secret, size_t sn)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int rc = -1;
    while (fgets(line, sizeof(line), f)) {
        char a[256], s[256];
        if (line[0] == '#') continue;
        if (sscanf(line, "%255s %255s", a, s) == 2) {
            snprintf(akid, an, "%s", a);
            snprintf(secret, sn, "%s", s);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* The first line of path, trailing white space removed. */
static int read_line(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int rc = -1;
    if (fgets(out, (int)n, f)) {
        size_t len = strlen(out);
        while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
            out[--len] = '\0';
        rc = len ? 0 : -1;
    }
    fclose(f);
    return rc;
}

static int health_ok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
            char resp[64];
            ssize_t n = read(fd, resp, sizeof(resp) - 1);
            if (n > 12) {
                resp[n] = '\0';
                ok = strncmp(resp + 9, "200", 3) == 0;
            }
        }
    }
    close(fd);
    return ok;
}

static void usage(void)
{
    fprintf(stderr, "usage: meridian up [--regions a,b,c] [--dir DIR] [--base-port P]\n");
}

int up_main(int argc, char **argv)
{
    const char *regions_arg = "us-east-1,eu-west-1,ap-south-1";
    const char *dir = ".meridian";
    int base_port = 8000;
    static const struct option longopts[] = {
        {"regions", required_argument, 0, 'r'},
        {"dir", required_argument, 0, 'd'},
        {"base-port", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            regions_arg = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'p': {
            char *end;
            long p = strtol(optarg, &end, 10);
            if (*end || p < 1 || p > 65000) {
                fprintf(stderr, "meridian up: --base-port must be in [1, 65000]\n");
                return 2;
            }
            base_port = (int)p;
            break;
        }
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }

    char *regions[UP_MAX_REGIONS];
    int nr = 0;
    char *list = strdup(regions_arg);
    if (!list) return 1;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (nr == UP_MAX_REGIONS) {
            fprintf(stderr, "meridian up: at most %d regions\n", UP_MAX_REGIONS);
            free(list);
            return 2;
        }
        regions[nr++] = tok;
    }
    if (nr == 0) {
        fprintf(stderr, "meridian up: --regions is empty\n");
        free(list);
        return 2;
    }

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "meridian up: cannot create %s: %s\n", dir, strerror(errno));
        free(list);
        return 1;
    }
    char cred_path[4096], key_path[4096], token_path[4096];
    snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
    snprintf(key_path, sizeof(key_path), "%s/cluster.key", dir);
    snprintf(token_path, sizeof(token_path), "%s/admin.token", dir);
    char akid[256], secret[256], ckey[65], token[65], token_line[80];
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const char mixed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char akid_tail[17];
    if (random_token(akid_tail, 16, upper) < 0 || random_token(secret, 40, mixed) < 0 ||
        random_token(ckey, 64, mixed) < 0 || random_token(token, 48, mixed) < 0) {
        fprintf(stderr, "meridian up: cannot read /dev/urandom\n");
        free(list);
        return 1;
    }
    snprintf(akid, sizeof(akid), "AKIA%s", akid_tail);
    char cred_line[700], key_line[80];
    snprintf(cred_line, sizeof(cred_line),
             "# Generated by meridian up: ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT\n%s %s local\n",
             akid, secret);
    snprintf(key_line, sizeof(key_line), "%s\n", ckey);
    snprintf(token_line, sizeof(token_line), "%s\n", token);
    if (ensure_file(cred_path, cred_line) < 0 || ensure_file(key_path, key_line) < 0 ||
        ensure_file(token_path, token_line) < 0 ||
        read_first_key(cred_path, akid, sizeof(akid), secret, sizeof(secret)) < 0 ||
        read_line(token_path, token, sizeof(token)) < 0) {
        fprintf(stderr, "meridian up: cannot set up credentials in %s\n", dir);
        free(list);
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "meridian up: cannot locate the meridian binary\n");
        free(list);
        return 1;
    }
    self[sl] = '\0';

    pid_t pids[UP_MAX_REGIONS] = {0};
    int rc = 0;
    for (int i = 0; i < nr; i++) {
        char data[4096], listen_a[64], peer_a[64], admin_a[64];
        snprintf(data, sizeof(data), "%s/%s", dir, regions[i]);
        snprintf(listen_a, sizeof(listen_a), "127.0.0.1:%d", base_port + i);
        snprintf(peer_a, sizeof(peer_a), "127.0.0.1:%d", base_port + 100 + i);
        snprintf(admin_a, sizeof(admin_a), "127.0.0.1:%d", base_port + 200 + i);
        char *args[20 + 2 * UP_MAX_REGIONS];
        char peer_args[UP_MAX_REGIONS][128];
        int na = 0;
        args[na++] = self;
        args[na++] = "serve";
        args[na++] = "--region";
        args[na++] = regions[i];
        args[na++] = "--data";
        args[na++] = data;
        args[na++] = "--listen";
        args[na++] = listen_a;
        args[na++] = "--peer-listen";
        args[na++] = peer_a;
        args[na++] = "--credentials";
        args[na++] = cred_path;
        args[na++] = "--cluster-key";
        args[na++] = key_path;
        args[na++] = "--admin-listen";
        args[na++] = admin_a;
        args[na++] = "--admin-token-file";
        args[na++] = token_path;
        for (int j = 0; j < nr; j++) {
            if (j == i) continue;
            snprintf(peer_args[j], sizeof(peer_args[j]), "%s=127.0.0.1:%d", regions[j],
                     base_port + 100 + j);
            args[na++] = "--peer";
            args[na++] = peer_args[j];
        }
        args[na] = NULL;
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "meridian up: fork failed: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_IGN); /* Ctrl-C reaches the whole group; up forwards SIGTERM */
            execv(self, args);
            _exit(127);
        }
        pids[i] = pid;
    }

    /* Wait until every region answers /health (bounded: 30 s). */
    for (int i = 0; rc == 0 && i < nr; i++) {
        int ok = 0;
        for (int tries = 0; tries < 300 && !g_stop; tries++) {
            if (health_ok(base_port + i)) {
                ok = 1;
                break;
            }
            int status;
            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                pids[i] = 0;
                break;
            }
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (!ok) {
            fprintf(stderr, "meridian up: region %s did not start (see its log above)\n",
                    regions[i]);
            rc = 1;
        }
    }

    if (rc == 0 && !g_stop) {
        printf("\nMeridian is running: %d region%s on 127.0.0.1 (data in %s). Ctrl-C stops it.\n\n",
               nr, nr > 1 ? "s" : "", dir);
        printf("  %-16s %-24s %s\n", "REGION", "API ENDPOINT",
               "ADMIN (/metrics, /replication/status)");
        for (int i = 0; i < nr; i++) {
            char api_url[64];
            snprintf(api_url, sizeof(api_url), "http://127.0.0.1:%d", base_port + i);
            printf("  %-16s %-24s http://127.0.0.1:%d\n", regions[i], api_url, base_port + 200 + i);
        }
        printf("\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n"
               "export AWS_DEFAULT_REGION=%s\n\n"
               "aws dynamodb list-tables --endpoint-url http://127.0.0.1:%d\n\n"
               "Operator token (bearer, for /metrics and /replication/status): %s\n"
               "curl -H \"Authorization: Bearer $(cat %s)\" http://127.0.0.1:%d/metrics\n"
               "meridian status --endpoint http://127.0.0.1:%d --admin-endpoint "
               "http://127.0.0.1:%d --admin-token-file %s\n\n",
               akid, secret, regions[0], base_port, token_path, token_path, base_port + 200,
               base_port, base_port + 200, token_path);
        fflush(stdout);
        while (!g_stop) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0) {
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL); /* a signal ends the sleep early */
                continue;
            }
            if (p > 0) {
                for (int i = 0; i < nr; i++)
                    if (pids[i] == p) {
                        fprintf(stderr, "meridian up: region %s exited unexpectedly\n", regions[i]);
                        pids[i] = 0;
                        rc = 1;
                        g_stop = 1;
                    }
            }
        }
    }

    for (int i = 0; i < nr; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    /* Regions drain in-flight requests and exit; after 60 s they are killed. */
    for (int waited = 0, left = 1; left; waited++) {
        left = 0;
        for (int i = 0; i < nr; i++) {
            if (pids[i] <= 0) continue;
            int status;
            pid_t p = waitpid(pids[i], &status, WNOHANG);
            if (p == pids[i]) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
                pids[i] = 0;
            } else if (waited >= 600) {
                fprintf(stderr, "meridian up: region %s did not stop; killing it\n", regions[i]);
                kill(pids[i], SIGKILL);
                rc = 1;
                left = 1;
            } else {
                left = 1;
            }
        }
        if (left) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    free(list);
    printf("meridian up: stopped\n");
    return rc;
}
