// ocistore/cli_args.hpp: the `ocistore` command line: options, parsing, help texts and exit codes.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>
#include <ocistore/platform.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/store_types.hpp>
#include <ocistore/version.hpp>

#include <charconv>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore::cli {

/// Exit statuses of the tool.
inline constexpr int exit_ok = 0;      ///< success
inline constexpr int exit_failure = 1; ///< the operation failed (one line on stderr says why)
inline constexpr int exit_usage = 2;   ///< the command line is wrong

/// The subcommand.
enum class command_kind { none, help, version, pull, images, inspect, rm, prune, export_rootfs, verify };

/// What `--artifacts` selects: the builder of the store.
enum class artifact_choice { erofs, rootfs, none };

/// How `--progress` reports a pull.
enum class progress_choice {
    automatic, ///< bars when stderr is a terminal, plain lines otherwise
    plain,     ///< periodic lines for logs
    none,      ///< nothing
};

/// "pull", "export-rootfs", …; "" for none, help and version.
inline std::string_view command_name(command_kind c) noexcept
{
    switch (c) {
    case command_kind::pull: return "pull";
    case command_kind::images: return "images";
    case command_kind::inspect: return "inspect";
    case command_kind::rm: return "rm";
    case command_kind::prune: return "prune";
    case command_kind::export_rootfs: return "export-rootfs";
    case command_kind::verify: return "verify";
    default: return "";
    }
}

/// "erofs", "rootfs" or "none": the builder's `kind`.
inline std::string_view artifact_name(artifact_choice a) noexcept
{
    switch (a) {
    case artifact_choice::erofs: return "erofs";
    case artifact_choice::rootfs: return "rootfs";
    default: return "none";
    }
}

/** An image named on the command line: a registry reference, or `oci:PATH[:NAME]` (a local
    OCI image layout, split at the first ':' after "oci:" as skopeo does). */
struct image_target {
    std::string text;                        ///< as given
    bool layout = false;                     ///< `oci:PATH[:NAME]`
    /** What the transport is asked for. Registry: the parsed reference. Layout:
        "oci-layout/import:NAME" for a NAME that is a tag, NAME itself for a full reference
        ("example.com/app:v1"), "oci-layout/import" (no tag) without NAME. */
    image_reference reference;
    std::filesystem::path layout_path;       ///< layout: PATH made absolute and normal, no trailing '/'
    std::string layout_name;                 ///< layout: NAME, or empty
    /// What index.json records the image as: reference.str(), or "oci:" + layout_path [+ ":" + NAME].
    std::string record_name;
};

/// A mirror given as `--mirror REGISTRY=URL`.
struct mirror_option {
    std::string registry;
    std::string url;

    friend bool operator==(mirror_option const&, mirror_option const&) = default;
};

/// Everything the command line says.
struct cli_options {
    command_kind command = command_kind::none;
    /// `--help` after a command: help for that command.
    command_kind help_topic = command_kind::none;
    std::optional<std::filesystem::path> root;
    std::optional<ocistore::platform> platform;
    std::vector<std::string> insecure_registries;
    std::string ca_file;
    std::vector<mirror_option> mirrors;
    artifact_choice artifacts = artifact_choice::erofs;
    pull_policy policy = pull_policy::if_missing;
    bool force = false;
    bool verify_diff_ids = false;
    std::size_t jobs = 0; ///< 0: the store's default
    progress_choice progress = progress_choice::automatic;
    bool json = false;
    bool dry_run = false;
    bool check_only = false; ///< verify: report only, evict nothing
    std::optional<image_target> image;
    std::filesystem::path export_dir;
};

/// The outcome of parse_args(): options, or a usage error.
struct parse_result {
    cli_options options;
    int exit_code = exit_ok;  ///< exit_ok, or exit_usage with `error` set
    std::string error;        ///< one line, without "ocistore: "
};

namespace detail {

inline bool parse_count(std::string_view s, std::size_t& out)
{
    if (s.empty()) return false;
    auto const* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc() && p == end;
}

/// Whether `s` is `host[:port]` (no scheme, no path, no user).
inline bool valid_host_port(std::string_view s, std::string& why)
{
    if (s.empty()) return why = "is empty", false;
    if (s.find("://") != std::string_view::npos) return why = "must be HOST[:PORT], without a scheme", false;
    for (char c : s)
        if (c == '/' || c == '@' || c == ' ' || c == '?' || c == '#')
            return why = std::string("must be HOST[:PORT]; it contains '") + c + "'", false;
    std::string_view host = s;
    std::string_view port;
    if (s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return why = "has an unclosed '['", false;
        host = s.substr(0, close + 1);
        auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return why = "has text after ']'", false;
            port = rest.substr(1);
            if (port.empty()) return why = "has an empty port", false;
        }
    } else if (auto colon = s.find(':'); colon != std::string_view::npos) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (port.empty()) return why = "has an empty port", false;
    }
    if (host.empty()) return why = "has an empty host", false;
    if (!port.empty()) {
        std::size_t n = 0;
        if (!parse_count(port, n) || n == 0 || n > 65535)
            return why = "has an invalid port \"" + std::string(port) + "\"", false;
    }
    return true;
}

} // namespace detail

/** Parses `text` as an image: `oci:PATH[:NAME]` or a registry reference. Relative layout
    paths are made absolute against the current directory. A bad reference or an empty
    PATH is error::invalid_reference with the reason in `*why`. */
inline image_target parse_image_target(std::string_view text, error_code& ec, std::string* why = nullptr)
{
    ec.clear();
    image_target t;
    t.text = std::string(text);
    auto fail = [&](std::string msg) {
        ec = make_error_code(error::invalid_reference);
        if (why) *why = std::move(msg);
        return image_target{};
    };
    if (text.starts_with("oci:")) {
        t.layout = true;
        auto rest = text.substr(4);
        auto colon = rest.find(':');
        std::string_view path = rest.substr(0, colon);
        std::string_view name = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
        if (path.empty()) return fail("\"" + std::string(text) + "\": oci: needs a layout directory (oci:PATH[:NAME])");
        if (colon != std::string_view::npos && name.empty())
            return fail("\"" + std::string(text) + "\": the name after the layout path is empty");
        std::error_code fec;
        auto abs = std::filesystem::absolute(std::filesystem::path(path), fec);
        if (fec) return fail("\"" + std::string(text) + "\": cannot make the path absolute: " + fec.message());
        abs = abs.lexically_normal();
        if (abs.has_relative_path() && !abs.has_filename()) abs = abs.parent_path(); // "/a/b/" → "/a/b"
        t.layout_path = abs;
        t.layout_name = std::string(name);
        t.record_name = "oci:" + abs.string() + (name.empty() ? "" : ":" + std::string(name));
        error_code rec;
        std::string rwhy;
        if (name.empty()) {
            t.reference = image_reference::parse("oci-layout/import", rec, &rwhy).without_tag();
        } else {
            t.reference = image_reference::parse("oci-layout/import:" + std::string(name), rec, &rwhy);
            if (rec) { // not a tag: a full reference such as example.com/app:v1
                rec.clear();
                t.reference = image_reference::parse(name, rec, &rwhy);
                if (rec) return fail("\"" + std::string(text) + "\": NAME \"" + std::string(name) +
                                     "\" is neither a tag nor an image reference: " + rwhy);
            }
        }
        return t;
    }
    std::string rwhy;
    error_code rec;
    t.reference = image_reference::parse(text, rec, &rwhy);
    if (rec) return fail("invalid image reference \"" + std::string(text) + "\": " + rwhy);
    t.record_name = t.reference.str();
    return t;
}

/// The help text of `c` (none: the overview of every command).
inline std::string help_text(command_kind c = command_kind::none)
{
    std::string const transport_opts =
        "      --insecure-registry HOST[:PORT]  speak plain HTTP to this registry (repeatable; no port: any port)\n"
        "      --ca-file PEM                    also trust the CA certificates in this PEM file\n"
        "      --mirror REGISTRY=URL            try this mirror first for REGISTRY's blobs and digest-pinned\n"
        "                                       manifests; tags are resolved at REGISTRY (repeatable, in order)\n";
    switch (c) {
    case command_kind::pull:
        return "usage: ocistore [--root DIR] pull [OPTIONS] REF\n"
               "\n"
               "Pulls REF into the cache, verifying every byte, and builds its artifacts. A fully cached\n"
               "image is answered from the cache without network access. An interrupted pull (Ctrl-C,\n"
               "kill, network loss) resumes where it stopped.\n"
               "\n"
               "REF is a registry reference (alpine:3.20, ghcr.io/o/r@sha256:…) or oci:PATH[:NAME],\n"
               "an image of the local OCI layout PATH (NAME: a tag or full reference in its index.json).\n"
               "\n"
               "options:\n"
               "      --platform OS/ARCH[/VARIANT]     the platform to select from an index (default: this host's)\n" +
               transport_opts +
               "      --artifacts erofs|rootfs|none    what to build: an EROFS image per layer plus fsmeta and VMDK\n"
               "                                       (default), a merged root file system directory, or nothing\n"
               "      --policy if-missing|always|never  if-missing (default): use the cache when complete;\n"
               "                                       always: resolve REF at the registry; never: cache only\n"
               "      --force                          download and verify every blob again\n"
               "      --verify-diff-ids                with --artifacts none, also decompress each layer and check its\n"
               "                                       diff_id (builders always do; blobs only verify digest and size)\n"
               "      --jobs N                         layers downloaded and built at once, 1 to 16 (default: up to 4)\n"
               "      --progress auto|plain|none       bars on a terminal (auto, default), log lines, or nothing\n"
               "      --json                           print the result as JSON on stdout\n";
    case command_kind::images:
        return "usage: ocistore [--root DIR] images [--json]\n"
               "\n"
               "Lists the images recorded in the cache: name, platform, manifest digest, size of the\n"
               "layer blobs, artifacts held.\n"
               "\n"
               "options:\n"
               "      --json   print an array of entries as JSON\n";
    case command_kind::inspect:
        return "usage: ocistore [--root DIR] inspect [--json] [--platform OS/ARCH[/VARIANT]] REF\n"
               "\n"
               "Shows a cached image: digests, layers, and every artifact path (layer EROFS images,\n"
               "fsmeta and VMDK, or the rootfs directories). No network access. REF as for pull.\n"
               "\n"
               "options:\n"
               "      --json       print the image as JSON\n"
               "      --platform   the platform recorded (default: this host's, or the only one recorded)\n";
    case command_kind::rm:
        return "usage: ocistore [--root DIR] rm [--platform OS/ARCH[/VARIANT]] REF\n"
               "\n"
               "Forgets REF (for every platform, or the one given), then deletes the blobs no other\n"
               "recorded image uses, and prints the bytes freed.\n";
    case command_kind::prune:
        return "usage: ocistore [--root DIR] prune [--dry-run]\n"
               "\n"
               "Deletes blobs no recorded image uses and temporaries older than a day (interrupted\n"
               "downloads included), and prints what was freed.\n"
               "\n"
               "options:\n"
               "      --dry-run   only report what would be deleted\n";
    case command_kind::export_rootfs:
        return "usage: ocistore [--root DIR] export-rootfs [OPTIONS] REF DIR\n"
               "\n"
               "Copies the merged root file system of REF to DIR (created; or an existing empty\n"
               "directory). The rootfs is built from the layer blobs kept in the cache, without network\n"
               "access; an image that is not cached, or whose blobs are gone, is downloaded first.\n"
               "\n"
               "options:\n"
               "      --platform OS/ARCH[/VARIANT]     the platform (default: this host's, or the only one recorded)\n" +
               transport_opts +
               "      --jobs N                         layers downloaded and built at once, 1 to 16\n"
               "      --progress auto|plain|none       progress of a download or build (default: auto)\n";
    case command_kind::verify:
        return "usage: ocistore [--root DIR] verify [--check-only] [--json] [REF]\n"
               "\n"
               "Checks the cache, without network access: index.json; that the manifests, configs and\n"
               "kept layer blobs hash to their digests; and the artifacts: each EROFS layer image is\n"
               "written again from its kept blob (else walked) and compared byte for byte, each fsmeta\n"
               "from its layer images, each VMDK from both; rootfs trees are checked against their\n"
               "metadata. Without REF, every recorded image and every blob. Damaged items are moved\n"
               "aside (into the cache's tmp/evicted/) so that the next pull fetches or rebuilds them.\n"
               "Prints one line per problem, then a summary. Exit status 1 when anything was damaged.\n"
               "\n"
               "options:\n"
               "      --check-only   only report: move nothing\n"
               "      --json         print the report as JSON\n";
    default:
        return "usage: ocistore [--root DIR] COMMAND [OPTIONS]\n"
               "\n"
               "Pulls OCI images into a local content-addressed cache (an OCI image layout) and builds\n"
               "EROFS, VMDK or rootfs artifacts from them.\n"
               "\n"
               "commands:\n"
               "  pull REF                 pull an image and build its artifacts\n"
               "  images                   list the cached images\n"
               "  inspect REF              show a cached image and its artifact paths\n"
               "  rm REF                   forget an image and delete what nothing else uses\n"
               "  prune                    delete unreferenced blobs and stale temporaries\n"
               "  export-rootfs REF DIR    copy an image's root file system to DIR\n"
               "  verify [REF]             check blobs and artifacts; move damaged ones aside for the next pull\n"
               "\n"
               "global options:\n"
               "      --root DIR   the cache (default: $OCISTORE_ROOT, else $XDG_CACHE_HOME/ocistore,\n"
               "                   else ~/.cache/ocistore)\n"
               "  -h, --help       this help; `ocistore COMMAND --help` for a command\n"
               "      --version    the version\n"
               "\n"
               "REF: a registry reference (alpine, ghcr.io/o/r:tag, host:5000/r@sha256:…) or oci:PATH[:NAME].\n"
               "Registry credentials come from the Docker config ($DOCKER_CONFIG/config.json or\n"
               "~/.docker/config.json) and its credential helpers.\n"
               "\n"
               "exit status: 0 success, 1 failure (the reason on stderr), 2 usage error,\n"
               "130/143 interrupted by SIGINT/SIGTERM (an interrupted download resumes on the next pull).\n";
    }
}

/// "ocistore 0.1.0\n".
inline std::string version_text() { return "ocistore " OCISTORE_VERSION_STRING "\n"; }

/// What a usage error prints on stderr: "ocistore: <message>\nsee ocistore --help\n".
inline std::string usage_error_text(std::string_view message)
{
    return "ocistore: " + std::string(message) + "\nsee ocistore --help\n";
}

/// What a runtime failure prints on stderr: one line, "ocistore: <reason>\n" (newlines in it become spaces).
inline std::string failure_text(std::string_view reason)
{
    std::string line = "ocistore: " + std::string(reason);
    for (auto& c : line)
        if (c == '\n' || c == '\r') c = ' ';
    return line + "\n";
}

/** The exit status for the outcome of an operation: exit_ok when `ec` is clear; 128 + signal
    when it is error::cancelled after `signal` (SIGINT: 130, SIGTERM: 143); exit_failure otherwise. */
inline int exit_code_for(error_code const& ec, int signal = 0) noexcept
{
    if (!ec) return exit_ok;
    if (ec == make_error_code(error::cancelled) && signal > 0) return 128 + signal;
    return exit_failure;
}

/** Parses the arguments after the program name. Options take their value as the next argument
    or after '=' (`--jobs=4`); a later single-valued option overrides an earlier one; `--`
    ends the options. `--root` is accepted before or after the command. Never throws for bad
    input: the result carries exit_usage and a one-line reason. */
inline parse_result parse_args(std::span<std::string const> args)
{
    parse_result out;
    auto& o = out.options;
    auto usage = [&](std::string msg) {
        out.exit_code = exit_usage;
        out.error = std::move(msg);
        return out;
    };
    std::vector<std::string> positional;
    bool options_done = false;
    bool want_help = false;
    // Which command-specific options each command accepts.
    auto allowed = [&](std::string_view opt) {
        using enum command_kind;
        auto const c = o.command;
        if (opt == "--root" || opt == "--help" || opt == "-h") return true;
        if (opt == "--platform") return c == pull || c == inspect || c == rm || c == export_rootfs;
        if (opt == "--insecure-registry" || opt == "--ca-file" || opt == "--mirror" || opt == "--jobs" ||
            opt == "--progress")
            return c == pull || c == export_rootfs;
        if (opt == "--artifacts" || opt == "--policy" || opt == "--force" || opt == "--verify-diff-ids") return c == pull;
        if (opt == "--json") return c == pull || c == images || c == inspect || c == verify;
        if (opt == "--dry-run") return c == prune;
        if (opt == "--check-only") return c == verify;
        return false;
    };
    auto takes_value = [](std::string_view opt) {
        return opt == "--root" || opt == "--platform" || opt == "--insecure-registry" || opt == "--ca-file" ||
               opt == "--mirror" || opt == "--artifacts" || opt == "--policy" || opt == "--jobs" ||
               opt == "--progress";
    };
    static constexpr std::string_view known[] = {"--root",   "--help",    "-h",         "--version",
                                                 "--platform", "--insecure-registry", "--ca-file", "--mirror",
                                                 "--artifacts", "--policy", "--force", "--verify-diff-ids", "--jobs",
                                                 "--progress", "--json",   "--dry-run", "--check-only"};

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (options_done || arg.empty() || arg == "-" || arg.front() != '-') {
            if (o.command == command_kind::none) {
                using enum command_kind;
                if (arg == "pull") o.command = pull;
                else if (arg == "images") o.command = images;
                else if (arg == "inspect") o.command = inspect;
                else if (arg == "rm") o.command = rm;
                else if (arg == "prune") o.command = prune;
                else if (arg == "export-rootfs") o.command = export_rootfs;
                else if (arg == "verify") o.command = verify;
                else return usage("unknown command \"" + std::string(arg) + "\"");
                continue;
            }
            positional.emplace_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        std::string_view name = arg;
        std::optional<std::string_view> inline_value;
        if (arg.starts_with("--"))
            if (auto eq = arg.find('='); eq != std::string_view::npos) {
                name = arg.substr(0, eq);
                inline_value = arg.substr(eq + 1);
            }
        bool is_known = false;
        for (auto k : known) is_known = is_known || k == name;
        if (!is_known) return usage("unknown option " + std::string(name));
        if (name == "--version") {
            if (o.command != command_kind::none)
                return usage("--version is not an option of " + std::string(command_name(o.command)));
            o.command = want_help ? command_kind::help : command_kind::version;
            return out;
        }
        if (name == "--help" || name == "-h") {
            want_help = true;
            continue;
        }
        if (o.command == command_kind::none && name != "--root")
            return usage(std::string(name) + " needs a command before it");
        if (!allowed(name))
            return usage("unknown option " + std::string(name) + " for " + std::string(command_name(o.command)));
        std::string value;
        if (takes_value(name)) {
            if (inline_value) {
                value = std::string(*inline_value);
            } else {
                if (i + 1 >= args.size()) return usage(std::string(name) + " needs a value");
                value = args[++i];
            }
        } else if (inline_value) {
            return usage(std::string(name) + " takes no value");
        }
        if (name == "--root") {
            if (value.empty()) return usage("--root needs a directory");
            o.root = std::filesystem::path(value);
        } else if (name == "--platform") {
            error_code ec;
            std::string why;
            auto p = platform::parse(value, ec, &why);
            if (ec) return usage("invalid --platform \"" + value + "\": " + why);
            o.platform = std::move(p);
        } else if (name == "--insecure-registry") {
            std::string why;
            if (!detail::valid_host_port(value, why)) return usage("--insecure-registry \"" + value + "\" " + why);
            o.insecure_registries.push_back(value);
        } else if (name == "--ca-file") {
            if (value.empty()) return usage("--ca-file needs a file");
            o.ca_file = value;
        } else if (name == "--mirror") {
            auto eq = value.find('=');
            if (eq == std::string::npos) return usage("--mirror \"" + value + "\" must be REGISTRY=URL");
            mirror_option m{value.substr(0, eq), value.substr(eq + 1)};
            std::string why;
            if (!detail::valid_host_port(m.registry, why))
                return usage("--mirror \"" + value + "\": REGISTRY " + why);
            if (!m.url.starts_with("https://") && !m.url.starts_with("http://"))
                return usage("--mirror \"" + value + "\": URL must start with https:// or http://");
            if (m.url.find_first_of(" \t") != std::string::npos || m.url.size() <= std::string_view("https://").size())
                return usage("--mirror \"" + value + "\": URL is malformed");
            o.mirrors.push_back(std::move(m));
        } else if (name == "--artifacts") {
            if (value == "erofs") o.artifacts = artifact_choice::erofs;
            else if (value == "rootfs") o.artifacts = artifact_choice::rootfs;
            else if (value == "none") o.artifacts = artifact_choice::none;
            else return usage("--artifacts must be erofs, rootfs or none, not \"" + value + "\"");
        } else if (name == "--policy") {
            if (value == "if-missing") o.policy = pull_policy::if_missing;
            else if (value == "always") o.policy = pull_policy::always;
            else if (value == "never") o.policy = pull_policy::never;
            else return usage("--policy must be if-missing, always or never, not \"" + value + "\"");
        } else if (name == "--force") {
            o.force = true;
        } else if (name == "--verify-diff-ids") {
            o.verify_diff_ids = true;
        } else if (name == "--jobs") {
            std::size_t n = 0;
            if (!detail::parse_count(value, n) || n < 1 || n > 16)
                return usage("--jobs must be a number from 1 to 16, not \"" + value + "\"");
            o.jobs = n;
        } else if (name == "--progress") {
            if (value == "auto") o.progress = progress_choice::automatic;
            else if (value == "plain") o.progress = progress_choice::plain;
            else if (value == "none") o.progress = progress_choice::none;
            else return usage("--progress must be auto, plain or none, not \"" + value + "\"");
        } else if (name == "--json") {
            o.json = true;
        } else if (name == "--dry-run") {
            o.dry_run = true;
        } else if (name == "--check-only") {
            o.check_only = true;
        }
    }

    if (want_help) {
        o.help_topic = o.command;
        o.command = command_kind::help;
        return out;
    }
    using enum command_kind;
    std::string const cmd(command_name(o.command));
    std::size_t wanted = 0;
    switch (o.command) {
    case none: return usage("no command given");
    case pull:
    case inspect:
    case rm: wanted = 1; break;
    case export_rootfs: wanted = 2; break;
    case verify: wanted = positional.empty() ? 0 : 1; break; // REF is optional
    default: wanted = 0; break;
    }
    if (positional.size() < wanted) {
        if (o.command == export_rootfs)
            return usage(positional.empty() ? "export-rootfs needs REF and DIR" : "export-rootfs needs a target DIR after REF");
        return usage(cmd + " needs an image reference");
    }
    if (positional.size() > wanted)
        return usage("unexpected argument \"" + positional[wanted] + "\" for " + cmd);
    if (wanted >= 1) {
        error_code ec;
        std::string why;
        auto t = parse_image_target(positional[0], ec, &why);
        if (ec) return usage(why);
        o.image = std::move(t);
    }
    if (wanted == 2) {
        if (positional[1].empty()) return usage("export-rootfs needs a non-empty DIR");
        o.export_dir = positional[1];
    }
    return out;
}

/// As above, from main()'s arguments (argv[0] is skipped).
inline parse_result parse_args(int argc, char const* const* argv)
{
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    return parse_args(std::span<std::string const>(args));
}

} // namespace ocistore::cli
