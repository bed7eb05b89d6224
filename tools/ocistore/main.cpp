// ocistore/main.cpp: the `ocistore` command-line tool: parses the command line, handles SIGINT/SIGTERM, runs the command.
#include <ocistore/cli_args.hpp>
#include <ocistore/cli_commands.hpp>
#include <ocistore/heap_tuning.hpp>

#include <atomic>
#include <csignal>
#include <exception>
#include <filesystem>
#include <stop_token>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

int signal_pipe_write = -1;

extern "C" void on_stop_signal(int sig)
{
    int const saved = errno;
    unsigned char const b = static_cast<unsigned char>(sig);
    [[maybe_unused]] auto n = ::write(signal_pipe_write, &b, 1);
    errno = saved;
}

/** While alive, SIGINT and SIGTERM request a stop of `source` (once; the handlers reset, so a
    second signal terminates the process at once) and remember which signal it was. */
class stop_on_signals {
public:
    explicit stop_on_signals(std::stop_source source) : source_(std::move(source))
    {
        if (::pipe2(fds_, O_CLOEXEC) != 0) return;
        signal_pipe_write = fds_[1];
        watcher_ = std::thread([this] {
            unsigned char b = 0;
            for (;;) {
                ssize_t n = ::read(fds_[0], &b, 1);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0 || b == 0) return; // b == 0: the wake-up from the destructor
                signal_.store(b);
                source_.request_stop();
            }
        });
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sa.sa_flags = SA_RESETHAND | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
        installed_ = true;
    }
    stop_on_signals(stop_on_signals const&) = delete;
    stop_on_signals& operator=(stop_on_signals const&) = delete;
    ~stop_on_signals()
    {
        if (installed_) {
            ::sigaction(SIGINT, &old_int_, nullptr);
            ::sigaction(SIGTERM, &old_term_, nullptr);
        }
        if (watcher_.joinable()) {
            unsigned char const zero = 0;
            [[maybe_unused]] auto n = ::write(fds_[1], &zero, 1);
            watcher_.join();
        }
        signal_pipe_write = -1;
        for (int fd : fds_)
            if (fd >= 0) ::close(fd);
    }

    /// The signal that requested the stop, or 0.
    int signal() const noexcept { return signal_.load(); }

private:
    std::stop_source source_;
    int fds_[2] = {-1, -1};
    std::thread watcher_;
    std::atomic<int> signal_{0};
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
    bool installed_ = false;
};

int run(int argc, char** argv)
{
    using namespace ocistore::cli;
    auto parsed = parse_args(argc, argv);
    if (parsed.exit_code != exit_ok) {
        write_err(usage_error_text(parsed.error));
        return parsed.exit_code;
    }
    auto& o = parsed.options;
    if (o.command == command_kind::help) {
        write_out(help_text(o.help_topic));
        return exit_ok;
    }
    if (o.command == command_kind::version) {
        write_out(version_text());
        return exit_ok;
    }

    session s;
    ocistore::error_code ec;
    std::filesystem::path root = o.root ? *o.root : ocistore::default_store_root(ec);
    if (ec) return fail("no cache root: use --root, or set OCISTORE_ROOT, XDG_CACHE_HOME or HOME");
    std::error_code fec;
    s.root = std::filesystem::absolute(root, fec).lexically_normal();
    if (fec) return fail("cannot use the cache root " + root.string() + ": " + fec.message());
    s.options = std::move(o);
    s.stderr_tty = ::isatty(2) == 1;
    if (s.stderr_tty) {
        winsize ws{};
        if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
            s.width = ws.ws_col;
            s.rows = ws.ws_row > 0 ? ws.ws_row : 24;
        }
    }
    bool const interruptible =
        s.options.command == command_kind::pull || s.options.command == command_kind::export_rootfs;
    if (!interruptible) return run_command(s);
    std::stop_source stop;
    stop_on_signals guard(stop);
    s.stop = stop.get_token();
    s.stop_signal = [&guard] { return guard.signal(); };
    return run_command(s);
}

} // namespace

int main(int argc, char** argv)
{
    ocistore::cli::tune_heap();
    try {
        return run(argc, argv);
    } catch (std::exception const& e) {
        ocistore::cli::write_err(ocistore::cli::failure_text(e.what()));
        return ocistore::cli::exit_failure;
    }
}
