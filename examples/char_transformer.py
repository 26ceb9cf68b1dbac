"""A small GPT-style character transformer on tiny-shakespeare, raced with descentlab.compare.

    descentlab compare --entry examples.char_transformer:setup --steps 400 --seeds 3 --report

Does the talk's advice ("test Nadam, RMSprop and plain momentum") hold for a transformer, against
AdamW, its usual optimizer? The text is split in order 90% / 5% / 5% into train, valid and test;
an example is a window of ``block`` characters and the same window shifted by one (next-character
prediction), and descentlab's seeded sampler draws the windows.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from descentlab import data


class Windows(torch.utils.data.Dataset):
    """Every ``block``-character window of ``codes`` (stride ``block``), with its next characters."""

    def __init__(self, codes: torch.Tensor, block: int) -> None:
        self.codes, self.block = codes, block

    def __len__(self) -> int:
        return (len(self.codes) - 1) // self.block

    def __getitem__(self, index: int):
        start = index * self.block
        return self.codes[start : start + self.block], self.codes[start + 1 : start + self.block + 1]


class CharGPT(nn.Module):
    """Token and position embeddings, pre-norm causal self-attention blocks, a linear read-out."""

    def __init__(self, vocabulary: int, block: int, width: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocabulary, width), nn.Embedding(block, width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm, self.out = nn.LayerNorm(width), nn.Linear(width, vocabulary)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        length = codes.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=codes.device)
        hidden = self.tokens(codes) + self.positions(torch.arange(length, device=codes.device))
        return self.out(self.norm(self.blocks(hidden, mask=mask, is_causal=True)))


def next_character_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def setup(block: int = 64, width: int = 64, layers: int = 2) -> dict:
    text = data.read_text(data.fetch("tinyshakespeare", "input.txt"))
    alphabet = sorted(set(text))
    index = {character: code for code, character in enumerate(alphabet)}
    codes = torch.tensor([index[c] for c in text], dtype=torch.long)
    a, b = int(0.9 * len(codes)), int(0.95 * len(codes))
    return {"model_fn": lambda: CharGPT(len(alphabet), block, width, layers), "loss_fn": next_character_loss,
            "train": Windows(codes[:a], block), "valid": Windows(codes[a:b], block),
            "test": Windows(codes[b:], block), "optimizers": ["adamw", "nadam", "rmsprop", "momentum"],
            "eval_examples": 256}
