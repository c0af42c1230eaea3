// What a TS segment costs the sender when it is muxed whole and then sent, against muxed in
// small pieces each sent as soon as it is made (while it is still in the CPU's cache), over
// loopback TCP. A design probe for issue 18 (clear HLS TS against nginx-vod), not a test.
//
//   cc -O2 -pthread benches/hot_send.c -o /tmp/hot_send && /tmp/hot_send [segments] [rounds]
//
// The sender (pinned to core 0) copies 1 MiB "segments" taken round-robin from a 2 GiB pool (so
// the source is not in cache, as for a fragment-cache hit or a fresh page-cache read) into
// 188-byte packets (a 4-byte header and 184 bytes of payload, as the muxer's full packets) and
// writes them to a connected loopback socket; a reader thread on core 1 reads in 8 KiB calls,
// as wrk does. Modes, alternated within each round:
//   whole        the segment muxed into one fresh buffer, then written in one write loop (what
//                the origin does today: one `Vec` per segment, one `writev`)
//   whole/64K    the same buffer written 64 KiB per write call (write size alone)
//   made/NK      packets muxed into one reused N KiB buffer, written each time it is full
// Printed: the sender thread's user and system CPU per MiB sent (getrusage RUSAGE_THREAD; the
// loopback delivery to the reader runs in the sender's system time, as in the origin).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEG (1u << 20)
#define POOL ((size_t)2 << 30)
#define PAYLOAD 184
#define PACKET 188

static void pin(int core) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(core, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static void *reader(void *arg) {
    pin(1);
    int fd = *(int *)arg;
    char buf[8192];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    return NULL;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            perror("write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

static char *put_packet(char *p, const char *src, unsigned *cc) {
    p[0] = 0x47;
    p[1] = 0x01;
    p[2] = 0x00;
    p[3] = (char)(0x10 | *cc);
    memcpy(p + 4, src, PAYLOAD);
    *cc = (*cc + 1) & 15;
    return p + PACKET;
}

// One segment from `src` to `fd`: mode 0 whole, 1 whole in `chunk` writes, 2 made as sent.
static void segment(int fd, const char *src, int mode, size_t chunk, char *reused) {
    size_t left = SEG;
    unsigned cc = 0;
    if (mode < 2) {
        char *out = malloc((SEG / PAYLOAD + 1) * PACKET), *p = out;
        for (; left >= PAYLOAD; left -= PAYLOAD, src += PAYLOAD) p = put_packet(p, src, &cc);
        size_t n = (size_t)(p - out);
        for (size_t at = 0; at < n; at += (mode ? chunk : n)) send_all(fd, out + at, (mode && n - at > chunk) ? chunk : n - at);
        free(out);
        return;
    }
    char *p = reused;
    for (; left >= PAYLOAD; left -= PAYLOAD, src += PAYLOAD) {
        p = put_packet(p, src, &cc);
        if ((size_t)(p - reused) + PACKET > chunk) {
            send_all(fd, reused, (size_t)(p - reused));
            p = reused;
        }
    }
    if (p > reused) send_all(fd, reused, (size_t)(p - reused));
}

static double usecs(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

int main(int argc, char **argv) {
    int segments = argc > 1 ? atoi(argv[1]) : 2000, rounds = argc > 2 ? atoi(argv[2]) : 3;
    pin(0);
    char *pool = malloc(POOL);
    if (!pool) return 1;
    for (size_t i = 0; i < POOL; i++) pool[i] = (char)(i * 7 >> 3);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (void *)&a, &len)) return 1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (void *)&a, sizeof a)) return 1;
    int s = accept(ls, NULL, NULL), one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    pthread_create(&t, NULL, reader, &c);
    char *reused = malloc(256 * 1024);
    struct { const char *name; int mode; size_t chunk; } modes[] = {
        {"whole", 0, 0}, {"whole/64K", 1, 64 << 10}, {"made/32K", 2, 32 << 10},
        {"made/64K", 2, 64 << 10}, {"made/96K", 2, 96 << 10}, {"made/128K", 2, 128 << 10},
    };
    size_t nseg = POOL / SEG, k = 0;
    printf("%-10s %6s %10s %10s %10s   (sender CPU, us per MiB)\n", "mode", "round", "user", "system", "total");
    for (int r = 0; r <= rounds; r++) {
        for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
            struct rusage r0, r1;
            getrusage(RUSAGE_THREAD, &r0);
            for (int i = 0; i < segments; i++, k += 7919) segment(s, pool + (k % nseg) * SEG, modes[m].mode, modes[m].chunk, reused);
            getrusage(RUSAGE_THREAD, &r1);
            if (r == 0) continue; // warm-up round
            double u = (usecs(r1.ru_utime) - usecs(r0.ru_utime)) / segments, y = (usecs(r1.ru_stime) - usecs(r0.ru_stime)) / segments;
            printf("%-10s %6d %10.1f %10.1f %10.1f\n", modes[m].name, r, u, y, u + y);
        }
    }
    shutdown(s, SHUT_WR);
    pthread_join(t, NULL);
    return 0;
}
