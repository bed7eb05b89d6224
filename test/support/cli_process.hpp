// Test support: the `ocistore` CLI as a child process (no shell) with its own stdout and
// stderr files, an isolated Docker config, and optional resource limits; and one finished run.
#pragma once

#include <support/registry_fixture.hpp> // read_text_file

#include <boost/json.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ocistore_test {

/// Limits applied to the child before it runs the CLI.
struct cli_limits {
    /// RLIMIT_FSIZE in bytes (SIGXFSZ ignored, so writes past it fail with EFBIG); empty: none.
    std::optional<std::uint64_t> file_size;
};

/** The CLI (OCISTORE_CLI_PATH) as a child process: stdout and stderr to files of their own
    under `dir`, stdin from /dev/null, a Docker config directory of its own (so the machine's
    credentials and proxies play no part). Killed if the test dies; SIGKILLed on destruction
    if still running. */
class cli_process {
public:
    cli_process(std::vector<std::string> args, std::filesystem::path const& dir, cli_limits limits = {})
    {
        static std::atomic<int> counter{0};
        int const n = ++counter;
        out_ = dir / ("cli-" + std::to_string(n) + ".out");
        err_ = dir / ("cli-" + std::to_string(n) + ".err");
        std::filesystem::create_directories(dir / "docker-config");
        // Everything the child needs is built before fork(): the test has threads.
        std::vector<std::string> argv{OCISTORE_CLI_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) {
            std::string_view v(*e);
            auto name = v.substr(0, v.find('='));
            if (name == "DOCKER_CONFIG" || name == "OCISTORE_ROOT" || name == "http_proxy" || name == "HTTP_PROXY" ||
                name == "https_proxy" || name == "HTTPS_PROXY")
                continue;
            env.emplace_back(v);
        }
        env.push_back("DOCKER_CONFIG=" + (dir / "docker-config").string());
        std::vector<char*> cargv, cenv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        for (auto& e : env) cenv.push_back(e.data());
        cenv.push_back(nullptr);
        int const out_fd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int const err_fd = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int const null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (out_fd < 0 || err_fd < 0 || null_fd < 0) throw std::runtime_error("cli_process: cannot open its files");
        started_ = std::chrono::steady_clock::now();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::dup2(null_fd, 0);
            ::dup2(out_fd, 1);
            ::dup2(err_fd, 2);
            if (limits.file_size) {
                ::signal(SIGXFSZ, SIG_IGN); // an ignored disposition survives execve()
                struct rlimit rl {};
                rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(*limits.file_size);
                if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(126);
            }
            ::execve(cargv[0], cargv.data(), cenv.data());
            ::_exit(127);
        }
        ::close(out_fd);
        ::close(err_fd);
        ::close(null_fd);
    }
    cli_process(cli_process const&) = delete;
    cli_process& operator=(cli_process const&) = delete;
    ~cli_process()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    pid_t pid() const noexcept { return pid_; }
    void signal(int sig) const
    {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    /// Its exit status (128 + signal when killed) once it exits within `timeout`.
    std::optional<int> wait_for(std::chrono::milliseconds timeout)
    {
        if (status_) return status_;
        auto const until = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                elapsed_ = std::chrono::steady_clock::now() - started_;
                pid_ = -1;
                status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                return status_;
            }
            if (std::chrono::steady_clock::now() >= until) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    /// Waits (at most 120 s, then fails the test) and returns the status.
    int wait()
    {
        auto s = wait_for(std::chrono::seconds(120));
        REQUIRE_MESSAGE(s.has_value(), "the CLI did not exit within 120 s");
        return *s;
    }

    std::string out() const { return read_text_file(out_); }
    std::string err() const { return read_text_file(err_); }
    /// From fork to exit, as seen by the parent.
    std::chrono::nanoseconds elapsed() const noexcept { return elapsed_; }

private:
    pid_t pid_ = -1;
    std::filesystem::path out_, err_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::nanoseconds elapsed_{};
    std::optional<int> status_;
};

/// One finished CLI run.
struct cli_run {
    int status = -1;
    std::string out, err;
    std::chrono::nanoseconds elapsed{};

    /// stdout parsed as one JSON object (fails the test otherwise).
    boost::json::object json_out() const
    {
        auto v = boost::json::parse(out);
        REQUIRE(v.is_object());
        return v.as_object();
    }
};

/// Runs the CLI to its end (at most 120 s).
inline cli_run run_cli(std::vector<std::string> args, std::filesystem::path const& dir, cli_limits limits = {})
{
    cli_process p(std::move(args), dir, limits);
    cli_run r;
    r.status = p.wait();
    r.out = p.out();
    r.err = p.err();
    r.elapsed = p.elapsed();
    return r;
}

/// The lines of `text`, without their '\n'; a last line without one counts too.
inline std::vector<std::string> lines_of(std::string const& text)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

} // namespace ocistore_test
