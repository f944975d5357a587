"""Embedding neck between pooled features and the head: Linear + BatchNorm + PReLU."""

from __future__ import annotations

from torch import nn


def embedding_neck(in_features: int, size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, size, bias=False), nn.BatchNorm1d(size), nn.PReLU())
