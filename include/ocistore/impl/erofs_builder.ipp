// Non-template bodies for ocistore/builder/erofs_builder.hpp.
#pragma once

#include <ocistore/atomic_file.hpp>
#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/safe_fs.hpp>
#include <ocistore/detail/store_layout.hpp>
#include <ocistore/erofs/fsmeta_writer.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/layer_writer.hpp>
#include <ocistore/erofs/vmdk.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {

/// What sinks, prepared layers and the builder share; immutable after construction.
struct erofs_builder::config {
    std::filesystem::path layers;   ///< <root>/layers
    std::filesystem::path fsmeta;   ///< <root>/fsmeta
    std::filesystem::path vmdk;     ///< <root>/vmdk
    std::filesystem::path work;     ///< temporaries
    std::filesystem::path absolute; ///< the root made absolute, for absolute VMDK paths; empty otherwise
    bool durable = true;
    std::string identity;
};

namespace detail::erofs_builder_impl {

using ocistore::detail::set_why;

namespace sfs = detail::safe_fs;

inline constexpr std::uint64_t block_size = 4096;
inline constexpr std::size_t max_vmdk_size = 1u << 20;


inline bool fail_errno(int e, std::string const& what, error_code& ec, std::string* why)
{
    ec = sfs::errno_code(e);
    set_why(why, what + ": " + std::generic_category().message(e));
    return false;
}

/// Whether `ec` is a failure to find out (an errno), as opposed to a verdict on the content.
inline bool is_io_error(error_code const& ec) noexcept
{
    return ec.category() == std::system_category() || ec.category() == std::generic_category();
}

/// Creates `<work>/erofs-<what>-<12 hex of d>-XXXXXX`, mode 0644, open read-write.
inline sfs::unique_fd make_temp_file(std::filesystem::path const& work, std::string_view what, digest const& d,
                                     std::filesystem::path& path, error_code& ec, std::string* why)
{
    ec.clear();
    std::error_code fec;
    std::filesystem::create_directories(work, fec);
    if (fec) {
        ec = fec;
        set_why(why, "creating the work directory \"" + work.string() + "\": " + fec.message());
        return {};
    }
    std::string tmpl =
        (work / ("erofs-" + std::string(what) + "-" + std::string(d.encoded().substr(0, 12)) + "-XXXXXX")).string();
    sfs::unique_fd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!fd) {
        fail_errno(errno, "creating a temporary file in \"" + work.string() + "\"", ec, why);
        return {};
    }
    path = tmpl;
    if (::fchmod(fd.get(), 0644) != 0) {
        int const e = errno;
        ::unlink(tmpl.c_str());
        path.clear();
        fail_errno(e, "setting the mode of " + tmpl, ec, why);
        return {};
    }
    return fd;
}

inline bool fsync_fd(int fd, std::filesystem::path const& path, error_code& ec, std::string* why)
{
    while (::fsync(fd) != 0) {
        if (errno == EINTR) continue;
        return fail_errno(errno, "syncing " + path.string(), ec, why);
    }
    return true;
}

/// An EROFS image file checked as an artifact, open for reading.
struct checked_image {
    sfs::unique_fd fd;
    erofs_image_reader reader;
    std::uint32_t blocks = 0;
};

/** Opens and checks the image at `path`: a regular file (not followed through a symlink)
    whose superblock parses, whose root inode is a directory, and whose length is exactly
    blocks × 4096. `layer`: it must also have no device table. Empty with `ec` clear when
    absent or invalid; `ec` set on an I/O failure. */
inline std::optional<checked_image> check_image(std::filesystem::path const& path, bool layer, error_code& ec)
{
    ec.clear();
    checked_image out;
    out.fd.reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!out.fd) {
        int const e = errno;
        if (e != ENOENT && e != ENOTDIR && e != ELOOP) ec = sfs::errno_code(e);
        return std::nullopt;
    }
    struct ::stat st;
    if (::fstat(out.fd.get(), &st) != 0) {
        ec = sfs::errno_code(errno);
        return std::nullopt;
    }
    auto const size = static_cast<std::uint64_t>(st.st_size);
    if (!S_ISREG(st.st_mode) || size < block_size || size % block_size != 0) return std::nullopt;
    error_code rec;
    out.reader = erofs_image_reader::from_fd(out.fd.get(), rec);
    if (rec) {
        if (is_io_error(rec)) ec = rec;
        return std::nullopt;
    }
    auto const& info = out.reader.info();
    if (std::uint64_t(info.blocks) * block_size != size) return std::nullopt;
    if (layer && (!info.devices.empty() || (info.feature_incompat & erofs_incompat_device_table) != 0))
        return std::nullopt;
    auto root = out.reader.inode(info.root_nid, rec);
    if (rec) {
        if (is_io_error(rec)) ec = rec;
        return std::nullopt;
    }
    if (!root.is_dir()) return std::nullopt;
    out.blocks = info.blocks;
    return out;
}

/// Writes all of `text` at the start of the empty file `fd`.
inline bool write_all(int fd, std::string_view text, std::filesystem::path const& path, error_code& ec,
                      std::string* why)
{
    while (!text.empty()) {
        ssize_t const n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(errno, "writing " + path.string(), ec, why);
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// Removes a temporary file on destruction unless its path was cleared.
struct temp_file_guard {
    std::filesystem::path path;
    ~temp_file_guard()
    {
        if (!path.empty()) ::unlink(path.c_str());
    }
};

/// Renames `temp` onto `target` (replacing it), after creating the target's directory.
inline bool publish(std::filesystem::path const& temp, std::filesystem::path const& target, error_code& ec,
                    std::string* why)
{
    std::error_code fec;
    std::filesystem::create_directories(target.parent_path(), fec);
    if (fec) {
        ec = fec;
        set_why(why, "creating " + target.parent_path().string() + ": " + fec.message());
        return false;
    }
    if (::rename(temp.c_str(), target.c_str()) != 0)
        return fail_errno(errno, "renaming " + temp.string() + " to " + target.string(), ec, why);
    return true;
}

} // namespace detail::erofs_builder_impl

/// The state of one layer sink.
struct erofs_builder::sink_state {
    std::shared_ptr<config const> cfg;
    digest diff_id;
    std::filesystem::path temp;       ///< the temporary image; removed on destruction unless handed on
    detail::safe_fs::unique_fd fd;
    std::optional<erofs_layer_writer> writer;
    error_code failed;
    std::string failed_why;
    bool finished = false;
    std::uint64_t entries = 0;

    sink_state() = default;
    sink_state(sink_state const&) = delete;
    sink_state& operator=(sink_state const&) = delete;
    ~sink_state()
    {
        writer.reset();
        fd.reset();
        if (!temp.empty()) ::unlink(temp.c_str());
    }

    void fail(error_code const& code, std::string msg, error_code& ec, std::string* why)
    {
        failed = code;
        failed_why = std::move(msg);
        ec = code;
        detail::erofs_builder_impl::set_why(why, failed_why);
    }
};

// --- prepared_layer and layer_sink ----------------------------------------------------------

OCISTORE_DECL erofs_builder::prepared_layer::prepared_layer(prepared_layer&& other) noexcept
    : config_(std::move(other.config_)),
      diff_id_(std::move(other.diff_id_)),
      temp_(std::exchange(other.temp_, {})),
      fd_(std::exchange(other.fd_, -1)),
      blocks_(other.blocks_),
      entries_(other.entries_),
      warnings_(std::move(other.warnings_))
{
}

OCISTORE_DECL erofs_builder::prepared_layer& erofs_builder::prepared_layer::operator=(prepared_layer&& other) noexcept
{
    if (this != &other) {
        discard();
        config_ = std::move(other.config_);
        diff_id_ = std::move(other.diff_id_);
        temp_ = std::exchange(other.temp_, {});
        fd_ = std::exchange(other.fd_, -1);
        blocks_ = other.blocks_;
        entries_ = other.entries_;
        warnings_ = std::move(other.warnings_);
    }
    return *this;
}

OCISTORE_DECL erofs_builder::prepared_layer::~prepared_layer() { discard(); }

OCISTORE_DECL void erofs_builder::prepared_layer::discard() noexcept
{
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    if (!temp_.empty()) {
        ::unlink(temp_.c_str());
        temp_.clear();
    }
}

OCISTORE_DECL erofs_builder::layer_sink::layer_sink(std::unique_ptr<sink_state> state) noexcept
    : state_(std::move(state))
{
}
OCISTORE_DECL erofs_builder::layer_sink::layer_sink(layer_sink&& other) noexcept = default;
OCISTORE_DECL erofs_builder::layer_sink& erofs_builder::layer_sink::operator=(layer_sink&& other) noexcept = default;
OCISTORE_DECL erofs_builder::layer_sink::~layer_sink() = default;

OCISTORE_DECL void erofs_builder::layer_sink::add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec,
                                                        std::string* why)
{
    namespace bi = detail::erofs_builder_impl;
    if (!state_) {
        ec = make_error_code(error::invalid_argument);
        bi::set_why(why, "add_entry on a moved-from layer sink");
        return;
    }
    auto& s = *state_;
    if (s.failed) {
        ec = s.failed;
        bi::set_why(why, s.failed_why);
        return;
    }
    if (s.finished) {
        ec = make_error_code(error::invalid_argument);
        bi::set_why(why, "add_entry after finish");
        return;
    }
    std::string msg;
    s.writer->add_entry(entry, data, ec, &msg);
    if (ec) return s.fail(ec, "layer " + s.diff_id.str() + ": " + msg, ec, why);
    ++s.entries;
}

OCISTORE_DECL void erofs_builder::layer_sink::add_entry(tar_entry const& entry, byte_source_ref data)
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        add_entry(entry, data, ec, why);
        return 0;
    });
}

OCISTORE_DECL erofs_builder::prepared_layer erofs_builder::layer_sink::finish(error_code& ec, std::string* why)
{
    namespace bi = detail::erofs_builder_impl;
    prepared_layer out;
    if (!state_) {
        ec = make_error_code(error::invalid_argument);
        bi::set_why(why, "finish on a moved-from layer sink");
        return out;
    }
    auto& s = *state_;
    if (s.failed) {
        ec = s.failed;
        bi::set_why(why, s.failed_why);
        return out;
    }
    if (s.finished) {
        ec = make_error_code(error::invalid_argument);
        bi::set_why(why, "finish called twice");
        return out;
    }
    std::string msg;
    layer_data_map const map = s.writer->finish(ec, &msg);
    if (ec) {
        s.fail(ec, "layer " + s.diff_id.str() + ": " + msg, ec, why);
        return out;
    }
    struct ::stat st;
    if (::fstat(s.fd.get(), &st) != 0) {
        int const e = errno;
        s.fail(detail::safe_fs::errno_code(e), "layer " + s.diff_id.str() + ": fstat: " +
                                                   std::generic_category().message(e), ec, why);
        return out;
    }
    if (static_cast<std::uint64_t>(st.st_size) != std::uint64_t(map.total_blocks) * bi::block_size) {
        s.fail(make_error_code(error::build_failed),
               "layer " + s.diff_id.str() + ": the image is " + std::to_string(st.st_size) + " bytes, not " +
                   std::to_string(map.total_blocks) + " blocks",
               ec, why);
        return out;
    }
    ec.clear();
    s.finished = true;
    out.config_ = s.cfg;
    out.diff_id_ = s.diff_id;
    out.temp_ = std::exchange(s.temp, {});
    out.fd_ = s.fd.release();
    out.blocks_ = map.total_blocks;
    out.entries_ = s.entries;
    out.warnings_ = s.writer->warnings();
    return out;
}

OCISTORE_DECL erofs_builder::prepared_layer erofs_builder::layer_sink::finish()
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return finish(ec, why); });
}

OCISTORE_DECL std::vector<build_warning> const& erofs_builder::layer_sink::warnings() const noexcept
{
    static std::vector<build_warning> const none;
    return state_ && state_->writer ? state_->writer->warnings() : none;
}

// --- the builder ------------------------------------------------------------------------------

OCISTORE_DECL erofs_builder::erofs_builder(std::filesystem::path root, erofs_builder_options options)
{
    auto c = std::make_shared<config>();
    c->layers = root / "layers";
    c->fsmeta = root / "fsmeta";
    c->vmdk = root / "vmdk";
    c->work = options.work_dir.empty() ? root / "tmp" : options.work_dir;
    c->durable = options.durable;
    c->identity = "erofs_builder/1";
    if (options.absolute_vmdk_paths) {
        std::error_code fec;
        c->absolute = std::filesystem::absolute(root, fec).lexically_normal();
        if (fec) c->absolute = root.lexically_normal();
        c->identity += " vmdk_paths=absolute";
    }
    config_ = std::move(c);
}

OCISTORE_DECL std::string const& erofs_builder::identity() const noexcept { return config_->identity; }

OCISTORE_DECL void erofs_builder::prune_artifacts(std::span<digest const> live_layers,
                                                  std::span<digest const> live_images, prune_options const& options,
                                                  prune_report& report, error_code& ec)
{
    std::vector<digest> layers(live_layers.begin(), live_layers.end());
    std::vector<digest> images(live_images.begin(), live_images.end());
    std::sort(layers.begin(), layers.end());
    std::sort(images.begin(), images.end());
    // Images first: a VMDK or fsmeta never outlives the layers it names.
    report.image_artifacts += detail::prune_keyed_entries(config_->vmdk, ".vmdk", images,
                                                          options, report, ec);
    if (ec) return;
    detail::prune_keyed_entries(config_->fsmeta, ".erofs", images, options, report, ec);
    if (ec) return;
    report.layer_artifacts += detail::prune_keyed_entries(config_->layers, ".erofs",
                                                          layers, options, report, ec);
}

OCISTORE_DECL std::filesystem::path erofs_builder::layer_path(digest const& diff_id) const
{
    return config_->layers / (diff_id.path_safe() + ".erofs");
}

OCISTORE_DECL std::filesystem::path erofs_builder::fsmeta_path(digest const& key) const
{
    return config_->fsmeta / (key.path_safe() + ".erofs");
}

OCISTORE_DECL std::filesystem::path erofs_builder::vmdk_path(digest const& key) const
{
    return config_->vmdk / (key.path_safe() + ".vmdk");
}

OCISTORE_DECL std::string erofs_builder::layer_tag(digest const& diff_id)
{
    return std::string(diff_id.encoded().substr(0, 64));
}

OCISTORE_DECL std::vector<std::filesystem::path> erofs_builder::artifact_paths(layer_result const& layer) const
{
    return {layer_path(layer.diff_id)};
}

OCISTORE_DECL std::vector<std::filesystem::path> erofs_builder::artifact_paths(image_result const& image) const
{
    return {fsmeta_path(image.key), vmdk_path(image.key)};
}

OCISTORE_DECL erofs_builder::layer_sink erofs_builder::begin_layer(layer_info const& info, error_code& ec,
                                                                   std::string* why)
{
    namespace bi = detail::erofs_builder_impl;
    auto st = std::make_unique<sink_state>();
    st->cfg = config_;
    st->diff_id = info.diff_id;
    if (info.diff_id.empty()) {
        st->fail(make_error_code(error::invalid_argument), "begin_layer: layer_info::diff_id is empty", ec, why);
        return layer_sink(std::move(st));
    }
    std::string msg;
    st->fd = bi::make_temp_file(config_->work, "layer", info.diff_id, st->temp, ec, &msg);
    if (ec) {
        st->fail(ec, "begin_layer " + info.diff_id.str() + ": " + msg, ec, why);
        return layer_sink(std::move(st));
    }
    erofs_layer_options options;
    options.uuid_seed = info.diff_id.bytes();
    if (config_->durable) options.start_writeback_every = std::uint64_t(8) << 20;
    st->writer.emplace(st->fd.get(), std::move(options));
    ec.clear();
    return layer_sink(std::move(st));
}

OCISTORE_DECL erofs_builder::layer_sink erofs_builder::begin_layer(layer_info const& info)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return begin_layer(info, ec, why); });
}

OCISTORE_DECL erofs_builder::layer_result erofs_builder::commit_layer(prepared_layer&& prepared, error_code& ec,
                                                                      std::string* why)
{
    namespace bi = detail::erofs_builder_impl;
    namespace sfs = detail::safe_fs;
    ec.clear();
    layer_result result;
    if (!prepared.has_image()) {
        bi::set_why(why, "commit_layer: the prepared layer holds no image (failed, moved from, or committed)");
        ec = make_error_code(error::invalid_argument);
        return result;
    }
    digest const diff_id = prepared.diff_id_;
    std::filesystem::path const final_path = layer_path(diff_id);
    std::string const where = "commit_layer " + diff_id.str() + ": ";
    if (config_->durable && !bi::fsync_fd(prepared.fd_, prepared.temp_, ec, why)) return result;
    ::close(std::exchange(prepared.fd_, -1));
    std::error_code fec;
    std::filesystem::create_directories(config_->layers, fec);
    if (fec) {
        ec = fec;
        bi::set_why(why, where + "creating " + config_->layers.string() + ": " + fec.message());
        return result;
    }
    if (!sfs::rename_noreplace(AT_FDCWD, prepared.temp_.string(), AT_FDCWD, final_path.string(), ec)) {
        if (ec) {
            bi::set_why(why, where + "renaming " + prepared.temp_.string() + ": " + ec.message());
            return result;
        }
        error_code lec;
        if (auto held = bi::check_image(final_path, true, lec)) {
            // Someone published a valid one first: keep it.
            prepared.discard();
            return layer_result{diff_id, final_path, held->blocks};
        }
        if (::rename(prepared.temp_.c_str(), final_path.c_str()) != 0) {
            bi::fail_errno(errno, where + "replacing " + final_path.string(), ec, why);
            return result;
        }
    }
    prepared.temp_.clear();
    if (config_->durable) {
        error_code sec;
        fsync_directory(config_->layers, sec);
    }
    result = layer_result{diff_id, final_path, prepared.blocks_};
    prepared.discard();
    return result;
}

OCISTORE_DECL erofs_builder::layer_result erofs_builder::commit_layer(prepared_layer&& prepared)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return commit_layer(std::move(prepared), ec, why); });
}

OCISTORE_DECL bool erofs_builder::has_layer(digest const& diff_id, error_code& ec)
{
    return layer(diff_id, ec).has_value();
}

OCISTORE_DECL bool erofs_builder::has_layer(digest const& diff_id)
{
    error_code ec;
    bool const r = has_layer(diff_id, ec);
    detail::throw_if(ec, "erofs_builder: has_layer");
    return r;
}

OCISTORE_DECL std::optional<erofs_builder::layer_result> erofs_builder::layer(digest const& diff_id, error_code& ec)
{
    ec.clear();
    if (diff_id.empty()) return std::nullopt;
    std::filesystem::path path = layer_path(diff_id);
    auto held = detail::erofs_builder_impl::check_image(path, true, ec);
    if (!held) return std::nullopt;
    return layer_result{diff_id, std::move(path), held->blocks};
}

OCISTORE_DECL std::optional<erofs_builder::layer_result> erofs_builder::layer(digest const& diff_id)
{
    error_code ec;
    auto r = layer(diff_id, ec);
    detail::throw_if(ec, "erofs_builder: layer");
    return r;
}

OCISTORE_DECL std::string erofs_builder::vmdk_text(digest const& key, std::uint32_t fsmeta_blocks,
                                                   std::span<layer_result const> layers, error_code& ec,
                                                   std::string* why) const
{
    namespace bi = detail::erofs_builder_impl;
    auto name = [&](std::string_view dir, std::filesystem::path const& file) {
        if (!config_->absolute.empty()) return (config_->absolute / dir / file.filename()).string();
        return "../" + std::string(dir) + "/" + file.filename().string();
    };
    std::vector<vmdk_extent> extents;
    extents.reserve(layers.size() + 1);
    extents.push_back({name("fsmeta", fsmeta_path(key)), std::uint64_t(fsmeta_blocks) * bi::block_size});
    for (auto const& l : layers)
        extents.push_back({name("layers", layer_path(l.diff_id)), std::uint64_t(l.blocks) * bi::block_size});
    return vmdk_descriptor(extents, {}, ec, why);
}

OCISTORE_DECL erofs_builder::image_result erofs_builder::compose(digest const& key,
                                                                 std::span<layer_result const> layers,
                                                                 error_code& ec, std::string* why)
{
    namespace bi = detail::erofs_builder_impl;
    ec.clear();
    image_result result;
    if (key.empty()) {
        bi::set_why(why, "compose: the image key is empty");
        ec = make_error_code(error::invalid_argument);
        return result;
    }
    std::string const where = "compose " + key.str() + ": ";
    // Every layer must be held now; the fsmeta is built from the images themselves.
    std::vector<detail::safe_fs::unique_fd> fds;
    std::vector<erofs_image_reader> readers;
    std::vector<std::string> tags;
    std::vector<layer_result> held_layers;
    fds.reserve(layers.size());
    readers.reserve(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
        digest const& id = layers[i].diff_id;
        auto held = bi::check_image(layer_path(id), true, ec);
        if (ec) {
            bi::set_why(why, where + "reading layer " + std::to_string(i) + " (" + id.str() + "): " + ec.message());
            return result;
        }
        if (!held) {
            bi::set_why(why, where + "layer " + std::to_string(i) + " (" + id.str() + ") is not held by this builder");
            ec = make_error_code(error::not_found);
            return result;
        }
        held_layers.push_back(layer_result{id, layer_path(id), held->blocks});
        tags.push_back(layer_tag(id));
        fds.push_back(std::move(held->fd));
        readers.push_back(std::move(held->reader));
    }

    std::string msg;
    bi::temp_file_guard fsmeta_temp;
    auto fsmeta_fd = bi::make_temp_file(config_->work, "fsmeta", key, fsmeta_temp.path, ec, &msg);
    if (ec) return bi::set_why(why, where + msg), result;
    fsmeta_options options;
    options.uuid_seed = key.bytes();
    fsmeta_result const written = write_fsmeta(fsmeta_fd.get(), std::span<erofs_image_reader const>(readers),
                                               std::span<std::string const>(tags), options, ec, &msg);
    if (ec) return bi::set_why(why, where + "writing the fsmeta: " + msg), result;
    struct ::stat st;
    if (::fstat(fsmeta_fd.get(), &st) != 0)
        return bi::fail_errno(errno, where + "fstat " + fsmeta_temp.path.string(), ec, why), result;
    if (static_cast<std::uint64_t>(st.st_size) != std::uint64_t(written.total_blocks) * bi::block_size) {
        ec = make_error_code(error::build_failed);
        bi::set_why(why, where + "the fsmeta is " + std::to_string(st.st_size) + " bytes, not " +
                             std::to_string(written.total_blocks) + " blocks");
        return result;
    }
    std::string const text = vmdk_text(key, written.total_blocks, held_layers, ec, &msg);
    if (ec) return bi::set_why(why, where + msg), result;
    bi::temp_file_guard vmdk_temp;
    auto vmdk_fd = bi::make_temp_file(config_->work, "vmdk", key, vmdk_temp.path, ec, &msg);
    if (ec) return bi::set_why(why, where + msg), result;
    if (!bi::write_all(vmdk_fd.get(), text, vmdk_temp.path, ec, &msg)) return bi::set_why(why, where + msg), result;
    if (config_->durable && (!bi::fsync_fd(fsmeta_fd.get(), fsmeta_temp.path, ec, &msg) ||
                             !bi::fsync_fd(vmdk_fd.get(), vmdk_temp.path, ec, &msg)))
        return bi::set_why(why, where + msg), result;
    fsmeta_fd.reset();
    vmdk_fd.reset();

    std::filesystem::path const fsmeta_final = fsmeta_path(key), vmdk_final = vmdk_path(key);
    if (!bi::publish(fsmeta_temp.path, fsmeta_final, ec, &msg)) return bi::set_why(why, where + msg), result;
    fsmeta_temp.path.clear();
    if (!bi::publish(vmdk_temp.path, vmdk_final, ec, &msg)) return bi::set_why(why, where + msg), result;
    vmdk_temp.path.clear();
    if (config_->durable) {
        error_code sec;
        fsync_directory(config_->fsmeta, sec);
        fsync_directory(config_->vmdk, sec);
    }
    result.key = key;
    result.fsmeta = fsmeta_final;
    result.vmdk = vmdk_final;
    result.fsmeta_blocks = written.total_blocks;
    result.layers = std::move(held_layers);
    return result;
}

OCISTORE_DECL erofs_builder::image_result erofs_builder::compose(digest const& key,
                                                                 std::span<layer_result const> layers)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return compose(key, layers, ec, why); });
}

OCISTORE_DECL std::optional<erofs_builder::image_result> erofs_builder::image(digest const& key, error_code& ec)
{
    namespace bi = detail::erofs_builder_impl;
    ec.clear();
    if (key.empty()) return std::nullopt;
    std::filesystem::path const vmdk_file = vmdk_path(key), fsmeta_file = fsmeta_path(key);
    std::string text;
    if (!bi::sfs::read_own_file(vmdk_file, bi::max_vmdk_size, text, ec)) return std::nullopt;
    auto fsmeta = bi::check_image(fsmeta_file, false, ec);
    if (!fsmeta) return std::nullopt;
    error_code pec;
    auto const extents = parse_vmdk_extents(text, pec);
    auto const& slots = fsmeta->reader.info().devices;
    if (pec || extents.size() != slots.size() + 1) return std::nullopt;
    // The VMDK names the layers; the device table must agree with each of them.
    std::vector<layer_result> held_layers;
    std::uint64_t mapped = fsmeta->blocks;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        std::filesystem::path const file = std::filesystem::path(extents[i + 1].path).filename();
        if (file.extension() != ".erofs") return std::nullopt;
        digest const id = digest::from_path_safe(file.stem().string(), pec);
        if (pec) return std::nullopt;
        auto l = layer(id, ec);
        if (!l) return std::nullopt;
        if (slots[i].tag != layer_tag(id) || slots[i].blocks != l->blocks || slots[i].mapped_blkaddr != mapped)
            return std::nullopt;
        mapped += l->blocks;
        held_layers.push_back(std::move(*l));
    }
    if (vmdk_text(key, fsmeta->blocks, held_layers, pec) != text || pec) return std::nullopt;
    return image_result{key, fsmeta_file, vmdk_file, fsmeta->blocks, std::move(held_layers)};
}

OCISTORE_DECL std::optional<erofs_builder::image_result> erofs_builder::image(digest const& key)
{
    error_code ec;
    auto r = image(key, ec);
    detail::throw_if(ec, "erofs_builder: image");
    return r;
}

} // namespace ocistore
