"""Log families (doctor/log_families.toml), the normaliser (doctor/lognorm.py) and the culprit read from frames.

The families' wordings follow the sources that print them (each family's `source`); the culprit cases are the
ones a new user met: the original BridgeData V2 `experiments/train.py` calling `jax.tree_map` under absl's
`app.run`, the same call inside flax's `train_state.py`, `jax.random.KeyArray` in a user's own
`jaxrl_m/common/typing.py`, and TensorFlow's data pipeline failing with "DNN library is not found".
"""

from __future__ import annotations

import random
import re

import pytest

from bdv2.doctor.findings import Finding, Severity
from bdv2.doctor.logs.families import FamilyError, catalogue, load_catalogue, raised_by, unbounded_repeat
from bdv2.doctor.logs.normalise import MAX_LINE, decode, distinct_lines, literal_keys, newer, normalise
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix

SITE = "/home/u/.venv/lib/python3.10/site-packages"


def causes(text: str, matrix: Matrix) -> list[Finding]:
    return [f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]


def everything(findings: list[Finding]) -> str:
    return "\n".join(f"{f.title}\n{f.fix.summary if f.fix else ''}\n{' '.join(f.fix.commands if f.fix else ())}\n"
                     + "\n".join(f.evidence) for f in findings)


# --- the culprit from the frames ------------------------------------------------------------------------------

TRAIN_PY_TREE_MAP = f'''Traceback (most recent call last):
  File "/home/u/bridge_data_v2/experiments/train.py", line 195, in <module>
    app.run(main)
  File "{SITE}/absl/app.py", line 308, in run
    _run_main(main, args)
  File "{SITE}/absl/app.py", line 254, in _run_main
    sys.exit(main(argv))
  File "/home/u/bridge_data_v2/experiments/train.py", line 152, in main
    agent = jax.device_put(jax.tree_map(jnp.array, agent), sharding.replicate())
  File "{SITE}/jax/_src/deprecations.py", line 54, in getattr
    raise AttributeError(message)
AttributeError: jax.tree_map was removed in JAX v0.6.0: use jax.tree.map (jax v0.4.25 or newer) or \
jax.tree_util.tree_map (any JAX version).
'''


def test_the_users_own_file_is_the_culprit_not_absl_or_optax(matrix: Matrix) -> None:
    found = causes(TRAIN_PY_TREE_MAP, matrix)
    first = found[0]
    assert "experiments/train.py, line 152" in first.title + first.fix.summary  # type: ignore[union-attr]
    assert "jax.device_put(jax.tree.map(jnp.array, agent), sharding.replicate())" in first.fix.summary  # type: ignore[union-attr]
    assert "optax" not in first.title + first.fix.summary  # type: ignore[union-attr]
    assert not any("absl" in f.title for f in found), [f.title for f in found]


def test_a_package_frame_is_the_culprit_with_its_own_upgrade(matrix: Matrix) -> None:
    text = f'''Traceback (most recent call last):
  File "/home/u/bridge_data_v2/experiments/train.py", line 195, in <module>
    app.run(main)
  File "{SITE}/absl/app.py", line 254, in _run_main
    sys.exit(main(argv))
  File "/home/u/bridge_data_v2/experiments/train.py", line 170, in main
    agent, update_info = agent.update(batch)
  File "{SITE}/flax/training/train_state.py", line 89, in apply_gradients
    new_params = jax.tree_map(lambda p, u: p + u, self.params, updates)
AttributeError: module 'jax' has no attribute 'tree_map'
'''
    first = causes(text, matrix)[0]
    assert first.id == "sig-jax-tree-map-removed"  # the id names the cause; its words name who made the call
    assert "flax" in first.title and "optax" not in first.title + first.fix.summary  # type: ignore[union-attr]
    assert "flax" in first.fix.summary  # type: ignore[union-attr]


def test_keyarray_in_the_users_own_module_names_the_file_and_no_template_text(matrix: Matrix) -> None:
    text = '''Traceback (most recent call last):
  File "/home/u/bridge_data_v2/experiments/train.py", line 12, in <module>
    from jaxrl_m.agents import agents
  File "<frozen importlib._bootstrap>", line 1027, in _find_and_load
  File "/home/u/jaxrl_m/jaxrl_m/agents/__init__.py", line 1, in <module>
    from .continuous.bc import BCAgent
  File "/home/u/jaxrl_m/jaxrl_m/common/typing.py", line 9, in <module>
    PRNGKey = jax.random.KeyArray
AttributeError: module 'jax.random' has no attribute 'KeyArray'
jax 0.4.30
'''
    found = causes(text, matrix)
    first = found[0]
    assert "jaxrl_m/common/typing.py, line 9" in first.title
    assert "`PRNGKey = jax.Array`" in first.fix.summary  # type: ignore[union-attr]
    assert "chex" not in first.title + first.fix.summary  # type: ignore[union-attr]
    assert "the caller`" not in everything(found) and "{" not in everything(found)


def test_tensorflows_data_pipeline_failing_on_cudnn_is_about_tensorflows_cuda(matrix: Matrix) -> None:
    tf = f"{SITE}/tensorflow/python"
    text = f'''Traceback (most recent call last):
  File "/home/u/bridge_data_v2/experiments/train.py", line 160, in main
    batch = next(train_data_iter)
  File "{tf}/data/ops/iterator_ops.py", line 810, in __next__
    return self._next_internal()
  File "{tf}/ops/gen_dataset_ops.py", line 3029, in iterator_get_next
    _ops.raise_from_not_ok_status(e, name)
  File "{tf}/framework/ops.py", line 5883, in raise_from_not_ok_status
    raise core._status_to_exception(e) from None  # pylint: disable=protected-access
tensorflow.python.framework.errors_impl.NotFoundError: {{{{function_node __wrapped__IteratorGetNext}}}} DNN \
library is not found.
\t [[{{{{node resize/ResizeBilinear}}}}]] [Op:IteratorGetNext] name:
'''
    assert raised_by(normalise(text)) == "tensorflow"
    first = causes(text, matrix)[0]
    assert first.id == "sig-dnn-library-init"
    assert "TensorFlow" in first.title and "jaxlib" not in first.title
    assert "tensorflow" in " ".join(first.fix.commands)  # type: ignore[union-attr]
    # the same message from XLA stays about jax's cuDNN
    jax_first = causes("jaxlib.xla_extension.XlaRuntimeError: FAILED_PRECONDITION: DNN library initialization "
                       "failed. Look at the errors above for more details.", matrix)[0]
    assert jax_first.id == "sig-dnn-library-init" and "TensorFlow (its ops" not in jax_first.title


# --- the new families, each in the wording its source prints -------------------------------------------------

@pytest.mark.parametrize(("text", "family"), [
    ("jax._src.xla_bridge: Jax plugin configuration error: Exception when calling jax_plugins.xla_cuda12.initialize()\n"
     "jaxlib.xla_extension.XlaRuntimeError: INVALID_ARGUMENT: Mismatched PJRT plugin PJRT API version (0.54) and "
     "framework PJRT API version 0.57).", "log-pjrt-plugin-api-mismatch"),
    ("RuntimeError: Unable to initialize backend 'tpu': INVALID_ARGUMENT: Plugin PJRT API version 0.23 is older than "
     "the minimum supported version 0.29 (libtpu)", "log-pjrt-plugin-api-mismatch"),
    ("E external/xla/xla/pjrt/c/pjrt_c_api_helpers.cc:41] Unexpected PJRT_Client_Create_Args size: expected 88, got "
     "80. Check installed software versions. The framework PJRT API version is 0.40.", "log-pjrt-plugin-api-mismatch"),
    ("RuntimeError: CUDA error: no kernel image is available for execution on the device",
     "log-gpu-arch-unsupported"),
    ("RuntimeError: Found NVIDIA GeForce GTX 1080 which has compute capability 6.1; Triton only supports devices "
     "of CUDA compute capability >= 7.0", "log-gpu-arch-unsupported"),
    ("W tensorflow/core/common_runtime/gpu/gpu_device.cc:2211] TensorFlow was not built with CUDA kernel binaries "
     "compatible with compute capability 12.0. CUDA kernels will be jit-compiled from PTX, which could take 30 "
     "minutes or longer.\nINTERNAL: CUDA_ERROR_NO_BINARY_FOR_GPU", "log-gpu-arch-unsupported"),
    ("  File \"train.py\", line 8, in <module>\n    tf.config.experimental.set_memory_growth(gpu, True)\n"
     "RuntimeError: Physical devices cannot be modified after being initialized", "log-tf-device-config-after-init"),
    ("RuntimeError: Visible devices cannot be modified after being initialized", "log-tf-device-config-after-init"),
    ("RuntimeError: GPU options must be set at program startup", "log-tf-device-config-after-init"),
    ("INTERNAL: Unsupported CUDA architecture: sm_120", "log-gpu-arch-unsupported"),
    ("ValueError: Your currently installed version of Keras is Keras 3, but this is not yet supported in "
     "Transformers. Please install the backwards-compatible tf-keras package with `pip install tf-keras`.",
     "log-tf-keras-missing"),
    ("ModuleNotFoundError: No module named 'tf_keras'", "log-tf-keras-missing"),
    ("ValueError: You have tensorflow 2.16.1 and this requires tf-keras package. Please run `pip install tf-keras` "
     "or downgrade your tensorflow.", "log-tf-keras-missing"),
    ("ModuleNotFoundError: No module named 'keras.src.engine'", "log-tf-keras-missing"),
    ("ImportError: This version of TensorFlow Probability requires TensorFlow version >= 2.4; Detected an "
     "installation of version 1.15.0. Please upgrade TensorFlow to proceed.", "log-tfp-needs-tf2"),
    ("AttributeError: scipy.misc.imresize was removed in SciPy 1.3.0. Use Pillow instead: "
     "numpy.array(Image.fromarray(arr).resize())", "log-stated-removal"),
    # a batch that does not divide over the devices, far from a divisibility message
    ("  File \"train.py\", line 40, in shard\n    return x.reshape((jax.local_device_count(), -1) + x.shape[1:])\n"
     "ValueError: cannot reshape array of size 6080 into shape (8,newaxis,10,32)",
     "sig-batch-not-divisible-by-devices"),
    ("ValueError: shard_map applied to the function 'step' was given argument arrays with axis sizes that are not "
     "evenly divisible by the corresponding mesh axis sizes:", "sig-batch-not-divisible-by-devices"),
    # TensorFlow's and older XLA's words for running out of device memory
    ("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with "
     "shape[256,64,64,128] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc",
     "sig-xla-out-of-memory"),
    ("RuntimeError: Resource exhausted: Failed to allocate 4.00GiB", "sig-xla-out-of-memory"),
])
def test_each_family_is_named_first_in_its_sources_wording(matrix: Matrix, text: str, family: str) -> None:
    found = causes(text, matrix)
    assert found[0].id == family, [(f.id, f.title) for f in found]
    assert found[0].fix and found[0].fix.summary
    assert "{" not in everything(found[:1]), "every placeholder filled or left out"
    assert not re.search(r"<[a-z_]+>", everything(found[:1])), "no placeholder-like text"


def test_pjrt_command_follows_the_backend(matrix: Matrix) -> None:
    tpu = causes("RuntimeError: Unable to initialize backend 'tpu': INVALID_ARGUMENT: Plugin PJRT API version 0.23 "
                 "is older than the minimum supported version 0.29 (libtpu)", matrix)[0]
    assert tpu.fix is not None and 'pip install --upgrade "jax[tpu]"' in tpu.fix.commands
    unknown = causes("Mismatched PJRT plugin PJRT API version (0.54) and framework PJRT API version 0.57).", matrix)[0]
    assert unknown.fix is not None and not any("jax[" in c for c in unknown.fix.commands)


def test_pjrt_facts_say_which_side_is_older(matrix: Matrix) -> None:
    text = "INVALID_ARGUMENT: Mismatched PJRT plugin PJRT API version (0.54) and framework PJRT API version 0.57)."
    first = causes(text, matrix)[0]
    assert "plugin 0.54, framework 0.57" in first.title
    assert first.fix is not None and first.fix.summary.startswith("the plugin is older than the framework")
    newer_plugin = causes(text.replace("(0.54)", "(0.61)"), matrix)[0]
    assert newer_plugin.fix is not None and newer_plugin.fix.summary.startswith("the plugin is newer")


def test_a_stated_removal_in_a_warning_is_harmless(matrix: Matrix) -> None:
    text = ("/x/site-packages/foo/bar.py:12: FutureWarning: foo.baz was removed in foo 2.0. Use foo.qux instead.\n"
            "step 100 loss 0.1\n")
    found = diagnose_log(text, matrix)
    stated = [f for f in found if f.id == "log-stated-removal"]
    assert stated and stated[0].severity is Severity.INFO
    assert found[-1].id == "log-no-known-cause"


def test_the_family_data_refuses_unbounded_repeats_and_unfilled_placeholders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert unbounded_repeat(r"a\d+b") and unbounded_repeat(r"x.*") and unbounded_repeat(r"a{2,}")
    assert unbounded_repeat(r"[+*]{1,3}\*\+a{2,5}") is None
    bad = tmp_path / "f.toml"
    bad.write_text('[[families]]\nid = "x"\ntitle = "t"\nthreshold = 1\nsource = "https://x"\nfix = "f"\n'
                   'cues = [[1, "a.*b"]]\n')
    with pytest.raises(FamilyError, match="unbounded"):
        load_catalogue(bad)
    bad.write_text('[[families]]\nid = "x"\ntitle = "{gpu}"\nthreshold = 1\nsource = "https://x"\nfix = "f"\n'
                   'cues = [[1, "a"]]\n')
    with pytest.raises(FamilyError, match="placeholders"):
        load_catalogue(bad)
    assert len(catalogue().families) >= 6


def test_a_new_wording_is_data_not_code(tmp_path, matrix: Matrix) -> None:  # type: ignore[no-untyped-def]
    """A family with one more cue in its data file names a wording the shipped one does not."""
    from bdv2.doctor.logs import families

    wording = "FATAL: the accelerator runtime refuses plugin ABI 7 (host speaks ABI 9)"
    assert causes(wording, matrix)[0].id != "log-pjrt-plugin-api-mismatch"
    text = families.FAMILIES_PATH.read_text().replace(
        '  [1, "PJRT_Api|GetPjrtApi', '  [4, "refuses plugin ABI (?P<plugin_api>\\\\d{1,3}) \\\\(host speaks ABI '
        '(?P<framework_api>\\\\d{1,3})"],\n  [1, "PJRT_Api|GetPjrtApi', 1)
    path = tmp_path / "families.toml"
    path.write_text(text)
    cat = load_catalogue(path)
    fams, _ = families.family_findings(normalise(wording), None, "log", cat)
    assert fams and fams[0].id == "log-pjrt-plugin-api-mismatch" and "plugin 7, framework 9" in fams[0].title


# --- the normaliser ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "lib", "dotted"), [
    ("8100", "cudnn", "8.1.0"), ("8302", "cudnn", "8.3.2"), ("90100", "cudnn", "9.1.0"), ("91000", "cudnn", "9.10.0"),
    ("7605", "cudnn", "7.6.5"), ("11080", "cuda", "11.8"), ("12020", "cuda", "12.2"), ("10010", "cuda", "10.1"),
    ("120103", "cublas", "12.1.3"), ("11501", "cusolver", "11.5.1"), ("0.4.26+cuda12.cudnn89", "", "0.4.26"),
    ("2.15.0.post1", "", "2.15.0"), ("9.1.0", "cudnn", "9.1.0"), ("banana", "", None),
])
def test_versions_in_every_encoding(raw: str, lib: str, dotted: str | None) -> None:
    assert decode(raw, lib) == dotted


def test_version_order() -> None:
    assert newer("9.10.0", "9.9") and not newer("9.1", "9.1.0") and newer("0.57", "0.54")


def test_prefixes_redrawn_lines_and_broken_words(matrix: Matrix) -> None:
    text = ("[rank3]: 2024-05-01T10:00:00.123Z ERROR trainer-1  | x\n"
            "web-1  | 2024-05-01 10:00:00,123 - INFO - ready\n"
            "epoch 1\r 10%|#   \r 50%|#####  \r100%|##########\n"
            "RuntimeError: Physical devices cannot be modified after being initia\nlized\n")
    out = normalise(text, catalogue().vocabulary | {"initialized"}).splitlines()
    assert out[1] == "ready"
    assert out[2] == "100%|##########"
    assert out[3] == "RuntimeError: Physical devices cannot be modified after being initialized"


def test_a_terminal_wrapped_log_is_joined_at_its_width() -> None:
    msg = ("Loaded runtime CuDNN library: 8.0.5 but source was compiled with: 8.6.0.  CuDNN library needs to have "
           "matching major version and equal or higher minor version. If using a binary install, upgrade your CuDNN "
           "library.")
    text = f"{msg} {msg}"
    wrapped = "\n".join(text[i:i + 80] for i in range(0, len(text), 80))
    assert text in normalise(wrapped)


def test_packed_cudnn_versions_of_old_tensorflow_are_read(matrix: Matrix) -> None:
    text = ("E tensorflow/stream_executor/cuda/cuda_dnn.cc:363] Loaded runtime CuDNN library: 7103 (compatibility "
            "version 7100) but source was compiled with 7005 (compatibility version 7000).  If using a binary "
            "install, upgrade your CuDNN library to match.")
    first = causes(text, matrix)[0]
    assert first.id == "sig-cudnn-runtime-older-than-compiled"


def test_tensorflows_loader_missing_its_own_cuda_is_a_cause_when_it_gives_up_the_gpu(matrix: Matrix) -> None:
    line = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: No such file or "
            "directory")
    # beside another failure it is a probe for an optional library; the one failure a log shows is what its user met
    other = ('\nTraceback (most recent call last):\n  File "/home/u/train.py", line 3, in <module>\n    x = load()\n'
             "ValueError: the dataset has no split 'train'\n")
    assert causes(line + other, matrix)[0].id == "log-no-known-cause"
    alone = causes(line, matrix)[0]
    assert alone.id == "sig-cuda-lib-missing-so" and "TensorFlow" in alone.title
    gave_up = line + ("\nW tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. "
                      "Please make sure the missing libraries mentioned above are installed properly if you would like "
                      "to use GPU. Skipping registering GPU devices...")
    first = causes(gave_up, matrix)[0]
    assert first.id == "sig-cuda-lib-missing-so" and "TensorFlow" in first.title


def test_literal_keys_are_what_every_match_contains() -> None:
    assert literal_keys(r"Outdated (cuBLAS|cuSPARSE) installation found") == (" installation found",)
    assert set(literal_keys(r"(?:foo|barbaz)\d{1,3}") or ()) == {"foo", "barbaz"}
    assert literal_keys(r"(?:foo|\d)x") is None


def test_a_pre_check_key_is_not_a_word_every_log_carries() -> None:
    # "jax[-_]mps" is looked for as "mps", not as "jax", which nearly every log here contains
    assert literal_keys(r"jax[-_]mps\b|tensorflow[-_]metal") == ("mps", "metal")


def test_repeated_lines_are_read_once_in_order() -> None:
    text = "a\nb\na\nc\nb"
    assert distinct_lines(text) == "a\nb\nc"
    assert distinct_lines("x\ny") == "x\ny"


def test_a_log_repeating_its_lines_gives_the_findings_of_one_copy(matrix: Matrix) -> None:
    once = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: No such file or "
            "directory\n")
    many = once * 500 + TRAIN_PY_TREE_MAP
    assert [f.id for f in diagnose_log(many, matrix)] == [f.id for f in diagnose_log(once + TRAIN_PY_TREE_MAP,
                                                                                      matrix)]


# --- when unsure -------------------------------------------------------------------------------------------------

def test_unsure_names_the_closest_family_the_frames_packages_and_not_only_deep(matrix: Matrix) -> None:
    text = f'''Traceback (most recent call last):
  File "/home/u/run.py", line 3, in <module>
    main()
  File "{SITE}/orbax/checkpoint/checkpointer.py", line 200, in restore
    raise ValueError(msg)
ValueError: restore failed on set_memory_growth path
orbax-checkpoint==0.5.3
'''
    last = diagnose_log(text, matrix)[-1]
    assert last.id == "log-no-known-cause"
    assert last.evidence[0].startswith("last exception: ValueError")
    joined = "\n".join(last.evidence)
    assert "closest known cause: log-tf-device-config-after-init" in joined
    assert "orbax-checkpoint 0.5.3" in joined
    assert last.fix is not None and "bdv2 matrix list" in last.fix.commands and "--python" in last.fix.summary


# --- any input, linear time, never a traceback -------------------------------------------------------------------

@pytest.mark.parametrize("length", [3000, 10000])
def test_a_long_line_without_spaces_is_read(matrix: Matrix, length: int) -> None:
    for ch in ("a", "1.", "x-", "/"):
        text = (ch * length)[:length]
        assert diagnose_log(text, matrix)[-1].id == "log-no-known-cause"
        assert diagnose_log("pip: " + text + " has no wheels with a matching platform tag and you require x",
                            matrix)


def test_random_bytes_and_a_20_mb_log_are_read(matrix: Matrix) -> None:
    rng = random.Random(7)
    assert diagnose_log(rng.randbytes(200_000).decode("latin-1"), matrix)
    blob = "".join(rng.choice("abcdef0123456789+/") for _ in range(10_000))
    big = (blob + "\n") * 2000 + TRAIN_PY_TREE_MAP  # 20 MB: every line cut to a sane length, the cause still found
    assert len(big) > 20_000_000
    found = diagnose_log(big, matrix)
    assert found[0].id == "sig-jax-tree-map-removed"
    assert max(len(ln) for ln in normalise(big[:100_000]).splitlines()) <= MAX_LINE + 100


# --- what the message says, for any package ----------------------------------------------------------------------

@pytest.mark.parametrize(("line", "said"), [
    ("ImportError: tensorstore 0.1.45 is installed but orbax-checkpoint requires tensorstore>=0.1.51",
     "orbax-checkpoint needs tensorstore>=0.1.51, which excludes the installed tensorstore 0.1.45"),
    ("ImportError: tokenizers>=0.11.1,!=0.11.3,<0.14 is required for a normal functioning of this module, but found "
     "tokenizers==0.14.0.", "needs tokenizers>=0.11.1,!=0.11.3,<0.14, which excludes the installed tokenizers 0.14.0"),
    ("pkg_resources.ContextualVersionConflict: (ml-dtypes 0.3.1 (/usr/lib/python3/dist-packages), "
     "Requirement.parse('ml-dtypes~=0.2.0'), {'tensorflow'})",
     "tensorflow needs ml-dtypes~=0.2.0, which excludes the installed ml-dtypes 0.3.1"),
    ("RuntimeError: flax 0.8.0 requires jax>=0.4.19, but found jax 0.4.13",
     "flax 0.8.0 needs jax>=0.4.19, which excludes the installed jax 0.4.13"),
])
def test_an_installed_conflict_is_read_from_the_message_for_any_package(matrix: Matrix, line: str, said: str) -> None:
    first = causes(line, matrix)[0]
    assert first.id == "log-installed-conflict"
    assert said in first.title


def test_a_stated_requirement_the_installed_version_meets_is_not_a_conflict(matrix: Matrix) -> None:
    assert causes("note: x 1.0 requires y>=1, but found y 2.0", matrix)[0].id != "log-installed-conflict"


# --- the development corpus in other shapes: the same first cause ---------------------------------------------

def _wrapped(text: str, width: int) -> str:
    return "\n".join(part for ln in text.split("\n") for part in ([ln[i:i + width] for i in range(0, len(ln), width)]
                                                                    or [""]))


SHAPES = {
    "terminal-80": lambda t: _wrapped(t, 80),
    "rank-and-timestamp": lambda t: "\n".join(f"[rank0]: 2024-05-01 10:00:{i % 60:02d},123 - ERROR - {ln}"
                                              for i, ln in enumerate(t.split("\n"))),
    "container-then-terminal-120": lambda t: _wrapped("\n".join(f"trainer-1  | {ln}" for ln in t.split("\n")), 120),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_corpus_keeps_its_first_cause_in_other_shapes(matrix: Matrix, shape: str) -> None:
    from .test_log_ranking import ALL, _expected, _first_cause, corpus_text

    misses = [p.name for p in ALL
              if _first_cause(diagnose_log(SHAPES[shape](corpus_text(p)), matrix, p.name)).id != _expected(p)]
    assert not misses, misses


def test_tensorflows_own_cudnn_message_is_about_tensorflows_cudnn(matrix: Matrix) -> None:
    msg = ("Loaded runtime CuDNN library: 8.0.5 but source was compiled with: 8.1.0.  CuDNN library needs to have "
           "matching major version and equal or higher minor version.")
    tf = causes(f"E tensorflow/stream_executor/cuda/cuda_dnn.cc:362] {msg}", matrix)[0]
    xla = causes(f"E external/xla/xla/stream_executor/cuda/cuda_dnn.cc:535] {msg}", matrix)[0]
    assert tf.id == xla.id == "sig-cudnn-runtime-older-than-compiled"
    assert "TensorFlow" in tf.title and "tensorflow[and-cuda]" in " ".join(tf.fix.commands)  # type: ignore[union-attr]
    assert "jaxlib" in xla.title


def test_tensorflows_soname_names_the_cuda_of_its_build(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 1, in <module>\n"
            "    import tensorflow as tf\n"
            "ImportError: libcublas.so.10.0: cannot open shared object file: No such file or directory\n\n"
            "Failed to load the native TensorFlow runtime.\n")
    first = causes(text, matrix)[0]
    assert first.id == "sig-cuda-lib-missing-so" and "TensorFlow" in first.title
    assert any("TensorFlow 1.13-2.0 (CUDA 10.0, cuDNN 7.4)" in e for e in first.evidence), first.evidence


def test_a_stated_removal_is_cross_checked_with_the_api_history(matrix: Matrix) -> None:
    first = causes("AttributeError: jax.experimental.maps was removed in JAX v0.4.31. Use jax.sharding.Mesh "
                   "instead.", matrix)[0]
    assert first.id == "log-stated-removal" and "jax.sharding.Mesh" in first.title
    assert "API history: `jax.experimental.maps` was removed in jax 0.4.31 (last in 0.4.30)" in \
        "\n".join(first.evidence)
    assert first.fix is not None and 'pip install "jax<0.4.31"' in first.fix.commands


def test_no_matching_distribution_is_cross_checked_with_the_matrix_rows(matrix: Matrix) -> None:
    text = ("Python 3.12.3\nERROR: Could not find a version that satisfies the requirement tensorflow-cpu==2.15.1 "
            "(from versions: 2.16.1, 2.16.2, 2.17.0)\n"
            "ERROR: No matching distribution found for tensorflow-cpu==2.15.1\n")
    found = causes(text, matrix)
    # the release's wheels on PyPI stop at CPython 3.11: that comes first, the installer's verdict and the matrix after
    assert found[0].id == "log-python-too-new" and "3.9-3.11" in found[0].title
    first = found[1]
    assert first.id == "log-no-matching-distribution"
    said = [e for e in first.evidence if e.startswith("matrix: row ")]
    assert said and all("tensorflow-cpu 2.15.1" in e and "the log's Python is 3.12, which it does not cover" in e
                        for e in said)


def test_two_equally_long_lines_are_not_a_terminals_wrapping() -> None:
    text = (f'''Traceback (most recent call last):
  File "{SITE}/jax/_src/numpy/lax_numpy.py", line 800, in reshape
    raise TypeError(msg)
TypeError: dot_general requires contracting dimensions to have the same shape, got (512,) and (256,).
flax==0.7.0
''')
    lines = text.splitlines()
    assert len(lines[1]) == len(lines[3]) == max(map(len, lines))  # the shape that once was read as a terminal's
    assert normalise(text).splitlines() == lines


# --- mechanisms the first fresh batch's misses taught (each tried on a wording that batch does not have) ---------

def test_an_exception_quoted_in_a_sentence_is_read_as_raised(matrix: Matrix) -> None:
    prose = ("Running the example fails with `ImportError: cannot import name 'dtype_util' from 'chex._src'` "
             "right at the start.")
    assert causes(prose, matrix)[0].id == "log-missing-name"
    bare = "the script stops with the error module 'optax' has no attribute 'inject_hyperparams' on line 40"
    found = causes(bare, matrix)[0]
    assert found.id == "log-missing-name" and "optax.inject_hyperparams" in found.title
    ci = "Step #3 - \"unit-tests\": AttributeError: module 'numpy' has no attribute 'float_'."
    assert causes(ci, matrix)[0].id in ("log-missing-name", "log-stated-removal")


def test_a_soname_of_another_cuda_release_names_the_release_that_ships_it(matrix: Matrix) -> None:
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:60] Could not load dynamic library "
            "'libcusparse.so.10'; dlerror: libcusparse.so.10: cannot open shared object file: No such file or "
            "directory; LD_LIBRARY_PATH: /usr/local/cuda-11.4/lib64")
    first = causes(text, matrix)[0]
    assert first.id == "log-lib-soname-other-release"
    assert "CUDA 10.1-10.2" in first.title and "CUDA 11.4" in first.title
    several = ("Could not load dynamic library 'libcudart.so.9.0'; dlerror: libcudart.so.9.0: cannot open shared "
               "object file\nCould not load dynamic library 'libcublas.so.9.0'; dlerror: libcublas.so.9.0: cannot "
               "open shared object file")
    assert causes(several, matrix)[0].id == "log-lib-soname-other-release"
    cudnn7 = ("Could not load dynamic library 'libcudnn.so.7'; dlerror: libcudnn.so.7: cannot open shared object "
              "file: No such file or directory\n| NVIDIA-SMI 460.32.03    Driver Version: 460.32.03    CUDA Version: "
              "11.2 |")
    assert "cuDNN 7" in causes(cudnn7, matrix)[0].title
    same = text.replace("cuda-11.4", "cuda-10.2")  # the installed CUDA ships it: a path problem, not this cause
    assert all(f.id != "log-lib-soname-other-release" for f in causes(same, matrix))


def test_jaxlib_too_old_in_other_words_and_wrapped(matrix: Matrix) -> None:
    for text in ("RuntimeError: jaxlib version is 0.4.1 but this version of jax requires 0.4.7.",
                 "RuntimeError: jaxlib is version 0.4.20, but this version\nof jax requires version >= 0.4.23."):
        assert causes(text, matrix)[0].id == "sig-jaxlib-too-old", text


def test_a_driver_older_than_the_toolkit_outranks_the_gpu_architecture(matrix: Matrix) -> None:
    text = ("jaxlib.xla_extension.XlaRuntimeError: INTERNAL: no kernel image is available for execution on the "
            "device\n$ nvidia-smi\n| NVIDIA-SMI 525.85.12    Driver Version: 525.85.12    CUDA Version: 12.0 |\n"
            "$ nvcc --version\nCuda compilation tools, release 12.3, V12.3.107")
    assert causes(text, matrix)[0].id == "sig-ptx-unsupported-toolchain"
    newer_driver = text.replace("CUDA Version: 12.0", "CUDA Version: 12.4")
    assert causes(newer_driver, matrix)[0].id == "log-gpu-arch-unsupported"


def test_other_symptoms_of_known_causes(matrix: Matrix) -> None:
    oom = ("W external/xla/xla/service/hlo_rematerialization.cc:2946] Can't reduce memory use below 10.2GiB "
           "(10952687616 bytes) by rematerialization; only reduced to 14.1GiB\nXLA_PYTHON_CLIENT_MEM_FRACTION=.95")
    assert causes(oom, matrix)[0].id == "sig-xla-out-of-memory"
    plugin = ("jax-metal 0.1.0\njaxlib.xla_extension.XlaRuntimeError: UNIMPLEMENTED: addressable_memories is not "
              "supported")
    assert causes(plugin, matrix)[0].id == "log-pjrt-plugin-api-mismatch"
    op = "jax-metal 0.1.0\nXlaRuntimeError: UNIMPLEMENTED: Unsupported dtype complex128"
    assert all(f.id != "log-pjrt-plugin-api-mismatch" for f in causes(op, matrix))
    shard = ("  x = x.reshape((jax.local_device_count(), -1) + x.shape[1:])\n"
             "InconclusiveDimensionOperation: Cannot divide evenly the sizes of shapes (1001, 64) and (4, -1, 64)")
    assert causes(shard, matrix)[0].id == "sig-batch-not-divisible-by-devices"


def test_tf2_code_on_tf1_and_keras3_module_layouts(matrix: Matrix) -> None:
    tf1 = ("  File \"train.py\", line 3, in <module>\n    import tensorflow.compat.v2 as tf\n"
           "ModuleNotFoundError: No module named 'tensorflow.compat.v2'\n$ pip show tensorflow-gpu\n"
           "Version: 1.12.0\ntensorflow-gpu==1.12.0")
    assert causes(tf1, matrix)[0].id == "log-tfp-needs-tf2"
    k3 = ("  File \"/x/site-packages/tensorflow_hub/keras_layer.py\", line 30, in <module>\n"
          "ImportError: cannot import name 'Layer' from 'keras.src.engine'")
    assert causes(k3, matrix)[0].id == "log-tf-keras-missing"


def test_jax_version_checks_in_other_words(matrix: Matrix) -> None:
    assert causes("RuntimeError: jaxlib version 0.4.36 is newer than and\nincompatible with jax version 0.4.35.",
                  matrix)[0].id == "sig-jaxlib-too-new"
    assert causes("ImportError: this jax requires jaxlib version >= 0.4.14; found jaxlib 0.4.7",
                  matrix)[0].id == "sig-jaxlib-too-old"
    assert causes("ValueError: the global batch size 30 must be divisible by the number of devices (8)",
                  matrix)[0].id == "sig-batch-not-divisible-by-devices"
