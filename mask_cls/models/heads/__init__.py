"""Heads on pooled features: one file each, one contract (``base.Head``). A new head is one
file here (a ``Head`` subclass) and one ``conf/head/<name>.yaml`` whose ``_target_`` is
``mask_cls.models.heads.<file>.<Class>`` (the registry finds it; ``HEADS`` lists the shipped ones)."""

from mask_cls.models.heads.arcface import ArcFaceHead
from mask_cls.models.heads.base import Head
from mask_cls.models.heads.linear import LinearHead
from mask_cls.models.heads.multitask import MultiTaskHead

HEADS: tuple[type[Head], ...] = (LinearHead, ArcFaceHead, MultiTaskHead)

__all__ = ["HEADS", "ArcFaceHead", "Head", "LinearHead", "MultiTaskHead"]
