// Conformance suite for the *Hasher* concept: instantiate with
// TEST_CASE_TEMPLATE_INVOKE(hasher_conformance, YourHasher). Checks known-answer vectors (from
// the algorithm's `reference` table supplied through hasher_vectors<H>), incremental feeding
// in arbitrary chunkings against one-shot hashing, and reset after finish().
#pragma once

#include <ocistore/concepts.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/hasher/digest_of.hpp>

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

namespace ocistore_test {

/// Known answers for a hasher: pairs of (input, expected hex). Specialise per algorithm.
template <class H> struct hasher_vectors;

template <class H> std::string hex_of(H& h) { return std::string(ocistore::finish_digest(h).encoded()); }

} // namespace ocistore_test

TEST_CASE_TEMPLATE_DEFINE("hasher conformance", H, hasher_conformance)
{
    using namespace ocistore;
    using ocistore_test::hex_of;
    static_assert(hasher<H>);
    CHECK(digest_hex_length(H::algorithm) == 2 * H::digest_size);

    SUBCASE("known answers")
    {
        for (auto const& [input, expected] : ocistore_test::hasher_vectors<H>::known) {
            H h;
            h.update(std::as_bytes(std::span(input.data(), input.size())));
            CHECK(hex_of(h) == expected);
        }
    }
    SUBCASE("one million 'a'")
    {
        H h;
        std::string const block(1000, 'a');
        for (int i = 0; i < 1000; ++i) h.update(std::as_bytes(std::span(block.data(), block.size())));
        CHECK(hex_of(h) == ocistore_test::hasher_vectors<H>::million_a);
    }
    SUBCASE("any chunking gives the one-shot result")
    {
        std::mt19937_64 rng(12345);
        std::vector<std::byte> data(1 << 20);
        for (auto& b : data) b = static_cast<std::byte>(rng());
        H whole;
        whole.update(data);
        auto const expected = hex_of(whole);
        for (int round = 0; round < 20; ++round) {
            H h;
            std::size_t pos = 0;
            while (pos < data.size()) {
                std::size_t n = std::min<std::size_t>(data.size() - pos, rng() % (round < 10 ? 200 : 100000));
                h.update(std::span(data).subspan(pos, n));
                pos += n;
            }
            CHECK(hex_of(h) == expected);
        }
    }
    SUBCASE("finish resets; empty updates change nothing; moves carry the state")
    {
        H h;
        h.update(std::as_bytes(std::span("abc", 3)));
        auto const abc = hex_of(h);
        h.update({});
        h.update(std::as_bytes(std::span("abc", 3)));
        CHECK(hex_of(h) == abc);
        h.update(std::as_bytes(std::span("ab", 2)));
        H moved = std::move(h);
        moved.update(std::as_bytes(std::span("c", 1)));
        CHECK(hex_of(moved) == abc);
        if constexpr (std::copyable<H>) {  // beyond the concept: copies are independent
            H a;
            a.update(std::as_bytes(std::span("ab", 2)));
            H b = a;
            a.update(std::as_bytes(std::span("c", 1)));
            b.update(std::as_bytes(std::span("c", 1)));
            CHECK(hex_of(a) == abc);
            CHECK(hex_of(b) == abc);
        }
    }
}
