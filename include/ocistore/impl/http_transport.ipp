// Non-template bodies for ocistore/transport/http_transport.hpp.
#pragma once

#include <ocistore/transport/http_transport.hpp>

#include <ocistore/detail/http_pool.hpp>
#include <ocistore/detail/http_socket.hpp>
#include <ocistore/detail/http_url.hpp>
#include <ocistore/http/bearer_token.hpp>
#include <ocistore/http/header_values.hpp>
#include <ocistore/http/www_authenticate.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

namespace ocistore {
namespace detail {

namespace http_transport_impl {

namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using response_parser = http::response_parser<http::buffer_body>;
using request_type = http::request<http::string_body>;

inline error_code make(error e) { return make_error_code(e); }

/// Maps a network-level failure to an ocistore::error where one fits; TLS failures pass through.
inline error_code map_net_error(boost::system::error_code const& e)
{
    namespace ae = boost::asio::error;
    if (e == ae::timed_out) return make(error::timeout);
    if (e == ae::eof || e == ae::connection_reset || e == ae::connection_refused || e == ae::connection_aborted ||
        e == ae::broken_pipe || e == ae::host_unreachable || e == ae::network_unreachable || e == ae::network_down ||
        e == ae::network_reset || e == ae::not_connected || e == ae::shut_down || e == ae::host_not_found ||
        e == ae::host_not_found_try_again || e == ae::no_data || e == ae::address_in_use || e == ssl::error::stream_truncated ||
        e == http::error::end_of_stream || e == http::error::partial_message)
        return make(error::connection_failed);
    if (e.category() == http::make_error_code(http::error::bad_version).category()) return make(error::protocol_error);
    return static_cast<std::error_code>(e);
}

/// The error a final status means.
inline error_code status_error(unsigned st)
{
    switch (st) {
    case 401:
    case 407: return make(error::unauthorized);
    case 403: return make(error::denied);
    case 404: return make(error::not_found);
    case 408: return make(error::timeout);
    case 429: return make(error::rate_limited);
    default: break;
    }
    if (st >= 500 && st <= 599) return make(error::server_error);
    return make(error::protocol_error);
}

inline bool is_redirect(unsigned st) { return st == 301 || st == 302 || st == 303 || st == 307 || st == 308; }

inline bool retryable_status(unsigned st)
{
    return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/// application/x-www-form-urlencoded value: unreserved characters kept, the rest %XX.
inline std::string form_encode(std::string_view s)
{
    static char const hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

/// What a finished attempt tells the retry loop.
struct attempt_info {
    unsigned status = 0;                           ///< final HTTP status, 0 when none was received
    std::optional<std::chrono::seconds> retry_after; ///< from Retry-After
};

inline bool worth_retrying(error_code const& ec, attempt_info const& info)
{
    if (info.status != 0) return retryable_status(info.status);
    return ec == error::timeout || ec == error::connection_failed;
}

/// Where a request goes first: a registry or one of its mirrors.
struct origin_info {
    http_endpoint ep;
    std::string prefix;         ///< path prefix before "/v2/", "" or "/x"
    std::string credential_key; ///< key for the credential store
    bool mirror = false;
};

struct request_spec {
    http::verb method = http::verb::get;
    std::string path; ///< "/v2/…"
    std::string accept;
    std::optional<std::uint64_t> range_from;
    bool identity_encoding = false;
    std::string repository;
};

/// A sent request whose response header has been read.
struct exchange {
    pooled_connection conn;
    std::unique_ptr<response_parser> parser;
    http_url url;

    unsigned status() const { return parser->get().result_int(); }
    std::string_view field(http::field f) const
    {
        auto v = parser->get()[f];
        return {v.data(), v.size()};
    }
    std::string_view field(std::string_view name) const
    {
        auto v = parser->get()[boost::beast::string_view(name.data(), name.size())];
        return {v.data(), v.size()};
    }
};

struct auth_state {
    std::string scheme; ///< "bearer", "basic" or "" (none asked for yet)
    std::string realm;
    std::string service;
    std::map<std::string, bearer_token, std::less<>> tokens; ///< by scope
};

} // namespace http_transport_impl

/// Shared state of http_transport copies and their readers.
class http_transport_state : public std::enable_shared_from_this<http_transport_state> {
public:
    using exchange = http_transport_impl::exchange;
    using origin_info = http_transport_impl::origin_info;
    using request_spec = http_transport_impl::request_spec;
    using attempt_info = http_transport_impl::attempt_info;

    OCISTORE_DECL explicit http_transport_state(http_options o);

    http_options opts;
    boost::asio::io_context ioc{1};
    /// Verification uses `opts.ca_file` and, from the first TLS connection on (tls_defaults),
    /// the system's default CA paths: parsing the system bundle costs tens of milliseconds,
    /// which a pull from plain-HTTP registries or a cache hit should not pay.
    boost::asio::ssl::context tls{boost::asio::ssl::context::tls_client};
    std::once_flag tls_defaults;
    std::shared_ptr<connection_pool> pool;

    OCISTORE_DECL bool insecure(http_endpoint const& ep) const;
    OCISTORE_DECL origin_info primary(image_reference const& ref) const;
    OCISTORE_DECL std::vector<origin_info> plan(image_reference const& ref, bool by_digest) const;

    OCISTORE_DECL std::unique_ptr<http_connection> connect(http_endpoint const& ep, steady_clock::time_point deadline,
                                                           error_code& ec);
    OCISTORE_DECL exchange send_once(http_url const& url, http_transport_impl::request_type& req,
                                     steady_clock::time_point deadline, error_code& ec);
    OCISTORE_DECL exchange perform(origin_info const& o, request_spec const& spec, steady_clock::time_point deadline,
                                   error_code& ec);
    OCISTORE_DECL void discard(exchange&& x);
    OCISTORE_DECL std::string read_small_body(exchange&& x, std::size_t cap, steady_clock::time_point deadline,
                                              error_code& ec);

    OCISTORE_DECL std::optional<credentials> lookup_credentials(std::string const& key);
    OCISTORE_DECL std::string authorization_for(origin_info const& o, std::string const& repository,
                                                steady_clock::time_point deadline, error_code& ec);
    OCISTORE_DECL void authenticate(origin_info const& o, std::string const& repository,
                                    std::vector<std::string> const& challenges, steady_clock::time_point deadline,
                                    error_code& ec);
    OCISTORE_DECL bearer_token fetch_token(origin_info const& o, std::string const& realm, std::string const& service,
                                           std::string const& scope, steady_clock::time_point deadline, error_code& ec);

    /// Runs `attempt(deadline, info, ec)` up to `attempts` times while worth retrying.
    template <class F>
    auto with_retries(unsigned attempts, steady_clock::time_point deadline, error_code& ec, F&& attempt)
        -> decltype(attempt(deadline, std::declval<attempt_info&>(), ec))
    {
        using result_t = decltype(attempt(deadline, std::declval<attempt_info&>(), ec));
        for (unsigned n = 1;; ++n) {
            attempt_info info;
            ec = {};
            auto attempt_deadline = std::min(deadline, steady_clock::now() + opts.attempt_timeout);
            result_t r = attempt(attempt_deadline, info, ec);
            if (!ec) return r;
            if (n >= attempts || !http_transport_impl::worth_retrying(ec, info)) return r;
            auto delay = backoff(n, info.retry_after);
            if (steady_clock::now() + delay >= deadline) return r;
            std::this_thread::sleep_for(delay);
        }
    }

    OCISTORE_DECL std::chrono::milliseconds backoff(unsigned attempt, std::optional<std::chrono::seconds> retry_after);

private:
    std::mutex auth_mutex_;
    std::map<http_endpoint, http_transport_impl::auth_state> auth_;
    std::mutex cred_mutex_;
    std::map<std::string, std::optional<credentials>, std::less<>> cred_cache_;
    std::mutex rng_mutex_;
    std::minstd_rand rng_;
};

/// A response body being read: straight from the socket into the caller's buffer when the
/// length is known, through the parser when chunked.
class http_body {
public:
    enum class mode { done, length, chunked, until_eof };

    http_body(std::shared_ptr<http_transport_state> st, http_transport_impl::exchange&& x,
              steady_clock::time_point hard_deadline)
        : state_(std::move(st)), conn_(std::move(x.conn)), parser_(std::move(x.parser)), hard_deadline_(hard_deadline)
    {
        if (parser_->is_done()) {
            mode_ = mode::done;
            complete();
        } else if (parser_->chunked()) {
            mode_ = mode::chunked;
        } else if (auto cl = parser_->content_length()) {
            mode_ = mode::length;
            remaining_ = *cl;
        } else {
            mode_ = mode::until_eof;
        }
    }
    http_body(http_body const&) = delete;
    http_body& operator=(http_body const&) = delete;

    bool at_end() const noexcept { return finished_; }

    std::size_t read_some(std::span<std::byte> out, error_code& ec)
    {
        if (failed_) {
            ec = failed_;
            return 0;
        }
        if (finished_) {
            ec = std::exchange(pending_, {});
            if (ec) failed_ = ec;
            return 0;
        }
        ec = {};
        if (out.empty()) return 0;
        auto t0 = steady_clock::now();
        std::size_t n = 0;
        switch (mode_) {
        case mode::length: n = read_length(out, t0, ec); break;
        case mode::chunked: n = read_chunked(out, t0, ec); break;
        case mode::until_eof: n = read_until_eof(out, t0, ec); break;
        case mode::done: break;
        }
        if (ec) return fail(ec);
        account(n, t0, ec);
        if (ec) return fail(ec);
        return n;
    }

private:
    steady_clock::time_point read_deadline(steady_clock::time_point now) const
    {
        return std::min(hard_deadline_, now + state_->opts.attempt_timeout);
    }

    std::size_t fail(error_code& ec)
    {
        failed_ = ec;
        finished_ = true;
        conn_.release(false);
        return 0;
    }

    /// Stall detection over the time spent waiting in reads (a slow consumer is no stall).
    void account(std::size_t n, steady_clock::time_point t0, error_code& ec)
    {
        auto rate = state_->opts.stall_min_bytes_per_second;
        if (rate == 0) return;
        waited_ += steady_clock::now() - t0;
        window_bytes_ += n;
        auto window = state_->opts.stall_window;
        if (waited_ < window) return;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited_).count();
        if (window_bytes_ * 1000 < rate * static_cast<std::uint64_t>(ms)) {
            ec = make_error_code(error::timeout);
            return;
        }
        waited_ = {};
        window_bytes_ = 0;
    }

    template <class Stream> std::size_t read_socket(Stream& s, std::span<std::byte> out, boost::system::error_code& bec)
    {
        return s.read_some(boost::asio::buffer(out.data(), out.size()), bec);
    }

    std::size_t read_length(std::span<std::byte> out, steady_clock::time_point now, error_code& ec)
    {
        auto& c = *conn_.get();
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), remaining_));
        std::size_t n = 0;
        if (c.buffer.size() > 0) {
            n = std::min(want, c.buffer.size());
            std::memcpy(out.data(), c.buffer.data().data(), n);
            c.buffer.consume(n);
        } else {
            boost::system::error_code bec;
            c.expires_at(read_deadline(now));
            n = c.visit([&](auto& s) { return read_socket(s, out.first(want), bec); });
            if (bec) {
                ec = http_transport_impl::map_net_error(bec);
                return 0;
            }
        }
        remaining_ -= n;
        if (remaining_ == 0) complete();
        return n;
    }

    std::size_t read_until_eof(std::span<std::byte> out, steady_clock::time_point now, error_code& ec)
    {
        auto& c = *conn_.get();
        if (c.buffer.size() > 0) {
            std::size_t n = std::min(out.size(), c.buffer.size());
            std::memcpy(out.data(), c.buffer.data().data(), n);
            c.buffer.consume(n);
            return n;
        }
        boost::system::error_code bec;
        c.expires_at(read_deadline(now));
        std::size_t n = c.visit([&](auto& s) { return read_socket(s, out, bec); });
        if (bec == boost::asio::error::eof) {
            finished_ = true;
            conn_.release(false);
            return 0;
        }
        if (bec) ec = http_transport_impl::map_net_error(bec);
        return n;
    }

    std::size_t read_chunked(std::span<std::byte> out, steady_clock::time_point now, error_code& ec)
    {
        namespace http = boost::beast::http;
        auto& c = *conn_.get();
        for (;;) {
            auto& body = parser_->get().body();
            body.data = out.data();
            body.size = out.size();
            body.more = true;
            boost::system::error_code bec;
            c.expires_at(read_deadline(now));
            c.visit([&](auto& s) { http::read_some(s, c.buffer, *parser_, bec); });
            if (bec == http::error::need_buffer) bec = {};
            std::size_t n = out.size() - body.size;
            if (bec) {
                ec = http_transport_impl::map_net_error(bec);
                return 0;
            }
            if (parser_->is_done()) complete();
            if (n > 0 || finished_) return n;
        }
    }

    /// The body ended where it said: keep the connection unless more bytes followed.
    void complete()
    {
        finished_ = true;
        auto& c = *conn_.get();
        bool extra = c.buffer.size() > 0;
        bool peer_closed = false;
        if (!extra && !c.is_tls()) {
            char probe;
            auto r = ::recv(c.socket().socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
            extra = r > 0;
            peer_closed = r == 0;
        }
        if (extra) {
            pending_ = make_error_code(error::protocol_error);
            conn_.release(false);
            return;
        }
        ++c.responses;
        conn_.release(parser_->keep_alive() && !peer_closed);
    }

    std::shared_ptr<http_transport_state> state_;
    pooled_connection conn_;
    std::unique_ptr<http_transport_impl::response_parser> parser_;
    steady_clock::time_point hard_deadline_;
    mode mode_ = mode::done;
    std::uint64_t remaining_ = 0;
    bool finished_ = false;
    error_code pending_;
    error_code failed_;
    steady_clock::duration waited_{};
    std::uint64_t window_bytes_ = 0;
};

// ---- http_transport_state -----------------------------------------------------------------

OCISTORE_DECL http_transport_state::http_transport_state(http_options o) : opts(std::move(o))
{
    if (!opts.credentials) {  // a missing config is fine; an unreadable or malformed one is reported
        error_code ec;
        std::string why;
        auto store = credential_store::from_docker_config(ec, &why);
        if (ec) throw_error(ec, "http_transport: cannot use the Docker config: " + (why.empty() ? ec.message() : why));
        opts.credentials = std::move(store);
    }
    if (!opts.proxy) opts.proxy = proxy_config::from_environment();
    for (auto& h : opts.insecure_hosts) h = ascii_lowercase(h);

    namespace ssl = boost::asio::ssl;
    boost::system::error_code bec;
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                    bec);
    if (!opts.ca_file.empty()) {
        tls.load_verify_file(opts.ca_file, bec);
        if (bec)
            throw_error(make_error_code(error::invalid_argument),
                        "http_options::ca_file: cannot load CA certificates from '" + opts.ca_file + "': " + bec.message());
    }
    tls.set_verify_mode(ssl::verify_peer);

    for (auto const& [registry, list] : opts.mirrors) {
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto const& url = list[i].url;
            auto u = parse_http_url(url);
            // Never quote a URL with userinfo: it may hold a password.
            std::string what = "mirror " + std::to_string(i + 1) + " of " + registry +
                               (url.find('@') == std::string::npos ? " ('" + url + "')" : std::string());
            if (!u || u->target.find('?') != std::string::npos)
                throw_error(make_error_code(error::invalid_argument),
                            what + " is not an http(s) URL without userinfo and query");
            if (!u->endpoint.tls && !insecure(u->endpoint))
                throw_error(make_error_code(error::invalid_argument),
                            what + " is plain HTTP but its host is not in http_options::insecure_hosts");
        }
    }
    pool = std::make_shared<connection_pool>(opts.max_connections_per_host, std::chrono::seconds(30));
    rng_.seed(std::random_device{}());
}

OCISTORE_DECL bool http_transport_state::insecure(http_endpoint const& ep) const
{
    std::string bracketed = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
    std::string hp = ep.host_port();
    for (auto const& h : opts.insecure_hosts)
        if (h == ep.host || h == bracketed || h == hp) return true;
    return false;
}

OCISTORE_DECL http_transport_impl::origin_info http_transport_state::primary(image_reference const& ref) const
{
    origin_info o;
    std::string api = ascii_lowercase(ref.api_host());
    o.ep.tls = true;
    parse_authority(api, o.ep);
    std::string bracketed = o.ep.host.find(':') != std::string::npos ? "[" + o.ep.host + "]" : o.ep.host;
    bool plain = false;
    for (auto const& h : opts.insecure_hosts)
        if (h == o.ep.host || h == bracketed || h == api) plain = true;
    if (plain) {
        o.ep.tls = false;
        parse_authority(api, o.ep);
    }
    o.credential_key = ref.registry();
    return o;
}

OCISTORE_DECL std::vector<http_transport_impl::origin_info> http_transport_state::plan(image_reference const& ref,
                                                                                      bool by_digest) const
{
    std::vector<origin_info> out;
    if (auto it = opts.mirrors.find(ref.registry()); it != opts.mirrors.end()) {
        for (auto const& m : it->second) {
            if (!by_digest && !m.trusted) continue;
            auto u = parse_http_url(m.url);
            if (!u) continue;
            origin_info o;
            o.ep = u->endpoint;
            o.prefix = u->target;
            while (!o.prefix.empty() && o.prefix.back() == '/') o.prefix.pop_back();
            o.credential_key = o.ep.authority();
            o.mirror = true;
            out.push_back(std::move(o));
        }
    }
    out.push_back(primary(ref));
    return out;
}

OCISTORE_DECL std::chrono::milliseconds http_transport_state::backoff(unsigned attempt,
                                                                      std::optional<std::chrono::seconds> retry_after)
{
    using ms = std::chrono::milliseconds;
    auto const& rp = opts.retry;
    if (retry_after) return std::min<ms>(std::chrono::duration_cast<ms>(*retry_after), rp.max_retry_after);
    double d = static_cast<double>(rp.base_backoff.count());
    for (unsigned i = 1; i < attempt && d < static_cast<double>(rp.max_backoff.count()); ++i) d *= 2;
    d = std::min(d, static_cast<double>(rp.max_backoff.count()));
    if (rp.jitter > 0) {
        std::lock_guard lk(rng_mutex_);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        d *= 1.0 - std::clamp(rp.jitter, 0.0, 1.0) * u(rng_);
    }
    return ms(static_cast<ms::rep>(d));
}

OCISTORE_DECL std::unique_ptr<http_connection> http_transport_state::connect(http_endpoint const& ep,
                                                                             steady_clock::time_point deadline,
                                                                             error_code& ec)
{
    namespace http = boost::beast::http;
    using namespace http_transport_impl;

    // Through a proxy?
    std::optional<http_endpoint> via;
    std::string proxy_auth;
    if (auto p = opts.proxy->proxy_for(ep.tls ? "https" : "http", ep.host, ep.port)) {
        error_code pec;
        auto pu = parse_proxy_url(*p, pec);
        if (pec) {
            ec = pec;
            return nullptr;
        }
        if (pu.scheme != "http") { // TLS to the proxy itself is not supported
            ec = make(error::invalid_argument);
            return nullptr;
        }
        via = http_endpoint{false, pu.host, pu.port};
        if (pu.user) proxy_auth = basic_authorization(*pu.user, pu.password.value_or(""));
    }
    http_endpoint const& hop = via ? *via : ep;

    boost::system::error_code bec;
    boost::asio::ip::tcp::resolver resolver(ioc);
    auto results = resolver.resolve(hop.host, std::to_string(hop.port), boost::asio::ip::resolver_base::numeric_service, bec);
    if (bec) {
        ec = map_net_error(bec);
        return nullptr;
    }
    timed_socket sock(ioc.get_executor());
    sock.expires_at(deadline);
    bec = boost::asio::error::host_not_found;
    for (auto const& entry : results) {
        sock.connect(entry.endpoint(), bec);
        if (!bec) break;
        if (bec == boost::asio::error::timed_out) break;
    }
    if (bec) {
        ec = map_net_error(bec);
        return nullptr;
    }
    auto conn = std::make_unique<http_connection>(ep, std::move(sock));
    conn->expires_at(deadline);

    if (via && ep.tls) {
        http::request<http::empty_body> req{http::verb::connect, ep.host_port(), 11};
        req.set(http::field::host, ep.host_port());
        req.set(http::field::user_agent, opts.user_agent);
        if (!proxy_auth.empty()) req.set(http::field::proxy_authorization, proxy_auth);
        http::write(conn->socket(), req, bec);
        http::response_parser<http::empty_body> p;
        p.skip(true);
        p.header_limit(static_cast<std::uint32_t>(opts.max_header_size));
        if (!bec) http::read_header(conn->socket(), conn->buffer, p, bec);
        if (bec) {
            ec = map_net_error(bec);
            return nullptr;
        }
        unsigned st = p.get().result_int();
        if (st != 200) {
            ec = make(st == 407 ? error::unauthorized : error::connection_failed);
            return nullptr;
        }
        if (conn->buffer.size() != 0) {
            ec = make(error::protocol_error);
            return nullptr;
        }
    } else if (via) {
        conn->absolute_form = true;
        conn->proxy_authorization = proxy_auth;
    }

    if (ep.tls) {
        std::call_once(tls_defaults, [this] {
            boost::system::error_code ignored; // without them, only ca_file's certificates verify
            tls.set_default_verify_paths(ignored);
        });
        auto& s = conn->start_tls(tls);
        boost::system::error_code ignored;
        (void)boost::asio::ip::make_address(ep.host, ignored);
        if (ignored && !SSL_set_tlsext_host_name(s.native_handle(), ep.host.c_str())) {
            ec = make(error::invalid_argument);
            return nullptr;
        }
        s.set_verify_mode(ssl::verify_peer);
        s.set_verify_callback(ssl::host_name_verification(ep.host));
        s.handshake(ssl::stream_base::client, bec);
        if (bec) {
            ec = map_net_error(bec);
            return nullptr;
        }
    }
    ec = {};
    return conn;
}

OCISTORE_DECL http_transport_impl::exchange http_transport_state::send_once(http_url const& url,
                                                                           http_transport_impl::request_type& req,
                                                                           steady_clock::time_point deadline,
                                                                           error_code& ec)
{
    namespace http = boost::beast::http;
    using namespace http_transport_impl;
    for (int round = 0;; ++round) {
        auto lease = pool->acquire(url.endpoint, deadline);
        if (!lease) {
            ec = make(error::timeout);
            return {};
        }
        if (!lease.get()) {
            auto c = connect(url.endpoint, deadline, ec);
            if (ec) return {};
            lease.reset(std::move(c));
        }
        auto& c = *lease.get();
        c.expires_at(deadline);
        req.target(c.absolute_form ? url.str() : url.target);
        req.set(http::field::host, url.endpoint.authority());
        if (!c.proxy_authorization.empty())
            req.set(http::field::proxy_authorization, c.proxy_authorization);
        else
            req.erase(http::field::proxy_authorization);
        req.prepare_payload();

        boost::system::error_code bec;
        c.visit([&](auto& s) { http::write(s, req, bec); });
        auto parser = std::make_unique<response_parser>();
        parser->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(opts.max_header_size, UINT32_MAX)));
        parser->body_limit(boost::none);
        if (req.method() == http::verb::head) parser->skip(true);
        if (!bec) c.visit([&](auto& s) { http::read_header(s, c.buffer, *parser, bec); });
        if (bec) {
            // A kept-alive connection the server closed meanwhile: once more on a fresh one.
            if (round == 0 && lease.reused() && !parser->got_some() && bec != boost::asio::error::timed_out) {
                lease.release(false);
                continue;
            }
            ec = map_net_error(bec);
            return {};
        }
        ec = {};
        return exchange{std::move(lease), std::move(parser), url};
    }
}

OCISTORE_DECL void http_transport_state::discard(exchange&& x)
{
    if (!x.conn) return;
    auto& p = *x.parser;
    if (p.is_done()) {
        bool clean = x.conn->buffer.size() == 0;
        x.conn.release(p.keep_alive() && clean);
        return;
    }
    auto cl = p.content_length();
    if (p.chunked() || !cl || *cl > 64 * 1024) {
        x.conn.release(false);
        return;
    }
    http_body body(shared_from_this(), std::move(x), steady_clock::now() + std::chrono::seconds(5));
    std::array<std::byte, 8192> scratch;
    error_code ec;
    while (body.read_some(scratch, ec) > 0 && !ec) {
    }
}

OCISTORE_DECL std::string http_transport_state::read_small_body(exchange&& x, std::size_t cap,
                                                                 steady_clock::time_point deadline, error_code& ec)
{
    std::string out;
    if (auto cl = x.parser->content_length(); cl && *cl > cap && !x.parser->is_done()) {
        x.conn.release(false);
        ec = make_error_code(error::too_large);
        return {};
    }
    if (auto cl = x.parser->content_length()) out.reserve(static_cast<std::size_t>(*cl));
    http_body body(shared_from_this(), std::move(x), deadline);
    std::size_t used = 0;
    for (;;) {
        if (out.size() - used < 16384) out.resize(std::max<std::size_t>(out.size() * 2, used + 65536));
        auto span = std::span<std::byte>(reinterpret_cast<std::byte*>(out.data() + used), out.size() - used);
        std::size_t n = body.read_some(span, ec);
        if (ec) return {};
        if (n == 0) break;
        used += n;
        if (used > cap) {
            ec = make_error_code(error::too_large);
            return {};
        }
    }
    out.resize(used);
    ec = {};
    return out;
}

OCISTORE_DECL std::optional<credentials> http_transport_state::lookup_credentials(std::string const& key)
{
    std::lock_guard lk(cred_mutex_);
    if (auto it = cred_cache_.find(key); it != cred_cache_.end()) return it->second;
    error_code ec;
    auto c = opts.credentials->lookup(key, ec);
    if (ec) c.reset(); // a failing helper: go on anonymously
    cred_cache_.emplace(key, c);
    return c;
}

OCISTORE_DECL bearer_token http_transport_state::fetch_token(origin_info const& o, std::string const& realm,
                                                             std::string const& service, std::string const& scope,
                                                             steady_clock::time_point deadline, error_code& ec)
{
    namespace http = boost::beast::http;
    using namespace http_transport_impl;
    auto creds = lookup_credentials(o.credential_key);
    std::string scopes[1] = {scope};
    bool oauth = creds && !creds->identity_token.empty();
    auto target = oauth ? realm : token_request_target(realm, service, scopes);
    auto url = parse_http_url(target);
    if (!url || (!url->endpoint.tls && !insecure(url->endpoint))) {
        ec = make(error::protocol_error);
        return {};
    }
    return with_retries(opts.retry.max_attempts, deadline, ec,
                        [&](steady_clock::time_point d, attempt_info& info, error_code& aec) -> bearer_token {
                            request_type req{oauth ? http::verb::post : http::verb::get, "/", 11};
                            req.set(http::field::user_agent, opts.user_agent);
                            req.set(http::field::accept, "application/json");
                            if (oauth) {
                                req.set(http::field::content_type, "application/x-www-form-urlencoded");
                                req.body() = "grant_type=refresh_token&client_id=ocistore&service=" + form_encode(service) +
                                             "&scope=" + form_encode(scope) +
                                             "&refresh_token=" + form_encode(creds->identity_token);
                            } else if (creds && !creds->username.empty()) {
                                req.set(http::field::authorization, basic_authorization(creds->username, creds->password));
                            }
                            auto sent = steady_clock::now();
                            auto x = send_once(*url, req, d, aec);
                            if (aec) return {};
                            unsigned st = x.status();
                            if (st != 200) {
                                info.status = st;
                                if (auto ra = x.field(http::field::retry_after); !ra.empty())
                                    info.retry_after = parse_retry_after(ra, std::chrono::system_clock::now());
                                discard(std::move(x));
                                aec = status_error(st);
                                return {};
                            }
                            auto body = read_small_body(std::move(x), max_token_response_size, d, aec);
                            if (aec) return {};
                            return parse_token_response(body, sent, aec);
                        });
}

OCISTORE_DECL std::string http_transport_state::authorization_for(origin_info const& o, std::string const& repository,
                                                                  steady_clock::time_point deadline, error_code& ec)
{
    using namespace http_transport_impl;
    ec = {};
    std::string scheme, realm, service;
    auto scope = repository_scope(repository);
    {
        std::lock_guard lk(auth_mutex_);
        auto it = auth_.find(o.ep);
        if (it == auth_.end()) return {};
        auto& a = it->second;
        scheme = a.scheme;
        if (scheme == "bearer") {
            if (auto t = a.tokens.find(scope); t != a.tokens.end() && !t->second.expired(steady_clock::now()))
                return "Bearer " + t->second.token;
            realm = a.realm;
            service = a.service;
        }
    }
    if (scheme == "basic") {
        auto creds = lookup_credentials(o.credential_key);
        if (!creds || creds->username.empty()) return {};
        return basic_authorization(creds->username, creds->password);
    }
    if (scheme != "bearer") return {};
    auto token = fetch_token(o, realm, service, scope, deadline, ec);
    if (ec) return {};
    std::string header = "Bearer " + token.token;
    std::lock_guard lk(auth_mutex_);
    auth_[o.ep].tokens[scope] = std::move(token);
    return header;
}

OCISTORE_DECL void http_transport_state::authenticate(origin_info const& o, std::string const& repository,
                                                      std::vector<std::string> const& lines,
                                                      steady_clock::time_point deadline, error_code& ec)
{
    using namespace http_transport_impl;
    std::vector<std::string_view> views(lines.begin(), lines.end());
    error_code pec;
    auto challenges = parse_www_authenticate(std::span<std::string_view const>(views), pec);
    if (pec || challenges.empty()) {
        ec = make(error::unauthorized);
        return;
    }
    if (auto const* b = find_challenge(challenges, "bearer")) {
        auto realm = b->param("realm");
        if (!realm || realm->empty()) {
            ec = make(error::protocol_error);
            return;
        }
        std::string service(b->param("service").value_or(""));
        auto our_scope = repository_scope(repository);
        std::string scope(b->param("scope").value_or(our_scope));
        auto token = fetch_token(o, std::string(*realm), service, scope, deadline, ec);
        if (ec) return;
        std::lock_guard lk(auth_mutex_);
        auto& a = auth_[o.ep];
        a.scheme = "bearer";
        a.realm = std::string(*realm);
        a.service = service;
        a.tokens[our_scope] = std::move(token);
        return;
    }
    if (find_challenge(challenges, "basic")) {
        auto creds = lookup_credentials(o.credential_key);
        if (!creds || creds->username.empty()) {
            ec = make(error::unauthorized);
            return;
        }
        std::lock_guard lk(auth_mutex_);
        auth_[o.ep].scheme = "basic";
        return;
    }
    ec = make(error::unauthorized);
}

OCISTORE_DECL http_transport_impl::exchange http_transport_state::perform(origin_info const& o, request_spec const& spec,
                                                                         steady_clock::time_point deadline,
                                                                         error_code& ec)
{
    namespace http = boost::beast::http;
    using namespace http_transport_impl;
    http_url url{o.ep, o.prefix + spec.path};
    bool on_origin = true;
    bool refreshed = false;
    bool challenged = false;
    int redirects = 0;
    auto method = spec.method;
    for (;;) {
        request_type req{method, "/", 11};
        req.set(http::field::user_agent, opts.user_agent);
        if (!spec.accept.empty()) req.set(http::field::accept, spec.accept);
        if (spec.range_from) req.set(http::field::range, "bytes=" + std::to_string(*spec.range_from) + "-");
        if (spec.identity_encoding) req.set(http::field::accept_encoding, "identity");
        if (on_origin) {
            auto a = authorization_for(o, spec.repository, deadline, ec);
            if (ec) return {};
            if (!a.empty()) req.set(http::field::authorization, a);
        }
        auto x = send_once(url, req, deadline, ec);
        if (ec) return {};
        unsigned st = x.status();
        if (is_redirect(st)) {
            auto loc = x.field(http::field::location);
            if (loc.empty()) return x;
            auto next = resolve_location(url, loc);
            discard(std::move(x));
            if (++redirects > 10 || !next || (!next->endpoint.tls && !insecure(next->endpoint))) {
                ec = make(error::protocol_error);
                return {};
            }
            if (st == 303 && method != http::verb::head) method = http::verb::get;
            on_origin = next->endpoint == o.ep;
            url = std::move(*next);
            continue;
        }
        // A 401 to a request without credentials asks for them; one to a request with
        // credentials gets one refresh.
        bool had_auth = req.find(http::field::authorization) != req.end();
        if (st == 401 && on_origin && !(had_auth ? refreshed : challenged)) {
            (had_auth ? refreshed : challenged) = true;
            std::vector<std::string> lines;
            for (auto const& f : x.parser->get())
                if (f.name() == http::field::www_authenticate) lines.emplace_back(f.value());
            discard(std::move(x));
            authenticate(o, spec.repository, lines, deadline, ec);
            if (ec) return {};
            continue;
        }
        return x;
    }
}

} // namespace detail

// ---- blob_reader --------------------------------------------------------------------------

OCISTORE_DECL http_transport::blob_reader::blob_reader() noexcept = default;
OCISTORE_DECL http_transport::blob_reader::blob_reader(blob_reader&&) noexcept = default;
OCISTORE_DECL http_transport::blob_reader& http_transport::blob_reader::operator=(blob_reader&&) noexcept = default;
OCISTORE_DECL http_transport::blob_reader::~blob_reader() = default;

OCISTORE_DECL std::size_t http_transport::blob_reader::read_some(std::span<std::byte> buffer, error_code& ec)
{
    if (!body_) {
        ec = {};
        return 0;
    }
    return body_->read_some(buffer, ec);
}

OCISTORE_DECL std::size_t http_transport::blob_reader::read_some(std::span<std::byte> buffer)
{
    error_code ec;
    auto n = read_some(buffer, ec);
    detail::throw_if(ec, "http_transport::blob_reader::read_some");
    return n;
}

// ---- http_transport -----------------------------------------------------------------------

OCISTORE_DECL http_transport::http_transport(http_options options)
    : state_(std::make_shared<detail::http_transport_state>(std::move(options)))
{
}

OCISTORE_DECL http_options const& http_transport::options() const noexcept { return state_->opts; }

namespace detail::http_transport_impl {

inline std::string join_accept(std::span<std::string_view const> accept)
{
    std::string s; // empty: no Accept header, the registry chooses
    for (auto a : accept) {
        if (!s.empty()) s += ", ";
        s += a;
    }
    return s;
}

/// Tries each endpoint of `plan` in order (mirrors once, the last with the retry policy).
template <class F>
auto over_endpoints(http_transport_state& st, std::vector<origin_info> const& plan, error_code& ec, F&& attempt)
    -> decltype(attempt(plan.front(), steady_clock::time_point{}, std::declval<attempt_info&>(), ec))
{
    auto deadline = steady_clock::now() + st.opts.overall_timeout;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        unsigned attempts = i + 1 == plan.size() ? std::max(1u, st.opts.retry.max_attempts) : 1u;
        auto r = st.with_retries(attempts, deadline, ec, [&](steady_clock::time_point d, attempt_info& info, error_code& aec) {
            return attempt(plan[i], d, info, aec);
        });
        if (!ec || i + 1 == plan.size()) return r;
    }
    return {};
}

inline void note_failure(exchange const& x, attempt_info& info)
{
    info.status = x.status();
    if (auto ra = x.field(http::field::retry_after); !ra.empty())
        info.retry_after = parse_retry_after(ra, std::chrono::system_clock::now());
}

inline std::string manifest_path(image_reference const& ref)
{
    return "/v2/" + ref.repository() + "/manifests/" + ref.reference_for_fetch();
}

} // namespace detail::http_transport_impl

OCISTORE_DECL fetched_manifest http_transport::fetch_manifest(image_reference const& ref,
                                                              std::span<std::string_view const> accept, error_code& ec)
{
    using namespace detail::http_transport_impl;
    auto& st = *state_;
    request_spec spec;
    spec.method = http::verb::get;
    spec.path = manifest_path(ref);
    spec.accept = join_accept(accept);
    spec.repository = ref.repository();
    return over_endpoints(st, st.plan(ref, ref.digest().has_value()), ec,
                          [&](origin_info const& o, detail::steady_clock::time_point d, attempt_info& info,
                              error_code& aec) -> fetched_manifest {
                              auto x = st.perform(o, spec, d, aec);
                              if (aec) return {};
                              if (x.status() != 200) {
                                  note_failure(x, info);
                                  aec = status_error(x.status());
                                  st.discard(std::move(x));
                                  return {};
                              }
                              fetched_manifest m;
                              m.media_type = std::string(x.field(http::field::content_type));
                              if (auto dcd = x.field("Docker-Content-Digest"); !dcd.empty()) {
                                  error_code dec;
                                  auto dg = digest::parse(dcd, dec);
                                  if (!dec) m.server_digest = std::move(dg);
                              }
                              auto body_deadline = std::max(d, detail::steady_clock::now() + st.opts.attempt_timeout);
                              m.bytes = st.read_small_body(std::move(x), st.opts.max_manifest_size, body_deadline, aec);
                              if (aec) return {};
                              return m;
                          });
}

OCISTORE_DECL fetched_manifest http_transport::fetch_manifest(image_reference const& ref,
                                                              std::span<std::string_view const> accept)
{
    error_code ec;
    auto r = fetch_manifest(ref, accept, ec);
    detail::throw_if(ec, "http_transport::fetch_manifest");
    return r;
}

OCISTORE_DECL resolved_manifest http_transport::resolve(image_reference const& ref,
                                                        std::span<std::string_view const> accept, error_code& ec)
{
    using namespace detail::http_transport_impl;
    auto& st = *state_;
    request_spec spec;
    spec.method = http::verb::head;
    spec.path = manifest_path(ref);
    spec.accept = join_accept(accept);
    spec.repository = ref.repository();
    bool need_get = false;
    auto r = over_endpoints(st, st.plan(ref, ref.digest().has_value()), ec,
                            [&](origin_info const& o, detail::steady_clock::time_point d, attempt_info& info,
                                error_code& aec) -> resolved_manifest {
                                auto x = st.perform(o, spec, d, aec);
                                if (aec) return {};
                                if (x.status() != 200) {
                                    note_failure(x, info);
                                    aec = status_error(x.status());
                                    st.discard(std::move(x));
                                    return {};
                                }
                                resolved_manifest m;
                                m.media_type = std::string(x.field(http::field::content_type));
                                if (auto cl = x.field(http::field::content_length); !cl.empty())
                                    m.size = parse_content_length(cl);
                                error_code dec;
                                auto dcd = x.field("Docker-Content-Digest");
                                if (!dcd.empty()) m.manifest_digest = digest::parse(dcd, dec);
                                if (dcd.empty() || dec) {
                                    if (ref.digest())
                                        m.manifest_digest = *ref.digest();
                                    else
                                        need_get = true;
                                }
                                st.discard(std::move(x));
                                return m;
                            });
    if (ec || !need_get) return r;
    // No digest header: hash the manifest itself.
    auto m = fetch_manifest(ref, accept, ec);
    if (ec) return {};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_Digest(m.bytes.data(), m.bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) {
        ec = make_error_code(error::protocol_error);
        return {};
    }
    r.manifest_digest =
        digest::from_bytes("sha256", std::span<std::byte const>(reinterpret_cast<std::byte const*>(md), len), ec);
    if (ec) return {};
    r.media_type = m.media_type;
    r.size = m.bytes.size();
    return r;
}

OCISTORE_DECL resolved_manifest http_transport::resolve(image_reference const& ref,
                                                        std::span<std::string_view const> accept)
{
    error_code ec;
    auto r = resolve(ref, accept, ec);
    detail::throw_if(ec, "http_transport::resolve");
    return r;
}

OCISTORE_DECL http_transport::blob_reader http_transport::open_blob(image_reference const& ref, digest const& d,
                                                                    std::uint64_t offset, error_code& ec)
{
    using namespace detail::http_transport_impl;
    auto& st = *state_;
    request_spec spec;
    spec.method = http::verb::get;
    spec.path = "/v2/" + ref.repository() + "/blobs/" + d.str();
    if (offset > 0) spec.range_from = offset;
    spec.identity_encoding = true;
    spec.repository = ref.repository();
    return over_endpoints(
        st, st.plan(ref, true), ec,
        [&](origin_info const& o, detail::steady_clock::time_point dl, attempt_info& info, error_code& aec) -> blob_reader {
            auto x = st.perform(o, spec, dl, aec);
            if (aec) return {};
            blob_reader r;
            unsigned s = x.status();
            auto cl = x.parser->content_length();
            if (s == 200) {
                r.offset_ = 0;
                if (cl) r.size_ = *cl;
            } else if (s == 206 && offset > 0) {
                auto cr = parse_content_range(x.field(http::field::content_range));
                if (!cr || cr->first != offset || (cl && *cl != cr->length())) {
                    st.discard(std::move(x));
                    aec = make(error::protocol_error);
                    return {};
                }
                r.offset_ = offset;
                r.size_ = cr->complete_length;
            } else if (s == 416 && offset > 0) {
                auto total = parse_unsatisfied_range(x.field(http::field::content_range));
                st.discard(std::move(x));
                if (!total) {
                    aec = make(error::protocol_error);
                    return {};
                }
                if (*total != offset) {
                    aec = make(error::invalid_argument);
                    return {};
                }
                r.offset_ = offset;
                r.size_ = offset;
                return r;
            } else {
                note_failure(x, info);
                aec = status_error(s);
                st.discard(std::move(x));
                return {};
            }
            r.body_ = std::make_unique<detail::http_body>(st.shared_from_this(), std::move(x),
                                                          detail::steady_clock::time_point::max());
            return r;
        });
}

OCISTORE_DECL http_transport::blob_reader http_transport::open_blob(image_reference const& ref, digest const& d,
                                                                    std::uint64_t offset)
{
    error_code ec;
    auto r = open_blob(ref, d, offset, ec);
    detail::throw_if(ec, "http_transport::open_blob");
    return r;
}

} // namespace ocistore
