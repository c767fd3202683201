"""A tiny transformer classifier: token embedding + a learned positional table (a bare
nn.Parameter on the model itself) → two pre-norm encoder blocks (self-attention, feed-forward,
LayerNorms) → LayerNorm → mean over positions → linear head. `mpls model show model:tiny_transformer
--dataset data:load_sequences` lists the layers MPLS exchanges: the embedding, the positional table,
each block's attention in-projection, out-projection, two feed-forward linears and two norms."""

from __future__ import annotations

import torch
from torch import nn

VOCAB, WIDTH = 24, 32


class TinyTransformer(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        (length,) = input_shape
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.position = nn.Parameter(torch.zeros(length, WIDTH).normal_(std=0.02))
        block = nn.TransformerEncoderLayer(
            WIDTH, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L) token ids
        x = self.embed(tokens) + self.position  # (B, L, W)
        x = self.norm(self.blocks(x))
        logits: torch.Tensor = self.head(x.mean(dim=1))  # (B, classes)
        return logits


def tiny_transformer(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return TinyTransformer(input_shape, num_classes)
