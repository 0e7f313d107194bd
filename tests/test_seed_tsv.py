"""Data import: good rows pass, each kind of bad row is rejected with its reason."""

from __future__ import annotations

import json

import pytest

from ingest import seed_tsv, spans
from ingest.__main__ import main as ingest_main

HEADER = b"title\ttags\n"


def parse(lines: list[bytes]) -> tuple[list[seed_tsv.Row], seed_tsv.ParseReport]:
    report = seed_tsv.ParseReport()
    return list(seed_tsv.read_rows([HEADER, *lines], report)), report


def test_good_rows_keep_title_and_tags_in_order():
    rows, report = parse(
        [
            b"Why odd sort in C#?\t['c#', '.net']\n",
            "Überschrift mit Umlaut\t['java']\r\n".encode(),
            b"Dup tags\t['php', 'php', 'sql']\n",
            b"\n",  # blank lines are not rows
        ]
    )
    assert [r.title for r in rows] == ["Why odd sort in C#?", "Überschrift mit Umlaut", "Dup tags"]
    assert rows[0].tags == ("c#", ".net")
    assert rows[2].tags == ("php", "sql")
    assert report.good == 3 and not report.bad


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\t['python']", "empty_title"),
        (b"   \t['python']", "empty_title"),
        (b"A title\t['python'", "unparseable_tags"),
        (b"A title\t__import__('os').system('true')", "unparseable_tags"),
        (b"A title\t'python'", "unparseable_tags"),
        (b"A title\t[1, 2]", "unparseable_tags"),
        (b"A title\t[]", "empty_tags"),
        (b"A title\t['Python']", "bad_tag"),
        (b"A title\t['has space']", "bad_tag"),
        (b"A title\t['a', 'b', 'c', 'd', 'e', 'f']", "too_many_tags"),
        (b"Caf\xe9 title\t['java']", "not_utf8"),
        (b"no tab at all", "wrong_column_count"),
        (b"a\tb\tc", "wrong_column_count"),
        (b"x" * 301 + b"\t['java']", "title_too_long"),
    ],
)
def test_bad_row_is_rejected_with_reason(line, reason):
    rows, report = parse([b"Good one\t['java']", line])
    assert [r.title for r in rows] == ["Good one"]
    assert report.bad == {reason: 1}
    assert report.samples[reason][0].startswith("line 3: ")


def test_tag_list_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    line = f"T\t[__import__('pathlib').Path('{marker}').touch()]".encode()
    parse([line])
    assert not marker.exists()


def test_wrong_header_is_an_error():
    with pytest.raises(ValueError, match="expected the header"):
        list(seed_tsv.read_rows([b"question\tlabels\n"], seed_tsv.ParseReport()))


def write_tsv(path, lines: list[bytes]):
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.tsv").write_bytes(HEADER + b"\n".join(lines) + b"\n")


def test_import_writes_deterministic_span_and_reports(tmp_path, capsys):
    data = tmp_path / "data"
    write_tsv(
        data, [b"How to sort a list\t['python']", b"\t['java']", b"SQL join\t['sql', 'mysql']"]
    )
    args = ["--data-dir", str(data), "--max-bad-fraction", "0.5"]
    assert ingest_main([*args, "--spans-dir", str(tmp_path / "a")]) == 0
    report = json.loads(capsys.readouterr().out.split("\ningest:")[0])
    assert report["good"] == 2 and report["bad"] == {"empty_title": 1}
    assert ingest_main([*args, "--spans-dir", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "span-0" / spans.DATA_FILE).read_bytes()
    b = (tmp_path / "b" / "span-0" / spans.DATA_FILE).read_bytes()
    assert a == b  # byte-identical from the same input
    manifest = spans.read_manifest(tmp_path / "a", 0)
    assert manifest["examples"] == 2 and manifest["sha256"] == spans.file_sha256(
        tmp_path / "a" / "span-0" / spans.DATA_FILE
    )


def test_reimport_leaves_span_untouched_and_conflict_is_refused(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "spans"
    write_tsv(data, [b"How to sort a list\t['python']"])
    assert ingest_main(["--data-dir", str(data), "--spans-dir", str(out)]) == 0
    record = out / "span-0" / spans.DATA_FILE
    mtime = record.stat().st_mtime_ns
    assert ingest_main(["--data-dir", str(data), "--spans-dir", str(out)]) == 0
    assert "span 0 unchanged" in capsys.readouterr().out
    assert record.stat().st_mtime_ns == mtime
    write_tsv(data, [b"Another title\t['java']"])
    assert ingest_main(["--data-dir", str(data), "--spans-dir", str(out)]) == 1
    assert "spans are immutable" in capsys.readouterr().err
    assert ingest_main(["--data-dir", str(data), "--spans-dir", str(out), "--span", "next"]) == 0
    assert spans.existing_spans(out) == [0, 1]


def test_import_fails_when_too_many_rows_are_bad(tmp_path, capsys):
    data = tmp_path / "data"
    write_tsv(data, [b"Good\t['java']", b"\t['java']", b"Bad\t[]"])
    assert ingest_main(["--data-dir", str(data), "--spans-dir", str(tmp_path / "s")]) == 1
    assert "nothing written" in capsys.readouterr().err
    assert spans.existing_spans(tmp_path / "s") == []


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys):
    assert ingest_main(["--data-dir", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err
