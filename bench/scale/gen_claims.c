// Claims shaped like ipv4.games for `ipquest claims import` (TSV, six columns), deterministic
// for a seed: addresses in runs inside /24s (runs and gaps of random length, /24s mostly close
// to each other, with jumps that spread the rows over most /8s), a few players holding most
// (Zipf over the players), one timestamp per run spread over the 60 days before NOW, origin
// fields by /8 and /16 (country, AS, a cloud provider for some).
//
//   gen_claims -n ROWS [-p PLAYERS=20000] [-s ZIPF_EXPONENT=1.2] [-d] [-o sorted|blocks|random]
//              [-t NOW=time()] [-r SEED=1]
// -d: distinct names, every row its own player (u0, u1, …): the spam-name shape.
// -o sorted (default): rows in address order, as `claims export` writes them;
//    blocks: /24s in random order, rows in a /24 in order (a merge of scans);
//    random: every row at a random place.
// Exactly ROWS distinct addresses; the header line first. Writes to standard output.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng = 1;
static inline uint64_t next64(void) { // splitmix64
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double uniform(void) { return (next64() >> 11) * (1.0 / 9007199254740992.0); }
static inline unsigned geometric(double mean) { // >= 1
    double u = uniform();
    unsigned k = 1 + (unsigned)(log(1 - u) / log(1 - 1 / mean));
    return k;
}
static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static char out[1 << 20];
static size_t used;
static void flush(void) {
    size_t off = 0;
    while (off < used) {
        ssize_t n = write(1, out + off, used - off);
        if (n <= 0) { perror("write"); exit(1); }
        off += n;
    }
    used = 0;
}
static inline void put(const char *s, size_t n) { memcpy(out + used, s, n); used += n; }
static inline void putc_(char c) { out[used++] = c; }
static inline void putu(uint64_t v) {
    char tmp[24]; int i = 24;
    do { tmp[--i] = '0' + v % 10; v /= 10; } while (v);
    put(tmp + i, 24 - i);
}

static const char *countries[] = {"US", "CN", "JP", "DE", "GB", "KR", "BR", "FR", "CA", "IT", "NL", "AU", "RU", "IN", "TW", "ES", "SE", "PL", "MX", "ZA"};
static const char *providers[] = {"aws", "gcp", "azure", "oracle", "digitalocean", "linode"};

static int usable_slash8(unsigned a) { return a != 0 && a != 10 && a != 127 && a < 224; }

int main(int argc, char **argv) {
    long long rows = 0;
    long players = 20000;
    double s = 1.2;
    int distinct = 0;
    const char *order = "sorted";
    long long now = time(NULL);
    int opt;
    uint64_t seed = 1;
    while ((opt = getopt(argc, argv, "n:p:s:do:t:r:")) != -1) {
        switch (opt) {
        case 'n': rows = atoll(optarg); break;
        case 'p': players = atol(optarg); break;
        case 's': s = atof(optarg); break;
        case 'd': distinct = 1; break;
        case 'o': order = optarg; break;
        case 't': now = atoll(optarg); break;
        case 'r': seed = strtoull(optarg, 0, 10); break;
        default: fprintf(stderr, "usage: gen_claims -n ROWS [-p PLAYERS] [-s ZIPF] [-d] [-o sorted|blocks|random] [-t NOW] [-r SEED]\n"); return 2;
        }
    }
    if (rows <= 0 || players <= 0 || (strcmp(order, "sorted") && strcmp(order, "blocks") && strcmp(order, "random"))) {
        fprintf(stderr, "gen_claims: -n ROWS > 0, -p PLAYERS > 0, -o sorted|blocks|random\n");
        return 2;
    }
    rng = seed * 0x2545F4914F6CDD1Dull + 1;

    // Zipf CDF over the players.
    double *cdf = malloc(sizeof(double) * players);
    double total = 0;
    for (long k = 0; k < players; k++) { total += pow(k + 1, -s); cdf[k] = total; }
    for (long k = 0; k < players; k++) cdf[k] /= total;

    // Every row: address, player, time. Held whole only for the shuffled orders.
    int shuffled = strcmp(order, "sorted") != 0;
    uint32_t *ips = shuffled ? malloc(sizeof(uint32_t) * rows) : NULL;
    uint32_t *who = shuffled ? malloc(sizeof(uint32_t) * rows) : NULL;
    uint32_t *when = shuffled ? malloc(sizeof(uint32_t) * rows) : NULL;
    if (shuffled && !(ips && who && when)) { fprintf(stderr, "gen_claims: out of memory\n"); return 1; }

    const char *header = "ip\tname\tclaimed_at\tcountry\tasn\tprovider\n";
    put(header, strlen(header));
    const long long window = 60LL * 86400;
    // /24s needed at about 185 rows each; 80% of steps are short (mean 2), the jumps spread the
    // rest over the 220 usable /8s (90% of them, to leave room for chance).
    double needed = rows / 185.0 + 1, span = 220.0 * 65536 * 0.9;
    double jump = (span / needed - 0.8 * 2) / 0.2;
    if (jump < 2) jump = 2;
    uint32_t block = 1u << 16; // a /24 index: 1.0.0.0/24
    long long made = 0;
    long long distinct_id = 0;
    while (made < rows) {
        // Next /24: mostly the next one or close by, sometimes a jump sized so that the rows
        // spread over the whole usable space (every /8 gets some), skipping unusable /8s.
        block += uniform() < 0.8 ? geometric(2) : geometric(jump);
        while (!usable_slash8(block >> 16)) {
            block = ((block >> 16) + 1) << 16;
            if ((block >> 16) >= 224) { fprintf(stderr, "gen_claims: address space exhausted\n"); return 1; }
        }
        // Runs and gaps inside the /24.
        unsigned slot = geometric(8) - 1;
        while (slot < 256 && made < rows) {
            unsigned run = geometric(24);
            double u = uniform();
            long lo = 0, hi = players - 1;
            while (lo < hi) { long mid = (lo + hi) / 2; if (cdf[mid] < u) lo = mid + 1; else hi = mid; }
            long long at = now - (long long)(uniform() * window);
            for (unsigned i = 0; i < run && slot < 256 && made < rows; i++, slot++) {
                uint32_t ip = block << 8 | slot;
                uint32_t player = distinct ? (uint32_t)distinct_id++ : (uint32_t)lo;
                uint32_t t = (uint32_t)(at + i);
                if (shuffled) { ips[made] = ip; who[made] = player; when[made] = t; made++; continue; }
                made++;
                if (used > sizeof out - 256) flush();
                putu(ip >> 24); putc_('.'); putu((ip >> 16) & 255); putc_('.'); putu((ip >> 8) & 255); putc_('.'); putu(ip & 255);
                putc_('\t'); put(distinct ? "u" : "player", distinct ? 1 : 6); putu(player);
                putc_('\t'); putu(t);
                uint64_t h8 = mix(ip >> 24), h16 = mix(ip >> 16);
                putc_('\t'); put(countries[h8 % 20], 2);
                putc_('\t'); putu(1 + h16 % 60000);
                putc_('\t'); if (h16 % 20 == 0) { const char *p = providers[(h16 >> 8) % 6]; put(p, strlen(p)); }
                putc_('\n');
            }
            slot += geometric(8) - 1;
        }
    }
    if (shuffled) {
        if (!strcmp(order, "random")) {
            for (long long i = rows - 1; i > 0; i--) {
                long long j = next64() % (i + 1);
                uint32_t a = ips[i]; ips[i] = ips[j]; ips[j] = a;
                a = who[i]; who[i] = who[j]; who[j] = a;
                a = when[i]; when[i] = when[j]; when[j] = a;
            }
        } else { // blocks: permute the /24s, keep each /24's rows together and in order
            long long nblocks = 0;
            long long *starts = malloc(sizeof(long long) * (rows + 1));
            for (long long i = 0; i < rows; i++) if (i == 0 || (ips[i] >> 8) != (ips[i - 1] >> 8)) starts[nblocks++] = i;
            starts[nblocks] = rows;
            long long *perm = malloc(sizeof(long long) * nblocks);
            for (long long i = 0; i < nblocks; i++) perm[i] = i;
            for (long long i = nblocks - 1; i > 0; i--) { long long j = next64() % (i + 1); long long a = perm[i]; perm[i] = perm[j]; perm[j] = a; }
            uint32_t *ips2 = malloc(sizeof(uint32_t) * rows), *who2 = malloc(sizeof(uint32_t) * rows), *when2 = malloc(sizeof(uint32_t) * rows);
            long long k = 0;
            for (long long b = 0; b < nblocks; b++)
                for (long long i = starts[perm[b]]; i < starts[perm[b] + 1]; i++) { ips2[k] = ips[i]; who2[k] = who[i]; when2[k] = when[i]; k++; }
            free(ips); free(who); free(when); ips = ips2; who = who2; when = when2;
        }
        for (long long i = 0; i < rows; i++) {
            if (used > sizeof out - 256) flush();
            uint32_t ip = ips[i];
            putu(ip >> 24); putc_('.'); putu((ip >> 16) & 255); putc_('.'); putu((ip >> 8) & 255); putc_('.'); putu(ip & 255);
            putc_('\t'); put(distinct ? "u" : "player", distinct ? 1 : 6); putu(who[i]);
            putc_('\t'); putu(when[i]);
            uint64_t h8 = mix(ip >> 24), h16 = mix(ip >> 16);
            putc_('\t'); put(countries[h8 % 20], 2);
            putc_('\t'); putu(1 + h16 % 60000);
            putc_('\t'); if (h16 % 20 == 0) { const char *p = providers[(h16 >> 8) % 6]; put(p, strlen(p)); }
            putc_('\n');
        }
    }
    flush();
    return 0;
}
