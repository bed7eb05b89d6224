// ocistore/test/memory_transport.hpp: an in-memory registry *Transport* with fault injection and counters, for tests.
//
// A shipped test aid (namespace ocistore::test): no stability promise beyond the *Transport*
// concept itself. Header-only in every build mode; needs the `hash` component (sha256_hasher).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/detail/accept.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/transport_types.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace ocistore::test {

/// The requests a transport serves.
enum class request_kind {
    fetch_manifest, ///< GET a manifest
    resolve,        ///< HEAD a manifest
    open_blob,      ///< GET a blob, possibly with a Range
};

/// How a body cut short by fault::truncate_after ends.
enum class truncation {
    reset, ///< the peer closed the connection: the read after the last byte fails with error::connection_failed
    eof,   ///< the body ends early with ec clear, while size() still reports the full size
};

/** A fault injected into a memory_transport: which requests it hits and what it does to them.

    A request matches when it has `kind` (any when empty), is for `repository` (any when
    empty) and names `target` (the tag or digest string asked for; any when empty). The
    fault lets the first `skip` matching requests pass, then hits the next `times` of them
    (all of them when `times` is 0). Several faults may hit the same request; their effects
    combine (the first failure wins, the shortest truncation wins, corruptions add up).

    @code
    t.inject({.kind = request_kind::open_blob, .truncate_after = 1000});  // first blob GET drops after 1000 bytes
    t.inject({.skip = 2, .fail = make_error_code(error::server_error)});  // the third request fails
    @endcode */
struct fault {
    // which requests
    std::optional<request_kind> kind{};  ///< only requests of this kind; any when empty
    std::string repository{};          ///< only requests for this repository; any when empty
    std::string target{};              ///< only requests naming this tag or digest; any when empty
    std::uint64_t skip = 0;            ///< matching requests let through before the fault starts
    std::uint64_t times = 1;           ///< matching requests hit after that; 0: every one
    // what happens to them
    error_code fail{};                                ///< the request fails with this code
    std::optional<std::chrono::seconds> retry_after{}; ///< with `fail`: the Retry-After hint, see last_retry_after()
    std::optional<std::uint64_t> truncate_after{};    ///< the body ends after this many bytes
    truncation truncate_mode = truncation::reset;     ///< how it ends
    bool ignore_range = false;                        ///< blobs: serve from byte 0 whatever offset was asked; offset() is 0
    std::optional<std::uint64_t> corrupt_at{};        ///< the content byte at this offset is served inverted
    std::chrono::milliseconds read_delay{0};          ///< blobs: sleep this long in every read_some (manifests: once)
};

/// One request as the transport saw it.
struct request_record {
    request_kind kind = request_kind::fetch_manifest;
    std::string repository;
    std::string target;       ///< the tag or digest asked for
    std::uint64_t offset = 0; ///< open_blob: the offset asked for
    error_code result;        ///< how the request itself ended (not later reads)
    std::optional<std::chrono::seconds> retry_after; ///< the hint sent with an injected failure
};

namespace memory_transport_detail {

struct stored_manifest {
    std::shared_ptr<std::string const> bytes;
    std::string media_type;
};

struct repository_content {
    std::map<std::string, digest, std::less<>> tags;
    std::map<digest, stored_manifest> manifests;
    std::map<digest, std::shared_ptr<std::string const>> blobs;
};

struct fault_slot {
    fault f;
    std::uint64_t seen = 0;
};

/// What the faults hitting one request ask for.
struct effects {
    error_code fail;
    std::optional<std::chrono::seconds> retry_after;
    std::optional<std::uint64_t> truncate_after;
    truncation truncate_mode = truncation::reset;
    bool ignore_range = false;
    std::vector<std::uint64_t> corrupt_at;
    std::chrono::milliseconds read_delay{0};
};

/// The shared state of a memory_transport and its copies; readers keep it alive.
struct registry {
    mutable std::mutex mutex;
    std::map<std::string, repository_content, std::less<>> repositories;
    std::vector<fault_slot> faults;
    std::vector<request_record> log;
    std::map<digest, std::uint64_t> served;
    std::optional<std::chrono::seconds> last_retry_after;

    /// Precondition: `mutex` held. Advances the matching faults and collects their effects.
    effects hit(request_kind kind, std::string_view repository, std::string_view target)
    {
        effects e;
        for (fault_slot& s : faults) {
            fault const& f = s.f;
            if (f.kind && *f.kind != kind) continue;
            if (!f.repository.empty() && f.repository != repository) continue;
            if (!f.target.empty() && f.target != target) continue;
            std::uint64_t const n = ++s.seen;
            if (n <= f.skip || (f.times != 0 && n > f.skip + f.times)) continue;
            if (f.fail && !e.fail) {
                e.fail = f.fail;
                e.retry_after = f.retry_after;
            }
            if (f.truncate_after && (!e.truncate_after || *f.truncate_after < *e.truncate_after)) {
                e.truncate_after = f.truncate_after;
                e.truncate_mode = f.truncate_mode;
            }
            e.ignore_range = e.ignore_range || f.ignore_range;
            if (f.corrupt_at) e.corrupt_at.push_back(*f.corrupt_at);
            e.read_delay = std::max(e.read_delay, f.read_delay);
        }
        return e;
    }

    /// Precondition: `mutex` held. The repository named `name`, or nullptr.
    repository_content const* find(std::string_view name) const
    {
        auto it = repositories.find(name);
        return it == repositories.end() ? nullptr : &it->second;
    }
};

/// Inverts the bytes of `out` (content offsets [first, first + out.size())) listed in `at`.
inline void corrupt(std::span<std::byte> out, std::uint64_t first, std::vector<std::uint64_t> const& at)
{
    for (std::uint64_t x : at)
        if (x >= first && x - first < out.size()) out[static_cast<std::size_t>(x - first)] ^= std::byte{0xff};
}

inline std::string in_quotes(std::string_view s) { return '"' + std::string(s) + '"'; }

} // namespace memory_transport_detail

/** An in-memory registry modelling *Transport*, for tests: repositories of blobs, manifests
    and tags, with injectable faults (fault) and counters (request_log(), bytes_served()).

    - The reference's registry is ignored: content is keyed by `ref.repository()`
      ("library/ubuntu" for "ubuntu").
    - fetch_manifest/resolve look up `ref.reference_for_fetch()`: a digest directly, a tag
      through tag(). A manifest whose media type is not in a non-empty `accept` list
      (compared by essence; a wildcard entry, star slash star, accepts all) is
      error::not_found, as distribution answers for OCI types a client did not accept.
      fetch_manifest fails with error::too_large for bodies over max_manifest_size (resolve
      does not: HEAD has no body). `server_digest` is the digest the manifest was stored under.
    - open_blob honours `offset` (unless a fault says ignore_range); an offset beyond the
      blob's size is error::invalid_argument; `size()` is always the whole blob's size.
    - Unknown repository, tag, manifest or blob: error::not_found.
    - Copies are handles to the same registry, faults and counters. All members are safe
      to call concurrently; readers keep the bytes they serve alive (content is immutable
      once added) and may outlive the transport.
    - The `why` parameters receive a human-readable reason on failure. */
class memory_transport {
public:
    /// *BlobSource* over one stored blob.
    class blob_reader {
    public:
        /// A reader over nothing: every read fails with error::invalid_argument.
        blob_reader() = default;
        blob_reader(blob_reader&&) noexcept = default;
        blob_reader& operator=(blob_reader&&) noexcept = default;
        blob_reader(blob_reader const&) = delete;
        blob_reader& operator=(blob_reader const&) = delete;
        ~blob_reader() = default;

        /// Reads up to `buffer.size()` bytes; 0 with `ec` clear at the end of the body.
        std::size_t read_some(std::span<std::byte> buffer, error_code& ec)
        {
            ec.clear();
            if (failed_) return ec = failed_, 0;
            if (!data_) return ec = failed_ = make_error_code(error::invalid_argument), 0;
            if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
            if (pos_ >= end_) {
                if (cut_ && mode_ == truncation::reset) ec = failed_ = make_error_code(error::connection_failed);
                return 0;
            }
            std::size_t const n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), end_ - pos_));
            std::memcpy(buffer.data(), data_->data() + pos_, n);
            memory_transport_detail::corrupt(buffer.first(n), pos_, corrupt_at_);
            pos_ += n;
            std::lock_guard lock(registry_->mutex);
            registry_->served[digest_] += n;
            return n;
        }

        /// Where the body starts in the blob: the offset asked for, or 0 when the range was ignored.
        std::uint64_t offset() const noexcept { return offset_; }
        /// The whole blob's size (empty only for a reader over nothing).
        std::optional<std::uint64_t> size() const noexcept { return size_; }

    private:
        friend class memory_transport;

        std::shared_ptr<std::string const> data_;
        std::shared_ptr<memory_transport_detail::registry> registry_;
        digest digest_;
        std::uint64_t offset_ = 0;
        std::uint64_t pos_ = 0;
        std::uint64_t end_ = 0;
        std::optional<std::uint64_t> size_;
        bool cut_ = false;
        truncation mode_ = truncation::reset;
        std::vector<std::uint64_t> corrupt_at_;
        std::chrono::milliseconds delay_{0};
        error_code failed_;
    };

    /// An empty registry.
    memory_transport() : registry_(std::make_shared<memory_transport_detail::registry>()) {}

    // --- content ------------------------------------------------------------------------------

    /// Stores `bytes` as a blob of `repository` under its sha256 digest, which it returns.
    digest add_blob(std::string_view repository, std::string bytes)
    {
        digest d = digest_of<sha256_hasher>(bytes);
        put_blob(repository, d, std::move(bytes));
        return d;
    }

    /// Stores `bytes` as blob `d` of `repository`, whether or not they hash to `d` (to serve corrupt content).
    void put_blob(std::string_view repository, digest const& d, std::string bytes)
    {
        auto p = std::make_shared<std::string const>(std::move(bytes));
        std::lock_guard lock(registry_->mutex);
        repo(repository).blobs[d] = std::move(p);
    }

    /// Stores a manifest of `repository` under its sha256 digest, which it returns.
    /// `media_type` is served as the Content-Type, as given.
    digest add_manifest(std::string_view repository, std::string bytes, std::string media_type)
    {
        digest d = digest_of<sha256_hasher>(bytes);
        put_manifest(repository, d, std::move(bytes), std::move(media_type));
        return d;
    }

    /// Stores a manifest under `d`, whether or not the bytes hash to it.
    void put_manifest(std::string_view repository, digest const& d, std::string bytes, std::string media_type)
    {
        auto p = std::make_shared<std::string const>(std::move(bytes));
        std::lock_guard lock(registry_->mutex);
        repo(repository).manifests[d] = {std::move(p), std::move(media_type)};
    }

    /// Points `tag` of `repository` at manifest `d` (which need not exist: a dangling tag is not_found).
    void tag(std::string_view repository, std::string_view tag, digest const& d)
    {
        std::lock_guard lock(registry_->mutex);
        repo(repository).tags.insert_or_assign(std::string(tag), d);
    }

    // --- *Transport* ----------------------------------------------------------------------------

    /// GET the manifest `ref.reference_for_fetch()` of `ref.repository()`; see the class comment.
    fetched_manifest fetch_manifest(image_reference const& ref, std::span<std::string_view const> accept,
                                    error_code& ec, std::string* why = nullptr)
    {
        fetched_manifest out;
        memory_transport_detail::stored_manifest m;
        digest d;
        memory_transport_detail::effects e;
        if (!find_manifest(request_kind::fetch_manifest, ref, accept, ec, why, m, d, e)) return out;
        std::string bytes = *m.bytes;
        if (e.read_delay.count() > 0) std::this_thread::sleep_for(e.read_delay);
        if (e.truncate_after && *e.truncate_after < bytes.size()) bytes.resize(static_cast<std::size_t>(*e.truncate_after));
        memory_transport_detail::corrupt(std::as_writable_bytes(std::span(bytes.data(), bytes.size())), 0,
                                         e.corrupt_at);
        {
            std::lock_guard lock(registry_->mutex);
            registry_->served[d] += bytes.size();
        }
        out.bytes = std::move(bytes);
        out.media_type = std::move(m.media_type);
        out.server_digest = std::move(d);
        return out;
    }

    /// HEAD the manifest `ref.reference_for_fetch()`: its stored digest, media type and size.
    resolved_manifest resolve(image_reference const& ref, std::span<std::string_view const> accept, error_code& ec,
                              std::string* why = nullptr)
    {
        resolved_manifest out;
        memory_transport_detail::stored_manifest m;
        digest d;
        memory_transport_detail::effects e;
        if (!find_manifest(request_kind::resolve, ref, accept, ec, why, m, d, e)) return out;
        out.manifest_digest = std::move(d);
        out.media_type = std::move(m.media_type);
        out.size = m.bytes->size();
        return out;
    }

    /// GET blob `d` of `ref.repository()` from `offset`; see the class comment.
    blob_reader open_blob(image_reference const& ref, digest const& d, std::uint64_t offset, error_code& ec,
                          std::string* why = nullptr)
    {
        using memory_transport_detail::in_quotes;
        ec.clear();
        blob_reader r;
        std::unique_lock lock(registry_->mutex);
        memory_transport_detail::effects e = begin(request_kind::open_blob, ref.repository(), d.str(), offset);
        if (e.fail) {
            injected_failure(ec, why, e);
            return r;
        }
        std::shared_ptr<std::string const> data;
        if (auto const* content = registry_->find(ref.repository())) {
            if (auto it = content->blobs.find(d); it != content->blobs.end()) data = it->second;
        }
        if (!data) {
            fail_locked(ec, why, error::not_found,
                        "repository " + in_quotes(ref.repository()) + " has no blob " + d.str());
            return r;
        }
        std::uint64_t const size = data->size();
        if (offset > size) {
            fail_locked(ec, why, error::invalid_argument,
                        "offset " + std::to_string(offset) + " is beyond the end of blob " + d.str() + " (" +
                            std::to_string(size) + " bytes)");
            return r;
        }
        lock.unlock();
        r.data_ = std::move(data);
        r.registry_ = registry_;
        r.digest_ = d;
        r.offset_ = e.ignore_range ? 0 : offset;
        r.pos_ = r.offset_;
        r.size_ = size;
        r.end_ = size;
        if (e.truncate_after && *e.truncate_after < size - r.offset_) {
            r.end_ = r.offset_ + *e.truncate_after;
            r.cut_ = true;
            r.mode_ = e.truncate_mode;
        }
        r.corrupt_at_ = std::move(e.corrupt_at);
        r.delay_ = e.read_delay;
        return r;
    }

    // --- faults --------------------------------------------------------------------------------

    /// Adds a fault; see fault.
    void inject(fault f)
    {
        std::lock_guard lock(registry_->mutex);
        registry_->faults.push_back({std::move(f), 0});
    }

    /// Makes the `n`-th request from now (1-based) of `kind` (any kind when empty) fail with `code`.
    void fail_nth(std::uint64_t n, error_code code, std::optional<request_kind> kind = std::nullopt)
    {
        fault f;
        f.kind = kind;
        f.skip = n == 0 ? 0 : n - 1;
        f.fail = code;
        inject(std::move(f));
    }

    /// Makes the next `times` requests of `kind` (any when empty) fail with error::rate_limited and `retry_after`.
    void rate_limit(std::chrono::seconds retry_after, std::uint64_t times = 1,
                    std::optional<request_kind> kind = std::nullopt)
    {
        fault f;
        f.kind = kind;
        f.times = times;
        f.fail = make_error_code(error::rate_limited);
        f.retry_after = retry_after;
        inject(std::move(f));
    }

    /// Removes every fault.
    void clear_faults()
    {
        std::lock_guard lock(registry_->mutex);
        registry_->faults.clear();
    }

    // --- counters ------------------------------------------------------------------------------

    /// Requests of `kind` so far (failed ones included).
    std::uint64_t requests(request_kind kind) const
    {
        std::lock_guard lock(registry_->mutex);
        return static_cast<std::uint64_t>(std::count_if(registry_->log.begin(), registry_->log.end(),
                                                        [&](request_record const& r) { return r.kind == kind; }));
    }
    /// All requests so far.
    std::uint64_t requests() const
    {
        std::lock_guard lock(registry_->mutex);
        return registry_->log.size();
    }
    /// Every request so far, in order.
    std::vector<request_record> request_log() const
    {
        std::lock_guard lock(registry_->mutex);
        return registry_->log;
    }
    /// Content bytes of `d` handed out so far (blob reads and manifest bodies, all repositories).
    std::uint64_t bytes_served(digest const& d) const
    {
        std::lock_guard lock(registry_->mutex);
        auto it = registry_->served.find(d);
        return it == registry_->served.end() ? 0 : it->second;
    }
    /// The offsets asked for by every open_blob of `d` so far, in order ("did the resume send a Range?").
    std::vector<std::uint64_t> blob_offsets(digest const& d) const
    {
        std::lock_guard lock(registry_->mutex);
        std::vector<std::uint64_t> out;
        for (request_record const& r : registry_->log)
            if (r.kind == request_kind::open_blob && r.target == d.str()) out.push_back(r.offset);
        return out;
    }
    /// The Retry-After hint of the most recent injected failure that had one.
    std::optional<std::chrono::seconds> last_retry_after() const
    {
        std::lock_guard lock(registry_->mutex);
        return registry_->last_retry_after;
    }
    /// Forgets the request log, bytes served and retry hint (faults and their progress stay).
    void reset_counters()
    {
        std::lock_guard lock(registry_->mutex);
        registry_->log.clear();
        registry_->served.clear();
        registry_->last_retry_after.reset();
    }

private:
    /// Precondition: mutex held.
    memory_transport_detail::repository_content& repo(std::string_view name)
    {
        auto it = registry_->repositories.find(name);
        if (it == registry_->repositories.end()) it = registry_->repositories.emplace(std::string(name), memory_transport_detail::repository_content{}).first;
        return it->second;
    }

    /// Precondition: mutex held. Logs the request and applies the faults.
    memory_transport_detail::effects begin(request_kind kind, std::string const& repository, std::string target,
                                           std::uint64_t offset)
    {
        memory_transport_detail::effects e = registry_->hit(kind, repository, target);
        registry_->log.push_back({kind, repository, std::move(target), offset, {}, {}});
        return e;
    }

    /// Precondition: mutex held. Fails the request just logged.
    void fail_locked(error_code& ec, std::string* why, error_code code, std::string msg,
                     std::optional<std::chrono::seconds> retry_after = std::nullopt)
    {
        ec = code;
        if (why) *why = std::move(msg);
        registry_->log.back().result = code;
        registry_->log.back().retry_after = retry_after;
        if (retry_after) registry_->last_retry_after = retry_after;
    }
    void fail_locked(error_code& ec, std::string* why, error e, std::string msg)
    {
        fail_locked(ec, why, make_error_code(e), std::move(msg));
    }

    /// Precondition: mutex held.
    void injected_failure(error_code& ec, std::string* why, memory_transport_detail::effects const& e)
    {
        std::string msg = "injected fault: " + e.fail.message();
        if (e.retry_after) msg += " (retry after " + std::to_string(e.retry_after->count()) + " s)";
        fail_locked(ec, why, e.fail, std::move(msg), e.retry_after);
    }

    /// The lookup shared by fetch_manifest and resolve.
    bool find_manifest(request_kind kind, image_reference const& ref, std::span<std::string_view const> accept,
                       error_code& ec, std::string* why, memory_transport_detail::stored_manifest& m, digest& d,
                       memory_transport_detail::effects& e)
    {
        using memory_transport_detail::in_quotes;
        ec.clear();
        std::string const target = ref.reference_for_fetch();
        std::lock_guard lock(registry_->mutex);
        e = begin(kind, ref.repository(), target, 0);
        if (e.fail) return injected_failure(ec, why, e), false;
        auto const* content = registry_->find(ref.repository());
        if (!content) return fail_locked(ec, why, error::not_found, "no repository " + in_quotes(ref.repository())), false;
        if (ref.digest()) {
            d = *ref.digest();
        } else {
            auto t = content->tags.find(target);
            if (t == content->tags.end())
                return fail_locked(ec, why, error::not_found,
                                   "repository " + in_quotes(ref.repository()) + " has no tag " + in_quotes(target)),
                       false;
            d = t->second;
        }
        auto it = content->manifests.find(d);
        if (it == content->manifests.end())
            return fail_locked(ec, why, error::not_found,
                               "repository " + in_quotes(ref.repository()) + " has no manifest " + d.str()),
                   false;
        if (!detail::media_type_accepted(it->second.media_type, accept))
            return fail_locked(ec, why, error::not_found,
                               "manifest " + d.str() + " is " + it->second.media_type +
                                   ", which the Accept list does not include (" + detail::join_accept(accept) + ")"),
                   false;
        std::size_t const size = it->second.bytes->size();
        if (kind == request_kind::fetch_manifest && size > max_manifest_size)
            return fail_locked(ec, why, error::too_large,
                               "manifest " + d.str() + " is " + std::to_string(size) +
                                   " bytes, more than the limit of " + std::to_string(max_manifest_size)),
                   false;
        if (kind == request_kind::fetch_manifest && e.truncate_after && *e.truncate_after < size &&
            e.truncate_mode == truncation::reset)
            return fail_locked(ec, why, error::connection_failed,
                               "injected fault: connection closed after " + std::to_string(*e.truncate_after) +
                                   " of " + std::to_string(size) + " bytes"),
                   false;
        m = it->second;
        return true;
    }

    std::shared_ptr<memory_transport_detail::registry> registry_;
};

static_assert(blob_source<memory_transport::blob_reader>);
static_assert(transport<memory_transport>);

} // namespace ocistore::test
