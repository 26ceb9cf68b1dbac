"""Text problems: skip-gram word2vec (sparse embeddings), a word-level LSTM LM on PTB, a char LSTM."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from descentlab import data
from descentlab.problems.base import (
    Problem,
    check_batch_size,
    check_positive_ints,
    check_split,
    example_batches,
    first,
    seeded,
    split_seed,
)

PTB_FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}


@functools.lru_cache(maxsize=4)
def load_ptb(data_dir: str | None = None) -> tuple[dict[str, list[str]], str]:
    """PTB (Mikolov's split) as token lists with ``<eos>`` closing each line, and the provenance.

    With ptb.train.txt (found or downloaded) the standard train/valid/test; offline, with only
    valid and test: train = ptb.valid.txt, valid = the first half of ptb.test.txt's lines, test =
    the second half.
    """
    held_out = data.try_fetch("ptb", [PTB_FILES["valid"], PTB_FILES["test"]], data_dir)
    if held_out is None:
        raise data.DataUnavailable(data.missing_message("ptb", list(PTB_FILES.values()), data_dir))
    lines = {name: data.read_text(path).splitlines() for name, path in zip(("valid", "test"), held_out, strict=True)}
    train = data.try_fetch("ptb", [PTB_FILES["train"]], data_dir)
    if train is not None:
        lines["train"] = data.read_text(train[0]).splitlines()
        provenance = f"PTB {', '.join(PTB_FILES.values())} from {train[0].parent}: the standard split"
    else:
        half = len(lines["test"]) // 2
        lines = {"train": lines["valid"], "valid": lines["test"][:half], "test": lines["test"][half:]}
        provenance = (
            f"PTB valid+test only (in {held_out[0].parent}; ptb.train.txt unavailable): train = ptb.valid.txt, "
            f"valid = ptb.test.txt lines 1-{half}, test = the remaining lines"
        )
    tokens = {split: [w for line in text for w in line.split() + ["<eos>"]] for split, text in lines.items()}
    return tokens, provenance


@functools.lru_cache(maxsize=2)
def load_text8(data_dir: str | None = None) -> tuple[list[str], str] | None:
    """text8 (the first 10⁸ bytes of a cleaned English Wikipedia) as tokens, or None if unavailable."""
    found = data.try_fetch("text8", ["text8.zip"], data_dir)
    if found is None:
        return None
    return data.read_text(found[0]).split(), f"text8 ({found[0]}), cleaned English Wikipedia"


def build_vocab(tokens: list[str], min_count: int = 1, max_size: int | None = None, unk: str | None = None):
    """Words by descending count (ties alphabetical), counts ≥ ``min_count``, at most ``max_size``."""
    counts = Counter(tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count and w != unk), key=lambda w: (-counts[w], w))
    if unk is not None:
        words = words[: max_size - 1] if max_size else words
        words.append(unk)
    elif max_size:
        words = words[:max_size]
    return words, torch.tensor([counts[w] for w in words], dtype=torch.float64)


# --- word2vec ---------------------------------------------------------------------------------


class SkipGram(torch.nn.Module):
    """Two sparse embedding tables, as word2vec: input vectors (uniform init) and output vectors (zero)."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.center = torch.nn.Embedding(vocab_size, dim, sparse=True)
        self.context = torch.nn.Embedding(vocab_size, dim, sparse=True)
        torch.nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)
        torch.nn.init.zeros_(self.context.weight)

    def scores(self, center: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """⟨v_center, u_target⟩ for targets of shape (B, T) → (B, T)."""
        return torch.einsum("bd,btd->bt", self.center(center), self.context(targets))


def _word2vec_corpus(corpus: str, max_tokens: int | None, data_dir: str | None
                     ) -> tuple[dict[str, list[str]], str]:
    """word2vec's train/valid/test tokens and their provenance: text8 if asked for or (``auto``)
    found, else PTB."""
    text8 = load_text8(data_dir) if corpus in ("auto", "text8") else None
    if corpus == "text8" and text8 is None:
        raise data.DataUnavailable(data.missing_message("text8", ["text8.zip"], data_dir))
    if text8 is not None:
        return _text8_splits(*text8, max_tokens)
    split_tokens, source = load_ptb(data_dir)
    split_tokens = {s: [w for w in t if w != "<eos>"] for s, t in split_tokens.items()}
    if max_tokens:
        split_tokens["train"] = split_tokens["train"][:max_tokens]
    return split_tokens, source + (" (text8 unavailable)" if corpus == "auto" else "")


def _text8_splits(tokens: list[str], source: str, max_tokens: int | None) -> tuple[dict[str, list[str]], str]:
    """text8's tokens split: train the first ``max_tokens`` (default 90%), valid and test the two
    halves of the last 2·min(500k, 5%)."""
    limit = max_tokens or int(len(tokens) * 0.9)
    held = min(500_000, len(tokens) // 20)
    split_tokens = {"train": tokens[:limit], "valid": tokens[-2 * held : -held], "test": tokens[-held:]}
    return split_tokens, f"{source}: train = first {limit} tokens, valid/test = the last {2 * held} (halves)"


def _sampling(counts: torch.Tensor, subsample: float) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Each word's probability of being kept by Mikolov's subsampling (None without it) and the
    noise distribution (unigram counts to the ¾ power)."""
    frequency = counts / counts.sum()
    keep_probability = ((frequency / subsample).sqrt() + 1) * subsample / frequency if subsample else None
    return keep_probability, (counts**0.75 / (counts**0.75).sum()).float()


class Word2Vec(Problem[SkipGram]):
    """Skip-gram with negative sampling (Mikolov et al., 2013) on text8 (Wikipedia) or PTB.

    Vocabulary: words with count ≥ ``min_count``; frequent words subsampled with Mikolov's rule
    (keep with probability (√(f/t) + 1)·t/f, ``t = subsample``), afresh each epoch; a dynamic window
    (each center draws its radius in 1..``window``); ``negatives`` noise words per pair from the
    unigram distribution to the ¾ power. The embeddings are ``nn.Embedding(sparse=True)``, so
    optimizers take the sparse (lazy) path. Metrics on held-out text: the SGNS loss with negatives
    drawn once and fixed (the metric the lab selects and ranks by), and ``pair_accuracy``, how
    often the true context outscores every negative, reported only: an untrained model, whose
    scores are all near zero, can outscore a trained one on it, since frequent negatives are
    also likely contexts; :meth:`nearest_neighbours` gives a sanity report.
    """

    name = "word2vec"
    metric = "loss"
    default_steps = 400
    default_batch_size = 512
    curve_limit = 5000

    def __init__(self, corpus: str = "auto", dim: int = 64, window: int = 5, negatives: int = 5,
                 min_count: int = 5, subsample: float = 1e-4, max_tokens: int | None = 2_000_000,
                 eval_pairs: int = 20_000, data_dir: str | None = None) -> None:
        if corpus not in ("auto", "text8", "ptb"):
            raise ValueError(f"`corpus` must be one of ('auto', 'text8', 'ptb'). Received: corpus={corpus!r}")
        check_positive_ints(optional=("max_tokens",), dim=dim, window=window, negatives=negatives,
                            min_count=min_count, eval_pairs=eval_pairs, max_tokens=max_tokens)
        self.options = {"corpus": corpus, "dim": dim, "window": window, "negatives": negatives,
                        "min_count": min_count, "subsample": subsample, "max_tokens": max_tokens,
                        "eval_pairs": eval_pairs, "data_dir": data_dir}
        self.dim, self.window, self.negatives, self.subsample = dim, window, negatives, subsample
        data_dir = str(data_dir) if data_dir else None
        split_tokens, self._provenance = _word2vec_corpus(corpus, max_tokens, data_dir)
        self.description = (
            f"skip-gram negative sampling, {dim}-d sparse embeddings, window {window}, {negatives} negatives"
        )
        self.words, counts = build_vocab(split_tokens["train"], min_count=min_count)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.ids = {s: torch.tensor([self.index[w] for w in t if w in self.index]) for s, t in split_tokens.items()}
        self.keep_probability, self.noise_distribution = _sampling(counts, subsample)
        self.held_out = {split: self._held_out_pairs(split, eval_pairs) for split in ("train", "valid", "test")}

    @property
    def provenance(self) -> str:
        sizes = ", ".join(f"{s} {len(t)} tokens" for s, t in self.ids.items())
        vocabulary = f"vocabulary {len(self.words)} words (min_count {self.options['min_count']})"
        return f"{self._provenance}; {vocabulary}; {sizes}"

    def _pairs(self, ids: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(center, context) pairs within a window; dynamic radius per center when a generator is given."""
        if generator is None:
            radius = torch.full((len(ids),), self.window)
        else:
            radius = torch.randint(1, self.window + 1, (len(ids),), generator=generator)
        centers, contexts = [], []
        for offset in range(1, self.window + 1):
            if offset >= len(ids):
                break
            left, right = ids[:-offset], ids[offset:]
            forward = radius[:-offset] >= offset  # center at i, context at i + offset
            backward = radius[offset:] >= offset  # center at i + offset, context at i
            centers += [left[forward], right[backward]]
            contexts += [right[forward], left[backward]]
        return torch.cat(centers), torch.cat(contexts)

    def _held_out_pairs(self, split: str, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(split_seed(12345, split))
        centers, contexts = self._pairs(self.ids[split], None)
        chosen = torch.randperm(len(centers), generator=generator)[:count]
        negatives = torch.multinomial(self.noise_distribution, len(chosen) * self.negatives, True, generator=generator)
        return centers[chosen], contexts[chosen], negatives.view(len(chosen), self.negatives)

    def model(self, seed: int) -> SkipGram:
        with seeded(seed):
            return SkipGram(len(self.words), self.dim)

    def batches(self, split: str, batch_size: int | None, seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
        check_split(split)
        check_batch_size(batch_size)
        generator = torch.Generator().manual_seed(split_seed(seed, split))
        ids = self.ids[split]
        while True:  # one epoch: subsample, window, shuffle
            kept = ids
            if self.keep_probability is not None:
                kept = ids[torch.rand(len(ids), generator=generator, dtype=torch.float64) < self.keep_probability[ids]]
            centers, contexts = self._pairs(kept, generator)
            order = torch.randperm(len(centers), generator=generator)
            size = len(order) if batch_size is None else min(batch_size, len(order))
            for start in range(0, len(order) - size + 1, size):
                chosen = order[start : start + size]
                negatives = torch.multinomial(self.noise_distribution, size * self.negatives, True, generator=generator)
                yield centers[chosen], contexts[chosen], negatives.view(size, self.negatives)

    def _losses(self, model: SkipGram, batch) -> tuple[torch.Tensor, torch.Tensor]:
        center, context, negatives = batch
        scores = model.scores(center, torch.cat([context[:, None], negatives], dim=1))
        per_pair = -F.logsigmoid(scores[:, 0]) - F.logsigmoid(-scores[:, 1:]).sum(dim=1)
        return per_pair, scores

    def loss(self, model: SkipGram, batch) -> torch.Tensor:
        return self._losses(model, batch)[0].mean()

    def evaluate(self, model: SkipGram, split: str, limit: int | None = None) -> dict[str, float]:
        pairs = tuple(t[: first(limit, len(t))] for t in self.held_out[check_split(split)])
        with torch.no_grad():
            per_pair, scores = self._losses(model, pairs)
        return {
            "loss": per_pair.mean().item(),
            "pair_accuracy": (scores[:, 0] > scores[:, 1:].max(dim=1).values).float().mean().item(),
        }

    def nearest_neighbours(self, model: SkipGram, words: list[str] | None = None, k: int = 5) -> dict[str, list[str]]:
        """The ``k`` nearest words by cosine similarity of the input vectors, for a few probe words."""
        if words is None:
            probes = ["president", "market", "company", "city", "war", "music", "three", "year", "money", "government"]
            words = [w for w in probes if w in self.index][:6] or self.words[20:26]
        vectors = F.normalize(model.center.weight.detach(), dim=1)
        report = {}
        for word in words:
            similarity = vectors @ vectors[self.index[word]]
            similarity[self.index[word]] = -math.inf
            report[word] = [self.words[i] for i in similarity.topk(k).indices.tolist()]
        return report


# --- language models ------------------------------------------------------------------------


class LSTMLanguageModel(torch.nn.Module):
    def __init__(self, vocab_size: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.out = torch.nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(self.embed(tokens))[0])


class _SequenceProblem(Problem[LSTMLanguageModel]):
    """Next-token prediction on fixed-length chunks of a token stream; metric: perplexity.

    Each split's stream is cut into non-overlapping chunks of ``seq_len`` inputs (targets shifted
    by one). Chunks are the examples, reshuffled each epoch, and every chunk starts from a zero
    LSTM state (no state carried across batches, since their order is shuffled); evaluation does
    the same over all chunks in order, so perplexities are those of ``seq_len``-token contexts.
    """

    vocabulary: list[str]  # a subclass reads its corpus and sets these
    sizes: tuple[int, int, int]  # embed, hidden, layers
    _provenance: str
    metric = "perplexity"
    default_batch_size = 32
    curve_limit = 128  # chunks: a fixed ~4-8k-token slice of the split for the curve points
    unit = "tokens"

    def _set_streams(self, streams: dict[str, torch.Tensor], seq_len: int) -> None:
        self.seq_len = seq_len
        self.chunks = {}
        for split, stream in streams.items():
            count = (len(stream) - 1) // seq_len
            inputs = stream[: count * seq_len].view(count, seq_len)
            targets = stream[1 : count * seq_len + 1].view(count, seq_len)
            self.chunks[split] = (inputs, targets)

    @property
    def provenance(self) -> str:
        sizes = ", ".join(f"{s} {c[0].numel()} {self.unit}" for s, c in self.chunks.items())
        return f"{self._provenance}; {len(self.vocabulary)} symbols; {sizes}"

    def model(self, seed: int) -> LSTMLanguageModel:
        with seeded(seed):
            return LSTMLanguageModel(len(self.vocabulary), *self.sizes)

    @property
    def train_examples(self) -> int:
        return len(self.chunks["train"][0])

    def batches(self, split: str, batch_size: int | None, seed: int):
        inputs, targets = self.chunks[check_split(split)]
        return example_batches(
            len(inputs), lambda i: (inputs[i], targets[i]), check_batch_size(batch_size), split_seed(seed, split)
        )

    def loss(self, model: LSTMLanguageModel, batch) -> torch.Tensor:
        inputs, targets = batch
        return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())

    def evaluate(self, model: LSTMLanguageModel, split: str, limit: int | None = None) -> dict[str, float]:
        inputs, targets = self.chunks[check_split(split)]
        inputs, targets = inputs[: first(limit, len(inputs))], targets[: first(limit, len(inputs))]
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(inputs), 256):
                logits = model(inputs[start : start + 256])
                chunk = targets[start : start + 256].flatten()
                total += F.cross_entropy(logits.flatten(0, 1), chunk, reduction="sum").item()
        loss = total / targets.numel()
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}


class WordLSTM(_SequenceProblem):
    """Word-level LSTM language model on PTB, vocabulary capped at ``vocab_size`` (rest → ``<unk>``)."""

    name = "lstm_lm"
    default_steps = 200
    default_batch_size = 20

    def __init__(self, vocab_size: int = 10000, embed: int = 64, hidden: int = 128, layers: int = 1,
                 seq_len: int = 35, data_dir: str | None = None) -> None:
        check_positive_ints(minimum=2, vocab_size=vocab_size)
        check_positive_ints(embed=embed, hidden=hidden, layers=layers, seq_len=seq_len)
        self.options = {"vocab_size": vocab_size, "embed": embed, "hidden": hidden, "layers": layers,
                        "seq_len": seq_len, "data_dir": data_dir}
        self.sizes = (embed, hidden, layers)
        tokens, self._provenance = load_ptb(str(data_dir) if data_dir else None)
        self.vocabulary, _ = build_vocab(tokens["train"], max_size=vocab_size, unk="<unk>")
        index = {w: i for i, w in enumerate(self.vocabulary)}
        unk = index["<unk>"]
        self._set_streams({s: torch.tensor([index.get(w, unk) for w in t]) for s, t in tokens.items()}, seq_len)
        self._provenance += f"; vocabulary capped at {vocab_size} (rest -> <unk>)"
        self.description = f"PTB word LSTM LM: vocab {len(self.vocabulary)}, embed {embed}, hidden {hidden} x {layers}"


class CharLSTM(_SequenceProblem):
    """Character-level LSTM on tiny-shakespeare; the text is split 90% / 5% / 5% in order."""

    name = "char_lstm"
    default_steps = 200
    default_batch_size = 32
    unit = "chars"

    def __init__(self, embed: int = 32, hidden: int = 128, layers: int = 1, seq_len: int = 64,
                 max_chars: int | None = None, data_dir: str | None = None) -> None:
        check_positive_ints(optional=("max_chars",), embed=embed, hidden=hidden, layers=layers, seq_len=seq_len,
                            max_chars=max_chars)
        self.options = {"embed": embed, "hidden": hidden, "layers": layers, "seq_len": seq_len,
                        "max_chars": max_chars, "data_dir": data_dir}
        self.sizes = (embed, hidden, layers)
        path = data.fetch("tinyshakespeare", "input.txt", data_dir)
        text = data.read_text(path)
        codes, inverse = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), return_inverse=True)
        self.vocabulary = [chr(c) for c in codes]
        stream = torch.from_numpy(inverse.astype(np.int64))
        train_end, valid_end = int(len(stream) * 0.9), int(len(stream) * 0.95)
        train = stream[:train_end] if max_chars is None else stream[: min(max_chars, train_end)]
        self._set_streams({"train": train, "valid": stream[train_end:valid_end], "test": stream[valid_end:]}, seq_len)
        self._provenance = f"tiny-shakespeare {path}: characters 0-{train_end - 1} train, then 5% valid, 5% test"
        self.description = (
            f"char LSTM on tiny-shakespeare: {len(self.vocabulary)} symbols, embed {embed}, hidden {hidden} x {layers}"
        )
