// The command-line tool's malloc policy (tools/ocistore/heap_tuning.hpp), checked in this process.
#include <ocistore/heap_tuning.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <malloc.h>
#include <unistd.h>

namespace {

/// One mapping of /proc/self/smaps: its address range, name and VmFlags.
struct mapping {
    std::uintptr_t from = 0, to = 0;
    std::string name, flags;
};

std::vector<mapping> smaps()
{
    std::vector<mapping> out;
    std::ifstream in("/proc/self/smaps");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string range;
        words >> range;
        if (auto dash = range.find('-'); dash != std::string::npos && range.find(':') == std::string::npos) {
            mapping m;
            m.from = std::stoull(range.substr(0, dash), nullptr, 16);
            m.to = std::stoull(range.substr(dash + 1), nullptr, 16);
            std::string perms, offset, dev, inode;
            words >> perms >> offset >> dev >> inode;
            std::getline(words >> std::ws, m.name);
            out.push_back(m);
        } else if (line.rfind("VmFlags:", 0) == 0 && !out.empty()) {
            out.back().flags = line.substr(8);
        }
    }
    return out;
}

bool sanitized()
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#else
    return false;
#endif
}

} // namespace

TEST_CASE("tune_heap: large blocks come from the kept heap, which is advised as huge pages above its low part")
{
    if (sanitized()) {
        WARN_MESSAGE(false, "a sanitizer replaces glibc's malloc, which tune_heap() configures: skipped");
        return;
    }
    auto const start = reinterpret_cast<std::uintptr_t>(::sbrk(0));
    ocistore::cli::tune_heap(std::size_t(64) << 20, std::size_t(2) << 20);
    auto const grown = reinterpret_cast<std::uintptr_t>(::sbrk(0));
    CHECK(grown - start >= (std::size_t(64) << 20)); // the reserve is address space of the heap

    // A 16 MiB block (mmapped by default) is carved from the heap; freeing it trims nothing.
    auto const mapped_before = ::mallinfo2().hblkhd;
    void* big = std::malloc(std::size_t(16) << 20);
    REQUIRE(big != nullptr);
    auto const at = reinterpret_cast<std::uintptr_t>(big);
    bool in_heap = false;
    for (auto const& m : smaps()) in_heap |= m.name == "[heap]" && m.from <= at && at < m.to;
    CHECK(in_heap);
    CHECK(at < grown);
    CHECK(::mallinfo2().hblkhd == mapped_before);
    std::free(big);
    CHECK(reinterpret_cast<std::uintptr_t>(::sbrk(0)) == grown);

    if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled")) {
        WARN_MESSAGE(false, "this kernel has no transparent huge pages: the advice check is skipped");
        return;
    }
    // The heap's mappings: huge-page advice ("hg") on the upper part, none on its first 2 MiB.
    bool advised_above = false, advised_low = false;
    for (auto const& m : smaps()) {
        if (m.name != "[heap]") continue;
        bool const hg = m.flags.find(" hg") != std::string::npos;
        if (m.from <= start && start < m.to) advised_low |= hg;
        if (m.from >= start + (std::size_t(2) << 20)) advised_above |= hg;
    }
    CHECK(advised_above);
    CHECK_FALSE(advised_low);
}
