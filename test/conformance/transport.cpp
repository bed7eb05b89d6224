// Runs the *Transport* conformance suite over every shipped transport and the archetype.
#include <ocistore/test/memory_transport.hpp>
#include <ocistore/transport/http_transport.hpp>
#include <ocistore/transport/oci_layout_transport.hpp>

#include "transport_suite.hpp"
#include "http_transport_fixture.hpp"

#include <support/archetypes.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/temp_dir.hpp>

namespace ocistore_test {

template <> struct transport_fixture<ocistore::test::memory_transport> {
    static constexpr bool reports_server_digest = true;

    explicit transport_fixture(image_set const& set) : repository_(set.repository)
    {
        for (auto const& b : set.blobs) REQUIRE(transport_.add_blob(set.repository, b.bytes) == b.digest);
        for (auto const& m : set.manifests) {
            REQUIRE(transport_.add_manifest(set.repository, m.bytes, m.media_type) == m.digest);
            for (auto const& tag : m.tags) transport_.tag(set.repository, tag, m.digest);
        }
    }
    ocistore::test::memory_transport& transport() { return transport_; }
    ocistore::image_reference reference() const
    {
        return ocistore::image_reference::parse("registry.test/" + repository_);
    }

private:
    std::string repository_;
    ocistore::test::memory_transport transport_;
};

template <> struct transport_fixture<ocistore::oci_layout_transport> {
    static constexpr bool reports_server_digest = true;

    explicit transport_fixture(image_set const& set) : dir_("transport-layout"), transport_(dir_ / "layout")
    {
        oci_layout_writer w(dir_ / "layout");
        for (auto const& b : set.blobs) REQUIRE(w.add_blob(b.bytes, b.media_type).digest == b.digest);
        for (auto const& m : set.manifests) {
            ocistore::descriptor d = w.add_blob(m.bytes, m.media_type);
            REQUIRE(d.digest == m.digest);
            for (auto const& tag : m.tags) w.tag(d, tag);
        }
    }
    ocistore::oci_layout_transport& transport() { return transport_; }
    /// Registry and repository do not matter to a layout.
    ocistore::image_reference reference() const { return ocistore::image_reference::parse("local/anything"); }

private:
    temp_dir dir_;
    ocistore::oci_layout_transport transport_;
};

template <> struct transport_fixture<transport_archetype> {
    static constexpr bool reports_server_digest = true;

    explicit transport_fixture(image_set const& set) : transport_(archetype_tag{}, content(set)) {}
    transport_archetype& transport() { return transport_; }
    ocistore::image_reference reference() const { return ocistore::image_reference::parse("registry.test/x"); }

private:
    static transport_archetype_content content(image_set const& set)
    {
        transport_archetype_content c;
        for (auto const& b : set.blobs) c.blobs[b.digest] = b.bytes;
        for (auto const& m : set.manifests) {
            ocistore::fetched_manifest f{m.bytes, m.media_type, m.digest};
            c.manifests[m.digest.str()] = f;
            for (auto const& tag : m.tags) c.manifests[tag] = f;
        }
        return c;
    }
    transport_archetype transport_;
};

} // namespace ocistore_test

TEST_CASE_TEMPLATE_INVOKE(transport_conformance, ocistore::test::memory_transport, ocistore::oci_layout_transport,
                          ocistore::http_transport, ocistore_test::transport_archetype);
