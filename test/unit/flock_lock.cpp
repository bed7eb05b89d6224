#include <ocistore/lock/flock_lock.hpp>

#include <support/bounded_wait.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ocistore;
using namespace ocistore_test;
namespace fs = std::filesystem;

namespace {

constexpr lock_mode shared = lock_mode::shared, exclusive = lock_mode::exclusive;

/// One end of a byte channel between a parent and its forked child.
struct channel {
    int in = -1, out = -1;

    bool send(char c) const
    {
        for (;;) {
            ssize_t n = ::write(out, &c, 1);
            if (n < 0 && errno == EINTR) continue;
            return n == 1;
        }
    }
    /// The next byte, or -1 on timeout or end of file.
    template <class Rep, class Period> int receive(std::chrono::duration<Rep, Period> timeout) const
    {
        auto const deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{in, POLLIN, 0};
            int r = ::poll(&p, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1;
            char c = 0;
            ssize_t n = ::read(in, &c, 1);
            if (n < 0 && errno == EINTR) continue;
            return n == 1 ? static_cast<unsigned char>(c) : -1;
        }
    }
    int receive() const { return receive(must_happen_within); }
};

/** A forked child running `body(channel) -> int` (its exit status) and nothing else: it never
    returns into doctest. Killed on destruction if still running. */
class child_process {
public:
    template <class F> explicit child_process(F body)
    {
        int up[2], down[2];
        REQUIRE(::pipe2(up, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(down, O_CLOEXEC) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(up[0]);
            ::close(down[1]);
            int status = 100;
            try {
                status = body(channel{down[0], up[1]});
            } catch (...) {
                status = 101;
            }
            ::_exit(status);
        }
        ::close(up[1]);
        ::close(down[0]);
        parent_ = channel{up[0], down[1]};
    }
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;
    ~child_process()
    {
        kill();
        ::close(parent_.in);
        ::close(parent_.out);
    }

    bool send(char c) const { return parent_.send(c); }
    int receive() const { return parent_.receive(); }
    template <class Rep, class Period> int receive(std::chrono::duration<Rep, Period> d) const { return parent_.receive(d); }

    /// The child's exit status; -1 (after killing it) if it did not exit normally in time.
    int wait()
    {
        auto const deadline = std::chrono::steady_clock::now() + must_happen_within;
        while (pid_ > 0) {
            int st = 0;
            pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                pid_ = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            }
            if (r < 0 && errno != EINTR) break;
            if (std::chrono::steady_clock::now() > deadline) break;
            ::usleep(2000);
        }
        kill();
        return -1;
    }
    /// SIGKILL and reap.
    void kill()
    {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
    channel parent_;
};

/// Sets the umask for a scope.
struct scoped_umask {
    explicit scoped_umask(::mode_t m) : old(::umask(m)) {}
    ~scoped_umask() { ::umask(old); }
    ::mode_t old;
};

::mode_t mode_of(fs::path const& p)
{
    struct ::stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

bool is_root() { return ::geteuid() == 0; }

std::string what_of(auto&& f)
{
    try {
        f();
    } catch (system_error const& e) {
        return e.what();
    }
    return "(no exception)";
}

} // namespace

TEST_CASE("an exclusive lock held by another process excludes this one until released")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    child_process child([&](channel ch) {
        error_code ec;
        auto g = lock.acquire("blobs/sha256/abc", exclusive, ec);
        if (ec || !g) return 1;
        ch.send('R');
        if (ch.receive() != 'G') return 2;
        g.unlock();
        ch.send('D');
        return 0;
    });
    REQUIRE(child.receive() == 'R');
    error_code ec = error::io_error;
    auto t = lock.try_acquire("blobs/sha256/abc", exclusive, ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(t.has_value());
    t = lock.try_acquire("blobs/sha256/abc", shared, ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(t.has_value());
    CHECK_FALSE(lock.try_acquire("blobs/sha256/abc", exclusive).has_value()); // throwing overload: empty, no throw
    auto other = lock.try_acquire("blobs/sha256/abd", exclusive, ec);
    CHECK(other.has_value());

    child.send('G');
    REQUIRE(child.receive() == 'D');
    t = lock.try_acquire("blobs/sha256/abc", exclusive, ec);
    CHECK_FALSE(ec);
    CHECK(t.has_value());
    CHECK(child.wait() == 0);
}

TEST_CASE("shared locks coexist across processes and keep writers out in both directions")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    child_process child([&](channel ch) {
        error_code ec;
        auto g = lock.acquire("refs/x", shared, ec);
        if (ec || !g) return 1;
        ch.send('R');
        if (ch.receive() != 'P') return 2; // the parent now holds it shared too
        auto w = lock.try_acquire("refs/x", exclusive, ec);
        if (ec) return 3;
        ch.send(w ? 'Y' : 'N');
        return ch.receive() == 'Q' ? 0 : 4;
    });
    REQUIRE(child.receive() == 'R');
    error_code ec;
    auto r = lock.try_acquire("refs/x", shared, ec);
    CHECK_FALSE(ec);
    REQUIRE(r.has_value());
    auto w = lock.try_acquire("refs/x", exclusive, ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(w.has_value());
    child.send('P');
    CHECK(child.receive() == 'N'); // the child could not take it exclusively either
    child.send('Q');
    CHECK(child.wait() == 0);
    w = lock.try_acquire("refs/x", exclusive, ec);
    CHECK_FALSE(w.has_value()); // our own shared guard still holds it
    r.reset();
    w = lock.try_acquire("refs/x", exclusive, ec);
    CHECK(w.has_value());
}

TEST_CASE("a blocking acquire in another process waits until this one releases")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    for (lock_mode wanted : {exclusive, shared}) {
        std::string const mode_name = wanted == shared ? "shared" : "exclusive";
        CAPTURE(mode_name);
        auto held = lock.acquire("k", exclusive);
        REQUIRE(held.owns_lock());
        child_process child([&](channel ch) {
            held.unlock(); // the child's inherited copy would keep the lock alive after the parent's unlock
            ch.send('W');
            error_code ec;
            auto g = lock.acquire("k", wanted, ec);
            if (ec || !g) return 1;
            ch.send('A');
            return 0;
        });
        REQUIRE(child.receive() == 'W');
        CHECK(child.receive(must_not_happen_for) == -1); // still blocked
        held.unlock();
        CHECK(child.receive() == 'A');
        CHECK(child.wait() == 0);
    }
}

TEST_CASE("a blocking acquire here waits until the other process releases")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    child_process child([&](channel ch) {
        auto g = lock.acquire("k", exclusive);
        ch.send('R');
        if (ch.receive() != 'G') return 2;
        return 0; // exiting releases the lock
    });
    REQUIRE(child.receive() == 'R');
    std::atomic<bool> got{false};
    error_code thread_ec = error::io_error;
    bounded_thread waiter([&] { got = lock.acquire("k", shared, thread_ec).owns_lock(); });
    CHECK_FALSE(waiter.finished_within(must_not_happen_for));
    child.send('G');
    waiter.join(must_happen_within, "acquire after the other process released");
    CHECK(got.load());
    CHECK_FALSE(thread_ec);
    CHECK(child.wait() == 0);
}

TEST_CASE("the lock of a process killed while holding it is released by the kernel")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    child_process child([&](channel ch) {
        auto g = lock.acquire("k", exclusive);
        ch.send('R');
        ch.receive(std::chrono::minutes(5)); // until killed
        return 0;
    });
    REQUIRE(child.receive() == 'R');
    CHECK_FALSE(lock.try_acquire("k", exclusive).has_value());
    child.kill();
    CHECK(lock.try_acquire("k", exclusive).has_value());
}

TEST_CASE("a forked child closing its copy of a guard does not release the parent's lock")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    auto held = lock.acquire("k", exclusive);
    child_process child([&](channel ch) {
        held.unlock(); // closes the child's descriptor only
        error_code ec;
        auto t = lock.try_acquire("k", exclusive, ec);
        ch.send(ec ? 'E' : t ? 'Y' : 'N');
        return 0;
    });
    CHECK(child.receive() == 'N');
    CHECK(child.wait() == 0);
    CHECK(held.owns_lock());
    flock_lock other(dir / "locks");
    CHECK_FALSE(other.try_acquire("k", exclusive).has_value());
}

TEST_CASE("separate flock_lock objects on one directory exclude each other: the file is the lock")
{
    temp_dir dir;
    flock_lock a(dir / "locks");
    flock_lock b(dir / "x" / ".." / "locks"); // another spelling of the same directory
    REQUIRE(fs::create_directories(dir / "x"));
    auto g = a.acquire("k", exclusive);
    CHECK_FALSE(b.try_acquire("k", shared).has_value());
    g.unlock();
    CHECK(b.try_acquire("k", exclusive).has_value());
}

TEST_CASE("lock files: mode 0644 whatever the umask, parents 0755, never deleted")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    fs::path const file = dir / "locks" / "blobs" / "sha256" / "abc.lock";
    CHECK(lock.lock_file("blobs/sha256/abc") == file);
    CHECK_FALSE(fs::exists(dir / "locks")); // constructing touches nothing
    {
        scoped_umask um(077);
        auto g = lock.acquire("blobs/sha256/abc", exclusive);
        REQUIRE(g.owns_lock());
    }
    REQUIRE(fs::is_regular_file(file));
    CHECK(fs::file_size(file) == 0);
    CHECK(mode_of(file) == 0644);
    CHECK(mode_of(dir / "locks") == 0755);
    CHECK(mode_of(dir / "locks" / "blobs") == 0755);
    CHECK(mode_of(dir / "locks" / "blobs" / "sha256") == 0755);

    struct ::stat before {}, after {};
    REQUIRE(::stat(file.c_str(), &before) == 0);
    {
        auto g = lock.acquire("blobs/sha256/abc", shared);
        auto h = lock.try_acquire("blobs/sha256/abc", shared);
        CHECK(h.has_value());
    }
    REQUIRE(::stat(file.c_str(), &after) == 0);
    CHECK(before.st_ino == after.st_ino); // the same file, kept across releases
}

TEST_CASE("an existing lock file keeps its mode, and a read-only one is still usable")
{
    temp_dir dir;
    flock_lock lock(dir.path());
    fs::path const file = dir / "k.lock";
    { std::ofstream(file) << ""; }
    fs::permissions(file, fs::perms::owner_read | fs::perms::group_read);
    auto g = lock.acquire("k", exclusive);
    CHECK(g.owns_lock());
    CHECK(mode_of(file) == 0440);
}

TEST_CASE("guards own close-on-exec descriptors, closed by unlock")
{
    temp_dir dir;
    flock_lock lock(dir.path());
    auto g = lock.acquire("k", shared);
    int const fd = g.native_handle();
    REQUIRE(fd >= 0);
    int const flags = ::fcntl(fd, F_GETFD);
    CHECK((flags >= 0 && (flags & FD_CLOEXEC)));
    g.unlock();
    CHECK(g.native_handle() == -1);
    errno = 0;
    CHECK(::fcntl(fd, F_GETFD) == -1);
    CHECK(errno == EBADF);

    flock_lock::guard empty;
    CHECK(empty.native_handle() == -1);
    CHECK_FALSE(static_cast<bool>(empty));
}

TEST_CASE("invalid keys are rejected before touching the file system, naming the rule")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    error_code ec;
    CHECK_FALSE(lock.acquire("../escape", exclusive, ec).owns_lock());
    CHECK(ec == error::invalid_argument);
    CHECK_FALSE(lock.try_acquire("/etc/passwd", exclusive, ec).has_value());
    CHECK(ec == error::invalid_argument);
    CHECK(lock.lock_file("a//b", ec).empty());
    CHECK(ec == error::invalid_argument);
    CHECK_FALSE(fs::exists(dir / "locks"));
    CHECK_FALSE(fs::exists(dir / "escape.lock"));

    CHECK(what_of([&] { (void)lock.try_acquire("a/./b", shared); }).find("component \".\" at position 2") != std::string::npos);
    CHECK(what_of([&] { (void)lock.lock_file(std::string(256, 'x')); }).find("256 bytes") != std::string::npos);
    CHECK(what_of([&] { (void)lock.acquire(std::string("a\0b", 3), shared); }).find("byte 0x00 at position 1") !=
          std::string::npos);
}

TEST_CASE("file-system failures carry their errno")
{
    temp_dir dir;
    { std::ofstream(dir / "file") << "x"; }

    SUBCASE("lock directory below a regular file: ENOTDIR")
    {
        flock_lock lock(dir / "file" / "locks");
        error_code ec;
        auto g = lock.acquire("k", exclusive, ec);
        CHECK_FALSE(g.owns_lock());
        CHECK(ec == std::errc::not_a_directory);
        CHECK(ec.category() == std::system_category());
        auto t = lock.try_acquire("k", shared, ec);
        CHECK_FALSE(t.has_value());
        CHECK(ec == std::errc::not_a_directory);
        std::string const what = what_of([&] { (void)lock.acquire("k", exclusive); });
        CHECK(what.find("cannot open lock file") != std::string::npos);
        CHECK(what.find((dir / "file" / "locks" / "k.lock").string()) != std::string::npos);
        CHECK(what.find("\"k\"") != std::string::npos);
    }
    SUBCASE("unwritable directory: EACCES, a storage condition")
    {
        if (is_root()) {
            MESSAGE("skipped: running as root, which bypasses directory permissions");
            return;
        }
        fs::create_directory(dir / "ro");
        fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
        flock_lock lock(dir / "ro" / "locks");
        error_code ec;
        CHECK_FALSE(lock.acquire("k", exclusive, ec).owns_lock());
        CHECK(ec == std::errc::permission_denied);
        CHECK(ec == condition::storage);
        fs::permissions(dir / "ro", fs::perms::owner_all);
    }
    SUBCASE("a final component too long for a file name once \".lock\" is added: ENAMETOOLONG")
    {
        flock_lock lock(dir.path());
        error_code ec;
        CHECK(lock.acquire(std::string(250, 'x'), exclusive, ec).owns_lock()); // 255 bytes with the suffix
        CHECK_FALSE(ec);
        CHECK_FALSE(lock.acquire(std::string(251, 'x'), exclusive, ec).owns_lock());
        CHECK(ec == std::errc::filename_too_long);
    }
    SUBCASE("a key colliding with another key's lock file fails cleanly")
    {
        flock_lock lock(dir / "locks");
        error_code ec;
        auto a = lock.acquire("a", exclusive, ec);
        REQUIRE(a.owns_lock());
        CHECK_FALSE(lock.acquire("a.lock/b", exclusive, ec).owns_lock());
        CHECK(ec == std::errc::not_a_directory);
        auto c = lock.acquire("c.lock/d", exclusive, ec);
        REQUIRE(c.owns_lock());
        CHECK_FALSE(lock.acquire("c", exclusive, ec).owns_lock()); // c.lock is a directory
        CHECK(ec == std::errc::is_a_directory);
    }
}

TEST_CASE("many threads and many keys: every lock file exists once, all guards release")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    std::atomic<int> failures{0};
    auto body = [&](int seed) {
        for (int i = 0; i < 200; ++i) {
            std::string key = "k/" + std::to_string((seed * 7 + i) % 13);
            error_code ec;
            auto g = lock.acquire(key, i % 3 ? shared : exclusive, ec);
            if (ec || !g) ++failures;
        }
    };
    {
        bounded_thread t1([&] { body(1); }), t2([&] { body(2); }), t3([&] { body(3); }), t4([&] { body(4); });
    }
    CHECK(failures.load() == 0);
    int files = 0;
    for (auto const& e : fs::directory_iterator(dir / "locks" / "k")) {
        CHECK(e.path().extension() == ".lock");
        ++files;
    }
    CHECK(files == 13);
    for (int k = 0; k < 13; ++k) CHECK(lock.try_acquire("k/" + std::to_string(k), exclusive).has_value());
}

TEST_CASE("a moved-from lock never creates lock files relative to the current directory")
{
    temp_dir dir;
    flock_lock lock(dir / "locks");
    flock_lock other(std::move(lock));
    auto const cwd = fs::current_path();
    fs::current_path(dir.path());
    error_code ec;
    CHECK_FALSE(lock.acquire("k", exclusive, ec).owns_lock()); // NOLINT(bugprone-use-after-move)
    CHECK(ec == error::invalid_argument);
    CHECK_FALSE(fs::exists(dir / "k.lock"));
    CHECK_THROWS_WITH_AS(flock_lock(fs::path{}).acquire("k", shared), doctest::Contains("no lock directory"),
                         system_error);
    fs::current_path(cwd);
    CHECK(other.acquire("k", exclusive, ec).owns_lock());
}
