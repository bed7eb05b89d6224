// ocistore/byte_source_ref.hpp: a non-owning, type-erased reference to any *ByteSource*.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>

namespace ocistore {
namespace detail {

/** The requirement of `ocistore::byte_source`, restated here because <ocistore/concepts.hpp>
    includes this header (its *ArtifactBuilder* concept names byte_source_ref). */
template <class S>
concept byte_source_like = requires(S& s, std::span<std::byte> buffer, error_code& ec) {
    { s.read_some(buffer, ec) } -> std::same_as<std::size_t>;
};

} // namespace detail

/** A reference to a *ByteSource* of any type: one object pointer and one function pointer.

    It lets a non-template interface (an artifact builder's layer sink, for one) read from
    whatever source the caller has (a tar reader, a hashing tee, a test buffer) without
    templates or allocation. It models *ByteSource* itself and forwards `read_some` to the
    referenced object, whose lifetime it does not extend: like `std::string_view`, it must
    not outlive the source. It binds to lvalues only.

    A default-constructed reference is an empty stream: `read_some` returns 0 with `ec` clear.

    @code
    basic_tar_reader reader(source);
    while (reader.next(entry, ec)) sink.add_entry(entry, reader, ec); // reader binds here
    @endcode
*/
class byte_source_ref {
public:
    /// An empty stream.
    byte_source_ref() noexcept = default;

    /// Refers to `source` (not copied). A `const` source works when its `read_some` is `const`.
    template <class S>
        requires(!std::same_as<std::remove_cv_t<S>, byte_source_ref> && detail::byte_source_like<S>)
    byte_source_ref(S& source) noexcept // NOLINT(google-explicit-constructor): a view, like std::span
        : object_(const_cast<void*>(static_cast<void const*>(std::addressof(source)))),
          read_(&forward_read<S>)
    {
    }

    /// Forwards to the referenced source; on an empty reference returns 0 with `ec` clear.
    std::size_t read_some(std::span<std::byte> buffer, error_code& ec)
    {
        if (!read_) {
            ec.clear();
            return 0;
        }
        return read_(object_, buffer, ec);
    }

    /// Whether this refers to a source (false for a default-constructed reference).
    bool has_source() const noexcept { return read_ != nullptr; }

private:
    template <class S> static std::size_t forward_read(void* object, std::span<std::byte> buffer, error_code& ec)
    {
        return static_cast<S*>(object)->read_some(buffer, ec);
    }

    void* object_ = nullptr;
    std::size_t (*read_)(void*, std::span<std::byte>, error_code&) = nullptr;
};

} // namespace ocistore
