"""Code of an older API era read from the libraries' own translation tables: TensorFlow 1.x code on TensorFlow 2
(doctor/api/tf1_names.json, built by tools/tf1_names/build.py from TensorFlow's upgrade tool) and Keras 1 keywords
under a later Keras (doctor/api/keras1_names.json, from Keras 2's legacy interfaces). Each wording here is one no
corpus log carries: the table, not a log, names the cause."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

from bdv2.doctor.api.keras1 import keras1_keyword
from bdv2.doctor.api.tf1 import TABLE, tf1_name
from bdv2.doctor.api.wheel_pythons import wheel_pythons
from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix

ROOT = Path(__file__).resolve().parents[2]


def first(text: str, matrix: Matrix):  # type: ignore[no-untyped-def]
    return next(f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO)


def test_the_table_knows_the_common_tf1_names_and_where_they_live() -> None:
    raw = json.loads(TABLE.read_text())
    assert raw["source"].startswith("https://www.tensorflow.org/")
    assert len(raw["renames"]) > 500 and all(v.startswith("tf.") for v in raw["renames"].values())
    assert tf1_name("tensorflow.random_normal").now == "tf.random.normal"  # type: ignore[union-attr]
    assert tf1_name("tensorflow._api.v2.nn.rnn_cell.LSTMCell") is not None
    assert tf1_name("tensorflow.contrib.layers").now is None  # type: ignore[union-attr]
    # names TensorFlow 2 has are never reported, however the log spells the namespace
    assert tf1_name("tensorflow.math.log") is None and tf1_name("tensorflow._api.v2.io.gfile") is None
    assert tf1_name("tensorflow.compat.v1.Session") is None and tf1_name("jax.tree_map") is None


def test_a_tf1_name_missing_from_tensorflow_2_is_tf1_code(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/ana/gan/train.py\", line 41, in <module>\n"
            "    z = tf.random_normal([batch, 100])\n"
            "AttributeError: module 'tensorflow' has no attribute 'random_normal'")
    f = first(text, matrix)
    assert f.id == "log-era-mismatch"
    assert "TensorFlow 1.x" in f.title and "tf.random.normal" in f.title
    assert "train.py, line 41" in f.title
    assert f.fix is not None and 'tensorflow<2' in " ".join(f.fix.commands)


def test_a_package_calling_a_tf1_name_is_named_as_the_one_to_upgrade(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"run.py\", line 3, in <module>\n    import tflearn\n"
            "  File \"/opt/conda/lib/python3.8/site-packages/tflearn/__init__.py\", line 8, in <module>\n"
            "    from . import config\n"
            "  File \"/opt/conda/lib/python3.8/site-packages/tflearn/config.py\", line 5, in <module>\n"
            "    tf.logging.set_verbosity(tf.logging.ERROR)\n"
            "AttributeError: module 'tensorflow' has no attribute 'logging'\n"
            "tensorflow==2.4.1")
    f = first(text, matrix)
    assert f.id == "log-era-mismatch" and f.title.startswith("tflearn was written for TensorFlow 1.x")
    assert "TensorFlow 2.4.1" in f.title
    assert f.fix is not None and "pip install --upgrade tflearn" in f.fix.commands


def test_python_2s_submodule_below_the_package_is_read_from_the_import_line(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"eval.py\", line 7, in <module>\n"
            "    from tensorflow.contrib.framework import arg_scope\n"
            "ImportError: No module named contrib.framework")
    f = first(text, matrix)
    assert f.id == "log-era-mismatch" and "tf.contrib.framework" in f.title


def test_a_tensorflow_1_release_lacking_a_name_is_not_tf1_code(matrix: Matrix) -> None:
    # tf.layers arrived in TensorFlow 1.1: under 1.0 the code is newer than the install, not older
    text = ("tensorflow-gpu==1.0.0\nTraceback (most recent call last):\n  File \"a.py\", line 2, in <module>\n"
            "    h = tf.layers.dense(x, 64)\n"
            "AttributeError: module 'tensorflow' has no attribute 'layers'")
    assert tf1_name("tensorflow.layers") is not None
    f = first(text, matrix)
    assert "written for TensorFlow 1.x" not in f.title


def test_a_name_tensorflow_2_has_is_not_tf1_code(matrix: Matrix) -> None:
    # a local file named tensorflow.py, or a broken install: TensorFlow 2 has tf.function
    text = "AttributeError: module 'tensorflow' has no attribute 'function'"
    f = first(text, matrix)
    assert "written for TensorFlow 1.x" not in f.title


def test_the_build_reads_the_first_tf2_api_from_a_wheels_generated_files(tmp_path: Path) -> None:
    build = _build_module("tf1_names")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the layout of tensorflow_cpu-2.1.0's wheel
        z.writestr("tensorflow_core/__init__.py", "from . _api.v2 import math\nfrom tensorflow.python.ops.gen_math_ops"
                   " import log1p as _log1p\nfrom tensorflow.python.framework.ops import Graph\n")
        z.writestr("tensorflow_core/_api/v2/math/__init__.py", "from tensorflow.python.ops.gen_math_ops import log\n")
    wheel = tmp_path / "tensorflow_cpu-2.1.0-cp37-cp37m-manylinux2010_x86_64.whl"
    wheel.write_bytes(buf.getvalue())
    assert build.first_tf2_api(wheel) == {"tf.math", "tf.Graph", "tf.math.log"}


def _build_module(tool: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "tools" / tool))
    try:
        sys.modules.pop("build", None)
        import build  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return build


def test_keras_1_keywords_renamed_by_keras_2() -> None:
    assert keras1_keyword("nb_epoch", keras_in_sight=False) == ("epochs",)
    assert "kernel_initializer" in (keras1_keyword("init", keras_in_sight=True) or ())
    assert keras1_keyword("init", keras_in_sight=False) is None  # a common word: only where Keras is in sight
    assert keras1_keyword("padding", keras_in_sight=True) is None  # a Keras 2 name is not a Keras 1 one


def test_a_keras_1_keyword_refused_by_a_later_keras_names_the_new_one(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/li/seq/train_lstm.py\", line 52, in <module>\n"
            "    model.add(LSTM(128, inner_activation='hard_sigmoid', return_sequences=True))\n"
            "TypeError: __init__() got an unexpected keyword argument 'inner_activation'")
    f = first(text, matrix)
    assert f.id == "log-era-mismatch" and "Keras 1" in f.title
    assert "LSTM()" in f.title and "`recurrent_activation=`" in f.title and "train_lstm.py, line 52" in f.title


def test_a_package_passing_a_keras_1_keyword_is_the_one_to_upgrade(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"run.py\", line 4, in <module>\n    agent.fit(env)\n"
            "  File \"/opt/venv/lib/python3.8/site-packages/rl/core.py\", line 120, in fit\n"
            "    self.model.fit(x, y, nb_epoch=1, verbose=0)\n"
            "TypeError: fit() got an unexpected keyword argument 'nb_epoch'")
    f = first(text, matrix)
    assert f.id == "log-era-mismatch" and f.title.startswith("rl was written for Keras 1")
    assert f.fix is not None and "pip install --upgrade rl" in f.fix.commands and "rl" in f.packages


def test_keras_3s_own_refusal_of_a_keras_1_keyword(matrix: Matrix) -> None:
    text = "ValueError: Unrecognized keyword arguments passed to MaxPooling2D: {'dim_ordering': 'th'}"
    f = first(text, matrix)
    assert f.id == "log-era-mismatch" and "`data_format=`" in f.title


def test_a_common_keyword_outside_keras_is_not_keras_1(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"sim.py\", line 9, in <module>\n"
            "    w = World(init=cfg)\nTypeError: __init__() got an unexpected keyword argument 'init'")
    assert all("Keras 1" not in f.title for f in diagnose_log(text, matrix))


def test_the_keras_build_reads_the_conversions_and_drops_reverse_pairs() -> None:
    build = _build_module("keras1_names")
    source = ("legacy_dense_support = generate_legacy_interface(\n    allowed_positional_args=['units'],\n"
              "    conversions=[('output_dim', 'units'), ('init', 'kernel_initializer')])\n"
              "def conv_args(args, kwargs):\n    converted = []\n"
              "    converted.append(('kernel_size', 'nb_row/nb_col'))\n"
              "    converted.append(('nb_filter', 'filters'))\n")
    assert build.renamed_keywords(source) == {"init": ["kernel_initializer"], "nb_filter": ["filters"],
                                              "output_dim": ["units"]}


def test_the_pythons_of_a_pinned_release_read_as_pip_reads_the_pin() -> None:
    # PyPI's wheels of tensorflow-gpu 1.15.0 are cp35-cp37; `==1.15` is 1.15.0 to pip (PEP 440 zero padding)
    assert wheel_pythons("tensorflow-gpu", "1.15") == wheel_pythons("tensorflow_gpu", "1.15.0") == ("3.5", "3.7")
    # `==1.15.*` spans every 1.15 release (1.15.5 dropped 3.5)
    assert wheel_pythons("tensorflow-gpu", "1.15.*") == ("3.5", "3.7")
    assert wheel_pythons("tensorflow", "2.16.1") == ("3.9", "3.12")
    assert wheel_pythons("tensorflow", "9.9.9") is None and wheel_pythons("no-such-package", "1.0") is None
