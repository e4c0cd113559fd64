"""Language for lc_bc: which instruction each trajectory carries, its embedding, and skipping unlabeled ones.

The original (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/bridge_dataset.py with
``load_language`` / ``skip_unlabeled``, and experiments/train.py) picks one of a trajectory's instructions at
random, broadcasts it to every step as ``goals["language"]``, drops transitions whose instruction is empty, and
embeds the strings of each batch in the training loop with MUSE, the multilingual Universal Sentence Encoder
(https://tfhub.dev/google/universal-sentence-encoder-multilingual/3; jaxrl_m/data/text_processing.py). Here
the batch carries the embedding itself, ``goals["language"]`` float32 [B, E], from one of two places:

  * stored (``text_encoder`` unset): the RLDS release's per-step ``steps/language_embedding`` [512]. Its
    features.json calls it a "Kona language embedding" and points to universal-sentence-encoder-large/5,
    the English USE, not MUSE: the two spaces differ, so a policy trained on one kind of embedding must be
    fed the same kind (a checkpoint of the original expects MUSE vectors).
  * a local text encoder (``text_encoder: <dir>``, a TensorFlow SavedModel such as the MUSE module
    downloaded from TF Hub / Kaggle and unpacked, or ``sentence-transformers:<model>``): for TFRecords
    converted by bdv2, which store instruction text only (and for RLDS too, to get MUSE vectors as the
    original). Each distinct instruction is embedded once and cached for the process.

Unlabeled trajectories (instruction "") are dropped when ``skip_unlabeled`` is on (the default for lc_bc, as
the original's lc_bc config) by cutting them to zero steps, so they yield no transition.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bdv2.paths import as_path

from .errors import DataError
from .settings import Algo

if TYPE_CHECKING:
    import tensorflow as tf

    from .model import Run

SENTENCE_TRANSFORMERS = "sentence-transformers:"
EMBEDDING_KEY = "language_embedding"
"""The per-trajectory [L, E] embeddings the RLDS adapter adds beside "language" [L]."""
FIX = ("set text_encoder: to a local sentence encoder, e.g. the MUSE SavedModel directory "
       "(https://tfhub.dev/google/universal-sentence-encoder-multilingual/3, unpacked; needs tensorflow-text) "
       "or sentence-transformers:<model> (needs the sentence-transformers package)")


@dataclass(frozen=True)
class LanguageOptions:
    load: bool = False
    """Carry goals/language (the original's load_language)."""
    skip_unlabeled: bool = False
    text_encoder: str | None = None
    """None: use the embeddings stored in the data (RLDS language_embedding)."""

    @property
    def stored(self) -> bool:
        return self.load and self.text_encoder is None

    @classmethod
    def of(cls, run: Run) -> LanguageOptions:
        """The run's settings; load_language and skip_unlabeled default to on for lc_bc only."""
        s = run.settings
        lc = run.algo is Algo.LC_BC
        load = lc if s.load_language is None else s.load_language
        if lc and not load:
            raise DataError(f"{run.config_file}: run {run.name!r}: lc_bc needs language; remove load_language: false")
        skip = lc if s.skip_unlabeled is None else s.skip_unlabeled
        return cls(load, skip and load, s.text_encoder if load else None)


# -- text encoders ---------------------------------------------------------------------------------

class TextEncoder:
    """strings -> float32 [n, E], each distinct string embedded once (thread-safe: tf.data calls it)."""

    def __init__(self, name: str, embed: Callable[[list[str]], np.ndarray]) -> None:
        self.name = name
        self._embed = embed
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.dim = int(self.encode(["pick up the cup"]).shape[-1])

    def encode(self, strings: Sequence[str]) -> np.ndarray:
        with self._lock:
            new = sorted({s for s in strings if s not in self._cache})
            if new:
                vectors = np.asarray(self._embed(new), dtype=np.float32).reshape(len(new), -1)
                self._cache.update(zip(new, vectors, strict=True))
            return np.stack([self._cache[s] for s in strings]) if strings else np.zeros((0, 0), np.float32)


def _saved_model(path: Path) -> Callable[[list[str]], np.ndarray]:
    import tensorflow as tf

    with contextlib.suppress(ImportError):  # MUSE's SentencePiece ops live in tensorflow-text; importing registers them
        import tensorflow_text  # noqa: F401
    try:
        model = tf.saved_model.load(str(path))
    except Exception as e:  # TF raises many kinds; all mean "cannot use this encoder"
        hint = " (pip install tensorflow-text for MUSE's ops)" if "not registered" in str(e) else ""
        raise DataError(f"text_encoder: {path}: cannot load the SavedModel{hint}: {str(e).splitlines()[0]}") from e
    fn = model if callable(model) else model.signatures.get("serving_default")
    if fn is None:
        raise DataError(f"text_encoder: {path}: the SavedModel is not callable and has no serving_default")

    def embed(strings: list[str]) -> np.ndarray:
        with tf.device("/cpu:0"):
            out = fn(tf.constant(strings))
        return np.asarray(next(iter(out.values())) if isinstance(out, dict) else out)

    return embed


def _sentence_transformers(model: str) -> Callable[[list[str]], np.ndarray]:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise DataError(f"text_encoder: {SENTENCE_TRANSFORMERS}{model}: the sentence-transformers package is not "
                        f"installed (pip install sentence-transformers), or {FIX}") from e
    st = SentenceTransformer(model, device="cpu")
    return lambda strings: st.encode(strings, convert_to_numpy=True)


@functools.cache
def text_encoder(name: str) -> TextEncoder:
    """The encoder a ``text_encoder`` setting names, loaded once per process.

    Raises:
        DataError: not a SavedModel directory, a missing package, a model that cannot be loaded.
    """
    if name.startswith(SENTENCE_TRANSFORMERS):
        return TextEncoder(name, _sentence_transformers(name.removeprefix(SENTENCE_TRANSFORMERS)))
    path = Path(name).expanduser()
    if not (path / "saved_model.pb").is_file():
        raise DataError(f"text_encoder: {name}: not a TensorFlow SavedModel directory (no saved_model.pb); {FIX}")
    return TextEncoder(name, _saved_model(path))


def check_sources(files: Sequence[str], rlds_dirs: Sequence[str], opts: LanguageOptions) -> None:
    """Fail before reading when the data cannot give the embeddings asked for.

    Raises:
        DataError: converted TFRecords without a text_encoder, an RLDS release without language_embedding.
    """
    if not opts.load:
        return
    if opts.text_encoder is not None:
        text_encoder(opts.text_encoder)  # load now (not inside a tf.data trace) and fail early
        return
    if files:
        raise DataError(f"{files[0]}: converted TFRecords store instruction text, not embeddings; {FIX}")
    from bdv2.data_tools.rlds import open_dir

    for d in rlds_dirs:
        rlds = open_dir(as_path(d))
        if "steps/" + EMBEDDING_KEY not in rlds.features:
            raise DataError(f"{rlds.features_file}: no per-step {EMBEDDING_KEY!r} feature to condition lc_bc on; "
                            f"{FIX}")


# -- the pipeline steps (tf) ------------------------------------------------------------------------

def _embed_text(text: tf.Tensor, name: str) -> tf.Tensor:
    import tensorflow as tf

    enc = text_encoder(name)

    def run(t: tf.Tensor) -> np.ndarray:
        return enc.encode([t.numpy().decode("utf-8")])[0]

    out = tf.py_function(run, [text], tf.float32)
    out.set_shape([enc.dim])
    return out


def take_instruction(traj: dict[str, Any], seed: tf.Tensor,
                     opts: LanguageOptions) -> tuple[dict[str, Any], dict[str, tf.Tensor] | None]:
    """Pop the trajectory's instructions ("language" [L], "language_embedding" [L, E]) and pick one uniformly
    (seeded); -> (the trajectory without them, {"embedding": [E], "labeled": bool}) or None without language."""
    import tensorflow as tf

    traj = dict(traj)
    language, stored = traj.pop("language", None), traj.pop(EMBEDDING_KEY, None)
    if not opts.load:
        return traj, None
    if language is None:
        raise ValueError("load_language is on but the trajectory has no 'language' (decode with load_language)")
    pick = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 7), 0,
                                       tf.size(language), tf.int32)
    text = tf.strings.strip(language[pick])
    if opts.text_encoder is not None:
        embedding = _embed_text(text, opts.text_encoder)
    elif stored is not None:
        embedding = tf.cast(stored[pick], tf.float32)
    else:
        raise ValueError(f"no stored {EMBEDDING_KEY!r} and no text_encoder")
    return traj, {"embedding": embedding, "labeled": tf.strings.length(text) > 0}


def attach(traj: dict[str, Any], instruction: dict[str, tf.Tensor] | None, opts: LanguageOptions) -> dict[str, Any]:
    """goals/language = the instruction's embedding at every step [T, E]; an unlabeled trajectory is cut to zero
    steps when skip_unlabeled (so it yields no transition, as the original's filter)."""
    import tensorflow as tf

    if instruction is None:
        return traj
    length = tf.shape(traj["actions"])[0]
    emb = instruction["embedding"]
    traj = {**traj, "goals": {**traj["goals"], "language": tf.tile(emb[None], [length, 1])}}  # [T, E]
    if opts.skip_unlabeled:
        keep = tf.where(instruction["labeled"], length, 0)
        traj = tf.nest.map_structure(lambda x: x[:keep], traj)
    return traj
