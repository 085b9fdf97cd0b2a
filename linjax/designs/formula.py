"""`glm(formula, data, family=...)`: a GLM from an R-style formula (formulaic, optional).

Terms `C(col)` (and a bare `col` that names a category or string column) become
`Categorical` blocks, never dense one-hot columns; every other term (numbers,
transforms such as `np.log(x)`, interactions) is built by formulaic as dense columns.
The design is [dense terms, categorical terms] in that order. An intercept (formulaic's
default; remove it with `- 1` or `+ 0`) is fitted as lj.fit's intercept, and then every
categorical is treatment coded against its first level; without one the first categorical
keeps all its levels and the others drop their first, as R codes them. Names: formulaic's
for the dense columns, `col[level]` for the levels.

Saving (`linjax.io.save(path, fit)`): `FormulaFit.state()` is plain data (the formula, the
names, the levels of every categorical and the state of formulaic's stateful transforms),
and `FormulaFit.from_state` rebuilds a fit that predicts on new frames and, given the data,
summarizes as the original; the formula is checked (`formula_checks`) before formulaic
evaluates it, since a file may come from anyone.
"""

import re

import numpy as np

from linjax.designs import formula_checks
from linjax.designs.frames import FrameEncoding, as_pandas, encode_frame, is_categorical
from linjax.designs.types import Dense, Split
from linjax.families import get_family
from linjax.fit import fit
from linjax.fit_statistics import summarize
from linjax.model import linear_predictor

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
    if expr in data.columns and is_categorical(data[expr]):
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
        self._dense_names = None  # set by glm and from_state: the dense terms' column names
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
        refused naming its column, or given the reference level with unseen="reference";
        a level inside a dense term such as `C(g):x` is always refused)."""
        data = as_pandas(new_data)
        blocks = []
        if self._dense_spec is not None:
            _check_dense_levels(_spec_levels(self._dense_spec), data)
            mm = self._dense_spec.get_model_matrix(data, na_action="raise")
            if self._dense_names is not None and [str(c) for c in mm.columns if not (
                    self.fit_intercept and c == "Intercept")] != list(self._dense_names):
                raise ValueError(f"data: the formula's terms give the columns "
                                 f"{[str(c) for c in mm.columns][:20]}, but the fit has "
                                 f"{list(self._dense_names)[:20]}.")
            blocks.append(Dense(_dense_matrix(mm, self.fit_intercept)))
        if self._encoding.columns:
            blocks.extend(self._encoding.transform(data, unseen=unseen).blocks)
        return blocks[0] if len(blocks) == 1 else Split(tuple(blocks))

    def linear_predictor(self, new_data, offset=None, unseen="error"):
        return linear_predictor(self.result.params, self.design(new_data, unseen), offset)

    def predict(self, new_data, offset=None, unseen="error"):
        """The fitted mean on new rows."""
        return self.family.link.inverse(self.linear_predictor(new_data, offset, unseen))

    def summary(self, data=None, weights=None, offset=None, **kwargs):
        """`linjax.inference.summarize` with the formula's names, on the training data, or
        on `data` (the response and terms taken from it by the formula; a loaded fit has
        no training data)."""
        if data is None:
            if self._train is None:
                raise ValueError("summary: this fit was loaded from a file, which holds no "
                                 "training data; pass data= (and weights=, offset= as in the "
                                 "fit) to summarize it.")
            design, y, weights, offset = self._train
        else:
            design, y = self.design(data), _response(self.formula, as_pandas(data))
        return summarize(self.result, design, y, family=self.family, weights=weights,
                         offset=offset, feature_names=list(self.names), **kwargs)

    def state(self):
        """What a saved fit holds besides its `FitResult` and family: plain data only."""
        dense = None
        if self._dense_spec is not None:
            spec = self._dense_spec
            dense = {"formula": str(spec.formula), "ensure_full_rank": bool(
                spec.ensure_full_rank), "transform_state": dict(spec.transform_state),
                "levels": {k: list(v) for k, v in _spec_levels(spec).items()},
                "names": list(self._dense_names)}
        return {"formula": self.formula, "names": list(self.names),
                "fit_intercept": bool(self.fit_intercept), "dense": dense,
                "categorical": [{"columns": [[name, list(levels)] for name, levels in
                                             enc.columns], "drop_first": bool(enc.drop_first)}
                                for enc in self._encoding.parts]}

    @classmethod
    def from_state(cls, result, family, state):
        """A fit rebuilt from `state()` (without training data; `result` None: only its
        `design` is used, as the command line's predict does). The formulas are checked
        before formulaic parses them; ValueError names what was refused."""
        formulaic = _formulaic()
        from formulaic.parser.types import Factor

        for text in [state["formula"]] + ([state["dense"]["formula"]] if state["dense"]
                                          else []):
            formula_checks.check_formula_bounds(text, what="formula")
            parsed = formulaic.Formula(text)
            for side in (parsed.lhs, parsed.rhs) if hasattr(parsed, "rhs") else (parsed,):
                formula_checks.check_safe_formula(side)
        dense_spec, dense = None, state["dense"]
        if dense is not None:
            encoder = {k: (Factor.Kind.CATEGORICAL, {"categories": list(v)})
                       for k, v in dense["levels"].items()}
            dense_spec = formulaic.ModelSpec(
                formula=dense["formula"], ensure_full_rank=bool(dense["ensure_full_rank"]),
                transform_state=dict(dense["transform_state"] or {}), encoder_state=encoder)
        parts = tuple(FrameEncoding(tuple((name, None if levels is None else tuple(levels))
                                          for name, levels in part["columns"]),
                                    bool(part["drop_first"]))
                      for part in state["categorical"])
        fit = cls(result, state["formula"], state["names"], dense_spec, _Encodings(parts),
                  bool(state["fit_intercept"]), family, None, None, None, None)
        fit._dense_names = None if dense is None else tuple(dense["names"])
        fit._train = None
        width = (0 if dense is None else len(dense["names"])) + sum(
            len(e.names) for e in parts)
        p = width if result is None else np.shape(result.params["coef"])[0]
        if width != len(fit.names) or p != width:
            raise ValueError(f"formula fit: {len(fit.names)} names and "
                             f"{np.shape(result.params['coef'])[0]} coefficients for a design "
                             f"of {width} columns.")
        return fit

    def __repr__(self):
        return f"FormulaFit({self.formula!r}, {len(self.names)} coefficients)"


def _response(formula, data):
    """The response of `formula` ("y ~ ...") on `data` as a float vector (or matrix)."""
    formulaic = _formulaic()
    lhs = formulaic.Formula(formula).lhs
    y = np.asarray(formulaic.model_matrix(f"{lhs} - 1", data, na_action="raise",
                                          ensure_full_rank=False), dtype=float)
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def _spec_levels(spec):
    """{factor: its levels} of the categorical factors formulaic encoded in dense terms."""
    return {key: tuple(state["categories"]) for key, (kind, state) in
            spec.encoder_state.items()
            if getattr(kind, "value", kind) == "categorical" and "categories" in state}


def factor_column(key):
    """The column a categorical factor `C(col)` or `col` reads."""
    match = _CATEGORICAL_CALL.match(key)
    return match.group(1) if match else key


def _check_dense_levels(levels, data):
    """Refuse, naming column and level, a value of a categorical factor of a dense term
    (such as `C(g):x`) not among its fitted levels (formulaic would warn and give zeros)."""
    for key, known in levels.items():
        column = factor_column(key)
        if column not in data.columns:
            continue
        values = data[column].astype(object).to_numpy()
        new = ~np.isin(values, np.asarray(known, dtype=object))
        if new.any():
            raise ValueError(f"data: column {column!r} has level {values[new][0]!r} "
                             f"({int(new.sum())} row(s)), not seen when fitting (levels "
                             f"{list(known)[:20]}); refit with that level.")


def _dense_matrix(mm, fit_intercept):
    """formulaic's model matrix as a float array without its intercept column."""
    frame = mm.drop(columns=["Intercept"]) if fit_intercept else mm
    return np.asarray(frame, dtype=float)


class FormulaDesign:
    """What a formula makes of a frame (`build_design`): `design` (an array when every term
    is dense, else a `Split` with categorical blocks), the response `y`, the coefficient
    `names` (intercept excluded), `fit_intercept`, and what re-applies it to new rows
    (`dense_spec`, `dense_names`, `encoding`)."""

    def __init__(self, design, y, names, fit_intercept, dense_spec, dense_names, encoding):
        self.design, self.y, self.names = design, y, tuple(names)
        self.fit_intercept = fit_intercept
        self.dense_spec, self.dense_names, self.encoding = dense_spec, dense_names, encoding

    def fit_object(self, formula, result=None, family=None, weights=None, offset=None):
        """The `FormulaFit` of this design with `result` (None: for its `state()` only)."""
        out = FormulaFit(result, formula, self.names, self.dense_spec, self.encoding,
                         self.fit_intercept, family, self.design, self.y, weights, offset)
        out._dense_names = self.dense_names
        return out


def build_design(formula, data):
    """`FormulaDesign` of an R-style formula on a DataFrame (see the module docstring)."""
    formulaic = _formulaic()
    if not isinstance(formula, str):
        raise ValueError(f"formula: expected a string such as 'y ~ x1 + C(g)', got "
                         f"{type(formula).__name__}.")
    data = as_pandas(data)
    parsed = formulaic.Formula(formula)
    if not hasattr(parsed, "lhs"):
        raise ValueError(f"formula: {formula!r} has no response; write 'y ~ ...'.")
    y = _response(formula, data)
    terms = [str(t) for t in parsed.rhs]
    fit_intercept = "1" in terms
    categorical = [c for c in (_categorical_column(t, data) for t in terms) if c is not None]
    dense_terms = [t for t in terms if t != "1" and _categorical_column(t, data) is None]
    blocks, names, dense_spec, dense_names = [], [], None, None
    if dense_terms:
        rhs = " + ".join(dense_terms) + ("" if fit_intercept else " - 1")
        mm = formulaic.model_matrix(rhs, data, na_action="raise")
        dense_spec = mm.model_spec
        blocks.append(Dense(_dense_matrix(mm, fit_intercept)))
        dense_names = tuple(str(c) for c in mm.columns
                            if not (fit_intercept and c == "Intercept"))
        names.extend(dense_names)
    encodings = []
    for i, name in enumerate(dict.fromkeys(categorical)):
        column = data[[name]] if is_categorical(data[name]) else data[[name]].astype("category")
        block, enc = encode_frame(column, drop_first=fit_intercept or i > 0)
        blocks.extend(block.blocks)
        encodings.append(enc)
        names.extend(enc.names)
    if not blocks:
        raise ValueError(f"formula: {formula!r} has no terms besides the intercept; add a "
                         "term, or fit an intercept-only model with linjax.fit on an (n, 0) X.")
    design = blocks[0] if len(blocks) == 1 else Split(tuple(blocks))
    if isinstance(design, Dense):
        design = design.X
    return FormulaDesign(design, y, names, fit_intercept, dense_spec, dense_names,
                         _joined(encodings))


def glm(formula, data, family=None, penalty=None, solver="auto", weights=None, offset=None,
        **fit_options):
    """Fit the GLM of an R-style formula `"y ~ x1 + C(region) + np.log(x2)"` on a DataFrame
    (see the module docstring); other arguments as `linjax.fit`. Returns a `FormulaFit`."""
    built = build_design(formula, data)
    family = get_family(family) if family is not None else None
    result = fit(built.design, built.y, family, penalty, solver, weights, offset,
                 built.fit_intercept, **fit_options)
    return built.fit_object(formula, result, result.family, weights, offset)


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
