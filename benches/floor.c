/* floor.c: the cheapest HTTP/1.1 responder, as a yardstick for the origin in benches/load.sh.
 *
 * One thread, epoll, keep-alive. Every request, whatever its path, gets a prepared response
 * with a body of BODY_BYTES bytes already in memory: no parsing beyond finding the end of each
 * request head, no files, no allocation per request, one writev per response. What it costs
 * per request and per byte is, near enough, what the kernel's TCP loopback path costs on this
 * machine; no server written over ordinary sockets can do better here.
 *
 * Bodies are taken in turn from a pool of at least 64 MiB when they are large, so that, as for
 * an origin reading many different segments, the bytes sent are not already in the CPU caches.
 *
 *   cc -O2 -o floor benches/floor.c && ./floor BODY_BYTES
 *
 * Prints "floor listening on http://127.0.0.1:PORT" and serves until killed. Loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 4096

/* Per connection: responses owed, bytes of the current one already written and the body it
 * uses, how much of "\r\n\r\n" the input has matched so far (request heads may straddle
 * reads), and whether we are waiting for the socket to become writable. */
struct conn {
  unsigned long owed;
  size_t off;
  size_t body_no;
  int matched;
  int want_out;
};

static struct conn conns[MAX_FD];
static char head[512];
static size_t head_len;
static char *bodies;
static size_t body_len, body_count, next_body;

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  memset(&conns[fd], 0, sizeof conns[fd]);
}

static void watch(int ep, int fd, int want_out) {
  struct epoll_event e = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.fd = fd};
  conns[fd].want_out = want_out;
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

/* Writes what is owed; returns -1 if the connection was dropped. */
static int flush_owed(int ep, int fd) {
  struct conn *c = &conns[fd];
  size_t total = head_len + body_len;
  while (c->owed > 0) {
    if (c->off == 0) c->body_no = next_body++ % body_count;
    char *body = bodies + c->body_no * body_len;
    struct iovec iov[2];
    int k = 0;
    if (c->off < head_len) iov[k++] = (struct iovec){head + c->off, head_len - c->off};
    size_t boff = c->off > head_len ? c->off - head_len : 0;
    if (boff < body_len) iov[k++] = (struct iovec){body + boff, body_len - boff};
    ssize_t w = writev(fd, iov, k);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!c->want_out) watch(ep, fd, 1);
        return 0;
      }
      drop(ep, fd);
      return -1;
    }
    c->off += (size_t)w;
    if (c->off == total) {
      c->off = 0;
      c->owed--;
    }
  }
  if (c->want_out) watch(ep, fd, 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: floor BODY_BYTES\n");
    return 2;
  }
  long body = atol(argv[1]);
  if (body < 0 || body > (64L << 20)) {
    fprintf(stderr, "floor: BODY_BYTES must be 0..64 MiB\n");
    return 2;
  }
  body_len = (size_t)body;
  body_count = body_len > 0 && body_len < (1u << 20) ? 64 : body_len > 0 ? ((64u << 20) + body_len - 1) / body_len : 1;
  bodies = malloc(body_len * body_count + 1);
  if (!bodies) return 1;
  for (size_t i = 0; i < body_len * body_count; i++) bodies[i] = (char)('a' + i % 26);
  /* Headers of about the size the origin sends, so the comparison is like for like. */
  int n = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: %ld\r\n"
                      "cache-control: public, max-age=31536000, immutable\r\naccept-ranges: bytes\r\n"
                      "etag: \"00000000000000000000000000000000\"\r\n"
                      "last-modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
                      "access-control-allow-origin: *\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n",
                      body);
  if (n < 0 || (size_t)n >= sizeof head) return 1;
  head_len = (size_t)n;

  int one = 1;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 256) < 0 ||
      getsockname(ls, (struct sockaddr *)&a, &al) < 0) {
    perror("floor: listen");
    return 1;
  }
  printf("floor listening on http://127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[64];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= MAX_FD) {
            close(c);
            continue;
          }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        }
        continue;
      }
      if (evs[i].events & EPOLLIN) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          drop(ep, fd);
          continue;
        }
        struct conn *c = &conns[fd];
        for (ssize_t k = 0; k < r; k++) {
          if (buf[k] == "\r\n\r\n"[c->matched]) {
            if (++c->matched == 4) {
              c->owed++;
              c->matched = 0;
            }
          } else {
            c->matched = buf[k] == '\r' ? 1 : 0;
          }
        }
      }
      flush_owed(ep, fd);
    }
  }
}
