// ocistore/progress_view.hpp: renders a pull's progress events as terminal bars or as plain log lines.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/store_types.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore::cli {

/// "0 B", "512 B", "1.5 KiB", "12.3 MiB", "1.02 GiB" (binary units, three significant digits).
inline std::string format_bytes(std::uint64_t n)
{
    static constexpr char const* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (n < 1024) return std::to_string(n) + " B";
    double v = static_cast<double>(n);
    std::size_t u = 0;
    while (v >= 1024.0 && u + 1 < std::size(units)) {
        v /= 1024.0;
        ++u;
    }
    char buf[32];
    if (v >= 99.95) std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
    else if (v >= 9.995) std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    else std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
    return buf;
}

/// "0:07", "12:34", "1:02:03".
inline std::string format_duration(std::chrono::seconds d)
{
    auto s = std::max<long long>(0, d.count());
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
}

/// "0.42 s", "12.3 s", "2:05" (for longer).
inline std::string format_elapsed(std::chrono::nanoseconds d)
{
    double const s = std::chrono::duration<double>(d).count();
    if (s >= 60.0) return format_duration(std::chrono::seconds(static_cast<long long>(s)));
    char buf[32];
    if (s >= 9.95) std::snprintf(buf, sizeof buf, "%.1f s", s);
    else if (s >= 0.00995) std::snprintf(buf, sizeof buf, "%.2f s", s);
    else std::snprintf(buf, sizeof buf, "%.1f ms", s * 1000.0);
    return buf;
}

/// "5.12 MiB/s".
inline std::string format_rate(double bytes_per_second)
{
    return format_bytes(static_cast<std::uint64_t>(std::max(0.0, bytes_per_second))) + "/s";
}

/// The first 12 hex digits of a digest ("a1b2c3d4e5f6"), as `docker` shows them.
inline std::string short_digest(digest const& d)
{
    return std::string(d.encoded().substr(0, 12));
}

/// How a progress_view writes.
enum class progress_style {
    plain, ///< one line per state change, and per layer at most one progress line per plain_interval
    tty,   ///< one line per layer plus a total, redrawn in place with ANSI cursor movement
};

/** Turns the progress events of one pull into text for stderr. It keeps its own state and
    does no I/O: feed it every event with the time it was observed, write what it returns.
    Not thread-safe; the store calls progress callbacks one at a time. */
class progress_view {
public:
    using clock = std::chrono::steady_clock;

    struct options {
        progress_style style = progress_style::plain;
        std::size_t width = 80;     ///< tty: lines are cut to width - 1 columns
        std::size_t max_rows = 24;  ///< tty: at most this many lines (layers beyond are summarised)
        std::chrono::milliseconds redraw_interval{100}; ///< tty: progress alone redraws at most this often
        std::chrono::milliseconds plain_interval{1000}; ///< plain: per-layer progress lines at most this often
    };

    explicit progress_view(options o) : opts_(o) {}

    /// Consumes `ev`, observed at `now`; returns the text to write (often empty).
    std::string on_event(progress_event const& ev, clock::time_point now)
    {
        if (!started_) started_ = now;
        if (!ev.reference.empty()) reference_ = ev.reference;
        std::string plain;
        bool changed = true; // a state change: tty redraws at once
        switch (ev.kind) {
        case progress_kind::resolving:
            phase_ = "resolving";
            plain = "resolving " + reference_ + "\n";
            break;
        case progress_kind::resolved: {
            phase_ = "download";
            total_ = ev.total;
            resolved_at_ = now;
            if (layers_.size() < ev.layers) layers_.resize(ev.layers);
            plain = "resolved " + reference_ + ": " + std::to_string(ev.layers) + (ev.layers == 1 ? " layer, " : " layers, ") +
                    format_bytes(ev.total) + (ev.manifest_digest.empty() ? "" : ", manifest " + ev.manifest_digest.str()) + "\n";
            break;
        }
        case progress_kind::download_progress: {
            auto& l = layer(ev, now);
            bool const first = !l.progressed;
            l.progressed = true;
            l.current = std::min(ev.current, l.total ? l.total : ev.current);
            changed = l.phase != layer_phase::download;
            if (l.phase == layer_phase::waiting || l.phase == layer_phase::retrying) l.phase = layer_phase::download;
            if (first || now - l.last_plain >= opts_.plain_interval) {
                l.last_plain = now;
                plain = layer_prefix(ev.layer, l) + progress_text(l, now) + "\n";
            }
            break;
        }
        case progress_kind::download_complete: {
            auto& l = layer(ev, now);
            l.current = l.total;
            if (ev.cached) {
                l.blob_cached = true;
                if (l.phase != layer_phase::done) l.phase = layer_phase::building;
            } else {
                l.phase = layer_phase::building;
                plain = layer_prefix(ev.layer, l) + "downloaded " + format_bytes(l.total - std::min(l.total, l.baseline)) +
                        " in " + format_elapsed(now - l.started) + "\n";
            }
            break;
        }
        case progress_kind::build_started: {
            auto& l = layer(ev, now);
            if (l.phase == layer_phase::waiting) l.phase = layer_phase::download;
            break;
        }
        case progress_kind::build_progress: {
            auto& l = layer(ev, now);
            l.entries = ev.entries;
            changed = false;
            break;
        }
        case progress_kind::build_complete: {
            auto& l = layer(ev, now);
            l.entries = std::max(l.entries, ev.entries);
            l.current = l.total;
            l.phase = layer_phase::done;
            l.cached = ev.cached;
            plain = layer_prefix(ev.layer, l) + (ev.cached ? "cached" : "done") + "\n";
            break;
        }
        case progress_kind::compose_started:
            phase_ = "composing";
            plain = "composing the image\n";
            break;
        case progress_kind::compose_complete:
            phase_ = "composed";
            plain = std::string(ev.cached ? "image artifacts cached" : "image composed") + "\n";
            break;
        case progress_kind::complete:
            complete_ = true;
            complete_cached_ = ev.cached;
            phase_ = ev.cached ? "cached" : "complete";
            if (ev.cached)
                plain = "complete: " + reference_ + " (cached)\n";
            else
                plain = "complete: " + reference_ + ", " + format_bytes(ev.current) + " downloaded in " +
                        format_elapsed(now - *started_) + "\n";
            break;
        case progress_kind::retry: {
            auto& l = layer(ev, now);
            l.phase = layer_phase::retrying;
            l.current = ev.current;
            if (!l.progressed) l.baseline = ev.current; // resumed from a .part: those bytes are not this run's
            plain = layer_prefix(ev.layer, l) + "retrying at " + format_bytes(ev.current) + ": " + ev.reason + "\n";
            break;
        }
        }
        if (opts_.style == progress_style::plain) return plain;
        if (!changed && last_draw_ && now - *last_draw_ < opts_.redraw_interval) return {};
        return redraw(now);
    }

    /** The closing text: tty draws the final state once more, with the total marked
        `failed_phase` unless `ok`; plain returns nothing. */
    std::string finish(clock::time_point now, bool ok, std::string_view failed_phase = "failed")
    {
        if (opts_.style == progress_style::plain || !last_draw_) return {};
        if (!ok) phase_ = std::string(failed_phase);
        return redraw(now);
    }

    /// The lines tty mode would draw now, without escape sequences (for tests and logs).
    std::vector<std::string> lines(clock::time_point now) const
    {
        std::vector<std::string> out;
        bool const any_layer_event = std::any_of(layers_.begin(), layers_.end(), [](layer_state const& l) { return l.seen; });
        if (!(complete_cached_ && !any_layer_event)) {
            std::size_t const room = opts_.max_rows > 2 ? opts_.max_rows - 2 : 1;
            if (layers_.size() <= room + 1) {
                for (std::size_t i = 0; i < layers_.size(); ++i) out.push_back(layer_line(i, now));
            } else {
                std::size_t shown = 0;
                std::size_t finished = 0;
                std::size_t waiting = 0;
                for (std::size_t i = 0; i < layers_.size(); ++i) {
                    auto const& l = layers_[i];
                    if (l.phase == layer_phase::done) {
                        ++finished;
                    } else if (shown < room) {
                        out.push_back(layer_line(i, now));
                        ++shown;
                    } else {
                        ++waiting;
                    }
                }
                out.push_back("... " + std::to_string(finished) + " done, " + std::to_string(waiting) + " more");
            }
        }
        out.push_back(total_line(now));
        for (auto& s : out)
            if (opts_.width > 1 && s.size() > opts_.width - 1) s.resize(opts_.width - 1);
        return out;
    }

private:
    enum class layer_phase { waiting, download, retrying, building, done };

    struct layer_state {
        bool seen = false;       ///< some event named this layer
        bool progressed = false; ///< a download_progress arrived
        bool blob_cached = false;
        bool cached = false;     ///< the artifact (or blob) was already held
        digest blob;
        layer_phase phase = layer_phase::waiting;
        std::uint64_t current = 0;
        std::uint64_t total = 0;
        std::uint64_t baseline = 0; ///< bytes present before this run (a resumed .part)
        std::uint64_t entries = 0;
        clock::time_point started{};
        clock::time_point last_plain{};
    };

    layer_state& layer(progress_event const& ev, clock::time_point now)
    {
        std::size_t const i = ev.layer == progress_event::no_layer ? 0 : ev.layer;
        if (layers_.size() <= i) layers_.resize(i + 1);
        auto& l = layers_[i];
        if (!l.seen) {
            l.seen = true;
            l.started = now;
            l.last_plain = now;
        }
        if (!ev.blob.empty()) l.blob = ev.blob;
        if (ev.total) l.total = ev.total;
        return l;
    }

    std::string label(std::size_t i, layer_state const& l) const
    {
        return l.blob.empty() ? "layer " + std::to_string(i + 1) : short_digest(l.blob);
    }

    std::string layer_prefix(std::size_t index, layer_state const& l) const
    {
        std::size_t const i = index == progress_event::no_layer ? 0 : index;
        return "layer " + std::to_string(i + 1) + "/" + std::to_string(std::max(layers_.size(), i + 1)) + " " +
               label(i, l) + ": ";
    }

    /// Bytes per second of this run's download of `l`, when measurable.
    static std::optional<double> rate_of(std::uint64_t bytes, clock::duration elapsed)
    {
        double const s = std::chrono::duration<double>(elapsed).count();
        if (s < 0.2 || bytes == 0) return std::nullopt;
        return static_cast<double>(bytes) / s;
    }

    std::string progress_text(layer_state const& l, clock::time_point now) const
    {
        std::string s = format_bytes(l.current) + " / " + format_bytes(l.total);
        if (l.total) s += " (" + std::to_string(l.current * 100 / l.total) + "%)";
        if (auto r = rate_of(l.current - std::min(l.current, l.baseline), now - l.started)) {
            s += " " + format_rate(*r);
            if (l.total > l.current) s += " ETA " + format_duration(std::chrono::seconds(static_cast<long long>(static_cast<double>(l.total - l.current) / *r)));
        }
        return s;
    }

    static std::string bar(std::uint64_t current, std::uint64_t total, std::size_t width)
    {
        std::size_t filled = total ? static_cast<std::size_t>(static_cast<double>(std::min(current, total)) / static_cast<double>(total) *
                                                              static_cast<double>(width))
                                   : 0;
        std::string s = "[";
        s.append(filled, '=');
        if (filled < width) {
            s += filled > 0 || current > 0 ? '>' : ' ';
            s.append(width - filled - 1, ' ');
        }
        return s + "]";
    }

    static std::string pad(std::string s, std::size_t n)
    {
        if (s.size() < n) s.append(n - s.size(), ' ');
        return s;
    }

    /// "name phase [bar] current/total rate ETA eta"; just "name phase" while nothing is known.
    std::string columns(std::string const& name, std::string const& phase, std::uint64_t current, std::uint64_t total,
                        std::optional<double> rate) const
    {
        if (current == 0 && total == 0) return pad(name, 12) + " " + phase;
        std::string s = pad(name, 12) + " " + pad(phase, 8) + " " + bar(current, total, 16) + " " +
                        pad(format_bytes(current) + "/" + format_bytes(total), 19);
        if (rate) {
            s += " " + pad(format_rate(*rate), 11);
            if (total > current)
                s += " ETA " + format_duration(std::chrono::seconds(static_cast<long long>(static_cast<double>(total - current) / *rate)));
        }
        while (!s.empty() && s.back() == ' ') s.pop_back();
        return s;
    }

    std::string layer_line(std::size_t i, clock::time_point now) const
    {
        auto const& l = layers_[i];
        std::string phase;
        std::optional<double> rate;
        switch (l.phase) {
        case layer_phase::waiting: phase = "waiting"; break;
        case layer_phase::download:
            phase = "download";
            rate = rate_of(l.current - std::min(l.current, l.baseline), now - l.started);
            break;
        case layer_phase::retrying: phase = "retrying"; break;
        case layer_phase::building: phase = "building"; break;
        case layer_phase::done: phase = l.cached ? "cached" : l.blob_cached ? "built" : "done"; break;
        }
        return columns(label(i, l), phase, l.current, l.total, rate);
    }

    std::string total_line(clock::time_point now) const
    {
        std::uint64_t current = 0;
        std::uint64_t before = 0;
        for (auto const& l : layers_) {
            current += l.current;
            before += (l.cached || l.blob_cached) ? l.total : std::min(l.baseline, l.current);
        }
        std::uint64_t const total = std::max(total_, current);
        if (complete_) current = total;
        std::optional<double> rate;
        if (resolved_at_ && !complete_ && phase_ == "download") rate = rate_of(current - std::min(current, before), now - *resolved_at_);
        return columns("total", phase_, current, total, rate);
    }

    std::string redraw(clock::time_point now)
    {
        auto ls = lines(now);
        std::string out;
        if (drawn_ > 0) out += "\x1b[" + std::to_string(drawn_) + "A";
        for (auto const& s : ls) out += "\r\x1b[2K" + s + "\n";
        out += "\x1b[J";
        drawn_ = ls.size();
        last_draw_ = now;
        return out;
    }

    options opts_;
    std::string reference_;
    std::string phase_ = "waiting";
    std::uint64_t total_ = 0;
    std::vector<layer_state> layers_;
    std::optional<clock::time_point> started_;
    std::optional<clock::time_point> resolved_at_;
    std::optional<clock::time_point> last_draw_;
    std::size_t drawn_ = 0;
    bool complete_ = false;
    bool complete_cached_ = false;
};

} // namespace ocistore::cli
