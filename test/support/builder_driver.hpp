// Test support: plays the store's part for an *ArtifactBuilder*. Streams a tar archive from a
// memory_source through basic_tar_reader into a layer sink, finishes it, "verifies" it (here:
// the caller decides), commits it, and composes images; plus the diff_id of an archive.
#pragma once

#include <ocistore/concepts.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/tar_reader.hpp>

#include <support/memory_source.hpp>

#include <cstddef>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore_test {

/// The diff_id of an uncompressed layer: sha256 of the whole archive.
inline ocistore::digest diff_id_of(std::string_view tar) { return ocistore::digest_of<ocistore::sha256_hasher>(tar); }

/** Streams `tar` through a new sink of `b` for `info`, as the store does: every entry with the
    reader itself as its data source, then drain() and finish(). Returns the prepared layer, or
    nothing with `ec` (and `*why`, when the sink reports reasons) set. `chunk` bounds each
    read of the memory source. */
template <ocistore::artifact_builder B>
std::optional<typename B::prepared_layer> feed_layer(B& b, ocistore::layer_info const& info, std::string_view tar,
                                                     ocistore::error_code& ec, std::string* why = nullptr,
                                                     std::size_t chunk = std::numeric_limits<std::size_t>::max())
{
    memory_source source(tar, chunk);
    ocistore::basic_tar_reader<memory_source> reader(source);
    typename B::layer_sink sink = b.begin_layer(info, ec);
    if (ec) return std::nullopt;
    ocistore::tar_entry entry;
    while (reader.next(entry, ec, why)) {
        if constexpr (requires { sink.add_entry(entry, reader, ec, why); })
            sink.add_entry(entry, reader, ec, why);
        else
            sink.add_entry(entry, reader, ec);
        if (ec) return std::nullopt;
    }
    if (ec) return std::nullopt;
    reader.drain(ec, why);
    if (ec) return std::nullopt;
    typename B::prepared_layer prepared = [&] {
        if constexpr (requires { sink.finish(ec, why); })
            return sink.finish(ec, why);
        else
            return sink.finish(ec);
    }();
    if (ec) return std::nullopt;
    return std::optional<typename B::prepared_layer>(std::move(prepared));
}

/// feed_layer() then commit_layer(); throws std::runtime_error naming the failure.
template <ocistore::artifact_builder B>
typename B::layer_result build_layer(B& b, std::string_view tar, std::size_t index = 0)
{
    ocistore::error_code ec;
    std::string why;
    ocistore::layer_info info{diff_id_of(tar), index};
    auto prepared = feed_layer(b, info, tar, ec, &why);
    if (!prepared) throw std::runtime_error("feeding layer " + info.diff_id.str() + ": " + ec.message() + ": " + why);
    auto result = b.commit_layer(std::move(*prepared), ec);
    if (ec) throw std::runtime_error("committing layer " + info.diff_id.str() + ": " + ec.message());
    return result;
}

/** The store's whole job for one image: each layer built unless held (`skipped` counts the
    ones that were), then composed under `key`. Throws std::runtime_error on failure. */
template <ocistore::artifact_builder B>
typename B::image_result build_image(B& b, ocistore::digest const& key, std::vector<std::string> const& tars,
                                     std::size_t* skipped = nullptr)
{
    std::vector<typename B::layer_result> layers;
    ocistore::error_code ec;
    for (std::size_t i = 0; i < tars.size(); ++i) {
        ocistore::digest const id = diff_id_of(tars[i]);
        if (auto held = b.layer(id, ec)) {
            layers.push_back(std::move(*held));
            if (skipped) ++*skipped;
            continue;
        }
        if (ec) throw std::runtime_error("checking layer " + id.str() + ": " + ec.message());
        layers.push_back(build_layer(b, tars[i], i));
    }
    if constexpr (requires(std::string* why) { b.compose(key, std::span(std::as_const(layers)), ec, why); }) {
        std::string why;
        auto image = b.compose(key, std::span(std::as_const(layers)), ec, &why);
        if (ec) throw std::runtime_error("composing " + key.str() + ": " + ec.message() + ": " + why);
        return image;
    } else {
        auto image = b.compose(key, std::span(std::as_const(layers)), ec);
        if (ec) throw std::runtime_error("composing " + key.str() + ": " + ec.message());
        return image;
    }
}

} // namespace ocistore_test
