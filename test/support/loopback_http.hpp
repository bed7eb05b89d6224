// Test support: a threaded HTTP/1.1 server on 127.0.0.1 and a small blocking client, both with
// deadlines everywhere, for tests that talk to real or fake registries over loopback.
#pragma once

#include <ocistore/detail/http_socket.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ocistore_test {

namespace http = boost::beast::http;
using ocistore::detail::steady_clock;
using ocistore::detail::timed_socket;

using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
inline std::uint16_t free_port()
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind(127.0.0.1:0) failed");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` (within 200 ms).
inline bool port_open(std::uint16_t port, std::string const& host = "127.0.0.1")
{
    boost::asio::io_context ioc;
    timed_socket s(ioc.get_executor());
    s.expires_at(steady_clock::now() + std::chrono::milliseconds(200));
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address(host), port}, ec);
    return !ec;
}

/// What a server handler sends back: a response, optionally mangled on the wire.
struct reply {
    http_response response{http::status::ok, 11};
    std::optional<std::size_t> cut_after;  ///< close after this many bytes of the serialised response
    std::string trailing;                  ///< bytes sent after the response
    bool close = false;                    ///< close the connection afterwards
    bool head = false;                     ///< the request was HEAD: send no body
    bool keep_framing = false;             ///< send Content-Length / chunked as set, not recomputed
    std::size_t trickle = 0;               ///< send the body this many bytes at a time…
    std::chrono::milliseconds trickle_interval{0}; ///< …with this pause between pieces
};

/** A threaded HTTP/1.1 server on 127.0.0.1:port(). Each connection has a thread; requests
    are answered by `handler`, keep-alive is honoured. Stops (and joins) on destruction.
    A handler may instead take over the raw socket for CONNECT tunnels via `tunnel_handler`. */
class loopback_http_server {
public:
    using handler_type = std::function<reply(http_request const&)>;
    /// Handles CONNECT: given the request and the client socket; returns when the tunnel ends.
    using tunnel_type = std::function<void(http_request const&, timed_socket&, boost::beast::flat_buffer&)>;

    explicit loopback_http_server(handler_type h, tunnel_type t = {}) : handler_(std::move(h)), tunnel_(std::move(t))
    {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("loopback_http_server: cannot listen");
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    loopback_http_server(loopback_http_server const&) = delete;
    loopback_http_server& operator=(loopback_http_server const&) = delete;
    ~loopback_http_server() { stop(); }

    std::uint16_t port() const noexcept { return port_; }
    /// Connections accepted so far.
    int connections() const noexcept { return accepted_.load(); }

    void stop()
    {
        if (stopping_.exchange(true)) return;
        if (acceptor_.joinable()) acceptor_.join();
        ::close(listen_fd_);
        {
            std::lock_guard lk(mutex_);
            for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
        }
        for (auto& t : workers_) t.join();
    }

private:
    void accept_loop()
    {
        while (!stopping_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) continue;
            ++accepted_;
            std::lock_guard lk(mutex_);
            open_fds_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    }

    void forget(int fd)
    {
        std::lock_guard lk(mutex_);
        std::erase(open_fds_, fd);
    }

    void serve(int fd)
    {
        boost::asio::io_context ioc;
        timed_socket sock(ioc.get_executor());
        boost::system::error_code ec;
        sock.socket().assign(boost::asio::ip::tcp::v4(), fd, ec);
        sock.socket().non_blocking(true, ec);
        boost::beast::flat_buffer buffer;
        while (!stopping_) {
            sock.expires_at(steady_clock::now() + std::chrono::seconds(30));
            http::request_parser<http::string_body> parser;
            parser.body_limit(std::uint64_t{1} << 31);
            http::read(sock, buffer, parser, ec);
            if (ec) break;
            auto req = parser.release();
            if (req.method() == http::verb::connect && tunnel_) {
                tunnel_(req, sock, buffer);
                break;
            }
            reply r;
            try {
                r = handler_(req);
            } catch (std::exception const& e) {
                r.response = http_response(http::status::internal_server_error, 11);
                r.response.body() = e.what();
            }
            r.response.version(11);
            if (r.close) r.response.keep_alive(false);
            if (req.method() == http::verb::head) r.head = true;
            if (!r.head && !r.keep_framing) r.response.prepare_payload();
            std::ostringstream os;
            std::string_view body;
            if (r.head) {
                os << r.response.base();
            } else if (r.response.chunked()) {
                os << r.response;
            } else {
                os << r.response.base();
                body = r.response.body();
            }
            std::string head = os.str();
            std::string_view parts[3] = {head, body, r.trailing};
            if (r.cut_after) {
                std::size_t left = *r.cut_after;
                for (auto& p : parts) {
                    if (&p == &parts[2]) p = {};
                    p = p.substr(0, std::min(left, p.size()));
                    left -= p.size();
                }
            }
            std::array<boost::asio::const_buffer, 3> bufs = {boost::asio::buffer(parts[0]), boost::asio::buffer(parts[1]),
                                                             boost::asio::buffer(parts[2])};
            sock.expires_at(steady_clock::now() + std::chrono::seconds(60));
            if (r.trickle > 0) {
                boost::asio::write(sock, boost::asio::buffer(parts[0]), ec);
                for (std::size_t off = 0; !ec && off < parts[1].size() && !stopping_; off += r.trickle) {
                    std::this_thread::sleep_for(r.trickle_interval);
                    auto piece = parts[1].substr(off, r.trickle);
                    boost::asio::write(sock, boost::asio::buffer(piece.data(), piece.size()), ec);
                }
            } else {
                boost::asio::write(sock, bufs, ec);
            }
            if (ec || r.cut_after || r.close || !req.keep_alive()) break;
        }
        forget(fd);
        sock.close();
    }

    handler_type handler_;
    tunnel_type tunnel_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<int> open_fds_;
    std::list<std::thread> workers_;
};

/// A response as the test client received it.
struct client_response {
    unsigned status = 0;
    std::map<std::string, std::string> headers; ///< lower-case names; repeated fields joined by ", "
    std::string body;

    std::string header(std::string const& name) const
    {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

/** One request on a fresh connection to host:port (TLS when `tls` is given, not verified),
    within `timeout`. Throws std::runtime_error on network failures. */
inline client_response http_call(std::string const& host, std::uint16_t port, http_request req,
                                 boost::asio::ssl::context* tls = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60))
{
    boost::asio::io_context ioc;
    timed_socket sock(ioc.get_executor());
    sock.expires_at(steady_clock::now() + timeout);
    boost::system::error_code ec;
    boost::asio::ip::tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec) throw std::runtime_error("resolve " + host + ": " + ec.message());
    for (auto const& e : results) {
        sock.connect(e.endpoint(), ec);
        if (!ec) break;
    }
    if (ec) throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " + ec.message());
    req.version(11);
    if (req.find(http::field::host) == req.end()) req.set(http::field::host, host + ":" + std::to_string(port));
    req.keep_alive(false);
    req.prepare_payload();
    bool head = req.method() == http::verb::head;
    client_response out;
    auto run = [&](auto& stream) {
        http::write(stream, req, ec);
        if (ec) throw std::runtime_error("write: " + ec.message());
        boost::beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(std::uint64_t{1} << 31);
        if (head) parser.skip(true);
        http::read(stream, buffer, parser, ec);
        if (ec && ec != http::error::end_of_stream) throw std::runtime_error("read: " + ec.message());
        auto& res = parser.get();
        out.status = res.result_int();
        for (auto const& f : res) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            auto& v = out.headers[name];
            if (!v.empty()) v += ", ";
            v += std::string(f.value());
        }
        out.body = std::move(res.body());
    };
    if (tls) {
        boost::asio::ssl::stream<timed_socket> s(std::move(sock), *tls);
        s.set_verify_mode(boost::asio::ssl::verify_none);
        s.handshake(boost::asio::ssl::stream_base::client, ec);
        if (ec) throw std::runtime_error("TLS handshake: " + ec.message());
        run(s);
    } else {
        run(sock);
    }
    return out;
}

/// Builds a request.
inline http_request make_request(http::verb method, std::string target, std::string body = {},
                                 std::vector<std::pair<std::string, std::string>> const& headers = {})
{
    http_request req{method, target, 11};
    for (auto const& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    return req;
}

} // namespace ocistore_test
