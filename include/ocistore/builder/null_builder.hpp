// ocistore/builder/null_builder.hpp: the *ArtifactBuilder* that builds nothing (blobs only, like `skopeo copy`).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/builder_types.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/store_types.hpp>
#include <ocistore/tar_entry.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore {

/** An *ArtifactBuilder* that produces no artifacts: a store using it keeps the verified blobs
    and nothing else, like `skopeo copy` into an OCI layout.

    * Its sinks read every entry's data to the end and discard it, so every byte of the layer
      still passes through the store's hashers, and count entries and bytes.
    * It holds nothing, so `has_layer` is always false and `layer` and `image` are always
      empty: it never vouches for a layer and so never makes the store skip a download. Whether
      a blob already in `blobs/` is enough is the store's decision, not the builder's.
    * `commit_layer` and `compose` succeed and return what was counted; nothing is written.

    Stateless: every member function may be called concurrently. See
    docs/concepts/artifact_builder.md.
*/
class null_builder {
public:
    static constexpr std::string_view kind = "none";

    /// A finished layer: what its sink counted.
    struct prepared_layer {
        digest diff_id;
        std::uint64_t entries = 0; ///< entries received
        std::uint64_t bytes = 0;   ///< content bytes read and discarded
    };

    /// What commit_layer returns: the counts of the prepared layer.
    struct layer_result {
        digest diff_id;
        std::uint64_t entries = 0;
        std::uint64_t bytes = 0;

        friend bool operator==(layer_result const&, layer_result const&) = default;
    };

    /// What compose returns: the key and the layers it was given, bottom first.
    struct image_result {
        digest key;
        std::vector<digest> layers;
    };

    /// Reads and discards entry data; counts entries and bytes.
    class layer_sink {
    public:
        explicit layer_sink(digest diff_id) : prepared_{std::move(diff_id), 0, 0} {}

        /** Counts `entry` and reads `data` to its end. Fails with the source's error if reading
            does, or with `error::invalid_argument` after finish(); the failure is sticky. */
        void add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec)
        {
            static_cast<void>(entry);
            if (!usable(ec)) return;
            std::array<std::byte, 16 * 1024> buffer;
            for (;;) {
                std::size_t const n = data.read_some(buffer, ec);
                if (ec) {
                    failed_ = ec;
                    return;
                }
                if (n == 0) break;
                prepared_.bytes += n;
            }
            ++prepared_.entries;
        }

        /// @throws system_error on failure.
        void add_entry(tar_entry const& entry, byte_source_ref data)
        {
            error_code ec;
            add_entry(entry, data, ec);
            detail::throw_if(ec, "null_builder: add_entry");
        }

        /// The counts; the sink is spent afterwards.
        prepared_layer finish(error_code& ec)
        {
            if (!usable(ec)) return prepared_layer{prepared_.diff_id, 0, 0};
            finished_ = true;
            return prepared_;
        }
        /// @throws system_error on failure.
        prepared_layer finish()
        {
            error_code ec;
            auto p = finish(ec);
            detail::throw_if(ec, "null_builder: finish");
            return p;
        }

    private:
        bool usable(error_code& ec)
        {
            if (failed_) {
                ec = failed_;
                return false;
            }
            if (finished_) {
                ec = make_error_code(error::invalid_argument);
                return false;
            }
            ec.clear();
            return true;
        }

        prepared_layer prepared_;
        error_code failed_;
        bool finished_ = false;
    };

    /// No files: a null builder publishes nothing.
    std::vector<std::filesystem::path> artifact_paths(layer_result const&) const { return {}; }
    /// No files.
    std::vector<std::filesystem::path> artifact_paths(image_result const&) const { return {}; }

    /// "null_builder/1": there are no options.
    std::string_view identity() const noexcept { return "null_builder/1"; }

    layer_sink begin_layer(layer_info const& info, error_code& ec)
    {
        ec.clear();
        return layer_sink(info.diff_id);
    }

    /// Returns the counts; publishes nothing.
    layer_result commit_layer(prepared_layer&& prepared, error_code& ec)
    {
        ec.clear();
        return layer_result{std::move(prepared.diff_id), prepared.entries, prepared.bytes};
    }

    /// Always false: a null builder holds no layer.
    bool has_layer(digest const&, error_code& ec)
    {
        ec.clear();
        return false;
    }

    /// Always empty.
    std::optional<layer_result> layer(digest const&, error_code& ec)
    {
        ec.clear();
        return std::nullopt;
    }

    /// Records the key and the layer order; writes nothing.
    image_result compose(digest const& key, std::span<layer_result const> layers, error_code& ec)
    {
        ec.clear();
        image_result r{key, {}};
        r.layers.reserve(layers.size());
        for (auto const& l : layers) r.layers.push_back(l.diff_id);
        return r;
    }

    /// Always empty.
    std::optional<image_result> image(digest const&, error_code& ec)
    {
        ec.clear();
        return std::nullopt;
    }

    /// Nothing to check (models verifiable_artifact_builder): a null builder holds no artifact.
    artifact_check verify_layer(digest const&, layer_replay const&, error_code& ec)
    {
        ec.clear();
        return {};
    }
    /// Nothing to check.
    artifact_check verify_image(digest const&, std::span<verified_layer const>, error_code& ec)
    {
        ec.clear();
        return {};
    }

    // Throwing overloads. Only add_entry() and finish() can fail, so these never throw.
    layer_sink begin_layer(layer_info const& info) { return layer_sink(info.diff_id); }
    layer_result commit_layer(prepared_layer&& prepared)
    {
        error_code ec;
        return commit_layer(std::move(prepared), ec);
    }
    bool has_layer(digest const&) const noexcept { return false; }
    std::optional<layer_result> layer(digest const&) const { return std::nullopt; }
    image_result compose(digest const& key, std::span<layer_result const> layers)
    {
        error_code ec;
        return compose(key, layers, ec);
    }
    std::optional<image_result> image(digest const&) const { return std::nullopt; }
};

} // namespace ocistore
