// Test support: HTTP intermediaries on 127.0.0.1 for transport tests. fault_proxy forwards to a
// registry and injects failures (status codes, Retry-After, cut bodies, ignored ranges,
// cross-host redirects, extra bytes, oversize manifests, throttled blobs) while logging every
// request and the body bytes it relays;
// forward_proxy is an HTTP proxy (absolute-form requests and CONNECT tunnels).
#pragma once

#include <support/loopback_http.hpp>

#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ocistore_test {

/// A request as an intermediary saw it.
struct logged_request {
    std::string method, target, host, authorization, range;
};

inline logged_request log_entry(http_request const& req)
{
    return {std::string(req.method_string()), std::string(req.target()), std::string(req[http::field::host]),
            std::string(req[http::field::authorization]), std::string(req[http::field::range])};
}

/// Copies an upstream response into a reply (framing headers are recomputed).
inline reply relay(client_response const& up, bool head)
{
    reply r;
    r.response.result(up.status);
    for (auto const& [k, v] : up.headers) {
        if (k == "connection" || k == "transfer-encoding" || k == "keep-alive") continue;
        if (k == "content-length" && !head) continue;
        r.response.set(k, v);
    }
    r.response.body() = up.body;
    return r;
}

/** Forwards every request to a plain-HTTP upstream (a registry), one upstream connection per
    request, applying the configured faults. All setters are thread-safe. */
class fault_proxy {
public:
    fault_proxy(std::string upstream_host, std::uint16_t upstream_port)
        : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port),
          server_([this](http_request const& r) { return handle(r); })
    {
    }

    std::uint16_t port() const noexcept { return server_.port(); }
    /// "127.0.0.1:port".
    std::string host() const { return "127.0.0.1:" + std::to_string(port()); }
    /// TCP connections accepted so far.
    int connections() const noexcept { return server_.connections(); }

    /// The next `count` requests whose target contains `path_part` get `status` (with Retry-After when given).
    void fail_next(std::string path_part, unsigned status, int count, std::string retry_after = {})
    {
        std::lock_guard lk(mutex_);
        failures_.push_back({std::move(path_part), status, count, std::move(retry_after)});
    }
    /// The next `count` blob GETs are cut after `body_bytes` bytes of body (the connection closes).
    void cut_blobs_after(std::size_t body_bytes, int count = 1)
    {
        std::lock_guard lk(mutex_);
        cut_after_ = body_bytes;
        cut_count_ = count;
    }
    /// Strip Range from forwarded requests (the upstream then answers 200 with the whole blob).
    void ignore_range(bool on)
    {
        std::lock_guard lk(mutex_);
        ignore_range_ = on;
    }
    /** Answer blob GETs arriving for 127.0.0.1 with 307 to http://`host`:port()/_redirected/…;
        such requests are forwarded with `upstream_authorization` instead of theirs. */
    void redirect_blobs(std::string host, std::string upstream_authorization = {})
    {
        std::lock_guard lk(mutex_);
        redirect_host_ = std::move(host);
        redirect_upstream_auth_ = std::move(upstream_authorization);
    }
    /// Append these bytes after every blob body (Content-Length unchanged).
    void trailing_bytes_on_blobs(std::string bytes)
    {
        std::lock_guard lk(mutex_);
        trailing_ = std::move(bytes);
    }
    /** Send blob GET bodies `piece` bytes at a time with `interval` between pieces, e.g. to
        catch a client mid-download (0: at once). The whole body must go within the server's
        60 s write deadline. */
    void throttle_blobs(std::size_t piece, std::chrono::milliseconds interval)
    {
        std::lock_guard lk(mutex_);
        throttle_piece_ = piece;
        throttle_interval_ = interval;
    }
    /** Body bytes relayed for the GETs whose target contains `part` (what the upstream answered,
        up to a cut; a client that hangs up mid-body is still counted in full). */
    std::uint64_t served_bytes(std::string const& part) const
    {
        std::lock_guard lk(mutex_);
        std::uint64_t n = 0;
        for (auto const& [target, bytes] : served_)
            if (target.find(part) != std::string::npos) n += bytes;
        return n;
    }
    /// GET requests whose target contains `part`.
    int gets(std::string const& part) const
    {
        std::lock_guard lk(mutex_);
        int n = 0;
        for (auto const& r : log_)
            if (r.method == "GET" && r.target.find(part) != std::string::npos) ++n;
        return n;
    }
    /// Answer manifest GETs with `size` bytes, with Content-Length or chunked.
    void oversize_manifests(std::size_t size, bool chunked)
    {
        std::lock_guard lk(mutex_);
        oversize_ = size;
        oversize_chunked_ = chunked;
    }

    std::vector<logged_request> requests() const
    {
        std::lock_guard lk(mutex_);
        return log_;
    }
    /// Requests whose target contains `part`.
    int count(std::string const& part) const
    {
        std::lock_guard lk(mutex_);
        int n = 0;
        for (auto const& r : log_)
            if (r.target.find(part) != std::string::npos) ++n;
        return n;
    }
    void clear_log()
    {
        std::lock_guard lk(mutex_);
        log_.clear();
        served_.clear();
    }

private:
    struct failure_rule {
        std::string part;
        unsigned status;
        int count;
        std::string retry_after;
    };

    reply handle(http_request const& in)
    {
        http_request req = in;
        bool head = req.method() == http::verb::head;
        std::string target(req.target());
        bool blob_get = req.method() == http::verb::get && target.find("/blobs/sha256:") != std::string::npos;
        std::optional<std::size_t> cut;
        std::string trailing;
        std::size_t trickle = 0;
        std::chrono::milliseconds trickle_interval{0};
        {
            std::lock_guard lk(mutex_);
            log_.push_back(log_entry(req));
            for (auto& f : failures_) {
                if (f.count > 0 && target.find(f.part) != std::string::npos) {
                    --f.count;
                    reply r;
                    r.response.result(f.status);
                    if (!f.retry_after.empty()) r.response.set(http::field::retry_after, f.retry_after);
                    r.response.body() = "injected failure";
                    return r;
                }
            }
            if (target.rfind("/_redirected", 0) == 0) {
                target.erase(0, std::string_view("/_redirected").size());
                req.target(target);
                if (redirect_upstream_auth_.empty())
                    req.erase(http::field::authorization);
                else
                    req.set(http::field::authorization, redirect_upstream_auth_);
            } else if (blob_get && !redirect_host_.empty() &&
                       std::string(req[http::field::host]).rfind("127.0.0.1", 0) == 0) {
                reply r;
                r.response.result(http::status::temporary_redirect);
                r.response.set(http::field::location,
                               "http://" + redirect_host_ + ":" + std::to_string(port()) + "/_redirected" + target);
                return r;
            }
            if (oversize_ && req.method() == http::verb::get && target.find("/manifests/") != std::string::npos) {
                reply r;
                r.response.set(http::field::content_type, "application/vnd.oci.image.manifest.v1+json");
                r.response.body() = std::string(oversize_, ' ');
                if (oversize_chunked_) {
                    r.response.chunked(true);
                    r.keep_framing = true;
                }
                return r;
            }
            if (ignore_range_) req.erase(http::field::range);
            if (blob_get && cut_count_ > 0) {
                --cut_count_;
                cut = cut_after_;
            }
            if (blob_get) {
                trailing = trailing_;
                trickle = throttle_piece_;
                trickle_interval = throttle_interval_;
            }
        }
        bool const get = req.method() == http::verb::get;
        req.set(http::field::host, upstream_host_ + ":" + std::to_string(upstream_port_));
        auto up = http_call(upstream_host_, upstream_port_, std::move(req));
        reply r = relay(up, head);
        if (get) {
            std::lock_guard lk(mutex_);
            served_.emplace_back(target, cut ? std::min(*cut, up.body.size()) : up.body.size());
        }
        if (cut) {
            std::ostringstream os;
            r.response.prepare_payload();
            os << r.response.base();
            r.cut_after = os.str().size() + *cut;
        }
        r.trailing = trailing;
        r.trickle = trickle;
        r.trickle_interval = trickle_interval;
        return r;
    }

    std::string upstream_host_;
    std::uint16_t upstream_port_;
    mutable std::mutex mutex_;
    std::vector<failure_rule> failures_;
    std::size_t cut_after_ = 0;
    int cut_count_ = 0;
    bool ignore_range_ = false;
    std::string redirect_host_;
    std::string redirect_upstream_auth_;
    std::string trailing_;
    std::size_t oversize_ = 0;
    bool oversize_chunked_ = false;
    std::size_t throttle_piece_ = 0;
    std::chrono::milliseconds throttle_interval_{0};
    std::vector<logged_request> log_;
    std::vector<std::pair<std::string, std::uint64_t>> served_; ///< GET target, body bytes relayed
    loopback_http_server server_; // last: stops first
};

/** An HTTP proxy: absolute-form requests ("GET http://host:port/…") are forwarded, CONNECT
    opens a tunnel. Logs the request lines; answers 407 unless `required_authorization`
    (a Proxy-Authorization value) matches, when one is set. */
class forward_proxy {
public:
    explicit forward_proxy(std::string required_authorization = {})
        : required_auth_(std::move(required_authorization)),
          server_([this](http_request const& r) { return handle(r); },
                  [this](http_request const& r, timed_socket& s, boost::beast::flat_buffer& b) { tunnel(r, s, b); })
    {
    }

    std::uint16_t port() const noexcept { return server_.port(); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

    std::vector<logged_request> requests() const
    {
        std::lock_guard lk(mutex_);
        return log_;
    }

private:
    bool allowed(http_request const& req)
    {
        std::lock_guard lk(mutex_);
        auto e = log_entry(req);
        e.authorization = std::string(req[http::field::proxy_authorization]);
        log_.push_back(e);
        return required_auth_.empty() || req[http::field::proxy_authorization] == required_auth_;
    }

    reply handle(http_request const& in)
    {
        reply r;
        if (!allowed(in)) {
            r.response.result(http::status::proxy_authentication_required);
            return r;
        }
        std::string target(in.target());
        if (target.rfind("http://", 0) != 0) {
            r.response.result(http::status::bad_request);
            return r;
        }
        auto rest = target.substr(7);
        auto slash = rest.find('/');
        auto authority = rest.substr(0, slash);
        auto colon = authority.rfind(':');
        std::string host = authority.substr(0, colon);
        auto port = static_cast<std::uint16_t>(colon == std::string::npos ? 80 : std::stoi(authority.substr(colon + 1)));
        http_request req = in;
        req.target(slash == std::string::npos ? "/" : rest.substr(slash));
        req.erase(http::field::proxy_authorization);
        auto up = http_call(host, port, std::move(req));
        return relay(up, in.method() == http::verb::head);
    }

    void tunnel(http_request const& req, timed_socket& client, boost::beast::flat_buffer& pending)
    {
        boost::system::error_code ec;
        auto fail = [&](char const* status) {
            std::string s = std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            boost::asio::write(client, boost::asio::buffer(s), ec);
        };
        if (!allowed(req)) return fail("407 Proxy Authentication Required");
        std::string authority(req.target());
        auto colon = authority.rfind(':');
        if (colon == std::string::npos) return fail("400 Bad Request");
        std::string host = authority.substr(0, colon);
        if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
        auto port = static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)));
        boost::asio::io_context ioc;
        timed_socket up(ioc.get_executor());
        up.expires_at(steady_clock::now() + std::chrono::seconds(5));
        boost::asio::ip::tcp::resolver resolver(ioc);
        auto results = resolver.resolve(host, std::to_string(port), ec);
        if (!ec) {
            for (auto const& e : results) {
                up.connect(e.endpoint(), ec);
                if (!ec) break;
            }
        }
        if (ec) return fail("502 Bad Gateway");
        std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
        client.expires_at(steady_clock::now() + std::chrono::seconds(30));
        up.expires_at(steady_clock::now() + std::chrono::seconds(30));
        boost::asio::write(client, boost::asio::buffer(ok), ec);
        if (pending.size()) boost::asio::write(up, pending.data(), ec);
        std::vector<char> buf(64 * 1024);
        for (;;) {
            pollfd p[2] = {{client.socket().native_handle(), POLLIN, 0}, {up.socket().native_handle(), POLLIN, 0}};
            if (::poll(p, 2, 30000) <= 0) break;
            bool done = false;
            for (int i = 0; i < 2 && !done; ++i) {
                if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                auto& from = i == 0 ? client : up;
                auto& to = i == 0 ? up : client;
                std::size_t n = from.socket().read_some(boost::asio::buffer(buf), ec);
                if (ec == boost::asio::error::would_block) continue;
                if (ec || n == 0) {
                    done = true;
                    break;
                }
                to.expires_at(steady_clock::now() + std::chrono::seconds(30));
                boost::asio::write(to, boost::asio::buffer(buf.data(), n), ec);
                if (ec) done = true;
            }
            if (done) break;
        }
        up.close();
    }

    std::string required_auth_;
    mutable std::mutex mutex_;
    std::vector<logged_request> log_;
    loopback_http_server server_;
};

} // namespace ocistore_test
