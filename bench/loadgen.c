// Closed-loop HTTP/1.1 keep-alive load generator that binds each connection to its own
// loopback source address (127.x.y.z), so a server sees thousands of distinct clients.
// Prints requests/s, status counts and latency percentiles.
//
//   loadgen -p PORT -c CONNECTIONS -d SECONDS -P PATH [-n NAMES]
// PATH may contain %n, replaced per request by "p<k>" with k cycling over NAMES names, so that
// consecutive claims from one address change its owner (every claim is a real write).
// -x adds "X-Forwarded-For: <random public IPv4>" to every request (run the server with
// --trusted-proxy 127.0.0.0/8): each claim then comes from a different address, as in a real
// game, instead of re-claiming the same few hundred addresses.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    unsigned counter;
    double started;
    char in[65536];
    size_t inlen;
    char out[512];
    size_t outlen, outsent;
} conn_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *path_tpl;
static int names = 2;
static int port;
static int forwarded = 0;
static unsigned long long xstate = 0x9E3779B97F4A7C15ull;

static unsigned random_address(void) {
    xstate ^= xstate << 13; xstate ^= xstate >> 7; xstate ^= xstate << 17;
    return (unsigned)(xstate >> 16);
}

static void build_request(conn_t *c, int index) {
    char path[256];
    const char *m = strstr(path_tpl, "%n");
    if (m) {
        snprintf(path, sizeof path, "%.*sp%u%s", (int)(m - path_tpl), path_tpl, (c->counter + index) % names, m + 2);
    } else {
        snprintf(path, sizeof path, "%s", path_tpl);
    }
    if (forwarded) {
        unsigned ip = random_address();
        c->outlen = snprintf(c->out, sizeof c->out, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\nX-Forwarded-For: %u.%u.%u.%u\r\n\r\n",
                             path, ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    } else {
        c->outlen = snprintf(c->out, sizeof c->out, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n", path);
    }
    c->outsent = 0;
    c->counter++;
}

static int open_conn(conn_t *c, int index) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = {0};
    src.sin_family = AF_INET;
    // 127.<1+i%250>.<(i/250)%256>.<1+(i/64000)%254>: consecutive connections in different /24s.
    unsigned a = 1 + index % 250, b = (index / 250) % 256, d = 1 + (index / 64000) % 254;
    src.sin_addr.s_addr = htonl((127u << 24) | (a << 16) | (b << 8) | d);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) { close(fd); return -1; }
    struct sockaddr_in dst = {0};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) { close(fd); return -1; }
    c->fd = fd;
    c->inlen = 0;
    return 0;
}

int main(int argc, char **argv) {
    int conns = 1000, seconds = 10, opt;
    path_tpl = "/ip";
    while ((opt = getopt(argc, argv, "p:c:d:P:n:x")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'd': seconds = atoi(optarg); break;
        case 'P': path_tpl = optarg; break;
        case 'n': names = atoi(optarg); break;
        case 'x': forwarded = 1; break;
        default: fprintf(stderr, "usage: loadgen -p PORT -c CONNS -d SECONDS -P PATH [-n NAMES]\n"); return 2;
        }
    }
    if (!port) { fprintf(stderr, "loadgen: -p PORT is required\n"); return 2; }
    int ep = epoll_create1(0);
    conn_t *cs = calloc(conns, sizeof(conn_t));
    size_t cap = 1 << 24, nlat = 0;
    double *lat = malloc(cap * sizeof(double));
    size_t nok = 0;
    double *ok_lat = malloc(cap * sizeof(double)); // latencies of 2xx answers only (admitted requests)
    long statuses[6] = {0};
    long errors = 0, reconnects = 0;
    for (int i = 0; i < conns; i++) {
        if (open_conn(&cs[i], i) != 0) { fprintf(stderr, "loadgen: cannot open connection %d: %s\n", i, strerror(errno)); return 1; }
        build_request(&cs[i], i);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        cs[i].started = now_s();
    }
    double start = now_s(), end = start + seconds;
    struct epoll_event events[1024];
    while (now_s() < end) {
        int n = epoll_wait(ep, events, 1024, 100);
        for (int k = 0; k < n; k++) {
            int i = events[k].data.u32;
            conn_t *c = &cs[i];
            if (events[k].events & (EPOLLERR | EPOLLHUP)) goto reconnect;
            if ((events[k].events & EPOLLOUT) && c->outsent < c->outlen) {
                ssize_t w = send(c->fd, c->out + c->outsent, c->outlen - c->outsent, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) goto reconnect;
                if (w > 0) c->outsent += w;
                if (c->outsent == c->outlen) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (events[k].events & EPOLLIN) {
                ssize_t r = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen - 1, 0);
                if (r <= 0) { if (r < 0 && errno == EAGAIN) continue; goto reconnect; }
                c->inlen += r;
                c->in[c->inlen] = 0;
                char *hend = strstr(c->in, "\r\n\r\n");
                if (!hend) continue;
                char *cl = strcasestr(c->in, "content-length:");
                size_t body = cl && cl < hend ? strtoul(cl + 15, NULL, 10) : 0;
                size_t total = (hend - c->in) + 4 + body;
                if (c->inlen < total) continue;
                int status = atoi(c->in + 9);
                if (status >= 100 && status < 600) statuses[status / 100]++;
                double t = now_s();
                if (nlat < cap) lat[nlat++] = t - c->started;
                if (status >= 200 && status < 300 && nok < cap) ok_lat[nok++] = t - c->started;
                int closing = strcasestr(c->in, "connection: close") && strcasestr(c->in, "connection: close") < hend;
                memmove(c->in, c->in + total, c->inlen - total);
                c->inlen -= total;
                if (closing) goto reconnect;
                build_request(c, i);
                c->started = t;
                struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            continue;
        reconnect:
            errors += (events[k].events & (EPOLLERR | EPOLLHUP)) ? 1 : 0;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            reconnects++;
            if (open_conn(c, i) == 0) {
                build_request(c, i);
                c->started = now_s();
                struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
        }
    }
    double elapsed = now_s() - start;
    qsort(lat, nlat, sizeof(double), cmpd);
    double p50 = nlat ? lat[nlat / 2] * 1e3 : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] * 1e3 : 0;
    qsort(ok_lat, nok, sizeof(double), cmpd);
    double ok50 = nok ? ok_lat[nok / 2] * 1e3 : 0, ok99 = nok ? ok_lat[(size_t)(nok * 0.99)] * 1e3 : 0;
    printf("requests=%zu seconds=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f 2xx=%ld 3xx=%ld 4xx=%ld 5xx=%ld reconnects=%ld errors=%ld ok_p50_ms=%.2f ok_p99_ms=%.2f\n",
           nlat, elapsed, nlat / elapsed, p50, p99, statuses[2], statuses[3], statuses[4], statuses[5], reconnects, errors, ok50, ok99);
    return 0;
}
