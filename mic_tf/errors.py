"""Which exceptions are the user's to fix, and which are bugs.

The binaries (``mic_tf.cli.run``) print a user error as one line, ``error:
<message>``, and exit with status 2; a bug keeps its Python traceback. The
rule, in ``is_user_error``:

* ``UserError`` (raised anywhere): bad input whose message names the
  problem and the fix, e.g. a run directory written with other settings;
* absl flag errors and ``app.UsageError`` (a bad or unknown flag);
* ``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``,
  ``FileExistsError`` and ``PermissionError``: a file the user named, or the
  environment, is not as it should be;
* a ``ValueError`` raised by a ``raise`` statement in mic-tf's own code: the
  input checks of configs, flags, data loaders and run directories (their
  messages name the problem and the fix).

Everything else is a bug, including a ``ValueError`` raised inside
TensorFlow, NumPy, pandas or a Python built-in (``int("x")``): it keeps its
traceback. ``--debug`` shows the traceback of user errors too.
"""

import dis
import os
import types
from typing import Optional, Sequence

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_RAISE_OPCODE = dis.opmap["RAISE_VARARGS"]

FILE_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError,
               FileExistsError, PermissionError)


class UserError(ValueError):
  """Bad input: the message names the problem and how to fix it."""


def _innermost(tb: Optional[types.TracebackType]
               ) -> Optional[types.TracebackType]:
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  return tb


def raised_by_own_code(error: BaseException,
                       extra_dirs: Sequence[str] = ()) -> bool:
  """True if ``error`` came from a ``raise`` statement in mic-tf's code.

  Args:
    error: A caught exception (with its traceback).
    extra_dirs: More directories that count as mic-tf's own code (the
      binaries' folder).
  """
  tb = _innermost(error.__traceback__)
  if tb is None:
    return False
  code = tb.tb_frame.f_code
  path = os.path.abspath(code.co_filename)
  dirs = [_PACKAGE_DIR] + [os.path.abspath(d) for d in extra_dirs]
  if not any(path.startswith(d + os.sep) for d in dirs):
    return False
  return code.co_code[tb.tb_lasti] == _RAISE_OPCODE


def is_user_error(error: BaseException,
                  extra_dirs: Sequence[str] = ()) -> bool:
  """Applies the module's rule (see the module docstring)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  if isinstance(error, (UserError, flags.Error, app.UsageError) + FILE_ERRORS):
    return True
  return (isinstance(error, ValueError)
          and raised_by_own_code(error, extra_dirs))


def one_line(error: BaseException) -> str:
  """The error's message on one line (what the binaries print)."""
  return " ".join(str(error).split()) or type(error).__name__
