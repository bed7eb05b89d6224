// A program a user would write: parse a digest, compute one, and report it.
#include <ocistore/ocistore.hpp>

#include <array>
#include <cstdio>
#include <string_view>

int main()
{
    std::string_view const text = "hello\n";
    ocistore::sha256_hasher h;
    h.update(std::as_bytes(std::span(text.data(), text.size())));
    auto const d = ocistore::digest::from_bytes(ocistore::sha256_hasher::algorithm, h.finish());
    auto const expected =
        ocistore::digest::parse("sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    std::printf("%s\n", d.str().c_str());
    return d == expected ? 0 : 1;
}
