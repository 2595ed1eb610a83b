"""Tests for autograder/intake.py: reading a class's submissions safely.

Every test builds a tiny class in tmp_path (notebooks made with nbformat.v4) and checks
one property: what is collected, what is rejected and why, and that nothing is touched.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import intake
from autograder.intake import Rejected, Submission, collect

A, B = "01_distillation", "02_quantization"
NAMES = [A, B]
IDS = {A: {"distill-loss", "distill-train"}, B: {"quant-int8", "quant-error"}}


def notebook_bytes(grade_ids=(), text="print('hi')") -> bytes:
    """A small valid v4 notebook; one nbgrader cell per grade_id."""
    cells = [nbformat.v4.new_markdown_cell("# hello")]
    for gid in grade_ids:
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": gid}
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell(text))
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode("utf-8")


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def pairs(found) -> list[tuple[str, str]]:
    return [(s.student, s.assignment) for s in found]


def only(rejected, **fields) -> Rejected:
    """The single rejection whose fields equal ``fields``."""
    hits = [r for r in rejected if all(getattr(r, k) == v for k, v in fields.items())]
    assert len(hits) == 1, f"expected one rejection with {fields}, got {rejected}"
    return hits[0]


@pytest.fixture
def klass(tmp_path) -> Path:
    """alice: nested layout for A, flat for B; bob: flat A."""
    root = tmp_path / "class"
    put(root / "alice" / A / f"{A}.ipynb", notebook_bytes(["distill-loss"], "a = 1"))
    put(root / "alice" / f"{B}.ipynb", notebook_bytes(["quant-int8"], "b = 2"))
    put(root / "bob" / f"{A}.ipynb", notebook_bytes(text="c = 3"))
    return root


# --------------------------------------------------------------------------- #
# folder input: what is collected
# --------------------------------------------------------------------------- #
def test_both_folder_layouts_collected_with_exact_bytes_and_sha256(klass):
    found, rejected = collect(klass, NAMES)
    assert rejected == [], f"nothing should be rejected: {rejected}"
    assert pairs(found) == [("alice", A), ("alice", B), ("bob", A)], "sorted by (student, assignment)"
    expected = {("alice", A): f"alice/{A}/{A}.ipynb", ("alice", B): f"alice/{B}.ipynb",
                ("bob", A): f"bob/{A}.ipynb"}
    for sub in found:
        assert isinstance(sub, Submission)
        assert sub.origin == expected[sub.student, sub.assignment], f"origin of {sub.origin}"
        assert sub.notebook == (klass / sub.origin).read_bytes(), f"bytes of {sub.origin} not exact"
        assert sub.sha256 == hashlib.sha256(sub.notebook).hexdigest(), f"sha256 of {sub.origin}"


def test_results_are_deterministic(klass):
    assert collect(klass, NAMES) == collect(klass, NAMES), "two runs must give the same result"


def test_hidden_and_junk_entries_are_skipped_silently(klass):
    for junk in (".git", "__MACOSX", ".ipynb_checkpoints", "__pycache__"):
        put(klass / junk / f"{A}.ipynb", b"junk")
    put(klass / ".DS_Store", b"junk")
    put(klass / "alice" / A / ".ipynb_checkpoints" / f"{A}-checkpoint.ipynb", b"junk")
    found, rejected = collect(klass, NAMES)
    assert rejected == [], f"hidden/junk entries must be skipped silently: {rejected}"
    assert pairs(found) == [("alice", A), ("alice", B), ("bob", A)]


def test_paths_may_be_str_and_extra_files_are_ignored(klass):
    put(klass / "alice" / A / "data.csv", b"1,2\n")
    found, rejected = collect(str(klass), [A])
    assert rejected == [] and pairs(found) == [("alice", A), ("bob", A)], (found, rejected)


# --------------------------------------------------------------------------- #
# folder input: symbolic links
# --------------------------------------------------------------------------- #
def test_notebook_symlink_rejected_even_to_a_valid_notebook(klass, tmp_path):
    target = put(tmp_path / "elsewhere" / "good.ipynb", notebook_bytes())
    (klass / "carol").mkdir()
    os.symlink(target, klass / "carol" / f"{A}.ipynb")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="carol", assignment=A)
    assert r.origin == f"carol/{A}.ipynb"
    assert "symbolic link" in r.reason and "only regular files" in r.reason, r.reason
    assert ("carol", A) not in pairs(found)
    assert pairs(found) == [("alice", A), ("alice", B), ("bob", A)], "the rest is collected"


def test_nested_notebook_symlink_rejected(klass):
    (klass / "carol" / A).mkdir(parents=True)
    os.symlink(klass / "bob" / f"{A}.ipynb", klass / "carol" / A / f"{A}.ipynb")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="carol", assignment=A)
    assert r.origin == f"carol/{A}/{A}.ipynb" and "symbolic link" in r.reason, r
    assert ("carol", A) not in pairs(found)


def test_dangling_link_in_submission_folder_rejected_and_batch_goes_on(klass):
    os.symlink(klass / "does-not-exist", klass / "alice" / A / "data.csv")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="alice", assignment=A)
    assert "symbolic link" in r.reason and f"alice/{A}/data.csv" in r.reason, \
        f"the reason must name the link: {r.reason}"
    assert pairs(found) == [("alice", B), ("bob", A)], "alice's other work and bob still collected"


def test_link_deep_in_submission_folder_rejected(klass):
    os.makedirs(klass / "alice" / A / "sub" / "deeper")
    os.symlink("/", klass / "alice" / A / "sub" / "deeper" / "root")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="alice", assignment=A)
    assert f"alice/{A}/sub/deeper/root" in r.reason, r.reason
    assert ("alice", A) not in pairs(found)


def test_outward_link_to_a_file_outside_rejected(klass, tmp_path):
    secret = put(tmp_path / "secret.txt", b"instructor key")
    os.symlink(secret, klass / "alice" / A / "notes.txt")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="alice", assignment=A)
    assert "notes.txt" in r.reason and "symbolic link" in r.reason, r.reason
    assert all(b"instructor key" not in s.notebook for s in found), "the secret must not be read"
    assert ("alice", A) not in pairs(found)


def test_assignment_folder_that_is_a_symlink_rejected(klass, tmp_path):
    put(tmp_path / "elsewhere" / f"{A}.ipynb", notebook_bytes())
    (klass / "carol").mkdir()
    os.symlink(tmp_path / "elsewhere", klass / "carol" / A)
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="carol", assignment=A)
    assert r.origin == f"carol/{A}" and "symbolic link" in r.reason, r
    assert ("carol", A) not in pairs(found)


def test_stray_link_in_student_folder_rejects_that_students_submissions(klass, tmp_path):
    os.symlink(tmp_path, klass / "alice" / "home")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, origin="alice/home")
    assert r.student == "alice" and r.assignment is None, r
    assert "none of alice's submissions are graded" in r.reason, r.reason
    assert pairs(found) == [("bob", A)], "alice's notebooks are not graded, bob's are"


def test_student_folder_that_is_a_symlink_rejected(klass):
    os.symlink(klass / "bob", klass / "mallory")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, origin="mallory")
    assert r.student is None and "symbolic link" in r.reason, r
    assert "mallory" not in {s.student for s in found}
    assert pairs(found) == [("alice", A), ("alice", B), ("bob", A)]


# --------------------------------------------------------------------------- #
# folder input: bad content and bad layout
# --------------------------------------------------------------------------- #
def test_not_json_rejected_quoting_the_parser(klass):
    put(klass / "carol" / f"{A}.ipynb", b"this is not json")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="carol", assignment=A)
    assert "not valid JSON" in r.reason and "Expecting value" in r.reason, r.reason
    assert "\n" not in r.reason, "one line"
    assert len(found) == 3


def test_not_utf8_rejected(klass):
    put(klass / "carol" / f"{A}.ipynb", b"\xff\xfe{}")
    _, rejected = collect(klass, NAMES)
    assert "UTF-8" in only(rejected, student="carol").reason


def test_valid_json_but_not_a_notebook_rejected(klass):
    put(klass / "carol" / f"{A}.ipynb", b"{}")
    put(klass / "dave" / f"{A}.ipynb", b"[1, 2]")
    found, rejected = collect(klass, NAMES)
    for student in ("carol", "dave"):
        r = only(rejected, student=student, assignment=A)
        assert "not a notebook" in r.reason, r.reason
    assert len(found) == 3


def test_malformed_notebook_rejected_by_validation(klass):
    bad = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [1]}'
    put(klass / "carol" / f"{A}.ipynb", bad)
    old = b'{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}'
    put(klass / "dave" / f"{A}.ipynb", old)
    _, rejected = collect(klass, NAMES)
    assert "not a valid notebook" in only(rejected, student="carol").reason
    assert "version-4" in only(rejected, student="dave").reason


def test_bad_student_name_rejected(klass):
    put(klass / "Jane Smith " / f"{A}.ipynb", notebook_bytes())
    put(klass / ("x" * 65) / f"{A}.ipynb", notebook_bytes())
    found, rejected = collect(klass, NAMES)
    for name in ("Jane Smith ", "x" * 65):
        r = only(rejected, origin=name)
        assert r.student is None and "not a valid student id" in r.reason, r
    assert {s.student for s in found} == {"alice", "bob"}


def test_file_at_top_level_rejected(klass):
    put(klass / "notes.txt", b"hello")
    found, rejected = collect(klass, NAMES)
    r = only(rejected, origin="notes.txt")
    assert r.student is None and "not a folder" in r.reason, r
    assert len(found) == 3


def test_two_layouts_for_one_student_rejected_naming_both(klass):
    put(klass / "alice" / f"{A}.ipynb", notebook_bytes())
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="alice", assignment=A)
    assert f"alice/{A}/{A}.ipynb" in r.reason and f"alice/{A}.ipynb" in r.reason, r.reason
    assert ("alice", A) not in pairs(found), "neither is graded"
    assert ("alice", B) in pairs(found)


def test_empty_student_folder_rejected(klass):
    (klass / "carol").mkdir()
    found, rejected = collect(klass, NAMES)
    r = only(rejected, origin="carol")
    assert r.student == "carol" and r.assignment is None and "empty" in r.reason, r
    assert len(found) == 3


def test_wrong_notebook_name_says_what_was_expected_and_found(klass):
    put(klass / "carol" / "Untitled.ipynb", notebook_bytes())
    put(klass / "carol" / "hw" / "distillation.ipynb", notebook_bytes())
    _, rejected = collect(klass, NAMES)
    r = only(rejected, student="carol")
    for text in (f"{A}.ipynb", f"{B}.ipynb", "carol/Untitled.ipynb", "carol/hw/distillation.ipynb"):
        assert text in r.reason, f"{text!r} missing from: {r.reason}"


def test_missing_one_assignment_is_not_a_rejection(klass):
    _, rejected = collect(klass, NAMES)
    assert not [r for r in rejected if r.student == "bob"], "bob simply did not submit B"


def test_notebook_of_another_assignment_detected_with_grade_ids(klass):
    put(klass / "carol" / f"{A}.ipynb", notebook_bytes(["quant-int8", "quant-error"]))
    found, rejected = collect(klass, NAMES, grade_ids=IDS)
    r = only(rejected, student="carol", assignment=A)
    assert f"looks like {B} (its graded cells are {B}'s)" in r.reason, r.reason
    assert pairs(found) == [("alice", A), ("alice", B), ("bob", A)], \
        "own grade_ids (alice) and no nbgrader metadata (bob) are accepted"


def test_other_assignment_not_checked_without_grade_ids(klass):
    put(klass / "carol" / f"{A}.ipynb", notebook_bytes(["quant-int8"]))
    found, _ = collect(klass, NAMES)
    assert ("carol", A) in pairs(found)


def test_unknown_grade_ids_are_accepted(klass):
    put(klass / "carol" / f"{A}.ipynb", notebook_bytes(["renamed-by-student"]))
    found, _ = collect(klass, NAMES, grade_ids=IDS)
    assert ("carol", A) in pairs(found), "ids of no assignment: a later step matches by content"


def test_oversize_notebook_rejected(klass, monkeypatch):
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", 1000)
    put(klass / "carol" / f"{A}.ipynb", notebook_bytes(text="x" * 2000))
    found, rejected = collect(klass, NAMES)
    r = only(rejected, student="carol", assignment=A)
    assert "more than" in r.reason, r.reason
    assert ("carol", A) not in pairs(found) and len(found) == 3, "small notebooks still collected"


def test_notebook_that_is_a_folder_or_fifo_rejected(klass):
    (klass / "carol" / f"{A}.ipynb").mkdir(parents=True)
    (klass / "dave").mkdir()
    os.mkfifo(klass / "dave" / f"{A}.ipynb")
    _, rejected = collect(klass, NAMES)  # must not block on the FIFO
    for student in ("carol", "dave"):
        assert "not a regular file" in only(rejected, student=student).reason


def test_unreadable_notebook_rejected(klass):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = put(klass / "carol" / f"{A}.ipynb", notebook_bytes())
    path.chmod(0)
    try:
        _, rejected = collect(klass, NAMES)
    finally:
        path.chmod(0o644)
    assert "cannot be read" in only(rejected, student="carol").reason


def test_inputs_unchanged_afterwards(klass, tmp_path):
    os.symlink(tmp_path / "nowhere", klass / "alice" / A / "dangling")
    put(klass / "carol" / f"{A}.ipynb", b"{}")

    def snapshot():
        state = {}
        for dirpath, dirnames, filenames in os.walk(klass):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode):
                    data = p.read_bytes()
                else:
                    data = os.readlink(p) if p.is_symlink() else None
                state[str(p.relative_to(klass))] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
        return state

    before = snapshot()
    collect(klass, NAMES, grade_ids=IDS)
    assert snapshot() == before, "collect must not modify, add or remove anything"


def test_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="submissions"):
        collect(tmp_path / "nope", NAMES)


def test_non_zip_file_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="submissions: .* neither a folder nor a zip"):
        collect(put(tmp_path / "class.txt", b"hello"), NAMES)


@pytest.mark.parametrize("assignments", [[], ["../etc"], [".hidden"], "01_distillation"])
def test_bad_assignments_argument_raises(klass, assignments):
    with pytest.raises(ValueError, match="assignments"):
        collect(klass, assignments)


# --------------------------------------------------------------------------- #
# zip input
# --------------------------------------------------------------------------- #
def make_zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in dict(symlinks).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_zip_canvas_flat_names_late_and_resubmission_suffix(tmp_path):
    nb1, nb2, nb3 = (notebook_bytes(text=t) for t in ("a = 1", "b = 2", "c = 3"))
    archive = make_zip(tmp_path / "canvas.zip", {
        f"smithjane_104233_5511223_{A}.ipynb": nb1,
        f"doejohn_LATE_104234_5511224_{A}.ipynb": nb2,
        f"roe_104235_5511225_{B}-1.ipynb": nb3,
        "smithjane_104233_5511223_report.pdf": b"%PDF",  # non-notebook: ignored
    })
    found, rejected = collect(archive, NAMES)
    assert rejected == [], rejected
    assert pairs(found) == [("doejohn", A), ("roe", B), ("smithjane", A)]
    by = {(s.student, s.assignment): s for s in found}
    assert by["smithjane", A].notebook == nb1 and by["doejohn", A].notebook == nb2
    assert by["roe", B].origin == f"zip:roe_104235_5511225_{B}-1.ipynb"
    assert by["roe", B].sha256 == hashlib.sha256(nb3).hexdigest()


def test_zip_moodle_folders(tmp_path):
    nb = notebook_bytes()
    archive = make_zip(tmp_path / "moodle.zip", {
        f"JaneSmith_4242_assignsubmission_file_/{A}.ipynb": nb,
        "JaneSmith_4242_assignsubmission_file_/data.csv": b"1,2",
        f"__MACOSX/JaneSmith_4242_assignsubmission_file_/._{A}.ipynb": b"junk",
    })
    found, rejected = collect(archive, NAMES)
    assert rejected == [], rejected
    assert pairs(found) == [("JaneSmith", A)] and found[0].notebook == nb


def test_zip_moodle_full_name_with_space_is_the_student_id(tmp_path):
    archive = make_zip(tmp_path / "moodle.zip", {
        f"Jane Smith_4242_assignsubmission_file_/{A}.ipynb": notebook_bytes()})
    found, rejected = collect(archive, NAMES)
    assert [s.student for s in found] == ["Jane Smith"] and rejected == [], (found, rejected)


def test_zip_foreign_notebook_names_rejected(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {
        f"s1_{A}.ipynb": notebook_bytes(),
        "s1_notes.ipynb": notebook_bytes(),
        f"{A}.ipynb": notebook_bytes(),
    })
    found, rejected = collect(archive, NAMES)
    assert pairs(found) == [("s1", A)]
    for name in ("s1_notes.ipynb", f"{A}.ipynb"):
        r = only(rejected, origin=f"zip:{name}")
        assert "<student_id>_<anything>_<assignment>.ipynb" in r.reason and A in r.reason, r.reason


def test_zip_symlink_entry_rejected(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes()},
                       symlinks={f"s2_{A}.ipynb": "/etc/passwd", "s1_data": "/home"})
    found, rejected = collect(archive, NAMES)
    assert pairs(found) == [("s1", A)]
    r = only(rejected, origin=f"zip:s2_{A}.ipynb")
    assert (r.student, r.assignment) == ("s2", A) and "symbolic link" in r.reason, r
    assert "symbolic link" in only(rejected, origin="zip:s1_data").reason


def test_zip_dotdot_and_absolute_entries_rejected(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes()})
    with zipfile.ZipFile(archive, "a") as zf:  # writestr keeps these names as given
        zf.writestr(zipfile.ZipInfo(f"../s2_{A}.ipynb"), notebook_bytes())
        zf.writestr(zipfile.ZipInfo(f"/tmp/s3_{A}.ipynb"), notebook_bytes())
    found, rejected = collect(archive, NAMES)
    assert pairs(found) == [("s1", A)]
    assert "'..'" in only(rejected, origin=f"zip:../s2_{A}.ipynb").reason
    assert "absolute" in only(rejected, origin=f"zip:/tmp/s3_{A}.ipynb").reason


def test_zip_duplicates_rejected_naming_both(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {
        f"smithjane_1_2_{A}.ipynb": notebook_bytes(),
        f"smithjane_1_2_{A}-1.ipynb": notebook_bytes(),
        f"doejohn_1_2_{A}.ipynb": notebook_bytes(),
    })
    found, rejected = collect(archive, NAMES)
    assert pairs(found) == [("doejohn", A)]
    r = only(rejected, student="smithjane", assignment=A)
    assert f"smithjane_1_2_{A}.ipynb" in r.reason and f"smithjane_1_2_{A}-1.ipynb" in r.reason, r.reason
    assert "latest" in r.reason


def test_zip_oversize_entry_rejected_from_header(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", 1000)
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes(text="x" * 5000),
                                           f"s2_{A}.ipynb": notebook_bytes()})
    found, rejected = collect(archive, NAMES)
    assert pairs(found) == [("s2", A)]
    assert "more than" in only(rejected, student="s1").reason


def test_zip_lying_size_header_is_bounded(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes(text="x" * 5000)})
    with zipfile.ZipFile(archive) as zf:
        (info,) = zf.infolist()
        assert info.file_size > 1000
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", 1000)
    real_getinfo = zipfile.ZipFile.infolist

    def lying_infolist(self):
        infos = real_getinfo(self)
        for i in infos:
            i.file_size = 10  # the header claims 10 bytes
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying_infolist)
    found, rejected = collect(archive, NAMES)
    assert found == [], "a lying header must not let a big entry through"
    assert only(rejected, student="s1").reason, rejected


def test_zip_encrypted_entry_rejected(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes()})
    raw = bytearray(archive.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag bit in both headers
        at = raw.find(sig)
        flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
        raw[flag_at] |= 0x1
    archive.write_bytes(bytes(raw))
    found, rejected = collect(archive, NAMES)
    assert found == [] and "encrypted" in only(rejected, student="s1").reason


def test_zip_bad_crc_entry_rejected_and_rest_collected(tmp_path):
    good, bad = notebook_bytes(text="a = 1"), notebook_bytes(text="b = 2")
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"s1_{A}.ipynb", good)
        zf.writestr(f"s2_{A}.ipynb", bad)
    raw = archive.read_bytes()
    at = raw.find(b"b = 2")
    archive.write_bytes(raw[:at] + b"b = 3" + raw[at + 5:])  # stored data changed, CRC not
    found, rejected = collect(archive, NAMES)
    assert pairs(found) == [("s1", A)]
    assert "cannot be read from the zip" in only(rejected, student="s2").reason


def test_zip_bad_notebook_and_other_assignment_rejected(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": b"{}",
                                           f"s2_{A}.ipynb": notebook_bytes(["quant-int8"])})
    found, rejected = collect(archive, NAMES, grade_ids=IDS)
    assert found == []
    assert "not a notebook" in only(rejected, student="s1").reason
    assert f"looks like {B}" in only(rejected, student="s2").reason


def test_corrupt_zip_raises_value_error(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes()})
    archive.write_bytes(archive.read_bytes()[:40])  # truncated: no central directory
    with pytest.raises(ValueError, match="submissions: .*corrupt zip"):
        collect(archive, NAMES)


def test_zip_input_unchanged_and_nothing_extracted(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {f"s1_{A}.ipynb": notebook_bytes()},
                       symlinks={f"s2_{A}.ipynb": "/etc/passwd"})
    before = (archive.read_bytes(), archive.stat().st_mtime_ns, sorted(os.listdir(tmp_path)))
    collect(archive, NAMES)
    assert (archive.read_bytes(), archive.stat().st_mtime_ns, sorted(os.listdir(tmp_path))) == before


# --------------------------------------------------------------------------- #
# zip_name_regexp (ported from tests/test_grading.py)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("path, student", [
    ("/x/smithjane_104233_5511223_01_distillation.ipynb", "smithjane"),
    ("/x/smithjane_LATE_104233_5511223_01_distillation-2.ipynb", "smithjane"),
    ("/x/s123_01_distillation.ipynb", "s123"),
    ("/x/Jane Smith_4242_assignsubmission_file_/01_distillation.ipynb", "Jane Smith"),
    ("/x/smithjane_104233_5511223_02_quantization.ipynb", None),
    ("/x/01_distillation.ipynb", None),
    ("/x/__MACOSX/._smithjane_1_2_01_distillation.ipynb", None),
    ("/x/._smithjane_1_2_01_distillation.ipynb", None),
    ("/x/smithjane_01_distillation.py", None),
])
def test_zip_name_regexp(path, student):
    match = re.match(intake.zip_name_regexp("01_distillation"), path)
    assert (match and match["student_id"]) == student, f"{path}: {match}"
    assert match is None or match["file_id"] == "01_distillation"

