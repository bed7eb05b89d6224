// Internal: a TCP socket with deadline-bounded blocking I/O, and a connection (plain or TLS) on it.
#pragma once

#include <ocistore/config.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <poll.h>
#include <sys/socket.h>

namespace ocistore::detail {

using steady_clock = std::chrono::steady_clock;

/** A connected TCP socket whose blocking reads and writes end with `asio::error::timed_out` at a
    deadline. Models Asio's *SyncReadStream* and *SyncWriteStream*, so Beast's synchronous
    HTTP algorithms and `asio::ssl::stream` run on it unchanged. The socket is non-blocking
    underneath; waiting is `poll(2)` bounded by the deadline. */
class timed_socket {
public:
    using socket_type = boost::asio::ip::tcp::socket;
    using executor_type = socket_type::executor_type;
    using lowest_layer_type = socket_type::lowest_layer_type;

    explicit timed_socket(executor_type ex) : socket_(std::move(ex)) {}
    timed_socket(timed_socket&&) = default;
    timed_socket& operator=(timed_socket&&) = default;

    executor_type get_executor() { return socket_.get_executor(); }
    lowest_layer_type& lowest_layer() { return socket_.lowest_layer(); }
    lowest_layer_type const& lowest_layer() const { return socket_.lowest_layer(); }
    socket_type& socket() noexcept { return socket_; }

    /// Deadline for the following operations; `steady_clock::time_point::max()` waits forever.
    void expires_at(steady_clock::time_point d) noexcept { deadline_ = d; }
    steady_clock::time_point expiry() const noexcept { return deadline_; }

    /// Connects to `ep`, giving up at the deadline.
    void connect(boost::asio::ip::tcp::endpoint const& ep, boost::system::error_code& ec)
    {
        socket_.close(ec);
        socket_.open(ep.protocol(), ec);
        if (ec) return;
        socket_.non_blocking(true, ec);
        if (ec) return;
        socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
        if (::connect(socket_.native_handle(), ep.data(), static_cast<socklen_t>(ep.size())) == 0) return;
        if (errno != EINPROGRESS) {
            ec.assign(errno, boost::system::system_category());
            return;
        }
        if (!wait(POLLOUT, ec)) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) ec.assign(err, boost::system::system_category());
    }

    template <class MutableBufferSequence>
    std::size_t read_some(MutableBufferSequence const& buffers, boost::system::error_code& ec)
    {
        for (;;) {
            std::size_t n = socket_.read_some(buffers, ec);
            if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return n;
            if (!wait(POLLIN, ec)) return 0;
        }
    }
    template <class MutableBufferSequence> std::size_t read_some(MutableBufferSequence const& buffers)
    {
        boost::system::error_code ec;
        std::size_t n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

    template <class ConstBufferSequence>
    std::size_t write_some(ConstBufferSequence const& buffers, boost::system::error_code& ec)
    {
        for (;;) {
            std::size_t n = socket_.write_some(buffers, ec);
            if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return n;
            if (!wait(POLLOUT, ec)) return 0;
        }
    }
    template <class ConstBufferSequence> std::size_t write_some(ConstBufferSequence const& buffers)
    {
        boost::system::error_code ec;
        std::size_t n = write_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

    /// True when bytes (or an end of stream) are waiting: on an idle keep-alive connection,
    /// a sign that the peer closed it or broke the protocol.
    bool readable_now() noexcept
    {
        if (!socket_.is_open()) return true;
        pollfd p{socket_.native_handle(), POLLIN, 0};
        return ::poll(&p, 1, 0) != 0;
    }

    void close() noexcept
    {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }

private:
    /// Waits for `events` until the deadline; false with `ec` set when it passed or poll failed.
    bool wait(short events, boost::system::error_code& ec)
    {
        for (;;) {
            int ms = -1;
            if (deadline_ != steady_clock::time_point::max()) {
                auto now = steady_clock::now();
                if (now >= deadline_) {
                    ec = boost::asio::error::timed_out;
                    return false;
                }
                auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now).count();
                ms = static_cast<int>(std::min<long long>(left, INT_MAX));
            }
            pollfd p{socket_.native_handle(), events, 0};
            int r = ::poll(&p, 1, ms);
            if (r > 0) {
                ec = {};
                return true;
            }
            if (r < 0 && errno != EINTR) {
                ec.assign(errno, boost::system::system_category());
                return false;
            }
        }
    }

    socket_type socket_;
    steady_clock::time_point deadline_ = steady_clock::time_point::max();
};

/// The (scheme, host, port) a connection goes to; the key of the connection pool.
struct http_endpoint {
    bool tls = true;
    std::string host; ///< without brackets for IPv6 literals; lower case
    std::uint16_t port = 443;

    /// "host", or "host:port" when the port is not the scheme's default; IPv6 in brackets.
    std::string authority() const
    {
        std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
        return h;
    }
    /// "host:port" always (IPv6 in brackets): for CONNECT and for host matching.
    std::string host_port() const
    {
        std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        return h + ":" + std::to_string(port);
    }
    std::string origin() const { return (tls ? "https://" : "http://") + authority(); }

    friend bool operator==(http_endpoint const&, http_endpoint const&) = default;
    friend auto operator<=>(http_endpoint const&, http_endpoint const&) = default;
};

/** One HTTP/1.1 connection: a timed socket, TLS on top when the endpoint is https, and the
    read buffer that holds bytes received past the last response header. */
class http_connection {
public:
    using tls_stream = boost::asio::ssl::stream<timed_socket>;

    http_connection(http_endpoint ep, timed_socket sock) : endpoint_(std::move(ep)), plain_(std::move(sock)) {}

    http_endpoint const& endpoint() const noexcept { return endpoint_; }
    timed_socket& socket() noexcept { return tls_ ? tls_->next_layer() : *plain_; }
    bool is_tls() const noexcept { return tls_ != nullptr; }

    /// Replaces the plain stream with TLS over the same socket (before any TLS byte was sent).
    tls_stream& start_tls(boost::asio::ssl::context& ctx)
    {
        tls_ = std::make_unique<tls_stream>(std::move(*plain_), ctx);
        plain_.reset();
        return *tls_;
    }

    /// Calls `f(stream)` with the stream that carries HTTP: the TLS stream or the socket.
    template <class F> decltype(auto) visit(F&& f)
    {
        if (tls_) return std::forward<F>(f)(*tls_);
        return std::forward<F>(f)(*plain_);
    }

    /// Deadline for every operation until the next call.
    void expires_at(steady_clock::time_point d) noexcept { socket().expires_at(d); }

    /// Sent the request line in absolute form (plain HTTP through a proxy).
    bool absolute_form = false;
    /// Proxy-Authorization value for requests in absolute form; empty for none.
    std::string proxy_authorization;
    /// Bytes read past the end of the last response header.
    boost::beast::flat_buffer buffer;
    /// Number of responses completed on this connection.
    std::size_t responses = 0;
    /// When the connection went back to the pool.
    steady_clock::time_point idle_since{};

private:
    http_endpoint endpoint_;
    std::optional<timed_socket> plain_;
    std::unique_ptr<tls_stream> tls_;
};

} // namespace ocistore::detail
