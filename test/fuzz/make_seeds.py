#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets into test/fuzz/corpus/<target>/.

Every file this script writes is named "seed-*"; other files in the corpus directories (inputs
found by fuzzing and kept by `scripts/fuzz --merge`) are left alone. The output is
deterministic: re-running it on an unchanged script changes nothing.

Usage: test/fuzz/make_seeds.py [CORPUS_DIR]   (default: the corpus/ directory next to this file)
"""

import io
import os
import sys
import tarfile

HEX64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
HEX128 = "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2" \
         "7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"

# ---------------------------------------------------------------------------------------------
# Text targets

REFERENCES = {
    "short": "ubuntu",
    "tag": "ubuntu:22.04",
    "library-digest": "library/ubuntu@sha256:" + HEX64,
    "canonical": "docker.io/library/ubuntu:latest",
    "index-docker-io": "index.docker.io/bitnami/redis:7.2",
    "localhost-port": "localhost:5000/team/app:v1.0-rc_1",
    "ipv6": "[::1]:5000/repo:tag",
    "tag-and-digest": "ghcr.io/owner/repo:tag@sha256:" + HEX64,
    "sha512": "registry.example.com:443/a/b/c@sha512:" + HEX128,
    "uppercase-registry": "MyRegistry/app",
    "dotted-path": "docker.io/foo.bar/x:1",
    "separators": "quay.io/a__b/c-d--e/f.g_h:T",
    "long-tag": "repo:" + "t" * 128,
    "bad-too-long-tag": "repo:" + "t" * 129,
    "bad-uppercase": "Ubuntu",
    "bad-image-id": HEX64,
    "bad-two-colons": "a:b:c",
    "bad-short-digest": "repo@sha256:abc",
    "bad-leading-dash": "-x/y",
    "bad-triple-underscore": "a___b",
    "bad-empty": "",
    "bad-unsupported-digest": "repo@md5:d41d8cd98f00b204e9800998ecf8427e",
}

DIGESTS = {
    "sha256": "sha256:" + HEX64,
    "sha512": "sha512:" + HEX128,
    "bad-uppercase-hex": "sha256:" + HEX64.upper(),
    "bad-short": "sha256:" + HEX64[:63],
    "unsupported-md5": "md5:d41d8cd98f00b204e9800998ecf8427e",
    "unsupported-multi-component": "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564=",
    "bad-colon-only": ":",
    "bad-empty-encoded": "sha256:",
    "bad-double-separator": "sha..256:abc",
    "bad-no-colon": "sha256_" + HEX64,
    "bad-nul": "sha256:\x00" + HEX64[1:],
}

WWW_AUTHENTICATE = {
    "bearer-docker-hub": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                         'scope="repository:library/ubuntu:pull"',
    "basic": 'Basic realm="Registry Realm"',
    "two-challenges": 'Basic realm="x", Bearer realm="y", error="invalid_token", error_description="expired"',
    "token68": "Negotiate YIIB3AYGKwYBBQUCoIIB0DCCAcw=",
    "escapes": 'Bearer realm="a\\"b\\\\c", scope="x,y"',
    "tokens-and-ows": 'bEaReR   realm = token ,\t, service=reg.io ,',
    "scheme-only": "Basic, Bearer",
    "field-lines": 'Basic realm="x"\nBearer realm="y"\n\nscope="z"',
    "bad-param-first": "realm=x",
    "bad-no-value": "Bearer realm=",
    "bad-unterminated": 'Bearer realm="unterminated',
    "bad-missing-comma": "Bearer a=1 b=2",
    "bad-repeated": "Bearer a=1, A=2",
    "bad-control": 'Bearer realm="a\x01b"',
    "bad-param-after-token68": "Negotiate abc==, realm=x",
    "bad-empty-list": " , ,",
}

HEADER_VALUES = {
    "range": "bytes 0-99/100",
    "range-unknown-total": "bytes 0-0/*",
    "range-case-ows": " \tBYTES  5-10/11 ",
    "range-max": "bytes 0-18446744073709551614/18446744073709551615",
    "unsatisfied": "bytes */1000",
    "bad-range-order": "bytes 10-5/20",
    "bad-range-total": "bytes 0-9/9",
    "bad-range-overflow": "bytes 0-18446744073709551616/*",
    "bad-range-junk": "bytes 0-9/10 junk",
    "length": "42",
    "length-list": "42, 42",
    "bad-length-list": "42, 43",
    "seconds": "120",
    "seconds-saturating": "99999999999999999999999999",
    "imf-fixdate": "Sun, 06 Nov 1994 08:49:37 GMT",
    "imf-future": "Wed, 31 Dec 2098 23:59:60 GMT",
    "rfc850": "Sunday, 06-Nov-94 08:49:37 GMT",
    "rfc850-century": "Friday, 31-Dec-49 23:59:59 GMT",
    "asctime": "Sun Nov  6 08:49:37 1994",
    "asctime-two-digit-day": "Thu Feb 29 00:00:00 2024",
    "bad-feb-30": "Mon, 30 Feb 2026 10:00:00 GMT",
    "bad-hour-24": "Mon, 02 Feb 2026 24:00:00 GMT",
    "bad-zone": "Sun, 06 Nov 1994 08:49:37 UTC",
    "year-9999-leap-second": "Fri, 31 Dec 9999 23:59:60 GMT",
}

# ---------------------------------------------------------------------------------------------
# JSON documents

def descriptor(media_type, hexdigest=HEX64, size=1234, extra=""):
    return ('{"mediaType":"%s","digest":"sha256:%s","size":%d%s}' % (media_type, hexdigest, size, extra))

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

def platform(os_, arch, variant=None, os_version=None, features=None):
    p = '"platform":{"architecture":"%s","os":"%s"' % (arch, os_)
    if variant:
        p += ',"variant":"%s"' % variant
    if os_version:
        p += ',"os.version":"%s"' % os_version
    if features:
        p += ',"os.features":[%s]' % ",".join('"%s"' % f for f in features)
    return "," + p + "}"

MANIFESTS = {
    "oci-manifest": '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s,%s]}' % (
        OCI_MANIFEST, descriptor(OCI_CONFIG, size=567), descriptor(OCI_LAYER, size=1000),
        descriptor(OCI_LAYER, HEX64[::-1], 2000)),
    "docker-manifest": '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s]}' % (
        DOCKER_MANIFEST, descriptor(DOCKER_CONFIG, size=1469), descriptor(DOCKER_LAYER, size=29534702)),
    "oci-manifest-no-media-type": '{"schemaVersion":2,"config":%s,"layers":[]}' % descriptor(OCI_CONFIG, size=2),
    "oci-manifest-full": ('{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example+type",'
                          '"config":%s,"layers":[%s],"subject":%s,"annotations":{"org.opencontainers.image.created":'
                          '"2024-01-01T00:00:00Z","a":"b"}}') % (
        OCI_MANIFEST, descriptor("application/vnd.oci.empty.v1+json", size=2, extra=',"data":"e30="'),
        descriptor(OCI_LAYER, size=10, extra=',"urls":["https://example.com/l"],"annotations":{"k":"v"}'),
        descriptor(OCI_MANIFEST, size=99)),
    "oci-manifest-sha512": '{"schemaVersion":2,"config":{"mediaType":"%s","digest":"sha512:%s","size":3},"layers":[]}' % (
        OCI_CONFIG, HEX128),
    "oci-index": '{"schemaVersion":2,"mediaType":"%s","manifests":[%s,%s,%s,%s,%s]}' % (
        OCI_INDEX,
        descriptor(OCI_MANIFEST, size=100, extra=platform("linux", "amd64")),
        descriptor(OCI_MANIFEST, size=101, extra=platform("linux", "arm64", "v8")),
        descriptor(OCI_MANIFEST, size=102, extra=platform("linux", "arm", "v7")),
        descriptor(OCI_MANIFEST, size=103, extra=platform("windows", "amd64", None, "10.0.20348.2113", ["win32k"])),
        descriptor(OCI_MANIFEST, size=104, extra=platform("unknown", "unknown") +
                   ',"annotations":{"vnd.docker.reference.type":"attestation-manifest"}')),
    "docker-list": '{"schemaVersion":2,"mediaType":"%s","manifests":[%s,%s]}' % (
        DOCKER_LIST,
        descriptor(DOCKER_MANIFEST, size=528, extra=platform("linux", "amd64")),
        descriptor(DOCKER_MANIFEST, size=528, extra=platform("linux", "386"))),
    "index-no-media-type": '{"schemaVersion":2,"manifests":[%s]}' % descriptor(OCI_MANIFEST, size=1),
    "config": ('{"created":"2024-05-01T10:00:00Z","author":"me","architecture":"arm64","variant":"v8","os":"linux",'
               '"config":{"User":"1000:1000","ExposedPorts":{"80/tcp":{},"443/tcp":{}},"Env":["PATH=/usr/bin"],'
               '"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"Volumes":{"/data":{}},"WorkingDir":"/srv",'
               '"Labels":{"a":"b"},"StopSignal":"SIGTERM"},"rootfs":{"type":"layers","diff_ids":["sha256:%s",'
               '"sha256:%s"]},"history":[{"created":"2024-05-01T10:00:00Z","created_by":"ADD file","comment":"c"},'
               '{"created_by":"ENV x=y","empty_layer":true}]}') % (HEX64, HEX64[::-1]),
    "config-minimal": '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
    "config-windows": ('{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","os.features":["win32k"],'
                       '"config":null,"rootfs":{"type":"layers","diff_ids":["sha512:%s"]}}') % HEX128,
    "bad-schema1": '{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}',
    "bad-schema3": '{"schemaVersion":3,"config":%s,"layers":[]}' % descriptor(OCI_CONFIG),
    "bad-both-kinds": '{"schemaVersion":2,"manifests":[],"config":%s,"layers":[]}' % descriptor(OCI_CONFIG),
    "bad-digest": '{"schemaVersion":2,"config":{"mediaType":"%s","digest":"md5:abc","size":1},"layers":[]}' % OCI_CONFIG,
    "bad-negative-size": '{"schemaVersion":2,"config":%s,"layers":[]}' % descriptor(OCI_CONFIG, size=-1),
    "bad-json": '{"schemaVersion":2,"config":',
    "bad-rootfs-type": '{"architecture":"amd64","os":"linux","rootfs":{"type":"other","diff_ids":[]}}',
}

# ---------------------------------------------------------------------------------------------
# Tar archives

MTIME = 1700000000


def info(name, type_=tarfile.REGTYPE, size=0, mode=0o644, **kw):
    t = tarfile.TarInfo(name)
    t.type = type_
    t.size = size
    t.mode = mode
    t.mtime = kw.pop("mtime", MTIME)
    t.uid = kw.pop("uid", 0)
    t.gid = kw.pop("gid", 0)
    t.uname = kw.pop("uname", "root")
    t.gname = kw.pop("gname", "root")
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def archive(members, fmt=tarfile.PAX_FORMAT, global_headers=None, end_blocks=2):
    """members: (TarInfo, bytes or None). The archive ends with `end_blocks` zero blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=global_headers or {},
                      encoding="utf-8") as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        end = tf.offset
    return buf.getvalue()[:end] + b"\0" * (512 * end_blocks)


def f(name, data, **kw):
    return info(name, size=len(data), **kw), data


def d(name, mode=0o755, **kw):
    return info(name, tarfile.DIRTYPE, mode=mode, **kw), None


def sym(name, target, **kw):
    return info(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kw), None


def hard(name, target, **kw):
    return info(name, tarfile.LNKTYPE, linkname=target, **kw), None


def dev(name, type_, major, minor):
    return info(name, type_, mode=0o666, devmajor=major, devminor=minor), None


def pax(ti_data, headers):
    ti_data[0].pax_headers = dict(headers)
    return ti_data


def sparse_pax(name, real_size, extents, fill=b"D"):
    """A GNU pax 1.0 sparse file: the map ("count\\n" then "offset\\nlength\\n" pairs) padded to a
    block, then the data of each extent."""
    text = "%d\n" % len(extents) + "".join("%d\n%d\n" % (o, n) for o, n in extents)
    m = text.encode()
    m += b"\0" * (-len(m) % 512)
    payload = m + b"".join(fill * n for _, n in extents)
    ti = info("GNUSparseFile.0/" + name, size=len(payload))
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name,
                      "GNU.sparse.realsize": str(real_size)}
    return ti, payload


def v7(data):
    """`data` (one ustar archive) with every header's magic, version, uname/gname, devices and
    prefix cleared and the checksum recomputed: old-style v7 headers."""
    b = bytearray(data)
    off = 0
    while off + 512 <= len(b) and any(b[off:off + 512]):
        hdr = b[off:off + 512]
        size = int(hdr[124:136].strip(b"\0 ") or b"0", 8)
        hdr[257:500] = b"\0" * 243
        hdr[148:156] = b" " * 8
        hdr[148:156] = b"%06o\0 " % sum(hdr)
        b[off:off + 512] = hdr
        off += 512 + size + (-size % 512)
    return bytes(b)


def tars():
    text = b"hello, world\n"
    big = bytes((i * 7 + 3) % 251 for i in range(5000))
    t = {}
    t["all-types"] = archive([
        d("./"), d("etc/"), f("etc/hosts", b"127.0.0.1 localhost\n"), sym("etc/link", "hosts"),
        hard("etc/hosts.hard", "etc/hosts"), dev("dev/null", tarfile.CHRTYPE, 1, 3),
        dev("dev/sda", tarfile.BLKTYPE, 8, 0), (info("run/fifo", tarfile.FIFOTYPE), None),
        f("bin/big", big, mode=0o755), (info("opt/contig", tarfile.CONTTYPE, size=len(text)), text),
        f("empty", b""),
    ], fmt=tarfile.USTAR_FORMAT)
    t["pax-xattrs"] = archive([
        d("data/"),
        pax(f("data/file", text), {"SCHILY.xattr.user.comment": "hi", "mtime": "1700000000.123456789",
                                   "uid": "100000", "gid": "70000", "uname": "someone"}),
        pax(f("data/cap", text), {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
                                  "SCHILY.xattr.trusted.overlay.origin": "x",
                                  "SCHILY.xattr.user.comment": "hi"}),
        pax(f("data/other", text), {"SCHILY.xattr.user.comment": "hi", "SCHILY.xattr.unknown.ns": "dropped"}),
        pax(d("data/acl/"), {"SCHILY.xattr.system.posix_acl_access": "\x02\x00\x00\x00"}),
    ])
    t["pax-long-names"] = archive([
        f("long/" + "n" * 150 + "/" + "m" * 120, text),
        sym("long/link", "t" * 300),
        hard("long/hard-" + "h" * 200, "long/" + "n" * 150 + "/" + "m" * 120),
        f("unicode/\u00e9t\u00e9/\u6587\u4ef6", text),
    ])
    t["pax-global"] = archive([f("g/file", text), d("g/dir/")],
                              global_headers={"uname": "global", "comment": "global header"})
    t["gnu-long-names"] = archive([
        d("gnu/"), f("gnu/" + "x" * 140, text), sym("gnu/sym", "y" * 130), hard("gnu/hard", "gnu/" + "x" * 140),
        f("gnu/bigid", text, uid=3 << 22, gid=0o7777777 + 1),
    ], fmt=tarfile.GNU_FORMAT)
    t["whiteouts"] = archive([
        d("wh/"), f("wh/.wh.gone", b""), d("wh/opq/"), f("wh/opq/.wh..wh..opq", b""),
        f("wh/opq/keep", b"kept"), f("wh/.wh..wh.plnk", b""),
    ])
    t["overrides"] = archive([
        d("a/"), f("a/file", b"first"), f("a/file", b"second version"), d("a/"),
        f("b", b"a file"), d("b/", mode=0o700), f("b/inner", b"in"), d("c/"), f("c/x", b"x"), f("c", b"file over dir"),
        hard("link", "a/file"), f("a/file", b"third"),
    ])
    t["implicit-parents"] = archive([f("deep/a/b/c/file", b"deep"), f("deep/a/other", b"o")])
    t["root-entry"] = archive([d("./", mode=0o700, uid=1000), f("./x", b"x"), f("a/./b//c", b"dot components")])
    t["bad-absolute"] = archive([f("/abs/file", b"abs")])
    t["bad-dotdot"] = archive([d("a/"), f("a/../../escape", b"dotdot")])
    t["bad-whiteout-dot"] = archive([d("x/"), f("x/.wh..", b"")])
    t["sparse"] = archive([sparse_pax("holes", 20000, [(0, 100), (8192, 50), (16000, 10)]), f("after", text)])
    t["v7"] = v7(archive([d("v7dir/"), f("v7dir/file", text), sym("v7dir/s", "file")], fmt=tarfile.USTAR_FORMAT))
    t["one-zero-block"] = archive([f("x", text)], end_blocks=1)
    t["no-end-marker"] = archive([f("x", text)], end_blocks=0)
    t["empty"] = archive([], end_blocks=2)
    t["big-directory"] = archive([d("many/")] + [f("many/%02d-" % i + "n" * 97, b"") for i in range(48)],
                                 fmt=tarfile.USTAR_FORMAT)
    t["symlink-4095"] = archive([sym("s", "/".join(["t" * 63] * 64)[:4095]), f("t", text)])
    t["deep-path"] = archive([f("/".join("d%d" % i for i in range(120)) + "/file", text)])
    t["bad-truncated"] = archive([f("x", big)], end_blocks=0)[:2000]
    t["bad-checksum"] = bytes(a ^ (1 if i == 0 else 0) for i, a in enumerate(archive([f("x", text)])))
    t["bad-hardlink-missing"] = archive([hard("h", "nowhere")])
    t["bad-hardlink-dir"] = archive([d("dir/"), hard("h", "dir")])
    t["bad-parent-not-dir"] = archive([f("p", b"f"), f("p/child", b"c")])
    t["bad-big-device"] = archive([dev("dev/huge", tarfile.CHRTYPE, 5000, 3)])
    t["bad-long-component"] = archive([f("c" * 256, b"x")])
    return t


def write(dirname, name, data):
    os.makedirs(dirname, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = os.path.join(dirname, "seed-" + name)
    try:
        with open(path, "rb") as fh:
            if fh.read() == data:
                return
    except FileNotFoundError:
        pass
    with open(path, "wb") as fh:
        fh.write(data)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, seeds in (("reference", REFERENCES), ("digest", DIGESTS), ("www_authenticate", WWW_AUTHENTICATE),
                          ("header_values", HEADER_VALUES), ("manifest_json", MANIFESTS)):
        for name, data in seeds.items():
            write(os.path.join(root, target), name, data)
    for name, data in tars().items():
        write(os.path.join(root, "tar_reader"), name, data)
        write(os.path.join(root, "tar_to_erofs"), name, data)


if __name__ == "__main__":
    main()
