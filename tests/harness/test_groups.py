"""mic_harness.groups: the LABEL=GLOB[,GLOB...] specs of run groups."""

import pytest

from mic_harness import groups


def _tree(tmp_path):
  for name in ("dssm_base_s0", "dssm_base_s1", "dssm_all_s0"):
    (tmp_path / name).mkdir()
  (tmp_path / "dssm_base_s2.json").write_text("{}")
  (tmp_path / "channels_dssm_base_s2.json").write_text("{}")
  (tmp_path / "notes.txt").write_text("")
  return tmp_path


def test_labels_keep_their_order_and_paths_are_sorted(tmp_path):
  t = _tree(tmp_path)
  got = groups.parse([f"MIC={t}/dssm_all_s*", f"DSSM={t}/dssm_base_s*"])
  assert list(got) == ["MIC", "DSSM"]
  # The committed metrics copy counts; its channel report does not.
  assert got["DSSM"] == [f"{t}/dssm_base_s0", f"{t}/dssm_base_s1",
                         f"{t}/dssm_base_s2.json"]


def test_commas_join_globs_without_duplicates(tmp_path):
  t = _tree(tmp_path)
  got = groups.parse([f"A={t}/dssm_base_s0,{t}/dssm_base_s*,{t}/dssm_all_s0"])
  assert got["A"] == sorted([f"{t}/dssm_all_s0", f"{t}/dssm_base_s0",
                             f"{t}/dssm_base_s1", f"{t}/dssm_base_s2.json"])


def test_dirs_only_leaves_out_metrics_copies(tmp_path):
  t = _tree(tmp_path)
  assert groups.parse([f"A={t}/dssm_base_s*"], dirs_only=True)["A"] == [
      f"{t}/dssm_base_s0", f"{t}/dssm_base_s1"]
  with pytest.raises(ValueError, match=r"No run directory matches .*s2\.json"
                     r".* \(group 'A'\)"):
    groups.parse([f"A={t}/dssm_base_s2.json"], dirs_only=True)


@pytest.mark.parametrize("spec,message", [
    ("runs/*", "--groups needs LABEL=GLOB, got 'runs/\\*'"),
    ("=runs/*", "--groups needs LABEL=GLOB"),
    ("A=", "--groups needs LABEL=GLOB"),
    ("A=,", "--groups needs LABEL=GLOB"),
])
def test_bad_specs_name_the_form(spec, message):
  with pytest.raises(ValueError, match=message):
    groups.parse([spec])


def test_a_label_twice_or_a_glob_matching_nothing_is_refused(tmp_path):
  t = _tree(tmp_path)
  with pytest.raises(ValueError, match="label 'A' is given twice"):
    groups.parse([f"A={t}/dssm_all_s0", f"A={t}/dssm_base_s0"])
  with pytest.raises(ValueError, match="No run directory or metrics file "
                     "matches .*notes"):
    groups.parse([f"A={t}/notes.txt"])
