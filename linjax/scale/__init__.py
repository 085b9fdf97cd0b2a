"""Scale: many GLMs in one call, large-n blocked fits, sharded data and streaming fits."""

from linjax.scale.batch import fit_batch

__all__ = ["fit_batch"]
