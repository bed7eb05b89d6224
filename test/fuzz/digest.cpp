// Fuzz target: digest::parse on arbitrary bytes.
//
// Invariants: a rejection is error::invalid_digest or error::unsupported_digest_algorithm with
// a reason and an empty value; an accepted digest has the hex length of its algorithm and
// round-trips through str(), path_safe() and bytes().
#include <ocistore/digest.hpp>

#include <support/fuzz_check.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using ocistore::digest;
    using ocistore::error;
    using ocistore_test::fuzz::describe;
    using ocistore_test::fuzz::printable;

    std::string_view const text = ocistore_test::fuzz::as_text(data, size);
    ocistore::error_code ec;
    std::string why;
    digest const d = digest::parse(text, ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(ec == error::invalid_digest || ec == error::unsupported_digest_algorithm, describe(ec));
        OCISTORE_FUZZ_CHECK(!why.empty(), "no reason for rejecting " + printable(text));
        OCISTORE_FUZZ_CHECK(d.empty(), "a rejected digest is not empty");
        // The path-safe form of the same text fails the same way (or earlier, without '_').
        std::string safe(text);
        if (auto colon = safe.find(':'); colon != std::string::npos && safe.find('_') == std::string::npos) {
            safe[colon] = '_';
            ocistore::error_code ec2;
            digest const p = digest::from_path_safe(safe, ec2);
            OCISTORE_FUZZ_CHECK(ec2 && p.empty(), "from_path_safe accepts " + printable(safe));
        }
        return 0;
    }
    OCISTORE_FUZZ_CHECK(d.str() == text, printable(d.str()) + " != " + printable(text));
    OCISTORE_FUZZ_CHECK(d.encoded().size() == ocistore::digest_hex_length(d.algorithm()), printable(text));
    OCISTORE_FUZZ_CHECK(d.algorithm().size() + 1 + d.encoded().size() == d.str().size(), printable(text));

    digest const again = digest::parse(d.str(), ec, &why);
    OCISTORE_FUZZ_CHECK(!ec && again == d, "str() " + printable(d.str()) + " does not parse back: " + why);
    OCISTORE_FUZZ_CHECK(std::hash<digest>{}(again) == std::hash<digest>{}(d), "equal digests hash differently");

    std::string const safe = d.path_safe();
    OCISTORE_FUZZ_CHECK(safe.find_first_of(":/") == std::string::npos, printable(safe));
    digest const from_safe = digest::from_path_safe(safe, ec);
    OCISTORE_FUZZ_CHECK(!ec && from_safe == d, "path_safe() " + printable(safe) + " does not parse back");

    auto const raw = d.bytes();
    OCISTORE_FUZZ_CHECK(raw.size() * 2 == d.encoded().size(), printable(text));
    digest const from_raw = digest::from_bytes(d.algorithm(), raw, ec);
    OCISTORE_FUZZ_CHECK(!ec && from_raw == d, "from_bytes(bytes()) of " + printable(text) + " gives " +
                                                  printable(from_raw.str()));
    return 0;
}
