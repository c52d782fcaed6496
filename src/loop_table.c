/* Tables indexed by fd number (the loop's watchers, a backend's per-fd
 * state), kept in anonymous mappings grown with mremap rather than in the
 * heap grown with realloc. An idle server's memory is mostly these tables
 * and its connections: realloc leaves each outgrown copy in the heap (the
 * 64-slot, 128-slot, ... copies add up to the size of the live table, and
 * their pages stay resident), while mremap moves the pages and frees the
 * old range. New slots read as zero without being written, so only the
 * pages of slots in use are resident. */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loop_internal.h"

static size_t
page_round(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) / page * page;
}

int
sm__table_reserve(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    if (need > SIZE_MAX / 2 / size) return -ENOMEM;
    /* Doubling keeps the mremap calls logarithmic in the highest fd. */
    size_t ncap = *cap * 2 > need ? *cap * 2 : need;
    size_t bytes = page_round(ncap * size);
    void *np = *p ? mremap(*p, page_round(*cap * size), bytes, MREMAP_MAYMOVE)
                  : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (np == MAP_FAILED) return -ENOMEM;
    *p = np;
    *cap = bytes / size;
    return 0;
}

void
sm__table_free(void *p, size_t cap, size_t size)
{
    if (p) (void)munmap(p, page_round(cap * size));
}
