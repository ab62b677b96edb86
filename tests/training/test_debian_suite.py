"""Packages of another Debian suite (``PackageSpec.suite``) through the archive's signed index, on a tiny
fake archive built here: a real ``.deb`` (``dpkg-deb --build``), a real ``Packages.xz`` and an
``InRelease`` clearsigned by a throwaway key. No network: the archive is a ``file://`` URL.

The parsing and hash tests run everywhere; the signature tests need ``gpg`` (to make the key) and skip
without it. ``gpgv`` and ``dpkg-deb`` are Debian essentials.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from training.data.corpus import (
    DEBIAN_KEYRING,
    ArchiveError,
    compare_debian_versions,
    download_debs,
    fetch_debs,
    fetch_stanza_deb,
    find_package_stanza,
    parse_release_sha256,
    suite_stanzas,
)
from training.data.packages import (
    CALIBRATION_PACKAGES,
    PACKAGE_SETS,
    PACKAGES,
    WIDE2_PACKAGES,
    WIDE_PACKAGES,
    PackageSpec,
)

REPO = Path(__file__).resolve().parents[2]
SUITE = "fakesuite"
NAME = "demo-photos"


# --- pure parsing ------------------------------------------------------------------------------------

RELEASE = """Origin: Debian
Codename: fakesuite
Date: Sat, 21 Nov 2026 09:15:44 UTC
Acquire-By-Hash: no
MD5Sum:
 3e498904a30e240573dac8ddac594e6f  1961125 main/binary-all/Packages.xz
SHA256:
 13e6082186541a4f2272a0a1c05a3c7c326df26cebd078d2de4fc94b00597b58  1961125 main/binary-all/Packages.xz
 bc5f52133abdd71a99a9caeea3b890a8c024713f2baf2fe4d62014f1a1af4a12      133 main/binary-amd64/Packages.xz
SHA512:
 """ + "ab" * 64 + """ 12 main/binary-all/Packages
"""


def test_parse_release_sha256_reads_only_its_section():
    entries = parse_release_sha256(RELEASE)
    assert entries == {
        "main/binary-all/Packages.xz": ("13e6082186541a4f2272a0a1c05a3c7c326df26cebd078d2de4fc94b00597b58", 1961125),
        "main/binary-amd64/Packages.xz": ("bc5f52133abdd71a99a9caeea3b890a8c024713f2baf2fe4d62014f1a1af4a12", 133),
    }
    with pytest.raises(ArchiveError, match="no SHA256 section"):
        parse_release_sha256(RELEASE.split("SHA256:")[0])
    with pytest.raises(ArchiveError, match="malformed line"):
        parse_release_sha256("SHA256:\n 1234 12 main/binary-all/Packages.xz\n")


PACKAGES_TEXT = """Package: other-pkg
Version: 99:1.0-1
Architecture: all
Filename: pool/main/o/other-pkg/other-pkg_1.0-1_all.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000000

Package: demo-photos
Version: 10.0-1
Architecture: all
Description: photos
 second line of the description
 .
 third
Filename: pool/main/d/demo-photos/demo-photos_10.0-1_all.deb
SHA256: 1111111111111111111111111111111111111111111111111111111111111111

Package: demo-photos
Version: 9.0-1
Architecture: all
Filename: pool/main/d/demo-photos/demo-photos_9.0-1_all.deb
SHA256: 2222222222222222222222222222222222222222222222222222222222222222

Package: demo-photos-extra
Version: 11.0-1
Filename: pool/main/d/demo-photos/demo-photos-extra_11.0-1_all.deb
SHA256: 3333333333333333333333333333333333333333333333333333333333333333
"""


def test_find_package_stanza_takes_the_newest_version_of_that_exact_name():
    stanza = find_package_stanza(PACKAGES_TEXT, NAME)
    # 10.0-1 is newer than 9.0-1 (a string comparison would say otherwise); demo-photos-extra is another package.
    assert stanza["Version"] == "10.0-1"
    assert stanza["Filename"] == "pool/main/d/demo-photos/demo-photos_10.0-1_all.deb"
    assert stanza["SHA256"] == "1" * 64
    assert stanza["Description"] == "photos\nsecond line of the description\n.\nthird"
    assert find_package_stanza(PACKAGES_TEXT, "other-pkg")["Version"] == "99:1.0-1"
    assert find_package_stanza(PACKAGES_TEXT, "demo") is None
    with pytest.raises(ArchiveError, match="stanza of broken has no Filename, SHA256"):
        find_package_stanza("Package: broken\nVersion: 1\n", "broken")


@pytest.mark.parametrize(
    ("older", "newer"),
    [("9.0-1", "10.0-1"), ("1.0~rc1-1", "1.0-1"), ("1.0-1", "1.0-1+b1"), ("2.0", "1:0.1"), ("1.0a", "1.0+"),
     ("1.0-1~bpo12+1", "1.0-1"), ("1.0", "1.0-0.1"), ("3.0-1", "3.0-1.1"), ("1.9", "1.10"), ("2.0~~", "2.0~")],
)
def test_compare_debian_versions_orders_as_dpkg(older, newer):
    assert compare_debian_versions(older, newer) < 0 < compare_debian_versions(newer, older)
    assert compare_debian_versions(newer, newer) == 0
    if shutil.which("dpkg"):
        assert subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], check=False).returncode == 0


# --- a fake archive ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _build_deb(work: Path, name: str, version: str) -> bytes:
    root = work / f"{name}_{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@example.invalid>\n"
        f"Description: test package {version}\n"
    )
    photo = root / "usr/share/backgrounds/demo/photo.txt"
    photo.parent.mkdir(parents=True)
    photo.write_text(f"not really a photo, version {version}\n")
    deb = work / f"{name}_{version}_all.deb"
    result = subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return deb.read_bytes()


def _stanza(name: str, version: str, filename: str, data: bytes) -> str:
    return (f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@example.invalid>\n"
            f"Filename: {filename}\nSize: {len(data)}\nSHA256: {_sha256(data)}\nDescription: test\n")


def _release(indices: dict[str, bytes], codename: str = SUITE) -> str:
    lines = [f"Origin: Test\nSuite: testing\nCodename: {codename}\nDate: Sat, 21 Nov 2026 09:15:44 UTC",
             "Architectures: all amd64\nComponents: main\nMD5Sum:"]
    lines += [f" {hashlib.md5(d).hexdigest()} {len(d):8d} {p}" for p, d in indices.items()]
    lines += ["SHA256:"] + [f" {_sha256(d)} {len(d):8d} {p}" for p, d in indices.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict:
    """``root``: the archive folder; ``url``: its file:// URL; ``debs``: {version: bytes}; ``release``: text."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (it is essential on Debian)")
    root = tmp_path_factory.mktemp("archive")
    work = tmp_path_factory.mktemp("debs_src")
    debs, stanzas = {}, []
    for version in ("10.0-1", "9.0-1"):  # the newest first, so neither the first nor the last stanza wins by place
        data = _build_deb(work, NAME, version)
        filename = f"pool/main/d/{NAME}/{NAME}_{version}_all.deb"
        (root / filename).parent.mkdir(parents=True, exist_ok=True)
        (root / filename).write_bytes(data)
        debs[version] = data
        stanzas.append(_stanza(NAME, version, filename, data))
    other = b"other package bytes"
    (root / "pool/main/o/other-pkg").mkdir(parents=True)
    (root / "pool/main/o/other-pkg/other-pkg_1.0_all.deb").write_bytes(other)
    text = "\n".join([_stanza("other-pkg", "1.0", "pool/main/o/other-pkg/other-pkg_1.0_all.deb", other), *stanzas])
    index = lzma.compress(text.encode())
    dists = root / "dists" / SUITE
    (dists / "main/binary-all").mkdir(parents=True)
    (dists / "main/binary-all/Packages.xz").write_bytes(index)
    release = _release({"main/binary-all/Packages.xz": index})
    (dists / "Release").write_text(release)
    return {"root": root, "url": root.as_uri(), "debs": debs, "release": release, "index": index}


def _copy_archive(archive: dict, dest: Path) -> dict:
    shutil.copytree(archive["root"], dest)
    return {**archive, "root": dest, "url": dest.as_uri()}


# --- hash chain (no signature: runs everywhere) ------------------------------------------------------


def test_the_newest_version_is_fetched_and_checked(archive, tmp_path):
    stanzas = suite_stanzas(archive["release"], [NAME, "other-pkg"], SUITE, base_url=archive["url"],
                            work=tmp_path / "work", log=None)
    assert stanzas[NAME]["Version"] == "10.0-1"
    deb = fetch_stanza_deb(stanzas[NAME], SUITE, tmp_path / "debs", base_url=archive["url"])
    assert deb == tmp_path / "debs" / f"{NAME}_10.0-1_all.deb"
    assert deb.read_bytes() == archive["debs"]["10.0-1"]
    assert subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                          check=True).stdout.strip() == "10.0-1"
    assert sorted(p.name for p in (tmp_path / "debs").iterdir()) == [deb.name]


def test_a_tampered_deb_is_refused_and_deleted(archive, tmp_path):
    arch = _copy_archive(archive, tmp_path / "archive")
    pool = arch["root"] / f"pool/main/d/{NAME}/{NAME}_10.0-1_all.deb"
    data = bytearray(pool.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    pool.write_bytes(bytes(data))
    stanza = suite_stanzas(arch["release"], [NAME], SUITE, base_url=arch["url"], work=tmp_path / "work", log=None)[NAME]
    with pytest.raises(ArchiveError) as info:
        fetch_stanza_deb(stanza, SUITE, tmp_path / "debs", base_url=arch["url"])
    message = str(info.value)
    assert f"{NAME}_10.0-1_all.deb" in message and "does not match the signed index" in message
    assert _sha256(archive["debs"]["10.0-1"]) in message and _sha256(bytes(data)) in message
    assert "--debs DIR" in message
    assert list((tmp_path / "debs").iterdir()) == []  # neither the file nor a .part is left

    pool.write_bytes(bytes(data) + b"more")  # longer than the index says: stopped at the signed size
    with pytest.raises(ArchiveError, match=f"{NAME}_10.0-1_all.deb .*more than {len(data)} bytes"):
        fetch_stanza_deb(stanza, SUITE, tmp_path / "debs", base_url=arch["url"])


def test_a_tampered_packages_index_is_refused(archive, tmp_path):
    arch = _copy_archive(archive, tmp_path / "archive")
    index = arch["root"] / f"dists/{SUITE}/main/binary-all/Packages.xz"
    evil = lzma.decompress(archive["index"]).decode()
    index.write_bytes(lzma.compress(evil.replace("Version: 10.0-1", "Version: 10.0-2").encode()))
    with pytest.raises(ArchiveError) as info:
        suite_stanzas(arch["release"], [NAME], SUITE, base_url=arch["url"], work=tmp_path / "work", log=None)
    message = str(info.value)
    assert "main/binary-all/Packages.xz" in message and "does not match the signed index" in message
    assert f"{NAME} not found in Debian {SUITE}" in message

    # A verified amd64 index (Debian's per-architecture indices list the 'all' packages too) is used
    # instead, and the refused one is reported; nothing of the tampered index is read.
    amd64 = arch["root"] / f"dists/{SUITE}/main/binary-amd64/Packages.xz"
    amd64.parent.mkdir(parents=True)
    amd64.write_bytes(archive["index"])
    release = _release({"main/binary-all/Packages.xz": archive["index"], "main/binary-amd64/Packages.xz":
                        archive["index"]})
    logged = []
    stanzas = suite_stanzas(release, [NAME], SUITE, base_url=arch["url"], work=tmp_path / "work2", log=logged.append)
    assert stanzas[NAME]["Version"] == "10.0-1"
    assert len(logged) == 1 and "skipping the fakesuite index main/binary-all/Packages.xz" in logged[0]


def test_a_missing_package_names_it_and_the_suite(archive, tmp_path):
    with pytest.raises(ArchiveError) as info:
        suite_stanzas(archive["release"], [NAME, "no-such-package"], SUITE, base_url=archive["url"],
                      work=tmp_path / "work", log=None)
    message = str(info.value)
    assert "no-such-package not found in Debian fakesuite" in message and NAME + "," not in message
    assert "architectures all, amd64" in message and "--debs DIR" in message


def test_an_unreachable_archive_says_what_to_do(tmp_path):
    with pytest.raises(ArchiveError, match=r"could not download the \w+ index .*--debs DIR"):
        suite_stanzas(RELEASE, [NAME], SUITE, base_url=(tmp_path / "nothing").as_uri(), work=tmp_path, log=None)


def test_missing_gpgv_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no gpgv on the path
    with pytest.raises(ArchiveError, match=r"gpgv is not installed.*apt-get install gpgv.*--debs DIR"):
        download_debs([NAME], tmp_path / "debs", SUITE, base_url=(tmp_path / "x").as_uri())


# --- signed index (needs gpg for the throwaway key) --------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    """A throwaway passphrase-less signing key in a temporary GNUPGHOME; yields (sign, public keyring)."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed: cannot make a key to sign the fake archive")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    base = ["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""]

    def gpg(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([*base, *args], env=env, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result

    try:
        gpg("--quick-gen-key", "RnR test archive <archive@example.invalid>", "ed25519", "sign", "never")
        keyring = home / "archive-keyring.gpg"
        keyring.write_bytes(gpg("--export").stdout)

        def sign(release_text: str, out: Path) -> Path:
            plain = out.with_name("Release.tosign")
            plain.write_text(release_text)
            gpg("--yes", "--digest-algo", "SHA512", "--clearsign", "-o", str(out), str(plain))
            plain.unlink()
            return out

        yield sign, keyring
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False)


@pytest.fixture()
def signed_archive(archive, signer, tmp_path) -> dict:
    sign, keyring = signer
    arch = _copy_archive(archive, tmp_path / "archive")
    sign(arch["release"], arch["root"] / f"dists/{SUITE}/InRelease")
    return {**arch, "keyring": keyring, "sign": sign}


def test_signed_suite_download_end_to_end(signed_archive, tmp_path):
    arch = signed_archive
    debs = download_debs([NAME, "other-pkg"], tmp_path / "debs", SUITE, base_url=arch["url"],
                         keyring=arch["keyring"], log=None)
    assert debs[NAME].name == f"{NAME}_10.0-1_all.deb"
    assert _sha256(debs[NAME].read_bytes()) == _sha256(arch["debs"]["10.0-1"])
    assert debs["other-pkg"].read_bytes() == b"other package bytes"
    # build_corpus's dispatch: specs with a suite go the same way, without apt.
    specs = [PackageSpec(NAME, ("usr/share/backgrounds/demo/*",), suite=SUITE)]
    again = fetch_debs(specs, tmp_path / "debs2", base_url=arch["url"], keyring=arch["keyring"], log=None)
    assert again[NAME].read_bytes() == arch["debs"]["10.0-1"]


def test_a_bad_signature_is_refused(signed_archive, tmp_path):
    arch = signed_archive
    inrelease = arch["root"] / f"dists/{SUITE}/InRelease"
    text = inrelease.read_text()
    assert "Date: Sat, 21 Nov 2026" in text
    inrelease.write_text(text.replace("Date: Sat, 21 Nov 2026", "Date: Sun, 22 Nov 2026"))
    with pytest.raises(ArchiveError, match=r"refusing the fakesuite index .*InRelease: gpgv found a bad signature"):
        download_debs([NAME], tmp_path / "debs", SUITE, base_url=arch["url"], keyring=arch["keyring"], log=None)
    assert not (tmp_path / "debs").exists() or list((tmp_path / "debs").iterdir()) == []


def test_a_key_outside_the_keyring_is_refused(signed_archive, tmp_path):
    arch = signed_archive
    if not DEBIAN_KEYRING.is_file():
        pytest.skip(f"{DEBIAN_KEYRING} is not installed")
    # Debian's own keyring (the default) does not hold the throwaway key.
    with pytest.raises(ArchiveError, match="no valid signature by a key in the keyring"):
        download_debs([NAME], tmp_path / "debs", SUITE, base_url=arch["url"], log=None)
    with pytest.raises(ArchiveError, match="the keyring .*missing.gpg does not exist"):
        download_debs([NAME], tmp_path / "debs", SUITE, base_url=arch["url"], keyring=tmp_path / "missing.gpg")


def test_a_release_of_another_suite_is_refused(signed_archive, tmp_path):
    arch = signed_archive
    arch["sign"](arch["release"].replace(f"Codename: {SUITE}", "Codename: oldsuite"),
                 arch["root"] / f"dists/{SUITE}/InRelease")
    with pytest.raises(ArchiveError, match="is for suite 'testing' / codename 'oldsuite', not 'fakesuite'"):
        download_debs([NAME], tmp_path / "debs", SUITE, base_url=arch["url"], keyring=arch["keyring"], log=None)


# --- the wide2 set -----------------------------------------------------------------------------------


def test_wide2_set_is_new_packages_from_another_suite_with_licences():
    names = {spec.name for spec in WIDE2_PACKAGES}
    assert names and PACKAGE_SETS["wide2"] == WIDE2_PACKAGES
    for other in (PACKAGES, WIDE_PACKAGES, CALIBRATION_PACKAGES):
        assert names.isdisjoint(spec.name for spec in other)
    assert all(spec.suite for spec in WIDE2_PACKAGES)
    licences = (REPO / "training/data/LICENSES_wide2.md").read_text(encoding="utf-8")
    assert "--set wide2 --out data/corpus_wide2" in licences
    for name in names:
        assert f"| {name} |" in licences
