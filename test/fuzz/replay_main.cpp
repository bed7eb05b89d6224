// Corpus replay without libFuzzer: feeds every regular file named on the command line, or found
// (recursively) under a directory named there, to LLVMFuzzerTestOneInput once, in path order.
//
// Usage: fuzz_replay_<target> PATH... [--optional PATH...]
// A PATH that does not exist fails the run, unless it follows --optional. A run that finds no
// input at all fails too (a misnamed corpus directory must not pass silently). A broken
// invariant aborts inside the target; an exception escaping it is reported and aborts as well.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size);

namespace {

std::vector<char> read_file(std::filesystem::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", p.c_str());
        std::exit(2);
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

int main(int argc, char** argv)
{
    namespace fs = std::filesystem;
    std::vector<fs::path> inputs;
    bool optional = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        if (arg == "--optional") {
            optional = true;
            continue;
        }
        fs::path const p(arg);
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            for (auto const& e : fs::recursive_directory_iterator(p))
                if (e.is_regular_file()) inputs.push_back(e.path());
        } else if (fs::is_regular_file(p, ec)) {
            inputs.push_back(p);
        } else if (!optional) {
            std::fprintf(stderr, "no such file or directory: %s\n", p.c_str());
            return 2;
        }
    }
    if (inputs.empty()) {
        std::fprintf(stderr, "no inputs found (usage: %s PATH... [--optional PATH...])\n", argc > 0 ? argv[0] : "replay");
        return 2;
    }
    std::sort(inputs.begin(), inputs.end());
    for (auto const& p : inputs) {
        std::vector<char> const bytes = read_file(p);
        std::printf("%s (%zu bytes)\n", p.c_str(), bytes.size());
        std::fflush(stdout);
        try {
            LLVMFuzzerTestOneInput(reinterpret_cast<std::uint8_t const*>(bytes.data()), bytes.size());
        } catch (std::exception const& e) {
            std::fprintf(stderr, "%s: exception escaped the fuzz target: %s\n", p.c_str(), e.what());
            std::abort();
        } catch (...) {
            std::fprintf(stderr, "%s: unknown exception escaped the fuzz target\n", p.c_str());
            std::abort();
        }
    }
    std::printf("%zu inputs replayed\n", inputs.size());
    return 0;
}
