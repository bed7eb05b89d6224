// Fuzz target: image_reference::parse on arbitrary bytes.
//
// Invariants: a rejection is error::invalid_reference with a reason and an empty value; an
// accepted reference keeps the grammar's bounds and round-trips: parse(str()) and
// parse(familiar()) give the same str(), registry, repository and digest, and the tag str()
// implies; with_tag/with_digest/without_tag keep the other components.
#include <ocistore/reference.hpp>

#include <support/fuzz_check.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace {

using ocistore::error;
using ocistore::image_reference;
using ocistore_test::fuzz::describe;
using ocistore_test::fuzz::printable;

image_reference reparse(std::string const& text, char const* what)
{
    ocistore::error_code ec;
    std::string why;
    image_reference r = image_reference::parse(text, ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, std::string(what) + " " + printable(text) + " rejected: " + why);
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const text = ocistore_test::fuzz::as_text(data, size);
    ocistore::error_code ec;
    std::string why;
    image_reference const r = image_reference::parse(text, ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(ec == error::invalid_reference, describe(ec));
        OCISTORE_FUZZ_CHECK(!why.empty(), "no reason for rejecting " + printable(text));
        OCISTORE_FUZZ_CHECK(r.empty(), "a rejected reference is not empty");
        return 0;
    }
    OCISTORE_FUZZ_CHECK(!r.empty(), "accepted " + printable(text) + " as an empty reference");
    OCISTORE_FUZZ_CHECK(!r.registry().empty(), "no registry for " + printable(text));
    OCISTORE_FUZZ_CHECK(r.repository().size() <= image_reference::max_repository_length, r.repository());
    OCISTORE_FUZZ_CHECK(!r.tag() || (!r.tag()->empty() && r.tag()->size() <= image_reference::max_tag_length),
                        "tag of " + printable(text));
    OCISTORE_FUZZ_CHECK(!r.digest() || !r.digest()->empty(), "empty digest in " + printable(text));
    OCISTORE_FUZZ_CHECK(!r.api_host().empty(), "no api host for " + printable(text));
    OCISTORE_FUZZ_CHECK(r.reference_for_fetch() == (r.digest() ? r.digest()->str() : r.tag_or_default()),
                        "reference_for_fetch of " + printable(text));

    std::string const s = r.str();
    image_reference const again = reparse(s, "str()");
    OCISTORE_FUZZ_CHECK(again.str() == s, printable(again.str()) + " != " + printable(s));
    OCISTORE_FUZZ_CHECK(again.registry() == r.registry() && again.repository() == r.repository() &&
                            again.digest() == r.digest(),
                        "components of " + printable(s) + " changed on reparse");
    auto const implied_tag = r.tag() || r.digest() ? r.tag() : std::optional<std::string>(image_reference::default_tag);
    OCISTORE_FUZZ_CHECK(again.tag() == implied_tag, "tag of " + printable(s) + " changed on reparse");
    OCISTORE_FUZZ_CHECK(std::hash<image_reference>{}(again) == std::hash<image_reference>{}(again),
                        "hash is not deterministic");

    std::string const familiar = r.familiar();
    image_reference const short_form = reparse(familiar, "familiar()");
    OCISTORE_FUZZ_CHECK(short_form.str() == s,
                        "familiar " + printable(familiar) + " reads back as " + printable(short_form.str()) +
                            ", not " + printable(s));

    image_reference const untagged = r.without_tag();
    OCISTORE_FUZZ_CHECK(!untagged.tag() && untagged.digest() == r.digest() && untagged.name() == r.name(),
                        "without_tag of " + printable(s));
    if (r.digest()) {
        image_reference const undigested = r.with_digest({});
        OCISTORE_FUZZ_CHECK(!undigested.digest() && undigested.tag() == r.tag(), "with_digest({}) of " + printable(s));
    }
    if (r.tag()) {
        image_reference const retagged = r.without_tag().with_tag(*r.tag(), ec, &why);
        OCISTORE_FUZZ_CHECK(!ec && retagged == r, "with_tag(" + printable(*r.tag()) + ") of " + printable(s) + ": " + why);
    }
    return 0;
}
