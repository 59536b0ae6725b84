/* conn.h - one keep-alive HTTP/1.1 client connection of meridian-bench.
 *
 * Owns the socket (non-blocking, TCP_NODELAY, registered with the worker's
 * epoll set), the output of the request in flight (partial writes resume on
 * EPOLLOUT) and the response parser (Debian's libhttp-parser: status line,
 * headers, Content-Length or chunked bodies, keep-alive). The worker decides
 * what to send and what a response means; a connection only moves bytes.
 *
 * States: CLOSED -> CONNECTING -> IDLE <-> BUSY, and back to CLOSED on any
 * error or when the server ends the connection.
 */
#ifndef MERIDIAN_BENCH_CONN_H
#define MERIDIAN_BENCH_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <http_parser.h>

typedef enum conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_BUSY } conn_state;

/* Result of reading or writing. */
typedef enum conn_io {
    CONN_IO_AGAIN, /* nothing to do until the next epoll event */
    CONN_IO_DONE,  /* a whole response arrived (conn_read only) */
    CONN_IO_ERROR, /* the connection is unusable: close it (reason in conn->why) */
} conn_io;

#define CONN_ERROR_BODY_CAPTURE 4096 /* bytes of an error body kept for its __type */

typedef struct conn {
    int fd;
    conn_state state;
    const char *why; /* static text of the last CONN_IO_ERROR, e.g. "connection_closed" */

    /* The request being written: bytes at send_p, send_left of them. */
    char *out; /* owned buffer, out_cap bytes, filled by the worker */
    size_t out_cap;
    const char *send_p;
    size_t send_left;
    bool want_out; /* EPOLLOUT registered */

    /* The response. */
    http_parser parser;
    int status;      /* HTTP status, 0 until the headers are in */
    bool msg_done;   /* the response is complete */
    bool keep_alive; /* the server keeps the connection open after it */
    char *body;      /* first body bytes (up to capture_max), NUL-terminated */
    size_t body_len;
    size_t body_alloc;
    size_t capture_max; /* set per request; raised to CONN_ERROR_BODY_CAPTURE on errors */
    bool body_overflow; /* a setup call's body did not fit (capture_max bytes) */

    /* Bookkeeping of the worker that owns the connection. */
    int op;            /* the request's operation */
    uint64_t start_ns; /* latency counts from here (intended or actual send time) */
    uint64_t sent_ns;  /* when it was handed to the socket (for --timeout) */
    bool counted;      /* recorded in the measured window */
    bool in_idle;      /* on the worker's idle stack */
    uint64_t retry_at_ns;
    uint64_t backoff_ns;
} conn;

/* Allocates the buffers. Returns 0 or -1. */
int conn_init(conn *c, size_t out_cap);
void conn_free(conn *c); /* closes if open */

/* Starts a non-blocking connect and registers with epfd (data.ptr = c).
 * Returns 0 (state CONNECTING, or IDLE if it connected at once) or -1
 * (state CLOSED, errno set). */
int conn_connect(conn *c, int epfd, const struct sockaddr *sa, socklen_t sa_len);
/* On EPOLLOUT while CONNECTING: 0 if connected (state IDLE), -1 if not. */
int conn_connected(conn *c, int epfd);
void conn_close(conn *c, int epfd);

/* Starts sending n bytes at p (inside c->out) and resets the response state.
 * State becomes BUSY. CONN_IO_AGAIN if all is sent or the rest waits for
 * EPOLLOUT, CONN_IO_ERROR if the socket failed. */
conn_io conn_send(conn *c, int epfd, const char *p, size_t n);
/* On EPOLLOUT while sending. */
conn_io conn_flush(conn *c, int epfd);
/* On EPOLLIN: reads once into scratch and parses. */
conn_io conn_read(conn *c, char *scratch, size_t scratch_len);

#endif
