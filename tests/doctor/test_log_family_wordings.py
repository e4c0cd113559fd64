"""Each broadened log family names a wording of its cause that none of the corpus logs carries: short real
wordings from public threads and sources (the URL beside each), so a family is proven on the concept, not on the
one log it was written from."""

from __future__ import annotations

from bdv2.doctor.findings import Finding, Severity
from bdv2.doctor.logs.normalise import required_keys
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix


def causes(text: str, matrix: Matrix) -> list[Finding]:
    return [f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]


def first_two(text: str, matrix: Matrix) -> list[str]:
    return [f.id for f in causes(text, matrix)][:2]


# --- TensorFlow's per-GPU settings --------------------------------------------------------------------------------

def test_memory_growth_differing_between_gpus_is_its_own_cause(matrix: Matrix) -> None:
    # https://github.com/rs-station/careless/issues/37 (raised by tensorflow/python/eager/context.py)
    text = ("On a node with multiple GPUs allocated, I get `ValueError: Memory growth cannot differ between GPU "
            "devices`.")
    first = causes(text, matrix)[0]
    assert first.id == "log-tf-memory-growth-differs"
    assert first.fix is not None and "every visible GPU" in first.fix.summary


# --- a batch that does not divide over the devices ----------------------------------------------------------------

def test_shard_maps_per_argument_line_alone_names_the_batch(matrix: Matrix) -> None:
    # jax/_src/shard_map.py, the line it writes per argument (https://github.com/jax-ml/jax/blob/main/jax/_src/
    # shard_map.py): the summary above it may be cut off a pasted log
    text = ("* args[0] of shape float32[12,128], where args[0] is bound to step's parameter 'batch', corresponds to "
            "in_specs[0] of value PartitionSpec('data',), which maps array axis 0 (of size 12) to mesh axes ('data',) "
            "(of total size 8), but 8 does not evenly divide 12")
    assert first_two(text, matrix)[0] == "sig-batch-not-divisible-by-devices"


def test_a_training_scripts_own_divisibility_check_names_the_batch(matrix: Matrix) -> None:
    # the check big_vision's and scenic's trainers make before sharding a batch
    # (https://github.com/google-research/big_vision/blob/main/big_vision/train.py)
    text = ("Traceback (most recent call last):\n  File \"/home/u/big_vision/train.py\", line 120, in main\n"
            "    raise ValueError(f\"Batch size ({batch_size}) must \"\nValueError: Batch size (12) must be divisible "
            "by device number (8)")
    assert first_two(text, matrix)[0] == "sig-batch-not-divisible-by-devices"
    both = "ValueError: Batch sizes (12 and 12) must be divisible by device number (8)"
    assert first_two(both, matrix)[0] == "sig-batch-not-divisible-by-devices"


# --- version checks wrapped by a terminal or an indenting logger ----------------------------------------------------

def test_jaxlib_checks_wrapped_with_indentation_are_read(matrix: Matrix) -> None:
    # jax/_src/lib/__init__.py's check (https://github.com/jax-ml/jax/blob/main/jax/_src/lib/__init__.py), as a
    # logger that indents continuation lines prints it
    old = ("        RuntimeError: jaxlib version 0.4.20 is newer than and\n"
           "            incompatible with jax version 0.4.14")
    assert first_two(old, matrix)[0] == "sig-jaxlib-too-new"
    too_old = ("    RuntimeError: jaxlib is version 0.4.7, but this version\n"
               "        of jax requires version >= 0.4.14.")
    assert first_two(too_old, matrix)[0] == "sig-jaxlib-too-old"


# --- a GPU the build's code cannot run on -------------------------------------------------------------------------

def test_ptx_the_driver_cannot_jit_for_the_gpu_is_the_gpu_architecture(matrix: Matrix) -> None:
    # https://github.com/m4rs-mt/ILGPU/issues/880 (an RTX 4090 newer than the PTX the library emitted)
    text = ("NVIDIA GeForce RTX 4090 [Type: Cuda, WarpSize: 32]\n"
            "Unhandled exception. ILGPU.Runtime.Cuda.CudaException: a PTX JIT compilation failed")
    assert first_two(text, matrix)[0] == "log-gpu-arch-unsupported"
    # https://github.com/huggingface/candle/issues/3210: the driver's own code for it
    assert "log-gpu-arch-unsupported" in first_two(
        'called `Result::unwrap()` on an `Err` value: DriverError(CUDA_ERROR_INVALID_PTX, "a PTX JIT compilation '
        'failed")', matrix)


# --- PJRT plugins and the framework that loads them ---------------------------------------------------------------

def test_a_pjrt_entry_point_the_plugin_lacks_is_a_plugin_framework_mismatch(matrix: Matrix) -> None:
    # https://github.com/openxla/openxla-pjrt-plugin/issues/141
    assert first_two("UNIMPLEMENTED; PJRT_Buffer_ReadyEvent", matrix)[0] == "log-pjrt-plugin-api-mismatch"


# --- a CUDA library TensorFlow's loader could not open --------------------------------------------------------------

def test_tf1_dlopen_wording_alone_is_the_cause_and_beside_another_failure_is_not(matrix: Matrix) -> None:
    # https://github.com/tensorflow/tensorflow/issues/42156 (TensorFlow 1.14's loader says "dlopen library")
    line = ("2020-08-08 19:17:16.754002: I tensorflow/stream_executor/platform/default/dso_loader.cc:53] Could not "
            "dlopen library 'libcudnn.so.7'; dlerror: libcudnn.so.7: cannot open shared object file: No such file "
            "or directory; LD_LIBRARY_PATH: /usr/local/cuda/lib64")
    alone = causes(line, matrix)[:2]
    missing = next(f for f in alone if f.id == "sig-cuda-lib-missing-so")  # beside the soname's CUDA release
    assert "TensorFlow" in missing.title
    beside = line + "\nTraceback (most recent call last):\n  File \"/home/u/run.py\", line 9, in <module>\n" \
        "    main()\nKeyError: 'image'\n"
    assert "sig-cuda-lib-missing-so" not in first_two(beside, matrix)


def test_a_soname_after_any_loader_verb_is_read_against_the_installed_cuda(matrix: Matrix) -> None:
    # https://github.com/tensorflow/tensorflow/issues/42156: TensorFlow 1.14 (built on CUDA 10.0) on a CUDA 9.1
    # machine, its loader's "dlopen library" wording, nvcc's version line
    text = ("Cuda compilation tools, release 9.1, V9.1.85\n"
            "W tensorflow/stream_executor/platform/default/dso_loader.cc:53] Could not dlopen library "
            "'libcublas.so.10.0'; dlerror: libcublas.so.10.0: cannot open shared object file: No such file or "
            "directory")
    first = causes(text, matrix)[0]
    assert first.id == "log-lib-soname-other-release" and "CUDA 10.0" in first.title and "9.1" in first.title


# --- the literal pre-check ----------------------------------------------------------------------------------------

def test_required_keys_ask_for_every_literal_part_of_a_sequence() -> None:
    keys = required_keys(r"Could not load '(?:a|b)x'; dlerror: [^\n]{0,300}\nCannot dlopen some GPU libraries")
    assert keys == (("\ncannot dlopen some gpu libraries",), ("could not load '",), ("x'; dlerror: ",))
    assert required_keys(r"(?:foo|\d)x") == ()


# --- PJRT: the direction the message states --------------------------------------------------------------------------

def test_a_plugin_built_later_than_the_framework_gets_the_upgrade_jax_fix(matrix: Matrix) -> None:
    # https://github.com/google-deepmind/weathernext/issues/185 (libtpu newer than jax/jaxlib)
    text = ("pjrt_c_api_helpers.cc:258: Unexpected PJRT_Plugin_Attributes_Args size: expected 32, got 24. The plugin "
            "is likely built with a later version than the framework. This plugin is built with PJRT API version 0.75")
    first = causes(text, matrix)[0]
    assert first.id == "log-pjrt-plugin-api-mismatch" and "plugin 0.75" in first.title
    assert first.fix is not None and first.fix.summary.startswith("the plugin is newer than the framework")


# --- out of memory on a TPU ----------------------------------------------------------------------------------------

def test_tpu_hbm_exhausted_at_compile_time_is_out_of_memory(matrix: Matrix) -> None:
    # https://github.com/tensorflow/tpu/issues/385 (the compiler's words, no RESOURCE_EXHAUSTED on the same line)
    text = ("Status code: Resource exhausted [9x]\n  Compilation failure: Ran out of memory in memory space hbm. Used "
            "8.38G of 8.00G hbm. Exceeded hbm capacity by 385.25M.")
    assert first_two(text, matrix)[0] == "sig-xla-out-of-memory"


# --- the disk, permissions, NCCL, NumPy's ABI ------------------------------------------------------------------------

def test_no_space_left_on_device_is_a_full_disk_with_the_path(matrix: Matrix) -> None:
    # pip's wording (https://github.com/pypa/pip/issues/7751) and Python's with the path it was writing
    # (https://github.com/pypa/pip/issues/5816)
    pip = "ERROR: Could not install packages due to an EnvironmentError: [Errno 28] No space left on device"
    assert first_two(pip, matrix)[0] == "log-disk-full"
    text = "OSError: [Errno 28] No space left on device: '/home/u/ckpt/checkpoint_1000/d/0a1b'"
    first = causes(text, matrix)[0]
    assert first.id == "log-disk-full" and "/home/u/ckpt/checkpoint_1000" in first.title


def test_permission_denied_in_any_wording_names_the_path(matrix: Matrix) -> None:
    # https://github.com/searx/searx/issues/1578 (pip into the system site-packages)
    text = ("ERROR: Could not install packages due to an EnvironmentError: [Errno 13] Permission denied: "
            "'/usr/local/lib/python2.7/dist-packages/easy_install.py'\nConsider using the `--user` option or check "
            "the permissions.")
    first = causes(text, matrix)[0]
    assert first.id == "log-permission-denied" and "/usr/local/lib/python2.7/dist-packages" in first.title
    # https://github.com/Zhefan-Xu/NavRL/issues/70 (a localised strerror) and
    # https://github.com/janosh/pymatviz/issues/66 (Windows)
    assert first_two("ERROR: Could not install packages due to an OSError: [Errno 13] 权限不够: 'RECORD'",
                     matrix)[0] == "log-permission-denied"
    assert first_two("ERROR: Could not install packages due to an OSError: [WinError 5] Access is denied: "
                     "'C:\\\\Python310\\\\Lib\\\\site-packages\\\\numpy'", matrix)[0] == "log-permission-denied"
    # a lone word in a harmless line does not reach the family's threshold
    assert "log-permission-denied" not in first_two("find: '/proc/1/map_files': Permission denied", matrix)


def test_nccl_failures_in_xla_and_torch_words_are_named(matrix: Matrix) -> None:
    # https://github.com/jax-ml/jax/issues/17399 (XLA's nccl_utils) and
    # https://github.com/jade-hpc-gpu/jade-hpc-gpu.github.io/issues/168 (PyTorch's wording)
    xla = ("INTERNAL: external/xla/xla/service/gpu/nccl_utils.cc:275: NCCL operation ncclCommInitRank(&comm, nranks, "
           "id, rank) failed: unhandled cuda error")
    first = causes(xla, matrix)[0]
    assert first.id == "log-nccl-failure" and "unhandled cuda error" in first.title
    assert first_two("RuntimeError: NCCL Error 2: unhandled system error", matrix)[0] == "log-nccl-failure"


def test_an_extension_built_for_numpy_2_under_numpy_1_is_told_apart(matrix: Matrix) -> None:
    # https://github.com/seung-lab/igneous/issues/203: built against NumPy 2 (96 bytes), NumPy 1.x installed (88)
    text = ("ValueError: numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, "
            "got 88 from PyObject")
    first = causes(text, matrix)[0]
    assert first.id == "log-numpy-older-than-built" and "96" in first.title
    # https://github.com/desihub/desisim/issues/560: the other way round (built older, 80 < 88) is not this cause
    older = ("RuntimeWarning: numpy.ndarray size changed, may indicate binary incompatibility. Expected 80 from C "
             "header, got 88 from PyObject")
    assert "log-numpy-older-than-built" not in first_two(older, matrix)


# --- PJRT methods a plugin lacks, the TPU's one-process lock -------------------------------------------------------

def test_jax_metal_under_a_newer_jax_is_a_plugin_framework_mismatch(matrix: Matrix) -> None:
    # https://github.com/jax-ml/jax/issues/27062 (jax-metal 0.1.1 under jax 0.5.2)
    text = "XlaRuntimeError: UNIMPLEMENTED: default_memory_space is not supported."
    assert first_two(text, matrix)[0] == "log-pjrt-plugin-api-mismatch"


def test_a_tpu_held_by_another_process_in_both_eras_words(matrix: Matrix) -> None:
    # libtpu's lock in both eras' words
    # (https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/tpu/tpu_initializer_helper.cc)
    new = ("RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is already in use by process with pid "
           "22589. Not attempting to load libtpu.so in this process.")
    first = causes(new, matrix)[0]
    assert first.id == "log-tpu-in-use" and "22589" in first.title
    old = ('I0000 00:00:1648534265.148743  625905 tpu_initializer_helper.cc:94] libtpu.so already in use by another '
           'process. Run "$ sudo lsof -w /dev/accel0" to figure out which process is using the TPU. Not attempting to '
           'load libtpu.so in this process.')
    assert first_two(old, matrix)[0] == "log-tpu-in-use"


# --- the host: its C++ runtime and its memory --------------------------------------------------------------------

def test_an_old_libstdcxx_or_glibc_is_named_with_the_symbol(matrix: Matrix) -> None:
    # https://github.com/pytorch/xla/issues/4150 and https://github.com/jax-ml/jax/issues/5272
    text = ("ImportError: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.28' not found (required by "
            "/opt/conda/lib/python3.7/site-packages/torch_xla/lib/libxla_computation_client.so)")
    first = causes(text, matrix)[0]
    assert first.id == "log-cxx-runtime-too-old" and "GLIBC_2.28" in first.title and "libc.so.6" in first.title
    assert first_two("ImportError: /lib64/libm.so.6: version `GLIBC_2.23' not found", matrix)[0] == \
        "log-cxx-runtime-too-old"


def test_host_memory_exhaustion_is_not_the_gpus(matrix: Matrix) -> None:
    # NumPy's allocation failure (https://github.com/cod3licious/autofeat/issues/24), its NumPy 1.17 wording
    # without the size (https://github.com/yanx27/Pointnet_Pointnet2_pytorch/issues/61), and the kernel's OOM killer
    text = ("MemoryError: Unable to allocate 2.05 GiB for an array with shape (501, 550174) and data type float64")
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"
    assert first_two("Unable to allocate array with shape (11490542,) and data type float64", matrix)[0] == \
        "log-host-out-of-memory"
    dmesg = "[12345.678] Out of memory: Killed process 4242 (python) total-vm:92000000kB, anon-rss:60000000kB"
    assert first_two(dmesg, matrix)[0] == "log-host-out-of-memory"
    # a run that ends on the shell's "Killed" with no error of its own was ended by the OOM killer (every such log in
    # the corpus so far); a "Killed" the program outlived to fail on its own is not, nor "oom" inside a word
    assert first_two("Epoch 3/10\nKilled", matrix)[0] == "log-host-out-of-memory"
    later = "zoom level 3\nKilled\nValueError: zoom must be positive"
    assert "log-host-out-of-memory" not in first_two(later, matrix)


def test_a_containers_small_shm_is_a_full_filesystem(matrix: Matrix) -> None:
    # PyTorch's DataLoader (https://github.com/msr-fiddle/pipedream/issues/28)
    text = ("ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory "
            "(shm).")
    assert first_two(text, matrix)[0] == "log-disk-full"


# --- NumPy's C API and ABI checks in every era -------------------------------------------------------------------

def test_numpy_api_version_checks_in_hex_and_decimal_name_the_older_numpy(matrix: Matrix) -> None:
    # https://github.com/pytorch/pytorch/issues/2564 (hex, with the import failure that follows) and
    # https://github.com/matplotlib/matplotlib/issues/1749 (NumPy 1.7's decimal wording)
    text = ("RuntimeError: module compiled against API version 0xb but this version of numpy is 0xa\n"
            "ImportError: numpy.core.multiarray failed to import")
    first = causes(text, matrix)[0]
    assert first.id == "log-numpy-older-than-built" and "0xb" in first.title
    assert first_two("RuntimeError: module compiled against API version 8 but this version of numpy is 4",
                     matrix)[0] == "log-numpy-older-than-built"


def test_numpy_2_abi_check_alone_is_the_numpy_2_cause(matrix: Matrix) -> None:
    # https://github.com/Emerge-Lab/gpudrive/issues/373: built against NumPy 1.x, NumPy 2 installed
    text = "RuntimeError: module compiled against ABI version 0x1000009 but this version of numpy is 0x2000000"
    assert first_two(text, matrix)[0] == "sig-numpy2-abi"


# --- other libraries' words for a catalogued cause -----------------------------------------------------------------

def test_pytorchs_driver_too_old_with_its_packed_cuda_version(matrix: Matrix) -> None:
    # https://github.com/RangiLyu/nanodet/issues/216 (10010 is CUDA 10.1 packed as CUDA_VERSION packs it)
    text = ("RuntimeError: The NVIDIA driver on your system is too old (found version 10010). Please update your GPU "
            "driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx")
    first = causes(text, matrix)[0]
    assert first.id == "sig-driver-too-old-for-cuda" and any("driver_cuda=10.1" in e for e in first.evidence)


def test_tensorflows_convolution_algorithm_failure_is_cudnn_that_could_not_start(matrix: Matrix) -> None:
    # https://github.com/tensorflow/tensorflow/issues/38929
    text = ("tensorflow.python.framework.errors_impl.UnknownError: Failed to get convolution algorithm. This is "
            "probably because cuDNN failed to initialize, so try looking to see if a warning log message was printed "
            "above.\n\t [[{{node conv2d/Conv2D}}]]")
    first = causes(text, matrix)[0]
    assert first.id == "sig-dnn-library-init" and "TensorFlow" in first.title


def test_float8_e4m3b11_missing_in_another_callers_words(matrix: Matrix) -> None:
    # the dtype ml_dtypes 0.3.0 removed (https://github.com/jax-ml/ml_dtypes/blob/main/CHANGELOG.md), as a caller
    # that checks for it first reports it
    assert first_two("ValueError: ml_dtypes.float8_e4m3b11 is not supported", matrix)[0] == \
        "sig-ml-dtypes-float8-e4m3b11"


def test_poetrys_derivation_before_its_exception_name_is_read(matrix: Matrix) -> None:
    # poetry prints its exception's name, then PubGrub's derivation ending in the verdict (the wording explained in
    # https://github.com/dart-lang/pub/blob/master/doc/solver.md)
    text = ("  SolverProblemError\n\n  Because no versions of flax match >0.7.5,<0.8.0\n"
            "   and flax (0.7.5) depends on jax (>=0.4.19), flax (>=0.7.5,<0.8.0) requires jax (>=0.4.19).\n"
            "  So, because myproj depends on both jax (0.4.13) and flax (^0.7.5), version solving failed.\n")
    first = causes(text, matrix)[0]
    assert first.id == "log-resolver-conflict" and "jax>=0.4.19" in first.title and "0.4.13" in first.title


# --- installers' other words for "nothing to install" and "installed but incompatible" -----------------------------

def test_pip_20_2s_installed_conflict_wording_is_read(matrix: Matrix) -> None:
    # https://github.com/lululxvi/deepxde/issues/139 (pip 20.2: "has requirement ..., but you'll have ...")
    text = ("ERROR: tensorflow 2.3.1 has requirement numpy<1.19.0,>=1.16.0, but you'll have numpy 1.19.2 which is "
            "incompatible.")
    assert first_two(text, matrix)[0] == "log-installed-conflict"


def test_no_installable_build_in_every_installers_words(matrix: Matrix) -> None:
    # pip with a wheel for another Python (https://github.com/TheSalon/fast-dpsgd/issues/2), conda
    # (https://github.com/conda-forge/jaxlib-feedstock/issues/77), poetry
    # (https://github.com/bowang-lab/scGPT/issues/278 and https://github.com/bowang-lab/scGPT/issues/308)
    wheel = "ERROR: jaxlib-0.1.55-cp38-none-manylinux2010_x86_64.whl is not a supported wheel on this platform."
    first = causes(wheel, matrix)[0]
    assert first.id == "log-no-matching-distribution" and "jaxlib==0.1.55" in first.title
    assert "cp38" in first.evidence[0]
    conda = ("PackagesNotFoundError: The following packages are not available from current channels:\n\n  - jaxlib\n\n"
             "Current channels:\n\n  - https://conda.anaconda.org/conda-forge/osx-arm64")
    assert first_two(conda, matrix)[0] == "log-no-matching-distribution"
    for poetry in ("  RuntimeError\n\n  Unable to find installation candidates for jaxlib (0.3.10)",
                   "Resolving dependencies... (1.5s)\n\nPackage jaxlib (0.3.10) not found."):
        first = causes(poetry, matrix)[0]
        assert first.id == "log-no-matching-distribution" and "jaxlib==0.3.10" in first.title


def test_xlas_newer_out_of_memory_wording(matrix: Matrix) -> None:
    # https://github.com/onpix/LLNeRF/issues/9
    text = "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 20029400304 bytes."
    assert first_two(text, matrix)[0] == "sig-xla-out-of-memory"


def test_a_tf_hub_layer_refused_by_keras_3s_sequential_needs_tf_keras(matrix: Matrix) -> None:
    # https://github.com/tensorflow/hub/issues/920 (TensorFlow 2.16+, whose tf.keras is Keras 3)
    text = ("ValueError: Only instances of `keras.Layer` can be added to a Sequential model. Received: "
            "<tensorflow_hub.keras_layer.KerasLayer object at 0x75776b09fc10> (of type <class "
            "'tensorflow_hub.keras_layer.KerasLayer'>)")
    first = causes(text, matrix)[0]
    assert first.id == "log-tf-keras-missing" and first.fix is not None and "tf-keras" in first.fix.summary


# --- the standard library of a newer Python ---------------------------------------------------------------------

def test_stdlib_names_a_newer_python_removed_name_the_python_that_removed_them(matrix: Matrix) -> None:
    # What's New in Python 3.10 (collections ABC aliases), 3.8 (time.clock) and 3.12 (imp):
    # https://docs.python.org/3/whatsnew/3.10.html, https://docs.python.org/3/whatsnew/3.8.html,
    # https://docs.python.org/3/whatsnew/3.12.html
    abc = "ImportError: cannot import name 'Iterable' from 'collections' (/usr/lib/python3.10/collections/__init__.py)"
    first = causes(abc, matrix)[0]
    assert first.id == "log-python-too-new" and "collections" in first.title
    assert first.fix is not None and "Python 3.10" in first.fix.summary
    clock = causes("AttributeError: module 'time' has no attribute 'clock'", matrix)[0]
    assert clock.id == "log-python-too-new" and clock.fix is not None and "Python 3.8" in clock.fix.summary
    assert first_two("ModuleNotFoundError: No module named 'imp'", matrix)[0] == "log-python-too-new"


def test_a_quoted_name_stated_as_removed_is_read(matrix: Matrix) -> None:
    # the sentence numpy's and jax's removal messages use ("`np.float_` was removed in the NumPy 2.0 release. Use
    # `np.float64` instead.", tests/data/log_corpus), with the names in single quotes instead of backticks
    text = ("AttributeError: The 'jax.experimental.pjit.with_sharding_constraint' was removed in jax 0.4.26. Use "
            "'jax.lax.with_sharding_constraint' instead.")
    first = causes(text, matrix)[0]
    assert first.id == "log-stated-removal" and "jax.lax.with_sharding_constraint" in first.title


# --- packaging metadata at run time ------------------------------------------------------------------------------

def test_pip_checks_own_sentence_is_an_installed_conflict(matrix: Matrix) -> None:
    # `pip check`'s wording, which ends at the version (pip/_internal/commands/check.py:
    # https://github.com/pypa/pip/blob/main/src/pip/_internal/commands/check.py)
    text = "tensorflow 2.15.0 has requirement ml-dtypes~=0.2.0, but you have ml-dtypes 0.4.0."
    first = causes(text, matrix)[0]
    assert first.id == "log-installed-conflict" and "ml-dtypes 0.4.0" in first.title


def test_a_distribution_missing_at_run_time_in_pkg_resources_and_importlib_words(matrix: Matrix) -> None:
    # https://github.com/yahoo/TensorFlowOnSpark/issues/568 (tensorflow-cpu installed, 'tensorflow' required) and
    # https://github.com/jrnl-org/jrnl/issues/196 (the older bare form)
    text = ("pkg_resources.DistributionNotFound: The 'tensorflow' distribution was not found and is required by the "
            "application")
    first = causes(text, matrix)[0]
    assert first.id == "log-missing-package" and first.fix is not None
    assert first.fix.commands == ('pip install "tensorflow"',)
    assert first_two("pkg_resources.DistributionNotFound: six>=1.6.1", matrix)[0] == "log-missing-package"


def test_cublas_that_could_not_start_in_other_callers_words(matrix: Matrix) -> None:
    # https://github.com/Vision-CAIR/MiniGPT-4/issues/89 (PyTorch) and https://github.com/alisen39/TrWebOCR/issues/105
    # (onnxruntime in the same environment)
    torch = "RuntimeError: CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`"
    assert first_two(torch, matrix)[0] == "sig-cublas-handle-not-initialized"
    ort = ("CUBLAS failure 1: CUBLAS_STATUS_NOT_INITIALIZED ; GPU=0 ; hostname=work5gpu ; "
           "expr=cublasCreate(&cublas_handle_);")
    assert first_two(ort, matrix)[0] == "sig-cublas-handle-not-initialized"


# --- a checkpoint restored onto another topology, a mesh larger than the machine, a TPU taken by another framework --

def test_orbax_restore_onto_other_devices_in_its_several_wordings(matrix: Matrix) -> None:
    # https://github.com/google/orbax/issues/657 (a saved device that this machine lacks)
    lookup = ("  File \"/opt/conda/lib/python3.10/site-packages/orbax/checkpoint/checkpoint_manager.py\", line 951, in "
              "restore\n    restored = self._checkpointer.restore(restore_directory, args=args)\n"
              "ValueError: SingleDeviceSharding with Device=TFRT_CPU_0 was not found in jax.local_devices().")
    assert first_two(lookup, matrix)[0] == "log-orbax-restore-topology-mismatch"
    # https://github.com/google/orbax/issues/2473 (logged by orbax; the user's CheckpointManager restore)
    logged = ("restored = orbax_restore.restore(orbax_restore.latest_step(), args=ocp.args.PyTreeRestore())\n"
              "ERROR:root:Device cuda:0 was not found in jax.local_devices().")
    assert "log-orbax-restore-topology-mismatch" in first_two(logged, matrix)
    # https://github.com/mlcommons/algorithmic-efficiency/issues/816 (a pmapped state resumed from a checkpoint)
    pmap = ("  File \"/home/u/algorithmic-efficiency/algorithmic_efficiency/checkpoint_utils.py\", line 120, in "
            "maybe_restore_checkpoint\n    ckpt = orbax_checkpointer.restore(path)\n"
            "ValueError: The sharded dimension must be equal to the number of devices passed to PmapSharding. Got "
            "device count 1 and sharded dimension 8")
    assert first_two(pmap, matrix)[0] == "log-orbax-restore-topology-mismatch"


def test_a_mesh_larger_than_the_machine_is_an_expected_accelerator_missing(matrix: Matrix) -> None:
    # jax/_src/mesh_utils.py create_device_mesh's check (https://github.com/jax-ml/jax/blob/main/jax/_src/mesh_utils.py)
    mesh = ("    mesh = mesh_utils.create_device_mesh((4, 2))\n"
            "ValueError: Number of devices 1 must equal the product of mesh_shape (4, 2)")
    assert first_two(mesh, matrix)[0] == "log-expected-accelerator-missing"
    # https://github.com/google-research/timesfm/issues/123 wording, on a machine with fewer devices than the shape
    reshape = ("    DEVICES = np.array(jax.devices()).reshape([1, 1, 4])\n"
               "ValueError: cannot reshape array of size 2 into shape (1,1,4)")
    assert first_two(reshape, matrix)[0] == "log-expected-accelerator-missing"
    # a batch reshaped over the devices is not a missing accelerator (https://github.com/NTT123/hifigan-tpu/issues/1
    # shape, here with -1)
    batch = ("    x = x.reshape((num_devices, 4, -1, 128))\nValueError: cannot reshape array of size 10000 into shape "
             "(8,4,newaxis,128)")
    assert first_two(batch, matrix)[0] == "sig-batch-not-divisible-by-devices"


def test_a_tpu_opened_by_tensorflow_or_torch_xla_first_is_named_over_the_jax_error(matrix: Matrix) -> None:
    # the same process opening the TPU with TensorFlow's runtime before jax (https://github.com/jax-ml/jax/issues/20148
    # establishes the PJRT mismatch jax then prints is misleading)
    tf = ("resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu='')\n"
          "tf.tpu.experimental.initialize_tpu_system(resolver)\nprint(jax.devices())\n"
          "RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is already in use by process with pid "
          "4242. Not attempting to load libtpu.so in this process.")
    assert first_two(tf, matrix)[0] == "log-tpu-in-use-by-other-framework"
    torch = ("import torch_xla.core.xla_model as xm\ndev = xm.xla_device()\nimport jax\n"
             "RuntimeError: Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu")
    assert first_two(torch, matrix)[0] == "log-tpu-in-use-by-other-framework"
    # jax alone with a mismatched plugin stays the plugin's cause
    alone = ("RuntimeError: Unable to initialize backend 'tpu': INVALID_ARGUMENT: Mismatched PJRT plugin PJRT API "
             "version (0.23) and framework PJRT API version 0.40).")
    assert first_two(alone, matrix)[0] == "log-pjrt-plugin-api-mismatch"


def test_keras_3_under_tfp_and_tf_hub_in_tensorflows_own_namespaces(matrix: Matrix) -> None:
    # https://github.com/tensorflow/probability/issues/1795 (TF 2.16 with Keras 3, TFP's fallback import)
    compat = ("  File \"/venv/lib/python3.11/site-packages/tensorflow_probability/python/internal/tf_keras.py\", "
              "line 30, in <module>\n    from tensorflow.compat.v2.keras import *\n"
              "ModuleNotFoundError: No module named 'tensorflow.compat.v2.keras'")
    assert first_two(compat, matrix)[0] == "log-tf-keras-missing"
    hook = ("import tensorflow_probability as tfp\nAttributeError: module 'tensorflow._api.v2.compat.v2.__internal__' "
            "has no attribute 'register_load_context_function'")
    assert first_two(hook, matrix)[0] == "log-tf-keras-missing"


def test_tensorflows_permission_denied_error_is_a_refused_path(matrix: Matrix) -> None:
    # TensorFlow's errors_impl class for EACCES (https://www.tensorflow.org/api_docs/python/tf/errors/
    # PermissionDeniedError), as tf.io.gfile writing a checkpoint prints it
    text = "tensorflow.python.framework.errors_impl.PermissionDeniedError: /data/ckpt/model.ckpt; Permission denied"
    first = causes(text, matrix)[0]
    assert first.id == "log-permission-denied"
    assert "/data/ckpt/model.ckpt" in first.title


# --- a message a paste wrapped, an import without its module, a solver's derivation without its header ------------

def test_an_exception_message_wrapped_mid_sentence_is_read_whole(matrix: Matrix) -> None:
    # tensorflow_probability/python/__init__.py's check (https://github.com/tensorflow/probability/blob/main/
    # tensorflow_probability/python/__init__.py), wrapped at another place than any log here breaks it
    text = ("ImportError: This version of TensorFlow Probability requires\n"
            "TensorFlow version >= 2.18; Detected an installation of\nversion 2.15.1. Please upgrade TensorFlow to "
            "proceed.")
    assert "sig-tfp-needs-newer-tf" in first_two(text, matrix)
    text2 = ("ImportError: This version of TensorFlow Probability requires TensorFlow\n"
             "version >= 2.18; Detected an installation of version 2.15.1. Please\nupgrade TensorFlow to proceed.")
    assert "sig-tfp-needs-newer-tf" in first_two(text2, matrix)


def test_a_lower_case_line_after_a_complete_message_stays_its_own(matrix: Matrix) -> None:
    from bdv2.doctor.logs.normalise import normalise

    text = "ModuleNotFoundError: No module named 'tensorflow_probability'\npip install tensorflow-probability"
    assert normalise(text).splitlines() == text.splitlines()
    short = "ValueError: bad value\nnext line"
    assert normalise(short).splitlines() == short.splitlines()


def test_a_capitalised_word_broken_by_a_paste_is_joined(matrix: Matrix) -> None:
    # XLA's cuda_dnn.cc check (https://github.com/openxla/xla/blob/main/xla/stream_executor/cuda/cuda_dnn.cc) broken
    # inside "CuDNN" at another letter than any log here
    text = "E0101 cuda_dnn.cc:522] Loaded runtime Cu\nDNN library: 8.9.2 but source was compiled with: 9.1.0."
    assert first_two(text, matrix)[0] == "sig-cudnn-runtime-older-than-compiled"


def test_an_import_error_without_its_module_reads_the_import_statement(matrix: Matrix) -> None:
    # Python < 3.8 prints no "from 'module'"; jax.experimental.optimizers moved to jax.example_libraries in jax
    # 0.3.16 (https://docs.jax.dev/en/latest/changelog.html)
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n"
            "    from jax.experimental import optimizers\nImportError: cannot import name 'optimizers'")
    first = causes(text, matrix)[0]
    assert first.id in ("log-missing-name", "log-era-mismatch")
    assert "jax.experimental.optimizers" in first.title


def test_a_pubgrub_derivation_without_the_installers_header_is_a_conflict(matrix: Matrix) -> None:
    # uv's derivation (https://docs.astral.sh/uv/reference/troubleshooting/build-failures/ shows its form), the
    # "No solution found" header cut off a pasted log
    text = ("...\n      Because tensorflow==2.15.0 depends on numpy>=1.23.5,<2.0.0 and you require numpy>=2, we can\n"
            "      conclude that your requirements and tensorflow==2.15.0 are unsatisfiable.")
    assert first_two(text, matrix)[0] == "log-resolver-conflict"


# --- a keyword argument the installed release of a package lacks ------------------------------------------------------

def test_a_keyword_a_packages_release_lacks_is_named_through_its_import_alias(matrix: Matrix) -> None:
    # nn.MultiheadAttention took batch_first from PyTorch 1.9 (https://pytorch.org/docs/1.9.0/generated/
    # torch.nn.MultiheadAttention.html); pytest's "E" line, the call in the failing test's source
    torch = ("import torch.nn as nn\n    attn = nn.MultiheadAttention(64, 4, batch_first=True)\n"
             "E       TypeError: __init__() got an unexpected keyword argument 'batch_first'")
    first = causes(torch, matrix)[0]
    assert first.id == "log-missing-name" and "torch.nn.MultiheadAttention(batch_first=)" in first.title
    # flax.linen layers took param_dtype from a later release than some pinned repositories use
    # (https://github.com/google/flax/blob/main/CHANGELOG.md): `nn` with no import shown is the package the log names
    flax = ("flax==0.3.6\nTraceback (most recent call last):\n  File \"model.py\", line 12, in __call__\n"
            "    x = nn.Dense(features=128, param_dtype=jnp.bfloat16)(x)\n"
            "TypeError: __init__() got an unexpected keyword argument 'param_dtype'")
    assert "flax.linen.Dense(param_dtype=)" in causes(flax, matrix)[0].title


def test_a_keyword_is_the_innermost_calls_when_calls_nest(matrix: Matrix) -> None:
    # the keyword sits in nn.Dense's parentheses, not in self.add's that hold them
    text = ("import flax.linen as nn\nTraceback (most recent call last):\n  File \"model.py\", line 12, in __call__\n"
            "    x = self.add(nn.Dense(features=128, param_dtype=jnp.bfloat16))(x)\n"
            "TypeError: __init__() got an unexpected keyword argument 'param_dtype'")
    assert "flax.linen.Dense(param_dtype=)" in causes(text, matrix)[0].title


def test_a_keyword_the_users_own_function_lacks_is_not_a_package(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"run.py\", line 40, in <module>\n    train(cfg, warmup=10)\n"
            "TypeError: train() got an unexpected keyword argument 'warmup'")
    assert all(f.id != "log-missing-name" for f in causes(text, matrix))


def test_arguments_one_packages_line_passes_anothers_signature_refuses(matrix: Matrix) -> None:
    # jax.random.split(key, num) takes no third argument (https://docs.jax.dev/en/latest/_autosummary/
    # jax.random.split.html): a package calling it with one was written for another signature
    text = ("Traceback (most recent call last):\n  File \"/home/u/train.py\", line 3, in <module>\n    s = make(p)\n"
            "  File \"/home/u/.venv/lib/python3.11/site-packages/distrax/_src/utils.py\", line 80, in make\n"
            "    keys = jax.random.split(key, 2, 3)\n"
            "TypeError: split() takes from 1 to 2 positional arguments but 3 were given")
    first = causes(text, matrix)[0]
    assert first.id == "log-era-mismatch" and "distrax" in first.title and "jax.random.split(" in first.title
    missing = text.replace("jax.random.split(key, 2, 3)", "jax.random.split()").replace(
        "split() takes from 1 to 2 positional arguments but 3 were given",
        "split() missing 1 required positional argument: 'key'")
    assert "no 'key'" in causes(missing, matrix)[0].title
    # the same refusal of the user's own line may be the user's mistake: not named as another release
    own = ("Traceback (most recent call last):\n  File \"/home/u/train.py\", line 3, in <module>\n"
           "    keys = jax.random.split(key, 2, 3)\n"
           "TypeError: split() takes from 1 to 2 positional arguments but 3 were given")
    assert all(f.id not in ("log-era-mismatch", "log-missing-name") for f in causes(own, matrix))


# --- the causes a log states in many wordings: disk, memory, permissions, a busy device -------------------------

def test_windows_disk_full_is_disk_full(matrix: Matrix) -> None:
    # ERROR_DISK_FULL, 112 (https://learn.microsoft.com/en-us/windows/win32/debug/system-error-codes--0-499-)
    text = "OSError: [WinError 112] There is not enough space on the disk: 'C:\\\\Users\\\\me\\\\ckpt\\\\model.bin'"
    assert first_two(text, matrix)[0] == "log-disk-full"


def test_a_stated_disk_need_alone_is_not_disk_full(matrix: Matrix) -> None:
    text = "Downloading and preparing dataset (Needed: 1.2 GiB)\nValueError: Unknown split 'validation'"
    assert "log-disk-full" not in first_two(text, matrix)


def test_enomem_is_host_memory_but_static_tls_is_not(matrix: Matrix) -> None:
    # ENOMEM (https://man7.org/linux/man-pages/man3/errno.3.html), as Python raises it when a fork has no memory
    assert first_two("OSError: [Errno 12] Cannot allocate memory", matrix)[0] == "log-host-out-of-memory"
    # the loader's static TLS refusal (https://github.com/pytorch/pytorch/issues/2575) is not the machine's memory
    tls = "ImportError: /lib/aarch64-linux-gnu/libgomp.so.1: cannot allocate memory in static TLS block"
    assert "log-host-out-of-memory" not in first_two(tls, matrix)


def test_a_notebook_kernel_that_dies_filling_a_buffer_is_host_memory(matrix: Matrix) -> None:
    # Jupyter's own notice (https://github.com/jupyter/notebook/issues/1892) after tf.data's shuffle buffer log line
    text = ("I tensorflow/core/kernels/data/shuffle_dataset_op.cc:177] Filling up shuffle buffer (this may take a "
            "while): 81532 of 100000\nThe kernel appears to have died. It will restart automatically.")
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


def test_a_path_refused_in_any_layout_is_permission_denied(matrix: Matrix) -> None:
    # coreutils' wording (https://www.gnu.org/software/coreutils/manual/html_node/mkdir-invocation.html)
    assert first_two("mkdir: cannot create directory '/data/run1': Permission denied", matrix)[0] == \
        "log-permission-denied"


def test_an_ssh_key_refusal_is_not_a_file_permission(matrix: Matrix) -> None:
    # https://docs.github.com/en/authentication/troubleshooting-ssh/error-permission-denied-publickey
    assert "log-permission-denied" not in first_two("git@github.com: Permission denied (publickey).", matrix)


def test_a_busy_tpu_device_node_is_a_tpu_in_use(matrix: Matrix) -> None:
    # v4 and older TPU VMs expose /dev/accel0 (https://cloud.google.com/tpu/docs/troubleshooting/trouble-jax)
    text = ("RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is in use: open(/dev/accel0): "
            "Device or resource busy")
    assert first_two(text, matrix)[0] == "log-tpu-in-use"


def test_a_busy_mount_is_not_a_tpu(matrix: Matrix) -> None:
    assert "log-tpu-in-use" not in first_two("rm: cannot remove '/mnt/data': Device or resource busy", matrix)


# --- a mesh shaped for another machine ----------------------------------------------------------------------------

def test_a_mesh_smaller_than_the_devices_is_the_mesh_shape(matrix: Matrix) -> None:
    # numpy's reshape refusal (https://numpy.org/doc/stable/reference/generated/numpy.reshape.html) over jax.devices()
    text = ("mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ('data', 'model'))\n"
            "ValueError: cannot reshape array of size 8 into shape (2,2)")
    assert first_two(text, matrix)[0] == "log-mesh-shape-device-count"


def test_a_mesh_larger_than_the_devices_is_not_the_mesh_shape(matrix: Matrix) -> None:
    text = ("mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ('data', 'model'))\n"
            "ValueError: cannot reshape array of size 1 into shape (2,4)")
    ids = first_two(text, matrix)
    assert ids[0] == "log-expected-accelerator-missing" and "log-mesh-shape-device-count" not in ids


# --- installers: pip too old, Python too old, a direct-URL requirement --------------------------------------------

def test_an_option_an_old_pip_lacks_is_pip_too_old(matrix: Matrix) -> None:
    # pip added --use-feature in 20.2 (https://pip.pypa.io/en/stable/news/#v20-2)
    text = "$ pip --version\npip 19.3.1 from /usr/lib/python3/dist-packages/pip (python 3.8)\n\nUsage:\n" \
           "  pip install [options] <requirement specifier>\n\nno such option: --use-feature"
    assert first_two(text, matrix)[0] == "log-pip-too-old"


def test_pips_upgrade_notice_alone_is_not_pip_too_old(matrix: Matrix) -> None:
    text = ("WARNING: You are using pip version 19.2.3, however version 20.0.2 is available.\n"
            "ModuleNotFoundError: No module named 'flax'")
    assert "log-pip-too-old" not in first_two(text, matrix)


def test_requires_a_different_python_is_python_too_old(matrix: Matrix) -> None:
    # https://github.com/AkaliKong/MiniOneRec/issues/5
    text = "ERROR: Package 'click' requires a different Python: 3.9.19 not in '>=3.10'"
    assert first_two(text, matrix)[0] == "log-python-too-old"


def test_a_direct_url_requirement_off_pypi_is_no_matching_distribution(matrix: Matrix) -> None:
    # pip's resolvelib factory (https://github.com/pypa/pip/blob/main/src/pip/_internal/resolution/resolvelib/
    # factory.py): a package from PyPI that pins a URL no index given to pip serves
    text = ("ERROR: Packages installed from PyPI cannot depend on packages which are not also hosted on PyPI.\n"
            "mypkg depends on torch-scatter@ https://data.pyg.org/whl/torch-2.1.0+cu121/torch_scatter-2.1.2.whl")
    assert first_two(text, matrix)[0] == "log-no-matching-distribution"


# --- a TPU pod slice started on one host --------------------------------------------------------------------------

def test_a_pod_waiting_for_its_other_hosts_is_not_all_hosts(matrix: Matrix) -> None:
    # jax's warning (jax/_src/xla_bridge.py; https://docs.jax.dev/en/latest/multi_process.html), logged by absl
    text = ("W0612 10:01:02.123 139 xla_bridge.py:1057] TPU backend initialization is taking more than 60.0 "
            "seconds. Did you run your code on all TPU hosts? See https://jax.readthedocs.io/en/latest/"
            "multi_process.html for more information.")
    assert first_two(text, matrix)[0] == "log-tpu-not-all-hosts"


def test_a_worker_all_command_alone_is_not_a_pod_problem(matrix: Matrix) -> None:
    text = "gcloud compute tpus tpu-vm ssh my-tpu --worker=all --command 'python train.py'\nKeyError: 'lr'"
    assert "log-tpu-not-all-hosts" not in first_two(text, matrix)


# --- a CUDA link step that fails --------------------------------------------------------------------------------

def test_a_failed_culinkcomplete_is_the_linking_api(matrix: Matrix) -> None:
    # XLA's cuda_asm_compiler.cc (https://github.com/openxla/xla), the call that links the cubins
    text = ("jaxlib.xla_extension.XlaRuntimeError: INTERNAL: cuda_asm_compiler.cc:120: 'cuLinkComplete(link_state, "
            "&cubin_out, &cubin_size)': CUDA_ERROR_INVALID_IMAGE")
    assert first_two(text, matrix)[0] == "sig-cuda-linking-api"


def test_newer_python_syntax_on_a_metaclass_under_an_old_python(matrix: Matrix) -> None:
    # os.PathLike[str] is subscriptable from Python 3.9 (https://docs.python.org/3/whatsnew/3.9.html)
    text = ("  File \"/usr/local/lib/python3.8/dist-packages/orbax/checkpoint/utils.py\", line 30, in <module>\n"
            "    def load(path: os.PathLike[str]) -> None:\n"
            "TypeError: 'ABCMeta' object is not subscriptable")
    assert first_two(text, matrix)[0] == "log-python-too-old"


def test_an_exception_line_pasted_as_a_markdown_heading(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n"
            "    from flax.training import checkpoints\n"
            "### ModuleNotFoundError: No module named 'flax'")
    assert first_two(text, matrix)[0] == "log-missing-package"


def test_a_listing_of_keras_names_is_not_h5py_decoding(matrix: Matrix) -> None:
    text = ("dir(keras.engine.saving)\n['load_weights_from_hdf5_group', 'save_model', 'h5py']\n"
            "ImportError: cannot import name 'Network'")
    assert "log-h5py3-str-decode" not in first_two(text, matrix)
    decode = "  File \"x.py\", line 3\n    original_keras_version = f.attrs['keras_version'].decode('utf8')"
    assert first_two(decode, matrix)[0] == "log-h5py3-str-decode"
