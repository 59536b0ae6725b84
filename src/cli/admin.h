/* admin.h - operator commands that talk to running regions over their API
 * endpoints: `meridian status`, `meridian verify`, `meridian conflicts`.
 * They sign requests with SigV4 using AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
 * from the environment, like the aws cli; status also reads the operator's
 * /replication/status (--admin-endpoint, --admin-token-file). */
#ifndef MERIDIAN_ADMIN_H
#define MERIDIAN_ADMIN_H

/* argv[0] is the command name. Each returns the process exit code: 0 fine,
 * 1 a difference or failure found (verify), 2 bad usage. */
int admin_status_main(int argc, char **argv);
int admin_verify_main(int argc, char **argv);
int admin_conflicts_main(int argc, char **argv);

#endif
