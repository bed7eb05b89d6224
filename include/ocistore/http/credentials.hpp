// ocistore/http/credentials.hpp: registry credentials from options, Docker's config.json and credential helpers.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ocistore {

/// What a registry login holds. Never logged, never put into error messages.
struct credentials {
    std::string username;
    std::string password;
    std::string identity_token; ///< an OAuth2 refresh token for the token server (Docker's "identitytoken")

    bool empty() const noexcept { return username.empty() && password.empty() && identity_token.empty(); }
    friend bool operator==(credentials const&, credentials const&) = default;
};

/// "Basic <base64(username:password)>": the value of an Authorization or Proxy-Authorization header.
OCISTORE_DECL std::string basic_authorization(std::string_view username, std::string_view password);

/** The key credentials are filed under: `registry` (a host[:port] or a URL such as
    "https://host/v1/") lowercased, without scheme and path. The Docker Hub names
    "docker.io", "index.docker.io", "registry-1.docker.io" and "https://index.docker.io/v1/"
    all give "docker.io". */
OCISTORE_DECL std::string registry_key(std::string_view registry);

/// Largest config.json the store reads.
inline constexpr std::size_t max_docker_config_size = std::size_t{4} << 20;
/// How long a credential helper may run by default.
inline constexpr std::chrono::milliseconds default_credential_helper_timeout{30000};

/** Runs `docker-credential-<helper> get` (found on PATH with posix_spawnp, no shell) with
    `server_url` on its stdin, and reads `{"ServerURL","Username","Secret"}` from its
    stdout. A `Username` of `<token>` means `Secret` is an identity token.

    Returns nullopt with `ec` clear when the helper has no credentials (its output says
    "credentials not found", or both fields are empty). Failures:
    - `error::invalid_argument`: `helper` is not `[A-Za-z0-9._-]+` or `server_url` is longer
      than 1024 bytes or holds a control character;
    - `error::unauthorized`: the helper cannot be started, exits non-zero or is killed (the
      reason quotes the start of its output: it returned no credentials);
    - `error::timeout`: it ran longer than `timeout` (it is then killed);
    - `error::too_large`: it wrote more than 1 MiB;
    - `error::protocol_error`: it succeeded but its output is not the expected JSON (the
      output is not quoted, as it may hold a secret).
*/
OCISTORE_DECL std::optional<credentials> run_credential_helper(std::string_view helper, std::string_view server_url,
                                                               std::chrono::milliseconds timeout, error_code& ec,
                                                               std::string* why = nullptr);

/** Where registry credentials come from, in this order (docs/registries.md, "Authentication"):

    1. entries given with set() (explicit options win);
    2. the config file's `credHelpers` helper for the registry;
    3. the config file's `auths` entry, when it holds credentials (`auth` = base64
       "user:password", else `username`/`password`; `identitytoken`);
    4. the config file's `credsStore` helper.

    A credHelpers entry is authoritative, as in Docker: when its helper has nothing, the
    later sources are not consulted. Keys are compared after registry_key(), so Docker Hub
    aliases and URL-shaped keys meet.
    Helpers are asked with the server URL "https://index.docker.io/v1/" for Docker Hub and
    the host[:port] otherwise. Helper results are not cached: cache what you obtain.
    Copyable; const member functions may be called concurrently.
*/
class credential_store {
public:
    credential_store() = default;

    /** Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. A missing file gives
        an empty store, not an error. Other failures are those of from_file(). */
    static OCISTORE_DECL credential_store from_docker_config(error_code& ec, std::string* why = nullptr);
    /// As above. @throws system_error with the reason in what().
    static OCISTORE_DECL credential_store from_docker_config();

    /** Reads a Docker config.json. File-system failures (including a missing file) carry their
        errno; over max_docker_config_size is `error::too_large`; malformed JSON is
        `error::invalid_json`; a known member of the wrong type, an `auth` that is not base64
        or lacks ':', or an unusable helper name is `error::invalid_argument`. Unknown members
        are ignored. */
    static OCISTORE_DECL credential_store from_file(std::filesystem::path const& path, error_code& ec,
                                                    std::string* why = nullptr);
    /// As above. @throws system_error with the reason in what().
    static OCISTORE_DECL credential_store from_file(std::filesystem::path const& path);

    /// Parses config.json text; `source` names it in reasons. Failures as from_file().
    static OCISTORE_DECL credential_store from_json(std::string_view json, std::string_view source, error_code& ec,
                                                    std::string* why = nullptr);

    /// Files `c` for `registry`, ahead of everything the config file says.
    OCISTORE_DECL void set(std::string registry, credentials c);

    /** The credentials for `registry` (any form registry_key() accepts), or nullopt with `ec`
        clear when there are none. Failures are those of run_credential_helper(). */
    OCISTORE_DECL std::optional<credentials> lookup(std::string_view registry, error_code& ec,
                                                    std::string* why = nullptr) const;
    /// As above. @throws system_error with the reason in what().
    OCISTORE_DECL std::optional<credentials> lookup(std::string_view registry) const;

    /// The helper lookup() consults for `registry` (its credHelpers entry, else credsStore); "" for none.
    OCISTORE_DECL std::string helper_for(std::string_view registry) const;

    void set_helper_timeout(std::chrono::milliseconds t) noexcept { helper_timeout_ = t; }
    std::chrono::milliseconds helper_timeout() const noexcept { return helper_timeout_; }

    /// The config file read, empty when none was.
    std::filesystem::path const& source() const noexcept { return source_; }

private:
    std::map<std::string, credentials, std::less<>> explicit_;
    std::map<std::string, credentials, std::less<>> auths_;
    std::map<std::string, std::string, std::less<>> helpers_;
    std::string default_helper_;
    std::chrono::milliseconds helper_timeout_{default_credential_helper_timeout};
    std::filesystem::path source_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/credentials.ipp>
#endif
