"""The King James Bible as a character-level corpus, read offline from Debian.

Source: the `bible` program of Debian's `bible-kjv` package over the data file
of `bible-kjv-text` (/usr/lib/bible.data). `bible -f Gen1:1-Rev22:21` prints
every verse as one line "Book C:V text"; we keep the text only, one verse a
line, so the corpus is 31102 lines, 4137850 ASCII characters, 63 distinct.

Both the raw dump and the corpus are checked against SHA-256 digests: a
different package version (or a damaged install) fails loudly instead of
silently changing every number of the report.

Split (fixed, no randomness): the verses in order, cut into consecutive blocks
of VERSES_PER_BLOCK; every tenth block (index % 10 == 9) is validation. Whole
blocks keep long contexts contiguous, and interleaving them spreads the
validation set over all books (a tail split would test on Revelation only).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

import torch

BIBLE_PROGRAM = "bible"
BIBLE_DATA_DIR = "/usr/lib"
BIBLE_RANGE = "Gen1:1-Rev22:21"
RAW_SHA256 = "cd45f0c9cedab8e4439bd6486c8952c77cc8b0ecc5d1f6ae3513f2039f47229d"
TEXT_SHA256 = "b5c4940bcfeee072c0935b5200d0f9d88a00a0199cb0961d16133458fcdfae5d"
TEXT_CHARS = 4137850
VERSES = 31102
VERSES_PER_BLOCK = 100
INSTALL_HINT = "install the Debian packages bible-kjv and bible-kjv-text (apt-get install bible-kjv bible-kjv-text)"

_VERSE_LINE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


class CorpusError(RuntimeError):
    """The corpus is missing or is not the text this experiment was calibrated on."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_raw_dump() -> bytes:
    """Every verse from the Debian package, as the `bible` program prints it."""
    program = shutil.which(BIBLE_PROGRAM) or ("/usr/bin/bible" if os.path.exists("/usr/bin/bible") else None)
    if program is None:
        raise CorpusError(f"the `bible` program was not found: {INSTALL_HINT}")
    if not os.path.exists(os.path.join(BIBLE_DATA_DIR, "bible.data")):
        raise CorpusError(f"{BIBLE_DATA_DIR}/bible.data was not found: {INSTALL_HINT}")
    # -f turns pretty-printing off (one verse a line, with its reference);
    # -p pins the data directory, which would otherwise be searched in the cwd first.
    done = subprocess.run([program, "-f", "-p", BIBLE_DATA_DIR, BIBLE_RANGE], capture_output=True, check=False)
    if done.returncode != 0:
        raise CorpusError(f"`bible` failed ({done.returncode}): {done.stderr.decode(errors='replace')}; {INSTALL_HINT}")
    return done.stdout


def verses_from_dump(raw: bytes) -> list[str]:
    """The verse texts, without their references; every non-empty line must be a verse."""
    verses = []
    for number, line in enumerate(raw.decode("ascii").split("\n"), start=1):
        if not line:
            continue
        match = _VERSE_LINE.match(line)
        if match is None:
            raise CorpusError(f"line {number} of the bible dump is not a verse: {line[:60]!r}")
        verses.append(match.group(4))
    return verses


@dataclass
class Corpus:
    """Encoded train/validation text and the character vocabulary."""

    chars: list[str]          # index -> character, sorted
    train: torch.Tensor       # int64 codes
    val: torch.Tensor         # int64 codes
    text_sha256: str
    raw_sha256: str
    unigram_entropy: float    # nats/char of the train set's character frequencies (a model that ignores context)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def decode(self, codes) -> str:
        return "".join(self.chars[int(c)] for c in codes)


def load_corpus(verify: bool = True) -> Corpus:
    """Reads, checks and splits the corpus (about 0.3 s)."""
    raw = read_raw_dump()
    raw_sha = sha256_hex(raw)
    if verify and raw_sha != RAW_SHA256:
        raise CorpusError(f"bible dump SHA-256 {raw_sha} != expected {RAW_SHA256}: a different bible-kjv/bible-kjv-text "
                          f"version or a damaged install ({INSTALL_HINT}, Debian 12 versions)")
    verses = verses_from_dump(raw)
    text = "\n".join(verses) + "\n"
    text_sha = sha256_hex(text.encode("ascii"))
    if verify and (text_sha != TEXT_SHA256 or len(text) != TEXT_CHARS or len(verses) != VERSES):
        raise CorpusError(f"corpus SHA-256 {text_sha} ({len(text)} chars, {len(verses)} verses) != expected "
                          f"{TEXT_SHA256} ({TEXT_CHARS} chars, {VERSES} verses)")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    train_parts, val_parts = [], []
    for start in range(0, len(verses), VERSES_PER_BLOCK):
        block = "".join(v + "\n" for v in verses[start:start + VERSES_PER_BLOCK])
        (val_parts if (start // VERSES_PER_BLOCK) % 10 == 9 else train_parts).append(block)
    lut = torch.full((128,), -1, dtype=torch.int64)
    for c, i in index.items():
        lut[ord(c)] = i

    def encode(s: str) -> torch.Tensor:
        return lut[torch.frombuffer(bytearray(s.encode("ascii")), dtype=torch.uint8).long()]

    train = encode("".join(train_parts))
    val = encode("".join(val_parts))
    counts = torch.bincount(train, minlength=len(chars)).double()
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * p.log()).sum())
    return Corpus(chars, train, val, text_sha, raw_sha, unigram)


def train_batch(corpus: Corpus, batch: int, context: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` windows at uniform random offsets of the train text (inputs, next-char targets)."""
    starts = torch.randint(0, corpus.train.numel() - context - 1, (batch,), generator=generator)
    offsets = torch.arange(context + 1)
    windows = corpus.train[starts[:, None] + offsets[None, :]]
    return windows[:, :-1], windows[:, 1:]


def val_windows(corpus: Corpus, context: int, max_windows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed evaluation set: up to `max_windows` non-overlapping windows evenly spread over the
    validation text (all of them if max_windows <= 0). Each window predicts its `context` next
    characters from the characters before them in the window."""
    count = (corpus.val.numel() - 1) // context
    picks = torch.arange(count) if max_windows <= 0 or max_windows >= count else \
        torch.linspace(0, count - 1, max_windows).round().long()
    offsets = torch.arange(context + 1)
    windows = corpus.val[picks[:, None] * context + offsets[None, :]]
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
