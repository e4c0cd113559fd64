"""Causes that live in the runtime around the framework: Apple's Metal plugins and the macOS under them, the TPU
runtime library, a batch scheduler's memory limit, TensorFlow's file system reporting a full disk, TensorRT's
libraries under TF-TRT, Python 2's wording of a shadowed module, Windows' path limit, protoc, TensorFlow's device
plugins, another interpreter's install, a model saved by another Keras, jax's internal classes, TensorFlow's files
of two releases, a graph run by an older TensorFlow and an extra a release lacks. Each test uses a wording or layout
none of the corpus logs carries, so a cue is proven on the concept, not on the log it was written from."""

from __future__ import annotations

from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix


def first_two(text: str, matrix: Matrix) -> list[str]:
    return [f.id for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO][:2]


# --- Apple GPU plugins -------------------------------------------------------------------------------------------

def test_a_primitive_jax_cannot_lower_for_metal_is_an_unsupported_op(matrix: Matrix) -> None:
    text = ("Platform 'METAL' is experimental and not all JAX functionality may be correctly supported!\n"
            "Traceback (most recent call last):\n  File \"/Users/kim/fit.py\", line 12, in <module>\n"
            "    L = jnp.linalg.cholesky(K)\n"
            "NotImplementedError: MLIR translation rule for primitive 'cholesky' not found for platform METAL")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-metal-op-unsupported"
    assert "cholesky" in found[0].title


def test_a_legalisation_failure_on_a_mac_is_the_metal_plugin(matrix: Matrix) -> None:
    # no word of Metal in the paste: a macOS home folder is where it ran
    text = ("jaxlib.xla_extension.XlaRuntimeError: UNKNOWN: /Users/kim/sim/step.py:40:0: error: failed to legalize "
            "operation 'stablehlo.scatter'\n/Users/kim/sim/step.py:40:0: note: see current operation")
    assert first_two(text, matrix)[0] == "log-metal-op-unsupported"


def test_a_tensorflow_op_without_a_kernel_for_the_metal_device(matrix: Matrix) -> None:
    text = ("I tensorflow/core/common_runtime/pluggable_device/pluggable_device_factory.cc:305] Created TensorFlow "
            "device (/job:localhost/replica:0/task:0/device:GPU:0 with 0 MB memory) -> physical PluggableDevice "
            "(device: 0, name: METAL, pci bus id: <undefined>)\n"
            "tensorflow.python.framework.errors_impl.NotFoundError: No registered 'RandomGammaGrad' OpKernel for "
            "'GPU' devices compatible with node {{node RandomGammaGrad}}")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-metal-op-unsupported"
    assert "RandomGammaGrad" in found[0].title


def test_a_no_kernel_error_on_a_cuda_gpu_is_not_metal(matrix: Matrix) -> None:
    text = ("Created TensorFlow device (/job:localhost/replica:0/task:0/device:GPU:0 with 22302 MB memory) -> "
            "physical GPU (device: 0, name: NVIDIA A10G, pci bus id: 0000:00:1e.0, compute capability: 8.6)\n"
            "tensorflow.python.framework.errors_impl.NotFoundError: No registered 'StringSplitV2' OpKernel for "
            "'GPU' devices compatible with node {{node StringSplitV2}}")
    assert "log-metal-op-unsupported" not in first_two(text, matrix)


def test_a_metal_plugin_newer_than_the_macos_in_each_of_its_wordings(matrix: Matrix) -> None:
    # the MPS dialect of an older macOS (https://github.com/jax-ml/jax/issues/20338), a framework symbol the loader
    # does not find, a precompiled Metal library of a newer language version
    for line in (
        'loc("-":0:0): error: current mps dialect version is 1.0.0, can\'t parse version 1.1.0',
        "dyld[811]: Symbol not found: _OBJC_CLASS_$_MPSGraphCompilationDescriptor\n  Referenced from: "
        "/Users/kim/venv/lib/python3.11/site-packages/jax_plugins/metal_plugin/pjrt_plugin_metal_14.dylib\n"
        "  Expected in: /System/Library/Frameworks/MetalPerformanceShadersGraph.framework/Versions/A/MPSGraph",
        "RuntimeError: Failed to load the metallib: the library uses language version 3.2 which is not supported "
        "on this OS",
    ):
        text = f"Metal device set to: Apple M2\n{line}\nzsh: abort      python train.py"
        assert first_two(text, matrix)[0] == "log-metal-macos-too-old", line


# --- the TPU runtime ---------------------------------------------------------------------------------------------

def test_a_raised_libtpu_load_failure_is_the_tpu_runtime_missing(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/kim/train.py\", line 5, in <module>\n"
            "    print(jax.devices('tpu'))\n"
            "RuntimeError: Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so: libtpu.so: cannot "
            "open shared object file: No such file or directory (set JAX_PLATFORMS='' to automatically choose an "
            "available backend)")
    assert first_two(text, matrix)[0] == "log-libtpu-not-found"


def test_libtpu_logged_at_info_on_a_gpu_machine_is_not_a_cause(matrix: Matrix) -> None:
    # jax tries every backend and logs the ones it did not find; the run itself uses the GPU
    text = ("I1022 22:17:29.616872 140403999169408 xla_bridge.py:889] Unable to initialize backend 'tpu': INTERNAL: "
            "Failed to open libtpu.so: libtpu.so: cannot open shared object file: No such file or directory\n"
            "Available devices: [cuda(id=0)]\nTraceback (most recent call last):\n"
            "  File \"/home/kim/train.py\", line 40, in <module>\n    batch = next(it)\nKeyError: 'observation'")
    assert "log-libtpu-not-found" not in first_two(text, matrix)


# --- a scheduler's memory limit, a full disk in TensorFlow's words -------------------------------------------------

def test_a_schedulers_memory_limit_is_host_memory(matrix: Matrix) -> None:
    for line in ("TERM_MEMLIMIT: job killed after reaching LSF memory usage limit.",
                 "slurmstepd: error: Step 88123.0 exceeded memory limit (40960012 > 40960000), being killed",
                 "=>> PBS: job killed: mem 33554432kb exceeded limit 31457280kb"):
        text = f"step 400 loss 1.2\nstep 500 loss 1.1\n{line}\n"
        assert first_two(text, matrix)[0] == "log-host-out-of-memory", line


def test_tensorflows_resource_exhausted_on_a_written_path_is_a_full_disk(matrix: Matrix) -> None:
    text = ("W tensorflow/core/framework/op_kernel.cc:1401] OP_REQUIRES failed at save_restore_v2_ops.cc:109 : "
            "Resource exhausted: /scratch/kim/run3/model.ckpt-4000.data-00000-of-00001.tempstate5512\n"
            "tensorflow.python.framework.errors_impl.ResourceExhaustedError: Failed to save the checkpoint while "
            "writing shards: Resource exhausted: /scratch/kim/run3/model.ckpt-4000.data-00000-of-00001.tempstate5512")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-disk-full"
    assert "/scratch/kim/run3" in found[0].title


def test_a_gpu_tensor_resource_exhausted_is_not_a_full_disk(matrix: Matrix) -> None:
    text = ("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with "
            "shape[64,256,56,56] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc")
    assert "log-disk-full" not in first_two(text, matrix)


# --- TensorRT's libraries under TF-TRT ---------------------------------------------------------------------------

def test_tensorrt_warnings_at_start_up_are_not_a_cause(matrix: Matrix) -> None:
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared object file: No such file or directory\n"
            "W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: Cannot dlopen some TensorRT "
            "libraries. If you would like to use Nvidia GPU with TensorRT, please make sure the missing libraries "
            "mentioned above are installed properly.\nEpoch 1/10\n")
    assert "sig-cuda-lib-missing-so" not in first_two(text, matrix)


def test_tf_trt_stopping_on_a_missing_tensorrt_library_is_the_cause(matrix: Matrix) -> None:
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libnvinfer_plugin.so.7'; dlerror: libnvinfer_plugin.so.7: cannot open shared object file\n"
            "F tensorflow/compiler/tf2tensorrt/stub/nvinfer_plugin_stub.cc:49] getInferPluginLibVersion could not "
            "load: libnvinfer_plugin.so.7\nAborted (core dumped)")
    assert first_two(text, matrix)[0] == "sig-cuda-lib-missing-so"


def test_an_old_tensorflow_giving_up_a_cuda_library(matrix: Matrix) -> None:
    text = ("I tensorflow/stream_executor/dso_loader.cc:102] Couldn't open CUDA library libcufft.so.8.0. "
            "LD_LIBRARY_PATH: /usr/local/cuda/lib64\n"
            "I tensorflow/stream_executor/cuda/cuda_fft.cc:344] Unable to load cuFFT DSO.\n")
    assert first_two(text, matrix)[0] == "sig-cuda-lib-missing-so"


# --- Python 2's wording of a shadowed module, a CPU fallback where CUDA saw no GPU ---------------------------------

def test_python2s_module_object_message_names_a_local_namesake(matrix: Matrix) -> None:
    text = (">>> import jax.numpy as jnp\nTraceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
            "  File \"/home/kim/jax.py\", line 4, in <module>\n    x = jnp.zeros(3)\n"
            "AttributeError: 'module' object has no attribute 'zeros'")
    assert first_two(text, matrix)[0] == "log-shadowed-module"


def test_a_cpu_fallback_where_cuda_found_no_gpu_is_not_a_cpu_only_jaxlib(matrix: Matrix) -> None:
    text = ("2021-03-02 10:01:12.000001: E external/org_tensorflow/tensorflow/stream_executor/cuda/cuda_driver.cc:271]"
            " failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected\n"
            "WARNING:absl:No GPU/TPU found, falling back to CPU. (Set TF_CPP_MIN_LOG_LEVEL=0 and rerun for more info.)")
    ids = first_two(text, matrix)
    assert "sig-cpu-jaxlib-on-gpu-machine" not in ids
    assert "log-expected-accelerator-missing" in ids


def test_a_wheel_file_name_typed_with_a_space_is_still_read(matrix: Matrix) -> None:
    text = "ERROR: jaxlib-0.4.7-cp 39-cp39-manylinux2014_x86_64.whl is not a supported wheel on this platform."
    assert first_two(text, matrix)[0] == "log-no-matching-distribution"


# --- the loader refusing a library, a wheel built for a newer macOS --------------------------------------------------

def test_a_library_asking_for_an_executable_stack_is_refused_by_the_loader(matrix: Matrix) -> None:
    # glibc 2.41's wording (https://lists.gnu.org/archive/html/info-gnu/2025-01/msg00014.html), on a library other
    # than the ones the corpus shows
    text = ("Traceback (most recent call last):\n"
            "  File \"/usr/lib/python3.12/ctypes/__init__.py\", line 8, in <module>\n"
            "    from _ctypes import Union, Structure, Array\n"
            "ImportError: /opt/venv/lib/libffi.so.8: cannot enable executable stack as shared object requires: "
            "Invalid argument")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-execstack-refused-by-glibc"
    assert "libffi.so.8" in found[0].title
    assert found[0].fix is not None and any("/opt/venv/lib/libffi.so.8" in c for c in found[0].fix.commands)


def test_a_library_built_for_a_newer_macos(matrix: Matrix) -> None:
    text = ("ImportError: dlopen(/Users/kim/venv/lib/python3.9/site-packages/jaxlib/xla_extension.so, 0x0002): "
            "Symbol not found: __ZNKSt3__115basic_stringbufIcNS_11char_traitsIcEENS_9allocatorIcEEE3strEv\n"
            "  Referenced from: /Users/kim/venv/lib/python3.9/site-packages/jaxlib/xla_extension.so (which was built "
            "for Mac OS X 13.0)\n  Expected in: /usr/lib/libc++.1.dylib")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-macos-too-old-for-wheel"
    assert "13.0" in found[0].title


def test_an_extension_saying_it_and_tensorflow_do_not_match_over_wrapped_lines(matrix: Matrix) -> None:
    text = ("ImportError:\nAttempted to load a compiled library, but it failed.  This commonly occurs when your "
            "version of\ntensorflow and tensorflow-text are mismatched.  Install matching releases.\n")
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


def test_a_loader_message_broken_after_its_labels_is_read_whole(matrix: Matrix) -> None:
    text = ("NotImplementedError: unable to open file: libtensorflow_text.so, caused by:\n"
            "['/venv/lib/python3.10/site-packages/tensorflow_text/python/ops/_regex_split_ops.so:\nundefined symbol:\n"
            "_ZN10tensorflow15OpKernelContext5inputEN4absl12lts_2023080211string_viewEPPKNS_6TensorE']")
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


# --- the TPU runtime of another release, an op the runtime lacks -----------------------------------------------------

def test_jax_and_libtpu_of_different_releases_in_each_wording(matrix: Matrix) -> None:
    for line in ("F0725 10:02:03.000000 1234 tpu_executor_init_fns.inc:148] TpuExecutor_AllocateStream not available "
                 "in this library.\nAborted (core dumped)",
                 "UserWarning: cloud_tpu_init failed: AttributeError(\"module 'libtpu' has no attribute "
                 "'configure_library_path'\")"):
        assert first_two(line, matrix)[0] == "log-libtpu-jax-mismatch", line


def test_an_op_the_serving_runtime_does_not_register(matrix: Matrix) -> None:
    text = ("tensorflow.python.framework.errors_impl.NotFoundError: Op type not registered 'CaseFoldUTF8' in binary "
            "running on host. Make sure the Op and Kernel are registered in the binary running in this process.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-op-not-registered"
    assert "CaseFoldUTF8" in found[0].title


# --- smaller wordings: Keras 3's type check, NCHW on the CPU, a GPU below the minimum, MPS, numpy's aliases -----------

def test_keras_3_refusing_a_keras_2_layer_without_backticks(matrix: Matrix) -> None:
    text = ("ValueError: Only instances of keras.Layer can be added to a Sequential model. Received: "
            "<tf_keras.src.layers.core.dense.Dense object at 0x7f3a>")
    assert first_two(text, matrix)[0] == "log-tf-keras-missing"


def test_a_gpu_layout_refused_by_cpu_kernels_means_the_gpu_is_not_used(matrix: Matrix) -> None:
    text = ("tensorflow.python.framework.errors_impl.UnimplementedError: The Conv2D op currently only supports the "
            "NHWC tensor format on the CPU. The op was given the format: NCHW [Op:Conv2D]")
    assert "log-expected-accelerator-missing" in first_two(text, matrix)


def test_a_gpu_below_the_builds_minimum_in_a_programs_own_words(matrix: Matrix) -> None:
    text = "Error: no usable device found with the minimum compute capability of 6.0 (found: GeForce GTX 760, 3.0)"
    assert first_two(text, matrix)[0] == "log-gpu-arch-unsupported"


def test_the_metal_plugin_failing_to_build_its_mps_graph(matrix: Matrix) -> None:
    text = "jaxlib.xla_extension.XlaRuntimeError: INTERNAL: Failed to compile the MPS graph for jit(scan)"
    assert first_two(text, matrix)[0] == "log-metal-op-unsupported"


def test_numpy_1_24s_removed_builtin_aliases(matrix: Matrix) -> None:
    text = ("AttributeError: module 'numpy' has no attribute 'bool'.\n`np.bool` was a deprecated alias for the builtin "
            "`bool`. To avoid this error in existing code, use `bool` by itself.")
    assert first_two(text, matrix)[0] == "sig-numpy2-removed-alias"


def test_cuda_no_visible_gpu_from_jaxs_cuda_plugin(matrix: Matrix) -> None:
    text = ("INFO:jax._src.xla_bridge:Unable to initialize backend 'cuda': FAILED_PRECONDITION: No visible GPU "
            "devices.\nWARNING:jax._src.xla_bridge:An NVIDIA GPU may be present on this machine, but a CUDA-enabled "
            "jaxlib is not installed. Falling back to cpu.")
    assert "sig-cuda-no-device" in first_two(text, matrix)


def test_the_installed_cuda_read_from_tensorflows_issue_template(matrix: Matrix) -> None:
    # a Windows DLL of CUDA 10.1 asked for in a sentence, CUDA 11.0 installed as the template says
    text = ("- TensorFlow version: 2.3.1\n- CUDA/cuDNN version: 11.0 / 8.0\n\nWhen I import tensorflow it says "
            "cudart64_101.dll not found, but the toolkit is installed.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-lib-soname-other-release"
    assert "11.0" in found[0].title


def test_a_cudnn_soname_is_compared_with_the_installed_cudnn_not_cuda(matrix: Matrix) -> None:
    asked = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
             "'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file: No such file or directory\n"
             "W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries.\n")
    other = diagnose_log(asked + "$ conda list | grep cudnn\ncudnn                     9.1.1.17   cuda12_0\n", matrix)
    assert other[0].id == "log-lib-soname-other-release"
    assert "cuDNN 9.1.1" in other[0].title
    # the same major installed: the library is there, the search path misses it
    same = diagnose_log(asked + "$ conda list | grep cudnn\ncudnn                     8.1.0.77   h90431f1_0\n", matrix)
    assert same[0].id != "log-lib-soname-other-release"


# --- packages of another era beside each other: h5py 3 under an old Keras, keras beside an older TensorFlow, gym -----

def test_h5py_3_under_an_old_keras_reading_a_model(matrix: Matrix) -> None:
    text = ("  File \"/venv/lib/python3.7/site-packages/tensorflow/python/keras/saving/hdf5_format.py\", line 651, in "
            "load_weights_from_hdf5_group_by_name\n    original_backend = f.attrs['backend'].decode('utf8')\n"
            "AttributeError: 'str' object has no attribute 'decode'")
    assert first_two(text, matrix)[0] == "log-h5py3-str-decode"


def test_a_str_decode_error_outside_hdf5_is_not_h5py(matrix: Matrix) -> None:
    text = ("  File \"/home/kim/tools/csv2json.py\", line 12, in <module>\n    row = line.decode('latin-1')\n"
            "AttributeError: 'str' object has no attribute 'decode'")
    assert "log-h5py3-str-decode" not in first_two(text, matrix)


def test_keras_newer_than_tensorflow_registering_its_metrics_twice(matrix: Matrix) -> None:
    text = ("E tensorflow/core/lib/monitoring/collection_registry.cc:77] Cannot register 2 metrics with the same name: "
            "/tensorflow/api/keras/dropout/temp_rate_is_zero\n"
            "tensorflow.python.framework.errors_impl.AlreadyExistsError: Another metric with the same name already "
            "exists.")
    assert first_two(text, matrix)[0] == "log-keras-needs-newer-tf"


def test_gyms_new_reset_and_step_apis_met_by_old_code(matrix: Matrix) -> None:
    reset = ("  File \"/home/kim/agent/run.py\", line 30, in collect\n    obs, info = env.reset(seed=0)\n"
             "ValueError: too many values to unpack (expected 2)\n"
             "  File \"/venv/lib/python3.10/site-packages/gym/wrappers/order_enforcing.py\", line 42, in reset")
    assert first_two(reset, matrix)[0] == "log-gym-step-api-mismatch"
    step = ("  File \"/venv/lib/python3.9/site-packages/gymnasium/wrappers/time_limit.py\", line 57, in step\n"
            "    observation, reward, terminated, truncated, info = self.env.step(action)\n"
            "ValueError: not enough values to unpack (expected 5, got 4)")
    assert first_two(step, matrix)[0] == "log-gym-step-api-mismatch"


def test_an_unpack_error_in_plain_code_is_not_gym(matrix: Matrix) -> None:
    text = ("  File \"/home/kim/plot.py\", line 8, in <module>\n    x, y = load_points(path)\n"
            "ValueError: too many values to unpack (expected 2)")
    assert "log-gym-step-api-mismatch" not in first_two(text, matrix)


# --- the rest: Colab without TF 1, NVML, a stale .pyc, jax without jaxlib, glibc, protobuf ---

def test_smaller_wordings_of_known_causes(matrix: Matrix) -> None:
    cases = {
        "ValueError: Tensorflow 1 is no longer supported in Colab.": "log-colab-tf1-unsupported",
        "$ nvidia-smi\nFailed to initialize NVML: Driver/library version mismatch": "sig-driver-library-mismatch",
        "pynvml.nvml.NVMLError_LibRmVersionMismatch: NVML_ERROR_LIB_RM_VERSION_MISMATCH":
            "sig-driver-library-mismatch",
        "ImportError: bad magic number in 'helpers': b'\\x42\\r\\r\\n'": "log-python-bytecode-mismatch",
        "ModuleNotFoundError: flax requires jaxlib to be installed.": "log-missing-package",
        "ImportError: /lib64/libc.so.6: version 'GLIBC_2.27' not found (required by /opt/venv/lib/python3.9/"
        "site-packages/jaxlib/xla_extension.so)": "log-cxx-runtime-too-old",
        "If you cannot immediately regenerate your protos, some other possible workarounds are:\n"
        " 1. Downgrade the protobuf package to 3.20.x or lower.": "sig-protobuf-descriptors",
        "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM": "sig-xla-out-of-memory",
    }
    for text, expected in cases.items():
        assert first_two(text, matrix)[0] == expected, text


# --- a name past its use, cuBLAS's autotuner, container checks, the host's large allocations, late settings -------

def test_a_name_the_package_says_is_no_longer_to_be_used(matrix: Matrix) -> None:
    text = ("  File \"/home/kim/run.py\", line 3, in <module>\n    mesh = maps.Mesh(devs, ('x',))\n"
            "RuntimeError: `jax.experimental.maps.Mesh` is no longer supported; use jax.sharding.Mesh instead.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-stated-removal"
    assert "jax.sharding.Mesh" in found[0].title + " ".join(found[0].evidence) + found[0].fix.summary


def test_a_sentence_that_something_is_no_longer_supported_names_no_removal(matrix: Matrix) -> None:
    text = "RuntimeError: This function is no longer supported on this device."
    assert "log-stated-removal" not in first_two(text, matrix)


def test_xlas_gemm_autotuner_without_cublas_algorithms(matrix: Matrix) -> None:
    text = ("jaxlib.xla_extension.XlaRuntimeError: INTERNAL: RET_CHECK failure "
            "(xla/service/gpu/cublas_lt_matmul_thunk.cc:118) plan.ok()")
    assert first_two(text, matrix)[0] == "sig-cublas-handle-not-initialized"


def test_nvidia_dockers_driver_below_the_images_cuda(matrix: Matrix) -> None:
    text = ("$ nvidia-docker run --rm nvidia/cuda:10.1-base nvidia-smi\n"
            "Error: unsupported CUDA version: driver 9.0 < image 10.1")
    assert first_two(text, matrix)[0] == "sig-driver-too-old-for-cuda"


def test_a_glibc_symbol_version_without_quotes(matrix: Matrix) -> None:
    text = ("ImportError: /usr/lib64/libstdc++.so.6: version GLIBCXX_3.4.26 not found (required by "
            "/opt/conda/lib/python3.10/site-packages/jaxlib/xla_extension.so)")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-cxx-runtime-too-old"
    assert "GLIBCXX_3.4.26" in found[0].title and "/usr/lib64/libstdc++.so.6" in found[0].title


def test_a_numpy_without_the_module_numpy_116_added(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 2, in <module>\n"
            "    import tensorflow as tf\n"
            "ModuleNotFoundError: No module named 'numpy.core._multiarray_umath'\n"
            "ImportError: numpy.core.multiarray failed to import")
    assert first_two(text, matrix)[0] == "log-numpy-older-than-built"


def test_jax_warning_that_a_tpu_is_there_without_libtpu(matrix: Matrix) -> None:
    text = (">>> print(jax.devices())\nW1103 08:12:40.120041 139 xla_bridge.py:1002] A Google TPU may be present on "
            "this machine, but either a TPU-enabled jaxlib or libtpu is not installed. Falling back to cpu.\n"
            "[CpuDevice(id=0)]")
    assert first_two(text, matrix)[0] == "log-libtpu-not-found"


def test_rocm_builds_refusing_an_amd_gpu_outside_their_targets(matrix: Matrix) -> None:
    tf_rocm = ("I tensorflow/core/common_runtime/gpu/gpu_device.cc:2020] Ignoring visible gpu device (device: 1, "
               "name: Radeon RX 5700, pci bus id: 0000:03:00.0) with AMDGPU version : gfx1010. The supported AMDGPU "
               "versions are gfx900, gfx906, gfx908, gfx90a, gfx1030.")
    jax_rocm = ("RuntimeError: Unable to initialize backend 'rocm': INTERNAL: no supported devices found for platform "
                "ROCM (you may need to uninstall the failing plugin package, or set JAX_PLATFORMS=cpu to skip this "
                "backend.)")
    for text in (tf_rocm, jax_rocm):
        found = diagnose_log(text, matrix)
        assert found[0].id == "log-gpu-arch-unsupported", text
        assert "ROCm" in found[0].fix.summary


def test_a_run_whose_last_words_are_a_huge_host_allocation(matrix: Matrix) -> None:
    text = ("Epoch 1/10\ntcmalloc: large alloc 12884901888 bytes == 0x55d1c4000000 @  0x7f4a 0x7f4b 0x51c2\n"
            "W tensorflow/core/framework/cpu_allocator_impl.cc:80] Allocation of 12884901888 exceeds 10% of free "
            "system memory.")
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


def test_a_large_allocation_before_a_program_error_is_not_the_cause(matrix: Matrix) -> None:
    text = ("tcmalloc: large alloc 2147483648 bytes == 0x55d1c4000000 @  0x7f4a 0x7f4b\n"
            "Traceback (most recent call last):\n  File \"fit.py\", line 30, in <module>\n    model.fit(x, y)\n"
            "ValueError: Input 0 of layer dense is incompatible with the layer: expected axis -1 to have value 64")
    assert "log-host-out-of-memory" not in first_two(text, matrix)


def test_a_device_setting_made_after_the_backend_started(matrix: Matrix) -> None:
    text = ("In [2]: print(jax.device_count())\n1\n"
            "In [3]: os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'\n"
            "In [4]: print(jax.device_count())\n1")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-jax-device-config-after-init"
    assert any("XLA_FLAGS" in e for e in found[0].evidence)


def test_a_setting_after_a_function_that_only_defines_an_array_call_is_in_time(matrix: Matrix) -> None:
    text = ("def loss(x):\n    return jnp.sum(x ** 2)\n\nif __name__ == '__main__':\n"
            "    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'\n"
            "    print(jax.device_count())\n1")
    assert "log-jax-device-config-after-init" not in first_two(text, matrix)


def test_a_containers_own_check_for_cpu_instructions(matrix: Matrix) -> None:
    text = ("ERROR: This image was built for CPUs supporting at least the AVX2 instruction set, but the CPU found "
            "was Intel(R) Core(TM)2 Quad CPU Q9550, which does not report support for AVX2.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-cpu-instructions-missing"
    assert "AVX2" in found[0].title


def test_a_retyped_pip_verdict(matrix: Matrix) -> None:
    text = "pip keeps saying \"couldnot find a version that satisfies the requirement tensorflow-gpu\"."
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-no-matching-distribution"
    assert "tensorflow-gpu" in found[0].title + " ".join(found[0].evidence)


def test_a_soname_asked_for_beside_another_release_said_installed(matrix: Matrix) -> None:
    text = ("TensorFlow keeps looking for libcublas.so.10.0 but I have libcublas.so.10.2 installed.\n"
            ">>> tf.test.is_gpu_available()\nFalse")
    assert first_two(text, matrix)[0] == "log-lib-soname-other-release"


def test_pmap_keys_split_for_a_device_count_the_machine_lacks(matrix: Matrix) -> None:
    keys = ("ValueError: pmap got inconsistent sizes for array axes to be mapped:\n"
            "  * most axes (12 of them) had size 2, e.g. axis 0 of args[0] of type float32[2,64];\n"
            "  * one axis had size 4: axis 0 of args[1] of type uint32[4,2]")
    assert first_two(keys, matrix)[0] == "sig-batch-not-divisible-by-devices"
    own_bug = ("ValueError: pmap got inconsistent sizes for array axes to be mapped:\n"
               "arg 0 has shape (4, 32) and axis 0 is to be mapped\narg 1 has shape (2, 32) and axis 0 is to be mapped")
    assert "sig-batch-not-divisible-by-devices" not in first_two(own_bug, matrix)


# --- Keras 3 and Keras 2's SavedModels, Docker without the NVIDIA runtime, headless EGL, file limits, TLS ---------

def test_keras_3_refusing_a_savedmodel_folder(matrix: Matrix) -> None:
    text = ("  File \"/srv/app/predict.py\", line 9, in <module>\n    model = tf.keras.models.load_model('export/1')\n"
            "ValueError: File format not supported: filepath=export/1. Keras 3 only supports V3 `.keras` files and "
            "legacy H5 format files (`.h5` extension).")
    assert first_two(text, matrix)[0] == "log-tf-keras-missing"


def test_keras_asking_an_older_tensorflows_eager_context(matrix: Matrix) -> None:
    text = ("  File \"/opt/conda/lib/python3.8/site-packages/keras/backend.py\", line 37, in <module>\n"
            "    from tensorflow.python.eager.context import get_config\n"
            "ImportError: cannot import name 'get_config' from 'tensorflow.python.eager.context'")
    assert first_two(text, matrix)[0] == "log-keras-needs-newer-tf"


def test_docker_without_the_nvidia_runtime(matrix: Matrix) -> None:
    for text in ('$ docker compose up\nError response from daemon: could not select device driver "nvidia" with '
                 'capabilities: [[gpu]]',
                 "docker: Error response from daemon: unknown or invalid runtime name: nvidia."):
        found = diagnose_log(text, matrix)
        assert found[0].id == "log-docker-gpu-runtime-missing", text
        assert "nvidia-ctk" in found[0].fix.summary


def test_headless_rendering_without_an_egl_device(matrix: Matrix) -> None:
    text = ("  File \"/home/kim/.venv/lib/python3.10/site-packages/dm_control/_render/pyopengl/egl_renderer.py\", "
            "line 75, in _platform_init\n"
            "    raise ImportError('eglInitialize() failed with error: EGL_NOT_INITIALIZED')\n"
            "ImportError: eglInitialize() failed with error: EGL_NOT_INITIALIZED")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-egl-headless-unavailable"
    assert found[0].fix.env.get("MUJOCO_GL") == "osmesa"


def test_a_process_out_of_file_descriptors(matrix: Matrix) -> None:
    text = ("W0512 10:02:11.001 data.py:88] reading shard 1021 of 4096\n"
            "OSError: [Errno 24] Too many open files: '/data/bridge/train-01022.tfrecord'")
    assert first_two(text, matrix)[0] == "log-too-many-open-files"


def test_a_download_that_fails_tls_verification(matrix: Matrix) -> None:
    text = ("urllib.error.URLError: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "unable to get local issuer certificate (_ssl.c:1006)>")
    assert first_two(text, matrix)[0] == "log-python-ssl-certificates-missing"


# --- Pastes cut inside a name, TensorFlow's op libraries and registry, NCCL's wrappers, HDF5, Metal's dtypes ----

def test_a_paste_cut_inside_the_quoted_name(matrix: Matrix) -> None:
    # the copy stops before the closing quote: the module and the caller are still there to read
    sub = ("  File \"/opt/venv/lib/python3.10/site-packages/flax/linen/partitioning.py\", line 36, in <module>\n"
           "    from jax.experimental import maps\n"
           "ModuleNotFoundError: No module named 'jax.experimental.ma")
    found = diagnose_log(sub, matrix)
    assert found[0].id == "log-era-mismatch"
    assert "flax" in found[0].title and "jax.experimental" in found[0].title
    attr = ("  File \"/usr/lib/python3.9/site-packages/kerastuner/engine/hypermodel.py\", line 20, in <module>\n"
            "    keras.layers.experimental.preprocessing.Rescaling\n"
            "AttributeError: module 'tensorflow.keras.layers.experimental' has no attribute 'prepro")
    found = diagnose_log(attr, matrix)
    assert found[0].id == "log-era-mismatch"
    assert found[0].title.startswith("keras-tuner and the installed tensorflow")


def test_a_custom_op_library_lacking_a_tensorflow_class_in_another_mangling(matrix: Matrix) -> None:
    # a vtable, not a function: _ZTVN..., from a library of the user's own build
    text = ("tensorflow.python.framework.errors_impl.NotFoundError: build/libroi_align.so: undefined symbol: "
            "_ZTVN10tensorflow15shape_inference16InferenceContextE")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-op-library-abi-mismatch"
    assert "libroi_align.so" in found[0].title


def test_tensorflows_own_library_lacking_a_symbol_is_not_an_extension(matrix: Matrix) -> None:
    text = ("ImportError: /usr/lib/python3/dist-packages/tensorflow/libtensorflow_framework.so.2: undefined symbol: "
            "_ZN10tensorflow8internal21CheckOpMessageBuilder9NewStringB5cxx11Ev")
    assert "log-op-library-abi-mismatch" not in first_two(text, matrix)


def test_an_op_library_whose_op_definitions_this_tensorflow_refuses(matrix: Matrix) -> None:
    text = ("  File \"/srv/venv/lib/python3.7/site-packages/tensorflow_core/python/framework/load_library.py\", "
            "line 57, in load_op_library\n    lib_handle = py_tf.TF_LoadLibrary(library_filename)\n"
            "tensorflow.python.framework.errors_impl.InvalidArgumentError: Attr 'Tidx' of type 'list(type)' has "
            "no allowed values for this release; in OpDef: name: \"Text>Normalize\" input_arg { name: \"input\" }")
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


def test_an_extension_linked_to_another_majors_framework_library(matrix: Matrix) -> None:
    text = ("  File \"/home/kim/.local/lib/python3.8/site-packages/tensorflow_io/core/python/ops/__init__.py\", "
            "line 88, in <module>\n    core_ops = _load_library('libtensorflow_io.so')\n"
            "  File \"/home/kim/.local/lib/python3.8/site-packages/tensorflow/python/framework/load_library.py\", "
            "line 54, in load_op_library\n"
            "tensorflow.python.framework.errors_impl.NotFoundError: libtensorflow_framework.so.1: cannot open shared "
            "object file: No such file or directory")
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


def test_the_graphs_own_lookup_of_an_unregistered_op(matrix: Matrix) -> None:
    # a plain traceback that stops at the KeyError, before TensorFlow's "Op type not registered"
    text = ("Traceback (most recent call last):\n"
            "  File \"/usr/lib/python3/dist-packages/tensorflow/python/framework/ops.py\", line 3946, in _get_op_def\n"
            "    return self._op_def_cache[type]\nKeyError: 'SentencepieceTokenizeOp'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-op-not-registered"
    assert "SentencepieceTokenizeOp" in found[0].title


def test_a_second_wordings_group_fills_the_same_field(matrix: Matrix) -> None:
    text = ("I0301 loader_harness.cc:66] Approving load for servable version {name: ragged version: 3}\n"
            "ValueError: Op 'RaggedTensorToVariant' is not registered in this binary")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-op-not-registered"
    assert "RaggedTensorToVariant" in found[0].title


def test_nccl_failing_inside_a_frameworks_wrapper(matrix: Matrix) -> None:
    text = ("2024-02-11 09:12:40.118: E tensorflow/core/nccl/nccl_manager.cc:451] ncclGroupEnd returned: "
            "remote process exited or there was a network error\nAborted (core dumped)")
    assert first_two(text, matrix)[0] == "log-nccl-failure"
    lone = "W op_kernel.cc:1830] OP_REQUIRES failed at nccl_ops.cc:104 : Internal: internal error"
    assert first_two(lone, matrix)[0] == "log-nccl-failure"


def test_hdf5_headers_and_library_of_different_releases(matrix: Matrix) -> None:
    # PyTables' import, the warning wrapped at other places than h5py prints it
    text = ("Warning! ***HDF5 library version mismatched error***\nThe HDF5 header files used to compile this "
            "application do not\nmatch the version used by the HDF5 library to which this application is "
            "linked.\nHeaders are 1.12.1, library is 1.14.3\nAbort trap: 6")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-hdf5-header-library-mismatch"
    assert "1.14.3" in found[0].title and "1.12.1" in found[0].title


def test_metal_refusing_a_functions_data_types(matrix: Matrix) -> None:
    text = ("Platform 'METAL' is experimental and not all JAX functionality may be correctly supported!\n"
            "jaxlib.xla_extension.XlaRuntimeError: UNKNOWN: /Users/kim/kalman.py:12:0: error: 'func.func' op One or "
            "more function input/output data types are not supported.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-metal-op-unsupported"
    assert "jax_enable_x64" in found[0].fix.summary
    # the same words with no sign of a Mac or of Metal are not enough to name the plugin
    bare = "error: 'func.func' op One or more function input/output data types are not supported."
    assert "log-metal-op-unsupported" not in first_two(bare, matrix)


def test_a_windows_cuda_dll_tensorflow_could_not_load(matrix: Matrix) -> None:
    self_check = ("ImportError: Could not find 'cudnn64_7.dll'. TensorFlow requires that this DLL be installed in a "
                  "directory that is named in your %PATH% environment variable.")
    assert first_two(self_check, matrix)[0] == "sig-cuda-lib-missing-so"
    loader = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
              "'cusolver64_11.dll'; dlerror: cusolver64_11.dll not found\n"
              "W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. Please "
              "make sure the missing libraries mentioned above are installed properly.\nSkipping registering GPU "
              "devices...")
    found = diagnose_log(loader, matrix)
    assert found[0].id == "sig-cuda-lib-missing-so"
    assert "TensorFlow" in found[0].title


def test_a_cudnn_sub_library_that_is_missing(matrix: Matrix) -> None:
    text = "OSError: libcudnn_cnn_train.so.8: cannot open shared object file: No such file or directory"
    assert first_two(text, matrix)[0] == "sig-cuda-lib-missing-so"


# --- pip and packages another installer owns, PyPI backports of standard modules, optional dependencies -----------

def test_a_package_pip_did_not_install_and_cannot_remove(matrix: Matrix) -> None:
    # pip >= 22's layout, and a Debian package without a RECORD file
    for text, pkg in (("error: uninstall-distutils-installed-package\n\n× Cannot uninstall PyYAML 3.12\n╰─> It is a "
                       "distutils installed project and thus we cannot accurately determine which files belong to it "
                       "which would lead to only a partial uninstall.", "PyYAML"),
                      ("error: uninstall-no-record-file\n\n× Cannot uninstall blinker 1.4\n╰─> The package's contents "
                       "are unknown: no RECORD file was found for blinker.\n\nhint: The package was installed by "
                       "debian.", "blinker")):
        found = diagnose_log(text, matrix)
        assert found[0].id == "log-distutils-installed-package", text
        assert pkg in found[0].title


def test_a_pypi_backport_imported_instead_of_the_standard_module(matrix: Matrix) -> None:
    # enum34 on Python 3: the standard `re` asks the backport for a name only the standard enum has
    text = ("Traceback (most recent call last):\n"
            "  File \"/opt/venv/lib/python3.8/site-packages/enum/__init__.py\", line 2, in <module>\n"
            "    import sys as _sys\n"
            "  File \"/usr/lib/python3.8/re.py\", line 143, in <module>\n    class RegexFlag(enum.IntFlag):\n"
            "AttributeError: module 'enum' has no attribute 'IntFlag'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-shadowed-module"
    assert "enum34" in found[0].title and "pip uninstall -y enum34" in found[0].fix.commands
    # a standard module lacking a name, with no backport in sight, is not a shadow
    plain = ("  File \"/home/kim/proj/types_compat.py\", line 4, in <module>\n    from typing import Self\n"
             "ImportError: cannot import name 'Self' from 'typing' (/usr/lib/python3.10/typing.py)")
    assert "log-shadowed-module" not in first_two(plain, matrix)


def test_an_installed_package_importing_a_dependency_that_is_missing(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"convert.py\", line 3, in <module>\n    import trax\n"
            "  File \"/srv/env/lib/python3.9/site-packages/trax/layers/research/sparsity.py\", line 22, in <module>\n"
            "    import gin_config_extras\nModuleNotFoundError: No module named 'gin_config_extras'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-missing-package"
    assert "trax" in found[0].title and "gin-config-extras" in found[0].title
    # the user's own script importing a module of the project that is not there: nothing to install
    local = ("  File \"/home/kim/proj/train.py\", line 5, in <module>\n    import proj_utils\n"
             "ModuleNotFoundError: No module named 'proj_utils'")
    assert "log-missing-package" not in first_two(local, matrix)


def test_a_feature_that_needs_an_optional_dependency_names_its_distribution(matrix: Matrix) -> None:
    text = "ImportError: Could not import PIL.Image. The use of `save_img` requires PIL."
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-missing-package"
    assert "pillow" in found[0].title and found[0].fix.commands == ('pip install "pillow"',)


def test_colabs_notice_that_the_vm_ran_out_of_ram(matrix: Matrix) -> None:
    text = "Loading checkpoint shards: 62%\nYour runtime crashed after using all available RAM. View runtime logs"
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


def test_a_full_disk_reported_with_a_relative_path(matrix: Matrix) -> None:
    text = ("writing shard failed: tensorflow.python.framework.errors_impl.ResourceExhaustedError: "
            "out/shards/train-00007-of-00016")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-disk-full"
    assert "out/shards/train-00007-of-00016" in found[0].title


def test_a_tensorflow_symbol_undefined_with_the_library_cut_from_the_paste(matrix: Matrix) -> None:
    text = "import tensorflow_io fails with: undefined symbol: _ZN10tensorflow15OpKernelContext5inputEi"
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


def test_numpy_1_20_under_an_older_tensorflows_graph_code(matrix: Matrix) -> None:
    text = ("numpy==1.21.0\ntensorflow==2.3.1\n"
            "  File \"/opt/conda/lib/python3.7/site-packages/numpy/core/fromnumeric.py\", line 87, in _wrapreduction\n"
            "    return ufunc.reduce(obj, axis, dtype, out, **passkwargs)\n"
            "NotImplementedError: Cannot convert a symbolic Tensor (lstm_2/strided_slice:0) to a numpy array.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-installed-conflict"
    assert 'pip install "numpy<1.20"' in found[0].fix.commands


def test_the_tensorflow_ecosystems_shared_version_check_for_any_package(matrix: Matrix) -> None:
    text = ("ImportError: This version of TF-Agents requires TensorFlow version >= 2.9.0; Detected an installation of "
            "version 2.4.1. Please upgrade TensorFlow to proceed.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch"
    assert found[0].title.startswith("TF-Agents is newer than the installed TensorFlow") and "2.9.0" in found[0].title


def test_a_programs_own_gpu_check_that_finds_none(matrix: Matrix) -> None:
    text = ("----> 4     raise RuntimeError('No GPU found')\n\nRuntimeError: No GPU found\n"
            "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2 |")
    assert first_two(text, matrix)[0] == "log-expected-accelerator-missing"


def test_setuptools_install_stating_an_installed_conflict(matrix: Matrix) -> None:
    text = ("Processing dependencies for magenta==2.1.3\n"
            "error: absl-py 1.4.0 is installed but absl-py<0.13,>=0.9 is required by {'tensorflow-datasets'}")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-installed-conflict"
    assert "absl-py" in found[0].title and "1.4.0" in found[0].title


# --- Architectures, protobuf's generated code, OS libraries, typographic quotes ---------------------------------

def test_a_library_of_another_cpu_architecture(matrix: Matrix) -> None:
    for text in ("ImportError: dlopen(/Users/kim/venv/lib/python3.11/site-packages/jaxlib/xla_extension.so, 0x0002): "
                 "tried: '/Users/kim/venv/lib/python3.11/site-packages/jaxlib/xla_extension.so' (mach-o file, but is "
                 "an incompatible architecture (have 'arm64', need 'x86_64'))",
                 "ImportError: /opt/py/lib/python3.8/site-packages/tensorflow/python/_pywrap_tensorflow_internal.so: "
                 "wrong ELF class: ELFCLASS32"):
        found = diagnose_log(text, matrix)
        assert found[0].id == "log-wrong-architecture", text
        assert "platform.machine()" in found[0].fix.summary


def test_a_protobuf_runtime_older_than_the_generated_code(matrix: Matrix) -> None:
    create_key = ("  File \"/srv/env/lib/python3.7/site-packages/tensorboard/compat/proto/resource_handle_pb2.py\", "
                  "line 20, in <module>\n    create_key=_descriptor._internal_create_key,\n"
                  "AttributeError: module 'google.protobuf.descriptor' has no attribute '_internal_create_key'")
    found = diagnose_log(create_key, matrix)
    assert found[0].id == "log-protobuf-runtime-too-old"
    assert "_internal_create_key" in found[0].title
    runtime = ("ImportError: cannot import name 'runtime_version' from 'google.protobuf' "
               "(/usr/lib/python3/dist-packages/google/protobuf/__init__.py)")
    assert first_two(runtime, matrix)[0] == "log-protobuf-runtime-too-old"


def test_a_system_library_missing_from_the_image(matrix: Matrix) -> None:
    text = ("  File \"/usr/local/lib/python3.10/site-packages/soundfile.py\", line 163, in <module>\n"
            "OSError: libsndfile.so.1: cannot open shared object file: No such file or directory")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-os-package-missing"
    assert "libsndfile.so.1" in found[0].title and "libsndfile1" in found[0].fix.summary


def test_typographic_quotes_from_a_rich_text_paste(matrix: Matrix) -> None:
    text = "The TensorFlow library was compiled to use SSE4.1 instructions, but these aren’t available on your machine."
    assert first_two(text, matrix)[0] == "log-cpu-instructions-missing"


def test_gyms_reset_unpacked_into_any_two_names(matrix: Matrix) -> None:
    text = ("---> 12 obs, _ = env.reset(seed=0)\n\nValueError: too many values to unpack (expected 2)")
    assert first_two(text, matrix)[0] == "log-gym-step-api-mismatch"


def test_str_decode_while_loading_a_pretrained_model(matrix: Matrix) -> None:
    text = "Loading the pretrained model fails: AttributeError: 'str' object has no attribute 'decode'"
    assert first_two(text, matrix)[0] == "log-h5py3-str-decode"


def test_python_2s_unquoted_module_name_from_an_installed_package(matrix: Matrix) -> None:
    text = ("  File \"/usr/local/lib/python2.7/dist-packages/trfl/__init__.py\", line 30, in <module>\n"
            "    from trfl.action_value_ops import *\n"
            "  File \"/usr/local/lib/python2.7/dist-packages/trfl/action_value_ops.py\", line 24, in <module>\n"
            "    import sonnet as snt\nImportError: No module named sonnet")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-missing-package"
    assert "dm-sonnet" in found[0].title


def test_a_package_imported_from_the_working_directory(matrix: Matrix) -> None:
    # a relative frame path: Python found the package through the working directory (a source checkout)
    text = ("Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
            "  File \"jax/__init__.py\", line 37, in <module>\n    from jax._src.lib import xla_client\n"
            "ModuleNotFoundError: No module named 'jax._src.lib'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-shadowed-module"
    assert "source checkout" in found[0].fix.summary


# --- installs on Windows, compilers and runtimes around the framework ----------------------------------------------

def test_a_path_past_windows_limit_in_windows_own_words(matrix: Matrix) -> None:
    text = ("Installing collected packages: tensorflow-estimator, tensorflow\n"
            "ERROR: Could not install packages due to an OSError: [WinError 206] The filename or extension is too "
            "long: 'C:\\\\Users\\\\ana\\\\miniconda3\\\\envs\\\\tf\\\\Lib\\\\site-packages\\\\tensorflow\\\\include'")
    assert first_two(text, matrix)[0] == "log-windows-long-path-disabled"


def test_a_short_missing_path_is_not_windows_path_limit(matrix: Matrix) -> None:
    text = ("ERROR: Could not install packages due to an OSError: [Errno 2] No such file or directory: "
            "'C:\\\\tmp\\\\x.whl'")
    assert "log-windows-long-path-disabled" not in first_two(text, matrix)


def test_protoc_2_refusing_proto3s_syntax_line(matrix: Matrix) -> None:
    text = ("$ protoc -I=. --python_out=. model.proto\n"
            "model.proto:1:10: Unrecognized syntax identifier \"proto3\".  This parser only recognizes \"proto2\".")
    assert first_two(text, matrix)[0] == "log-protoc-compiler-too-old"


def test_tensorrt_linked_and_loaded_as_tensorflow_2_prints_them(matrix: Matrix) -> None:
    text = ("I tensorflow/compiler/tf2tensorrt/common/utils.cc:58] Linked TensorRT version: 7.2.2\n"
            "I tensorflow/compiler/tf2tensorrt/common/utils.cc:60] Loaded TensorRT version: 8.0.1\n"
            "RuntimeError: Tensorflow has not been built with TensorRT support or TensorRT version mismatch")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-tensorrt-version-mismatch"
    assert "7.2.2" in found[0].title and "8.0.1" in found[0].title


def test_tensorflow_after_2_10_listing_no_gpu(matrix: Matrix) -> None:
    text = "TensorFlow version: 2.13.0\nNum GPUs Available:  0"
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-tf-windows-native-gpu-dropped"
    assert "2.13.0" in found[0].title


def test_tensorflow_2_9_listing_no_gpu_is_not_the_windows_cut(matrix: Matrix) -> None:
    # 2.9 still had GPU builds on native Windows: an empty GPU list there has other causes
    assert "log-tf-windows-native-gpu-dropped" not in first_two("TensorFlow version: 2.9.1\nNum GPUs Available:  0",
                                                                  matrix)


def test_a_package_without_its_version_is_a_leftover_folder(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n"
            "    print(keras.__version__)\nAttributeError: module 'keras' has no attribute '__version__'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-partial-reinstall-leftover"
    assert "pip uninstall -y keras" in found[0].fix.commands


def test_pip_saying_the_package_is_there_beside_python_not_finding_it(matrix: Matrix) -> None:
    text = ("$ pip3 install jax\nRequirement already satisfied: jax in /usr/lib/python3/dist-packages (0.4.23)\n"
            "$ python train.py\nModuleNotFoundError: No module named 'jax'")
    assert first_two(text, matrix)[0] == "log-wrong-interpreter"


def test_a_module_missing_with_no_install_in_sight_is_not_another_interpreter(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 1, in <module>\n    import optax\n"
            "ModuleNotFoundError: No module named 'optax'")
    assert "log-wrong-interpreter" not in first_two(text, matrix)


def test_a_functional_model_loaded_by_an_older_keras(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"convert.py\", line 9, in <module>\n"
            "    model = load_model(\"model.h5\")\n"
            "ValueError: Unknown layer: Functional. Please ensure this object is passed to the `custom_objects` "
            "argument.")
    assert first_two(text, matrix)[0] == "log-saved-by-other-keras"


def test_a_users_own_unknown_layer_is_not_another_keras(matrix: Matrix) -> None:
    # a custom layer not passed in custom_objects: the program's own omission, not a Keras of another release
    text = ("  File \"predict.py\", line 9, in <module>\n    model = load_model(\"model.h5\")\n"
            "ValueError: Unknown layer: AttentionBlock. Please ensure this object is passed to the `custom_objects` "
            "argument.")
    assert "log-saved-by-other-keras" not in first_two(text, matrix)


def test_conda_4_3s_conflict_wording(matrix: Matrix) -> None:
    text = ("Solving package specifications: ..........\n\n"
            "UnsatisfiableError: The following specifications were found to be in conflict:\n"
            "  - python 3.7*\n  - tensorflow-gpu ==1.4.0 -> python 3.6*\n"
            "Use \"conda info <package>\" to see the dependencies for each package.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-resolver-conflict"
    assert "tensorflow-gpu 1.4.0 requires python 3.6" in found[0].title


def test_a_cmake_find_module_refusing_the_installed_version(matrix: Matrix) -> None:
    text = ("CMake Error at /usr/share/cmake/Modules/FindPackageHandleStandardArgs.cmake:230 (message):\n"
            "  Could NOT find Protobuf: Found unsuitable version \"3.6.1\", but required is\n"
            "  at least \"3.21.0\" (found /usr/lib/x86_64-linux-gnu/libprotobuf.so)")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch"
    assert "Protobuf 3.21.0" in found[0].title


def test_glibc_quoted_with_backticks_on_both_sides(matrix: Matrix) -> None:
    text = ("ImportError: /lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_2.38` not found (required by "
            "/home/pi/env/lib/python3.11/site-packages/jaxlib/xla_extension.so)")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-cxx-runtime-too-old"
    assert "GLIBC_2.38" in found[0].title


def test_pyopengl_loaded_another_platform_than_egl(matrix: Matrix) -> None:
    text = ("  File \"/usr/lib/python3/dist-packages/OpenGL/platform/baseplatform.py\", line 80, in __call__\n"
            "    self.GL = self.GLES1 = self.GLES2 = self.GLES3 = self.EGL\n"
            "AttributeError: 'OSMesaPlatform' object has no attribute 'EGL'")
    assert first_two(text, matrix)[0] == "log-egl-headless-unavailable"


# --- TensorFlow's device plugins ----------------------------------------------------------------------------------

def test_a_device_plugins_kernels_registered_twice(matrix: Matrix) -> None:
    text = ("W itex/core/ops/op_init.cc:58] Op: _QuantizedConv2D is already registered in Tensorflow\n"
            "F itex/core/utils/op_kernel.cc:54] Check failed: false Multiple KernelCreateFunc registration")
    assert first_two(text, matrix)[0] == "log-op-library-abi-mismatch"


def test_a_pluggable_device_library_that_does_not_load(matrix: Matrix) -> None:
    text = ("W tensorflow/core/common_runtime/pluggable_device/pluggable_device_plugin_init.cc:42] "
            "tensorflow-plugins/libmetal_plugin.dylib could not be loaded: symbol not found")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-op-library-abi-mismatch"
    assert "libmetal_plugin.dylib" in found[0].title


def test_directml_finding_no_adapter_it_supports(matrix: Matrix) -> None:
    text = ("I tensorflow/c/logging.cc:34] DirectML: creating device on adapter 0 (Intel(R) HD Graphics 4000)\n"
            "E tensorflow/c/logging.cc:34] DirectML: no compatible adapters were found on this machine")
    assert first_two(text, matrix)[0] == "log-gpu-arch-unsupported"


def test_tensorflows_dll_failing_its_start_up_is_the_cpu(matrix: Matrix) -> None:
    text = ("ImportError: DLL load failed while importing _pywrap_tensorflow_internal: A dynamic link library (DLL) "
            "initialization routine failed.")
    assert first_two(text, matrix)[0] == "log-cpu-instructions-missing"


def test_pytorchs_c10_dll_failing_is_not_the_cpu(matrix: Matrix) -> None:
    text = ("OSError: [WinError 1114] A dynamic link library (DLL) initialization routine failed. Error loading "
            "\"C:\\Python311\\Lib\\site-packages\\torch\\lib\\c10.dll\" or one of its dependencies.")
    assert "log-cpu-instructions-missing" not in first_two(text, matrix)


# --- jax's plugins and internals ----------------------------------------------------------------------------------

def test_gpu_kernels_unregistered_for_want_of_the_kernel_plugin(matrix: Matrix) -> None:
    text = ("2025-06-01 10:00:00,000 jax._src.xla_bridge WARNING jax_plugins.xla_cuda13 cuda_plugin_extension is not "
            "found\nXlaRuntimeError: NOT_FOUND: No FFI handler registered for cusolver_getrf_ffi on a platform CUDA")
    assert first_two(text, matrix)[0] == "sig-jax-plugin-version-skew"


def test_a_metal_plugins_own_dispatcher_refusing_an_op(matrix: Matrix) -> None:
    found = diagnose_log("[MPS ERROR] Exception lowering mhlo.fft: not implemented", matrix)
    assert found[0].id == "log-metal-op-unsupported"
    assert "mhlo.fft" in found[0].title


def test_an_internal_class_of_jax_lacking_an_attribute_a_package_reads(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n"
            "  File \"/opt/venv/lib/python3.11/site-packages/somelib/transforms.py\", line 88, in lower\n"
            "    consts = closed.literals\nAttributeError: 'ClosedJaxpr' object has no attribute 'literals'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch"
    assert "somelib" in found[0].title and "ClosedJaxpr.literals" in found[0].title


def test_an_internal_class_reached_from_a_users_line_that_does_not_ask_for_it(matrix: Matrix) -> None:
    # the package between the user's line and jax was cut from the paste: the user's line is not the caller
    text = ("Traceback (most recent call last):\n  File \"/home/u/run.py\", line 7, in <module>\n"
            "    H_dense = H.to_dense()\nAttributeError: 'ShapedArray' object has no attribute 'vma'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-missing-name"
    assert "your code" not in found[0].title


def test_a_tracer_lacking_a_method_is_the_programs_own_call(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/train.py\", line 30, in loss\n"
            "    return float(x.numpy())\nAttributeError: 'DynamicJaxprTracer' object has no attribute 'numpy'")
    assert not {"log-era-mismatch", "log-missing-name"} & set(first_two(text, matrix))


def test_a_keyword_a_package_passes_through_a_colab_arrow_at_column_0(matrix: Matrix) -> None:
    text = ("TypeError                                 Traceback (most recent call last)\n"
            "[/usr/local/lib/python3.10/dist-packages/tf_agents/utils/common.py](https://localhost:8080/#) in "
            "wrap(fn)\n---> 77   return gin.configurable(fn, denylist=['self'])\n\n"
            "TypeError: configurable() got an unexpected keyword argument 'denylist'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch"
    assert "tf-agents" in found[0].title and "gin-config" in found[0].title


def test_a_python_2_module_attribute_under_the_conventional_alias_alone(matrix: Matrix) -> None:
    # the log never spells "tensorflow": `tf` has one conventional module
    text = ("  File \"/Users/a/anaconda2/lib/python2.7/site-packages/somepkg/ops.py\", line 12, in <module>\n"
            "    nan_check = tf.math.is_nan\nAttributeError: 'module' object has no attribute 'math'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch"
    assert "tensorflow" in found[0].title


# --- what a message or a traceback's shape says -------------------------------------------------------------------

def test_an_installed_packages_file_the_parser_refuses_needs_a_newer_python(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/run.py\", line 2, in <module>\n    import fastlib\n"
            "  File \"/usr/lib/python3.7/site-packages/fastlib/__init__.py\", line 12\n"
            "    if (n := len(items)) > 3:\n          ^\nSyntaxError: invalid syntax")
    assert first_two(text, matrix)[0] == "log-python-too-old"


def test_a_syntax_error_in_the_users_own_script_is_not_an_old_python(matrix: Matrix) -> None:
    text = ("  File \"/home/u/train.py\", line 12\n    print \"step\", step\n                ^\n"
            "SyntaxError: Missing parentheses in call to 'print'. Did you mean print(\"step\", step)?")
    assert "log-python-too-old" not in first_two(text, matrix)


def test_a_script_named_like_the_package_it_imports(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/jax.py\", line 1, in <module>\n"
            "    from jax import numpy as jnp\nImportError: cannot import name 'numpy'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-shadowed-module"
    assert "rename the local jax.py" in found[0].fix.summary


def test_a_script_with_its_own_name_importing_a_package_is_not_a_namesake(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/train.py\", line 1, in <module>\n"
            "    from jax import numpy as jnp\nImportError: cannot import name 'numpy'")
    assert "log-shadowed-module" not in first_two(text, matrix)


def test_a_distribution_withdrawn_from_the_index_and_its_successor(matrix: Matrix) -> None:
    text = ("pip install -r requirements.txt\n      The \"tf-nightly-gpu\" package has been removed!\n\n"
            "      Please install \"tf-nightly\" instead.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-stated-removal"
    assert "`tf-nightly`" in found[0].title
    assert "requirements" in found[0].fix.summary


def test_a_library_naming_the_install_that_provides_what_it_could_not_load(matrix: Matrix) -> None:
    found = diagnose_log("RuntimeError: Could not load the MuJoCo renderer. Install it with pip install mujoco",
                         matrix)
    assert found[0].id == "log-missing-package"
    assert found[0].fix.commands == ('pip install "mujoco"',)


def test_an_upgrade_notice_beside_another_error_is_not_a_missing_package(matrix: Matrix) -> None:
    text = ("wandb: A newer version of wandb is available!  To upgrade, please run:\n"
            "wandb:  $ pip install wandb --upgrade\nTraceback (most recent call last):\n"
            "  File \"train.py\", line 40, in <module>\n    loss = model(x)\n"
            "ValueError: operands could not be broadcast together with shapes (3,4) (5,)")
    assert "log-missing-package" not in first_two(text, matrix)


def test_jax_without_a_gpu_backend_handed_a_gpu_tensor(matrix: Matrix) -> None:
    text = "RuntimeError: jax.dlpack.from_dlpack: no CUDA backend is available for a tensor that lives on cuda:0"
    assert first_two(text, matrix)[0] == "sig-cpu-jaxlib-on-gpu-machine"


def test_a_sentence_that_memory_ran_out_and_the_job_was_killed(matrix: Matrix) -> None:
    text = "After about two hours the job ran out of memory and was killed by the system."
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


# --- TensorFlow against itself, extras a release does not define ---------------------------------------------------

def test_an_extra_the_installed_release_does_not_define(matrix: Matrix) -> None:
    text = ("Collecting tensorflow[and-cuda]\n"
            "pkg_resources.UnknownExtra: tensorflow 2.10.0 has no such extra feature 'and-cuda'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-extra-not-provided"
    assert "'and-cuda'" in found[0].title and "2.10.0" in found[0].title


def test_a_graph_node_with_an_attribute_the_tpu_workers_op_lacks(matrix: Matrix) -> None:
    text = ("INFO:tensorflow:Initializing the TPU system: grpc://10.2.3.4:8470\n"
            "InvalidArgumentError: NodeDef mentions attr 'Tindices' not in Op<name=ScatterNd; signature=indices:"
            "Tindices, updates:T, shape:Tindices -> output:T; attr=T:type>; NodeDef: {{node ScatterNd}}")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-op-not-registered-older-runtime"
    assert "ScatterNd" in found[0].title


def test_a_model_server_older_than_the_exporting_tensorflow(matrix: Matrix) -> None:
    text = ("E tensorflow_serving/util/retrier.cc:37] Loading servable: {name: detector version: 3} failed: Not found: "
            "Op type not registered 'StatelessRandomUniformV2' in binary running on 0a1b2c3d4e5f.")
    assert first_two(text, matrix)[0] == "log-op-not-registered-older-runtime"


def test_an_unregistered_op_in_the_same_process_is_not_an_older_runtime(matrix: Matrix) -> None:
    # an extension's op whose library was not imported first: the loading process is the runtime
    text = ("Traceback (most recent call last):\n  File \"infer.py\", line 4, in <module>\n"
            "    tf.saved_model.load(\"exported\")\n"
            "tensorflow.python.framework.errors_impl.NotFoundError: Op type not registered 'SentencepieceOp' in binary "
            "running on host. Make sure the Op and Kernel are registered in the binary running in this process.")
    assert first_two(text, matrix)[0] == "log-op-not-registered"


def test_tensorflow_failing_to_import_from_itself(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/train.py\", line 1, in <module>\n"
            "    import tensorflow as tf\n"
            "  File \"/opt/env/lib/python3.8/site-packages/tensorflow/python/keras/engine/base_layer.py\", line 43, "
            "in <module>\n    from tensorflow.python.keras.utils import tf_utils\n"
            "ImportError: cannot import name 'tf_utils' from 'tensorflow.python.keras.utils' "
            "(/opt/env/lib/python3.8/site-packages/tensorflow/python/keras/utils/__init__.py)")
    assert first_two(text, matrix)[0] == "log-mixed-tensorflow-install"


def test_tensorflow_failing_to_load_a_cuda_library_is_not_a_mixed_install(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/train.py\", line 1, in <module>\n"
            "    import tensorflow as tf\n"
            "  File \"/opt/env/lib/python3.6/site-packages/tensorflow/python/pywrap_tensorflow.py\", line 28, in "
            "<module>\n    from tensorflow.python.pywrap_tensorflow_internal import *\n"
            "ImportError: libcudart.so.10.0: cannot open shared object file: No such file or directory")
    assert "log-mixed-tensorflow-install" not in first_two(text, matrix)


def test_a_notebook_paste_that_stops_inside_tensorflows_own_import(matrix: Matrix) -> None:
    # IPython named the class before the frames; the paste ends at the arrowed line
    text = ("ImportError                               Traceback (most recent call last)\n"
            "/usr/local/lib/python3.8/dist-packages/tensorflow/python/ops/array_ops.py in <module>()\n"
            "     40 \n---> 41 from tensorflow.python.ops.gen_array_ops import *\n     42 \n")
    assert first_two(text, matrix)[0] == "log-mixed-tensorflow-install"


def test_a_packages_check_naming_the_installed_and_the_needed_version(matrix: Matrix) -> None:
    found = diagnose_log("RuntimeError: numpy version 1.19.5 is installed, but mylib requires at least version 1.21.0.",
                         matrix)
    assert found[0].id == "log-era-mismatch"
    assert "mylib" in found[0].title and "numpy 1.21.0" in found[0].title


def test_protobufs_advice_kept_where_its_first_line_was_cut(matrix: Matrix) -> None:
    text = (" 2. Set PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (but this will use pure-Python parsing and will be "
            "much slower).\n\nMore information: https://developers.google.com/protocol-buffers/docs/news/"
            "2022-05-06#python-updates")
    assert first_two(text, matrix)[0] == "sig-protobuf-descriptors"


def test_tensorflows_gpu_list_printed_empty_on_the_next_line(matrix: Matrix) -> None:
    text = "In [3]: tf.config.list_physical_devices('GPU')\nOut[3]: []"
    assert "log-expected-accelerator-missing" in first_two(text, matrix)


def test_a_build_without_cuda_said_with_builds_spelling(matrix: Matrix) -> None:
    text = "TensorFlow version: 2.12.0\ntf.test.is_build_with_cuda() returns False"
    assert first_two(text, matrix)[0] == "log-tf-windows-native-gpu-dropped"


def test_a_pod_evicted_for_its_nodes_memory(matrix: Matrix) -> None:
    text = ("Status: Failed\nReason: Evicted\nMessage: The node was low on resource: memory. Container trainer was "
            "using 14Gi, which exceeds its request of 8Gi.")
    assert first_two(text, matrix)[0] == "log-host-out-of-memory"


def test_a_macos_11_wheel_refused_by_an_old_pip(matrix: Matrix) -> None:
    text = "ERROR: tensorflow-2.5.0-cp39-cp39-macosx_11_0_arm64.whl is not a supported wheel on this platform."
    assert first_two(text, matrix)[0] == "log-pip-too-old"


def test_a_build_from_source_missing_a_libraries_header(matrix: Matrix) -> None:
    text = ("  building '_cffi_backend' extension\n"
            "  src/c/_cffi_backend.c:15:10: fatal error: ffi.h: No such file or directory\n"
            "  error: command '/usr/bin/gcc' failed with exit code 1")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-os-package-missing"
    assert "ffi.h" in found[0].title and "libffi-dev" in found[0].fix.summary


# --- the driver's own library, and TensorFlow 2.16's removals -----------------------------------------------------

def test_the_driver_library_failing_to_load_in_a_binding(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"probe.py\", line 3, in <module>\n    import pynvml_utils\n"
            "OSError: libcuda.so.1: cannot open shared object file: No such file or directory")
    found = [f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert found[0].id == "log-cuda-lib-not-found" and "driver" in found[0].title
    assert found[0].fix is not None and "nvidia-smi" in found[0].fix.commands


def test_windows_without_the_driver_dll(matrix: Matrix) -> None:
    text = ("FileNotFoundError: Could not find module 'nvcuda.dll' (or one of its dependencies). "
            "Try using the full path")
    assert first_two(text, matrix)[0] == "log-cuda-lib-not-found"


def test_tensorflows_probe_of_the_driver_library_then_cuinit_failing(matrix: Matrix) -> None:
    # a container started without GPU access: the probe's warning and then CUDA failing to start
    text = ("2021-03-02 10:11:12.000001: W tensorflow/stream_executor/platform/default/dso_loader.cc:60] "
            "Could not load dynamic library 'libcuda.so.1'; dlerror: libcuda.so.1: cannot open shared object file: "
            "No such file or directory; LD_LIBRARY_PATH: /usr/local/nvidia/lib64\n"
            "2021-03-02 10:11:12.000002: W tensorflow/stream_executor/cuda/cuda_driver.cc:326] failed call to cuInit: "
            "UNKNOWN ERROR (303)")
    assert first_two(text, matrix)[0] == "log-cuda-lib-not-found"


def test_tensorflows_probe_alone_is_not_a_cause(matrix: Matrix) -> None:
    # a CPU-only run prints the probe's warning and goes on: the error is elsewhere
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libcuda.so.1'; dlerror: libcuda.so.1: cannot open shared object file: No such file or directory\n"
            "ValueError: Shapes (None, 1) and (None, 10) are incompatible")
    assert "log-cuda-lib-not-found" not in first_two(text, matrix)


def test_keras_2s_private_copy_in_tensorflow_emptied(matrix: Matrix) -> None:
    text = ("  File \"/srv/app/ranker/layers.py\", line 4, in <module>\n"
            "    from tensorflow.python.keras.layers import Embedding, GRU\n"
            "ImportError: cannot import name 'GRU' from 'tensorflow.python.keras.layers' "
            "(/srv/venv/lib/python3.11/site-packages/tensorflow/python/keras/layers/__init__.py)")
    assert first_two(text, matrix)[0] == "log-tf-keras-missing"


def test_tf_estimator_gone_from_tensorflow_216(matrix: Matrix) -> None:
    text = "AttributeError: module 'tensorflow' has no attribute 'estimator'"
    assert first_two(text, matrix)[0] == "log-tf-keras-missing"


# --- a multi-host run missing a host -----------------------------------------------------------------------------

def test_jax_distributed_barrier_timing_out(matrix: Matrix) -> None:
    text = ("  File \"/opt/app/train.py\", line 30, in main\n"
            "    jax.distributed.initialize(coordinator_address=addr, num_processes=4, process_id=rank)\n"
            "jaxlib.xla_extension.XlaRuntimeError: DEADLINE_EXCEEDED: Barrier timed out. Id: PjRT_Client_Connect. "
            "This usually happens because a task triggered the barrier too early or too slowly.")
    assert first_two(text, matrix)[0] == "log-tpu-not-all-hosts"


def test_the_coordination_service_losing_another_task(matrix: Matrix) -> None:
    text = ("F0117 08:01:02.123999  1234 client.h:77] Terminating process because the JAX distributed service "
            "detected fatal errors. This most likely indicates that another task died; see the other task logs.\n"
            "absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):\n"
            "/job:jax_worker/replica:0/task:1")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-tpu-not-all-hosts" and "died" in found[0].title


# --- a batch split over the devices, read from the reshape's numbers ----------------------------------------------

def test_jaxs_reshape_of_a_batch_into_devices_that_do_not_divide_it(matrix: Matrix) -> None:
    text = ("  File \"/home/u/train.py\", line 88, in shard\n    return x.reshape(n, b // n, *x.shape[1:])\n"
            "  File \"/usr/lib/python3.10/site-packages/jax/_src/numpy/array_methods.py\", line 145, in _reshape\n"
            "TypeError: reshape total size must be unchanged, got new_sizes (8, 2, 224, 224, 3) (of total size "
            "2408448) for shape (20, 224, 224, 3) (of total size 3010560).")
    assert first_two(text, matrix)[0] == "sig-batch-not-divisible-by-devices"


def test_numpys_reshape_of_a_batch_split_over_devices(matrix: Matrix) -> None:
    text = ("n_devices = 4\nValueError: cannot reshape array of shape (18, 64, 64, 3) (size 221184) into shape "
            "(4, 4, 64, 64, 3)")
    assert first_two(text, matrix)[0] == "sig-batch-not-divisible-by-devices"


def test_a_reshape_that_divides_or_is_not_about_devices_is_not_a_split(matrix: Matrix) -> None:
    divides = "num_devices = 4\nValueError: cannot reshape array of size 3010560 into shape (4,5,224,224,3)"
    weights = "ValueError: cannot reshape array of size 127700 into shape (425,1024,1,1)"
    for text in (divides, weights):
        assert "sig-batch-not-divisible-by-devices" not in first_two(text, matrix)


# --- Python 2 code under Python 3, OS packages a build or Tk needs, protobuf 6, TensorFlow giving up a found GPU ----

def test_python_2_code_in_python_3s_words(matrix: Matrix) -> None:
    cases = [
        "  File \"tools/convert.py\", line 40\n    print \"done\", n\n    ^\nSyntaxError: Missing parentheses in call "
        "to 'print'. Did you mean print(...)?",
        "Traceback (most recent call last):\n  File \"eval.py\", line 3, in <module>\n    import cPickle as pickle\n"
        "ModuleNotFoundError: No module named 'cPickle'",
        "  File \"/opt/app/util.py\", line 88, in walk\n    for k, v in cfg.iteritems():\n"
        "AttributeError: 'dict' object has no attribute 'iteritems'",
        "  File \"reader.py\", line 12, in parse\n    if isinstance(s, unicode):\n"
        "NameError: name 'unicode' is not defined",
        "  File \"net.py\", line 77\n    except IOError, e:\n    ^^^^^^^^^^^^^^^^\n"
        "SyntaxError: multiple exception types must be parenthesized",
    ]
    for text in cases:
        assert first_two(text, matrix)[0] == "log-python2-code", text


def test_python_3_code_under_python_2_is_not_python_2_code(matrix: Matrix) -> None:
    # Python 2 lacking `queue` is the other direction: the name check is case-sensitive
    text = "Traceback (most recent call last):\n  File \"w.py\", line 1, in <module>\n    import queue\n" \
           "ImportError: No module named queue"
    assert "log-python2-code" not in first_two(text, matrix)


def test_tk_and_a_library_a_source_build_looks_for_are_os_packages(matrix: Matrix) -> None:
    tk = "  File \"/usr/lib/python3.11/tkinter/__init__.py\", line 38, in <module>\n    import _tkinter\n" \
         "ModuleNotFoundError: No module named '_tkinter'"
    hdf5 = ("  × Building wheel for h5py (pyproject.toml) did not run successfully.\n"
            "  │ exit code: 1\n  You need to install HDF5 or specify its location with HDF5_DIR")
    assert first_two(tk, matrix)[0] == "log-os-package-missing"
    found = diagnose_log(hdf5, matrix)
    assert found[0].id == "log-os-package-missing" and found[0].fix is not None
    assert "development package" in found[0].fix.summary


def test_protobuf_6_without_messagefactorys_getprototype(matrix: Matrix) -> None:
    text = ("  File \"/srv/venv/lib/python3.11/site-packages/oldtool/proto_util.py\", line 31, in make\n"
            "    cls = factory.GetPrototype(desc)\n"
            "AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'")
    found = [f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert found[0].id in ("log-era-mismatch", "log-missing-name") and "protobuf" in found[0].packages


def test_tensorflow_giving_up_a_gpu_it_found(matrix: Matrix) -> None:
    text = ("2024-02-01 09:00:00.1: W tensorflow/core/common_runtime/gpu/gpu_device.cc:2256] Cannot dlopen some GPU "
            "libraries. Please make sure the missing libraries mentioned above are installed properly if you would "
            "like to use GPU.\nSkipping registering GPU devices...\n[]")
    assert first_two(text, matrix)[0] == "sig-cuda-lib-missing-so"


# --- models made by a newer release than their runtime, TensorRT's soname, the C++ runtime in prose ---------------

def test_runtimes_older_than_the_model_they_run(matrix: Matrix) -> None:
    tflite = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nERROR: Didn't find op for builtin opcode "
              "'FULLY_CONNECTED' version '12'. An older version of this builtin might be supported. Are you using an "
              "old TFLite binary with a newer model?\nERROR: Registration failed.")
    edgetpu = ("ValueError: Failed to load delegate from libedgetpu.so.1\nRuntimeError: Failed to prepare for TPU. "
               "Failed precondition: Package requires runtime version (16), which is newer than this runtime "
               "version (14).")
    tfjs = ("Error: Unknown op 'Einsum'. File an issue at https://github.com/tensorflow/tfjs/issues so we can add it, "
            "or register a custom execution with tf.registerOp()\n"
            "    at @tensorflow/tfjs-converter/dist/tf-converter.js")
    for text in (tflite, edgetpu, tfjs):
        assert first_two(text, matrix)[0] == "log-op-not-registered-older-runtime", text


def test_a_plugin_built_for_another_tensorrt(matrix: Matrix) -> None:
    text = ("[E] Could not load plugin library: /opt/sdk/lib/libyoloplugin.so, due to: libnvinfer.so.8: cannot open "
            "shared object file: No such file or directory")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-tensorrt-version-mismatch" and "TensorRT 8" in found[0].title


def test_tensorflows_probe_of_tensorrt_alone_is_not_a_mismatch(matrix: Matrix) -> None:
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared object file: No such file or directory\n"
            "ValueError: logits and labels must have the same shape ((None, 3) vs (None, 1))")
    assert "log-tensorrt-version-mismatch" not in first_two(text, matrix)


def test_the_cxx_runtime_said_in_prose(matrix: Matrix) -> None:
    text = ("The wheel fails on our cluster: it requires GLIBCXX_3.4.26 and the login nodes only have up to "
            "GLIBCXX_3.4.22.\n  File \"/home/k/env/lib/python3.9/site-packages/jaxlib/__init__.py\", line 3")
    assert first_two(text, matrix)[0] == "log-cxx-runtime-too-old"


def test_a_jax_config_option_the_installed_jax_lacks(matrix: Matrix) -> None:
    text = ("jax==0.4.31\n  File \"/usr/lib/python3/site-packages/oldlib/utils.py\", line 9, in <module>\n"
            "    if jax.config.jax_enable_custom_prng:\n"
            "AttributeError: 'Config' object has no attribute 'jax_enable_custom_prng'")
    found = [f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert found[0].id in ("log-era-mismatch", "log-missing-name") and "jax" in found[0].packages


def test_an_architecture_both_older_and_newer_toolkits_lack_names_both(matrix: Matrix) -> None:
    # Volta's sm_70: unknown to CUDA 8 (before it) and to CUDA 13 (which dropped it); the log cannot tell which
    text = "nvcc fatal   : Value 'sm_70' is not defined for option 'gpu-architecture'"
    assert set(first_two(text, matrix)) == {"log-gpu-arch-dropped", "log-gpu-arch-unsupported"}


def test_tensorflow_1s_bfloat16_abort_is_an_older_numpy(matrix: Matrix) -> None:
    text = ("2019-01-02 03:04:05.678901: F tensorflow/python/lib/core/bfloat16.cc:675] Check failed: "
            "PyBfloat16_Type.tp_base != nullptr\nAborted (core dumped)")
    assert first_two(text, matrix)[0] == "log-numpy-older-than-built"


def test_a_reporters_install_advice_is_not_a_missing_package(matrix: Matrix) -> None:
    text = ("I installed jax using `pip install --upgrade \"jax[cuda12]\"` as the README says.\n"
            "ValueError: operands could not be broadcast together with shapes (3,4) (5,)")
    assert "log-missing-package" not in first_two(text, matrix)


# --- the thirty-second and thirty-third batches' mechanisms, in other wordings ------------------------------------

def test_an_empty_gpu_list_printed_after_a_label_on_a_later_tensorflow(matrix: Matrix) -> None:
    text = ("OS: Windows 11 Pro\ntensorflow==2.15.0\n>>> print('GPUs found:', tf.config.list_physical_devices('GPU'))\n"
            "GPUs found: []")
    assert first_two(text, matrix)[0] == "log-tf-windows-native-gpu-dropped"


def test_tensorflows_device_list_holding_the_cpu_alone(matrix: Matrix) -> None:
    text = ("TensorFlow version: 2.17.0 on Windows 10\n"
            "[PhysicalDevice(name='/physical_device:CPU:0', device_type='CPU')]")
    assert first_two(text, matrix)[0] == "log-tf-windows-native-gpu-dropped"


def test_a_missing_name_cut_from_the_paste_is_read_from_the_failing_line(matrix: Matrix) -> None:
    text = ("----> 3 sess = tf.Session(config=cfg)\n"
            "AttributeError: module 'tensorflow' has no attribute '")
    text = "Traceback (most recent call last):\n  File \"<ipython-input-3>\", line 3, in <module>\n" + text
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch" and "tf.Session" in found[0].title


def test_standalone_keras_without_tensorflow_1s_session(matrix: Matrix) -> None:
    text = "AttributeError: module 'keras.backend' has no attribute 'set_session'"
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch" and "TensorFlow 1.x" in found[0].title


def test_tf_distributes_batch_check_against_its_replicas(matrix: Matrix) -> None:
    text = "ValueError: The global batch size 30 must be divisible by the number of replicas in sync (4)."
    assert first_two(text, matrix)[0] == "sig-batch-not-divisible-by-devices"


def test_pip_failing_to_write_under_a_windows_drive_path_cut_short(matrix: Matrix) -> None:
    text = ("(env) C:\\work> pip install tf-nightly\nERROR: Could not install packages due to an OSError: [Errno 2] "
            "No such file or directory: 'C:\\\\Users\\\\ana\\\\AppData\\\\Local\\\\Temp\\\\pip-install-")
    assert first_two(text, matrix)[0] == "log-windows-long-path-disabled"


def test_an_intel_python_on_apple_silicon(matrix: Matrix) -> None:
    text = ("% uname -m\narm64\n% file $(which python3)\n"
            "/Users/jo/miniconda3/bin/python3: Mach-O 64-bit executable x86_64\n"
            "% python3 -c 'import tensorflow'\nzsh: illegal hardware instruction  python3 -c 'import tensorflow'")
    assert "log-wrong-architecture" in first_two(text, matrix)


def test_a_plugin_that_cannot_load_an_os_library(matrix: Matrix) -> None:
    text = ("jaxlib.xla_extension.XlaRuntimeError: INTERNAL: Failed to open /opt/venv/lib/python3.11/site-packages/"
            "jax_plugins/xla_rocm/xla_rocm_plugin.so: libnuma.so.1: cannot open shared object file: No such file or "
            "directory\nJax plugin configuration error: Exception when calling jax_plugins.xla_rocm.initialize()")
    assert first_two(text, matrix)[0] == "log-os-package-missing"


def test_llvm_emitting_a_ptx_too_old_for_the_gpu(matrix: Matrix) -> None:
    text = "LLVM ERROR: PTX version 7.8 does not support target 'sm_90a'. Minimum required PTX version is 8.0"
    assert first_two(text, matrix)[0] == "log-gpu-arch-unsupported"


def test_a_keras_3_model_asked_for_keras_2s_attributes(matrix: Matrix) -> None:
    text = ("  File \"/srv/env/lib/python3.11/site-packages/converter/keras_io.py\", line 88, in export\n"
            "    names = model.input_names\nAttributeError: 'Functional' object has no attribute 'input_names'")
    assert first_two(text, matrix)[0] == "log-tf-keras-missing"


# --- a version outside a declared range, a library of another release, a model from another Keras -------------

def test_a_range_warning_names_the_dependency_outside_it(matrix: Matrix) -> None:
    tfa = ("UserWarning: Tensorflow Addons supports using Python ops for all Tensorflow versions above or equal to "
           "2.9.0 and strictly below 2.12.0 (nightly versions are not supported).\n The versions of TensorFlow you "
           "are currently using is 2.15.0 and is not supported.")
    found = [f for f in diagnose_log(tfa, matrix) if f.severity is not Severity.INFO]
    assert found[0].id == "log-era-mismatch" and "Tensorflow 2.15.0" in found[0].title
    assert found[0].severity is Severity.WARNING  # a warning at import, not a failure
    assert any('"Tensorflow>=2.9.0,<2.12.0"' in c for c in found[0].fix.commands)
    scipy = ("/env/lib/python3.11/site-packages/scipy/__init__.py:155: UserWarning: A NumPy version >=1.18.5 and "
             "<1.26.0 is required for this version of SciPy (detected version 2.0.1)")
    found = [f for f in diagnose_log(scipy, matrix) if f.severity is not Severity.INFO]
    assert found[0].id == "log-era-mismatch" and "NumPy 2.0.1" in found[0].title and "SciPy" in found[0].title
    # the first sentence alone, the version in use cut from the paste
    cut = tfa.split("\n")[0]
    assert first_two(cut, matrix)[0] == "log-era-mismatch"
    # pip's own conflict line stays the resolver's reading, told once
    pip = ("tensorflow-text 2.15.0 requires tensorflow<2.16,>=2.15.0, but you have tensorflow 2.16.1 which is "
           "incompatible.")
    found = [f for f in diagnose_log(pip, matrix) if f.id == "log-installed-conflict"]
    assert len(found) == 1 and "needs tensorflow<2.16" in found[0].title


def test_an_optional_dependency_older_than_pandas_wants(matrix: Matrix) -> None:
    text = ("ImportError: Pandas requires version '2.8.4' or newer of 'numexpr' (version '2.7.3' currently "
            "installed).")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch" and "numexpr 2.8.4" in found[0].title


def test_a_soname_missing_while_the_log_lists_another_release_of_it(matrix: Matrix) -> None:
    text = ("$ ldconfig -p | grep libssl\n\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\n"
            "$ ./serve\n./serve: error while loading shared libraries: libssl.so.1.1: cannot open shared object "
            "file: No such file or directory")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-lib-soname-other-release"
    assert "libssl.so.1.1" in found[0].title and "libssl.so.3" in found[0].title
    # the same release listed (a newer minor of .so.1.1 is still .so.1.1's ABI): a search path, not a release
    same = text.replace("libssl.so.3", "libssl.so.1.1.1w")
    assert all("libssl.so.1.1.1w installed instead" not in f.title for f in diagnose_log(same, matrix))
    # a listing in `ls -l`'s symlink form
    ls = ("ImportError: libhdf5.so.103: cannot open shared object file: No such file or directory\n"
          "lrwxrwxrwx 1 root root 16 Mar  2 10:01 /usr/lib/libhdf5.so -> libhdf5.so.310.4.0")
    assert first_two(ls, matrix)[0] == "log-lib-soname-other-release"


def test_a_cudnn_of_a_newer_major_is_not_called_older(matrix: Matrix) -> None:
    text = ("E external/xla/xla/stream_executor/cuda/cuda_dnn.cc:535] Loaded runtime CuDNN library: 9.3.0 but "
            "source was compiled with: 8.9.6.  CuDNN library needs to have matching major version and equal or "
            "higher minor version.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-lib-soname-other-release"
    assert "newer major" in found[0].title and "9.3.0" in found[0].title and "cuDNN 8.x" in found[0].fix.summary
    # an older runtime stays the catalogue's finding
    older = text.replace("9.3.0", "8.6.0")
    assert diagnose_log(older, matrix)[0].id == "sig-cudnn-runtime-older-than-compiled"


def test_an_mps_assertion_and_an_xla_op_on_the_metal_device(matrix: Matrix) -> None:
    mps = ("Metal device set to: Apple M2\n/AppleInternal/Library/BuildRoots/0000/Library/Caches/com.apple.xbs/"
           "Sources/MetalPerformanceShaders/MPSNDArray/Kernels/MPSNDArrayConvolution.mm:1003: failed assertion "
           "`Unsupported data type'\nzsh: abort      python train.py")
    assert first_two(mps, matrix)[0] == "log-metal-op-unsupported"
    xla = ("I tensorflow/core/grappler/optimizers/custom_graph_optimizer_registry.cc:114] Plugin optimizer for "
           "device_type GPU is enabled.\nW tensorflow/core/framework/op_kernel.cc:1818] OP_REQUIRES failed at "
           "xla_ops.cc:503 : NOT_FOUND: could not find registered platform with id: 0x1078c4f30\n"
           "NotFoundError: Graph execution error:")
    found = diagnose_log(xla, matrix)
    assert found[0].id == "log-metal-op-unsupported" and "jit_compile=False" in found[0].fix.summary


def test_a_saved_config_key_only_the_other_keras_writes(matrix: Matrix) -> None:
    keras2 = ("  File \"/srv/app/predict.py\", line 9, in <module>\n    model = tf.keras.models.load_model('tm.h5')\n"
              "ValueError: Unrecognized keyword arguments: ['batch_shape']")
    found = diagnose_log(keras2, matrix)
    assert found[0].id == "log-saved-by-other-keras" and "batch_shape" in found[0].title
    keras3 = ("TypeError: Could not deserialize class 'Functional' because its parent module "
              "keras.src.models.functional cannot be imported. Full object config: {'module': "
              "'keras.src.models.functional', 'class_name': 'Functional'}")
    assert first_two(keras3, matrix)[0] == "log-saved-by-other-keras"
    # a keyword the user's own call passes, nothing being loaded: not a saved model's question
    own = ("    x = layers.Dense(8, kernel='relu')(x)\n"
           "ValueError: Unrecognized keyword arguments passed to Dense: {'kernel': 'relu'}")
    assert "log-saved-by-other-keras" not in first_two(own, matrix)


def test_tensorflows_driver_suspicion_with_the_driver_older_than_the_cuda(matrix: Matrix) -> None:
    text = ("E tensorflow/stream_executor/cuda/cuda_dnn.cc:396] could not create cudnn handle: "
            "CUDNN_STATUS_NOT_INITIALIZED\nE tensorflow/stream_executor/cuda/cuda_dnn.cc:404] possibly insufficient "
            "driver version: 390.30.0\n\n- TensorFlow version: 1.12\n- CUDA version: 9.2\n- NVIDIA driver 390.30\n"
            "Driver Version: 390.30")
    assert first_two(text, matrix)[0] == "sig-driver-too-old-for-cuda"
    # the same suspicion with a driver new enough for that CUDA: not named
    fine = text.replace("390.30", "410.79")
    assert "sig-driver-too-old-for-cuda" not in first_two(fine, matrix)


def test_a_python_above_a_packages_declared_ceiling_is_too_new(matrix: Matrix) -> None:
    pip = "ERROR: Package 'dm-reverb' requires a different Python: 3.12.4 not in '<3.12,>=3.9'"
    found = diagnose_log(pip, matrix)
    assert found[0].id == "log-python-too-new" and "3.12.4" in found[0].title and "dm-reverb" in found[0].title
    assert all(f.id != "log-python-too-old" for f in found)
    # below the floor stays a Python too old
    assert first_two(pip.replace("3.12.4", "3.8.18"), matrix)[0] == "log-python-too-old"
    apt = (" python3-edgetpu : Depends: python3 (< 3.9) but 3.11.2-1 is to be installed\n"
           "E: Unable to correct problems, you have held broken packages.")
    assert first_two(apt, matrix)[0] == "log-python-too-new"


def test_a_pinned_release_with_wheels_for_other_pythons_only(matrix: Matrix) -> None:
    # tensorflow 2.12.0's wheels on PyPI are cp38-cp311 (doctor/api/wheel_pythons.json, from PyPI's JSON)
    shown = ("Python 3.12.3\nERROR: Could not find a version that satisfies the requirement tensorflow==2.12.0 "
             "(from versions: 2.16.1, 2.16.2, 2.17.0)\nERROR: No matching distribution found for tensorflow==2.12.0")
    found = diagnose_log(shown, matrix)
    assert found[0].id == "log-python-too-new" and "3.8-3.11" in found[0].title and "3.12" in found[0].title
    assert found[1].id == "log-no-matching-distribution"
    # no Python in the log, but the index offered only later releases: the older ones were filtered for this Python
    unseen = shown.split("\n", 1)[1]
    assert first_two(unseen, matrix)[0] == "log-python-too-new"
    # a Python inside the range: the release's wheels are not the question (a platform, a pip), nothing claimed
    inside = shown.replace("Python 3.12.3", "Python 3.10.4")
    assert all(f.id not in ("log-python-too-new", "log-python-too-old") for f in diagnose_log(inside, matrix))
    # below the range
    old = "Python 3.7.9\nERROR: No matching distribution found for tensorflow==2.16.1"
    assert first_two(old, matrix)[0] == "log-python-too-old"


def test_an_nvswitch_machine_whose_fabric_manager_is_not_running(matrix: Matrix) -> None:
    refused = ("nv-fabricmanager[2211]: fabric manager NVIDIA GPU driver interface version 550.54.15 don't match with "
               "driver version 550.90.07. Please update with matching NVIDIA driver package.")
    found = diagnose_log(refused, matrix)
    assert found[0].id == "log-fabric-manager-driver-mismatch"
    assert "550.54.15" in found[0].title and "550.90.07" in found[0].title
    jax = ("E external/xla/xla/stream_executor/cuda/cuda_driver.cc:152] failed call to cuInit: "
           "CUDA_ERROR_SYSTEM_NOT_READY: system not yet initialized\n8x H100 80GB HBM3 (HGX)")
    assert first_two(jax, matrix)[0] == "log-fabric-manager-driver-mismatch"


def test_an_algorithm_refusing_the_same_space_from_the_other_gym(matrix: Matrix) -> None:
    text = ("AssertionError: The algorithm only supports (<class 'gymnasium.spaces.discrete.Discrete'>, <class "
            "'gymnasium.spaces.multi_discrete.MultiDiscrete'>) as action spaces but Discrete(4) was provided")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-era-mismatch" and "gymnasium's spaces" in found[0].title
    # a space of another kind (a Box where only discrete ones are taken) is the program's choice, not the library's
    box = text.replace("but Discrete(4)", "but Box(-1.0, 1.0, (3,), float32)")
    assert "log-era-mismatch" not in first_two(box, matrix)


def test_gpu_devices_passed_to_docker_by_hand(matrix: Matrix) -> None:
    text = ("$ docker run --device /dev/nvidia0:/dev/nvidia0 --device /dev/nvidiactl:/dev/nvidiactl -it my/cuda-app\n"
            "RuntimeError: CUDA error: no CUDA-capable device is detected")
    assert first_two(text, matrix)[0] == "log-docker-gpu-runtime-missing"


def test_tensorflows_deepest_headers_missing_after_a_windows_install(matrix: Matrix) -> None:
    text = ("pip install tensorflow on Windows 11 finishes, then the build of my op fails:\n"
            "fatal error C1083: Cannot open include file: 'unsupported/Eigen/CXX11/src/Tensor/"
            "TensorContractionThreadPool.h': No such file or directory")
    assert first_two(text, matrix)[0] == "log-windows-long-path-disabled"


def test_windows_without_the_visual_cpp_runtime(matrix: Matrix) -> None:
    tf = ("ImportError: Could not find the DLL(s) 'msvcp140.dll or msvcp140_1.dll'. TensorFlow requires that these "
          "DLLs be installed in a directory that is named in your %PATH% environment variable.")
    found = diagnose_log(tf, matrix)
    assert found[0].id == "log-msvc-runtime-missing" and "msvcp140_1.dll" in found[0].title
    loader = "python.exe - System Error: The code execution cannot proceed because VCRUNTIME140_1.dll was not found."
    assert first_two(loader, matrix)[0] == "log-msvc-runtime-missing"


def test_a_compiled_submodule_of_a_source_checkout_never_built(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/u/src/detectron2/demo/demo.py\", line 8, in <module>\n"
            "    from detectron2 import _C\nModuleNotFoundError: No module named 'detectron2._C'")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-extension-not-built" and "detectron2._C" in found[0].title
    # a public submodule missing is not a build question
    public = text.replace("_C", "projects")
    assert "log-extension-not-built" not in first_two(public, matrix)


def test_nvcc_refusing_a_newer_host_compiler(matrix: Matrix) -> None:
    text = ("/usr/local/cuda-11.3/bin/../targets/x86_64-linux/include/crt/host_config.h:139:2: error: #error -- "
            "unsupported GNU version! gcc versions later than 10 are not supported! The nvcc flag "
            "'-allow-unsupported-compiler' can be used to override this version check")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-host-compiler-unsupported" and "later than 10" in found[0].title


def test_a_circular_import_through_an_installed_package(matrix: Matrix) -> None:
    text = ("AttributeError: partially initialized module 'tensorflow_datasets.core' has no attribute "
            "'DatasetBuilder' (most likely due to a circular import)")
    found = [f for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert found[0].id == "log-shadowed-module" and "tensorflow_datasets" in found[0].title
    # a half-imported module is there: never told as a name its release lacks
    assert all(f.id not in ("log-missing-name", "log-era-mismatch") for f in found)
    # the user's own package importing itself in a circle: no environment cause claimed
    own = ("ImportError: cannot import name 'Trainer' from partially initialized module 'mylab.train' (most likely "
           "due to a circular import) (/home/u/mylab/train/__init__.py)")
    assert all(f.id in ("log-no-known-cause",) for f in diagnose_log(own, matrix) if f.severity is not Severity.INFO)


def test_libtpu_finding_no_tpu_chip_on_the_host(matrix: Matrix) -> None:
    text = ("  File \"/usr/local/lib/python3.10/dist-packages/jax/_src/xla_bridge.py\", line 210, in make_tpu_client\n"
            "jaxlib.xla_extension.XlaRuntimeError: NOT_FOUND: No 0062e1c4 device found.")
    assert first_two(text, matrix)[0] == "log-expected-accelerator-missing"


# --- ROCm, the driver's own parts, build tools, TPU and Edge TPU runtimes ------------------------------------------

def test_rocm_libraries_of_another_release(matrix: Matrix) -> None:
    symbol = ("ImportError: /opt/rocm-5.7.0/lib/libMIOpen.so.1: undefined symbol: hipGraphExecMemcpyNodeSetParams1D, "
              "version hip_4.2")
    found = diagnose_log(symbol, matrix)
    assert found[0].id == "log-lib-soname-other-release" and "ROCm" in found[0].title
    runtime = ("ImportError: libamdhip64.so.5: cannot open shared object file: No such file or directory\n"
               "(tensorflow-rocm 2.11 on /opt/rocm-6.0.2)")
    assert first_two(runtime, matrix)[0] == "log-lib-soname-other-release"
    # another ROCm library off the loader's path is a path question, not a release
    path = "ImportError: libMIOpen.so.1: cannot open shared object file: No such file or directory"
    found = diagnose_log(path, matrix)
    assert found[0].id == "log-rocm-lib-not-found" and "libMIOpen.so.1" in found[0].title


def test_a_cuda_soname_in_a_cut_import_error_and_a_bold_template(matrix: Matrix) -> None:
    cut = "I have CUDA 10.2 installed and get ImportError: libcublas.so.9.0 when importing tensorflow"
    found = diagnose_log(cut, matrix)
    assert found[0].id == "log-lib-soname-other-release" and "CUDA 9.0" in found[0].title
    bold = ("- **CUDA/cuDNN version**: 12.2 / 8.9\n"
            "W dso_loader.cc:59] Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: "
            "cannot open shared object file: No such file or directory")
    assert "12.2" in diagnose_log(bold, matrix)[0].title


def test_a_message_in_markdown_bold_reads_as_printed(matrix: Matrix) -> None:
    text = "**jaxlib version 0.4.31** is newer than and incompatible with **jax version 0.4.28**."
    assert first_two(text, matrix)[0] == "sig-jaxlib-too-new"


def test_a_name_jaxlib_lacks_names_who_calls_into_jaxlib(matrix: Matrix) -> None:
    # jaxlib is jax's backend; chex, flax and optax reach into it too: with no frames, the finding names them and
    # the fix installs jax and jaxlib as a pair
    text = "jax==0.2.9\nAttributeError: module 'jaxlib.xla_client' has no attribute 'ops'"
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-missing-name" and "chex, flax or optax" in found[0].title
    assert "pip install -U jax jaxlib" in found[0].fix.commands
    # with a frame, the caller is the frame's package, as for any library
    framed = ("  File \"/usr/lib/python3.9/site-packages/chex/_src/pytypes.py\", line 40, in <module>\n"
              "    CpuDevice = jax.lib.xla_extension.CpuDevice\n"
              "AttributeError: module 'jaxlib.xla_extension' has no attribute 'CpuDevice'")
    assert diagnose_log(framed, matrix)[0].title.startswith("chex and the installed jaxlib")


def test_the_drivers_kernel_modules_at_different_versions(matrix: Matrix) -> None:
    modules = "[  5.812] nvidia-modeset: Version mismatch: nvidia.ko(535.129.03) nvidia-modeset(535.104.05)"
    assert first_two(modules, matrix)[0] == "sig-driver-library-mismatch"
    api = ("NVRM: API mismatch: the NVIDIA kernel module has version 470.82.01,\nbut this NVIDIA driver component has "
           "version 470.103.01.  Please make sure that the kernel module and all NVIDIA driver components have the "
           "same version.")
    assert first_two(api, matrix)[0] == "sig-driver-library-mismatch"


def test_a_source_build_without_the_compiler(matrix: Matrix) -> None:
    pip = ("  building 'jax_md._ext' extension\n  error: command 'x86_64-linux-gnu-gcc' failed: No such file or "
           "directory")
    found = diagnose_log(pip, matrix)
    assert found[0].id == "log-os-package-missing" and "x86_64-linux-gnu-gcc" in found[0].title
    assert "build-essential" in found[0].fix.summary
    node = "gyp info spawn make\nmake: g++: Command not found\nmake: *** [binding.o] Error 127"
    assert first_two(node, matrix)[0] == "log-os-package-missing"


def test_colabs_legacy_tpu_runtime_under_a_newer_jax(matrix: Matrix) -> None:
    text = ("jax 0.4.1 on a Colab TPU runtime\nXlaRuntimeError: UNIMPLEMENTED: Only 1 computation per replica "
            "supported, 4 requested.")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-libtpu-jax-mismatch" and "0.3.25" in found[0].fix.summary
    buffer = "TypeError: float() argument must be a string or a number, not 'jaxlib.tpu_client_extension.PyTpuBuffer'"
    assert first_two(buffer + "\nGoogle Colab", matrix)[0] == "log-libtpu-jax-mismatch"


def test_the_edge_tpu_delegate_of_another_tflite_runtime(matrix: Matrix) -> None:
    text = ("  File \"/usr/lib/python3/dist-packages/tflite_runtime/interpreter.py\", line 259, in allocate_tensors\n"
            "RuntimeError: Internal: Failed to prepare for TPU. Failed precondition: Package requires runtime "
            "version (14), which is newer than this runtime version (13).Node number 0 (EdgeTpuDelegateForCustomOp) "
            "failed to prepare.")
    assert "log-edgetpu-tflite-runtime-mismatch" in first_two(text, matrix) or \
        "log-op-not-registered-older-runtime" in first_two(text, matrix)
    dtype = ("RuntimeError: Internal: Unsupported data type in custom op handler: 6805744Node number 2 "
             "(EdgeTpuDelegateForCustomOp) failed to prepare.")
    assert first_two(dtype, matrix)[0] == "log-edgetpu-tflite-runtime-mismatch"


def test_a_wheel_built_for_macos_1015_on_an_older_macos(matrix: Matrix) -> None:
    text = ("ImportError: dlopen(/Users/k/.venv/lib/python3.7/site-packages/tensorflow/python/"
            "_pywrap_tensorflow_internal.so, 6): Symbol not found: ____chkstk_darwin\n  Referenced from: ...\n"
            "  Expected in: /usr/lib/libSystem.B.dylib")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-macos-too-old-for-wheel" and "_pywrap_tensorflow_internal.so" in found[0].title


def test_tensorflow_1_code_is_not_a_keras_3_question(matrix: Matrix) -> None:
    text = ("- TensorFlow version: 1.12.0\nModuleNotFoundError: No module named 'tensorflow.python.keras.engine'")
    assert "log-tf-keras-missing" not in first_two(text, matrix)
    assert "log-tf-keras-missing" in first_two(text.replace("1.12.0", "2.16.1"), matrix)
