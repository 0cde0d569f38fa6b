"""Sphinx configuration of the metatrain-mbe documentation.

Build (warnings are errors), from the repository root::

    python -m sphinx -W -b html docs docs/_build/html

The narrative pages are the Markdown files of this folder (myst-parser), the
API reference comes from the docstrings (autodoc, :ref:`api`), and the gallery
(sphinx-gallery) executes the scripts of ``examples/`` on the shipped data.
``-D plot_gallery=0`` builds without executing them (a quick check of the
pages; the examples then have no output).

What is generated or adapted here rather than written by hand:

* the API pages (:class:`LayerAPI`): every public module, i.e. every module with
  ``__all__``, with its ``__all__`` members, each object documented once, in the
  shortest module that exports it;
* the option tables of ``training.md``, ``analysis.md`` and ``study.md``
  (:func:`current_options_tables`): replaced at build time by
  :func:`metatrain_mbe.interface.options.options_table` of the options model, so
  that the built pages show the declarations themselves; a table in the
  Markdown that is out of date is a warning (an error with ``-W``), as it is a
  failure of ``tests/interface/test_options.py``;
* the docstrings' plain-text conventions, read as reST: ``|x|`` (an absolute
  value or a size) escaped (:func:`escape_bars`), and a relative target such as
  ``:mod:`.screening``` resolved from the docstring's package, as Python
  resolves a relative import (:func:`canonical_references`);
* the gallery's working folder (``docs/_build/gallery-work``, removed at the
  start of each build that executes the examples), given to the examples in
  ``MBE_EXAMPLES_DIR``, so that they never write into ``data/`` or
  ``options/`` and the export example reuses the model the training example
  trained.

No warning is suppressed (``suppress_warnings`` is not set) and ``nitpicky`` is
off: a reference Sphinx cannot resolve (torch, ase, metatensor types; there is
no network for intersphinx) stays plain text.
"""

from __future__ import annotations

import importlib
import logging as logging_module
import os
import pkgutil
import re
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import metatrain_mbe

# the examples train and evaluate on one core, as the tests do
os.environ.setdefault("OMP_NUM_THREADS", "1")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
LOGGER = logging.getLogger(__name__)

project = "metatrain-mbe"
author = "the metatrain-mbe developers"
copyright = "the metatrain-mbe developers"  # noqa: A001
version = release = metatrain_mbe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []

# Markdown: the pages link each other as `[x](page.md#heading)`, which GitHub
# renders too; myst resolves the heading slugs (GitHub's) down to level 3.
myst_heading_anchors = 3

# autodoc: members in source order, type hints in the signature (where the
# docstrings' :param: fields do not repeat them). Unresolved cross-references
# (e.g. to torch or ase types, which have no inventory offline) stay plain
# text: nitpicky is off.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
nitpicky = False

html_theme = "furo"
html_title = f"metatrain-mbe {release}"
html_static_path: list[str] = []

# ---------------------------------------------------------------------------
# The gallery
# ---------------------------------------------------------------------------

GALLERY_WORK = DOCS / "_build" / "gallery-work"

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["gallery"],
    # every script of examples/ is executed (not only plot_*.py)
    "filename_pattern": r".*\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "abort_on_example_error": True,
    # every build executes every example, changed or not: the gallery is part of
    # the test command (scripts/test.sh), and the export example uses the model
    # the training example trains in the same build
    "run_stale_examples": True,
    "reset_modules": ("matplotlib",),
    # the time of every example, in gallery/sg_execution_times
    "min_reported_time": 0,
    "write_computation_times": True,
}


def _prepare_gallery(app) -> None:
    """A fresh working folder for the examples of this build."""
    if str(app.config.plot_gallery).lower() in ("0", "false", "no"):
        return
    # accessible-pygments (furo's) calls logging.basicConfig(level=INFO) when
    # imported: the examples' library loggers would print every INFO line
    logging_module.getLogger().setLevel(logging_module.WARNING)
    shutil.rmtree(GALLERY_WORK, ignore_errors=True)
    GALLERY_WORK.mkdir(parents=True)
    os.environ["MBE_EXAMPLES_DIR"] = str(GALLERY_WORK)
    # `mtt-mbe` of this environment for the examples' subprocesses
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


# ---------------------------------------------------------------------------
# The option tables
# ---------------------------------------------------------------------------

#: page -> (module, options model) whose table the page holds
OPTIONS_TABLES = {
    "training": ("metatrain_mbe.interface.options", "MBEOptions"),
    "analysis": ("metatrain_mbe.interface.options", "EvalOptions"),
    "study": ("metatrain_mbe.interface.study", "StudyOptions"),
}
TABLE_HEADER = "| key | type | default | meaning |"


def current_options_tables(app, docname: str, source: list[str]) -> None:
    """Replace the options table of an :data:`OPTIONS_TABLES` page by the one
    generated from the options model; warn when the Markdown holds another."""
    if docname not in OPTIONS_TABLES:
        return
    from metatrain_mbe.interface.options import options_table

    module, name = OPTIONS_TABLES[docname]
    table = options_table(getattr(importlib.import_module(module), name))
    text = source[0]
    match = re.search(rf"^{re.escape(TABLE_HEADER)}\n(?:\|.*\n?)*", text, flags=re.MULTILINE)
    if match is None:
        LOGGER.warning("%s.md: no options table (%s)", docname, TABLE_HEADER, location=docname)
        return
    if match.group(0).rstrip("\n") != table:
        LOGGER.warning(
            "%s.md: the options table is not that of %s.%s (copy options_table(%s) into it)",
            docname,
            module,
            name,
            name,
            location=docname,
        )
    source[0] = text[: match.start()] + table + "\n" + text[match.end() :]


#: a Markdown link to a Markdown file of the repository outside docs/
_OUTSIDE_LINK = re.compile(r"\]\((\.\./[^)#\s]+\.md)(?:#[^)\s]*)?\)")


def outside_links(app, docname: str, source: list[str]) -> None:
    """A page's link to a Markdown file of the repository outside ``docs/``
    (``../data/water/README.md``, which GitHub shows) becomes a link to the
    file itself: Sphinx has no document for it."""
    source[0] = _OUTSIDE_LINK.sub(lambda m: f"](path:{m.group(1)})", source[0])


# ---------------------------------------------------------------------------
# The API pages
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def public_modules() -> tuple[str, ...]:
    """Every module of the package with ``__all__``, and every package (for
    its docstring), in the order of :func:`pkgutil.walk_packages`."""
    names = ["metatrain_mbe"]
    for info in pkgutil.walk_packages(metatrain_mbe.__path__, "metatrain_mbe."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg or "__all__" in vars(module):
            names.append(info.name)
    return tuple(names)


def _exported(name: str) -> list[str]:
    return list(getattr(importlib.import_module(name), "__all__", []))


@lru_cache(maxsize=1)
def canonical_modules() -> dict[tuple[str, int], str]:
    """Where each exported object is documented: ``(name, id(object))`` ->
    the module with the fewest dots among those exporting it (a package's
    ``__all__`` before the submodule that defines it), the defining module
    on a tie."""
    places: dict[tuple[str, int], list[str]] = {}
    for module in public_modules():
        for name in _exported(module):
            obj = getattr(importlib.import_module(module), name)
            places.setdefault((name, id(obj)), []).append(module)
    canonical = {}
    for (name, ident), modules in places.items():
        defining = getattr(getattr(importlib.import_module(modules[0]), name), "__module__", None)
        canonical[(name, ident)] = min(modules, key=lambda m: (m.count("."), m != defining))
    return canonical


class LayerAPI(SphinxDirective):
    """``.. mbe-api:: PACKAGE [MODULE ...]``: a section per public module (the
    package and its submodules, or the modules named), each with its
    docstring and the members of ``__all__`` documented there."""

    required_arguments = 1
    optional_arguments = 20
    option_spec = {"only": directives.flag}

    def run(self):
        """Insert the sections' reST into the page; no nodes of its own."""
        canonical = canonical_modules()
        modules = self.arguments if "only" in self.options else self._walk(self.arguments[0])
        lines: list[str] = []
        for module in modules:
            lines += self._section(module, canonical)
        self.state_machine.insert_input(lines, f"<mbe-api {' '.join(self.arguments)}>")
        return []

    @staticmethod
    def _walk(package: str) -> list[str]:
        return [m for m in public_modules() if m == package or m.startswith(package + ".")]

    def _section(self, module: str, canonical: dict) -> list[str]:
        title = f"``{module}``"
        lines = [title, "-" * len(title), "", f".. automodule:: {module}"]
        exported = _exported(module)
        here, elsewhere = [], []
        for name in exported:
            obj = getattr(importlib.import_module(module), name)
            place = canonical[(name, id(obj))]
            (here if place == module else elsewhere).append((name, place))
        if here:
            lines += [f"   :members: {', '.join(name for name, _ in here)}", "   :undoc-members:"]
        else:
            lines += ["   :no-members:"]
        lines.append("")
        if elsewhere:
            refs = ", ".join(f":obj:`~{place}.{name}`" for name, place in elsewhere)
            lines += [f"Also exported here: {refs}.", ""]
        return lines


# ---------------------------------------------------------------------------
# The docstrings, read as reST
# ---------------------------------------------------------------------------

#: inline literals, interpreted text and roles: left as they are
_LITERAL = re.compile(r"(``.+?``|:[\w:.-]+:`[^`]*`|`[^`]*`_{0,2})")
#: a cross-reference role of the Python domain: role, title, target
_ROLE = re.compile(
    r":(?:py:)?(mod|func|class|data|obj|meth|attr|exc|const):`(?:([^`<]*?)\s*<)?([^`>]+)>?`"
)


def escape_bars(app, what, name, obj, options, lines: list[str]) -> None:
    """Docstrings write |x| for an absolute value, a size (|S|) or a norm, as
    plain text, like the Markdown pages; reST would read ``|x|`` as a
    substitution. Escape ``|`` outside inline literals, interpreted text,
    literal blocks and doctests."""
    literal_indent = None  # the indentation of the paragraph that opened a literal block
    doctest = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                continue
        if stripped.startswith(">>>"):
            doctest = True
        if doctest:
            doctest = bool(stripped)
            continue
        if stripped.endswith("::"):
            literal_indent = indent
        parts = _LITERAL.split(line)
        lines[i] = "".join(
            part if k % 2 else re.sub(r"(?<!\\)\|", r"\\|", part) for k, part in enumerate(parts)
        )


def _module_of(name: str) -> str | None:
    """The longest prefix of a dotted name that is an imported module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in sys.modules:
            return candidate
    return None


def _documented_as(target: str, documented: set[str], canonical: dict) -> str | None:
    """Where the object a dotted name reaches is documented: the module
    itself, or the canonical module of its first attribute (plus the rest)."""
    if target in documented:
        return target
    module = _module_of(target)
    if module is None or not target.startswith(module + "."):
        return None
    first, *rest = target[len(module) + 1 :].split(".")
    obj = getattr(sys.modules[module], first, None)
    if obj is None:
        return None
    place = canonical.get((first, id(obj)))
    return None if place is None else ".".join([place, first, *rest])


def canonical_references(app, what, name, obj, options, lines: list[str]) -> None:
    """Point cross-references to where the object is documented: a relative
    target (``:mod:`.screening```) read as Python reads a relative import, from
    the docstring's package, and a target in a submodule (``data.sets.X``) sent
    to the package that documents ``X``. Anything else is left to Sphinx."""
    if not name.startswith("metatrain_mbe"):
        return
    documented = set(public_modules())  # imports every module
    canonical = canonical_modules()
    module = _module_of(name) or name
    is_package = hasattr(sys.modules.get(module), "__path__")
    package = module if is_package else module.rpartition(".")[0]

    def rewrite(match: re.Match) -> str:
        role, title, target = match.group(1), match.group(2), match.group(3).strip()
        short = target.startswith("~")
        bare = target.lstrip("~")
        if bare.startswith("."):
            dots = len(bare) - len(bare.lstrip("."))
            base = package.split(".")
            base = base[: len(base) - (dots - 1)] if dots > 1 else base
            absolute = ".".join(base) + "." + bare.lstrip(".")
        elif bare.startswith("metatrain_mbe."):
            absolute = bare
        else:
            return match.group(0)
        place = _documented_as(absolute, documented, canonical)
        if place is None or (place == bare and title is None):
            return match.group(0)
        if title is None:
            title = bare.lstrip(".").rpartition(".")[2] if short else bare.lstrip(".")
        return f":py:{role}:`{title} <{place}>`"

    for i, line in enumerate(lines):
        lines[i] = _ROLE.sub(rewrite, line)


def setup(app):
    """Register the directive and the hooks of this configuration."""
    app.add_directive("mbe-api", LayerAPI)
    app.connect("autodoc-process-docstring", escape_bars)
    app.connect("autodoc-process-docstring", canonical_references)
    app.connect("source-read", current_options_tables)
    app.connect("source-read", outside_links)
    app.connect("builder-inited", _prepare_gallery, priority=400)
    return {"parallel_read_safe": True}
