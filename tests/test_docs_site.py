"""The documentation site builds with `mkdocs build --strict`.

Strict mode turns every warning into a failure: a link to a page, file or
anchor that does not exist, or an API object (``::: mic_tf.x``) that cannot
be found. The last two tests check that those two mistakes do fail it, with
the repository's own mkdocs.yml (its plugins and validation settings) on a
one-page site.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _build(config: pathlib.Path, site: pathlib.Path, cwd: pathlib.Path):
  env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
  return subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict",
       "--config-file", str(config), "--site-dir", str(site)],
      cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
      check=False)


def test_the_site_builds_strict(tmp_path):
  result = _build(_ROOT / "mkdocs.yml", tmp_path / "site", _ROOT)
  assert result.returncode == 0, result.stdout + result.stderr
  for page in ("api/models/index.html", "api/channels/index.html"):
    assert (tmp_path / "site" / page).exists(), page
  models = (tmp_path / "site" / "api/models/index.html").read_text()
  assert "MICModel" in models and "MICConfig" in models


def _one_page_site(tmp_path: pathlib.Path, page: str) -> pathlib.Path:
  """mkdocs.yml with its docs replaced by one page (absolute paths)."""
  with open(_ROOT / "mkdocs.yml") as f:
    config = yaml.safe_load(f)
  docs = tmp_path / "docs"
  docs.mkdir()
  (docs / "index.md").write_text(page)
  config["docs_dir"] = str(docs)
  config.pop("nav", None)
  config.pop("exclude_docs", None)
  for plugin in config["plugins"]:
    if isinstance(plugin, dict) and "mkdocstrings" in plugin:
      python = plugin["mkdocstrings"]["handlers"]["python"]
      python["paths"] = [str(_ROOT)]
      python["options"]["extensions"] = [
          str(_ROOT / e) for e in python["options"]["extensions"]]
  path = tmp_path / "mkdocs.yml"
  path.write_text(yaml.safe_dump(config))
  return path


@pytest.mark.parametrize("page, reason", [
    ("# Home\n\n::: mic_tf.MICConfig\n", None),
    ("# Home\n\n::: mic_tf.nope\n", "mic_tf.nope"),
    ("# Home\n\nSee [the guide](guides/missing.md).\n", "guides/missing.md"),
    ("# Home\n\nSee [this](#no-such-heading).\n", "no-such-heading"),
])
def test_strict_fails_on_a_missing_object_or_a_broken_link(
    tmp_path, page, reason):
  result = _build(_one_page_site(tmp_path, page), tmp_path / "site",
                  tmp_path)
  output = result.stdout + result.stderr
  if reason is None:  # the same page with a real object builds
    assert result.returncode == 0, output
  else:
    assert result.returncode != 0, f"strict build passed with {reason}"
    assert reason in output, output


def test_the_readme_links_resolve():
  # The README is read on the repository's front page, outside the site:
  # each of its relative links must name a file of the repository.
  readme = (_ROOT / "README.md").read_text()
  targets = [t for t in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", readme)
             if "://" not in t]
  assert len(targets) >= 10
  missing = [t for t in targets if not (_ROOT / t).exists()]
  assert not missing, f"README.md links to missing files: {missing}"
