"""The tables the results pages show under their table commands.

A results page (``RESULT_PAGES``: one per experiment, docs/experiments/*.md)
shows, under each ```bash block that
runs ``experiments/channels_table.py`` or ``experiments/grid_table.py``,
the markdown tables that command prints. ``commands`` finds those commands
(shell variables set earlier in the block, e.g. ``S=docs/results``, are
expanded), ``run`` prints their tables through the binaries' library
functions, ``stale`` lists every printed table the document does not show
under its command, and ``refresh`` rewrites the shown tables from the
commands (``experiments/docs_tables.py``;
tests/harness/test_docs_tables.py checks that nothing is stale). Paths in
the commands are relative to the repository root: call these from there.
"""

import dataclasses
import pathlib
import re
import shlex
from typing import Callable, Dict, List, Tuple

from mic_harness import channel_tables
from mic_harness import tables as tables_lib

SCRIPTS = ("experiments/channels_table.py", "experiments/grid_table.py")
# The results pages with table commands, relative to the repository root.
RESULT_PAGES = "docs/experiments/*.md"
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")

# Flag -> (keyword of the library function, how the flag is read).
_REPEATED, _LIST, _ONE = "repeated", "list", "one"
_FLAGS: Dict[str, Tuple[Callable[..., str], Dict[str, tuple]]] = {
    SCRIPTS[0]: (channel_tables.channel_tables, {
        "groups": ("specs", _REPEATED), "pair": ("pairs", _REPEATED),
        "paired_metrics": ("paired_metrics", _LIST),
        "split": ("split", _ONE), "base": ("base", _ONE),
        "compact": ("compact", _ONE), "sign_test": ("sign_test", bool),
        "per_seed": ("per_seed", bool)}),
    SCRIPTS[1]: (tables_lib.grid_tables, {
        "grid": ("paths", _REPEATED),
        "paired_metrics": ("paired_metrics", _LIST),
        "split": ("split", _ONE), "base_variant": ("base_variant", _ONE),
        "default_max_epochs": ("default_max_epochs", int)}),
}


@dataclasses.dataclass
class Command:
  """One table command of a document and where its tables are shown."""
  script: str
  args: List[str]
  shown_start: int  # the text after the block, up to the next block
  shown_end: int

  def line(self) -> str:
    return f"python {self.script} {shlex.join(self.args)}"


def pages(root: "str | pathlib.Path" = ".") -> List[pathlib.Path]:
  """The results pages under ``root`` (the repository root), sorted.

  Raises:
    FileNotFoundError: When there are none (the pattern no longer matches).
  """
  found = sorted(pathlib.Path(root).glob(RESULT_PAGES))
  if not found:
    raise FileNotFoundError(f"No results pages match {RESULT_PAGES} under "
                            f"{root}; run from the repository root.")
  return found


def tables(text: str) -> List[str]:
  """The markdown tables of ``text``: runs of lines starting with '|'."""
  found, current = [], []
  for line in text.splitlines() + [""]:
    if line.startswith("|"):
      current.append(line.rstrip())
    elif current:
      found.append("\n".join(current))
      current = []
  return found


def commands(doc: str) -> List[Command]:
  """Every table command of the document, in order."""
  found = []
  matches = list(_BLOCK.finditer(doc))
  for i, match in enumerate(matches):
    end = matches[i + 1].start() if i + 1 < len(matches) else len(doc)
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
      elif len(words) > 1 and words[0] == "python" and words[1] in SCRIPTS:
        found.append(Command(words[1], words[2:], match.end(), end))
  return found


def run(command: Command) -> str:
  """What the command prints, through its binary's library function.

  Raises:
    ValueError: On a flag the binary does not take.
  """
  function, flags = _FLAGS[command.script]
  kwargs = {}
  for arg in command.args:
    name, sep, value = arg.partition("=")
    if name[2:] not in flags or not name.startswith("--") or not (
        sep or flags[name[2:]][1] is bool):
      raise ValueError(f"{command.script} takes no argument {arg!r} here.")
    keyword, kind = flags[name[2:]]
    if kind is bool:  # --flag, --flag=true / false
      kwargs[keyword] = value.lower() in ("", "true", "1")
      continue
    if kind == _REPEATED:
      kwargs.setdefault(keyword, []).append(value)
    elif kind == _LIST:
      kwargs[keyword] = value.split(",")
    elif kind == _ONE:
      kwargs[keyword] = value
    else:
      kwargs[keyword] = kind(value)
  return function(**kwargs)


def stale(doc: str) -> List[Tuple[Command, str]]:
  """``(command, table)`` for every printed table the document does not
  show, line for line, under its command."""
  out = []
  for command in commands(doc):
    shown = tables(doc[command.shown_start:command.shown_end])
    out += [(command, t) for t in tables(run(command)) if t not in shown]
  return out


def refresh(doc: str) -> str:
  """The document with each table under a command replaced by what the
  command prints now.

  A printed table replaces the first not yet replaced shown table with the
  same header line under its command.

  Raises:
    ValueError: When a printed table has no shown table of its header.
  """
  edits = []
  for command in commands(doc):
    segment = doc[command.shown_start:command.shown_end]
    used = set()
    for table in tables(run(command)):
      header = table.split("\n", 1)[0]
      at = -1
      for old in tables(segment):
        if old.split("\n", 1)[0] == header and old not in used:
          at = segment.index(old)
          used.add(old)
          break
      if at < 0:
        raise ValueError(f"No table with the header {header!r} under "
                         f"`{command.line()}`: paste its output there once.")
      start = command.shown_start + at
      edits.append((start, start + len(old), table))
  for start, end, table in sorted(edits, reverse=True):
    doc = doc[:start] + table + doc[end:]
  return doc
