"""Tests for the dataset loaders and the registry, on tiny generated files."""

import gzip
import json
import zipfile

import mic_tf  # noqa: F401
import numpy as np
import pandas as pd
import pytest

from mic_tf.data import amazon
from mic_tf.data import custom
from mic_tf.data import movielens
from mic_tf.data import registry
from mic_tf.data import taobao


def _write(path, text, encoding="utf-8"):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode(encoding))
  return path


# ----------------------------------------------------------------- buckets


def test_age_bucket_boundaries_and_idempotence():
  ages = pd.Series([7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73,
                    "x", None])
  expected = [1, 1, 18, 18, 25, 25, 35, 35, 45, 45, 50, 50, 56, 56]
  got = movielens.age_bucket(ages)
  np.testing.assert_array_equal(got[:14].to_numpy(), expected)
  assert got[14:].isna().all()
  codes = pd.Series(movielens.AGE_BUCKETS)
  np.testing.assert_array_equal(movielens.age_bucket(codes), codes)


def test_decade_bucket_clamps_and_handles_missing():
  got = movielens.decade_bucket(pd.Series(["1919", "1995", "2003", "1930",
                                           "V", "unkonwn"]))
  np.testing.assert_array_equal(got[:4].to_numpy(), [1920, 1990, 2000, 1930])
  assert got[4:].isna().all()


# ----------------------------------------------------------- RecBole files


def _recbole_1m(directory):
  _write(directory / "ml-1m.inter",
         "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "1m_1\tToy Story (1995)\t5\t978300760\n"
         "1m_2\t\"Great Day in Harlem, A (1994)\"\t3\t978300761\n"
         "1m_1\tJumanji (1995)\t4\t978300700\n")
  _write(directory / "ml-1m.user",
         "user_id:token\tage:float\tgender:token\toccupation:float\t"
         "zip_code:token\n1m_1\t1\tF\t10\t48067\n1m_2\t56\tM\t16\t70072\n")
  _write(directory / "ml-1m.item",
         "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\n"
         "Toy Story (1995)\tToy Story\t1995\tAnimation Children's Comedy\n"
         "Jumanji (1995)\tJumanji\t1995\tAdventure Fantasy\n"
         "\"Great Day in Harlem, A (1994)\"\tx\t1919\tDocumentary\n")


def test_recbole_ml1m_style(tmp_path):
  _recbole_1m(tmp_path)
  raw = movielens.load_recbole_movielens(tmp_path, "ml-1m")
  assert raw.name == "ml-1m"
  assert list(raw.interactions.columns) == ["user", "item", "timestamp"]
  assert raw.interactions["user"].tolist() == ["1m_1", "1m_2", "1m_1"]
  assert raw.interactions["item"].tolist() == [
      "Toy Story (1995)", "\"Great Day in Harlem, A (1994)\"",
      "Jumanji (1995)"]
  assert raw.interactions["timestamp"].tolist() == [978300760, 978300761,
                                                    978300700]
  assert raw.user_features.loc["1m_2"].tolist() == [56.0, "M", "16"]
  assert raw.item_bag_columns == ["genres"]
  assert raw.item_features.loc["Toy Story (1995)", "genres"] == [
      "Animation", "Children's", "Comedy"]
  assert raw.item_features.loc["\"Great Day in Harlem, A (1994)\"",
                               "year"] == 1920.0


def test_recbole_ml100k_style_buckets_age_and_missing_year(tmp_path):
  _write(tmp_path / "ml-100k.inter",
         "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "196\t242\t3\t881250949\n")
  _write(tmp_path / "ml-100k.user",
         "user_id:token\tage:token\tgender:token\toccupation:token\t"
         "zip_code:token\n196\t49\tM\twriter\t55105\n")
  _write(tmp_path / "ml-100k.item",
         "item_id:token\tmovie_title:token_seq\trelease_year:token\t"
         "class:token_seq\n242\tKolya\tunkonwn\tComedy\n")
  raw = movielens.load_recbole_movielens(tmp_path, "ml-100k")
  assert raw.interactions["user"].tolist() == ["196"]
  assert raw.user_features.loc["196", "age"] == 45.0
  assert raw.user_features.loc["196", "occupation"] == "writer"
  assert np.isnan(raw.item_features.loc["242", "year"])
  assert raw.item_features.loc["242", "genres"] == ["Comedy"]


def test_recbole_missing_file_and_column(tmp_path):
  with pytest.raises(FileNotFoundError, match="fetch_movielens"):
    movielens.load_recbole_movielens(tmp_path, "ml-1m")
  _recbole_1m(tmp_path)
  _write(tmp_path / "ml-1m.user", "user_id:token\tgender:token\n1m_1\tF\n")
  with pytest.raises(ValueError, match="age"):
    movielens.load_recbole_movielens(tmp_path, "ml-1m")


def test_real_ml100k(ml100k):
  assert ml100k.name == "ml-100k"
  assert len(ml100k.interactions) == 100_000
  assert ml100k.interactions["user"].nunique() == 943
  assert ml100k.interactions["item"].nunique() == 1682
  assert len(ml100k.user_features) == 943
  assert len(ml100k.item_features) == 1682
  assert set(ml100k.user_features["age"].dropna()) <= set(
      movielens.AGE_BUCKETS)
  assert ml100k.item_features["genres"].map(len).min() >= 1


# ---------------------------------------------------------- GroupLens files


def _grouplens_1m(directory):
  _write(directory / "ratings.dat",
         "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
  _write(directory / "users.dat",
         "1::F::1::10::48067\n2::M::56::16::70072\n")
  _write(directory / "movies.dat",
         "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
         "661::James and the Giant Peach (1996)::Animation|Children's|"
         "Musical\n"
         "3::Misérables: Les (1995)::Drama|War\n", encoding="latin-1")


def _check_grouplens_1m(raw):
  assert raw.name == "ml-1m"
  assert raw.interactions["user"].tolist() == [1, 1, 2]
  assert raw.interactions["item"].tolist() == [1193, 661, 1193]
  assert raw.interactions["timestamp"].tolist() == [978300760, 978302109,
                                                    978298413]
  assert raw.user_features.loc[2].tolist() == [56.0, "M", 16]
  assert raw.item_features.loc[661, "genres"] == ["Animation", "Children's",
                                                  "Musical"]
  assert raw.item_features.loc[661, "year"] == 1990.0
  assert raw.item_features.loc[1193, "year"] == 1970.0
  assert raw.item_features.loc[3, "genres"] == ["Drama", "War"]


def test_grouplens_1m_directory(tmp_path):
  _grouplens_1m(tmp_path / "ml-1m")
  _check_grouplens_1m(movielens.load_grouplens_movielens(tmp_path))


def test_grouplens_1m_zip(tmp_path):
  _grouplens_1m(tmp_path / "src")
  archive_path = tmp_path / "ml-1m.zip"
  with zipfile.ZipFile(archive_path, "w") as archive:
    for name in ("ratings.dat", "users.dat", "movies.dat"):
      archive.write(tmp_path / "src" / name, f"ml-1m/{name}")
  _check_grouplens_1m(movielens.load_grouplens_movielens(archive_path))


def test_grouplens_100k(tmp_path):
  _write(tmp_path / "u.data",
         "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
  _write(tmp_path / "u.user",
         "196|49|M|writer|55105\n186|39|F|executive|00000\n")
  flags_242 = ["0"] * 19
  flags_242[5] = "1"  # Comedy
  flags_302 = ["0"] * 19
  flags_302[6] = flags_302[16] = "1"  # Crime, Thriller
  _write(tmp_path / "u.item",
         "242|Kolya (1996)|24-Jan-1997||http://x|" + "|".join(flags_242) +
         "\n302|L.A. Confidential (1997)||||" + "|".join(flags_302) + "\n",
         encoding="latin-1")
  raw = movielens.load_grouplens_movielens(tmp_path)
  assert raw.name == "ml-100k"
  assert raw.interactions["item"].tolist() == [242, 302]
  assert raw.user_features.loc[186].tolist() == [35.0, "F", "executive"]
  assert raw.item_features.loc[242, "genres"] == ["Comedy"]
  assert raw.item_features.loc[302, "genres"] == ["Crime", "Thriller"]
  assert raw.item_features.loc[242, "year"] == 1990.0  # from release date
  assert raw.item_features.loc[302, "year"] == 1990.0  # from the title


def test_grouplens_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="grouplens"):
    movielens.load_grouplens_movielens(tmp_path / "nope")
  with pytest.raises(FileNotFoundError, match="ratings.dat"):
    movielens.load_grouplens_movielens(tmp_path)
  _write(tmp_path / "ratings.dat", "1::2::5::notatime\n")
  _write(tmp_path / "movies.dat", "2::X (1990)::Drama\n")
  with pytest.raises(ValueError, match="non-numeric timestamps"):
    movielens.load_grouplens_movielens(tmp_path)


# ------------------------------------------------------------------ custom


def _custom_frames():
  interactions = pd.DataFrame({
      "uid": [10, 11, 10],
      "iid": ["a", "b", "b"],
      "ts": [3, 1, 2],
  })
  users = pd.DataFrame({"uid": [10, 11], "country": ["FR", "DE"]})
  items = pd.DataFrame({"iid": ["a", "b"], "brand": ["x", None],
                        "tags": ["red|big", "blue"]})
  return interactions, users, items


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_custom_table(tmp_path, suffix):
  frames = _custom_frames()
  paths = [tmp_path / f"{name}{suffix}" for name in ("i", "u", "t")]
  for frame, path in zip(frames, paths):
    if suffix == ".csv":
      frame.to_csv(path, index=False)
    else:
      frame.to_parquet(path, index=False)
  raw = custom.load_interactions_table(
      paths[0], user_col="uid", item_col="iid", time_col="ts",
      user_features_path=paths[1], item_features_path=paths[2],
      user_key="uid", item_key="iid", item_bag_columns=["tags"], name="mine")
  assert raw.name == "mine"
  assert raw.interactions["user"].tolist() == [10, 11, 10]
  assert raw.interactions["item"].tolist() == ["a", "b", "b"]
  assert raw.interactions["timestamp"].tolist() == [3, 1, 2]
  assert raw.user_features.loc[11, "country"] == "DE"
  assert raw.item_features.loc["a", "tags"] == ["red", "big"]
  assert raw.item_features.loc["b", "tags"] == ["blue"]
  assert pd.isna(raw.item_features.loc["b", "brand"])
  assert raw.item_bag_columns == ["tags"]


def test_custom_parquet_datetime_and_list_bags(tmp_path):
  pd.DataFrame({
      "user": ["u"], "item": ["i"],
      "timestamp": pd.to_datetime(["2020-01-01T00:00:10"])
  }).to_parquet(tmp_path / "i.parquet")
  pd.DataFrame({"item": ["i"], "tags": [["p", "q"]]}).to_parquet(
      tmp_path / "t.parquet")
  raw = custom.load_interactions_table(
      tmp_path / "i.parquet", item_features_path=tmp_path / "t.parquet",
      item_bag_columns=["tags"])
  assert raw.interactions["timestamp"].tolist() == [1577836810]
  assert list(raw.item_features.loc["i", "tags"]) == ["p", "q"]


def test_custom_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="interactions"):
    custom.load_interactions_table(tmp_path / "missing.csv")
  interactions, users, _ = _custom_frames()
  interactions.to_csv(tmp_path / "i.csv", index=False)
  with pytest.raises(ValueError, match="user_col"):
    custom.load_interactions_table(tmp_path / "i.csv", item_col="iid",
                                   time_col="ts")
  interactions.assign(ts=["x", "y", "z"]).to_csv(tmp_path / "s.csv",
                                                 index=False)
  with pytest.raises(ValueError, match="not numeric"):
    custom.load_interactions_table(tmp_path / "s.csv", user_col="uid",
                                   item_col="iid", time_col="ts")
  pd.concat([users, users]).to_csv(tmp_path / "u.csv", index=False)
  with pytest.raises(ValueError, match="repeats"):
    custom.load_interactions_table(
        tmp_path / "i.csv", user_col="uid", item_col="iid", time_col="ts",
        user_features_path=tmp_path / "u.csv", user_key="uid")
  with pytest.raises(ValueError, match="user_key"):
    custom.load_interactions_table(
        tmp_path / "i.csv", user_col="uid", item_col="iid", time_col="ts",
        user_features_path=tmp_path / "u.csv")


# ------------------------------------------------------------------ amazon


def _reviews():
  return [
      {"reviewerID": "A1", "asin": "B1", "overall": 5.0,
       "unixReviewTime": 1400000000, "reviewText": "it's \"great\""},
      {"reviewerID": "A2", "asin": "B2", "overall": 4.0,
       "unixReviewTime": 1300000000},
      {"reviewerID": "A1", "asin": "B2", "overall": 3.0,
       "unixReviewTime": 1200000000},
  ]


def _check_amazon(raw):
  assert raw.name == "amazon-books"
  assert raw.interactions["user"].tolist() == ["A1", "A2", "A1"]
  assert raw.interactions["item"].tolist() == ["B1", "B2", "B2"]
  assert raw.interactions["timestamp"].tolist() == [1.4e9, 1.3e9, 1.2e9]


def test_amazon_reviews_json_and_python_literals(tmp_path):
  reviews = _reviews()
  _write(tmp_path / "r.json", "\n".join(json.dumps(r) for r in reviews))
  _check_amazon(amazon.load_amazon_books(tmp_path / "r.json"))
  _write(tmp_path / "p.json", "\n".join(repr(r) for r in reviews) + "\n\n")
  _check_amazon(amazon.load_amazon_books(tmp_path / "p.json"))
  with gzip.open(tmp_path / "g.json.gz", "wt", encoding="utf-8") as f:
    f.write("\n".join(json.dumps(r) for r in reviews))
  _check_amazon(amazon.load_amazon_books(tmp_path / "g.json.gz"))


def test_amazon_fast_path_agrees_with_full_parsing(tmp_path):
  # Lines in the real files' key order take a regex fast path; a reviewText
  # that quotes other keys, another key order and escaped ids do not fool it.
  lines = [
      json.dumps({"reviewerID": "A1", "asin": "B1", "reviewText":
                  'x "asin": "B9", "unixReviewTime": 7,', "overall": 5.0,
                  "unixReviewTime": 1400000000, "reviewTime": "05 1, 2014"}),
      json.dumps({"asin": "B2", "reviewerID": "A2",
                  "unixReviewTime": 1300000000}),
      json.dumps({"reviewerID": "A\\1", "asin": "B2",
                  "unixReviewTime": 1200000000}),
      json.dumps({"reviewerID": "A3", "asin": "B3",
                  "unixReviewTime": 1.5e9}),
  ]
  _write(tmp_path / "r.json", "\n".join(lines))
  raw = amazon.load_amazon_books(tmp_path / "r.json")
  assert raw.interactions["user"].tolist() == ["A1", "A2", "A\\1", "A3"]
  assert raw.interactions["item"].tolist() == ["B1", "B2", "B2", "B3"]
  assert raw.interactions["timestamp"].tolist() == [1.4e9, 1.3e9, 1.2e9,
                                                    1.5e9]


def test_amazon_ratings_csv(tmp_path):
  _write(tmp_path / "ratings_Books.csv",
         "A1,B1,5.0,1400000000\nA2,B2,4.0,1300000000\nA1,B2,3.0,1200000000\n")
  _check_amazon(amazon.load_amazon_books(tmp_path / "ratings_Books.csv"))
  _write(tmp_path / "bad.csv", "user,item,rating,timestamp\nA1,B1,5,1\n")
  with pytest.raises(ValueError, match="non-numeric timestamp"):
    amazon.load_amazon_books(tmp_path / "bad.csv")


def test_amazon_metadata_category(tmp_path):
  _write(tmp_path / "r.json", "\n".join(json.dumps(r) for r in _reviews()))
  meta = [
      repr({"asin": "B1", "categories": [["Books", "Fiction", "Horror"],
                                         ["Kindle"]], "title": "It's"}),
      repr({"asin": "B9", "categories": [["Books", "Unused"]]}),
      json.dumps({"title": "x", "asin": "B2", "categories": []}),
      repr({"asin": "B1", "categories": [["Books", "Duplicate"]]}),
  ]
  _write(tmp_path / "meta.json", "\n".join(meta))
  raw = amazon.load_amazon_books(tmp_path / "r.json", tmp_path / "meta.json")
  assert sorted(raw.item_features.index) == ["B1", "B2"]
  assert raw.item_features.loc["B1", "category"] == "Horror"
  assert pd.isna(raw.item_features.loc["B2", "category"])


def test_amazon_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="Amazon"):
    amazon.load_amazon_books(tmp_path / "reviews_Books_5.json")
  _write(tmp_path / "r.json", '{"reviewerID": "A1", "asin": "B1"}\n')
  with pytest.raises(ValueError, match="unixReviewTime"):
    amazon.load_amazon_books(tmp_path / "r.json")
  _write(tmp_path / "x.json", "not a record\n")
  with pytest.raises(ValueError, match="x.json:1 is neither JSON"):
    amazon.load_amazon_books(tmp_path / "x.json")


# ------------------------------------------------------------------ taobao


def _taobao_file(path):
  return _write(path, "1,10,100,pv,1511544070\n"
                      "1,11,101,buy,1511544071\n"
                      "2,10,102,pv,1511544072\n"
                      "2,12,103,cart,1511544073\n"
                      "3,11,104,pv,1511544074\n"
                      "3,10,100,fav,1511544075\n")


def test_taobao_keeps_pv_and_last_category(tmp_path):
  raw = taobao.load_taobao(_taobao_file(tmp_path / "UserBehavior.csv"),
                           chunksize=2)
  assert raw.name == "taobao"
  assert raw.interactions["user"].tolist() == [1, 2, 3]
  assert raw.interactions["item"].tolist() == [10, 10, 11]
  assert raw.interactions["timestamp"].tolist() == [1511544070, 1511544072,
                                                    1511544074]
  assert raw.item_features["category"].to_dict() == {10: 102, 11: 104}


def test_taobao_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="UserBehavior"):
    taobao.load_taobao(tmp_path / "UserBehavior.csv")
  _write(tmp_path / "a.csv", "1,10,100,buy,1\n")
  with pytest.raises(ValueError, match="no 'pv' rows"):
    taobao.load_taobao(tmp_path / "a.csv")
  _write(tmp_path / "b.csv", "1,x,100,pv,1\n")
  with pytest.raises(ValueError, match="headerless"):
    taobao.load_taobao(tmp_path / "b.csv")


# ---------------------------------------------------------------- registry


def test_registry_unknown_name_lists_known():
  with pytest.raises(ValueError) as error:
    registry.load_dataset("netflix")
  for name in ("ml-1m", "ml-100k", "ml-1m-grouplens", "amazon-books",
               "taobao", "custom"):
    assert name in str(error.value)


def test_registry_dispatch(tmp_path):
  _taobao_file(tmp_path / "taobao" / "UserBehavior.csv")
  assert len(registry.load_dataset("taobao", data_dir=tmp_path)
             .interactions) == 3
  _grouplens_1m(tmp_path / "g")
  raw = registry.load_dataset("ml-1m-grouplens", path=tmp_path / "g")
  assert len(raw.interactions) == 3
  interactions, _, _ = _custom_frames()
  interactions.to_csv(tmp_path / "i.csv", index=False)
  raw = registry.load_dataset("custom", path=tmp_path / "i.csv",
                              user_col="uid", item_col="iid", time_col="ts")
  assert raw.interactions["user"].tolist() == [10, 11, 10]
  with pytest.raises(FileNotFoundError, match="amazon-books"):
    registry.load_dataset("amazon-books", data_dir=tmp_path)
  with pytest.raises(ValueError, match="Wrong argument"):
    registry.load_dataset("taobao", data_dir=tmp_path, colour="red")


def test_registry_ml100k(ml100k):
  raw = registry.load_dataset("ml-100k")
  pd.testing.assert_frame_equal(raw.interactions, ml100k.interactions)
