"""Every results table in docs/results.md is what its command prints.

Also: each learning curve in docs/curves/ is the history of the committed
runs it names, and the README's claims quote the checked tables.

docs/results.md shows, under each ```bash block that ends in
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

# The docs tier: ``pytest -m docs`` checks the committed tables alone.
pytestmark = pytest.mark.docs

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_DOC = _ROOT / "docs" / "results.md"
_COMMANDS = doc_tables.commands(_DOC.read_text())


def test_the_doc_has_its_channel_table_commands():
  # The parser must keep finding them: the Table 2 rows of every tower,
  # Table 3, the sparser data, the tuned bases and the amount-of-data sweep.
  scripts = [command.script for command in _COMMANDS]
  assert scripts.count(doc_tables.SCRIPTS[0]) >= 8
  assert scripts.count(doc_tables.SCRIPTS[1]) >= 1


@pytest.mark.parametrize("command", _COMMANDS,
                         ids=[f"command{i}" for i in range(len(_COMMANDS))])
def test_each_table_is_what_its_command_prints(command, monkeypatch):
  monkeypatch.chdir(_ROOT)
  doc = _DOC.read_text()
  printed = doc_tables.tables(doc_tables.run(command))
  assert printed, f"`{command.line()}` printed no table"
  shown = doc_tables.tables(doc[command.shown_start:command.shown_end])
  assert shown, "no table follows the command in docs/results.md"
  for table in printed:
    assert table in shown, (
        "docs/results.md does not show this table under its command "
        "(python experiments/docs_tables.py --write rewrites it from "
        f"`{command.line()}`):\n" + table)


def test_refresh_rewrites_a_changed_table_and_nothing_else(monkeypatch):
  monkeypatch.chdir(_ROOT)
  doc = _DOC.read_text()
  command = _COMMANDS[0]
  table = doc_tables.tables(doc[command.shown_start:command.shown_end])[0]
  row = table.split("\n")[2]
  edited = doc.replace(row, row.replace("|", "| edited", 1), 1)
  assert edited != doc
  assert [t for _, t in doc_tables.stale(edited)] == [table]
  assert doc_tables.refresh(edited) == doc
  assert doc_tables.refresh(doc) == doc


def test_every_mean_and_std_of_the_readme_claims_is_in_the_evidence():
  # The README's claims section summarises docs/results.md, whose tables
  # are checked above: each "mean ± std" it states must be one of theirs.
  readme = (_ROOT / "README.md").read_text()
  start = readme.index("### MIC against its base: which claims hold")
  end = readme.index("\n### ", start + 1)
  stated = re.findall(r"[+\-−]?\d+\.\d+ ± \d+\.\d+", readme[start:end])
  assert len(stated) >= 20  # the claims table and its summary
  evidence = _DOC.read_text().replace("−", "-")
  missing = [n for n in stated if n.replace("−", "-") not in evidence]
  assert not missing, ("README states these mean ± std values that "
                       f"docs/results.md does not show: {missing}")


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
