/* conn.c - keep-alive HTTP/1.1 client connection (see conn.h).
 *
 * Owns the socket calls (connect, send with MSG_NOSIGNAL, recv), the epoll
 * registration of each socket (EPOLLIN always once connected, EPOLLOUT only
 * while connecting or while a request waits for room) and the http_parser
 * callbacks that fill status, keep-alive and the captured start of the body.
 * Bytes that arrive while no request is outstanding, or after its response,
 * are a protocol error (no pipelining is ever used).
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define INITIAL_BODY_ALLOC 256

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    if (c->state != CONN_BUSY || c->msg_done) {
        c->why = "unexpected_response";
        return -1;
    }
    c->status = 0;
    c->body_len = 0;
    if (c->body) c->body[0] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    c->status = (int)p->status_code;
    if ((c->status < 200 || c->status > 299) && c->capture_max < CONN_ERROR_BODY_CAPTURE)
        c->capture_max = CONN_ERROR_BODY_CAPTURE;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    size_t room = c->capture_max > c->body_len ? c->capture_max - c->body_len : 0;
    if (len > room) {
        c->body_overflow = true;
        len = room;
    }
    if (len == 0) return 0;
    if (c->body_len + len + 1 > c->body_alloc) {
        size_t want = c->body_alloc ? c->body_alloc : INITIAL_BODY_ALLOC;
        while (want < c->body_len + len + 1)
            want *= 2;
        char *nb = realloc(c->body, want);
        if (!nb) {
            c->body_overflow = true;
            return 0;
        }
        c->body = nb;
        c->body_alloc = want;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    if (p->status_code / 100 == 1) { /* interim (100 Continue): the real one follows */
        c->status = 0;
        return 0;
    }
    c->msg_done = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int conn_init(conn *c, size_t out_cap)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = CONN_CLOSED;
    c->out = malloc(out_cap);
    c->body = malloc(INITIAL_BODY_ALLOC);
    if (!c->out || !c->body) {
        conn_free(c);
        return -1;
    }
    c->out_cap = out_cap;
    c->body_alloc = INITIAL_BODY_ALLOC;
    c->body[0] = '\0';
    return 0;
}

void conn_free(conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->out);
    free(c->body);
    c->out = NULL;
    c->body = NULL;
    c->body_alloc = 0;
}

static int epoll_set(int epfd, conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(epfd, op, c->fd, &ev);
}

int conn_connect(conn *c, int epfd, const struct sockaddr *sa, socklen_t sa_len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    c->want_out = false;
    c->send_left = 0;
    c->msg_done = false;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    int rc = connect(fd, sa, sa_len);
    if (rc == 0) {
        c->state = CONN_IDLE;
        rc = epoll_set(epfd, c, EPOLL_CTL_ADD, EPOLLIN);
    } else if (errno == EINPROGRESS) {
        c->state = CONN_CONNECTING;
        rc = epoll_set(epfd, c, EPOLL_CTL_ADD, EPOLLOUT);
    }
    if (rc != 0) {
        int e = errno;
        close(fd);
        c->fd = -1;
        c->state = CONN_CLOSED;
        errno = e;
        return -1;
    }
    return 0;
}

int conn_connected(conn *c, int epfd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    if (epoll_set(epfd, c, EPOLL_CTL_MOD, EPOLLIN) != 0) return -1;
    c->state = CONN_IDLE;
    return 0;
}

void conn_close(conn *c, int epfd)
{
    (void)epfd; /* close() removes the socket from the epoll set */
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->state = CONN_CLOSED;
    c->want_out = false;
    c->send_left = 0;
}

static const char *errno_reason(int e)
{
    switch (e) {
    case ECONNRESET:
    case EPIPE:
        return "connection_reset";
    case ETIMEDOUT:
        return "connection_timed_out";
    default:
        return "socket_error";
    }
}

conn_io conn_flush(conn *c, int epfd)
{
    while (c->send_left) {
        ssize_t n = send(c->fd, c->send_p, c->send_left, MSG_NOSIGNAL);
        if (n > 0) {
            c->send_p += n;
            c->send_left -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                if (epoll_set(epfd, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT) != 0) {
                    c->why = "socket_error";
                    return CONN_IO_ERROR;
                }
                c->want_out = true;
            }
            return CONN_IO_AGAIN;
        }
        c->why = errno_reason(n < 0 ? errno : EPIPE);
        return CONN_IO_ERROR;
    }
    if (c->want_out) {
        if (epoll_set(epfd, c, EPOLL_CTL_MOD, EPOLLIN) != 0) {
            c->why = "socket_error";
            return CONN_IO_ERROR;
        }
        c->want_out = false;
    }
    return CONN_IO_AGAIN;
}

conn_io conn_send(conn *c, int epfd, const char *p, size_t n)
{
    c->send_p = p;
    c->send_left = n;
    c->status = 0;
    c->msg_done = false;
    c->keep_alive = false;
    c->body_len = 0;
    c->body_overflow = false;
    if (c->body) c->body[0] = '\0';
    c->state = CONN_BUSY;
    return conn_flush(c, epfd);
}

conn_io conn_read(conn *c, char *scratch, size_t scratch_len)
{
    ssize_t n;
    do {
        n = recv(c->fd, scratch, scratch_len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return CONN_IO_AGAIN;
        c->why = errno_reason(errno);
        return CONN_IO_ERROR;
    }
    if (n == 0) {
        /* End of stream: completes a response delimited by the close. */
        if (c->state == CONN_BUSY && !c->msg_done) {
            http_parser_execute(&c->parser, &settings, NULL, 0);
            if (c->msg_done && HTTP_PARSER_ERRNO(&c->parser) == HPE_OK) {
                c->keep_alive = false;
                return CONN_IO_DONE;
            }
        }
        c->why = "connection_closed";
        return CONN_IO_ERROR;
    }
    c->why = NULL;
    size_t used = http_parser_execute(&c->parser, &settings, scratch, (size_t)n);
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || used != (size_t)n) {
        if (!c->why) c->why = "http_parse_error";
        return CONN_IO_ERROR;
    }
    return c->msg_done ? CONN_IO_DONE : CONN_IO_AGAIN;
}
