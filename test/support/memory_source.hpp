// Test support: a *ByteSource* over bytes in memory, with a configurable maximum chunk per
// read_some (down to 1 byte, to exercise every buffering boundary) and an injectable failure.
#pragma once

#include <ocistore/error.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>

namespace ocistore_test {

class memory_source {
public:
    /// Reads `data` (not copied: it must outlive the source), at most `max_chunk` bytes per call.
    explicit memory_source(std::string_view data, std::size_t max_chunk = std::numeric_limits<std::size_t>::max())
        : data_(data), max_chunk_(max_chunk == 0 ? 1 : max_chunk)
    {
    }
    /// A temporary string would dangle: keep the bytes in a variable that outlives the source.
    template <class S>
        requires std::same_as<S, std::string>
    memory_source(S&& data, std::size_t max_chunk = 0) = delete;

    std::size_t read_some(std::span<std::byte> buf, ocistore::error_code& ec)
    {
        ec.clear();
        ++reads_;
        if (failed_ || pos_ >= fail_at_) {
            failed_ = true;
            ec = fail_code_;
            return 0;
        }
        std::size_t n = std::min({buf.size(), max_chunk_, data_.size() - pos_});
        if (fail_at_ - pos_ < n) n = static_cast<std::size_t>(fail_at_ - pos_);
        std::memcpy(buf.data(), data_.data() + pos_, n);
        pos_ += n;
        return n;
    }

    /// Makes every read at or after byte `offset` fail with `code`.
    void fail_at(std::uint64_t offset, ocistore::error_code code)
    {
        fail_at_ = offset;
        fail_code_ = code;
    }

    /// Bytes handed out so far.
    std::size_t position() const noexcept { return pos_; }
    /// Calls to read_some so far.
    std::size_t reads() const noexcept { return reads_; }

private:
    std::string_view data_;
    std::size_t max_chunk_;
    std::size_t pos_ = 0;
    std::size_t reads_ = 0;
    std::uint64_t fail_at_ = std::numeric_limits<std::uint64_t>::max();
    ocistore::error_code fail_code_;
    bool failed_ = false;
};

} // namespace ocistore_test
