"""`course cache export/import` (course.lib.cache_archive) and the write-beside helpers (course.files).

The archive under test holds the real corpus (copied from the real cache, 2.7 MB) and a tiny teacher
(1-layer BERT, 32 training sentences: seconds), never the real one."""

import io
import json
import os
import shutil
import tarfile
from types import SimpleNamespace

import pytest

from course import cli, files
from course.files import atomic_dir, atomic_file, atomic_write
from course.lib import cache_archive, data, models
from course.lib.cache import sha256_file
from course.lib.cache_archive import MANIFEST, ArchiveError, export_cache, import_cache
from course.lib.data import DATA_VERSION, SentimentData, corpus_dir, load_splits
from course.lib.models import Recipe, get_teacher, read_meta

TINY = Recipe(epochs=1, batch_size=8, max_length=32, lr=1e-3, max_train_examples=32)


@pytest.fixture(scope="module")
def source(tmp_path_factory, real_data, tiny_base):
    """A prepared cache (real corpus, tiny teacher) and its exported archive ``tar``."""
    real_corpus = corpus_dir()  # the real cache: $COURSE_CACHE is not monkeypatched yet
    root = tmp_path_factory.mktemp("source-cache")
    shutil.copytree(real_corpus, root / "data" / DATA_VERSION)
    tiny = SentimentData(real_data.train.subset(64), real_data.validation.subset(32), real_data.test.subset(32),
                         source="tiny-test")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_CACHE", str(root))
        _, _, meta = get_teacher(tiny, base=tiny_base, recipe=TINY, device="cpu", progress=False)
        tar = tmp_path_factory.mktemp("archive") / "ws.tar"
        manifest = export_cache(tar)
    return SimpleNamespace(root=root, tar=tar, manifest=manifest, meta=meta, data=tiny, base=tiny_base,
                           teacher=f"teachers/{meta['key']}")


def _files(root):
    """Every file under ``root`` (relative posix paths): what an import left behind."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()) \
        if root.exists() else []


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained or downloaded although the cache was imported")

    monkeypatch.setattr(models, "_prepare", refuse)
    monkeypatch.setattr(data, "_pip_download", refuse)


def _rewrite(src, dest, manifest=None, extra=(), skip_manifest=False):
    """Copy the archive ``src`` to ``dest``, optionally replacing the manifest (a dict) and appending
    ``extra`` (TarInfo, bytes) members after the others."""
    with tarfile.open(src) as old, tarfile.open(dest, "w") as new:
        for member in old:
            blob = old.extractfile(member).read()
            if member.name == MANIFEST:
                if skip_manifest:
                    continue
                if manifest is not None:
                    blob = json.dumps(manifest).encode()
                    member.size = len(blob)
            new.addfile(member, io.BytesIO(blob))
        for info, blob in extra:
            new.addfile(info, io.BytesIO(blob) if blob is not None else None)
    return dest


# ----------------------------------------------------------------------------- round trip


def test_round_trip_loads_without_training(private_cache, source, monkeypatch):
    actions = import_cache(source.tar)
    assert actions == [(f"data/{DATA_VERSION}", "installed"), (source.teacher, "installed")]
    for entry in source.manifest["entries"]:  # byte for byte what the source cache holds
        for name, want in entry["files"].items():
            assert sha256_file(private_cache / entry["name"] / name) == want["sha256"] \
                == sha256_file(source.root / entry["name"] / name)
    mask = os.umask(0)
    os.umask(mask)
    weights = private_cache / source.teacher / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == 0o666 & ~mask, "a grading sandbox's user must read the cache"

    _no_training(monkeypatch)
    _, _, meta = get_teacher(source.data, base=source.base, recipe=TINY, device="cpu", progress=False)
    assert meta["path"] == str(private_cache / source.teacher)
    assert meta["wall_seconds"] == source.meta["wall_seconds"], "the imported teacher, not a new one"
    splits = load_splits()
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (8453, 1057, 1056)

    assert import_cache(source.tar) == [(f"data/{DATA_VERSION}", "kept"), (source.teacher, "kept")]


def test_a_corrupt_installed_entry_is_replaced(private_cache, source):
    import_cache(source.tar)
    weights = private_cache / source.teacher / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert import_cache(source.tar) == [(f"data/{DATA_VERSION}", "kept"), (source.teacher, "replaced")]
    assert read_meta(private_cache / source.teacher) is not None
    assert sha256_file(weights) == sha256_file(source.root / source.teacher / "model.safetensors")


def test_export_is_reproducible(source, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_CACHE", str(source.root))
        export_cache(tmp_path / "again.tar")
    assert sha256_file(tmp_path / "again.tar") == sha256_file(source.tar)


# ----------------------------------------------------------------------------- refused archives


def test_a_flipped_weight_byte_is_refused(private_cache, source, tmp_path):
    bad = tmp_path / "bad.tar"
    shutil.copy(source.tar, bad)
    with tarfile.open(bad) as tar:
        member = tar.getmember(f"{source.teacher}/model.safetensors")
    with open(bad, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ArchiveError, match="model.safetensors.*corrupt"):
        import_cache(bad)
    assert _files(private_cache) == []


@pytest.mark.parametrize("cut", ["mid-weights", "after-corpus", "mid-manifest", "empty"])
def test_a_truncated_archive_is_refused(private_cache, source, tmp_path, cut):
    with tarfile.open(source.tar) as tar:
        weights = tar.getmember(f"{source.teacher}/model.safetensors")
        config = tar.getmember(f"{source.teacher}/config.json")
    size = {"mid-weights": weights.offset_data + weights.size // 2, "after-corpus": config.offset,
            "mid-manifest": 700, "empty": 0}[cut]
    bad = tmp_path / "cut.tar"
    bad.write_bytes(source.tar.read_bytes()[:size])
    with pytest.raises(ArchiveError, match="truncated|not a course cache archive|not a readable tar"):
        import_cache(bad)
    assert _files(private_cache) == []


def _member(name, kind=tarfile.REGTYPE, blob=b"evil", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(blob) if kind == tarfile.REGTYPE else 0
    return info, blob if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("member, problem", [
    (_member("../evil"), "unsafe path"),
    (_member("/tmp/evil-course-archive"), "unsafe path"),
    (_member("data/../../evil"), "unsafe path"),
    (_member("teachers/evil-link", tarfile.SYMTYPE, linkname="/etc/passwd"), "symlink"),
    (_member("teachers/evil-hard", tarfile.LNKTYPE, linkname=MANIFEST), "hard link"),
    (_member("teachers/evil-dev", tarfile.CHRTYPE), "device"),
    (_member("teachers/evil-fifo", tarfile.FIFOTYPE), "device or fifo"),
    (_member("teachers/unlisted.bin"), "not in manifest"),
], ids=["dotdot", "absolute", "inner-dotdot", "symlink", "hardlink", "device", "fifo", "unlisted"])
def test_an_unsafe_member_is_refused_and_nothing_is_written(private_cache, source, tmp_path, member, problem):
    bad = _rewrite(source.tar, tmp_path / "bad.tar", extra=[member])  # after every valid member
    with pytest.raises(ArchiveError, match=problem):
        import_cache(bad)
    assert _files(private_cache) == []
    assert not (private_cache.parent / "evil").exists() and not (tmp_path / "evil").exists()
    assert not os.path.exists("/tmp/evil-course-archive")


@pytest.mark.parametrize("field, value", [("format_version", 2), ("course_version", "0.0.1"),
                                          ("cache_layout", 2), ("data_version", "hutto2014-000000000000")])
def test_a_mismatched_archive_is_refused(private_cache, source, tmp_path, field, value):
    bad = _rewrite(source.tar, tmp_path / "other.tar", manifest={**source.manifest, field: value})
    with pytest.raises(ArchiveError, match=f"archive has {field} {value!r}"):
        import_cache(bad)
    assert _files(private_cache) == []


@pytest.mark.parametrize("damage", ["no-manifest", "entry-escapes", "wrong-kind", "size-lies"])
def test_a_bad_manifest_is_refused(private_cache, source, tmp_path, damage):
    manifest = json.loads(json.dumps(source.manifest))
    teacher = manifest["entries"][1]
    if damage == "entry-escapes":
        teacher["name"] = "teachers/../../evil"
    elif damage == "wrong-kind":
        teacher["kind"] = "corpus"
    elif damage == "size-lies":
        teacher["files"]["config.json"]["size"] += 1
    bad = _rewrite(source.tar, tmp_path / "bad.tar", manifest=manifest, skip_manifest=damage == "no-manifest")
    with pytest.raises(ArchiveError, match={"no-manifest": "does not start with manifest.json",
                                            "entry-escapes": "malformed", "wrong-kind": "malformed",
                                            "size-lies": "config.json.*corrupt"}[damage]):
        import_cache(bad)
    assert _files(private_cache) == [] and not (tmp_path / "evil").exists()


def test_cli_refuses_with_one_line_and_exit_code_2(private_cache, source, tmp_path, capsys):
    bad = _rewrite(source.tar, tmp_path / "old.tar", manifest={**source.manifest, "course_version": "0.0.1"})
    assert cli.main(["cache", "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "course_version '0.0.1'" in err and err.startswith("course cache import:")
    assert cli.main(["cache", "import", str(source.tar)]) == 0
    assert f"installed {source.teacher}" in capsys.readouterr().out


# ----------------------------------------------------------------------------- failures midway


def test_a_failure_while_verifying_installs_nothing(private_cache, source, monkeypatch):
    def boom(*args):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(cache_archive, "_teacher_problem", boom)  # the corpus is staged by now
    with pytest.raises(RuntimeError, match="disk trouble"):
        import_cache(source.tar)
    assert _files(private_cache) == []
    assert not [p for p in private_cache.rglob(".*")], "staging folders must be removed"


def test_a_failure_while_renaming_leaves_whole_entries_only(private_cache, source, monkeypatch):
    real, calls = os.replace, []

    def second_fails(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError("disk gone")
        real(a, b)

    monkeypatch.setattr(files.os, "replace", second_fails)
    with pytest.raises(OSError, match="disk gone"):
        import_cache(source.tar)
    monkeypatch.setattr(files.os, "replace", real)
    installed = [e for e in (f"data/{DATA_VERSION}", source.teacher) if (private_cache / e).exists()]
    assert len(installed) == 1, "the first entry renamed in, the second not"
    problem = {f"data/{DATA_VERSION}": cache_archive._corpus_problem, source.teacher: cache_archive._teacher_problem}
    assert problem[installed[0]](private_cache / installed[0]) is None, "what is installed is whole"
    assert not [p for p in private_cache.rglob(".*")], "staging folders must be removed"


# ----------------------------------------------------------------------------- export refuses a bad cache


@pytest.mark.parametrize("damage", ["weights", "corpus", "no-teacher"])
def test_export_refuses_a_corrupt_cache(source, tmp_path, damage):
    root = tmp_path / "cache"
    shutil.copytree(source.root, root)
    if damage == "weights":
        weights = root / source.teacher / "model.safetensors"
        blob = bytearray(weights.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        weights.write_bytes(bytes(blob))
    elif damage == "corpus":
        with open(root / "data" / DATA_VERSION / "tweets_GroundTruth.txt", "ab") as f:
            f.write(b"1\t4.0\textra\r\n")
    else:
        shutil.rmtree(root / "teachers")
    out = tmp_path / "out" / "ws.tar"
    with pytest.raises(ArchiveError, match={"weights": f"{source.teacher} is corrupt", "corpus": "tweets.*sha256",
                                            "no-teacher": "no prepared teacher"}[damage]):
        export_cache(out, root=root)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


# ----------------------------------------------------------------------------- course.files


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "grades.csv"
    atomic_write(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("crash")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["grades.csv"]
    atomic_write(target, b"new\n")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_bytes() == b"new\n" and target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(TypeError, match="data must be bytes or str"):
        atomic_write(target, 3)


def test_atomic_dir_keeps_the_old_folder_on_failure_and_swaps_on_success(tmp_path):
    final = tmp_path / "entry"
    with atomic_dir(final) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("crash")
    assert (final / "a").read_text() == "1"
    with atomic_dir(final) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in final.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["entry"], "no temporary or old folder is left"
