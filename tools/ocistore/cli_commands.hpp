// ocistore/cli_commands.hpp: the `ocistore` commands, written once over every transport and builder the tool instantiates.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/safe_fs.hpp> // basic_image_store.hpp uses it without including it
#include <ocistore/basic_image_store.hpp>
#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/builder/null_builder.hpp>
#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/detail/store_layout.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/transport/http_transport.hpp>
#include <ocistore/transport/oci_layout_transport.hpp>

#include <ocistore/cli_args.hpp>
#include <ocistore/cli_output.hpp>
#include <ocistore/progress_view.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <cerrno>
#include <unistd.h>

namespace ocistore::cli {

/// The store the tool uses: SHA-256, flock(2) locks under `<root>/locks`, and the given transport and builder.
template <class Transport, class Builder>
using store_type = basic_image_store<Transport, sha256_hasher, flock_lock, Builder>;

/// What every command runs with.
struct session {
    std::filesystem::path root;           ///< the cache root, absolute
    cli_options options;
    std::stop_token stop;                 ///< requested on SIGINT/SIGTERM
    std::function<int()> stop_signal;     ///< the signal that requested the stop, or 0
    bool stderr_tty = false;
    std::size_t width = 80;
    std::size_t rows = 24;
};

/// Writes all of `text` to `fd` (retrying on EINTR and short writes); errors are ignored.
inline void write_fd(int fd, std::string_view text)
{
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}
inline void write_out(std::string_view text) { write_fd(1, text); }
inline void write_err(std::string_view text) { write_fd(2, text); }

/// Prints the one-line failure and returns exit_failure.
inline int fail(std::string_view reason)
{
    write_err(failure_text(reason));
    return exit_failure;
}
inline int fail(error_code const& ec, std::string const& why) { return fail(why.empty() ? ec.message() : why); }

/// A builder of type `Builder` over `root`.
template <class Builder> Builder new_builder(std::filesystem::path const& root)
{
    if constexpr (std::is_same_v<Builder, null_builder>)
        return null_builder{};
    else
        return Builder(root);
}

template <class Builder, class Transport>
store_type<Transport, Builder> make_store(std::filesystem::path const& root, Transport transport)
{
    return store_type<Transport, Builder>(root, std::move(transport), flock_lock(root / "locks"), new_builder<Builder>(root));
}

/// Calls `f(Builder{})` (a type tag) for the builder `a` names.
template <class F> decltype(auto) with_builder(artifact_choice a, F&& f)
{
    switch (a) {
    case artifact_choice::erofs: return f(std::type_identity<erofs_builder>{});
    case artifact_choice::rootfs: return f(std::type_identity<rootfs_builder>{});
    default: return f(std::type_identity<null_builder>{});
    }
}

/// http_options from the command line: insecure hosts, CA file, mirrors (untrusted: blobs and digests only).
inline http_options http_options_for(cli_options const& o)
{
    http_options h;
    h.insecure_hosts = o.insecure_registries;
    h.ca_file = o.ca_file;
    for (auto const& m : o.mirrors) {
        std::string key = m.registry;
        if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
        h.mirrors[key].push_back(mirror_endpoint{m.url, false});
    }
    return h;
}

/** Calls `f(transport)` with the transport `t` needs: the OCI layout it names, or an
    http_transport (whose constructor throws system_error for a bad CA file, mirror or Docker config). */
template <class F> decltype(auto) with_transport(image_target const& t, cli_options const& o, F&& f)
{
    if (t.layout) return f(oci_layout_transport(t.layout_path));
    return f(http_transport(http_options_for(o)));
}

/// Feeds a pull's events to a progress_view and writes its text to stderr.
class progress_reporter {
public:
    explicit progress_reporter(session const& s)
    {
        auto const choice = s.options.progress;
        if (choice == progress_choice::none) return;
        progress_view::options vo;
        vo.style = (choice == progress_choice::automatic && s.stderr_tty) ? progress_style::tty : progress_style::plain;
        vo.width = s.width;
        vo.max_rows = s.rows > 4 ? s.rows - 1 : 4;
        view_.emplace(vo);
    }

    /// The callback for pull_options::progress (empty without progress).
    progress_callback callback()
    {
        if (!view_) return {};
        return [this](progress_event const& ev) { write_err(view_->on_event(ev, progress_view::clock::now())); };
    }

    void finish(bool ok, std::string_view phase = "failed")
    {
        if (view_) write_err(view_->finish(progress_view::clock::now(), ok, phase));
    }

private:
    std::optional<progress_view> view_;
};

/// The pull_options of the command line.
inline pull_options pull_options_for(session const& s, progress_reporter& progress)
{
    pull_options po;
    po.platform = s.options.platform;
    po.policy = s.options.policy;
    po.force = s.options.force;
    po.verify_diff_ids = s.options.verify_diff_ids;
    po.jobs = s.options.jobs;
    po.progress = progress.callback();
    po.stop = s.stop;
    return po;
}

/// Reports the failure of a pull: 128 + signal after an interrupt, exit_failure otherwise.
inline int pull_failed(session const& s, progress_reporter& progress, error_code const& ec, std::string const& why)
{
    int const sig = s.stop_signal ? s.stop_signal() : 0;
    int const code = exit_code_for(ec, sig);
    progress.finish(false, code > 128 ? "stopped" : "failed");
    if (code > 128)
        return write_err(failure_text(std::string("interrupted by ") + (sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal") +
                                      "; a partial download is kept and resumes on the next pull")),
               code;
    return fail(ec, why);
}

/** Pulls with builder `Builder`. A reference the cache answers (policy other than `always`,
    no `force`) is answered through a store over the root itself, so that no registry
    transport is even constructed. */
template <class Builder>
std::optional<pull_result> pull_as(session const& s, image_target const& t, pull_options const& po, error_code& ec,
                                   std::string& why)
{
    ec.clear();
    if (po.policy != pull_policy::always && !po.force) {
        auto probe = make_store<Builder>(s.root, oci_layout_transport(s.root));
        pull_options cache_only = po;
        cache_only.policy = pull_policy::never;
        auto r = probe.pull(t.reference, cache_only, ec, &why, t.record_name);
        if (!ec) return r;
        if (po.policy == pull_policy::never) return std::nullopt;
        ec.clear();
        why.clear();
    }
    auto r = with_transport(t, s.options, [&](auto transport) {
        auto store = make_store<Builder>(s.root, std::move(transport));
        return store.pull(t.reference, po, ec, &why, t.record_name);
    });
    if (ec) return std::nullopt;
    return r;
}

/// `ocistore pull`.
inline int run_pull(session const& s)
{
    auto const& t = *s.options.image;
    progress_reporter progress(s);
    pull_options const po = pull_options_for(s, progress);
    auto const t0 = std::chrono::steady_clock::now();
    error_code ec;
    std::string why;
    auto r = with_builder(s.options.artifacts, [&]<class B>(std::type_identity<B>) { return pull_as<B>(s, t, po, ec, why); });
    auto const elapsed = std::chrono::steady_clock::now() - t0;
    if (ec || !r) return pull_failed(s, progress, ec, why);
    progress.finish(true);
    if (s.options.json)
        write_out(json_line(result_json(*r, t.record_name)));
    else
        write_out(pull_summary(*r, t.record_name, elapsed));
    return exit_ok;
}

/// A store for commands that read or edit the cache only (no transport is used).
template <class Builder> store_type<oci_layout_transport, Builder> local_store(std::filesystem::path const& root)
{
    return make_store<Builder>(root, oci_layout_transport(root));
}

/// The records of `name`, read from index.json.
inline std::vector<image_entry> records_named(std::filesystem::path const& root, std::string_view name, error_code& ec,
                                              std::string& why)
{
    auto entries = local_store<null_builder>(root).list(ec, &why);
    std::erase_if(entries, [&](image_entry const& e) { return e.reference != name; });
    return entries;
}

/** The platform to use for `name`: the one given; else none (the store's default, the host)
    when a record for the host exists or there is no record; else the only one recorded.
    Several and none for the host: error::invalid_argument naming them. */
inline std::optional<platform> platform_for(session const& s, std::string_view name, error_code& ec, std::string& why)
{
    ec.clear();
    if (s.options.platform) return s.options.platform;
    auto entries = records_named(s.root, name, ec, why);
    if (ec) return std::nullopt;
    platform const host = host_platform().normalized();
    std::set<std::string> platforms;
    for (auto const& e : entries) {
        if (e.platform.normalized() == host) return std::nullopt;
        platforms.insert(e.platform.to_string());
    }
    if (platforms.size() == 1) return entries.front().platform;
    if (platforms.size() > 1) {
        std::string list;
        for (auto const& p : platforms) list += (list.empty() ? "" : ", ") + p;
        ec = make_error_code(error::invalid_argument);
        why = std::string(name) + " is cached for several platforms (" + list + "); choose one with --platform";
    }
    return std::nullopt;
}

/// `ocistore inspect`: the first builder (erofs, rootfs, none) that holds the image complete answers.
inline int run_inspect(session const& s)
{
    auto const& t = *s.options.image;
    error_code ec;
    std::string why;
    auto const p = platform_for(s, t.record_name, ec, why);
    if (ec) return fail(ec, why);
    std::optional<pull_result> found;
    for (auto kind : {artifact_choice::erofs, artifact_choice::rootfs, artifact_choice::none}) {
        found = with_builder(kind, [&]<class B>(std::type_identity<B>) -> std::optional<pull_result> {
            error_code iec;
            auto r = local_store<B>(s.root).inspect(t.record_name, p, iec);
            if (iec) return std::nullopt;
            return r;
        });
        if (found) break;
    }
    if (!found) {
        auto entries = records_named(s.root, t.record_name, ec, why);
        if (ec) return fail(ec, why);
        if (entries.empty()) return fail(t.record_name + " is not in the cache " + s.root.string());
        return fail(t.record_name + " is recorded in the cache but incomplete (a blob or artifact is missing); pull it again to repair it");
    }
    if (s.options.json)
        write_out(json_line(result_json(*found, t.record_name)));
    else
        write_out(inspect_text(*found, t.record_name));
    return exit_ok;
}

/// `ocistore images`.
inline int run_images(session const& s)
{
    error_code ec;
    std::string why;
    auto entries = local_store<null_builder>(s.root).list(ec, &why);
    if (ec) return fail(ec, why);
    std::vector<image_row> rows;
    erofs_builder erofs(s.root);
    rootfs_builder rootfs(s.root);
    ocistore::detail::store_layout const layout{s.root};
    for (auto& e : entries) {
        image_row row;
        error_code rec;
        auto text = ocistore::detail::safe_fs::read_small_file(layout.blob(e.manifest_digest), max_manifest_size, rec);
        if (!rec) {
            auto doc = parse_manifest(text, e.media_type, rec);
            if (!rec && !doc.is_index()) {
                std::uint64_t size = 0;
                for (auto const& l : doc.manifest().layers) size += static_cast<std::uint64_t>(l.size);
                row.size = size;
            }
        }
        if (erofs.image(e.manifest_digest, rec)) row.artifacts.emplace_back("erofs");
        if (rootfs.image(e.manifest_digest, rec)) row.artifacts.emplace_back("rootfs");
        row.entry = std::move(e);
        rows.push_back(std::move(row));
    }
    if (s.options.json)
        write_out(json_line(images_json(rows)));
    else
        write_out(images_table(rows));
    return exit_ok;
}

/** Prunes blobs, temporaries and the artifacts of every builder that can prune its own
    (prunable_artifact_builder); erofs_builder's store runs first and owns the blobs. */
inline prune_report prune_all(std::filesystem::path const& root, prune_options const& po, error_code& ec, std::string& why)
{
    auto report = local_store<erofs_builder>(root).prune(po, ec, &why);
    if (ec) return report;
    if constexpr (prunable_artifact_builder<rootfs_builder>) {
        std::error_code fec;
        if (std::filesystem::exists(root / "rootfs", fec)) {
            auto more = local_store<rootfs_builder>(root).prune(po, ec, &why);
            if (ec) return report;
            // In a dry run both reports list the same unreferenced blobs and temporaries: count them once.
            std::set<std::filesystem::path> const seen(report.removed.begin(), report.removed.end());
            for (auto const& p : more.removed) {
                if (seen.count(p)) {
                    more.bytes -= std::min(more.bytes, ocistore::detail::regular_file_size(p).value_or(0));
                    continue;
                }
                report.removed.push_back(p);
            }
            report.layer_artifacts += more.layer_artifacts;
            report.image_artifacts += more.image_artifacts;
            report.bytes += more.bytes;
        }
    }
    return report;
}

/// `ocistore prune`.
inline int run_prune(session const& s)
{
    prune_options po;
    po.dry_run = s.options.dry_run;
    error_code ec;
    std::string why;
    auto report = prune_all(s.root, po, ec, why);
    if (ec) return fail(ec, why);
    write_out(prune_text(report, po.dry_run));
    return exit_ok;
}

/// `ocistore rm`: forgets the image, then prunes.
inline int run_rm(session const& s)
{
    auto const& t = *s.options.image;
    std::error_code fec;
    if (!std::filesystem::exists(s.root / "index.json", fec)) return fail("no image named " + t.record_name + " in the cache");
    error_code ec;
    std::string why;
    auto const removed = local_store<null_builder>(s.root).remove(t.record_name, s.options.platform, ec, &why);
    if (ec) return fail(ec, why);
    auto report = prune_all(s.root, prune_options{}, ec, why);
    if (ec) return fail(ec, "removed " + t.record_name + ", but pruning failed: " + (why.empty() ? ec.message() : why));
    write_out("removed " + t.record_name + (removed == 1 ? "" : " (" + std::to_string(removed) + " platforms)") + "\n" +
              prune_text(report, false));
    return exit_ok;
}

/** `ocistore export-rootfs`. A cached image is built into a rootfs from the blobs the cache
    keeps, through an oci_layout_transport over the root itself (no network; the record
    stays as it is: the same name, platform, index and manifest). An image that is not
    cached, or whose blobs are gone, is pulled with the real transport. */
inline int run_export_rootfs(session const& s)
{
    auto const& t = *s.options.image;
    error_code ec;
    std::string why;
    auto const wanted = platform_for(s, t.record_name, ec, why);
    if (ec) return fail(ec, why);
    progress_reporter progress(s);
    pull_options po = pull_options_for(s, progress);
    po.policy = pull_policy::if_missing;
    po.force = false;
    po.platform = wanted;

    std::optional<pull_result> r;
    // A record to rebuild from: the one for the platform asked for (or the host's, or the only one).
    auto entries = records_named(s.root, t.record_name, ec, why);
    if (ec) return fail(ec, why);
    platform const want = (wanted ? *wanted : host_platform()).normalized();
    image_entry const* record = nullptr;
    for (auto const& e : entries)
        if (e.platform.normalized() == want) record = &e;
    if (record) {
        ocistore::detail::store_layout const layout{s.root};
        digest pin = record->manifest_digest;
        if (record->index_digest && ocistore::detail::regular_file_size(layout.blob(*record->index_digest))) pin = *record->index_digest;
        pull_options local = po;
        local.platform = record->platform;
        auto store = make_store<rootfs_builder>(s.root, oci_layout_transport(s.root));
        auto pr = store.pull(t.reference.with_digest(pin), local, ec, &why, t.record_name);
        if (!ec) r = std::move(pr);
        else if (ec == make_error_code(error::cancelled)) return pull_failed(s, progress, ec, why);
    }
    if (!r) {
        ec.clear();
        why.clear();
        r = pull_as<rootfs_builder>(s, t, po, ec, why);
        if (ec || !r) return pull_failed(s, progress, ec, why);
    }
    progress.finish(true);
    rootfs_builder builder(s.root);
    auto warnings = builder.export_rootfs(r->manifest_digest, s.options.export_dir, ec, &why);
    if (ec) return fail(ec, "cannot export the rootfs of " + t.record_name + " to " + s.options.export_dir.string() + ": " +
                                (why.empty() ? ec.message() : why));
    std::size_t const shown = std::min<std::size_t>(warnings.size(), 10);
    for (std::size_t i = 0; i < shown; ++i)
        write_err("ocistore: warning: " + (warnings[i].path.empty() ? std::string() : warnings[i].path + ": ") +
                  warnings[i].message + "\n");
    if (warnings.size() > shown) write_err("ocistore: warning: " + std::to_string(warnings.size() - shown) + " more\n");
    write_out("exported " + t.record_name + " (" + r->platform.to_string() + ") to " + s.options.export_dir.string() +
              (warnings.empty() ? std::string() : " with " + std::to_string(warnings.size()) + " warning(s)") + "\n");
    return exit_ok;
}

/** `ocistore verify`: a store over the root with erofs_builder checks index.json, every blob
    and the EROFS artifacts; when rootfs trees were built, a second pass checks those (blobs
    are not read again). Exit status 1 when anything was damaged or missing. */
inline int run_verify(session const& s)
{
    verify_options vo;
    vo.evict = !s.options.check_only;
    std::optional<std::string> const name = s.options.image ? std::optional<std::string>(s.options.image->record_name) : std::nullopt;
    auto verify_with = [&]<class B>(std::type_identity<B>, verify_options const& o, error_code& ec, std::string& why) {
        auto store = local_store<B>(s.root);
        return name ? store.verify(std::string_view(*name), o, ec, &why) : store.verify(o, ec, &why);
    };
    error_code ec;
    std::string why;
    auto report = verify_with(std::type_identity<erofs_builder>{}, vo, ec, why);
    if (ec == make_error_code(error::not_found)) return fail(ec, why);
    std::string failure = ec ? (why.empty() ? ec.message() : why) : std::string();
    std::error_code fec;
    if (std::filesystem::exists(s.root / "rootfs", fec)) {
        verify_options second = vo;
        second.check_blobs = false;
        error_code rec;
        std::string rwhy;
        auto more = verify_with(std::type_identity<rootfs_builder>{}, second, rec, rwhy);
        if (rec && rec != make_error_code(error::not_found) && failure.empty()) failure = rwhy.empty() ? rec.message() : rwhy;
        report.layer_artifacts += more.layer_artifacts;
        report.image_artifacts += more.image_artifacts;
        report.bytes += more.bytes;
        for (auto& f : more.findings) report.findings.push_back(std::move(f));
        for (auto& k : more.skipped) report.skipped.push_back(std::move(k));
    }
    if (s.options.json)
        write_out(json_line(verify_json(report)));
    else
        write_out(verify_text(report, s.options.check_only));
    if (!failure.empty()) return fail(failure);
    return report.clean() ? exit_ok : exit_failure;
}

/// Runs the command of `s.options` (not help or version).
inline int run_command(session const& s)
{
    switch (s.options.command) {
    case command_kind::pull: return run_pull(s);
    case command_kind::images: return run_images(s);
    case command_kind::inspect: return run_inspect(s);
    case command_kind::rm: return run_rm(s);
    case command_kind::prune: return run_prune(s);
    case command_kind::export_rootfs: return run_export_rootfs(s);
    case command_kind::verify: return run_verify(s);
    default: return fail("no command");
    }
}

} // namespace ocistore::cli
