/* LD_PRELOAD shim counting heap allocations (malloc, calloc, realloc, aligned variants);
 * prints the count at exit. Used to check that LocationDB lookups do not allocate:
 *   gcc -O2 -shared -fPIC -o .build/malloc_count.so malloc_count.c
 *   LD_PRELOAD=.build/malloc_count.so .build/release/LocationBench lookups-only DB N
 * The count must not grow with N. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong allocations;

void *malloc(size_t n) { atomic_fetch_add(&allocations, 1); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { atomic_fetch_add(&allocations, 1); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_realloc(p, n); }
int posix_memalign(void **out, size_t alignment, size_t n) {
    atomic_fetch_add(&allocations, 1);
    void *p = __libc_memalign(alignment, n);
    if (!p) return 12;
    *out = p;
    return 0;
}
void *aligned_alloc(size_t alignment, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_memalign(alignment, n); }

__attribute__((destructor)) static void report(void) {
    char line[96];
    int len = snprintf(line, sizeof line, "heap allocations: %lu\n", (unsigned long)atomic_load(&allocations));
    if (len > 0) (void)!write(2, line, (size_t)len);
}
