"""Structured designs: dense, sparse, categorical and side-by-side blocks (docs/designs.md)."""

from linjax.designs.in_place import InPlaceDense
from linjax.designs.types import (
    AbstractDesign,
    Categorical,
    Dense,
    Sparse,
    Split,
    cross,
    is_design,
    weighted_products,
)

__all__ = ["AbstractDesign", "Dense", "Sparse", "Categorical", "Split", "InPlaceDense",
           "cross", "is_design", "weighted_products"]
