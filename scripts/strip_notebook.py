"""Clear notebook outputs, execution counts and run metadata, so notebooks are committed without results.

python scripts/strip_notebook.py notebooks/*.ipynb           # strip in place
python scripts/strip_notebook.py --check notebooks/*.ipynb   # exit 1 if one would change
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

KEPT_CELL_METADATA = ("tags",)  # e.g. the `parameters` tag


def strip(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without outputs, execution counts, timings or interpreter details."""
    stripped = nbformat.from_dict(notebook)
    for cell in stripped.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    kernelspec = stripped.metadata.get("kernelspec")
    stripped.metadata = {"language_info": {"name": "python"}}
    if kernelspec:
        stripped.metadata["kernelspec"] = kernelspec
    return stripped


def has_outputs(notebook: nbformat.NotebookNode) -> bool:
    return any(cell.get("outputs") or cell.get("execution_count") for cell in notebook.cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report notebooks that are not stripped")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        stripped = strip(notebook)
        if stripped == notebook:
            continue
        dirty.append(path)
        if not args.check:
            nbformat.write(stripped, path)
    for path in dirty:
        print(f"{path}: {'has outputs or run metadata' if args.check else 'stripped'}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
