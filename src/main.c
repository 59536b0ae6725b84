/* main.c - the meridian command: dispatches to its subcommands.
 *   serve    run one region (server/server.c)
 *   up       run a local multi-region deployment for trying it out (cli/up.c)
 *   version  print the version
 */
#include <stdio.h>
#include <string.h>

#include "cli/admin.h"
#include "cli/up.h"
#include "server/server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "meridian %s - multi-region active-active DynamoDB-compatible database\n\n"
            "usage: meridian <command> [options]\n\n"
            "commands:\n"
            "  serve     run one region (see meridian serve --help)\n"
            "  up        start a local deployment on 127.0.0.1 to try Meridian\n"
            "  version   print the version\n",
            MERIDIAN_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) {
        server_config cfg;
        if (server_parse_args(argc - 1, argv + 1, &cfg) < 0) {
            server_config_free(&cfg);
            return 2;
        }
        int rc = server_run(&cfg);
        server_config_free(&cfg);
        return rc;
    }
    if (strcmp(cmd, "up") == 0) return up_main(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0) return admin_status_main(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0) return admin_verify_main(argc - 1, argv + 1);
    if (strcmp(cmd, "conflicts") == 0) return admin_conflicts_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("meridian %s\n", MERIDIAN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "meridian: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
