// Non-template bodies for ocistore/http/credentials.hpp.
#pragma once

#include <ocistore/http/credentials.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/http_text.hpp>
#include <ocistore/detail/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ocistore {
namespace detail::credentials_impl {

using ocistore::detail::errno_code;

inline constexpr std::string_view hub_key = "docker.io";
inline constexpr std::string_view hub_server_url = "https://index.docker.io/v1/";
inline constexpr std::size_t max_helper_output = std::size_t{1} << 20;
inline constexpr std::size_t max_server_url = 1024;


inline bool valid_helper_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > 100) return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-'; });
}

/// "'docker-credential-x'": how helpers are named in reasons.
inline std::string helper_program(std::string_view helper) { return "docker-credential-" + std::string(helper); }

/// At most 200 bytes of `text` on one line, non-printable bytes as '?'.
inline std::string excerpt(std::string_view text)
{
    text = trim_ows(text);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    std::string out(text.substr(0, 200));
    for (char& c : out) {
        auto const u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) c = '?';
    }
    if (text.size() > 200) out += "...";
    return out;
}

/// Owns a file descriptor.
class fd_guard {
public:
    fd_guard() = default;
    explicit fd_guard(int fd) noexcept : fd_(fd) {}
    fd_guard(fd_guard const&) = delete;
    fd_guard& operator=(fd_guard const&) = delete;
    ~fd_guard() { reset(); }
    int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept
    {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// A close-on-exec pipe whose descriptors are above 2, so dup2 onto 0–2 cannot clobber them.
inline bool make_pipe(fd_guard& read_end, fd_guard& write_end, int& err) noexcept
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return err = errno, false;
    for (int& fd : p) {
        if (fd > 2) continue;
        int const high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int const e = errno;
        ::close(fd);
        if (high < 0) {
            ::close(p[0] == fd ? p[1] : p[0]);
            return err = e, false;
        }
        fd = high;
    }
    read_end.reset(p[0]);
    write_end.reset(p[1]);
    return true;
}

inline bool write_all(int fd, std::string_view data) noexcept
{
    while (!data.empty()) {
        ssize_t const n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// Reads a Docker config file into `out`; errno-coded failures, too_large over the cap.
inline bool read_file(std::filesystem::path const& path, std::string& out, error_code& ec, std::string* why)
{
    int fd;
    do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        ec = errno_code(errno);
        if (why) *why = "cannot open " + path.string() + ": " + ec.message();
        return false;
    }
    fd_guard guard(fd);
    out.clear();
    char buf[16384];
    while (true) {
        ssize_t const n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ec = errno_code(errno);
            if (why) *why = "cannot read " + path.string() + ": " + ec.message();
            return false;
        }
        if (n == 0) return true;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > max_docker_config_size) {
            fail(ec, why, error::too_large,
                 path.string() + " is larger than the limit of " + std::to_string(max_docker_config_size) + " bytes");
            return false;
        }
    }
}

/// The server URL a helper is asked about for the registry with key `key`.
inline std::string helper_server_url(std::string_view key)
{
    return key == hub_key ? std::string(hub_server_url) : std::string(key);
}

/// The home directory: $HOME, else the password database.
inline std::string home_directory()
{
    if (char const* h = std::getenv("HOME"); h && *h) return h;
    std::vector<char> buf(16384);
    struct passwd pw;
    struct passwd* result = nullptr;
    if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result && result->pw_dir)
        return result->pw_dir;
    return {};
}

/// Reads an optional string member of a config.json object.
inline bool read_string(json_reader& r, boost::json::object const& o, std::string_view key, std::string_view parent,
                        std::string& out)
{
    return read_field(r, o, key, parent, out, presence::optional);
}

} // namespace detail::credentials_impl

OCISTORE_DECL std::string basic_authorization(std::string_view username, std::string_view password)
{
    std::string pair(username);
    pair.push_back(':');
    pair.append(password);
    return "Basic " + detail::base64_encode(pair);
}

OCISTORE_DECL std::string registry_key(std::string_view registry)
{
    std::string k = detail::ascii_lowercase(detail::trim_ows(registry));
    for (std::string_view scheme : {"https://", "http://"})
        if (std::string_view(k).substr(0, scheme.size()) == scheme) {
            k.erase(0, scheme.size());
            break;
        }
    if (auto const slash = k.find('/'); slash != std::string::npos) k.erase(slash);
    if (k == "index.docker.io" || k == "registry-1.docker.io") k = detail::credentials_impl::hub_key;
    return k;
}

OCISTORE_DECL std::optional<credentials> run_credential_helper(std::string_view helper, std::string_view server_url,
                                                               std::chrono::milliseconds timeout, error_code& ec,
                                                               std::string* why)
{
    using namespace detail::credentials_impl;
    using clock = std::chrono::steady_clock;
    ec.clear();
    if (!valid_helper_name(helper))
        return detail::fail(ec, why, error::invalid_argument,
                            "credential helper name \"" + excerpt(helper) +
                                "\" is not allowed (1-100 of [A-Za-z0-9._-])"),
               std::nullopt;
    if (server_url.size() > max_server_url)
        return detail::fail(ec, why, error::invalid_argument,
                            "server URL for credential helper is longer than " + std::to_string(max_server_url) + " bytes"),
               std::nullopt;
    for (char c : server_url)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return detail::fail(ec, why, error::invalid_argument,
                                "server URL for credential helper holds " + detail::describe_char(c)),
                   std::nullopt;

    std::string const program = helper_program(helper);
    auto sys_fail = [&](int e, std::string const& what) {
        ec = errno_code(e);
        if (why) *why = what + " for " + program + ": " + ec.message();
        return std::nullopt;
    };
    fd_guard in_r, in_w, out_r, out_w, err_r, err_w;
    int e = 0;
    if (!make_pipe(in_r, in_w, e) || !make_pipe(out_r, out_w, e) || !make_pipe(err_r, err_w, e))
        return sys_fail(e, "pipe");
    // The URL fits in an empty pipe (< PIPE_BUF), so writing before the child exists cannot block or raise SIGPIPE.
    if (!write_all(in_w.get(), server_url)) return sys_fail(errno, "write");
    in_w.reset();

    // The child gets the pipes as 0-2, an empty signal mask and default SIGPIPE handling
    // (network programs often ignore SIGPIPE, and exec would pass that on).
    posix_spawn_file_actions_t actions;
    if (int const r = ::posix_spawn_file_actions_init(&actions); r != 0) return sys_fail(r, "posix_spawn_file_actions_init");
    posix_spawnattr_t attr;
    if (int const r = ::posix_spawnattr_init(&attr); r != 0) {
        ::posix_spawn_file_actions_destroy(&actions);
        return sys_fail(r, "posix_spawnattr_init");
    }
    sigset_t no_signals, default_signals;
    ::sigemptyset(&no_signals);
    ::sigemptyset(&default_signals);
    ::sigaddset(&default_signals, SIGPIPE);
    int setup = ::posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
    if (setup == 0) setup = ::posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
    if (setup == 0) setup = ::posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
    if (setup == 0) setup = ::posix_spawnattr_setsigmask(&attr, &no_signals);
    if (setup == 0) setup = ::posix_spawnattr_setsigdefault(&attr, &default_signals);
    if (setup == 0)
        setup = ::posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
    std::string arg0 = program, arg1 = "get";
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    pid_t pid = -1;
    int const spawned = setup != 0 ? setup : ::posix_spawnp(&pid, program.c_str(), &actions, &attr, argv, environ);
    ::posix_spawnattr_destroy(&attr);
    ::posix_spawn_file_actions_destroy(&actions);
    in_r.reset();
    out_w.reset();
    err_w.reset();
    if (spawned != 0) {
        error_code const sec = errno_code(spawned);
        detail::fail(ec, why, error::unauthorized,
                     "credential helper " + program + " could not be started: " + sec.message() +
                         (spawned == ENOENT ? " (is it on PATH?)" : ""));
        return std::nullopt;
    }

    auto const deadline = clock::now() + timeout;
    auto remaining_ms = [&] {
        auto const left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
        return static_cast<int>(std::clamp<std::int64_t>(left, 0, 1000 * 60 * 60));
    };
    std::string out, err;
    bool timed_out = false, too_big = false;
    pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        int const wait = remaining_ms();
        if (wait <= 0) {
            timed_out = true;
            break;
        }
        int const n = ::poll(fds, 2, wait);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int k = 0; k < 2; ++k) {
            if (fds[k].fd < 0 || fds[k].revents == 0) continue;
            char buf[4096];
            ssize_t const got = ::read(fds[k].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                fds[k].fd = -1;
                continue;
            }
            std::string& sink = k == 0 ? out : err;
            sink.append(buf, static_cast<std::size_t>(got));
            if (sink.size() > max_helper_output) too_big = true;
        }
        if (too_big) break;
    }
    int status = 0;
    bool reaped = false;
    while (!timed_out && !too_big) {
        pid_t const w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            reaped = true;
            break;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { // ECHILD: someone else reaped it (SIGCHLD ignored); judge by the output
            reaped = true;
            status = 0;
            break;
        }
        if (remaining_ms() <= 0) {
            timed_out = true;
            break;
        }
        ::usleep(2000);
    }
    if (!reaped) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (timed_out)
        return detail::fail(ec, why, error::timeout,
                            "credential helper " + program + " did not finish within " +
                                std::to_string(timeout.count()) + " ms and was killed"),
               std::nullopt;
    if (too_big)
        return detail::fail(ec, why, error::too_large,
                            "credential helper " + program + " wrote more than " +
                                std::to_string(max_helper_output) + " bytes and was killed"),
               std::nullopt;

    bool const says_not_found =
        detail::ascii_lowercase(std::string_view(out).substr(0, 4096)).find("credentials not found") != std::string::npos;
    bool const failed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (failed && says_not_found) return std::nullopt;
    if (WIFSIGNALED(status))
        return detail::fail(ec, why, error::unauthorized,
                            "credential helper " + program + " was killed by signal " + std::to_string(WTERMSIG(status))),
               std::nullopt;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        std::string said = excerpt(out);
        if (said.empty()) said = excerpt(err);
        return detail::fail(ec, why, error::unauthorized,
                            "credential helper " + program + " exited with status " +
                                std::to_string(WEXITSTATUS(status)) + (said.empty() ? "" : ": " + said)),
               std::nullopt;
    }

    boost::json::value doc =
        detail::parse_json_document(out, max_helper_output, "output", boost::json::storage_ptr(), ec, nullptr);
    auto proto = [&](std::string msg) {
        detail::fail(ec, why, error::protocol_error, "credential helper " + program + ": " + msg);
        return std::nullopt;
    };
    if (ec && says_not_found) return ec.clear(), std::nullopt;
    if (ec) return proto("output is not valid JSON");
    auto const* o = doc.if_object();
    if (!o) return proto(std::string("output is ") + detail::json_kind_name(doc) + ", not a JSON object");
    credentials c;
    for (auto [key, dest] : {std::pair<char const*, std::string*>{"Username", &c.username}, {"Secret", &c.password}}) {
        auto const* v = o->if_contains(key);
        if (!v || v->is_null()) continue;
        auto const* s = v->if_string();
        if (!s) return proto(std::string("\"") + key + "\" is " + detail::json_kind_name(*v) + ", not a string");
        dest->assign(s->data(), s->size());
    }
    if (c.username.empty() && c.password.empty()) return std::nullopt;
    if (c.username == "<token>") {
        c.identity_token = std::move(c.password);
        c.password.clear();
        c.username.clear();
    }
    return c;
}

OCISTORE_DECL credential_store credential_store::from_json(std::string_view json, std::string_view source,
                                                           error_code& ec, std::string* why)
{
    using namespace detail::credentials_impl;
    ec.clear();
    std::string const src(source);
    boost::json::value doc = detail::parse_json_document(json, max_docker_config_size, src, boost::json::storage_ptr(), ec, why);
    if (ec) return {};
    std::string inner;
    detail::json_reader r{error::invalid_argument, ec, why ? &inner : nullptr};
    auto done = [&] {
        if (why) *why = src + ": " + inner;
        return credential_store{};
    };
    auto const* top = detail::json_as_object(r, doc, "(document)");
    if (!top) return done();
    credential_store store;

    if (auto const* auths = detail::json_find(*top, "auths")) {
        auto const* obj = detail::json_as_object(r, *auths, "auths");
        if (!obj) return done();
        for (auto const& kv : *obj) {
            std::string const path = "auths.\"" + excerpt(kv.key()) + "\"";
            if (kv.value().is_null()) continue;
            auto const* entry = detail::json_as_object(r, kv.value(), path);
            if (!entry) return done();
            credentials c;
            std::string auth;
            if (!read_string(r, *entry, "auth", path, auth) || !read_string(r, *entry, "username", path, c.username) ||
                !read_string(r, *entry, "password", path, c.password) ||
                !read_string(r, *entry, "identitytoken", path, c.identity_token))
                return done();
            if (!auth.empty()) {
                std::string decoded;
                if (auto const bad = detail::base64_decode(auth, decoded))
                    return r.fail(path + ".auth", "not valid base64 (at position " + std::to_string(*bad) + ")"), done();
                auto const colon = decoded.find(':');
                if (colon == std::string::npos)
                    return r.fail(path + ".auth", "the decoded value has no ':' between user name and password"), done();
                c.username = decoded.substr(0, colon);
                c.password = decoded.substr(colon + 1);
                while (!c.password.empty() && c.password.back() == '\0') c.password.pop_back();
            }
            std::string key = registry_key(kv.key());
            if (key.empty()) continue;
            auto [it, inserted] = store.auths_.try_emplace(std::move(key), c);
            if (!inserted && it->second.empty()) it->second = std::move(c);
        }
    }
    if (auto const* helpers = detail::json_find(*top, "credHelpers")) {
        auto const* obj = detail::json_as_object(r, *helpers, "credHelpers");
        if (!obj) return done();
        for (auto const& kv : *obj) {
            std::string const path = "credHelpers.\"" + excerpt(kv.key()) + "\"";
            std::string name;
            if (!detail::read_value(r, kv.value(), path, name)) return done();
            if (!valid_helper_name(name))
                return r.fail(path, "helper name \"" + excerpt(name) + "\" is not allowed (1-100 of [A-Za-z0-9._-])"),
                       done();
            store.helpers_.insert_or_assign(registry_key(kv.key()), std::move(name));
        }
    }
    if (!read_string(r, *top, "credsStore", "", store.default_helper_)) return done();
    if (!store.default_helper_.empty() && !valid_helper_name(store.default_helper_))
        return r.fail("credsStore", "helper name \"" + excerpt(store.default_helper_) +
                                        "\" is not allowed (1-100 of [A-Za-z0-9._-])"),
               done();
    return store;
}

OCISTORE_DECL credential_store credential_store::from_file(std::filesystem::path const& path, error_code& ec,
                                                           std::string* why)
{
    ec.clear();
    std::string text;
    if (!detail::credentials_impl::read_file(path, text, ec, why)) return {};
    credential_store s = from_json(text, path.string(), ec, why);
    if (!ec) s.source_ = path;
    return s;
}

OCISTORE_DECL credential_store credential_store::from_file(std::filesystem::path const& path)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return from_file(path, ec, why); });
}

OCISTORE_DECL credential_store credential_store::from_docker_config(error_code& ec, std::string* why)
{
    ec.clear();
    std::filesystem::path dir;
    if (char const* d = std::getenv("DOCKER_CONFIG"); d && *d) {
        dir = d;
    } else {
        std::string const home = detail::credentials_impl::home_directory();
        if (home.empty()) return {};
        dir = std::filesystem::path(home) / ".docker";
    }
    credential_store s = from_file(dir / "config.json", ec, why);
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
        ec.clear();
        if (why) why->clear();
        return {};
    }
    return s;
}

OCISTORE_DECL credential_store credential_store::from_docker_config()
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return from_docker_config(ec, why); });
}

OCISTORE_DECL void credential_store::set(std::string registry, credentials c)
{
    explicit_.insert_or_assign(registry_key(registry), std::move(c));
}

OCISTORE_DECL std::string credential_store::helper_for(std::string_view registry) const
{
    std::string const key = registry_key(registry);
    if (auto it = helpers_.find(key); it != helpers_.end()) return it->second;
    return default_helper_;
}

OCISTORE_DECL std::optional<credentials> credential_store::lookup(std::string_view registry, error_code& ec,
                                                                  std::string* why) const
{
    ec.clear();
    std::string const key = registry_key(registry);
    if (auto it = explicit_.find(key); it != explicit_.end()) return it->second;
    std::string const server = detail::credentials_impl::helper_server_url(key);
    if (auto it = helpers_.find(key); it != helpers_.end())
        return run_credential_helper(it->second, server, helper_timeout_, ec, why);
    if (auto it = auths_.find(key); it != auths_.end() && !it->second.empty()) return it->second;
    if (!default_helper_.empty()) return run_credential_helper(default_helper_, server, helper_timeout_, ec, why);
    return std::nullopt;
}

OCISTORE_DECL std::optional<credentials> credential_store::lookup(std::string_view registry) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return lookup(registry, ec, why); });
}

} // namespace ocistore
