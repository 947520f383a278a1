"""Every table of the results pages is what its command prints.

Also: each learning curve in docs/curves/ is the history of the committed
runs it names, and the claims of the README and of the results summary
(docs/results.md) quote the checked pages.

Each results page (docs/experiments/*.md, ``doc_tables.pages``) shows,
under each ```bash block that ends in
``experiments/channels_table.py`` or ``experiments/grid_table.py``, the
tables that command prints from the committed JSON in docs/results/. This
test runs each such command (``mic_harness.doc_tables``) from the
repository root and checks that every table it prints appears, line for
line, in the text between that block and the next one
(``python experiments/docs_tables.py --write`` rewrites them). A cell committed
without regenerating its table, or a table edited by hand, fails here. The
commands name the seeds they show (``dssm_base_s[0-4].json``), so a grid
cell committed later (a seed the table does not show yet) leaves them as
they are until the table is regenerated with it.
"""

import dataclasses
import json
import pathlib
import re

import pytest

from mic_harness import doc_tables
from mic_harness import learning_curves

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_PAGES = doc_tables.pages(_ROOT)
_COMMANDS = [(page, command) for page in _PAGES
             for command in doc_tables.commands(page.read_text())]
_IDS = [f"{page.stem}-command{i}" for i, (page, _) in enumerate(_COMMANDS)]
_SUMMARY = _ROOT / "docs" / "results.md"


def test_the_doc_has_its_channel_table_commands():
  # The parser must keep finding them: the Table 2 rows of every tower,
  # Table 3, the sparser data, the tuned bases and the amount-of-data sweep.
  assert {p.stem for p in _PAGES} >= {
      "dssm", "towers", "terms", "mining", "sparse", "data-amount"}
  scripts = [command.script for _, command in _COMMANDS]
  assert scripts.count(doc_tables.SCRIPTS[0]) >= 8
  assert scripts.count(doc_tables.SCRIPTS[1]) >= 1


@pytest.mark.parametrize("page, command", _COMMANDS, ids=_IDS)
def test_each_table_is_what_its_command_prints(page, command, monkeypatch):
  monkeypatch.chdir(_ROOT)
  doc = page.read_text()
  name = page.relative_to(_ROOT)
  printed = doc_tables.tables(doc_tables.run(command))
  assert printed, f"`{command.line()}` printed no table"
  shown = doc_tables.tables(doc[command.shown_start:command.shown_end])
  assert shown, f"no table follows the command in {name}"
  for table in printed:
    assert table in shown, (
        f"{name} does not show this table under its command "
        "(python experiments/docs_tables.py --write rewrites it from "
        f"`{command.line()}`):\n" + table)


def test_refresh_rewrites_a_changed_table_and_nothing_else(monkeypatch):
  monkeypatch.chdir(_ROOT)
  page, command = _COMMANDS[0]
  doc = page.read_text()
  table = doc_tables.tables(doc[command.shown_start:command.shown_end])[0]
  row = table.split("\n")[2]
  edited = doc.replace(row, row.replace("|", "| edited", 1), 1)
  assert edited != doc
  assert [t for _, t in doc_tables.stale(edited)] == [table]
  assert doc_tables.refresh(edited) == doc
  assert doc_tables.refresh(doc) == doc


_MEAN_STD = re.compile(r"[+\-−]?\d+\.\d+ ± \d+\.\d+")


def _evidence() -> str:
  return "\n".join(p.read_text() for p in _PAGES).replace("−", "-")


@pytest.mark.parametrize("path, start, least", [
    ("README.md", "## The paper's claims, as measured", 8),
    ("docs/results.md", "# ", 20),
])
def test_every_mean_and_std_of_the_claims_is_in_the_evidence(
    path, start, least):
  # The README's status table and the results summary quote the pages,
  # whose tables are checked above: each "mean ± std" they state must be
  # one the pages show.
  text = (_ROOT / path).read_text()
  begin = text.index(start)
  end = text.find("\n## ", begin + 1) if path == "README.md" else len(text)
  stated = _MEAN_STD.findall(text[begin:end])
  assert len(stated) >= least
  evidence = _evidence()
  missing = [n for n in stated if n.replace("−", "-") not in evidence]
  assert not missing, (f"{path} states these mean ± std values that the "
                       f"results pages do not show: {missing}")


_CURVES = sorted((_ROOT / "docs" / "curves").glob("*.json"))


def test_the_learning_curves_are_found():
  assert len(_CURVES) >= 9


@pytest.mark.parametrize("path", _CURVES, ids=[p.stem for p in _CURVES])
def test_each_learning_curve_is_its_committed_runs(path, monkeypatch):
  # docs/curves/<name>.json names the committed run of every curve; the
  # curve must be that run's history, and <name>.md the table the library
  # prints for them (experiments/learning_curves.py writes both).
  monkeypatch.chdir(_ROOT)
  record = json.loads(path.read_text())
  groups = {}
  for label, entries in record["groups"].items():
    groups[label] = []
    for entry in entries:
      curve = learning_curves.load(entry["source"], record["metric"])
      assert dataclasses.asdict(curve) == entry, (
          f"{path.name}: {label} seed {entry['seed']} is not the history "
          f"of {entry['source']} (regenerate the curves)")
      groups[label].append(curve)
  table = learning_curves.curves_table(groups, record["metric"])
  assert path.with_suffix(".md").read_text() == table + "\n"
