"""Every results table in docs/results.md is what its command prints.

Also: each learning curve in docs/curves/ is the history of the committed
runs it names, and the README's claims quote the checked tables.

docs/results.md shows, under each ```bash block that ends in
``experiments/channels_table.py`` or ``experiments/grid_table.py``, the
tables that command prints from the committed JSON in docs/results/. This
test runs each such command (through the binary's library function) from
the repository root and checks that every table it prints appears, line for
line, in the text between that block and the next one. A cell committed
without regenerating its table, or a table edited by hand, fails here. The
commands name the seeds they show (``dssm_base_s[0-4].json``), so a grid
cell committed later (a seed the table does not show yet) leaves them as
they are until the table is regenerated with it.
"""

import dataclasses
import json
import pathlib
import re
import shlex

import pytest

from mic_tf import grid
from mic_tf.analysis import channel_tables
from mic_tf.analysis import learning_curves

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DOC = _ROOT / "docs" / "results.md"
_SCRIPTS = ("experiments/channels_table.py", "experiments/grid_table.py")
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def _tables(text: str):
  """The markdown tables of ``text``: runs of lines starting with '|'."""
  tables, current = [], []
  for line in text.splitlines() + [""]:
    if line.startswith("|"):
      current.append(line.rstrip())
    elif current:
      tables.append("\n".join(current))
      current = []
  return tables


def _commands():
  """``(script, args, text shown after the block)`` of every table command
  in docs/results.md; shell variables set earlier in the same block
  (``S=docs/results``) are expanded."""
  doc = _DOC.read_text()
  found = []
  matches = list(_BLOCK.finditer(doc))
  for i, match in enumerate(matches):
    shown_until = (matches[i + 1].start() if i + 1 < len(matches)
                   else len(doc))
    shown = doc[match.end():shown_until]
    variables = {}
    for line in match.group(1).replace("\\\n", " ").splitlines():
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      for name, value in variables.items():
        line = line.replace("$" + name, value)
      words = shlex.split(line, comments=True)
      assign = _ASSIGN.fullmatch(words[0]) if len(words) == 1 else None
      if assign:
        variables[assign.group(1)] = assign.group(2)
      elif words[0] == "python" and words[1] in _SCRIPTS:
        found.append((words[1], words[2:], shown))
  return found


# Flag -> (keyword of the library function, how the flag is read).
_REPEATED, _LIST, _ONE = "repeated", "list", "one"
_FLAGS = {
    "experiments/channels_table.py": (channel_tables.channel_tables, {
        "groups": ("specs", _REPEATED), "pair": ("pairs", _REPEATED),
        "paired_metrics": ("paired_metrics", _LIST),
        "split": ("split", _ONE), "base": ("base", _ONE),
        "compact": ("compact", _ONE)}),
    "experiments/grid_table.py": (grid.grid_tables, {
        "grid": ("paths", _REPEATED),
        "paired_metrics": ("paired_metrics", _LIST),
        "split": ("split", _ONE), "base_variant": ("base_variant", _ONE),
        "default_max_epochs": ("default_max_epochs", int)}),
}


def _call(script, args):
  """Runs the command's flags through the binary's library function."""
  function, flags = _FLAGS[script]
  kwargs = {}
  for arg in args:
    name, sep, value = arg.partition("=")
    assert sep and name.startswith("--"), f"unexpected argument {arg!r}"
    assert name[2:] in flags, f"{script}: flag {name} is not handled here"
    keyword, kind = flags[name[2:]]
    if kind == _REPEATED:
      kwargs.setdefault(keyword, []).append(value)
    elif kind == _LIST:
      kwargs[keyword] = value.split(",")
    elif kind == _ONE:
      kwargs[keyword] = value
    else:
      kwargs[keyword] = kind(value)
  return function(**kwargs)


_COMMANDS = _commands()


def test_the_doc_has_its_channel_table_commands():
  # The parser must keep finding them: the Table 2 rows of every tower,
  # Table 3, the sparser data, the tuned bases and the amount-of-data sweep.
  scripts = [script for script, _, _ in _COMMANDS]
  assert scripts.count(_SCRIPTS[0]) >= 8 and scripts.count(_SCRIPTS[1]) >= 1


@pytest.mark.parametrize("script,args,shown", _COMMANDS,
                         ids=[f"command{i}" for i in range(len(_COMMANDS))])
def test_each_table_is_what_its_command_prints(script, args, shown,
                                               monkeypatch):
  monkeypatch.chdir(_ROOT)
  printed = _tables(_call(script, args))
  assert printed, f"{args} printed no table"
  shown_tables = _tables(shown)
  assert shown_tables, "no table follows the command in docs/results.md"
  for table in printed:
    assert table in shown_tables, (
        "docs/results.md does not show this table under its command "
        f"(regenerate it with `python {script} {shlex.join(args)}`):\n"
        + table)


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
