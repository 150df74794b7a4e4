// tunnelbench: one load client for every system in bench/tunnel (our tunnel, its peers, a direct connection).
//
//   tunnelbench get   HOST PORT TARGET_PORT PATH COUNT          keep-alive GETs over one connection
//   tunnelbench setup HOST PORT TARGET_PORT PATH THREADS SECS   new connection per iteration, closed after one GET
//
// TARGET_PORT > 0: the client first sends `CONNECT 127.0.0.1:TARGET_PORT` and waits for a 2xx answer.
// TARGET_PORT = 0: it talks HTTP straight to HOST:PORT (a direct connection or a fixed-destination TCP relay).
// Output: one line of key=value pairs. Every socket operation has a 10 s timeout.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *g_host;
static int g_port, g_target_port;
static const char *g_path;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    inet_pton(AF_INET, g_host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        buf += n;
        len -= n;
    }
    return 0;
}

// Buffered reader over a socket.
typedef struct {
    int fd;
    char *buf;
    size_t cap, start, end;
} reader_t;

static int fill(reader_t *r) {
    if (r->start == r->end) r->start = r->end = 0;
    if (r->end == r->cap) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    ssize_t n = recv(r->fd, r->buf + r->end, r->cap - r->end, 0);
    if (n <= 0) return -1;
    r->end += n;
    return 0;
}

// Reads a response head; returns the status code and sets *content_length (-1 if absent).
static int read_head(reader_t *r, long *content_length) {
    for (;;) {
        char *hay = r->buf + r->start;
        size_t len = r->end - r->start;
        char *end = memmem(hay, len, "\r\n\r\n", 4);
        if (end) {
            int status = 0;
            if (len < 12 || sscanf(hay, "HTTP/1.%*c %d", &status) != 1) return -1;
            *content_length = -1;
            char *p = hay;
            while (p < end) {
                char *eol = memmem(p, end + 2 - p, "\r\n", 2);
                if (!eol) break;
                if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0) *content_length = strtol(p + 15, NULL, 10);
                p = eol + 2;
            }
            r->start += (end + 4) - hay;
            return status;
        }
        if (fill(r) != 0) return -1;
    }
}

static long read_body(reader_t *r, long length) {
    long got = 0;
    while (got < length) {
        if (r->start == r->end && fill(r) != 0) return -1;
        size_t take = r->end - r->start;
        if ((long)take > length - got) take = length - got;
        r->start += take;
        got += take;
    }
    return got;
}

static int do_connect(int fd, reader_t *r) {
    if (g_target_port == 0) return 0;
    char req[256];
    int n = snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", g_target_port,
                     g_target_port);
    if (send_all(fd, req, n) != 0) return -1;
    long cl;
    int status = read_head(r, &cl);
    if (status < 200 || status > 299) return -1;
    if (cl > 0 && read_body(r, cl) < 0) return -1;
    return 0;
}

static int mode_get(long count) {
    int fd = open_connection();
    if (fd < 0) { fprintf(stderr, "connect failed\n"); return 1; }
    reader_t r = {fd, malloc(1 << 20), 1 << 20, 0, 0};
    if (do_connect(fd, &r) != 0) { fprintf(stderr, "CONNECT failed\n"); return 1; }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", g_path);
    double start = now_seconds();
    long long bytes = 0;
    for (long i = 0; i < count; i++) {
        long cl;
        if (send_all(fd, req, n) != 0 || read_head(&r, &cl) != 200 || cl < 0) {
            fprintf(stderr, "GET %ld failed\n", i);
            return 1;
        }
        long got = read_body(&r, cl);
        if (got != cl) { fprintf(stderr, "short body\n"); return 1; }
        bytes += got;
    }
    double elapsed = now_seconds() - start;
    printf("mode=get requests=%ld bytes=%lld seconds=%.3f mib_per_s=%.1f\n", count, bytes, elapsed,
           bytes / 1048576.0 / elapsed);
    close(fd);
    return 0;
}

typedef struct {
    double deadline;
    double *latencies;
    long count, capacity, errors;
} worker_t;

static void *setup_worker(void *arg) {
    worker_t *w = arg;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", g_path);
    reader_t r = {0, malloc(65536), 65536, 0, 0};
    while (now_seconds() < w->deadline) {
        double t0 = now_seconds();
        int fd = open_connection();
        if (fd < 0) { w->errors++; usleep(1000); continue; }
        r.fd = fd;
        r.start = r.end = 0;
        long cl;
        int ok = do_connect(fd, &r) == 0 && send_all(fd, req, n) == 0 && read_head(&r, &cl) == 200 && cl >= 0 &&
                 read_body(&r, cl) == cl;
        close(fd);
        if (!ok) { w->errors++; continue; }
        if (w->count == w->capacity) {
            w->capacity *= 2;
            w->latencies = realloc(w->latencies, w->capacity * sizeof(double));
        }
        w->latencies[w->count++] = now_seconds() - t0;
    }
    free(r.buf);
    return NULL;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int mode_setup(int threads, double seconds) {
    pthread_t tids[256];
    worker_t workers[256];
    double start = now_seconds();
    for (int i = 0; i < threads; i++) {
        workers[i] = (worker_t){start + seconds, malloc(4096 * sizeof(double)), 0, 4096, 0};
        pthread_create(&tids[i], NULL, setup_worker, &workers[i]);
    }
    long total = 0, errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += workers[i].count;
        errors += workers[i].errors;
    }
    double elapsed = now_seconds() - start;
    double *all = malloc((total + 1) * sizeof(double));
    long k = 0;
    for (int i = 0; i < threads; i++)
        for (long j = 0; j < workers[i].count; j++) all[k++] = workers[i].latencies[j];
    qsort(all, total, sizeof(double), compare_double);
    double p50 = total ? all[total / 2] * 1000 : 0, p99 = total ? all[(long)(total * 0.99)] * 1000 : 0;
    printf("mode=setup threads=%d tunnels=%ld errors=%ld seconds=%.2f tunnels_per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n",
           threads, total, errors, elapsed, total / elapsed, p50, p99);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s get HOST PORT TARGET_PORT PATH COUNT | setup HOST PORT TARGET_PORT PATH THREADS SECS\n",
                argv[0]);
        return 2;
    }
    g_host = argv[2];
    g_port = atoi(argv[3]);
    g_target_port = atoi(argv[4]);
    g_path = argv[5];
    if (strcmp(argv[1], "get") == 0 && argc == 7) return mode_get(atol(argv[6]));
    if (strcmp(argv[1], "setup") == 0 && argc == 8) {
        int threads = atoi(argv[6]);
        if (threads < 1 || threads > 256) return 2;
        return mode_setup(threads, atof(argv[7]));
    }
    fprintf(stderr, "bad arguments\n");
    return 2;
}
