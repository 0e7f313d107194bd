"""BERT's uncased WordPiece tokenizer in core TensorFlow ops: titles in, token ids out.

It does what tensorflow-text's `BertTokenizer(lower_case=True)` does, so that a graph
holding the encoder (modules/encoder.py) loads on the stock tensorflow/serving image,
which has no tensorflow-text ops:

1. Per character: ICU's NFKC_Casefold (compatibility forms such as "…" or a no-break
   space replaced, case folded, ignorables such as a zero-width space removed), NFD,
   combining marks (Mn) dropped, control and format characters (Cc, Cf) turned into
   spaces. One string-to-string table holds every character this changes, built here
   from Python's unicodedata; the graph splits a title into characters, looks each one
   up and joins them again.
2. Words: split on whitespace; every punctuation character (ASCII punctuation and
   Unicode P*) and every CJK ideograph is a word of its own.
3. WordPiece: greedy longest match first, continuation pieces prefixed "##"; a word with
   a character no piece covers, or longer than 100 bytes, is one [UNK].

tests/test_wordpiece.py checks it against tensorflow-text on the data's titles and on
hand-written Unicode cases.
"""

from __future__ import annotations

import functools
import sys
import unicodedata

import tensorflow as tf

UNKNOWN = "[UNK]"
SUFFIX = "##"
MAX_BYTES_PER_WORD = 100

# The delimiters of tensorflow-text's BasicTokenizer, kept as words (RE2 syntax).
_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
_CJK = "|".join(
    rf"[\x{{{lo}}}-\x{{{hi}}}]"
    for lo, hi in (
        ("4E00", "9FFF"),
        ("3400", "4DBF"),
        ("20000", "2A6DF"),
        ("2A700", "2B73F"),
        ("2B740", "2B81F"),
        ("2B820", "2CEAF"),
        ("F900", "FAFF"),
        ("2F800", "2FA1F"),
    )
)
_KEPT_DELIMITERS = f"{_PUNCTUATION}|{_CJK}"


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt), which
# NFKC_Casefold removes; Python's unicodedata does not expose the property.
_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _ignorable(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in _IGNORABLE)


def _normalized(char: str) -> str:
    """tensorflow-text's lower-casing of one character: ICU's NFKC_Casefold (compatibility
    forms, case folding, ignorables removed), NFD, combining marks dropped, then its
    control-character rule."""
    folded = char
    for _ in range(3):  # NFKC and case folding, to their fixed point
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", folded).casefold())
    folded = unicodedata.normalize("NFD", "".join(c for c in folded if not _ignorable(c)))
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf") else c
        for c in folded
        if unicodedata.category(c) != "Mn"
    )


@functools.cache  # a pass over every code point: seconds, once per process
def character_map() -> dict[str, str]:
    """Every character that lower-casing, accent stripping and control removal change."""
    changed = {}
    for point in range(sys.maxunicode + 1):
        if 0xD800 <= point <= 0xDFFF:  # surrogates are not characters
            continue
        char = chr(point)
        if (normal := _normalized(char)) != char:
            changed[char] = normal
    return changed


class WordPiece(tf.Module):
    """__call__(titles [batch] string) -> token ids, ragged [batch, (pieces)] int64."""

    def __init__(self, vocabulary: list[str]) -> None:
        super().__init__(name="wordpiece")
        changed = character_map()
        self._characters = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(changed)), tf.constant(list(changed.values()))
            ),
            default_value="\0",  # never a value: NUL is Cc, which maps to a space
        )
        self._pieces = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary), tf.range(len(vocabulary), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self._unknown = vocabulary.index(UNKNOWN)
        # No candidate longer than the longest piece can match: the search stops there.
        self._longest = max(
            len(p[len(SUFFIX) :] if p.startswith(SUFFIX) else p) for p in vocabulary
        )

    def normalize(self, titles: tf.Tensor) -> tf.Tensor:
        """Step 1. Bytes that are not UTF-8 become U+FFFD, as tensorflow-text's ops do."""
        chars = tf.strings.unicode_split(titles, "UTF-8", errors="replace")
        mapped = self._characters.lookup(chars.flat_values)
        mapped = tf.where(tf.equal(mapped, "\0"), chars.flat_values, mapped)
        return tf.strings.reduce_join(chars.with_flat_values(mapped), axis=-1)

    def words(self, titles: tf.Tensor) -> tf.RaggedTensor:
        """Steps 1 and 2: [batch] -> [batch, (words)]."""
        spaced = tf.strings.regex_replace(self.normalize(titles), _KEPT_DELIMITERS, r" \0 ")
        return tf.strings.split(spaced)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, titles: tf.Tensor) -> tf.RaggedTensor:
        return self.tokenize(titles)

    def tokenize(self, titles: tf.Tensor) -> tf.RaggedTensor:
        """__call__'s computation, traced into whatever graph calls it."""
        words = self.words(titles)
        pieces = self._word_pieces(words.flat_values)
        return words.with_flat_values(pieces).merge_dims(1, 2)

    def _word_pieces(self, words: tf.Tensor) -> tf.RaggedTensor:
        """[words] -> [words, (pieces)]: each step takes, for every unfinished word, the
        longest piece in the vocabulary that starts where the word's last piece ended."""
        length = tf.strings.length(words, unit="UTF8_CHAR")
        too_long = tf.strings.length(words) > MAX_BYTES_PER_WORD
        longest = tf.range(self._longest, 0, -1)  # candidate lengths, longest first
        count = tf.size(words)

        def step(position, failed, found):
            left = length - position
            # [words, candidates]: the substring at position of each candidate length.
            sizes = tf.minimum(longest[tf.newaxis, :], left[:, tf.newaxis])
            starts = tf.broadcast_to(position[:, tf.newaxis], tf.shape(sizes))
            words_2d = tf.broadcast_to(words[:, tf.newaxis], tf.shape(sizes))
            candidates = tf.strings.substr(words_2d, starts, sizes, unit="UTF8_CHAR")
            prefix = tf.broadcast_to(
                tf.where(position > 0, SUFFIX, "")[:, tf.newaxis], tf.shape(sizes)
            )
            ids = self._pieces.lookup(tf.strings.join([prefix, candidates]))
            # A candidate cut short by the word's end repeats a shorter one: not a match.
            hit = (ids >= 0) & (longest[tf.newaxis, :] <= left[:, tf.newaxis])
            first = tf.argmax(tf.cast(hit, tf.int32), axis=1, output_type=tf.int32)
            matched = tf.reduce_any(hit, axis=1)
            active = (left > 0) & ~failed
            piece = tf.where(active & matched, tf.gather(ids, first, batch_dims=1), -1)
            return (
                tf.where(active & matched, position + tf.gather(longest, first), position),
                failed | (active & ~matched),
                tf.concat([found, piece[:, tf.newaxis]], axis=1),
            )

        _, failed, found = tf.while_loop(
            lambda position, failed, _: tf.reduce_any((position < length) & ~failed),
            step,
            (tf.zeros([count], tf.int32), too_long, tf.zeros([count, 0], tf.int64)),
            shape_invariants=(
                tf.TensorShape([None]),
                tf.TensorShape([None]),
                tf.TensorShape([None, None]),
            ),
        )
        # A word no pieces cover is one [UNK], whatever pieces its start matched.
        found = tf.concat([found, tf.fill([count, 1], tf.constant(-1, tf.int64))], axis=1)
        first_column = tf.range(tf.shape(found)[1]) == 0
        found = tf.where(
            failed[:, tf.newaxis],
            tf.where(first_column, tf.constant(self._unknown, tf.int64), -1)[tf.newaxis, :],
            found,
        )
        return tf.ragged.boolean_mask(found, found >= 0)
