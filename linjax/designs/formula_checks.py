"""Checks on a formula before formulaic expands or evaluates it (shared by `lj.glm`'s saved
fits in `linjax.io` and the command line's model files, whose formulas are untrusted).

- `check_formula_bounds(text)`: refuse a formula whose expansion or evaluation could not
  finish quickly (`(a+b)**20`, `I(9**9**9**9)`, huge bases);
- `check_safe_formula(rhs)`: refuse a Python term that could do more than arithmetic on
  columns (only column names, numbers, arithmetic, SAFE_FUNCTIONS and np.SAFE_NUMPY).

Both raise `FormulaError` (a ValueError) saying what was refused. formulaic is imported
only inside the functions that need it.
"""

import ast
import math
import operator
import re


class FormulaError(ValueError):
    """A formula refused before it is expanded or evaluated (the message says why)."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: functions a saved formula may call (checked before `predict` evaluates it)
SAFE_FUNCTIONS = {"C", "I", "center", "scale", "standardize", "poly", "bs", "cr", "cs", "log",
                  "log1p", "log2", "log10", "exp", "sqrt", "abs", "Q", "lag"}
SAFE_NUMPY = {"log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs", "square",
              "power", "clip", "minimum", "maximum", "floor", "ceil", "round", "sin", "cos",
              "tanh", "arcsinh", "cbrt", "sign", "where", "pi", "e"}
_SAFE_NODES = (ast.Expression, ast.Name, ast.Load, ast.Call, ast.Attribute, ast.Constant,
               ast.BinOp, ast.UnaryOp, ast.keyword, ast.List, ast.Tuple, ast.Compare,
               ast.operator, ast.unaryop, ast.cmpop)


def clean_message(message):
    return _ANSI.sub("", str(message)).replace("⧛", "").replace("⧚", "")


def first_line(err):
    """formulaic's message without its colour codes and the formula it repeats below."""
    lines = [line.strip() for line in clean_message(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


# -- bounds on what evaluating a formula may cost ----------------------------------------------
#
# formulaic expands `(a + b + c)**3` and `a*b*c` into their terms, and evaluates Python
# terms such as `I(x**2)` with `eval`. A formula read from a model file is untrusted, and
# a typed one may be a mistake: `(a+b)**20` or `I(9**9**9**9)` would run for hours. Both
# are refused, before anything is expanded or evaluated, by the checks below.

MAX_FORMULA_CHARS = 10_000
#: bound on the terms formulaic forms while expanding (a**e forms a**e products)
MAX_FORMULA_WORK = 10_000
MAX_FACTOR_NODES = 300
MAX_FACTOR_DEPTH = 40
#: Python integers in a term are exact: arithmetic on constants may not exceed this size
MAX_INT_BITS = 4096
#: degree / df / number of knots of poly, bs, cr, cs
MAX_BASIS = 50
BASIS_FUNCTIONS = {"poly", "bs", "cr", "cs"}
BASIS_SIZE_ARGS = {"degree", "df", "knots"}


def check_formula_bounds(text, what="--formula"):
    """Refuse a formula whose expansion or evaluation could not finish quickly.

    Bounds the text's length, the terms formulaic forms while expanding it (`**`
    exponents must be whole numbers, a**e products at most MAX_FORMULA_WORK), and,
    for every Python term, its size, its constant arithmetic and its basis sizes
    (`check_python_bounds`). Messages start with `what` (the argument that held it).
    """
    from formulaic.errors import FormulaicError
    from formulaic.parser import DefaultFormulaParser
    from formulaic.parser.types import ASTNode, Token

    if len(text) > MAX_FORMULA_CHARS:
        raise FormulaError(f"{what}: {len(text)} characters, more than the "
                       f"{MAX_FORMULA_CHARS} a formula may have.")
    try:
        tree = DefaultFormulaParser().get_ast(text)
    except FormulaicError as err:
        raise FormulaError(f"{what} {text!r:.200} does not parse: {first_line(err)}") from err
    except Exception as err:  # the tokenizer lets Python's SyntaxError and others through
        raise FormulaError(f"{what} {text!r:.200} does not parse: {first_line(err)}") from err
    order, stack = [], [tree]
    while stack:  # iterative: a long formula is a deep tree
        node = stack.pop()
        order.append(node)
        if isinstance(node, ASTNode):
            stack.extend(node.args)
    cap = MAX_FORMULA_WORK + 1
    work = {}
    for node in reversed(order):
        if isinstance(node, Token):
            if node.kind is Token.Kind.PYTHON:
                check_python_bounds(str(node.token))
            work[id(node)] = 1
            continue
        if not isinstance(node, ASTNode):
            work[id(node)] = 1
            continue
        args = [work[id(a)] for a in node.args]
        op = node.operator.symbol
        if op in ("**", "^") and len(args) == 2:
            base, exponent = args[0], _formula_exponent(node, text, what)
            value = base ** exponent if exponent * math.log2(max(base, 1)) < 64 else cap
        elif op == "*" and len(args) == 2:
            value = args[0] + args[1] + args[0] * args[1]
        elif op in (":", "in") and len(args) == 2:
            value = args[0] * args[1]
        elif op == "/" and len(args) == 2:
            value = args[0] + args[1] + args[0] * args[1]
        else:
            value = sum(args) or 1
        work[id(node)] = min(value, cap)
        if value >= cap:
            raise FormulaError(f"{what} {text!r:.200}: expanding it forms more than "
                           f"{MAX_FORMULA_WORK} terms; write the terms out or lower the "
                           "power of the interactions.")


def _formula_exponent(node, text, what):
    """The exponent of a formula's `(...)**e`: a whole number from 1 to 99."""
    from formulaic.parser.types import Token

    right = node.args[1]
    value = str(right.token) if isinstance(right, Token) else ""
    if not (value.isdigit() and 1 <= int(value) <= 99):
        raise FormulaError(f"{what} {text!r:.200}: the power '{node.operator.symbol}"
                       f"{value or '...'}' must be a whole number from 1 to 99.")
    return int(value)


def check_python_bounds(expr):
    """Refuse a Python term that could run or allocate without bound when evaluated.

    Bounded: its size (MAX_FACTOR_NODES nodes, MAX_FACTOR_DEPTH deep); exact integer
    arithmetic on constants (`9**9**9**9`, `1 << 10**9`: Python computes those exactly,
    for hours), which is folded here on the sizes of its operands and refused past
    MAX_INT_BITS; arithmetic on strings and lists (`[0] * 10**9`); and the degree, df
    and knots of poly / bs / cr / cs (at most MAX_BASIS). Arithmetic involving a column
    is numpy's, fixed-size per row, and needs no bound.
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise FormulaError(f"formula term {expr!r:.80} is not a plain expression; refusing to "
                       "evaluate it.") from err
    count, stack = 0, [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_FACTOR_NODES or depth > MAX_FACTOR_DEPTH:
            raise FormulaError(f"formula term {expr!r:.80} is too large (more than "
                           f"{MAX_FACTOR_NODES} parts or {MAX_FACTOR_DEPTH} levels deep).")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    _fold(tree.body, expr)


class _Int(int):
    """An exact Python integer that evaluating a term would compute."""


_NUMBER = object()  # a float, numpy scalar, column or call result: fixed size per row
_SEQUENCE = object()  # a string, bytes, list or tuple literal


def _too_large(node, expr):
    return FormulaError(f"formula term {expr!r:.80}: the constant {ast.unparse(node)[:60]!r} "
                    f"exceeds {MAX_INT_BITS} bits; Python would compute it exactly, without "
                    "end. Write the number as a float (e.g. 1e300) or leave it out.")


_INT_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
            ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
            ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
            ast.BitXor: operator.xor, ast.BitAnd: operator.and_, ast.Div: operator.truediv}


def _int_result_bits(op, a, b):
    """An upper bound on the bits of `a op b` for Python integers (None: not an integer)."""
    la, lb = a.bit_length(), b.bit_length()
    if isinstance(op, ast.Pow):
        return None if b < 0 else la * b
    if isinstance(op, ast.LShift):
        return la + max(b, 0)
    if isinstance(op, ast.Mult):
        return la + lb
    if isinstance(op, ast.Add | ast.Sub | ast.BitOr | ast.BitXor | ast.BitAnd):
        return max(la, lb) + 1
    if isinstance(op, ast.FloorDiv | ast.Mod | ast.RShift):
        return max(la, lb)
    return None  # true division, matrix product: a float or an error


def _fold(node, expr):
    """The kind of value `node` evaluates to (an exact `_Int`, _NUMBER or _SEQUENCE),
    refusing what would not finish; every sub-expression is checked."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool | int):
            if v.bit_length() > MAX_INT_BITS:
                raise _too_large(node, expr)
            return _Int(v)
        return _SEQUENCE if isinstance(v, str | bytes) else _NUMBER
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        for element in node.elts:
            _fold(element, expr)
        return _SEQUENCE
    if isinstance(node, ast.UnaryOp):
        v = _fold(node.operand, expr)
        if isinstance(v, _Int):
            op = {ast.USub: lambda x: -x, ast.UAdd: lambda x: x, ast.Invert: lambda x: ~x,
                  ast.Not: lambda x: not x}[type(node.op)]
            return _Int(op(v))
        return v
    if isinstance(node, ast.BinOp):
        a, b = _fold(node.left, expr), _fold(node.right, expr)
        if a is _SEQUENCE or b is _SEQUENCE:
            raise FormulaError(f"formula term {expr!r:.80}: arithmetic on a string or list "
                           f"({ast.unparse(node)[:60]!r}) is not allowed in a formula.")
        if not (isinstance(a, _Int) and isinstance(b, _Int)):
            return _NUMBER
        bits = _int_result_bits(node.op, a, b)
        if bits is not None and bits > MAX_INT_BITS:
            raise _too_large(node, expr)
        try:
            value = _INT_OPS[type(node.op)](int(a), int(b))
        except (ArithmeticError, ValueError, KeyError):
            return _NUMBER  # division by zero, negative shift: evaluation reports it
        return _Int(value) if isinstance(value, int) else _NUMBER
    if isinstance(node, ast.Call):
        args = [_fold(a, expr) for a in node.args]
        args += [_fold(keyword.value, expr) for keyword in node.keywords]
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in BASIS_FUNCTIONS:
            _check_basis_size(node, expr)
        _fold(node.func, expr)
        # A call may hand a Python integer argument back (I(9), C(9), abs(-9)), and
        # `C(9) ** 9**9` is then Python's exact power: assume the largest one comes back.
        ints = [abs(int(a)) for a in args if isinstance(a, _Int)]
        if name == "I" and len(args) == 1 and not node.keywords:
            return args[0]
        return _Int(max(ints)) if ints else _NUMBER
    if isinstance(node, ast.Compare):
        for part in (node.left, *node.comparators):
            _fold(part, expr)
        return _NUMBER
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            _fold(child, expr)
    # anything else ([9][0], 9 if c else 0, ...) may yield any integer written inside it
    ints = [abs(n.value) for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, int)]
    return _Int(max(ints)) if ints else _NUMBER


def _check_basis_size(call, expr):
    """poly / bs / cr / cs: degree, df and knots are literals of at most MAX_BASIS."""
    named = [(k.arg, k.value) for k in call.keywords if k.arg in BASIS_SIZE_ARGS]
    for arg, value in [(None, a) for a in call.args[1:]] + named:
        if isinstance(value, ast.Constant) and value.value is None:
            continue
        if isinstance(value, ast.List | ast.Tuple):
            ok = len(value.elts) <= MAX_BASIS and all(
                isinstance(e, ast.Constant | ast.UnaryOp) for e in value.elts)
        else:
            try:
                number = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                number = None
            ok = isinstance(number, int | float) and not isinstance(number, bool) and \
                0 <= number <= MAX_BASIS
        if not ok:
            raise FormulaError(f"formula term {expr!r:.80}: {arg or 'the degree / df'} of "
                           f"{call.func.id}() must be a number from 0 to {MAX_BASIS} (or a "
                           f"list of at most {MAX_BASIS} knots).")


def factors(side):
    for term in side:
        yield from term.factors


def check_safe_formula(rhs):
    """Refuse a formula whose Python factors could do more than arithmetic on columns."""
    for factor in factors(rhs):
        if getattr(factor.eval_method, "value", "") != "python":
            continue
        try:
            tree = ast.parse(factor.expr, mode="eval")
        except SyntaxError as err:
            raise FormulaError(f"formula term {factor.expr!r} is not a plain expression; refusing "
                           "to evaluate it.") from err
        for node in ast.walk(tree):
            bad = not isinstance(node, _SAFE_NODES)
            if isinstance(node, ast.Name) and node.id.startswith("_"):
                bad = True
            if isinstance(node, ast.Attribute):
                bad = bad or not (isinstance(node.value, ast.Name) and node.value.id in
                                  ("np", "numpy") and node.attr in SAFE_NUMPY)
            if isinstance(node, ast.Call):
                f = node.func
                bad = bad or not ((isinstance(f, ast.Name) and f.id in SAFE_FUNCTIONS)
                                  or isinstance(f, ast.Attribute))
            if bad:
                raise FormulaError(
                    f"formula term {factor.expr!r} uses {ast.dump(node)[:60]}, which a saved "
                    "model may not evaluate (allowed: column names, numbers, arithmetic, "
                    f"{', '.join(sorted(SAFE_FUNCTIONS))}, np.log ...).")
