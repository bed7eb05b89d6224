// ocistore/heap_tuning.hpp: the command-line tool's malloc policy: one heap, kept for reuse, on transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>

#if defined(__GLIBC__)
#  include <malloc.h>
#  include <sys/mman.h>
#  include <unistd.h>
#endif

namespace ocistore::cli {

/** Sets glibc's malloc up for the allocation pattern of a pull, process-wide (so it is the
    application's decision, not the library's). Best effort: a step that fails changes
    nothing else.

    A cold pull with EROFS artifacts builds each layer's metadata in memory (a node per
    entry, inode records, a write buffer) and then frees it. With glibc's defaults most of that
    memory is fresh every time: large blocks get mmaps of their own and are unmapped when
    freed, each thread allocates from an arena of its own, and the heap is trimmed. Every
    first touch of a 4 KiB page is a page fault, and on a VM whose page faults go through the
    hypervisor each costs about 10 µs: about 11,000 of them per pull of the benchmark's large
    image, a tenth of its CPU time. Here:
    - every thread allocates from the one main heap (M_ARENA_MAX 1);
    - blocks up to 32 MiB come from the heap (M_MMAP_THRESHOLD), and freed memory stays in it
      for the next layer (M_TRIM_THRESHOLD 256 MiB, growth in steps of M_TOP_PAD 16 MiB);
    - the heap is grown once by `reserve` bytes of address space (nothing is touched), and
      all but its first `small` bytes are advised as transparent huge pages (MADV_HUGEPAGE),
      so that one fault maps 2 MiB. A command that needs little memory (a cached pull, a
      listing) stays below `small`, in 4 KiB pages: zeroing a 2 MiB page would cost it more
      than it saves. Where THP is off, the advice is ignored. */
inline void tune_heap(std::size_t reserve = std::size_t(96) << 20, std::size_t small = std::size_t(2) << 20) noexcept
{
#if defined(__GLIBC__)
    constexpr std::size_t block = std::size_t(30) << 20; // under M_MMAP_THRESHOLD: from the heap
    constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
    ::mallopt(M_ARENA_MAX, 1);
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
    ::mallopt(M_TOP_PAD, 16 << 20);

    auto const brk = [] { return reinterpret_cast<std::uintptr_t>(::sbrk(0)); };
    auto const start = brk();
    if (start == std::uintptr_t(-1)) return;
    void* blocks[16] = {};
    std::size_t n = 0;
    std::uintptr_t end = start;
    while (n < std::size(blocks) && end - start < reserve) {
        if (!(blocks[n] = ::malloc(block))) break;
        ++n;
        auto const now = brk();
        if (now == end) break; // not from the heap (another malloc)
        end = now;
    }
    std::uintptr_t const from = (start + small + huge - 1) & ~(huge - 1), to = end & ~(huge - 1);
    if (to > from) (void)::madvise(reinterpret_cast<void*>(from), to - from, MADV_HUGEPAGE);
    for (std::size_t i = 0; i < n; ++i) ::free(blocks[i]); // back to the heap's top, which is kept
#else
    (void)reserve;
    (void)small;
#endif
}

} // namespace ocistore::cli
