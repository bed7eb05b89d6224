// Test support: archetypes, one per policy concept of <ocistore/concepts.hpp>.
//
// An archetype models exactly its concept and nothing more (no default constructor unless
// required, no copies unless required, no const overloads, no conveniences), so generic code
// instantiated with it proves that it depends only on the documented requirements. Each
// archetype also behaves sensibly, so the concept's conformance suite can run over it.
// One section per concept; keep them in the order of concepts.hpp.
#pragma once

#include <ocistore/builder_types.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/detail/lock_key.hpp>
#include <ocistore/error.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/tar_entry.hpp>
#include <ocistore/transport_types.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore_test {

/// Constructor argument of archetypes that must not be default-constructible.
struct archetype_tag {
    explicit archetype_tag() = default;
};

// ---------------------------------------------------------------------------------------------
// *ByteSource*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::byte_source` and nothing more: neither copyable nor movable, only
    `read_some`. Serves the bytes it was given, at most 7 per call to exercise callers'
    short-read handling. */
class byte_source_archetype {
public:
    explicit byte_source_archetype(std::span<std::byte const> data) : data_(data) {}
    byte_source_archetype(byte_source_archetype const&) = delete;
    byte_source_archetype& operator=(byte_source_archetype const&) = delete;

    std::size_t read_some(std::span<std::byte> buffer, ocistore::error_code& ec)
    {
        ec.clear();
        std::size_t const n = std::min({buffer.size(), data_.size(), std::size_t{7}});
        if (n) std::memcpy(buffer.data(), data_.data(), n);
        data_ = data_.subspan(n);
        return n;
    }

private:
    std::span<std::byte const> data_;
};

// ---------------------------------------------------------------------------------------------
// *BlobSource* and *Transport*
// ---------------------------------------------------------------------------------------------

/// What a transport_archetype serves: manifests by tag or digest string, blobs by digest.
struct transport_archetype_content {
    std::map<std::string, ocistore::fetched_manifest, std::less<>> manifests; ///< key: tag or "sha256:…"
    std::map<ocistore::digest, std::string> blobs;
};

/** Models `ocistore::transport` and nothing more: neither copyable nor movable (the concept
    asks for neither), not default-constructible, non-const members taking exactly the
    concept's arguments. Its `blob_reader` models `ocistore::blob_source` and nothing more:
    move-only, not default-constructible. Serves fixed content like a registry that ignores
    Accept: manifests by `ref.reference_for_fetch()` (over max_manifest_size: too_large),
    blobs from any offset up to their size (beyond: invalid_argument), unknown names:
    not_found. Immutable after construction, hence safe for concurrent calls. */
class transport_archetype {
public:
    class blob_reader {
    public:
        blob_reader(blob_reader&&) = default;
        blob_reader& operator=(blob_reader&&) = default;
        blob_reader(blob_reader const&) = delete;
        blob_reader& operator=(blob_reader const&) = delete;
        ~blob_reader() = default;

        std::size_t read_some(std::span<std::byte> buffer, ocistore::error_code& ec)
        {
            ec.clear();
            if (!data_) return ec = ocistore::make_error_code(ocistore::error::invalid_argument), 0;
            std::size_t const n = std::min(buffer.size(), data_->size() - pos_);
            if (n) std::memcpy(buffer.data(), data_->data() + pos_, n);
            pos_ += n;
            return n;
        }
        std::uint64_t offset() const { return offset_; }
        std::optional<std::uint64_t> size() const
        {
            return data_ ? std::optional<std::uint64_t>(data_->size()) : std::nullopt;
        }

    private:
        friend class transport_archetype;
        blob_reader(std::shared_ptr<std::string const> data, std::size_t offset)
            : data_(std::move(data)), offset_(offset), pos_(offset)
        {
        }
        std::shared_ptr<std::string const> data_;
        std::uint64_t offset_ = 0;
        std::size_t pos_ = 0;
    };

    transport_archetype(archetype_tag, transport_archetype_content content)
        : content_(std::make_shared<transport_archetype_content const>(std::move(content)))
    {
    }
    transport_archetype(transport_archetype const&) = delete;
    transport_archetype& operator=(transport_archetype const&) = delete;

    ocistore::fetched_manifest fetch_manifest(ocistore::image_reference const& ref, std::span<std::string_view const>,
                                              ocistore::error_code& ec)
    {
        ec.clear();
        auto it = content_->manifests.find(ref.reference_for_fetch());
        if (it == content_->manifests.end()) return ec = ocistore::make_error_code(ocistore::error::not_found), ocistore::fetched_manifest{};
        if (it->second.bytes.size() > ocistore::max_manifest_size)
            return ec = ocistore::make_error_code(ocistore::error::too_large), ocistore::fetched_manifest{};
        return it->second;
    }

    ocistore::resolved_manifest resolve(ocistore::image_reference const& ref, std::span<std::string_view const>,
                                        ocistore::error_code& ec)
    {
        ec.clear();
        auto it = content_->manifests.find(ref.reference_for_fetch());
        if (it == content_->manifests.end()) return ec = ocistore::make_error_code(ocistore::error::not_found), ocistore::resolved_manifest{};
        return {it->second.server_digest.value_or(ocistore::digest{}), it->second.media_type, it->second.bytes.size()};
    }

    blob_reader open_blob(ocistore::image_reference const&, ocistore::digest const& d, std::uint64_t offset,
                          ocistore::error_code& ec)
    {
        ec.clear();
        auto it = content_->blobs.find(d);
        if (it == content_->blobs.end()) return ec = ocistore::make_error_code(ocistore::error::not_found), blob_reader({}, 0);
        if (offset > it->second.size()) return ec = ocistore::make_error_code(ocistore::error::invalid_argument), blob_reader({}, 0);
        return blob_reader(std::shared_ptr<std::string const>(content_, &it->second), static_cast<std::size_t>(offset));
    }

private:
    std::shared_ptr<transport_archetype_content const> content_;
};

// ---------------------------------------------------------------------------------------------
// *Hasher*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::hasher` and nothing more: default-constructible and move-only, with the
    four required members. Computes SHA-256 so the conformance suite can run over it. */
class hasher_archetype {
public:
    static constexpr std::string_view algorithm = "sha256";
    static constexpr std::size_t digest_size = 32;

    hasher_archetype() = default;
    hasher_archetype(hasher_archetype&&) = default;
    hasher_archetype& operator=(hasher_archetype&&) = default;
    hasher_archetype(hasher_archetype const&) = delete;
    hasher_archetype& operator=(hasher_archetype const&) = delete;

    void update(std::span<std::byte const> bytes) { impl_.update(bytes); }
    std::array<std::byte, digest_size> finish() { return impl_.finish(); }

private:
    ocistore::sha256_hasher impl_;
};

// ---------------------------------------------------------------------------------------------
// *StoreLock* and *TryStoreLock*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::try_store_lock` and nothing more: movable but neither copyable nor
    default-constructible; acquire/try_acquire are non-const and take exactly
    `(std::string_view, lock_mode, error_code&)`; the guard has only what the concept lists
    (no `operator bool`, no native handle). Like `null_lock`, it never blocks and excludes
    nobody, but validates keys. */
class store_lock_archetype {
public:
    class guard {
    public:
        guard() = default;
        guard(guard&& other) noexcept : owns_(std::exchange(other.owns_, false)) {}
        guard& operator=(guard&& other) noexcept
        {
            owns_ = std::exchange(other.owns_, false);
            return *this;
        }
        guard(guard const&) = delete;
        guard& operator=(guard const&) = delete;
        ~guard() = default;

        bool owns_lock() const { return owns_; }
        void unlock() { owns_ = false; }

    private:
        friend class store_lock_archetype;
        explicit guard(bool owns) : owns_(owns) {}
        bool owns_ = false;
    };

    explicit store_lock_archetype(archetype_tag) {}
    store_lock_archetype(store_lock_archetype&&) = default;
    store_lock_archetype& operator=(store_lock_archetype&&) = default;
    store_lock_archetype(store_lock_archetype const&) = delete;
    store_lock_archetype& operator=(store_lock_archetype const&) = delete;
    ~store_lock_archetype() = default;

    guard acquire(std::string_view key, ocistore::lock_mode, ocistore::error_code& ec)
    {
        return guard(ocistore::detail::validate_lock_key(key, ec));
    }

    std::optional<guard> try_acquire(std::string_view key, ocistore::lock_mode mode, ocistore::error_code& ec)
    {
        guard g = acquire(key, mode, ec);
        if (!g.owns_lock()) return std::nullopt;
        return std::optional<guard>(std::move(g));
    }
};


// ---------------------------------------------------------------------------------------------
// *ArtifactBuilder*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::artifact_builder` and nothing more: movable but neither copyable nor
    default-constructible; the sink, the prepared layer and the image result are move-only; the
    layer result is copyable but not default-constructible; only identity() is const; no
    throwing overloads, no `why` parameters.

    It behaves like a real builder, in memory: a layer is the map path -> content of its
    entries (regular files by content, other types as "<type>"), plus its whiteouts and opaque
    directories; compose() applies them bottom to top with OCI semantics. Artifacts live in a
    registry shared by every archetype made for the same `root` and are tagged with the
    identity, so a second builder over the same root sees them and one with other options does
    not. archetype_temporaries(root) counts sinks and prepared layers alive (the
    "temporaries"), so discarding can be checked. */
inline std::size_t archetype_temporaries(std::filesystem::path const& root);

class artifact_builder_archetype {
    using files_map = std::map<std::string, std::string>;
    struct layer_data {
        std::string identity;
        files_map files;
        std::vector<std::string> whiteouts;
        std::vector<std::string> opaques;
    };
    struct image_data {
        std::string identity;
        std::shared_ptr<files_map const> files;
        std::vector<ocistore::digest> layers;
    };
    struct store {
        std::mutex mutex;
        std::map<ocistore::digest, layer_data> layers;
        std::map<ocistore::digest, image_data> images;
        std::size_t temporaries = 0;
    };

    static std::shared_ptr<store> store_for(std::filesystem::path const& root)
    {
        static std::mutex m;
        static std::map<std::string, std::shared_ptr<store>> registry;
        std::lock_guard lock(m);
        auto& s = registry[root.string()];
        if (!s) s = std::make_shared<store>();
        return s;
    }
    friend std::size_t archetype_temporaries(std::filesystem::path const& root);

public:
    static constexpr std::string_view kind = "archetype";

    class layer_sink;

    class layer_result {
    public:
        layer_result(layer_result const&) = default;
        layer_result(layer_result&&) = default;
        layer_result& operator=(layer_result const&) = default;
        layer_result& operator=(layer_result&&) = default;
        ~layer_result() = default;
        ocistore::digest const& diff_id() const { return diff_id_; }

    private:
        friend class artifact_builder_archetype;
        explicit layer_result(ocistore::digest d) : diff_id_(std::move(d)) {}
        ocistore::digest diff_id_;
    };

    class image_result {
    public:
        image_result(image_result&&) = default;
        image_result& operator=(image_result&&) = default;
        image_result(image_result const&) = delete;
        image_result& operator=(image_result const&) = delete;
        ~image_result() = default;
        /// The content of `path` in the composed tree, if it is there.
        std::optional<std::string> file(std::string const& path) const
        {
            auto it = files_->find(path);
            if (it == files_->end()) return std::nullopt;
            return it->second;
        }

    private:
        friend class artifact_builder_archetype;
        explicit image_result(std::shared_ptr<files_map const> f) : files_(std::move(f)) {}
        std::shared_ptr<files_map const> files_;
    };

    class prepared_layer {
    public:
        prepared_layer(prepared_layer&& o) noexcept
            : store_(std::exchange(o.store_, nullptr)), diff_id_(std::move(o.diff_id_)), data_(std::move(o.data_))
        {
        }
        prepared_layer& operator=(prepared_layer&& o) noexcept
        {
            if (this != &o) {
                release();
                store_ = std::exchange(o.store_, nullptr);
                diff_id_ = std::move(o.diff_id_);
                data_ = std::move(o.data_);
            }
            return *this;
        }
        prepared_layer(prepared_layer const&) = delete;
        prepared_layer& operator=(prepared_layer const&) = delete;
        ~prepared_layer() { release(); }

    private:
        friend class artifact_builder_archetype;
        friend class layer_sink;
        prepared_layer(std::shared_ptr<store> s, ocistore::digest d, layer_data data)
            : store_(std::move(s)), diff_id_(std::move(d)), data_(std::move(data))
        {
        }
        void release() noexcept
        {
            if (!store_) return;
            std::lock_guard lock(store_->mutex);
            --store_->temporaries;
            store_ = nullptr;
        }
        std::shared_ptr<store> store_; ///< null when empty
        ocistore::digest diff_id_;
        layer_data data_;
    };

    class layer_sink {
    public:
        layer_sink(layer_sink&& o) noexcept
            : store_(std::exchange(o.store_, nullptr)), diff_id_(std::move(o.diff_id_)), data_(std::move(o.data_)),
              failed_(o.failed_)
        {
        }
        layer_sink& operator=(layer_sink&& o) noexcept
        {
            if (this != &o) {
                release();
                store_ = std::exchange(o.store_, nullptr);
                diff_id_ = std::move(o.diff_id_);
                data_ = std::move(o.data_);
                failed_ = o.failed_;
            }
            return *this;
        }
        layer_sink(layer_sink const&) = delete;
        layer_sink& operator=(layer_sink const&) = delete;
        ~layer_sink() { release(); }

        void add_entry(ocistore::tar_entry const& entry, ocistore::byte_source_ref data, ocistore::error_code& ec)
        {
            if (!usable(ec)) return;
            std::string content = "<" + std::string(ocistore::to_string(entry.type)) + ">";
            if (entry.type == ocistore::entry_type::regular) {
                content.clear();
                std::array<std::byte, 512> buf;
                for (;;) {
                    std::size_t const n = data.read_some(buf, ec);
                    if (ec) {
                        failed_ = ec;
                        return;
                    }
                    if (n == 0) break;
                    content.append(reinterpret_cast<char const*>(buf.data()), n);
                }
            }
            std::size_t const slash = entry.path.rfind('/');
            std::string const parent = slash == std::string::npos ? std::string() : entry.path.substr(0, slash);
            std::string const name = slash == std::string::npos ? entry.path : entry.path.substr(slash + 1);
            if (name == ".wh..wh..opq")
                data_.opaques.push_back(parent);
            else if (name.compare(0, 4, ".wh.") == 0)
                data_.whiteouts.push_back(parent.empty() ? name.substr(4) : parent + "/" + name.substr(4));
            else
                data_.files[entry.path] = std::move(content);
        }

        prepared_layer finish(ocistore::error_code& ec)
        {
            if (!usable(ec)) return prepared_layer(nullptr, diff_id_, {});
            // The sink's temporary becomes the prepared layer's.
            return prepared_layer(std::exchange(store_, nullptr), diff_id_, std::move(data_));
        }

    private:
        friend class artifact_builder_archetype;
        layer_sink(std::shared_ptr<store> s, ocistore::digest d, std::string identity)
            : store_(std::move(s)), diff_id_(std::move(d))
        {
            data_.identity = std::move(identity);
            std::lock_guard lock(store_->mutex);
            ++store_->temporaries;
        }
        bool usable(ocistore::error_code& ec)
        {
            if (failed_) {
                ec = failed_;
                return false;
            }
            if (!store_) {
                ec = make_error_code(ocistore::error::invalid_argument);
                return false;
            }
            ec.clear();
            return true;
        }
        void release() noexcept
        {
            if (!store_) return;
            std::lock_guard lock(store_->mutex);
            --store_->temporaries;
            store_ = nullptr;
        }
        std::shared_ptr<store> store_; ///< null once finished
        ocistore::digest diff_id_;
        layer_data data_;
        ocistore::error_code failed_;
    };

    artifact_builder_archetype(archetype_tag, std::filesystem::path const& root, std::string options = {})
        : store_(store_for(root)), identity_("archetype/1" + (options.empty() ? std::string() : " " + options))
    {
    }
    artifact_builder_archetype(artifact_builder_archetype&&) = default;
    artifact_builder_archetype& operator=(artifact_builder_archetype&&) = default;
    artifact_builder_archetype(artifact_builder_archetype const&) = delete;
    artifact_builder_archetype& operator=(artifact_builder_archetype const&) = delete;
    ~artifact_builder_archetype() = default;

    std::string_view identity() const { return identity_; }

    layer_sink begin_layer(ocistore::layer_info const& info, ocistore::error_code& ec)
    {
        ec.clear();
        return layer_sink(store_, info.diff_id, identity_);
    }

    layer_result commit_layer(prepared_layer&& prepared, ocistore::error_code& ec)
    {
        if (!prepared.store_) {
            ec = make_error_code(ocistore::error::invalid_argument);
            return layer_result(prepared.diff_id_);
        }
        ec.clear();
        prepared_layer p = std::move(prepared);
        std::lock_guard lock(store_->mutex);
        auto& slot = store_->layers[p.diff_id_];
        if (slot.identity != identity_) slot = std::move(p.data_); // a held one wins; others are replaced
        return layer_result(p.diff_id_);
    }

    bool has_layer(ocistore::digest const& diff_id, ocistore::error_code& ec) { return layer(diff_id, ec).has_value(); }

    std::optional<layer_result> layer(ocistore::digest const& diff_id, ocistore::error_code& ec)
    {
        ec.clear();
        std::lock_guard lock(store_->mutex);
        auto it = store_->layers.find(diff_id);
        if (it == store_->layers.end() || it->second.identity != identity_) return std::nullopt;
        return layer_result(diff_id);
    }

    image_result compose(ocistore::digest const& key, std::span<layer_result const> layers, ocistore::error_code& ec)
    {
        auto merged = std::make_shared<files_map>();
        std::vector<ocistore::digest> ids;
        std::lock_guard lock(store_->mutex);
        for (auto const& l : layers) {
            auto it = store_->layers.find(l.diff_id_);
            if (it == store_->layers.end() || it->second.identity != identity_) {
                ec = make_error_code(ocistore::error::not_found);
                return image_result(std::make_shared<files_map const>());
            }
            layer_data const& d = it->second;
            auto erase_below = [&](std::string const& dir) {
                for (auto m = merged->begin(); m != merged->end();)
                    m = dir.empty() || m->first.compare(0, dir.size() + 1, dir + "/") == 0 ? merged->erase(m) : std::next(m);
            };
            for (auto const& o : d.opaques) erase_below(o);
            for (auto const& w : d.whiteouts) {
                merged->erase(w);
                erase_below(w);
            }
            for (auto const& [path, content] : d.files) (*merged)[path] = content;
            ids.push_back(l.diff_id_);
        }
        ec.clear();
        store_->images[key] = image_data{identity_, merged, std::move(ids)};
        return image_result(std::move(merged));
    }

    std::optional<image_result> image(ocistore::digest const& key, ocistore::error_code& ec)
    {
        ec.clear();
        std::lock_guard lock(store_->mutex);
        auto it = store_->images.find(key);
        if (it == store_->images.end() || it->second.identity != identity_) return std::nullopt;
        return image_result(it->second.files);
    }

private:
    std::shared_ptr<store> store_;
    std::string identity_;
};

/// Sinks and prepared layers of archetypes over `root` that are still alive.
inline std::size_t archetype_temporaries(std::filesystem::path const& root)
{
    auto s = artifact_builder_archetype::store_for(root);
    std::lock_guard lock(s->mutex);
    return s->temporaries;
}

} // namespace ocistore_test
