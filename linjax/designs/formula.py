"""`glm(formula, data, family=...)`: a GLM from an R-style formula (formulaic, optional).

Terms `C(col)` (and a bare `col` that names a category or string column) become
`Categorical` blocks, never dense one-hot columns; every other term (numbers,
transforms such as `np.log(x)`, interactions) is built by formulaic as dense columns.
The design is [dense terms, categorical terms] in that order. An intercept (formulaic's
default; remove it with `- 1` or `+ 0`) is fitted as lj.fit's intercept, and then every
categorical is treatment coded against its first level; without one the first categorical
keeps all its levels and the others drop their first, as R codes them. Names: formulaic's
for the dense columns, `col[level]` for the levels.
"""

import re

import numpy as np

from linjax.designs.frames import _as_pandas, _is_categorical, encode_frame
from linjax.designs.types import Dense, Split

_CATEGORICAL_CALL = re.compile(r"^C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)$")


def _formulaic():
    try:
        import formulaic
    except ImportError as err:
        raise ImportError("glm: formulas need formulaic: pip install 'linjax[formula]' (or pass "
                          "arrays or a DataFrame to linjax.fit).") from err
    return formulaic


def _categorical_column(expr, data):
    """The column name when the term `expr` is a categorical main effect, else None."""
    match = _CATEGORICAL_CALL.match(expr)
    if match and match.group(1) in data.columns:
        return match.group(1)
    if expr in data.columns and _is_categorical(data[expr]):
        return expr
    return None


class FormulaFit:
    """A fit from `glm`: `result` (the `FitResult`), `names` (one per coefficient, intercept
    excluded), `predict(new_data)`, `linear_predictor(new_data)`, `summary()`."""

    def __init__(self, result, formula, names, dense_spec, encoding, fit_intercept, family,
                 design, y, weights, offset):
        self.result, self.formula, self.names = result, formula, tuple(names)
        self.family, self.fit_intercept = family, fit_intercept
        self._dense_spec, self._encoding = dense_spec, encoding
        self._train = (design, y, weights, offset)

    @property
    def params(self):
        return self.result.params

    @property
    def coef(self):
        """{name: coefficient}, the intercept first under the name "Intercept"."""
        out = {"Intercept": float(self.result.intercept)} if self.fit_intercept else {}
        out.update(zip(self.names, np.asarray(self.result.coef).tolist(), strict=True))
        return out

    def design(self, new_data, unseen="error"):
        """The design of new rows: the fitted dense terms and levels (an unseen level is
        refused naming its column, or given the reference level with unseen="reference")."""
        data = _as_pandas(new_data)
        blocks = []
        if self._dense_spec is not None:
            blocks.append(Dense(_dense_matrix(self._dense_spec.get_model_matrix(
                data, na_action="raise"), self.fit_intercept)))
        if self._encoding.columns:
            blocks.extend(self._encoding.transform(data, unseen=unseen).blocks)
        return blocks[0] if len(blocks) == 1 else Split(tuple(blocks))

    def linear_predictor(self, new_data, offset=None, unseen="error"):
        from linjax.model import linear_predictor

        return linear_predictor(self.result.params, self.design(new_data, unseen), offset)

    def predict(self, new_data, offset=None, unseen="error"):
        """The fitted mean on new rows."""
        return self.family.link.inverse(self.linear_predictor(new_data, offset, unseen))

    def summary(self, **kwargs):
        """`linjax.inference.summarize` on the training data, with the formula's names."""
        from linjax.inference import summarize

        design, y, weights, offset = self._train
        return summarize(self.result, design, y, family=self.family, weights=weights,
                         offset=offset, feature_names=list(self.names), **kwargs)

    def __repr__(self):
        return f"FormulaFit({self.formula!r}, {len(self.names)} coefficients)"


def _dense_matrix(mm, fit_intercept):
    """formulaic's model matrix as a float array without its intercept column."""
    frame = mm.drop(columns=["Intercept"]) if fit_intercept else mm
    return np.asarray(frame, dtype=float)


def glm(formula, data, family=None, penalty=None, solver="auto", weights=None, offset=None,
        **fit_options):
    """Fit the GLM of an R-style formula `"y ~ x1 + C(region) + np.log(x2)"` on a DataFrame
    (see the module docstring); other arguments as `linjax.fit`. Returns a `FormulaFit`."""
    from linjax.families import get_family
    from linjax.fit import fit

    formulaic = _formulaic()
    if not isinstance(formula, str):
        raise ValueError(f"formula: expected a string such as 'y ~ x1 + C(g)', got "
                         f"{type(formula).__name__}.")
    data = _as_pandas(data)
    parsed = formulaic.Formula(formula)
    if not hasattr(parsed, "lhs"):
        raise ValueError(f"formula: {formula!r} has no response; write 'y ~ ...'.")
    y = np.asarray(formulaic.model_matrix(f"{parsed.lhs} - 1", data, na_action="raise",
                                          ensure_full_rank=False), dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    terms = [str(t) for t in parsed.rhs]
    fit_intercept = "1" in terms
    categorical = [c for c in (_categorical_column(t, data) for t in terms) if c is not None]
    dense_terms = [t for t in terms if t != "1" and _categorical_column(t, data) is None]
    blocks, names, dense_spec = [], [], None
    if dense_terms:
        rhs = " + ".join(dense_terms) + ("" if fit_intercept else " - 1")
        mm = formulaic.model_matrix(rhs, data, na_action="raise")
        dense_spec = mm.model_spec
        blocks.append(Dense(_dense_matrix(mm, fit_intercept)))
        names.extend(c for c in mm.columns if not (fit_intercept and c == "Intercept"))
    encodings = []
    for i, name in enumerate(dict.fromkeys(categorical)):
        column = data[[name]] if _is_categorical(data[name]) else data[[name]].astype("category")
        block, enc = encode_frame(column, drop_first=fit_intercept or i > 0)
        blocks.extend(block.blocks)
        encodings.append(enc)
        names.extend(enc.names)
    encoding = _joined(encodings)
    if not blocks:
        raise ValueError(f"formula: {formula!r} has no terms besides the intercept; add a "
                         "term, or fit an intercept-only model with linjax.fit on an (n, 0) X.")
    design = blocks[0] if len(blocks) == 1 else Split(tuple(blocks))
    family = get_family(family) if family is not None else None
    result = fit(design if not isinstance(design, Dense) else design.X, y, family, penalty,
                 solver, weights, offset, fit_intercept, **fit_options)
    return FormulaFit(result, formula, names, dense_spec, encoding, fit_intercept,
                      result.family, design, y, weights, offset)


def _joined(encodings):
    """One FrameEncoding-like object over several single-column encodings (each with its own
    drop_first)."""
    return _Encodings(tuple(encodings))


class _Encodings:
    def __init__(self, parts):
        self.parts = parts
        self.columns = tuple(c for e in parts for c in e.columns)

    def transform(self, data, unseen="error"):
        blocks = [b for e in self.parts for b in e.transform(data, unseen=unseen).blocks]
        return Split(tuple(blocks))
