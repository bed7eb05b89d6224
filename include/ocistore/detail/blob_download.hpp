// ocistore/detail/blob_download.hpp: the byte source of one layer download: replays a `.part` file, then continues from the network, appending to it, resuming after transient failures.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/error.hpp>
#include <ocistore/reference.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <fcntl.h>
#include <unistd.h>

namespace ocistore::detail {

/// How blob_download_source resumes.
struct blob_download_options {
    unsigned retries = 3;
    std::chrono::milliseconds backoff{200};
    std::stop_token stop;
    /// Called with the bytes delivered so far (replayed ones included), after each read.
    std::function<void(std::uint64_t)> on_bytes;
    /// Called before a retry with the reason and the offset it resumes at.
    std::function<void(std::string const&, std::uint64_t)> on_retry;
    /// When non-zero, writeback of the `.part` is started (sync_file_range, not waited for)
    /// each time this many new bytes have been written, so that a final fdatasync() finds
    /// little left to write.
    std::uint64_t start_writeback_every = 0;
};

/** A *ByteSource* over one blob of `expected` bytes: the first `replay` bytes come from
    `part_fd` (a `.part` from an earlier attempt), the rest from `transport`, each network
    byte written to `part_fd` at its offset before it is passed on, so the `.part` always
    holds a prefix of what was received.

    A transient failure (condition::transient, or the body ending before `expected`) is
    retried up to `retries` times: the blob is re-opened at the current offset; a server
    that ignores the Range is read from 0 and the bytes already held are skipped. More bytes
    than `expected` fail at once with error::size_mismatch (nothing unbounded reaches the
    disk). A stop request fails the next read with error::cancelled. Write failures are the
    errno. Failures are sticky. */
template <transport Transport>
class blob_download_source {
public:
    using reader_type = typename Transport::blob_reader;

    blob_download_source(Transport& transport, image_reference const& ref, digest const& blob, std::uint64_t expected,
                         int part_fd, std::uint64_t replay, std::optional<reader_type> network,
                         blob_download_options options)
        : transport_(transport), ref_(ref), blob_(blob), expected_(expected), part_fd_(part_fd), replay_(replay),
          network_(std::move(network)), options_(std::move(options))
    {
    }

    std::size_t read_some(std::span<std::byte> buffer, error_code& ec)
    {
        ec.clear();
        if (failed_) return ec = failed_, 0;
        if (options_.stop.stop_requested()) return fail(ec, make_error_code(error::cancelled));
        if (pos_ < replay_) {
            auto const want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), replay_ - pos_));
            ssize_t n;
            do n = ::pread(part_fd_, buffer.data(), want, static_cast<off_t>(pos_));
            while (n < 0 && errno == EINTR);
            if (n < 0) return fail(ec, error_code(errno, std::system_category()));
            if (n == 0) return fail(ec, make_error_code(error::truncated));
            return delivered(static_cast<std::size_t>(n));
        }
        for (;;) {
            if (!network_) {
                if (pos_ >= expected_) return 0; // everything came from the .part
                if (!reopen(ec)) return 0;
            }
            // Read one byte beyond the expected end at most, to detect an oversized body.
            auto const room = expected_ + 1 - std::min(pos_, expected_);
            auto const want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), room));
            error_code rec;
            std::size_t n = network_->read_some(buffer.first(want), rec);
            if (!rec && n > 0 && skip_ > 0) { // a server that ignored our Range: drop what we hold
                auto const dropped = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, n));
                skip_ -= dropped;
                std::memmove(buffer.data(), buffer.data() + dropped, n - dropped);
                n -= dropped;
                if (n == 0) continue;
            }
            if (rec || (n == 0 && pos_ < expected_)) {
                error_code const why = rec ? rec : make_error_code(error::truncated);
                if (rec == make_error_code(error::cancelled) || options_.stop.stop_requested())
                    return fail(ec, make_error_code(error::cancelled));
                bool const transient = why == condition::transient || why == make_error_code(error::truncated);
                if (!transient || attempts_ >= options_.retries) return fail(ec, why);
                network_.reset();
                if (!back_off(why)) return fail(ec, make_error_code(error::cancelled));
                continue;
            }
            if (n == 0) return 0;
            if (pos_ + n > expected_) return fail(ec, make_error_code(error::size_mismatch));
            std::size_t written = 0;
            while (written < n) {
                ssize_t const w = ::pwrite(part_fd_, buffer.data() + written, n - written,
                                           static_cast<off_t>(pos_ + written));
                if (w < 0) {
                    if (errno == EINTR) continue;
                    error_code const wec(errno, std::system_category());
                    write_failure_ = "writing at byte " + std::to_string(pos_ + written) + ": " + wec.message();
                    return fail(ec, wec);
                }
                written += static_cast<std::size_t>(w);
            }
            network_bytes_ += n;
            if (options_.start_writeback_every && pos_ + n - written_back_ >= options_.start_writeback_every) {
                // Advisory: an error here resurfaces in the caller's fdatasync().
                (void)::sync_file_range(part_fd_, static_cast<off_t>(written_back_),
                                        static_cast<off_t>(pos_ + n - written_back_), SYNC_FILE_RANGE_WRITE);
                written_back_ = pos_ + n;
            }
            return delivered(n);
        }
    }

    /// Bytes received from the network (not replayed).
    std::uint64_t network_bytes() const noexcept { return network_bytes_; }
    /// Bytes delivered so far.
    std::uint64_t position() const noexcept { return pos_; }
    /// Why writing the `.part` failed ("writing at byte N: <errno text>"); empty when it did not.
    std::string const& write_failure() const noexcept { return write_failure_; }
    /// Retries used.
    unsigned retries_used() const noexcept { return attempts_; }

private:
    std::size_t fail(error_code& ec, error_code e)
    {
        failed_ = ec = e;
        return 0;
    }

    std::size_t delivered(std::size_t n)
    {
        pos_ += n;
        if (options_.on_bytes) options_.on_bytes(pos_);
        return n;
    }

    /// Counts a retry, reports it, and waits (backoff doubling per attempt); false when stopped meanwhile.
    bool back_off(error_code const& reason)
    {
        ++attempts_;
        if (options_.on_retry) options_.on_retry(reason.message(), pos_);
        return sleep_for(options_.backoff * (1u << std::min(attempts_ - 1, 10u)));
    }

    bool sleep_for(std::chrono::milliseconds d)
    {
        auto const until = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < until) {
            if (options_.stop.stop_requested()) return false;
            std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(20)));
        }
        return true;
    }

    bool reopen(error_code& ec)
    {
        error_code oec;
        reader_type r = transport_.open_blob(ref_, blob_, pos_, oec);
        if (oec) {
            bool const transient = oec == condition::transient;
            if (!transient || attempts_ >= options_.retries) return fail(ec, oec), false;
            if (!back_off(oec)) return fail(ec, make_error_code(error::cancelled)), false;
            return reopen(ec);
        }
        if (r.offset() == pos_) {
            skip_ = 0;
        } else if (r.offset() == 0) {
            skip_ = pos_;
        } else {
            return fail(ec, make_error_code(error::protocol_error)), false;
        }
        network_.emplace(std::move(r));
        return true;
    }

    Transport& transport_;
    image_reference const& ref_;
    digest const& blob_;
    std::uint64_t expected_;
    int part_fd_;
    std::uint64_t replay_;
    std::optional<reader_type> network_;
    blob_download_options options_;
    std::uint64_t pos_ = 0;
    std::uint64_t skip_ = 0;
    std::uint64_t network_bytes_ = 0;
    std::uint64_t written_back_ = 0;
    unsigned attempts_ = 0;
    error_code failed_;
    std::string write_failure_;
};

} // namespace ocistore::detail
