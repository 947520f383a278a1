"""Griffe extension: docstrings' reST literal blocks become fenced code.

mic_tf's docstrings mark examples the reST way, a paragraph ending in
``::`` followed by an indented block. Markdown (which mkdocstrings renders)
would run such a block into the paragraph; this turns each one into a
```` ``` ```` fence before the docstring is parsed. Used by mkdocs.yml.
"""

import re

import griffe

_LITERAL = re.compile(r"::\n\n((?:[ \t]+\S.*\n|[ \t]*\n)+)")


def _fence(match: "re.Match[str]") -> str:
  block = match.group(1).rstrip("\n").split("\n")
  indent = min(len(line) - len(line.lstrip()) for line in block
               if line.strip())
  body = "\n".join(line[indent:] for line in block)
  return f":\n\n```\n{body}\n```\n\n"


def fence_literal_blocks(text: str) -> str:
  """``text`` with every ``::`` + indented block turned into a fence."""
  return _LITERAL.sub(_fence, text + "\n").rstrip("\n")


class LiteralBlocks(griffe.Extension):
  """Rewrites the docstring of every loaded object."""

  def on_object(self, *, obj, **kwargs):
    del kwargs
    if obj.docstring is not None:
      obj.docstring.value = fence_literal_blocks(obj.docstring.value)
