"""Cues on a log's structure rather than its wording: the classes of the exceptions it raised, how it ends, the
frames a traceback runs through, and tracebacks pasted as quotes. Each test uses a wording or layout none of the
corpus logs carries (sources beside them), so a cue is proven on the concept, not on the log it was written from."""

from __future__ import annotations

from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.normalise import last_lines
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.logs.tracebacks import exception_types
from bdv2.doctor.matrix import Matrix


def first_two(text: str, matrix: Matrix) -> list[str]:
    return [f.id for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO][:2]


# --- how a log ends -------------------------------------------------------------------------------------------------

def test_the_last_lines_skip_prompts_fences_and_blank_lines() -> None:
    text = "epoch 3 loss 0.2\nKilled\n```\n\n(venv) ana@gpu01:~/proj$\n$\n"
    assert last_lines(text, 2) == "epoch 3 loss 0.2\nKilled"


def test_a_run_ended_by_the_shells_killed_in_any_locale_or_shell_is_host_memory(matrix: Matrix) -> None:
    # glibc's translations of SIGKILL's name, which bash prints for a killed job (de: "Getötet"); zsh's own report;
    # bash's job report inside a batch script (a Slurm job's output file)
    for ending in ("Getötet", "zsh: killed     python train.py",
                   "/var/spool/slurmd/job4242/slurm_script: line 14: 31337 Killed                  python train.py"):
        text = f"loading shards: 100%|##########| 64/64\nstep 1200 loss 0.31\n{ending}\n(base) ana@node7:~$ "
        assert first_two(text, matrix)[0] == "log-host-out-of-memory", ending


def test_a_killed_line_the_program_outlived_is_not_the_cause(matrix: Matrix) -> None:
    text = ("worker 3: Killed\nTraceback (most recent call last):\n  File \"/home/ana/train.py\", line 9, in <module>\n"
            "    main()\nValueError: learning rate must be positive")
    assert "log-host-out-of-memory" not in first_two(text, matrix)


# --- the classes of the exceptions raised ---------------------------------------------------------------------------

def test_exception_classes_are_read_in_any_layout() -> None:
    text = ("E       PermissionError:[Errno13] denied\nFAILED tests/t.py::test_io - OSError: bad\n"
            "he said \"KeyError: 'x'\" happened")
    assert exception_types(text).splitlines() == ["PermissionError", "OSError", "KeyError"]


def test_a_raised_permission_error_is_a_refusal_whatever_its_message(matrix: Matrix) -> None:
    # s3fs turns a 403 from the object store into PermissionError (https://github.com/fsspec/s3fs/issues/326)
    text = ("Traceback (most recent call last):\n  File \"/home/ana/export.py\", line 30, in <module>\n"
            "    fs.put(local, remote)\nPermissionError: Access Denied")
    assert first_two(text, matrix)[0] == "log-permission-denied"


def test_a_windows_sharing_violation_is_not_a_permission_problem(matrix: Matrix) -> None:
    # Python maps ERROR_SHARING_VIOLATION (32) to PermissionError: the file is open in another process
    # (https://docs.python.org/3/library/exceptions.html#PermissionError lists EACCES and EPERM only)
    text = ("PermissionError: [WinError 32] The process cannot access the file because it is being used by another "
            "process: 'C:\\\\runs\\\\ckpt\\\\checkpoint_10'")
    assert "log-permission-denied" not in first_two(text, matrix)


def test_a_raised_memory_error_is_host_memory_but_torchs_gpu_out_of_memory_is_not(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/ana/prep.py\", line 12, in <module>\n"
            "    data = np.concatenate(chunks)\nnumpy.core._exceptions._ArrayMemoryError")
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"
    gpu = "torch.OutOfMemoryError: CUDA error: out of memory"
    assert "log-host-out-of-memory" not in first_two(gpu, matrix)[:1]


# --- the frames a traceback runs through ----------------------------------------------------------------------------

def test_a_local_file_named_like_the_package_is_the_shadow_whatever_the_message(matrix: Matrix) -> None:
    # a script saved as flax.py imports itself (https://docs.python.org/3/library/sys_path_init.html)
    text = ("Traceback (most recent call last):\n  File \"/home/ana/tests/flax.py\", line 1, in <module>\n"
            "    import flax.linen as nn\n  File \"/home/ana/tests/flax.py\", line 3, in <module>\n"
            "    class Net(nn.Module):\nAttributeError: partially initialized module 'flax' has no attribute 'linen' "
            "(most likely due to a circular import)")
    assert first_two(text, matrix)[0] == "log-shadowed-module"


def test_the_same_missing_name_in_the_packages_own_file_is_not_a_shadow(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/ana/train.py\", line 4, in <module>\n"
            "    tx = optax.masked(optax.adam(1e-3), mask)\n"
            "AttributeError: module 'optax' has no attribute 'masked'")
    assert "log-shadowed-module" not in first_two(text, matrix)


def test_a_traceback_pasted_as_a_quote_is_read_with_its_frames(matrix: Matrix) -> None:
    # GitHub's quote reply ("> " on every line)
    text = ("> Traceback (most recent call last):\n>   File \"/home/ana/env/lib/python3.10/site-packages/"
            "flax/core/frozen_dict.py\", line 12, in <module>\n>     jax.tree_multimap(f, a, b)\n"
            "> AttributeError: module 'jax' has no attribute 'tree_multimap'")
    assert first_two(text, matrix)[0] == "log-era-mismatch"


# --- wordings of known causes that other eras and tools print -------------------------------------------------------

def test_a_gpu_below_the_toolkits_minimum_is_told_from_one_above_its_maximum(matrix: Matrix) -> None:
    # nvcc of CUDA 12 on a Kepler GPU (CUDA 12.0 release notes: sm_35 and sm_37 removed), ptxas of CUDA 11.7 on
    # a Hopper GPU
    old = "nvcc fatal   : Unsupported gpu architecture 'compute_35'"
    assert first_two(old, matrix)[0] == "log-gpu-arch-dropped"
    new = "ptxas fatal   : Value 'sm_90' is not defined for option 'gpu-name'"
    assert first_two(new, matrix)[0] == "log-gpu-arch-unsupported"


def test_jax_devices_configured_after_start_up_in_a_plain_traceback(matrix: Matrix) -> None:
    # chex.set_n_cpu_devices called after the first jax operation (chex/_src/fake.py)
    text = ("Traceback (most recent call last):\n  File \"/home/ana/demo.py\", line 8, in <module>\n"
            "    chex.set_n_cpu_devices(8)\nRuntimeError: Attempted to set 8 devices, but 1 CPUs already available: "
            "ensure that `set_n_cpu_devices` is executed before any JAX operation.")
    assert first_two(text, matrix)[0] == "log-jax-device-config-after-init"


def test_a_rocm_plugin_out_of_step_with_jaxlib_however_the_paste_ends(matrix: Matrix) -> None:
    # jax/_src/xla_bridge.py's check applies to every plugin; a paste often stops before "so it will not be used"
    text = ("UserWarning: JAX plugin jax_rocm60_plugin version 0.4.35 is installed, but it is not compatible with "
            "the installed jaxlib version 0.4.31")
    assert {"sig-jax-plugin-ignored", "log-pjrt-plugin-api-mismatch"} & set(first_two(text, matrix))


def test_no_matching_distribution_in_any_case(matrix: Matrix) -> None:
    text = "ERROR: no matching distribution found for jaxlib==0.1.75+cuda11.cudnn82"
    assert first_two(text, matrix)[0] == "log-no-matching-distribution"


def test_keras_3_refused_by_transformers_in_its_whole_sentence(matrix: Matrix) -> None:
    # transformers/utils/import_utils.py's check for Keras 3
    text = ("ValueError: Your currently installed version of Keras is Keras 3, but this is not yet supported in "
            "Transformers. Please install the backwards-compatible tf-keras package with `pip install tf-keras`.")
    assert first_two(text, matrix)[0] in ("log-tf-keras-missing", "sig-tf-keras-missing")


def test_a_second_process_forced_onto_a_held_tpu(matrix: Matrix) -> None:
    text = ("$ ALLOW_MULTIPLE_LIBTPU_LOAD=1 python train.py\nFatal Python error: Segmentation fault\n\n"
            "Current thread 0x00007f2b (most recent call first):\n  File \"/home/ana/env/lib/python3.11/site-packages/"
            "jax/_src/xla_bridge.py\", line 113 in make_tpu_client")
    assert first_two(text, matrix)[0] == "log-tpu-in-use"


# --- what the frames and the message name together ----------------------------------------------------------------

def test_a_keyword_missing_from_a_call_spread_over_lines_is_read_from_the_callable_the_message_names(
        matrix: Matrix) -> None:
    # a package's call whose keyword sits on a line the traceback does not show: only `optax.adamw(` is there
    text = ("Traceback (most recent call last):\n  File \"/srv/env/lib/python3.11/site-packages/trainkit/opt.py\", "
            "line 40, in make\n    return optax.adamw(\nTypeError: adamw() got an unexpected keyword argument "
            "'nesterov'")
    first = next(f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO)
    assert first.id == "log-era-mismatch" and "optax.adamw(nesterov=)" in first.title


def test_syntax_of_a_newer_python_met_while_a_package_is_read_is_python_too_old(matrix: Matrix) -> None:
    # PEP 585 generics (Python 3.9) read by Python 3.8 at a package's import
    text = ("Traceback (most recent call last):\n  File \"/opt/conda/lib/python3.8/site-packages/somepkg/types.py\", "
            "line 5, in <module>\n    Shape = tuple[int, ...]\nTypeError: 'type' object is not subscriptable")
    assert first_two(text, matrix)[0] == "log-python-too-old"
    own = "ERROR: numpyro requires Python 3.10 or newer, found 3.8"
    assert first_two(own, matrix)[0] == "log-python-too-old"


def test_keras_3s_symbolic_tensor_in_tensorflow_code_needs_keras_2(matrix: Matrix) -> None:
    # keras/src/backend/common/keras_tensor.py's refusal of a tf op on a Keras 3 tensor
    text = ("ValueError: A KerasTensor cannot be used as input to a TensorFlow function. A KerasTensor is a symbolic "
            "placeholder for a shape and dtype, used when constructing Keras Functional models or Keras Functions.")
    assert first_two(text, matrix)[0] in ("log-tf-keras-missing", "sig-tf-keras-missing")


def test_a_cuda_function_missing_from_the_loaded_library_is_another_release(matrix: Matrix) -> None:
    # a cuBLAS of another CUDA release than the build's (https://github.com/pytorch/pytorch/issues/51080)
    text = ("OSError: /usr/local/lib/python3.8/dist-packages/torch/lib/../../nvidia/cublas/lib/libcublas.so.11: "
            "undefined symbol: cublasLtGetStatusString, version libcublasLt.so.11")
    assert first_two(text, matrix)[0] == "log-lib-soname-other-release"


def test_a_line_a_thread_made_bold_is_read_plain(matrix: Matrix) -> None:
    text = "epoch 2 | step 400 | loss 1.92\n\n__Killed__\n"
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


def test_a_warning_about_where_jax_runs_is_not_the_cause_of_an_unrelated_exception(matrix: Matrix) -> None:
    warning = ("WARNING:absl:No GPU/TPU found, falling back to CPU. (Set TF_CPP_MIN_LOG_LEVEL=0 and rerun for more "
               "info.)\n")
    bug = warning + ("Traceback (most recent call last):\n  File \"/home/ana/fit.py\", line 30, in <module>\n"
                     "    loss = step(params, batch)\njax.errors.ConcretizationTypeError: Abstract tracer value "
                     "encountered where concrete value is expected: traced array with shape int32[]")
    found = first_two(bug, matrix)
    assert found[0] == "log-no-known-cause" and "sig-cpu-jaxlib-on-gpu-machine" in found
    about = warning + "RuntimeError: Unknown backend: 'gpu' requested, but no platforms that are instances of gpu"
    assert first_two(about, matrix)[0] == "sig-cpu-jaxlib-on-gpu-machine"


# --- causes and layouts the seventh batch showed missing, in other wordings -----------------------------------------

def test_a_cpu_without_the_builds_instructions_in_each_frameworks_words(matrix: Matrix) -> None:
    # jaxlib's own check (jaxlib/cpu_feature_guard.c), TensorFlow's (cpu_feature_guard.cc), the kernel's SIGILL
    for text in ("RuntimeError: This version of jaxlib was built using AVX instructions, which your CPU and/or "
                 "operating system do not support. You may be able work around this issue by building jaxlib from "
                 "source.",
                 "The TensorFlow library was compiled to use AVX instructions, but these aren't available on your "
                 "machine.\nAborted (core dumped)",
                 ">>> import tensorflow as tf\nIllegal instruction (core dumped)"):
        assert first_two(text, matrix)[0] == "log-cpu-instructions-missing", text
    # TensorFlow's start-up note that the CPU has more than the build uses is the opposite, and harmless
    note = ("I tensorflow/core/platform/cpu_feature_guard.cc:142] Your CPU supports instructions that this TensorFlow "
            "binary was not compiled to use: AVX2 FMA")
    assert "log-cpu-instructions-missing" not in first_two(note, matrix)


def test_libdevice_missing_in_newer_xlas_words(matrix: Matrix) -> None:
    text = ("W external/xla/xla/service/gpu/llvm_gpu_backend/gpu_backend_lib.cc:500] libdevice is required by this "
            "HLO module but was not found at ./libdevice.10.bc\njaxlib.xla_extension.XlaRuntimeError: INTERNAL: "
            "libdevice not found at ./libdevice.10.bc")
    assert first_two(text, matrix)[0] == "log-libdevice-not-found"


def test_a_tensorflow_extensions_op_library_of_another_release(matrix: Matrix) -> None:
    # tensorflow-io's library is not named _*.so
    text = ("tensorflow.python.framework.errors_impl.NotFoundError: /usr/local/lib/python3.8/dist-packages/"
            "tensorflow_io/core/python/ops/libtensorflow_io.so: undefined symbol: "
            "_ZN10tensorflow0OpDefBuilder4AttrENSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE")
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


def test_windows_cuda_dlls_are_read_as_the_same_releases_sonames(matrix: Matrix) -> None:
    loader = "2021-03-01 10:00:00.000000: W tensorflow/stream_executor/platform/default/dso_loader.cc:60]"
    text = (f"{loader} Could not load dynamic library 'cublas64_11.dll'; dlerror: cublas64_11.dll not found\n"
            f"{loader} Could not load dynamic library 'cudnn64_8.dll'; dlerror: cudnn64_8.dll not found\n"
            "W tensorflow/core/common_runtime/gpu/gpu_device.cc:1757] Cannot dlopen some GPU libraries. Skipping "
            "registering GPU devices...")
    found = diagnose_log(text, matrix)
    assert {"sig-cuda-lib-missing-so", "log-lib-soname-other-release"} & {f.id for f in found[:2]}
    assert any("libcublas.so.11" in e and "cublas64_11.dll" in e for f in found for e in f.evidence)


def test_the_container_runtimes_driver_check_is_a_driver_too_old(matrix: Matrix) -> None:
    text = ("docker: Error response from daemon: OCI runtime create failed: nvidia-container-cli: requirement error: "
            "unsatisfied condition: cuda>=11.8, please update your driver to a newer version, or use an earlier cuda "
            "container: unknown.")
    assert first_two(text, matrix)[0] == "sig-driver-too-old-for-cuda"


def test_nccl_ops_without_a_kernel_and_a_namespace_stub_and_metal_ops(matrix: Matrix) -> None:
    nccl = ("InvalidArgumentError: No OpKernel was registered to support Op 'NcclAllReduce' used by "
            "{{node training/NcclAllReduce}} with these attrs: [reduction=\"sum\", T=DT_FLOAT, num_devices=2]")
    assert first_two(nccl, matrix)[0] == "log-nccl-failure"
    stub = ("    *** Orbax is a namespace, and not a standalone package. For model checkpointing and exporting "
            "utilities, please install `orbax-checkpoint` and `orbax-export` respectively (instead of `orbax`). ***")
    assert first_two(stub, matrix)[0] == "log-orbax-namespace-package"
    metal = ("jax.devices: [METAL(id=0)]\njaxlib.xla_extension.XlaRuntimeError: UNKNOWN: <stdin>:1:0: error: failed "
             "to legalize operation 'mhlo.scatter'")
    assert first_two(metal, matrix)[0] == "log-metal-op-unsupported"


def test_a_shadowing_file_named_by_the_circular_import_message_alone(matrix: Matrix) -> None:
    with_path = ("ImportError: cannot import name 'random' from partially initialized module 'jax' (most likely due "
                 "to a circular import) (/home/ana/scratch/jax.py)")
    assert first_two(with_path, matrix)[0] == "log-shadowed-module"
    no_frames = ("AttributeError: partially initialized module 'numpy' has no attribute 'array' (most likely due to a "
                 "circular import)")
    assert first_two(no_frames, matrix)[0] == "log-shadowed-module"
    # the package's own file in site-packages is a real circular import, not a shadow
    inside = ("ImportError: cannot import name 'core' from partially initialized module 'jax' (most likely due to a "
              "circular import) (/srv/env/lib/python3.11/site-packages/jax/__init__.py)")
    assert "log-shadowed-module" not in first_two(inside, matrix)[:1]


def test_missing_names_on_a_packages_own_objects_and_in_backticks(matrix: Matrix) -> None:
    obj = ("Traceback (most recent call last):\n  File \"/home/ana/t.py\", line 3, in <module>\n"
           "    print(x.device_buffer)\nAttributeError: 'jaxlib.xla_extension.ArrayImpl' object has no attribute "
           "'device_buffer'")
    assert first_two(obj, matrix)[0] in ("log-missing-name", "log-era-mismatch")
    ticks = "AttributeError: module 'tensorflow' has no attribute `'Session'`"
    assert first_two(ticks, matrix)[0] in ("log-missing-name", "log-era-mismatch")


# --- causes and layouts the eighth batch showed missing, in other wordings ------------------------------------------

def test_gpu_library_starts_and_out_of_memory_in_tensorflow_1s_words(matrix: Matrix) -> None:
    blas = ("tensorflow.python.framework.errors_impl.InternalError: Blas xGEMV launch failed : m=64, n=10\n"
            "\t [[{{node dense/MatMul}}]]")
    assert first_two(blas, matrix)[0] == "sig-cublas-handle-not-initialized"
    dst = "InternalError: Dst tensor is not initialized.\n\t [[{{node _arg_Placeholder_0_0/_1}}]]"
    assert first_two(dst, matrix)[0] == "sig-xla-out-of-memory"


def test_cuda_that_cannot_start_after_a_resume_in_tensorflows_words(matrix: Matrix) -> None:
    text = ("2021-06-01 09:12:44.123456: E tensorflow/stream_executor/cuda/cuda_driver.cc:328] failed call to cuInit: "
            "CUDA_ERROR_UNKNOWN: unknown error\nWARNING:absl:No GPU/TPU found, falling back to CPU.")
    assert first_two(text, matrix)[0] == "log-nvidia-uvm-not-loaded"


def test_killed_told_in_a_users_sentence(matrix: Matrix) -> None:
    text = "Training goes fine for two epochs, then the script always dies with 'Killed' and nothing else."
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


def test_nccl_without_room_in_dev_shm(matrix: Matrix) -> None:
    text = ("node1:412:530 [0] include/shm.h:28 NCCL WARN Error while creating shared memory segment "
            "/dev/shm/nccl-AbC123 (size 9637888)\nRuntimeError: NCCL Error 2: unhandled system error")
    assert first_two(text, matrix)[0] == "log-nccl-failure"


def test_an_amd_gpu_the_rocm_build_has_no_code_for(matrix: Matrix) -> None:
    text = ("2023-01-01 00:00:00.000000: I tensorflow/compiler/xla/stream_executor/platform/default/dso_loader.cc:53] "
            "Successfully opened dynamic library libamdhip64.so\n"
            "hipErrorNoBinaryForGpu: Unable to find code object for all current devices!\nAborted (core dumped)")
    assert first_two(text, matrix)[0] == "log-gpu-arch-unsupported"


def test_a_saved_lambda_layers_bytecode_under_another_python(matrix: Matrix) -> None:
    text = ("  File \"/home/ana/env/lib/python3.8/site-packages/keras/utils/generic_utils.py\", line 274, in "
            "func_load\n"
            "    code = marshal.loads(raw_code)\nValueError: bad marshal data (unknown type code)")
    assert first_two(text, matrix)[0] == "log-python-bytecode-mismatch"


def test_a_packages_own_check_that_another_is_too_old(matrix: Matrix) -> None:
    text = ("E   ImportError: Keras requires TensorFlow 2.2 or higher. Install TensorFlow via `pip install "
            "tensorflow`")
    first = next(f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO)
    assert first.id == "log-era-mismatch" and "TensorFlow 2.2" in first.title
    python = "RuntimeError: Flax requires Python 3.10 or higher"
    assert first_two(python, matrix)[0] == "log-python-too-old"


def test_tensorflows_windows_dll_that_cannot_load_and_a_ptx_too_new_for_the_driver(matrix: Matrix) -> None:
    dll = ("ImportError: DLL load failed while importing _pywrap_tensorflow_internal: The specified module could not "
           "be found.\nFailed to load the native TensorFlow runtime.")
    assert first_two(dll, matrix)[0] == "sig-cuda-lib-missing-so"
    ptx = "CUDA error: cudaErrorUnsupportedPtxVersion (222) at cudaLaunchKernel"
    assert first_two(ptx, matrix)[0] == "sig-ptx-unsupported-toolchain"
