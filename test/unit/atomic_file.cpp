#include <ocistore/atomic_file.hpp>

#include <support/bounded_wait.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <csignal>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace ocistore;
using namespace ocistore_test;
namespace fs = std::filesystem;

namespace {

std::string read_all(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_plain(fs::path const& p, std::string const& s) { std::ofstream(p, std::ios::binary) << s; }

/// Names of the entries of `dir`.
std::set<std::string> listing(fs::path const& dir)
{
    std::set<std::string> names;
    for (auto const& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
    return names;
}

::mode_t mode_of(fs::path const& p)
{
    struct ::stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

struct scoped_umask {
    explicit scoped_umask(::mode_t m) : old(::umask(m)) {}
    ~scoped_umask() { ::umask(old); }
    ::mode_t old;
};

bool is_root() { return ::geteuid() == 0; }

/// Limits the size of files this process writes (RLIMIT_FSIZE), with SIGXFSZ ignored, for a scope.
struct scoped_file_size_limit {
    explicit scoped_file_size_limit(rlim_t bytes)
    {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        old_handler = std::signal(SIGXFSZ, SIG_IGN);
        rlimit lim = old;
        lim.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    }
    ~scoped_file_size_limit()
    {
        ::setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, old_handler);
    }
    rlimit old{};
    void (*old_handler)(int) = nullptr;
};

} // namespace

TEST_CASE("the content appears at the target only on commit, and the temporary is gone")
{
    temp_dir dir;
    fs::path const target = dir / "index.json";
    atomic_file f(target);
    CHECK(f.is_open());
    CHECK(f.target_path() == target);
    fs::path const temp = f.temp_path();
    CHECK(temp.parent_path() == dir.path());
    CHECK(temp.filename().string().starts_with(".index.json.tmp."));
    CHECK(fs::exists(temp));

    f.write("hello, ");
    f.write(std::as_bytes(std::span("world", 5)));
    CHECK_FALSE(fs::exists(target));
    CHECK(read_all(temp) == "hello, world");

    f.commit();
    CHECK_FALSE(f.is_open());
    CHECK(f.temp_path().empty());
    CHECK(f.native_handle() == -1);
    CHECK(read_all(target) == "hello, world");
    CHECK_FALSE(fs::exists(temp));
    CHECK(listing(dir.path()) == std::set<std::string>{"index.json"});
}

TEST_CASE("abandoning, destroying or failing leaves neither the target nor a temporary")
{
    temp_dir dir;
    fs::path const target = dir / "blob";
    SUBCASE("destructor")
    {
        atomic_file f(target);
        f.write("partial");
    }
    SUBCASE("abandon, after which the file is closed")
    {
        atomic_file f(target);
        f.write("partial");
        f.abandon();
        CHECK_FALSE(f.is_open());
        f.abandon(); // no-op
        error_code ec;
        f.write("more", ec);
        CHECK(ec == error::invalid_argument);
        f.commit(ec);
        CHECK(ec == error::invalid_argument);
    }
    SUBCASE("a failed write is sticky and commit refuses to publish")
    {
        atomic_file f(target);
        error_code ec;
        {
            scoped_file_size_limit limit(1000);
            std::string const big(4000, 'x');
            f.write(big, ec); // the first write(2) is short (1000 bytes), the retry fails
        }
        CHECK(ec == std::errc::file_too_large);
        CHECK(ec == condition::storage);
        f.write("y", ec); // the file stays failed even though writing would now work
        CHECK(ec == std::errc::file_too_large);
        f.commit(ec);
        CHECK(ec == std::errc::file_too_large);
        CHECK_FALSE(f.is_open());
    }
    CHECK_FALSE(fs::exists(target));
    CHECK(listing(dir.path()).empty());
}

TEST_CASE("an existing target is replaced in one step")
{
    temp_dir dir;
    fs::path const target = dir / "ref.json";
    write_plain(target, "old content");
    std::ifstream old_reader(target, std::ios::binary); // opened before the replacement

    atomic_file f(target);
    f.write("new");
    CHECK(read_all(target) == "old content");
    f.commit();
    CHECK(read_all(target) == "new");
    // The old file was replaced, not overwritten: an earlier reader still sees all of it.
    CHECK(std::string(std::istreambuf_iterator<char>(old_reader), std::istreambuf_iterator<char>()) == "old content");
    CHECK(listing(dir.path()) == std::set<std::string>{"ref.json"});
}

TEST_CASE("permissions are exact, whatever the umask")
{
    temp_dir dir;
    scoped_umask um(077);
    write_file_atomically(dir / "default", "x");
    CHECK(mode_of(dir / "default") == 0644);
    atomic_file_options opts;
    opts.mode = 0640;
    write_file_atomically(dir / "custom", "x", opts);
    CHECK(mode_of(dir / "custom") == 0640);
    opts.mode = 0600;
    write_file_atomically(dir / "default", "y", opts); // replacing takes the new mode
    CHECK(mode_of(dir / "default") == 0600);
    atomic_file f(dir / "pending", opts);
    CHECK(mode_of(f.temp_path()) == 0600);
}

TEST_CASE("a missing directory fails with ENOENT and creates nothing")
{
    temp_dir dir;
    fs::path const target = dir / "missing" / "file";
    error_code ec;
    atomic_file f;
    f.open(target, ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(ec.category() == std::system_category());
    CHECK_FALSE(f.is_open());
    write_file_atomically(target, "x", ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    try {
        write_file_atomically(target, "x");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == std::errc::no_such_file_or_directory);
        CHECK(std::string(e.what()).find((dir / "missing").string()) != std::string::npos);
    }
    CHECK(listing(dir.path()).empty());
}

TEST_CASE("a read-only directory fails cleanly with EACCES")
{
    if (is_root()) {
        MESSAGE("skipped: running as root, which bypasses directory permissions");
        return;
    }
    temp_dir dir;
    fs::create_directory(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    error_code ec;
    write_file_atomically(dir / "ro" / "file", "x", ec);
    CHECK(ec == std::errc::permission_denied);
    CHECK(ec == condition::storage);
    fs::permissions(dir / "ro", fs::perms::owner_all);
    CHECK(listing(dir / "ro").empty());
}

TEST_CASE("a target that is a directory: the rename fails, the directory and no temporary remain")
{
    temp_dir dir;
    fs::create_directory(dir / "d");
    atomic_file f(dir / "d");
    f.write("x");
    error_code ec;
    f.commit(ec);
    CHECK(ec == std::errc::is_a_directory);
    CHECK(fs::is_directory(dir / "d"));
    CHECK(listing(dir.path()) == std::set<std::string>{"d"});
    atomic_file g(dir / "d");
    try {
        g.commit();
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == std::errc::is_a_directory);
        CHECK(std::string(e.what()).find("cannot rename") != std::string::npos);
    }
}

TEST_CASE("targets without a file name are invalid arguments")
{
    temp_dir dir;
    for (fs::path const& bad : {fs::path(), dir / "", dir / ".", dir / ".."}) {
        CAPTURE(bad.string());
        atomic_file f;
        error_code ec;
        f.open(bad, ec);
        CHECK(ec == error::invalid_argument);
        CHECK_FALSE(f.is_open());
    }
    try {
        atomic_file f(dir / "");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_argument);
        CHECK(std::string(e.what()).find("does not name a file") != std::string::npos);
    }
    CHECK(listing(dir.path()).empty());
}

TEST_CASE("binary content, empty content, relative targets, durability off")
{
    temp_dir dir;
    std::vector<std::byte> bytes;
    for (int i = 0; i < 70000; ++i) bytes.push_back(static_cast<std::byte>(i * 7));
    write_file_atomically(dir / "bin", bytes);
    std::string const back = read_all(dir / "bin");
    REQUIRE(back.size() == bytes.size());
    CHECK(std::memcmp(back.data(), bytes.data(), bytes.size()) == 0);

    write_file_atomically(dir / "empty", std::span<std::byte const>());
    CHECK(fs::exists(dir / "empty"));
    CHECK(fs::file_size(dir / "empty") == 0);

    atomic_file_options fast;
    fast.durable = false;
    error_code ec = error::io_error;
    write_file_atomically(dir / "cache", "cached", fast, ec);
    CHECK_FALSE(ec);
    CHECK(read_all(dir / "cache") == "cached");

    auto const cwd = fs::current_path();
    fs::current_path(dir.path());
    write_file_atomically("relative", "r", ec);
    fs::current_path(cwd);
    CHECK_FALSE(ec);
    CHECK(read_all(dir / "relative") == "r");
    CHECK(listing(dir.path()) == std::set<std::string>{"bin", "cache", "empty", "relative"});
}

TEST_CASE("streaming through the descriptor")
{
    temp_dir dir;
    atomic_file f(dir / "out");
    int const fd = f.native_handle();
    REQUIRE(fd >= 0);
    int const flags = ::fcntl(fd, F_GETFD);
    CHECK((flags >= 0 && (flags & FD_CLOEXEC)));
    REQUIRE(::write(fd, "abc", 3) == 3);
    f.write("def");
    f.commit();
    CHECK(read_all(dir / "out") == "abcdef");
}

TEST_CASE("moves transfer the temporary, the moved-from object owns nothing")
{
    temp_dir dir;
    atomic_file a(dir / "t");
    a.write("moved");
    fs::path const temp = a.temp_path();
    atomic_file b(std::move(a));
    CHECK_FALSE(a.is_open()); // NOLINT(bugprone-use-after-move)
    CHECK(a.temp_path().empty());
    CHECK(b.temp_path() == temp);
    atomic_file c;
    c = std::move(b);
    CHECK(c.is_open());
    { atomic_file discard = std::move(b); } // NOLINT: destroying an empty one removes nothing
    CHECK(fs::exists(temp));
    atomic_file d(dir / "u");
    fs::path const d_temp = d.temp_path();
    d = std::move(c); // abandons "u"'s temporary
    CHECK_FALSE(fs::exists(d_temp));
    d.commit();
    CHECK(read_all(dir / "t") == "moved");
    CHECK(listing(dir.path()) == std::set<std::string>{"t"});
}

TEST_CASE("a long file name still gets a temporary name within NAME_MAX")
{
    temp_dir dir;
    std::string const name(255, 'n');
    atomic_file f(dir / name);
    CHECK(f.temp_path().filename().string().size() <= 255);
    f.write("long");
    f.commit();
    CHECK(read_all(dir / name) == "long");
    CHECK(listing(dir.path()).size() == 1);
}

TEST_CASE("concurrent writers to one target: readers only ever see a complete version")
{
    temp_dir dir;
    fs::path const target = dir / "shared";
    write_plain(target, std::string(65536, 'a'));
    std::atomic<bool> stop{false};
    std::atomic<int> torn{0}, reads{0}, failures{0};
    atomic_file_options fast;
    fast.durable = false;
    auto writer = [&](char c) {
        std::string const content(65536, c);
        for (int i = 0; i < 150; ++i) {
            error_code ec;
            write_file_atomically(target, content, fast, ec);
            if (ec) ++failures;
        }
    };
    {
        bounded_thread reader([&] {
            while (!stop) {
                std::string const s = read_all(target);
                ++reads;
                if (s.size() != 65536 || s.find_first_not_of(s[0]) != std::string::npos) ++torn;
            }
        });
        {
            bounded_thread w1([&] { writer('b'); }), w2([&] { writer('c'); }), w3([&] { writer('d'); });
        }
        stop = true;
    }
    CHECK(failures.load() == 0);
    CHECK(torn.load() == 0);
    CHECK(reads.load() > 0);
    CHECK(listing(dir.path()) == std::set<std::string>{"shared"});
}

TEST_CASE("fsync_directory")
{
    temp_dir dir;
    error_code ec = error::io_error;
    fsync_directory(dir.path(), ec);
    CHECK_FALSE(ec);
    fsync_directory(dir / "missing", ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    write_plain(dir / "file", "x");
    fsync_directory(dir / "file", ec);
    CHECK(ec == std::errc::not_a_directory);
    try {
        fsync_directory(dir / "missing");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == std::errc::no_such_file_or_directory);
        CHECK(std::string(e.what()).find("missing") != std::string::npos);
    }
}
