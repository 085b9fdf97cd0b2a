"""The `linjax` command line: `linjax demo | fit | predict | info` (docs/cli.md).

    linjax demo
    linjax fit shops.csv --formula "complaints ~ foot_traffic + C(region)" \\
        --family poisson --exposure months_open --save shops.linjax
    linjax predict shops.linjax new_shops.csv --out predictions.csv
    linjax info

The command line turns on float64 for its own process (statistics need it) and
uses JAX's persistent compilation cache under the user cache directory
(`~/.cache/linjax/...`), so the second run of a command skips compilation. Set
LINJAX_COMPILATION_CACHE=off to disable the cache, or to a directory to move it.

Exit codes: 0 success, 2 a usage or data problem (the message says what and how to
fix it), 1 an internal error (a bug: please report it with the traceback).
"""

import argparse
import ast
import csv
import importlib.metadata
import json
import pathlib
import platform
import sys
import traceback

import jax
import numpy as np

import linjax as lj
from linjax import demo, inference, inputs, paths, selection
from linjax._cache import CACHE_ENV, default_cache_dir, enable_persistent_cache  # noqa: F401
from linjax.cli_model import ModelFileError, load_model, save_model, to_jsonable
from linjax.designs import Dense, Split, is_design
from linjax.designs import formula as formula_module
from linjax.designs.formula_checks import (
    BASIS_FUNCTIONS,
    BASIS_SIZE_ARGS,
    MAX_BASIS,
    FormulaError,
    check_formula_bounds,
    check_safe_formula,
    clean_message,
    factors,
    first_line,
)

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """A problem the user can fix (bad argument, file or data): exit code 2."""


# -- process set-up ------------------------------------------------------------------------

def setup_jax():
    """float64 on; the persistent compilation cache unless LINJAX_COMPILATION_CACHE=off.

    Returns the cache directory in use, or None.
    """
    jax.config.update("jax_enable_x64", True)
    return enable_persistent_cache()


# -- reading data --------------------------------------------------------------------------

def _require_pandas(what):
    try:
        import pandas as pd
    except ImportError as err:
        raise CLIError(f"{what} needs pandas: pip install 'linjax[formula]' (pandas and "
                       "formulaic).") from err
    return pd


def read_table(path):
    """A pandas DataFrame from a CSV (or .tsv) or Parquet file."""
    pd = _require_pandas("reading a data file")
    p = pathlib.Path(path)
    if not p.is_file():
        raise CLIError(f"DATA: no such file: {path}")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                import pyarrow  # noqa: F401
            except ImportError as err:
                raise CLIError(f"DATA: reading Parquet ({path}) needs pyarrow: pip install "
                               "'linjax[parquet]', or convert the file to CSV.") from err
            table = pd.read_parquet(p)
        else:
            table = pd.read_csv(p, sep="\t" if suffix in (".tsv", ".tab") else ",")
    except CLIError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as err:
        kind = "Parquet" if suffix in (".parquet", ".pq") else "CSV"
        raise CLIError(f"DATA: could not read {path} as {kind}: {err}") from err
    if len(table) == 0:
        raise CLIError(f"DATA: {path} has no data rows (only the header "
                       f"{', '.join(map(str, list(table.columns)[:10]))}); nothing to use.")
    return table


def _check_columns(table, names, what="column"):
    missing = [c for c in names if c not in table.columns]
    if missing:
        shown = ", ".join(map(str, list(table.columns)[:30]))
        more = " ..." if len(table.columns) > 30 else ""
        raise CLIError(f"unknown {what}{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(repr(c) for c in missing)}; the data has the columns: "
                       f"{shown}{more}")


def _handle_missing(table, columns, mode):
    """Refuse rows with missing values in `columns` (mode 'refuse') or drop them."""
    columns = [c for c in dict.fromkeys(columns)]
    na = table[columns].isna()
    rows = na.any(axis=1)
    n_bad = int(rows.sum())
    if n_bad == 0:
        return table, 0
    if mode == "drop":
        if n_bad == len(table):
            raise CLIError(f"every one of the {n_bad} rows has a missing value in the columns "
                           "the model uses; nothing is left to fit.")
        return table.loc[~rows].reset_index(drop=True), n_bad
    counts = ", ".join(f"{c}: {int(k)}" for c, k in na.sum().items() if k)
    raise CLIError(f"missing values: {n_bad} of {len(table)} rows have a missing value in the "
                   f"columns the model uses ({counts}). Pass --missing drop to drop those rows, "
                   "or fill them in first.")


def _dense_part(X):
    """(the dense columns of X, their indices among X's columns): all of an array, the dense
    blocks of a design (categorical blocks hold codes, always finite)."""
    if not is_design(X):
        return np.asarray(X), np.arange(np.shape(X)[1])
    mats, index, start = [], [], 0
    for block in X.blocks if isinstance(X, Split) else (X,):
        if isinstance(block, Dense):
            mats.append(np.asarray(block.X))
            index.extend(range(start, start + block.shape[1]))
        start += block.shape[1]
    dense = np.column_stack(mats) if mats else np.zeros((X.shape[0], 0))
    return dense, np.asarray(index, int)


def _check_finite_features(design, dropped):
    """Name the column and row of the first inf (or NaN) among the features."""
    X, index = _dense_part(design.X)
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    i, j = np.argwhere(bad)[0]
    count, j = int(bad[:, j].sum()), index[j]
    where = (f"row {i + 1} of the rows used (after dropping {dropped} with missing values)"
             if dropped else f"data row {i + 1} (line {i + 2} of the file)")
    raise CLIError(f"feature column {design.names[j]!r} has {count} infinite or "
                   f"NaN value(s), the first in {where}; remove or impute them before fitting.")


def _is_numeric(series):
    return series.dtype.kind in "biuf"


def _numeric_column(table, col, what):
    s = table[col]
    if not _is_numeric(s):
        example = next((v for v in s if isinstance(v, str)), None)
        raise CLIError(f"{what} column {col!r} is not numeric (dtype {s.dtype}"
                       f"{f', e.g. {example!r}' if example is not None else ''}); it must hold "
                       "numbers.")
    return s.to_numpy(dtype=float)


# -- formulas ------------------------------------------------------------------------------

def _require_formulaic():
    try:
        import formulaic
    except ImportError as err:
        raise CLIError("--formula needs formulaic: pip install 'linjax[formula]'. Without it, "
                       "name the columns instead: --y COLUMN --x col1,col2,...") from err
    return formulaic


def parse_formula(text):
    """(formula, lhs, rhs) of `text`, after `check_formula_bounds` (a formula from a file
    is evaluated, so its cost must be bounded before formulaic expands it)."""
    formulaic = _require_formulaic()
    if not isinstance(text, str) or "~" not in text:
        raise CLIError(f"--formula {text!r:.80}: expected 'outcome ~ terms', e.g. "
                       "'y ~ x1 + x2 + C(group)'.")
    check_formula_bounds(text)
    try:
        formula = formulaic.Formula(text)
        lhs, rhs = formula.lhs, formula.rhs
    except formulaic.errors.FormulaicError as err:
        raise CLIError(f"--formula {text!r} does not parse: {first_line(err)}") from err
    except Exception as err:  # formulaic raises a few plain exceptions on odd input
        raise CLIError(f"--formula {text!r} does not parse: {first_line(err)}") from err
    return formula, lhs, rhs


class Design:
    """The numbers of one model: X (n, p) without the intercept column, names, y, offset..."""

    def __init__(self, X, names, fit_intercept, y=None, spec=None):
        self.X, self.names, self.fit_intercept, self.y, self.spec = X, names, fit_intercept, y, spec


def formula_design(table, formula_text, extra_columns, missing):
    """Parse, check columns / missing / text columns, and build the design with formulaic."""
    formulaic = _require_formulaic()
    formula, lhs, rhs = parse_formula(formula_text)
    outcome = sorted(lhs.required_variables)
    if len(list(factors(lhs))) != 1:
        raise CLIError(f"--formula {formula_text!r}: the left of '~' must be one outcome column.")
    used = sorted(lhs.required_variables | rhs.required_variables)
    _check_columns(table, used + list(extra_columns))
    table, dropped = _handle_missing(table, used + list(extra_columns), missing)
    for col in outcome:
        _numeric_column(table, col, "outcome")
    for factor in factors(rhs):
        name = factor.expr
        if getattr(factor.eval_method, "value", "") == "lookup" and name in table.columns \
                and not _is_numeric(table[name]):
            raise CLIError(f"column {name!r} is not numeric (dtype {table[name].dtype}); to use it "
                           f"as a categorical factor write C({name}) in the formula.")
    try:
        built = formula_module.build_design(formula_text, table)
    except formulaic.errors.FormulaicError as err:
        raise CLIError(f"--formula {formula_text!r}: {clean_message(err)}") from err
    except (NameError, TypeError, ValueError, KeyError) as err:
        raise CLIError(f"--formula {formula_text!r}: could not evaluate it: {err}") from err
    if np.ndim(built.y) != 1:
        raise CLIError(f"--formula {formula_text!r}: the outcome must be a single numeric "
                       f"column; it expanded to {np.shape(built.y)[1]} columns.")
    names = list(built.names)
    state = built.fit_object(formula_text).state()
    levels, dense, transform_state = {}, None, {}
    if state["dense"] is not None:
        columns = {key: formula_module.factor_column(key) for key in state["dense"]["levels"]}
        for key, column in columns.items():
            levels[column] = list(state["dense"]["levels"][key])
        dense = {"formula": state["dense"]["formula"], "names": state["dense"]["names"],
                 "factors": columns}
        transform_state = state["dense"]["transform_state"]
    categorical = []
    for part in state["categorical"]:
        for column, known in part["columns"]:
            levels[column] = list(known)
            categorical.append({"column": column, "drop_first": part["drop_first"]})
    meta = {"formula": formula_text, "outcome": outcome[0] if outcome else str(lhs),
            "levels": levels, "transform_state": transform_state,
            "design_columns": ["Intercept"] * built.fit_intercept + names,
            "ensure_full_rank": True, "blocks": {"dense": dense, "categorical": categorical}}
    return Design(built.design, names, built.fit_intercept, built.y, meta), table, dropped


def columns_design(table, y_col, x_cols, extra_columns, missing, fit_intercept):
    if not y_col:
        raise CLIError("name the outcome: --formula 'y ~ x1 + x2' or --y COLUMN --x col1,col2.")
    _check_columns(table, [y_col] + x_cols + list(extra_columns))
    table, dropped = _handle_missing(table, [y_col] + x_cols + list(extra_columns), missing)
    y = _numeric_column(table, y_col, "outcome")
    for c in x_cols:
        if not _is_numeric(table[c]):
            raise CLIError(f"column {c!r} is not numeric (dtype {table[c].dtype}); --x takes "
                           f"numeric columns only. Use --formula with C({c}) to treat it as "
                           "categorical.")
    X = np.column_stack([table[c].to_numpy(dtype=float) for c in x_cols]) if x_cols else \
        np.zeros((len(table), 0))
    meta = {"outcome": y_col, "x": list(x_cols)}
    return Design(X, list(x_cols), fit_intercept, y, meta), table, dropped


def offset_from(table, args):
    if args.offset and args.exposure:
        raise CLIError("give either --offset or --exposure, not both (exposure E is the offset "
                       "log(E)).")
    if args.offset:
        return _numeric_column(table, args.offset, "--offset")
    if args.exposure:
        e = _numeric_column(table, args.exposure, "--exposure")
        if (e <= 0).any():
            bad = int((e <= 0).sum())
            raise CLIError(f"--exposure column {args.exposure!r} has {bad} value(s) <= 0; "
                           "exposure must be positive (its log is the offset).")
        return np.log(e)
    return None


# -- penalties and cross-validation --------------------------------------------------------

def make_penalty(alpha, l1_ratio):
    if alpha is None or (alpha == 0 and l1_ratio in (None, 0)):
        return None
    r = 0.0 if l1_ratio is None else float(l1_ratio)
    if r == 0:
        return lj.penalties.L2(alpha=alpha)
    if r == 1:
        return lj.penalties.L1(alpha=alpha)
    return lj.penalties.ElasticNet(alpha=alpha, l1_ratio=r)


def alpha_grid(X, y, family, l1_ratio, weights=None, offset=None, fit_intercept=True,
               n_alphas=30, ratio=1e-3):
    """A log grid from the smallest alpha that zeroes every coefficient (`linjax.paths`)."""
    return paths.alpha_grid(X, y, family, max(float(l1_ratio or 0.0), 1e-3), n_alphas, ratio,
                            weights, offset, fit_intercept=fit_intercept)


def cv_path(X, y, family, alphas, l1_ratio=1.0, weights=None, offset=None, fit_intercept=True,
            folds=5, seed=0):
    """K-fold CV of the path in one compiled, vmapped call (`linjax.selection.cv_path`).

    Returns (coefs (n_alphas, p) on all data, intercepts (n_alphas,), mean held-out
    deviance (n_alphas,), its standard error (n_alphas,)).
    """
    n = X.shape[0]
    if folds < 2 or folds > n:
        raise CLIError(f"--cv {folds}: the number of folds must be between 2 and the number of "
                       f"rows ({n}).")
    fold = np.random.default_rng(seed).permutation(n) % folds
    cv = selection.cv_path(X, y, family, float(l1_ratio or 0.0), np.asarray(alphas, float),
                           fold, weights=weights, offset=offset, fit_intercept=fit_intercept)
    return np.asarray(cv.path.coef), np.asarray(cv.path.intercept), cv.mean, cv.se


# -- output --------------------------------------------------------------------------------

def _float(x):
    x = float(np.asarray(x))
    return None if not np.isfinite(x) else x


def summary_dict(summary):
    names = list(summary.names)
    params, bse = np.asarray(summary.params), np.asarray(summary.bse)
    stat, pv, ci = np.asarray(summary.statistic), np.asarray(summary.pvalues), \
        np.asarray(summary.conf_int)
    coefficients = {}
    for j, name in enumerate(names):
        row = {"estimate": _float(params[j]), "std_error": _float(bse[j]),
               "statistic": _float(stat[j]), "p_value": _float(pv[j]),
               "conf_low": _float(ci[j, 0]), "conf_high": _float(ci[j, 1])}
        if summary.is_logit:
            row["odds_ratio"] = _float(np.exp(params[j]))
        coefficients[name] = row
    return {
        "family": summary.family_name, "link": summary.link_name,
        "cov_type": summary.cov_type, "statistic": "t" if summary.use_t else "z",
        "names": names, "params": [_float(v) for v in params], "bse": [_float(v) for v in bse],
        "coefficients": coefficients,
        **{k: _float(getattr(summary, k)) for k in ("llf", "deviance", "null_deviance", "aic",
                                                      "bic", "scale", "df_resid", "df_model",
                                                      "nobs")},
        "notes": list(summary.notes),
    }


def summary_csv(summary, stream):
    stat = "t" if summary.use_t else "z"
    writer = csv.writer(stream)
    header = ["term", "estimate", "std_error", f"{stat}_value", "p_value", "conf_low",
              "conf_high"]
    if summary.is_logit:
        header.append("odds_ratio")
    writer.writerow(header)
    ci = np.asarray(summary.conf_int)
    for j, name in enumerate(summary.names):
        row = [name] + [repr(float(np.asarray(a)[j])) for a in
                        (summary.params, summary.bse, summary.statistic, summary.pvalues)]
        row += [repr(float(ci[j, 0])), repr(float(ci[j, 1]))]
        if summary.is_logit:
            row.append(repr(float(np.exp(np.asarray(summary.params)[j]))))
        writer.writerow(row)


# -- subcommands ---------------------------------------------------------------------------

def _family(args):
    try:
        return lj.families.get_family(args.family, link=args.link)
    except ValueError as err:
        raise CLIError(str(err)) from err


def _split(cols):
    return [c.strip() for c in cols.split(",") if c.strip()] if cols else []


def cmd_fit(args):
    table = read_table(args.data)
    extra = [c for c in (args.weights, args.offset, args.exposure) if c]
    if args.formula:
        if args.x or args.y:
            raise CLIError("give either --formula or --y/--x, not both.")
        if args.save:  # what predict would refuse, refused before the fit
            check_safe_formula(parse_formula(args.formula)[2])
        design, table, dropped = formula_design(table, args.formula, extra, args.missing)
    else:
        design, table, dropped = columns_design(table, args.y, _split(args.x), extra,
                                                args.missing, not args.no_intercept)
    family = _family(args)
    weights = _numeric_column(table, args.weights, "--weights") if args.weights else None
    offset = offset_from(table, args)
    if dropped:
        print(f"linjax: dropped {dropped} row(s) with missing values (--missing drop); "
              f"{len(table)} remain.", file=sys.stderr)
    # check the data against the family before any compilation
    _check_finite_features(design, dropped)
    try:
        inputs.fit_inputs(design.X, design.y, family, weights, offset, None,
                              design.fit_intercept)
    except ValueError as err:
        raise CLIError(_data_message(str(err), design)) from err

    cv = None
    alpha, l1_ratio = args.alpha, args.l1_ratio
    if args.cv:
        r = 1.0 if l1_ratio is None else l1_ratio
        alphas = alpha_grid(design.X, design.y, family, r, weights, offset,
                            design.fit_intercept)
        try:
            _, _, mean, se = cv_path(design.X, design.y, family, alphas, r, weights, offset,
                                     design.fit_intercept, folds=args.cv)
        except ValueError as err:
            raise CLIError(f"--cv: {err}") from err
        best = int(np.argmin(mean))
        alpha, l1_ratio = float(alphas[best]), r
        cv = {"folds": args.cv, "l1_ratio": r, "alpha": alpha,
              "alphas": [float(a) for a in alphas], "cv_deviance": [float(m) for m in mean],
              "cv_deviance_se": [float(s) for s in se]}
    penalty = make_penalty(alpha, l1_ratio)
    try:
        result = lj.fit(design.X, design.y, family=family, penalty=penalty, weights=weights,
                        offset=offset, fit_intercept=design.fit_intercept)
    except ValueError as err:
        raise CLIError(_data_message(str(err), design)) from err
    if not bool(np.all(np.asarray(result.converged))):
        print(f"linjax: warning: the fit did not converge: {result.message}", file=sys.stderr)
    try:
        summary = inference.summarize(result, design.X, design.y, family, weights=weights,
                                      offset=offset, cov_type=args.cov_type,
                                      feature_names=design.names)
    except ValueError as err:
        raise CLIError(str(err)) from err

    if args.save:
        _save(args, design, result, family, alpha, l1_ratio)

    if args.format == "json":
        out = summary_dict(summary)
        out.update({"data": str(args.data), "rows_used": len(table), "rows_dropped": dropped,
                    "formula": args.formula, "penalty": {"alpha": alpha, "l1_ratio": l1_ratio}
                    if penalty is not None else None, "converged": bool(
                        np.all(np.asarray(result.converged))), "n_iter": int(result.n_iter)})
        if cv is not None:
            out["cv"] = cv
        if args.save:
            out["saved"] = str(args.save)
        json.dump(out, sys.stdout, indent=2)
        print()
    elif args.format == "csv":
        summary_csv(summary, sys.stdout)
    else:
        what = args.formula or f"{args.y} ~ {' + '.join(_split(args.x)) or '1'}"
        print(f"Model: {what}")
        print(f"Data: {args.data} ({len(table)} rows used"
              f"{f', {dropped} dropped for missing values' if dropped else ''})")
        if offset is not None:
            print(f"Offset: {'log(' + args.exposure + ')' if args.exposure else args.offset}")
        if penalty is not None:
            print(f"Penalty: {type(penalty).__name__}(alpha={alpha:.6g}"
                  f"{f', l1_ratio={l1_ratio:g}' if l1_ratio not in (None, 0, 1) else ''})")
        if cv is not None:
            print(f"Alpha chosen by {cv['folds']}-fold cross-validation (held-out deviance) "
                  f"over {len(cv['alphas'])} values from {cv['alphas'][0]:.4g} to "
                  f"{cv['alphas'][-1]:.4g}. The penalty applies to the columns as given: "
                  "standardize them for a scale-free penalty.")
        print()
        print(summary)
        if args.save:
            print(f"\nSaved the model to {args.save}")
    return EXIT_OK


def _data_message(message, design):
    # linjax names arrays "y", "X", "weights", "offset"; say which column that is
    if message.startswith("y:") and design.spec.get("outcome"):
        return f"outcome {design.spec['outcome']!r}: {message[2:].strip()}"
    return message


def _save(args, design, result, family, alpha, l1_ratio):
    meta = dict(design.spec)
    if "formula" in meta:
        _, _, rhs = parse_formula(meta["formula"])
        check_safe_formula(rhs)
        try:
            to_jsonable(meta["transform_state"])
            to_jsonable(meta.get("levels"))
        except TypeError as err:
            raise CLIError(f"--save: the formula uses a transform whose state cannot be saved "
                           f"as JSON ({err}).") from err
    link = family.link
    meta.update({
        "names": design.names, "fit_intercept": design.fit_intercept,
        "family": {"name": family.name,
                   "params": {k: float(np.asarray(getattr(family, k))) for k in
                              ("alpha", "power") if getattr(family, k, None) is not None}},
        "link": {"name": link.name, "params": {k: float(np.asarray(getattr(link, k))) for k in
                                               ("power",) if getattr(link, k, None) is not None}},
        "offset": args.offset, "exposure": args.exposure,
        "penalty": None if alpha is None else {"alpha": alpha, "l1_ratio": l1_ratio},
        "linjax_version": __import__("linjax").__version__,
    })
    coef, intercept = np.asarray(result.params["coef"]), np.asarray(result.params["intercept"])
    undefined = ~np.isfinite(coef)
    if undefined.any():
        # aliased columns (R's NA coefficients) contribute nothing to a prediction: stored
        # as 0 and listed; any other non-finite coefficient means the fit failed
        aliased = getattr(result, "aliased", None)
        if aliased is None or np.shape(aliased) != coef.shape or \
                (undefined & ~np.asarray(aliased, bool)).any():
            raise CLIError(f"--save: the fit has non-finite coefficients ({result.message}); "
                           "a model file holds finite ones.")
        meta["aliased"] = [design.names[j] for j in np.flatnonzero(undefined.reshape(
            coef.shape[0], -1).any(axis=1))]
        coef = np.where(undefined, 0.0, coef)
    try:
        save_model(args.save, meta, coef, intercept)
    except OSError as err:
        raise CLIError(f"--save: could not write {args.save}: {err}") from err


def _rebuild_family(meta):
    fam, link = meta["family"], meta["link"]
    if link["name"] == "power":
        link_obj = lj.links.Power(**link["params"])
    else:
        link_obj = lj.links.get_link(link["name"])
    return lj.families.get_family(fam["name"], link=link_obj, **fam["params"])


def _missing_rows(table, columns, mode):
    """Rows with a missing value in `columns`: refused (mode 'refuse') or returned (a mask)."""
    columns = list(dict.fromkeys(columns))
    rows = table[columns].isna().any(axis=1).to_numpy()
    if rows.any() and mode != "drop":
        _handle_missing(table, columns, mode)  # raises, counting them per column
    return rows


def predict_design(meta, table, missing):
    """The design of a saved model on new data (categorical levels enforced).

    Returns (X, table, missing): X and table hold the rows without missing values in
    the columns the model uses; `missing` marks the others (only with --missing drop).
    """
    extra = [c for c in (meta.get("offset"), meta.get("exposure")) if c]
    if "formula" not in meta:
        cols = list(meta["x"])
        _check_columns(table, cols + extra)
        rows = _missing_rows(table, cols + extra, missing)
        table = table.loc[~rows].reset_index(drop=True)
        for c in cols:
            _numeric_column(table, c, "feature")
        X = np.column_stack([table[c].to_numpy(dtype=float) for c in cols]) if cols else \
            np.zeros((len(table), 0))
        return X, table, rows
    pd = _require_pandas("predict")
    formulaic = _require_formulaic()
    _, _, rhs = parse_formula(meta["formula"])
    check_safe_formula(rhs)
    used = sorted(rhs.required_variables)
    _check_columns(table, used + extra)
    rows = _missing_rows(table, used + extra, missing)
    table = table.loc[~rows].reset_index(drop=True)
    levels = meta.get("levels", {})
    _check_design_width(rhs, levels, len(meta["design_columns"]))
    for col, known in levels.items():
        if col not in table.columns:
            continue
        values, known_set = table[col], set(known)
        unseen = sorted({v for v in values.tolist() if v not in known_set}, key=str)
        if unseen:
            raise CLIError(f"column {col!r} has level(s) {', '.join(map(repr, unseen[:10]))} "
                           f"that the model never saw; it knows {known[:20]}.")
        table[col] = pd.Categorical(values, categories=known)
    if meta.get("blocks") is not None:  # lj.glm's split: dense terms and categorical blocks
        p = len(meta["names"])
        return _blocks_design(meta, levels, table) if len(table) else np.zeros((0, p)), \
            table, rows
    p = len(meta["design_columns"]) - bool(meta["fit_intercept"])
    if len(table) == 0:
        return np.zeros((0, p)), table, rows
    spec = formulaic.ModelSpec(formula=rhs, ensure_full_rank=meta.get("ensure_full_rank", True),
                               transform_state=meta.get("transform_state") or {})
    try:
        frame = spec.get_model_matrix(table, na_action="raise")
    except Exception as err:  # formulaic wraps what the transforms raise, not always
        raise CLIError(f"could not apply the model's formula to the data: "
                       f"{first_line(err)}") from err
    columns = [str(c) for c in frame.columns]
    if columns != list(meta["design_columns"]):
        raise CLIError(f"the new data gives the design columns {columns[:20]}, but the model "
                       f"was fitted with {meta['design_columns'][:20]}.")
    keep = [c for c in frame.columns if str(c) != "Intercept"]
    return np.asarray(frame[keep], dtype=float), table, rows


def _blocks_design(meta, levels, table):
    """The design of new rows for a model fitted by `lj.glm`'s path (`meta["blocks"]`):
    formulaic's dense terms with their saved state, a categorical block per C() column;
    a level the model never saw is refused naming column and level."""
    blocks = meta["blocks"]

    def known(column):
        if column not in levels:
            raise CLIError(f"MODEL: model.json: 'levels' has no entry for column {column!r}, "
                           "which the formula's blocks name; the file was tampered with.")
        return levels[column]

    dense = blocks["dense"]
    state = {"formula": meta["formula"], "names": meta["names"],
             "fit_intercept": meta["fit_intercept"], "dense": None if dense is None else {
                 "formula": dense["formula"], "names": dense["names"],
                 "ensure_full_rank": meta.get("ensure_full_rank", True),
                 "transform_state": meta.get("transform_state") or {},
                 "levels": {key: known(column) for key, column in dense["factors"].items()}},
             "categorical": [{"columns": [[c["column"], known(c["column"])]],
                              "drop_first": c["drop_first"]} for c in blocks["categorical"]]}
    try:
        return formula_module.FormulaFit.from_state(None, None, state).design(table)
    except FormulaError:
        raise
    except ValueError as err:  # unseen levels, a formula that does not match the file
        raise CLIError(str(err).replace("X: column", "column")) from err
    except Exception as err:  # formulaic wraps what the transforms raise, not always
        raise CLIError(f"could not apply the model's formula to the data: "
                       f"{first_line(err)}") from err


def _check_design_width(rhs, levels, expected):
    """Refuse, before materializing it, a design far wider than the model's columns.

    Each term is at most the product of its categorical factors' level counts (and
    the size of a basis function); a saved file whose levels would make the design
    many times wider than its own list of columns was tampered with.
    """
    bound = 0
    for term in rhs:
        width = 1
        for factor in term.factors:
            expr = factor.expr
            try:
                node = ast.parse(expr, mode="eval").body
            except SyntaxError:
                node = None
            name = expr
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in BASIS_FUNCTIONS:
                    width *= _basis_width(node)
                if node.func.id == "C" and node.args and isinstance(node.args[0], ast.Name):
                    name = node.args[0].id
            width *= len(levels.get(name, ())) or 1
        bound += width
    if bound > 4 * expected + 4 * MAX_BASIS:
        raise CLIError(f"the model's formula and levels describe up to {bound} design columns, "
                       f"but the model lists {expected}; the model file was tampered with.")


def _basis_width(call):
    """At most how many columns poly / bs / cr / cs make, from their (checked) literals."""
    sizes, knots = [3], 0
    for value in call.args[1:] + [k.value for k in call.keywords if k.arg in
                                  BASIS_SIZE_ARGS]:
        if isinstance(value, ast.List | ast.Tuple):
            knots += len(value.elts)
        elif isinstance(value, ast.Constant) and isinstance(value.value, int | float):
            sizes.append(int(value.value))
    return max(sizes) + knots + 1


def cmd_predict(args):
    if not pathlib.Path(args.model).is_file():
        raise CLIError(f"MODEL: no such file: {args.model}")
    try:
        meta, coef, intercept = load_model(args.model)
        family = _rebuild_family(meta)
    except FileNotFoundError as err:
        raise CLIError(f"MODEL: no such file: {args.model}") from err
    except (ModelFileError, KeyError, TypeError, ValueError) as err:
        raise CLIError(f"MODEL: {args.model} cannot be used: {err}") from err
    table = read_table(args.data)
    X, table, missing = predict_design(meta, table, args.missing)
    if X.shape[1] != coef.shape[0]:
        raise CLIError(f"the data gives {X.shape[1]} features, the model has {coef.shape[0]}.")

    class _A:
        offset, exposure = meta.get("offset"), meta.get("exposure")

    offset = offset_from(table, _A)
    params = {"coef": np.asarray(coef, float), "intercept": np.asarray(intercept, float)}
    pred = np.full((len(missing),) + coef.shape[1:], np.nan)
    if len(table):
        if args.type == "link":
            pred[~missing] = np.asarray(lj.linear_predictor(params, X, offset=offset))
        else:
            pred[~missing] = np.asarray(lj.predict(params, X, family, offset=offset))
    if missing.any():
        print(f"linjax: {int(missing.sum())} row(s) with missing values get NA (--missing "
              "drop); there is still one output row per input row.", file=sys.stderr)
    lines = ["prediction"] + ["NA" if skip else repr(float(v))
                              for v, skip in zip(pred, missing, strict=True)]
    text = "\n".join(lines) + "\n"
    if args.out:
        try:
            pathlib.Path(args.out).write_text(text)
        except OSError as err:
            raise CLIError(f"--out: could not write {args.out}: {err}") from err
        print(f"linjax: wrote {len(pred)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_info(args, cache_dir):
    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    print(f"linjax     {lj.__version__}")
    print(f"python     {platform.python_version()} ({sys.executable})")
    for name in ("jax", "jaxlib", "numpy", "optax", "scipy", "pandas", "formulaic", "pyarrow",
                 "matplotlib", "scikit-learn", "statsmodels"):
        print(f"{name:<10} {version(name)}")
    print(f"backend    {jax.default_backend()}")
    for d in jax.devices():
        print(f"device     {d.id}: {d.platform.upper()} {getattr(d, 'device_kind', '')}".rstrip())
    print(f"float64    {'on' if jax.config.jax_enable_x64 else 'off'} (the command line turns "
          "it on; the library follows jax_enable_x64)")
    print(f"cache      {cache_dir or f'off (unset {CACHE_ENV} to enable)'}")
    return EXIT_OK


def cmd_demo(args):
    figure = None if args.no_figure else args.figure
    demo.run(figure=figure)
    return EXIT_OK


# -- argument parsing ----------------------------------------------------------------------

FIT_EXAMPLES = """examples:
  linjax fit shops.csv --formula "revenue ~ foot_traffic + income + C(region)"
  linjax fit shops.csv --formula "complaints ~ foot_traffic + seats" \\
      --family poisson --exposure months_open --format json
  linjax fit shops.csv --formula "survived ~ revenue + rent" --family binomial --cov-type HC1
  linjax fit shops.csv --formula "revenue ~ foot_traffic + rent" --alpha 0.1 --l1-ratio 1
  linjax fit shops.csv --formula "revenue ~ foot_traffic + seats" --cv 5    (alpha by CV)
  linjax fit shops.csv --y revenue --x foot_traffic,income                  (no formulaic)
  linjax fit shops.csv --formula "complaints ~ seats" --family poisson --save m.linjax
"""

MAIN_EXAMPLES = """examples:
  linjax demo                                    a tour on bundled data
  linjax fit data.csv --formula "y ~ x1 + C(g)" --family poisson --exposure time
  linjax predict model.linjax new.csv --out predictions.csv
  linjax info                                    versions, devices, float64

Exit codes: 0 success, 2 a usage or data problem, 1 an internal error.
Set LINJAX_COMPILATION_CACHE=off to disable the compilation cache (or to a directory
to move it; default: the user cache directory).
"""


def build_parser():
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="linjax", formatter_class=fmt, epilog=MAIN_EXAMPLES,
        description="Generalized linear models in JAX: fit a model to a CSV or Parquet file "
                    "and print R-style tables, or run the demo.")
    parser.add_argument("--version", action="version",
                        version=f"linjax {__import__('linjax').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", formatter_class=fmt, help="tour of linjax on bundled data",
                          description="OLS, a lasso path with alpha chosen by cross-validation, "
                                      "a logistic regression with odds ratios and a Poisson "
                                      "model with exposure, on the bundled coffee-shop data.",
                          epilog="example:\n  linjax demo\n  linjax demo --figure /tmp/demo.png")
    demo.add_argument("--figure", default="linjax-demo.png", metavar="PNG",
                      help="where to save the figure (needs matplotlib; default: %(default)s)")
    demo.add_argument("--no-figure", action="store_true", help="do not draw the figure")

    fit = sub.add_parser("fit", formatter_class=fmt, epilog=FIT_EXAMPLES,
                         help="fit a GLM to a data file and print its summary",
                         description="Fit a generalized linear model to a CSV or Parquet file "
                                     "and print the coefficient table (R's summary.glm).")
    fit.add_argument("data", metavar="DATA", help="CSV (.csv, .tsv) or Parquet (.parquet) file")
    fit.add_argument("--formula", "-f", help='model formula, e.g. "y ~ x1 + np.log(x2) + C(g)" '
                                             "(needs formulaic: pip install 'linjax[formula]')")
    fit.add_argument("--y", metavar="COL", help="outcome column (instead of --formula)")
    fit.add_argument("--x", metavar="COLS", help="comma-separated numeric feature columns "
                                                 "(instead of --formula)")
    fit.add_argument("--no-intercept", action="store_true",
                     help="with --x: no intercept (in a formula write '- 1')")
    fit.add_argument("--family", default="gaussian",
                     help="gaussian, binomial, poisson, gamma, inverse_gaussian, "
                          "negative_binomial, tweedie (default: %(default)s)")
    fit.add_argument("--link", help="link (default: the family's canonical link), e.g. log, "
                                    "logit, probit, cloglog, identity, inverse")
    fit.add_argument("--weights", metavar="COL", help="column of sample weights (binomial: "
                                                      "number of trials)")
    fit.add_argument("--offset", metavar="COL", help="column added to the linear predictor")
    fit.add_argument("--exposure", metavar="COL",
                     help="column of positive exposures; log(exposure) is the offset")
    fit.add_argument("--alpha", type=float, help="penalty strength (default: no penalty)")
    fit.add_argument("--l1-ratio", type=float, dest="l1_ratio",
                     help="0 ridge (default), 1 lasso, between: elastic net")
    fit.add_argument("--cv", type=int, metavar="K",
                     help="choose --alpha by K-fold cross-validation (held-out deviance) over "
                          "a 30-value path; lasso unless --l1-ratio is given")
    fit.add_argument("--cov-type", default="nonrobust", dest="cov_type",
                     choices=["nonrobust", "HC0", "HC1", "HC2", "HC3"],
                     help="covariance of the estimates (default: %(default)s)")
    fit.add_argument("--missing", choices=["refuse", "drop"], default="refuse",
                     help="rows with missing values: refuse (default) or drop them")
    fit.add_argument("--format", choices=["table", "json", "csv"], default="table",
                     help="output format (default: %(default)s)")
    fit.add_argument("--save", metavar="MODEL", help="save the fitted model (zip of arrays and "
                                                     "JSON) for `linjax predict`")

    pred = sub.add_parser("predict", formatter_class=fmt, help="predict with a saved model",
                          description="Apply a model saved by `linjax fit --save` to new data: "
                                      "the formula, categorical levels and offset/exposure "
                                      "column travel with the model. Prints one column, "
                                      "'prediction' (the mean), as CSV.",
                          epilog="examples:\n  linjax predict m.linjax new.csv\n"
                                 "  linjax predict m.linjax new.parquet --out pred.csv")
    pred.add_argument("model", metavar="MODEL", help="file written by `linjax fit --save`")
    pred.add_argument("data", metavar="DATA", help="CSV or Parquet file with the model's columns")
    pred.add_argument("--out", metavar="FILE", help="write the CSV here instead of stdout")
    pred.add_argument("--type", choices=["mean", "link"], default="mean",
                      help="the mean (default) or the linear predictor")
    pred.add_argument("--missing", choices=["refuse", "drop"], default="refuse",
                      help="rows with missing values: refuse (default), or drop them from the "
                           "computation and print NA in their place (one output row per "
                           "input row, as R's predict)")

    sub.add_parser("info", help="versions, devices, float64 and the compilation cache",
                   description="Print versions, devices (CPU/GPU), whether float64 is on and "
                               "where compiled programs are cached.")
    return parser


def main(argv=None):
    """Entry point of the `linjax` script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        cache_dir = setup_jax()
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "fit":
            return cmd_fit(args)
        if args.command == "predict":
            return cmd_predict(args)
        return cmd_info(args, cache_dir)
    except (CLIError, FormulaError) as err:  # FormulaError: a formula refused unevaluated
        message = " ".join(clean_message(err).split())  # one line, whatever a library said
        print(f"linjax {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("linjax: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # a bug: show it

        traceback.print_exc()
        print(f"linjax {args.command}: internal error (a bug in linjax); please report it with "
              "the traceback above.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
