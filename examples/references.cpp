// references: parse image references, print their normalised forms or the precise reason
// they are invalid. Exit status 1 if any reference was invalid.
//
//   example_references REF...
#include <ocistore/reference.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv)
{
    int status = 0;
    for (int i = 1; i < argc; ++i) {
        std::string shown = argv[i];
        if (shown.size() > 46) shown = shown.substr(0, 40) + "...";
        ocistore::error_code ec;
        std::string why;
        auto const ref = ocistore::image_reference::parse(argv[i], ec, &why);
        if (ec) {
            std::printf("%-46s  invalid: %s\n", shown.c_str(), why.c_str());
            status = 1;
            continue;
        }
        std::printf("%-46s  canonical %s\n", shown.c_str(), ref.str().c_str());
        std::printf("%-46s  familiar  %s | api host %s | fetch %s\n", "", ref.familiar().c_str(),
                    ref.api_host().c_str(), ref.reference_for_fetch().c_str());
    }
    return status;
}
