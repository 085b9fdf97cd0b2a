"""Build the teaching notebooks from their sources in `notebooks/src/`.

Each source is a plain Python file in the "percent" format (as jupytext and VS Code
read it): `# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines
are comments (`# ` is stripped). The sources run as scripts too
(`python notebooks/src/01_least_squares.py`), which is the quick way to time them.

    python notebooks/build.py            # write notebooks/*.ipynb (outputs empty)
    python notebooks/build.py --check    # exit 1 if a notebook is out of date

The committed `.ipynb` files are what CI executes (tests/test_notebooks.py).
"""

import pathlib
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = HERE / "src"

METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _strip_blank(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _markdown_line(line):
    if line.startswith("# "):
        return line[2:]
    if line.startswith("#"):
        return line[1:]
    return line


def parse(text):
    """Cells of a percent-format source: a list of (kind, source) pairs."""
    cells, kind, lines = [], None, []

    def flush():
        body = _strip_blank(lines)
        if kind is not None and body:
            if kind == "markdown":
                body = [_markdown_line(line) for line in body]
            cells.append((kind, "\n".join(body)))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def notebook(source_path):
    """An nbformat v4 notebook (no outputs) from one source file."""
    nb = nbformat.v4.new_notebook(metadata=METADATA)
    for kind, text in parse(source_path.read_text()):
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(text))
    for i, cell in enumerate(nb.cells):  # stable ids keep rebuilds byte-identical
        cell["id"] = f"{source_path.stem[:2]}-{i:03d}"
    return nb


def render(nb):
    return nbformat.writes(nb) + "\n"


def targets():
    """(source, notebook path) pairs."""
    return [(src, HERE / f"{src.stem}.ipynb") for src in sorted(SOURCES.glob("[0-9]*.py"))]


def main(argv):
    check = "--check" in argv
    stale = []
    for src, dst in targets():
        text = render(notebook(src))
        if check:
            if not dst.exists() or dst.read_text() != text:
                stale.append(dst.name)
        else:
            dst.write_text(text)
            print(f"wrote {dst.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run python notebooks/build.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
