// ocistore/platform.hpp: OCI platforms ("linux/arm64/v8"): parsing, normalisation, matching.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/json.hpp>
#include <ocistore/error.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/** The platform an image runs on: the `platform` object of an index entry, or the
    architecture/os fields of an image config.

    Values read from JSON are kept exactly as written; parse() and normalized() produce the
    canonical form used for matching (see normalized()). */
struct platform {
    std::string os;                       ///< "linux", "windows", …
    std::string architecture;             ///< GOARCH style: "amd64", "arm64", "arm", "386", …
    std::string variant;                  ///< CPU variant: "v8", "v7", …; may be empty
    std::string os_version;               ///< "os.version", e.g. "10.0.20348.2113" (Windows)
    std::vector<std::string> os_features; ///< "os.features", e.g. "win32k"

    /** Parses `os[(os_version)]/architecture[/variant]`, e.g. "linux/arm64/v8",
        "linux/amd64", "windows(10.0.20348)/amd64". Components are `[A-Za-z0-9_.-]+`; the
        result is normalized(). On failure sets `ec` to error::invalid_platform, stores a
        reason naming the offending character or component in `*why`, returns {}. */
    static platform parse(std::string_view text, error_code& ec, std::string* why = nullptr);
    /// @throws system_error (error::invalid_platform) with the reason in what().
    static platform parse(std::string_view text);

    /// "os[(os_version)]/architecture[/variant]", as parse() reads it.
    std::string to_string() const;

    /** The canonical form (containerd's rules): everything lowercased; os "macos" → "darwin";
        "aarch64" → "arm64"; "x86_64"/"x86-64" → "amd64"; "i386"/"i486"/"i586"/"i686" → "386"
        (no variant); "armhf" → "arm" "v7"; "armel" → "arm" "v6"; a bare numeric variant
        gains its "v" ("8" → "v8"); arm64 without variant → "v8"; arm without variant → "v7";
        amd64 "v1" → no variant (v1 is the baseline). */
    platform normalized() const;

    friend bool operator==(platform const&, platform const&) = default;
};

/// The platform this library was compiled for, normalised (e.g. linux/amd64, linux/arm64/v8).
OCISTORE_DECL platform host_platform();

OCISTORE_DECL std::ostream& operator<<(std::ostream& os, platform const& p);

/** Ranks candidate platforms against a wanted one, following containerd's `platforms.Only`.

    A candidate matches when, after normalisation, its os equals the wanted os and its
    (architecture, variant) is one of compatible(), in order of preference:
    - arm64 vX: arm64 vX, the older arm64 variants it can run (v8.2 → v8.1, v8; v9.x →
      v9.(x-1)…v9, then v8.(x+5)…v8), then 32-bit arm v8, v7, v6, v5;
    - arm vN: arm vN, v(N-1), … v5;
    - amd64 vN: amd64 vN, v(N-1), … v2, plain amd64, then 386; plain amd64: amd64, then 386;
    - anything else: exactly itself.
    Within one compatible() entry, a candidate whose variant is written out exactly ("v8")
    beats one whose variant is implied ("" for arm64, which normalises to "v8"); and when a
    wanted os_version is given, a candidate with the same os_version is preferred.
    os_features are not compared. */
class platform_matcher {
public:
    /// rank() of a platform that does not match.
    static constexpr std::size_t no_match = static_cast<std::size_t>(-1);

    explicit platform_matcher(platform const& wanted);

    /// The wanted platform, normalised.
    platform const& wanted() const noexcept { return compatible_.front(); }
    /// The acceptable normalised platforms, best first; front() is wanted().
    std::vector<platform> const& compatible() const noexcept { return compatible_; }

    /// 0 is the best; a lower rank is preferred; no_match when `candidate` is not compatible.
    std::size_t rank(platform const& candidate) const;
    bool matches(platform const& candidate) const { return rank(candidate) != no_match; }

private:
    std::vector<platform> compatible_;
};

/// JSON object {"architecture", "os", "os.version"?, "os.features"?, "variant"?}.
OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, platform const& p);
/// @throws system_error (error::invalid_manifest) naming the field at fault.
OCISTORE_DECL platform tag_invoke(boost::json::value_to_tag<platform>, boost::json::value const& jv);

namespace detail {
/// Validated read of a platform object: "architecture" and "os" are required strings.
OCISTORE_DECL bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, platform& out);
/// The JSON object of `p`.
OCISTORE_DECL boost::json::object platform_to_json(platform const& p);
} // namespace detail

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/platform.ipp>
#endif
