r"""Checks or rewrites the tables a results document shows under its commands.

docs/results.md shows, under each table command (experiments/channels_table.py
or grid_table.py on the committed JSON), what that command prints. After new
cells are committed, widen the command's globs to the seeds it should show,
then:

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
from mic_harness import doc_tables

FLAGS = flags.FLAGS
flags.DEFINE_string("doc", "docs/results.md", "The markdown document.")
flags.DEFINE_bool("write", False, "Rewrite the tables that differ from what "
                  "their commands print (else list them and exit 1).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  path = os.path.abspath(FLAGS.doc)
  with open(path) as f:
    doc = f.read()
  # The commands' paths are relative to the repository root.
  os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  if FLAGS.write:
    new = doc_tables.refresh(doc)
    if new != doc:
      with open(path, "w") as f:
        f.write(new)
    print(f"{FLAGS.doc}: {'rewritten' if new != doc else 'up to date'} "
          f"({len(doc_tables.commands(doc))} table commands).")
    return
  differ = doc_tables.stale(doc)
  for command, table in differ:
    print(f"under `{command.line()}`, not shown:\n{table}\n")
  print(f"{FLAGS.doc}: {len(differ)} table(s) differ from their commands"
        + (" (rerun with --write)." if differ else "."))
  if differ:
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
