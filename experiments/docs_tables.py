r"""Checks or rewrites the tables the results pages show under their commands.

Each results page (docs/experiments/*.md, one per experiment) shows, under
each table command (experiments/channels_table.py or grid_table.py on the
committed JSON), what that command prints. After new cells are committed,
widen the command's globs to the seeds it should show, then:

  python experiments/docs_tables.py            # list the tables that differ
  python experiments/docs_tables.py --write    # rewrite them from the commands

The prose around a table is not touched: read it again. The logic lives in
experiments/mic_harness/doc_tables.py; tests/harness/test_docs_tables.py fails
on any table that differs.
"""

import os
import sys

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_list("doc", None, "The markdown pages (default: every results "
                  "page, docs/experiments/*.md).")
flags.DEFINE_bool("write", False, "Rewrite the tables that differ from what "
                  "their commands print (else list them and exit 1).")


def main(argv):
  from mic_harness import doc_tables  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # The commands' paths are relative to the repository root.
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  paths = ([os.path.abspath(p) for p in FLAGS.doc] if FLAGS.doc
           else [str(p) for p in doc_tables.pages(root)])
  os.chdir(root)
  differ_total = 0
  for path in paths:
    name = os.path.relpath(path, root)
    with open(path) as f:
      doc = f.read()
    if FLAGS.write:
      new = doc_tables.refresh(doc)
      if new != doc:
        with open(path, "w") as f:
          f.write(new)
      print(f"{name}: {'rewritten' if new != doc else 'up to date'} "
            f"({len(doc_tables.commands(doc))} table commands).")
      continue
    differ = doc_tables.stale(doc)
    for command, table in differ:
      print(f"{name}: under `{command.line()}`, not shown:\n{table}\n")
    print(f"{name}: {len(differ)} table(s) differ from their commands.")
    differ_total += len(differ)
  if differ_total:
    print("Rerun with --write to rewrite them.")
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
