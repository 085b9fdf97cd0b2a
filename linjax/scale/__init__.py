"""Scale: many GLMs in one call, sharded data, large-n blocked fits and streaming fits.

- `fit_batch`: m independent GLMs in one compiled call (`linjax.scale.batch`);
- `shard_rows`: host data onto a device mesh, rows split, for `lj.fit`
  (`linjax.scale.sharded`);
- `fit_blocked`: one GLM with X' W X accumulated over row blocks, O(p^2 + block p)
  working memory; least squares by tall-skinny QR (`linjax.scale.blocked`);
- `fit_streaming`: exact IRLS / TSQR over chunks read one at a time
  (`linjax.scale.streaming`).
"""

from linjax.scale.batch import fit_batch
from linjax.scale.blocked import fit_blocked
from linjax.scale.sharded import shard_rows
from linjax.scale.streaming import fit_streaming

__all__ = ["fit_batch", "fit_blocked", "shard_rows", "fit_streaming"]
