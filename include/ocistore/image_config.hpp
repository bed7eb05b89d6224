// ocistore/image_config.hpp: the image configuration blob (OCI image config / Docker container config).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/platform.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/// Largest image config accepted, in bytes; checked before parsing (error::too_large).
inline constexpr std::size_t max_config_size = 4 * 1024 * 1024;

/// The execution parameters: the image config's "config" object (all members optional).
struct container_config {
    std::string user;                           ///< "User"
    std::vector<std::string> exposed_ports;     ///< keys of "ExposedPorts" ("80/tcp"), in document order
    std::vector<std::string> env;               ///< "Env", "NAME=value"
    std::vector<std::string> entrypoint;        ///< "Entrypoint"
    std::vector<std::string> cmd;               ///< "Cmd"
    std::vector<std::string> volumes;           ///< keys of "Volumes", in document order
    std::string working_dir;                    ///< "WorkingDir"
    std::map<std::string, std::string> labels;  ///< "Labels"
    std::string stop_signal;                    ///< "StopSignal"

    friend bool operator==(container_config const&, container_config const&) = default;
};

/// "rootfs": the uncompressed layer digests, base layer first.
struct image_rootfs {
    std::string type = "layers";             ///< always "layers"
    std::vector<ocistore::digest> diff_ids;  ///< one per layer, of the layer's uncompressed tar

    friend bool operator==(image_rootfs const&, image_rootfs const&) = default;
};

/// One entry of "history".
struct history_entry {
    std::string created;     ///< RFC 3339 date-time, as written
    std::string created_by;
    std::string author;
    std::string comment;
    bool empty_layer = false; ///< true when this step added no layer (no diff_id)

    friend bool operator==(history_entry const&, history_entry const&) = default;
};

/** The image configuration (OCI image spec config.md; Docker's container config has the
    same shape).

    JSON: `architecture`, `os` and `rootfs` {`type`: "layers", `diff_ids`: [digest…]} are
    required; `created`, `author`, `variant`, `os.version`, `os.features`, `config` and
    `history` are optional. Unknown members are ignored; null reads as absent. Writing
    omits empty optional members. */
struct image_config {
    std::string created;
    std::string author;
    std::string architecture;
    std::string os;
    std::string variant;
    std::string os_version;               ///< "os.version"
    std::vector<std::string> os_features; ///< "os.features"
    container_config config;
    image_rootfs rootfs;
    std::vector<history_entry> history;

    /// The platform fields, as written (not normalised).
    ocistore::platform platform() const
    {
        return ocistore::platform{os, architecture, variant, os_version, os_features};
    }

    friend bool operator==(image_config const&, image_config const&) = default;
};

/// A parsed image config together with the bytes it came from (digests are over `raw`).
struct config_document {
    std::string raw;  ///< the bytes exactly as received
    image_config image;
};

/** Parses an image config blob. More than max_config_size bytes: error::too_large (before
    parsing); malformed JSON: error::invalid_json with the reason and byte offset; a missing,
    null or mistyped required member, a mistyped optional one, an invalid diff_id or a rootfs
    type other than "layers": error::invalid_config naming the member path
    ("rootfs.diff_ids[1]: …"). A diff_id with an algorithm other than sha256/sha512 is
    error::unsupported_digest_algorithm. */
OCISTORE_DECL config_document parse_image_config(std::string_view bytes, error_code& ec, std::string* why = nullptr);
/// @throws system_error with the reason in what().
OCISTORE_DECL config_document parse_image_config(std::string_view bytes);

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, image_config const& c);
/// Validated read. @throws system_error (error::invalid_config, …) naming the member at fault.
OCISTORE_DECL image_config tag_invoke(boost::json::value_to_tag<image_config>, boost::json::value const& jv);

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/image_config.ipp>
#endif
