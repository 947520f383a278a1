"""The research harness beside the binaries in ``experiments/``.

Grids of runs (``grid``), seed statistics (``stats``), the paper's and
docs' result tables (``tables``, ``channel_tables``, ``doc_tables``), groups
of runs (``groups``), learning curves, recall by user group and Figure 4's
representation geometry (``alignment_uniformity``, ``figure4``). It imports
the library ``mic_tf``; the library never imports it, and it is not part of
the installed wheel.

The binaries (``python experiments/<name>.py``) find it because their own
folder is first on ``sys.path``; pytest adds ``experiments`` to the path
(``setup.cfg``); another script adds that folder itself.
"""
