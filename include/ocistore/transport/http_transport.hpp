// ocistore/transport/http_transport.hpp: the default *Transport*, the registry HTTP API (distribution v2) over Boost.Beast and OpenSSL.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/http/credentials.hpp>
#include <ocistore/http/proxy_config.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/transport_types.hpp>
#include <ocistore/version.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

namespace detail {
class http_transport_state;
class http_body;
} // namespace detail

/// Another endpoint serving a registry's content, e.g. a pull-through cache.
struct mirror_endpoint {
    /** "https://host[:port][/prefix]" (or "http://…" for a host listed in
        http_options::insecure_hosts). Requests go to "<prefix>/v2/…". */
    std::string url;
    /// Whether tags may be resolved here. Untrusted mirrors serve only content addressed by digest.
    bool trusted = false;
};

/// When and how often http_transport retries an idempotent request.
struct retry_policy {
    /// Attempts per endpoint, the first included (1 = never retry). Mirrors get one attempt each.
    unsigned max_attempts = 4;
    /// Delay before the second attempt; doubles per attempt up to max_backoff.
    std::chrono::milliseconds base_backoff{250};
    std::chrono::milliseconds max_backoff{8000};
    /// Fraction of each delay drawn at random: delay × (1 − jitter × U[0,1)). 0 = none.
    double jitter = 0.5;
    /// Longest Retry-After honoured; a longer one is cut to this.
    std::chrono::milliseconds max_retry_after{60000};
};

/** Runtime options of http_transport. The defaults verify TLS against the system CA store,
    read credentials from the Docker config and proxies from the environment. */
struct http_options {
    /** Hosts spoken to over plain HTTP, as "host" (any port) or "host:port"; compared without
        case. Every other host is HTTPS only, redirects and token realms included. */
    std::vector<std::string> insecure_hosts;
    /// PEM file of extra trusted CA certificates, added to the system store. Empty: none.
    std::string ca_file;
    /// Registry credentials; nullopt: credential_store::from_docker_config() (no file: none;
    /// an unreadable or malformed file: the constructor throws).
    std::optional<credential_store> credentials;
    /** Mirrors per registry (the key is image_reference::registry(), e.g. "docker.io"), tried
        in order before the registry itself for blobs and digest-pinned manifests; tags only on
        trusted ones. Any failure falls through to the next endpoint. A mirror never receives
        the registry's credentials, only its own (looked up by its "host[:port]"). */
    std::map<std::string, std::vector<mirror_endpoint>, std::less<>> mirrors;
    /// Proxies; nullopt: proxy_config::from_environment() (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
    std::optional<proxy_config> proxy;
    /// Connections in use at once per endpoint (scheme, host, port); further requests wait.
    std::size_t max_connections_per_host = 6;
    /** Budget of one attempt: connecting, TLS, sending, and receiving the response header.
        Also the longest wait for the next body bytes. */
    std::chrono::milliseconds attempt_timeout{30000};
    /// Budget of a whole operation (all endpoints, attempts and backoff), before the body streams.
    std::chrono::milliseconds overall_timeout{300000};
    /// A body stalls when fewer than this many bytes per second arrive over stall_window (0 = off).
    std::uint64_t stall_min_bytes_per_second = 1024;
    std::chrono::milliseconds stall_window{30000};
    retry_policy retry;
    /// Largest response header accepted (error::protocol_error beyond).
    std::size_t max_header_size = 64 * 1024;
    /// Largest manifest body accepted (error::too_large beyond).
    std::size_t max_manifest_size = ocistore::max_manifest_size;
    std::string user_agent = "ocistore/" OCISTORE_VERSION_STRING;
};

/** The *Transport* that speaks the OCI distribution API to registries over HTTP/1.1.

    HTTPS with certificate and host name verification (plain HTTP only for
    http_options::insecure_hosts); Bearer token and Basic authentication driven by the
    registry's challenges, tokens cached per endpoint and scope; redirects (at most 10;
    Authorization is never sent to another host); retries with exponential backoff and
    jitter for idempotent requests on connection failures, timeouts, 408, 429 and 500, 502,
    503, 504, honouring Retry-After; mirrors; HTTP proxies (CONNECT for https); a keep-alive
    connection pool bounded per endpoint.

    Errors: 404 → error::not_found, 401 → error::unauthorized, 403 → error::denied, 429 →
    error::rate_limited, 5xx → error::server_error, deadlines and stalls → error::timeout,
    connect/reset/short body → error::connection_failed, malformed responses →
    error::protocol_error, oversize manifests → error::too_large. TLS failures (e.g. an
    untrusted certificate) pass through as the OpenSSL error, which is not transient.

    @par Thread safety
    Distinct objects: safe. Shared objects: safe; the methods may be called concurrently.
    Copies are cheap and share the connection pool and token cache.
    @see docs/concepts/transport.md, docs/registries.md
*/
class http_transport {
public:
    /** *BlobSource* over one blob response. It owns its connection while streaming and gives
        it back to the pool once the body was read to the end (an abandoned reader closes
        it). A failure mid-body is reported by read_some; open a new reader at the new offset
        to resume. */
    class blob_reader {
    public:
        /// An empty reader: at its end, offset() == 0.
        OCISTORE_DECL blob_reader() noexcept;
        OCISTORE_DECL blob_reader(blob_reader&&) noexcept;
        OCISTORE_DECL blob_reader& operator=(blob_reader&&) noexcept;
        OCISTORE_DECL ~blob_reader();

        /** Reads up to `buffer.size()` bytes of the body into `buffer`; 0 with `ec` clear at
            the end. A body shorter than announced is error::connection_failed (transient), a
            longer one error::protocol_error, a stall error::timeout. */
        OCISTORE_DECL std::size_t read_some(std::span<std::byte> buffer, error_code& ec);
        /// As above. @throws system_error
        OCISTORE_DECL std::size_t read_some(std::span<std::byte> buffer);

        /// Offset of the first byte this reader delivers: 0 when the server ignored the Range.
        std::uint64_t offset() const noexcept { return offset_; }
        /// The blob's total size when the server said (Content-Range total, or offset + Content-Length).
        std::optional<std::uint64_t> size() const noexcept { return size_; }

    private:
        friend class http_transport;
        std::unique_ptr<detail::http_body> body_;
        std::uint64_t offset_ = 0;
        std::optional<std::uint64_t> size_;
    };

    /** A transport with the given options (see http_options for the defaults).
        @throws system_error (error::invalid_argument) when http_options::ca_file cannot be
        loaded or a mirror URL is malformed or plain HTTP to a host not in insecure_hosts;
        and, when http_options::credentials is empty, with the Docker config's error when that
        file exists but cannot be read or parsed. The message names the option or file. */
    OCISTORE_DECL explicit http_transport(http_options options = {});

    /// GET the manifest `ref.reference_for_fetch()` with Accept `accept` (none when empty).
    /// Bodies over http_options::max_manifest_size fail with error::too_large.
    OCISTORE_DECL fetched_manifest fetch_manifest(image_reference const& ref, std::span<std::string_view const> accept,
                                                  error_code& ec);
    /// As above. @throws system_error
    OCISTORE_DECL fetched_manifest fetch_manifest(image_reference const& ref,
                                                  std::span<std::string_view const> accept = media_types::default_accept);

    /// HEAD the same manifest: its digest (Docker-Content-Digest, else the requested digest,
    /// else the sha256 of a GET), media type and size.
    OCISTORE_DECL resolved_manifest resolve(image_reference const& ref, std::span<std::string_view const> accept,
                                            error_code& ec);
    /// As above. @throws system_error
    OCISTORE_DECL resolved_manifest resolve(image_reference const& ref,
                                            std::span<std::string_view const> accept = media_types::default_accept);

    /** Opens blob `d` of `ref`'s repository asking for the bytes from `offset` on
        (`Range: bytes=offset-`). Check offset() of the result: 0 means the server sent the
        whole blob. When `offset` equals the blob's size the reader is at its end with
        offset() == size(). */
    OCISTORE_DECL blob_reader open_blob(image_reference const& ref, digest const& d, std::uint64_t offset,
                                        error_code& ec);
    /// As above. @throws system_error
    OCISTORE_DECL blob_reader open_blob(image_reference const& ref, digest const& d, std::uint64_t offset = 0);

    /// The options in effect (credentials and proxy filled in).
    OCISTORE_DECL http_options const& options() const noexcept;

private:
    std::shared_ptr<detail::http_transport_state> state_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/http_transport.ipp>
#endif
