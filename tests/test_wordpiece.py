"""The encoder's tokenizer in core TensorFlow ops (modules/wordpiece.py), against the one
it replaces: tensorflow-text's BertTokenizer on the same vocabulary."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from modules import encoder
from modules.wordpiece import WordPiece
from tests.commands import DATA_DIR

# Each a case where a careless port differs from tensorflow-text.
HAND_WRITTEN = [
    "Café Ünïcödé ÀÉÎ straße İstanbul ǅ ΣΑΣ ς",  # folding, accents, Turkish dotted I
    "ＡＢＣ ﬁ ligature Ⅻ ① x² 𝐀𝐁 ½",  # compatibility forms
    "text… “quoted” can´t Ã¯Â»Â¿{",  # ellipsis, quotes, a spacing accent, mojibake
    "日本語のテキスト 中文 한국어 עברית العربية",  # CJK ideographs split, other scripts
    "emoji 😀👍🏽 test ⚙️",  # astral characters, a variation selector
    "tab\there\x00nul\u200bzero\u00a0nbsp\u3000ideographic\u2028line\x7fdel\u00adsoft",
    "e\u0301 combining a\u0308\u0301 marks",  # decomposed accents
    "a" * 150 + " ok " + "ж" * 60,  # over 100 bytes (150 and 120): one [UNK] each
    "c++ c# .net node.js asp.net-mvc-3 objective-c x86_64 UTF-8 1e-10",
    "unaffable supercalifragilistic xyzzyqwv",  # pieces, and a word no pieces cover
    "",
    "   ",
    "?!",
]


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory) -> list[str]:
    files = encoder.model_files(tmp_path_factory.mktemp("minilm"))
    vocab = json.loads((files / "tokenizer.json").read_text())["model"]["vocab"]
    return sorted(vocab, key=vocab.get)


@pytest.fixture(scope="module")
def tokenizers(vocabulary):
    import tensorflow_text as tf_text  # the training environment's; see requirements.in

    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocabulary), tf.range(len(vocabulary), dtype=tf.int64)
        ),
        num_oov_buckets=1,
    )
    reference = tf_text.BertTokenizer(
        table, lower_case=True, token_out_type=tf.int64, unknown_token="[UNK]"
    )
    return WordPiece(vocabulary), reference


def pieces(tokenizers, titles: list[str]) -> tuple[list, list]:
    ours, reference = tokenizers
    batch = tf.constant(titles)
    return ours(batch).to_list(), reference.tokenize(batch).merge_dims(-2, -1).to_list()


def test_every_title_of_the_data_gets_tensorflow_texts_pieces(tokenizers):
    titles = []
    for name in ("train.tsv", "unlabeled.tsv"):
        lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()[1:]
        titles += [line.split("\t")[0] for line in lines]
    assert len(titles) > 40_000
    differ = []
    for start in range(0, len(titles), 1024):
        ours, reference = pieces(tokenizers, titles[start : start + 1024])
        pairs = enumerate(zip(ours, reference, strict=True))
        differ += [titles[start + i] for i, (a, b) in pairs if a != b]
    assert differ == []


@pytest.mark.parametrize("title", HAND_WRITTEN)
def test_hand_written_unicode_gets_tensorflow_texts_pieces(tokenizers, vocabulary, title):
    (ours,), (reference,) = pieces(tokenizers, [title])
    assert [vocabulary[i] for i in ours] == [vocabulary[i] for i in reference]


def test_the_cases_reach_the_rules_they_are_written_for(tokenizers, vocabulary):
    """The hand-written cases exercise the rules, not only plain words."""
    ours, _ = pieces(tokenizers, HAND_WRITTEN)
    words = [[vocabulary[i] for i in row] for row in ours]
    assert words[0][:2] == ["cafe", "unicode"]  # folded, accents dropped
    assert {"abc", "fi", "xii", "1"} <= set(words[1])  # compatibility forms
    assert words[2][:4] == ["text", ".", ".", "."]  # the ellipsis is three full stops
    assert words[3][:3] == ["日", "本", "語"]  # each ideograph a word of its own
    assert "[UNK]" in words[4]  # an emoji no piece covers
    assert words[7] == ["[UNK]", "ok", "[UNK]"]  # both long words
    assert any(w.startswith("##") for w in words[9])  # continuation pieces
    assert words[10] == words[11] == []


def test_a_batch_with_no_words_and_bytes_that_are_not_utf8_tokenize(tokenizers):
    ours, _ = tokenizers
    assert ours(tf.constant(["", " "])).to_list() == [[], []]
    (broken,) = ours(tf.constant([b"caf\xe9 python"])).to_list()
    assert len(broken) >= 2  # the bad byte is one replacement character, the rest stays
