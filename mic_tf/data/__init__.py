"""Data layer: loaders, MovieLens fetching and the ComiRec protocol."""

from mic_tf.data.amazon import load_amazon_books
from mic_tf.data.custom import load_interactions_table
from mic_tf.data.dataset import ProcessedDataset
from mic_tf.data.dataset import RawDataset
from mic_tf.data.fetch import data_dir
from mic_tf.data.fetch import fetch_movielens
from mic_tf.data.movielens import load_grouplens_movielens
from mic_tf.data.movielens import load_recbole_movielens
from mic_tf.data.protocol import apply_comirec_protocol
from mic_tf.data.protocol import describe
from mic_tf.data.registry import load_dataset

__all__ = [
    "ProcessedDataset",
    "RawDataset",
    "apply_comirec_protocol",
    "data_dir",
    "describe",
    "fetch_movielens",
    "load_amazon_books",
    "load_dataset",
    "load_grouplens_movielens",
    "load_interactions_table",
    "load_recbole_movielens",
]
