"""Heads on pooled features: one file each, one contract (``base.Head``). A new head is one
file here (a ``Head`` subclass) and one ``conf/head/<name>.yaml`` whose ``_target_`` is
``mask_cls.models.heads.<file>.<Class>``: ``registry()`` finds it by scanning this package."""

from mask_cls.models.heads.arcface import ArcFaceHead
from mask_cls.models.heads.base import Head
from mask_cls.models.heads.linear import LinearHead
from mask_cls.models.heads.multitask import MultiTaskHead
from mask_cls.registry import Registry, scan

#: the shipped heads (tests check their contract)
HEADS: tuple[type[Head], ...] = (LinearHead, ArcFaceHead, MultiTaskHead)


def registry() -> Registry:
    """Every ``Head`` subclass of this package, by ``mask_cls.models.heads.<file>.<Class>``; the
    package-level spelling that checkpoints written before carry is read as the same class."""
    known = scan(__name__, Head)
    legacy = {f"{__name__}.{cls.__name__}": cls for cls in known.values()}
    return Registry("head", known, extra=legacy.get)


__all__ = ["HEADS", "ArcFaceHead", "Head", "LinearHead", "MultiTaskHead", "registry"]
