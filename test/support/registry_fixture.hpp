// Test support: a real OCI registry (Debian's docker-registry, distribution 2.8) on
// 127.0.0.1 for transport tests: plain HTTP, TLS with a generated CA, htpasswd basic auth,
// token auth with an in-process token server, and pull-through proxy (mirror) mode. Every
// process is stopped on destruction, waits are bounded, nothing leaves loopback.
#pragma once

#include <support/loopback_http.hpp>
#include <support/temp_dir.hpp>

#include <boost/asio/ssl/context.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ocistore_test {

namespace fs = std::filesystem;

inline std::string read_text_file(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

inline void write_text_file(fs::path const& p, std::string_view text)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

/// Whether `program` is found on PATH.
inline bool have_program(std::string const& program)
{
    char const* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        auto end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        fs::path p = fs::path(dirs.substr(start, end - start)) / program;
        if (::access(p.c_str(), X_OK) == 0) return true;
        start = end + 1;
    }
    return false;
}

/** A child process (no shell) with stdout and stderr going to `log`. Killed when the thread
    that started it ends (PR_SET_PDEATHSIG: start it from the test's main thread, so that
    it dies with the test process); stopped on destruction: SIGTERM, then SIGKILL after 5 s. */
class child_process {
public:
    child_process(std::vector<std::string> argv, fs::path const& log)
    {
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
                ::close(fd);
            }
            int devnull = ::open("/dev/null", O_RDONLY);
            if (devnull >= 0) ::dup2(devnull, 0);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;
    ~child_process() { stop(); }

    pid_t pid() const noexcept { return pid_; }

    /// Whether it is still running (reaps it when it has exited).
    bool running()
    {
        if (pid_ <= 0) return false;
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return false;
        }
        return true;
    }

    /// Waits up to `timeout` for it to exit: its exit status (128 + signal when killed), or
    /// nullopt while it still runs.
    std::optional<int> wait_for(std::chrono::milliseconds timeout)
    {
        auto until = steady_clock::now() + timeout;
        for (;;) {
            int status = 0;
            if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            if (pid_ <= 0 || steady_clock::now() >= until) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    void stop() noexcept
    {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        auto until = steady_clock::now() + std::chrono::seconds(5);
        int status = 0;
        while (steady_clock::now() < until) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
};

/// Runs a command to completion (at most `timeout`); returns its exit status, output in `log`.
inline int run_command(std::vector<std::string> argv, fs::path const& log,
                       std::chrono::seconds timeout = std::chrono::seconds(60))
{
    std::string name = argv.front();
    child_process p(std::move(argv), log);
    if (auto status = p.wait_for(timeout)) return *status;
    throw std::runtime_error("command timed out: " + name);
}

/** Test PKI made with the `openssl` CLI: a CA, a server certificate for 127.0.0.1 and
    localhost signed by it, and a self-signed RSA key/certificate for signing tokens. */
struct test_pki {
    fs::path ca_cert, ca_key, server_cert, server_key, token_cert, token_key;
    /// Signed by the CA, but for "elsewhere.invalid" only: a host name mismatch on loopback.
    fs::path wrong_name_cert, wrong_name_key;

    explicit test_pki(fs::path const& dir)
    {
        ca_cert = dir / "ca.crt";
        ca_key = dir / "ca.key";
        server_cert = dir / "server.crt";
        server_key = dir / "server.key";
        token_cert = dir / "token.crt";
        token_key = dir / "token.key";
        wrong_name_cert = dir / "wrong.crt";
        wrong_name_key = dir / "wrong.key";
        auto log = dir / "openssl.log";
        auto ok = [&](std::vector<std::string> argv) {
            if (run_command(argv, log) != 0) throw std::runtime_error("openssl failed: " + read_text_file(log));
        };
        ok({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            ca_key.string(), "-out", ca_cert.string(), "-days", "2", "-subj", "/CN=ocistore test CA"});
        ok({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            server_key.string(), "-out", (dir / "server.csr").string(), "-subj", "/CN=localhost"});
        write_text_file(dir / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                            "basicConstraints=CA:FALSE\n"
                                            "keyUsage=digitalSignature,keyEncipherment\n"
                                            "extendedKeyUsage=serverAuth\n");
        ok({"openssl", "x509", "-req", "-in", (dir / "server.csr").string(), "-CA", ca_cert.string(), "-CAkey",
            ca_key.string(), "-CAcreateserial", "-out", server_cert.string(), "-days", "2", "-extfile",
            (dir / "server.ext").string()});
        ok({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            wrong_name_key.string(), "-out", (dir / "wrong.csr").string(), "-subj", "/CN=elsewhere.invalid"});
        write_text_file(dir / "wrong.ext", "subjectAltName=DNS:elsewhere.invalid\n"
                                           "extendedKeyUsage=serverAuth\n");
        ok({"openssl", "x509", "-req", "-in", (dir / "wrong.csr").string(), "-CA", ca_cert.string(), "-CAkey",
            ca_key.string(), "-CAcreateserial", "-out", wrong_name_cert.string(), "-days", "2", "-extfile",
            (dir / "wrong.ext").string()});
        ok({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", token_key.string(), "-out",
            token_cert.string(), "-days", "2", "-subj", "/CN=ocistore test token issuer"});
    }
};

// ---- JWT (RS256) for distribution's token auth ---------------------------------------------

inline std::string base64url(std::string_view in)
{
    static char const tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out += tbl[(v >> 18) & 63];
        out += tbl[(v >> 12) & 63];
        out += tbl[(v >> 6) & 63];
        out += tbl[v & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += tbl[(v >> 18) & 63];
        out += tbl[(v >> 12) & 63];
        if (i + 1 < in.size()) out += tbl[(v >> 6) & 63];
    }
    return out;
}

inline std::string base64_std(std::string_view in)
{
    std::string s = base64url(in);
    for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (s.size() % 4) s += '=';
    return s;
}

/** Signs JWTs the way distribution 2.8 verifies them (registry/auth/token/token.go): RS256,
    the signing certificate in the `x5c` header (it must chain to `rootcertbundle`), claims
    iss, sub, aud, exp, nbf, iat, jti and access[]. */
class jwt_signer {
public:
    jwt_signer(fs::path const& key_pem, fs::path const& cert_pem)
    {
        FILE* f = std::fopen(key_pem.c_str(), "r");
        if (!f) throw std::runtime_error("cannot open token key");
        key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
        std::fclose(f);
        f = std::fopen(cert_pem.c_str(), "r");
        if (!f) throw std::runtime_error("cannot open token cert");
        X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
        std::fclose(f);
        if (!key_ || !cert) throw std::runtime_error("cannot read token key or cert");
        unsigned char* der = nullptr;
        int len = i2d_X509(cert, &der);
        cert_der_b64_ = base64_std(std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(len)));
        OPENSSL_free(der);
        X509_free(cert);
    }
    jwt_signer(jwt_signer const&) = delete;
    jwt_signer& operator=(jwt_signer const&) = delete;
    ~jwt_signer() { EVP_PKEY_free(key_); }

    /// A token for `subject` granting `actions` on each repository in `repos`, valid from
    /// `now + offset` for `lifetime`.
    std::string sign(std::string const& issuer, std::string const& audience, std::string const& subject,
                     std::vector<std::pair<std::string, std::vector<std::string>>> const& access,
                     std::chrono::seconds lifetime, std::chrono::seconds offset = {}) const
    {
        auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count() +
                   offset.count();
        std::string header = R"({"typ":"JWT","alg":"RS256","x5c":[")" + cert_der_b64_ + R"("]})";
        std::ostringstream claims;
        claims << R"({"iss":")" << issuer << R"(","sub":")" << subject << R"(","aud":")" << audience
               << R"(","exp":)" << now + lifetime.count() << R"(,"nbf":)" << now - 1 << R"(,"iat":)" << now
               << R"(,"jti":")" << std::random_device{}() << '-' << ++counter_ << R"(","access":[)";
        bool first = true;
        for (auto const& [repo, actions] : access) {
            if (!first) claims << ',';
            first = false;
            claims << R"({"type":"repository","name":")" << repo << R"(","actions":[)";
            for (std::size_t i = 0; i < actions.size(); ++i) claims << (i ? "," : "") << '"' << actions[i] << '"';
            claims << "]}";
        }
        claims << "]}";
        std::string signing_input = base64url(header) + "." + base64url(claims.str());
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        std::size_t siglen = 0;
        std::string sig;
        if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_) != 1 ||
            EVP_DigestSign(ctx, nullptr, &siglen, reinterpret_cast<unsigned char const*>(signing_input.data()),
                           signing_input.size()) != 1)
            throw std::runtime_error("EVP_DigestSign failed");
        sig.resize(siglen);
        if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &siglen,
                           reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size()) != 1)
            throw std::runtime_error("EVP_DigestSign failed");
        EVP_MD_CTX_free(ctx);
        sig.resize(siglen);
        return signing_input + "." + base64url(sig);
    }

private:
    EVP_PKEY* key_ = nullptr;
    std::string cert_der_b64_;
    mutable std::atomic<unsigned> counter_{0};
};

inline std::string url_decode(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else if (s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

/// The query parameters of a request target, decoded, in order.
inline std::vector<std::pair<std::string, std::string>> query_params(std::string_view target)
{
    std::vector<std::pair<std::string, std::string>> out;
    auto q = target.find('?');
    if (q == std::string_view::npos) return out;
    auto rest = target.substr(q + 1);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto part = rest.substr(0, amp);
        auto eq = part.find('=');
        out.emplace_back(url_decode(part.substr(0, eq)),
                         eq == std::string_view::npos ? std::string() : url_decode(part.substr(eq + 1)));
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return out;
}

/** A distribution token server on 127.0.0.1: GET /token?service=…&scope=repository:R:A
    answers {"token","access_token","expires_in","issued_at"}. Users authenticate with Basic;
    known users get every requested action; anonymous callers get pull only where
    `anonymous_pull`, otherwise a 401 (when `reject_anonymous`) or a token without access. */
class token_server {
public:
    static constexpr char const* issuer = "ocistore-test-issuer";
    static constexpr char const* service = "ocistore-test-registry";

    explicit token_server(test_pki const& pki)
        : signer_(pki.token_key, pki.token_cert), server_([this](http_request const& r) { return handle(r); })
    {
    }

    std::uint16_t port() const noexcept { return server_.port(); }
    std::string realm() const { return "http://127.0.0.1:" + std::to_string(port()) + "/token"; }

    void add_user(std::string user, std::string password)
    {
        std::lock_guard lk(mutex_);
        users_[std::move(user)] = std::move(password);
    }
    /// Accept `refresh_token` in OAuth2 POST requests (grant_type=refresh_token) as user "oauth".
    void set_refresh_token(std::string t)
    {
        std::lock_guard lk(mutex_);
        refresh_token_ = std::move(t);
    }
    /// Anonymous callers may pull.
    std::atomic<bool> anonymous_pull{false};
    /// Anonymous callers get 401 instead of a token without access.
    std::atomic<bool> reject_anonymous{false};
    /// expires_in of the next tokens.
    std::atomic<int> expires_in{300};
    /// The next `n` tokens are already expired (exp in the past, beyond the registry's leeway).
    std::atomic<int> issue_expired{0};

    /// Token requests served so far.
    int hits() const noexcept { return hits_.load(); }
    /// The Authorization header values received, in order ("" when absent).
    std::vector<std::string> authorizations() const
    {
        std::lock_guard lk(mutex_);
        return authorizations_;
    }
    /// The scopes requested, in order.
    std::vector<std::string> scopes() const
    {
        std::lock_guard lk(mutex_);
        return scopes_;
    }

    /// A token with `actions` on `repo`, for the test's own pushes.
    std::string issue(std::string const& repo, std::vector<std::string> actions) const
    {
        return signer_.sign(issuer, service, "pusher", {{repo, std::move(actions)}}, std::chrono::seconds(600));
    }

private:
    reply handle(http_request const& req)
    {
        ++hits_;
        reply r;
        std::string auth(req[http::field::authorization]);
        std::vector<std::string> scopes;
        std::string svc, grant, refresh;
        bool oauth = req.method() == http::verb::post;
        for (auto const& [k, v] : query_params(oauth ? "?" + req.body() : std::string(req.target()))) {
            if (k == "scope") scopes.push_back(v);
            if (k == "service") svc = v;
            if (k == "grant_type") grant = v;
            if (k == "refresh_token") refresh = v;
        }
        std::string subject;
        bool known = false;
        {
            std::lock_guard lk(mutex_);
            authorizations_.push_back(auth);
            for (auto const& s : scopes) scopes_.push_back(s);
            if (oauth) {
                if (grant != "refresh_token" || refresh_token_.empty() || refresh != refresh_token_) {
                    r.response.result(http::status::unauthorized);
                    r.response.body() = R"({"error":"invalid_grant"})";
                    return r;
                }
                known = true;
                subject = "oauth";
            } else if (!auth.empty()) {
                for (auto const& [u, p] : users_)
                    if (auth == "Basic " + base64_std(u + ":" + p)) {
                        known = true;
                        subject = u;
                    }
                if (!known) {
                    r.response.result(http::status::unauthorized);
                    r.response.body() = R"({"details":"wrong credentials"})";
                    return r;
                }
            }
        }
        if (!known && reject_anonymous) {
            r.response.result(http::status::unauthorized);
            r.response.body() = R"({"details":"authentication required"})";
            return r;
        }
        std::vector<std::pair<std::string, std::vector<std::string>>> access;
        for (auto const& s : scopes) { // repository:<name>:<actions>
            auto first = s.find(':');
            auto last = s.rfind(':');
            if (first == std::string::npos || last == first || s.substr(0, first) != "repository") continue;
            std::string name = s.substr(first + 1, last - first - 1);
            std::vector<std::string> actions;
            std::stringstream ss(s.substr(last + 1));
            for (std::string a; std::getline(ss, a, ',');)
                if (known || (anonymous_pull && a == "pull")) actions.push_back(a);
            access.emplace_back(name, actions);
        }
        auto offset = std::chrono::seconds(0);
        if (issue_expired > 0) {
            --issue_expired;
            offset = std::chrono::seconds(-3600);
        }
        auto token = signer_.sign(issuer, svc.empty() ? service : svc, known ? subject : "", access,
                                  std::chrono::seconds(expires_in.load()), offset);
        r.response.set(http::field::content_type, "application/json");
        r.response.body() = std::string(oauth ? R"({"access_token":")" : R"({"token":")") + token + R"(","expires_in":)" +
                            std::to_string(expires_in.load()) + "}";
        return r;
    }

    jwt_signer signer_;
    mutable std::mutex mutex_;
    std::map<std::string, std::string> users_;
    std::vector<std::string> authorizations_;
    std::vector<std::string> scopes_;
    std::string refresh_token_;
    std::atomic<int> hits_{0};
    loopback_http_server server_;
};

/// How a registry_fixture authenticates clients.
enum class registry_auth { none, htpasswd, token };

struct registry_config {
    bool tls = false;
    /// TLS certificate and key; empty: the test_pki's server certificate.
    fs::path tls_cert, tls_key;
    registry_auth auth = registry_auth::none;
    /// htpasswd: the one user.
    std::string user = "ocistore";
    std::string password = "s3cret-pass";
    /// token: the realm of the token server.
    std::string token_realm;
    fs::path token_rootcertbundle;
    /// Pull-through cache of this registry URL (proxy mode, read-only).
    std::string proxy_remote_url;
    std::string proxy_username, proxy_password;
};

/// bcrypt hash of "s3cret-pass" (cost 5), made once with Python's crypt.METHOD_BLOWFISH.
inline constexpr char const* test_password_bcrypt = "$2b$05$5K4dxYzQ2oeyp7IKQDzTQu9bGXTJQZOhs15G5p.JUpRKxIK7OcwUe";

/** A docker-registry on 127.0.0.1:port() with filesystem storage in a temporary directory.
    Starts in the constructor (waits until it accepts connections, at most 30 s; throws with
    its log otherwise) and stops in the destructor. */
class registry_fixture {
public:
    static bool available() { return have_program("docker-registry"); }

    explicit registry_fixture(registry_config cfg = {}, test_pki const* pki = nullptr)
        : cfg_(std::move(cfg)), dir_("ocistore-registry")
    {
        if (cfg_.tls && !pki) throw std::invalid_argument("registry_fixture: TLS needs a test_pki");
        for (int attempt = 1;; ++attempt) {
            port_ = free_port();
            if (start(pki)) return;
            // Another process took the port between free_port() and the registry's bind.
            if (attempt == 3 || log().find("address already in use") == std::string::npos)
                throw std::runtime_error("docker-registry exited: " + log());
        }
    }
    std::uint16_t port() const noexcept { return port_; }
    /// "127.0.0.1:port", the registry part of references.
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string url() const { return (cfg_.tls ? "https://" : "http://") + host(); }
    registry_config const& config() const noexcept { return cfg_; }
    std::string log() const { return read_text_file(dir_ / "registry.log"); }
    fs::path const& dir() const noexcept { return dir_.path(); }

    /// Stops the registry now (also done by the destructor).
    void stop() { process_.reset(); }

private:
    /// Writes the config and starts the registry on port_; false when it exited at once.
    bool start(test_pki const* pki)
    {
        std::ostringstream y;
        y << "version: 0.1\n"
          << "log:\n  level: info\n  accesslog:\n    disabled: false\n"
          << "storage:\n  filesystem:\n    rootdirectory: " << (dir_ / "storage").string() << "\n"
          << "  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n"
          << "http:\n  addr: 127.0.0.1:" << port_ << "\n  secret: ocistore-test-secret\n";
        if (cfg_.tls)
            y << "  tls:\n    certificate: " << (cfg_.tls_cert.empty() ? pki->server_cert : cfg_.tls_cert).string()
              << "\n    key: " << (cfg_.tls_key.empty() ? pki->server_key : cfg_.tls_key).string() << "\n";
        if (cfg_.auth == registry_auth::htpasswd) {
            if (cfg_.password != "s3cret-pass")
                throw std::invalid_argument("registry_fixture: only the built-in test password is hashed");
            write_text_file(dir_ / "htpasswd", cfg_.user + ":" + test_password_bcrypt + "\n");
            y << "auth:\n  htpasswd:\n    realm: ocistore-test\n    path: " << (dir_ / "htpasswd").string() << "\n";
        } else if (cfg_.auth == registry_auth::token) {
            y << "auth:\n  token:\n    realm: " << cfg_.token_realm << "\n    service: " << token_server::service
              << "\n    issuer: " << token_server::issuer << "\n    rootcertbundle: "
              << cfg_.token_rootcertbundle.string() << "\n";
        }
        if (!cfg_.proxy_remote_url.empty()) {
            y << "proxy:\n  remoteurl: " << cfg_.proxy_remote_url << "\n";
            if (!cfg_.proxy_username.empty())
                y << "  username: " << cfg_.proxy_username << "\n  password: " << cfg_.proxy_password << "\n";
        }
        write_text_file(dir_ / "config.yml", y.str());
        process_ = std::make_unique<child_process>(
            std::vector<std::string>{"docker-registry", "serve", (dir_ / "config.yml").string()}, dir_ / "registry.log");
        auto until = steady_clock::now() + std::chrono::seconds(30);
        while (!port_open(port_)) {
            if (!process_->running()) return false;
            if (steady_clock::now() > until)
                throw std::runtime_error("docker-registry did not listen within 30 s: " +
                                         read_text_file(dir_ / "registry.log"));
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        return true;
    }

    registry_config cfg_;
    temp_dir dir_;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

/// sha256 of `data` as "sha256:<hex>".
inline std::string sha256_digest(std::string_view data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static char const hex[] = "0123456789abcdef";
    std::string s = "sha256:";
    for (unsigned i = 0; i < len; ++i) {
        s += hex[md[i] >> 4];
        s += hex[md[i] & 15];
    }
    return s;
}

/** Pushes blobs and manifests to a registry with the distribution API (monolithic uploads),
    over plain HTTP or TLS (unverified), with an optional Authorization value. */
class registry_pusher {
public:
    registry_pusher(std::string host, std::uint16_t port, bool tls = false, std::string authorization = {})
        : host_(std::move(host)), port_(port), authorization_(std::move(authorization))
    {
        if (tls) tls_ = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    }

    /// Uploads `data` to `repo`; returns its digest.
    std::string push_blob(std::string const& repo, std::string const& data)
    {
        auto digest = sha256_digest(data);
        auto r = call(make_request(http::verb::post, "/v2/" + repo + "/blobs/uploads/"));
        if (r.status != 202) throw std::runtime_error("blob upload start: HTTP " + std::to_string(r.status) + " " + r.body);
        std::string loc = r.header("location");
        if (auto p = loc.find("://"); p != std::string::npos) loc = loc.substr(loc.find('/', p + 3));
        loc += (loc.find('?') == std::string::npos ? "?" : "&");
        loc += "digest=" + digest;
        auto put = make_request(http::verb::put, loc, data, {{"Content-Type", "application/octet-stream"}});
        r = call(std::move(put));
        if (r.status != 201) throw std::runtime_error("blob upload: HTTP " + std::to_string(r.status) + " " + r.body);
        return digest;
    }

    /// Puts manifest `body` of `media_type` under `reference` (a tag or digest); returns its digest.
    std::string push_manifest(std::string const& repo, std::string const& reference, std::string const& body,
                              std::string const& media_type)
    {
        auto r = call(make_request(http::verb::put, "/v2/" + repo + "/manifests/" + reference, body,
                                   {{"Content-Type", media_type}}));
        if (r.status != 201) throw std::runtime_error("manifest put: HTTP " + std::to_string(r.status) + " " + r.body);
        return sha256_digest(body);
    }

    /// A small image: config + one layer of `layer` bytes; returns the manifest (its digest via sha256_digest).
    struct image {
        std::string manifest, config, layer;
        std::string manifest_digest, config_digest, layer_digest;
    };
    image push_image(std::string const& repo, std::string const& tag, std::string layer)
    {
        image im;
        im.layer = std::move(layer);
        im.config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" +
                    sha256_digest(im.layer) + R"("]},"config":{}})";
        im.layer_digest = push_blob(repo, im.layer);
        im.config_digest = push_blob(repo, im.config);
        im.manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                      im.config_digest + R"(","size":)" + std::to_string(im.config.size()) +
                      R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
                      im.layer_digest + R"(","size":)" + std::to_string(im.layer.size()) + "}]}";
        im.manifest_digest = push_manifest(repo, tag, im.manifest, "application/vnd.oci.image.manifest.v1+json");
        return im;
    }

    client_response call(http_request req)
    {
        if (!authorization_.empty()) req.set(http::field::authorization, authorization_);
        return http_call(host_, port_, std::move(req), tls_.get());
    }

private:
    std::string host_;
    std::uint16_t port_;
    std::string authorization_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
};

/** Pushes image `ref_name` of the OCI layout at `layout` to `destination` ("host:port/repo:tag")
    with `skopeo copy --all --preserve-digests` over plain HTTP (at most 2 minutes); throws
    with skopeo's output on failure. */
inline void skopeo_push(fs::path const& layout, std::string const& ref_name, std::string const& destination)
{
    auto log = layout.parent_path() / (layout.filename().string() + "-skopeo.log");
    int status = run_command({"skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                              "oci:" + layout.string() + ":" + ref_name, "docker://" + destination},
                             log, std::chrono::seconds(120));
    if (status != 0) throw std::runtime_error("skopeo copy failed: " + read_text_file(log));
}

/// `n` pseudo-random bytes (deterministic per seed).
inline std::string random_bytes(std::size_t n, std::uint64_t seed = 42)
{
    std::string s(n, '\0');
    std::mt19937_64 g(seed);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        auto v = g();
        std::memcpy(s.data() + i, &v, 8);
    }
    for (; i < n; ++i) s[i] = static_cast<char>(g());
    return s;
}

} // namespace ocistore_test
