#!/usr/bin/env bash
# Build BVLC Caffe with CMake: GPU (or CPU only), without cuDNN, with pycaffe for Python 3.
# Dockerfile.caffe calls it; it also runs on a plain Debian 12 or Ubuntu 22.04 machine:
#
#   sudo docker/build_caffe.sh --install-deps          # the packages in caffe-apt-packages.txt
#   python3 -m venv ~/caffe-venv
#   ~/caffe-venv/bin/pip install -r docker/pycaffe-requirements.txt
#   CAFFE_SRC=~/src/caffe CPU_ONLY=1 PREFIX=~/caffe PYTHON=~/caffe-venv/bin/python docker/build_caffe.sh
#   . ~/caffe/caffe-env.sh && caffe --version
#
# Modes (one at a time):
#   (none)            fetch Caffe (unless CAFFE_SRC is set), patch, configure, build, install,
#                     regenerate pycaffe's caffe_pb2.py, write PREFIX/caffe-env.sh, smoke test
#   --install-deps    apt-get install the packages of caffe-apt-packages.txt (as root or with sudo)
#   --patch-only      apply the source patches to CAFFE_SRC, then stop
#   --proto-only      regenerate PREFIX/python/caffe/proto/caffe_pb2.py from CAFFE_SRC, then stop
#   --dry-run         with any mode: print the commands instead of running them
#   -h, --help        this text
#
# Environment [default]:
#   CAFFE_SRC       a Caffe checkout to build; patched in place [fetch CAFFE_COMMIT into WORK_DIR/src]
#   CAFFE_COMMIT    [9b891540183ddc834a02b2bd81b31afae71b2153: BVLC master, 2020-02-13, the last one]
#   CAFFE_REPO      [https://github.com/BVLC/caffe.git]
#   WORK_DIR        scratch: checkout, build tree, pinned protoc [${TMPDIR:-/tmp}/mcnn-caffe]
#   BUILD_DIR       the CMake build tree [WORK_DIR/build]
#   PREFIX          install prefix, gets bin/ lib/ python/ caffe-env.sh [/opt/caffe]
#   CPU_ONLY        1 = build without CUDA [0]
#   USE_NCCL        auto|1|0, GPU builds: NCCL for `caffe train -gpu all` [auto = if nccl.h is found]
#   NCCL_ROOT       another place to look for include/nccl.h [unset]
#   CUDA_ARCH_BIN   GPU architectures to compile for, Pascal to Hopper [60 61 70 75 80 86 89 90]
#   CUDA_ARCH_PTX   PTX kept for GPUs newer than the list, compiled by the driver [90]
#   PYTHON          the interpreter pycaffe is built for; numpy must be installed in it [python3]
#   BLAS            Open|Atlas|MKL [Open]
#   JOBS            parallel compile jobs [nproc]
#   PYCAFFE_PROTOC  protoc for pycaffe's caffe_pb2.py [system protoc if 3.20/3.21, else the pinned one]
#   GRPC_TOOLS_DIR  folder with grpc_tools of the pinned grpcio-tools [WORK_DIR/grpcio-tools-1.53.2]
#
# Installing the apt packages and compiling Caffe have not been run in the project's CI (no Docker,
# no GPU, no network there); tests/docker exercises --dry-run, --patch-only and --proto-only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CAFFE_COMMIT=${CAFFE_COMMIT:-9b891540183ddc834a02b2bd81b31afae71b2153}
CAFFE_REPO=${CAFFE_REPO:-https://github.com/BVLC/caffe.git}
WORK_DIR=${WORK_DIR:-${TMPDIR:-/tmp}/mcnn-caffe}
CAFFE_SRC=${CAFFE_SRC:-}
BUILD_DIR=${BUILD_DIR:-$WORK_DIR/build}
PREFIX=${PREFIX:-/opt/caffe}
CPU_ONLY=${CPU_ONLY:-0}
USE_NCCL=${USE_NCCL:-auto}
NCCL_ROOT=${NCCL_ROOT:-}
CUDA_ARCH_BIN=${CUDA_ARCH_BIN:-60 61 70 75 80 86 89 90}
CUDA_ARCH_PTX=${CUDA_ARCH_PTX:-90}
PYTHON=${PYTHON:-python3}
BLAS=${BLAS:-Open}
JOBS=${JOBS:-}
PYCAFFE_PROTOC=${PYCAFFE_PROTOC:-}
APT_PACKAGES_FILE=${APT_PACKAGES_FILE:-$HERE/caffe-apt-packages.txt}
# The protoc that also generates the toolkit's own caffe_pb2.py (mcnn/caffe/protogen.py).
GRPC_TOOLS_PIN=grpcio-tools==1.53.2
GRPC_TOOLS_DIR=${GRPC_TOOLS_DIR:-$WORK_DIR/grpcio-tools-1.53.2}

MODE=build
DRY_RUN=0

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

die() {
    printf 'build_caffe: error: %s\n' "$*" >&2
    exit 1
}

note() {
    printf 'build_caffe: %s\n' "$*" >&2
}

# Print a command (after "+ ", each word shell-quoted) on stdout, then run it unless --dry-run.
run() {
    local word quote="'\\''"
    printf '+'
    for word in "$@"; do
        if [[ $word =~ ^[A-Za-z0-9_./:=+,@%-]+$ ]]; then
            printf ' %s' "$word"
        else
            printf " '%s'" "${word//\'/$quote}"
        fi
    done
    printf '\n'
    if [[ $DRY_RUN == 0 ]]; then
        "$@"
    fi
}

is_true() {
    case ${1,,} in
        1 | on | yes | true) return 0 ;;
        0 | off | no | false | '') return 1 ;;
        *) die "expected 1 or 0, got '$1'" ;;
    esac
}

set_mode() {
    [[ $MODE == build ]] || die "options $MODE and $1 cannot be combined"
    MODE=$1
}

# ---------------------------------------------------------------------------------------------
# --install-deps

install_deps() {
    local line packages=() sudo=()
    [[ -f $APT_PACKAGES_FILE ]] || die "package list $APT_PACKAGES_FILE not found"
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [[ -n $line ]] && packages+=("$line")
    done <"$APT_PACKAGES_FILE"
    ((${#packages[@]})) || die "no packages in $APT_PACKAGES_FILE"
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || [[ $DRY_RUN == 1 ]] || die "--install-deps needs root or sudo"
        sudo=(sudo)
    fi
    run "${sudo[@]}" apt-get update
    run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${packages[@]}"
}

# ---------------------------------------------------------------------------------------------
# Source: fetch the pinned commit unless CAFFE_SRC names a checkout.

fetch_source() {
    if [[ -n $CAFFE_SRC ]]; then
        [[ -d $CAFFE_SRC ]] || die "CAFFE_SRC=$CAFFE_SRC is not a folder"
        return 0
    fi
    CAFFE_SRC=$WORK_DIR/src
    if [[ $DRY_RUN == 0 && -d $CAFFE_SRC/.git ]] &&
        [[ $(git -C "$CAFFE_SRC" rev-parse HEAD 2>/dev/null) == "$CAFFE_COMMIT" ]]; then
        note "reusing $CAFFE_SRC at $CAFFE_COMMIT"
        return 0
    fi
    run rm -rf "$CAFFE_SRC"
    run git init -q "$CAFFE_SRC"
    # Fetching one commit by its hash is the cheapest way to get exactly that tree; git checks the
    # hash, so no checksum of a tarball is needed.
    if ! run git -C "$CAFFE_SRC" fetch -q --depth 1 "$CAFFE_REPO" "$CAFFE_COMMIT"; then
        note "fetching the commit alone failed; fetching the whole history"
        run git -C "$CAFFE_SRC" fetch -q "$CAFFE_REPO" '+refs/heads/*:refs/remotes/origin/*'
    fi
    run git -C "$CAFFE_SRC" -c advice.detachedHead=false checkout -q "$CAFFE_COMMIT"
    if [[ $DRY_RUN == 0 ]]; then
        [[ $(git -C "$CAFFE_SRC" rev-parse HEAD) == "$CAFFE_COMMIT" ]] ||
            die "checkout of $CAFFE_COMMIT failed"
    fi
}

# ---------------------------------------------------------------------------------------------
# Patches: plain text edits for current toolchains. Each is idempotent and only touches files
# that contain its pattern, so a second run changes nothing.

# apply_patch LABEL ERE SED_SCRIPT 'GLOB...' DIR... (folders under CAFFE_SRC; . is all of it)
apply_patch() {
    local label=$1 pattern=$2 script=$3 glob dirs=() includes=() files=() dir file
    read -ra glob <<<"$4"
    shift 4
    for dir in "$@"; do
        if [[ $dir == . ]]; then
            dirs+=("$CAFFE_SRC")
        elif [[ -d $CAFFE_SRC/$dir ]]; then
            dirs+=("$CAFFE_SRC/$dir")
        fi
    done
    for file in "${glob[@]}"; do
        includes+=("--include=$file")
    done
    if ((${#dirs[@]})); then
        mapfile -t files < <(grep -rlE "${includes[@]}" -e "$pattern" -- "${dirs[@]}" | LC_ALL=C sort)
    fi
    if ((${#files[@]} == 0)); then
        note "patch $label: nothing to change"
        return 0
    fi
    for file in "${files[@]}"; do
        note "patch $label: ${file#"$CAFFE_SRC"/}"
        run sed -E -i -e "$script" "$file"
    done
}

CXX_GLOBS='*.cpp *.hpp *.cu *.cuh *.h *.cc'
CXX_DIRS=(src include tools examples python matlab)

patch_sources() {
    [[ -d $CAFFE_SRC/src/caffe ]] || note "warning: $CAFFE_SRC/src/caffe not found; is CAFFE_SRC a Caffe checkout?"

    # protobuf >= 3.20 removed the two-argument CodedInputStream::SetTotalBytesLimit(total, warn);
    # the one-argument form exists since protobuf 3.11 (Ubuntu 22.04 has 3.12, Debian 12 3.21).
    # Caffe's ReadProtoFromBinaryFile (src/caffe/util/io.cpp) passes kProtoReadBytesLimit and a
    # warning threshold that protobuf had long ignored, so dropping it changes no behaviour.
    apply_patch 'protobuf>=3.20 SetTotalBytesLimit' \
        'SetTotalBytesLimit\([^,()]+,[^()]*\)' \
        's/SetTotalBytesLimit\(([^,()]+),[^()]*\)/SetTotalBytesLimit(\1)/g' \
        "$CXX_GLOBS" "${CXX_DIRS[@]}"

    # OpenCV 4 removed the C constants CV_LOAD_IMAGE_* (imgcodecs_c.h). The C++ enumerators
    # cv::IMREAD_* have the same values (-1, 0, 1, 2, 4) and exist since OpenCV 2.4, so the edit
    # builds with every OpenCV that Caffe supports (src/caffe/util/io.cpp,
    # src/caffe/layers/window_data_layer.cpp, src/caffe/test/test_io.cpp).
    apply_patch 'OpenCV 4 CV_LOAD_IMAGE_*' \
        '\bCV_LOAD_IMAGE_(COLOR|GRAYSCALE|UNCHANGED|ANYDEPTH|ANYCOLOR)\b' \
        's/\bCV_LOAD_IMAGE_(COLOR|GRAYSCALE|UNCHANGED|ANYDEPTH|ANYCOLOR)\b/cv::IMREAD_\1/g' \
        "$CXX_GLOBS" "${CXX_DIRS[@]}"

    # scikit-image 0.16 renamed imread's as_grey to as_gray and later removed as_grey, which
    # caffe.io.load_image (python/caffe/io.py) still passes.
    apply_patch 'scikit-image as_grey' \
        '\bas_grey=' \
        's/\bas_grey=/as_gray=/g' \
        '*.py' python

    # CUDA 12's Thrust and CUB (CCCL 2) need C++14 or later. gcc 11 and 12 default to C++17, so
    # nothing is needed unless a CMake file forces -std=c++11 (some Caffe versions add it to
    # CMAKE_CXX_FLAGS, which nvcc passes on to the host compiler); then raise it to C++14.
    apply_patch 'CUDA 12 C++14' \
        '-std=c\+\+11\b' \
        's/-std=c\+\+11\b/-std=c++14/g' \
        'CMakeLists.txt *.cmake' .

    if [[ $DRY_RUN == 0 ]] &&
        grep -rnE -e 'SetTotalBytesLimit\([^,()]+,[^()]*\)|\bCV_LOAD_IMAGE_[A-Z]+' \
            --include='*.cpp' --include='*.hpp' --include='*.cu' --include='*.h' --include='*.cc' \
            -- "$CAFFE_SRC" >&2; then
        die "the lines above still need a change by hand"
    fi
}

# ---------------------------------------------------------------------------------------------
# Configure, build, install.

resolve_python() {
    PYTHON_EXE=$(command -v "$PYTHON") || die "PYTHON=$PYTHON not found"
    # Keep a virtual environment's own path (not its target): CMake must see that environment's
    # numpy, which _caffe.so is compiled against.
    [[ $PYTHON_EXE == /* ]] || PYTHON_EXE=$PWD/$PYTHON_EXE
}

cuda_arch_check() {
    local arch
    for arch in $CUDA_ARCH_BIN $CUDA_ARCH_PTX; do
        [[ $arch =~ ^[0-9]{2,3}(\([0-9]{2,3}\))?$ ]] || die "CUDA architecture '$arch': expected numbers such as 60 or 86"
        # Caffe's cmake/Cuda.cmake deletes the text "20" (Fermi) from the list for CUDA >= 9, which
        # would turn e.g. 120 into 1.
        [[ $arch != *20* ]] || die "CUDA architecture '$arch': Caffe's CMake cannot pass numbers containing 20"
    done
}

nccl_wanted() {
    local dir
    case ${USE_NCCL,,} in
        auto)
            for dir in ${NCCL_ROOT:+"$NCCL_ROOT/include"} /usr/include /usr/local/include \
                /usr/local/cuda/include; do
                if [[ -f $dir/nccl.h ]]; then
                    note "NCCL found ($dir/nccl.h): multi-GPU training on"
                    return 0
                fi
            done
            note "NCCL not found: Caffe is built for one GPU per process (USE_NCCL=1 to insist)"
            return 1
            ;;
        *) is_true "$USE_NCCL" ;;
    esac
}

configure() {
    local py_include py_library args
    resolve_python
    py_include=$("$PYTHON_EXE" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    py_library=$("$PYTHON_EXE" -c '
import os, sysconfig
v = sysconfig.get_config_var
for d in (v("LIBDIR") or "", os.path.join(v("LIBDIR") or "", v("MULTIARCH") or "")):
    p = os.path.join(d, v("LDLIBRARY") or "")
    if p.endswith(".so") and os.path.isfile(p):
        print(p)
        break
')
    args=(
        -S "$CAFFE_SRC" -B "$BUILD_DIR"
        -DCMAKE_BUILD_TYPE=Release
        -DCMAKE_INSTALL_PREFIX="$PREFIX"
        # Caffe asks for CMake 2.8.7; CMake 4 refuses that unless told a minimum (older: ignored).
        -DCMAKE_POLICY_VERSION_MINIMUM=3.5
        -DBLAS="$BLAS"
        -DBUILD_docs=OFF
        -DBUILD_matlab=OFF
        -DUSE_OPENCV=ON
        -DUSE_LMDB=ON
        -DUSE_LEVELDB=ON
        # pycaffe for Python 3: Caffe's CMake then looks for Boost.Python of that version.
        -DBUILD_python=ON
        -DBUILD_python_layer=ON
        -Dpython_version=3
        -DPYTHON_EXECUTABLE="$PYTHON_EXE"
        -DPYTHON_INCLUDE_DIR="$py_include"
        # cuDNN 8 removed the cudnnGetConvolution*Algorithm calls BVLC Caffe uses (issue #6970);
        # without cuDNN Caffe uses its own CUDA kernels.
        -DUSE_CUDNN=OFF
    )
    if [[ -n $py_library ]]; then
        args+=(-DPYTHON_LIBRARY="$py_library")
    else
        note "warning: no shared libpython found for $PYTHON_EXE; CMake will search for one"
    fi
    if is_true "$CPU_ONLY"; then
        args+=(-DCPU_ONLY=ON -DUSE_NCCL=OFF)
    else
        cuda_arch_check
        if nccl_wanted; then
            args+=(-DCPU_ONLY=OFF -DUSE_NCCL=ON)
        else
            args+=(-DCPU_ONLY=OFF -DUSE_NCCL=OFF)
        fi
        args+=(-DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="$CUDA_ARCH_BIN" -DCUDA_ARCH_PTX="$CUDA_ARCH_PTX")
        # Caffe's FindNCCL looks in the system folders and $NCCL_DIR; point it at NCCL_ROOT if given.
        if [[ -n $NCCL_ROOT ]]; then
            args+=(-DNCCL_INCLUDE_DIR="$NCCL_ROOT/include")
            if [[ -f $NCCL_ROOT/lib/libnccl.so ]]; then
                args+=(-DNCCL_LIBRARIES="$NCCL_ROOT/lib/libnccl.so")
            fi
        fi
    fi
    run cmake "${args[@]}"
}

preflight() {
    local tool
    for tool in cmake make c++; do
        command -v "$tool" >/dev/null || die "$tool not found (run --install-deps first)"
    done
    resolve_python
    "$PYTHON_EXE" -c 'import numpy' 2>/dev/null ||
        die "numpy is not installed for $PYTHON_EXE (pip install -r $HERE/pycaffe-requirements.txt)"
    if ! is_true "$CPU_ONLY" && ! command -v nvcc >/dev/null; then
        [[ -x /usr/local/cuda/bin/nvcc ]] || die "nvcc not found: install CUDA, or set CPU_ONLY=1"
        export PATH=/usr/local/cuda/bin:$PATH
    fi
    if ! mkdir -p "$PREFIX" 2>/dev/null || [[ ! -w $PREFIX ]]; then
        die "cannot write to PREFIX=$PREFIX"
    fi
}

build_and_install() {
    local jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
    run cmake --build "$BUILD_DIR" -j "$jobs"
    run cmake --build "$BUILD_DIR" --target install
    if [[ $DRY_RUN == 0 && ! -f $PREFIX/python/caffe/_caffe.so ]]; then
        die "pycaffe was not built: CMake did not find Python 3 libraries, NumPy or Boost.Python for $PYTHON_EXE (see the Python lines of the CMake summary above)"
    fi
}

# ---------------------------------------------------------------------------------------------
# pycaffe's caffe_pb2.py
#
# Caffe's build generates caffe_pb2.py with the system protoc (3.12 on Ubuntu 22.04). That old
# generator writes descriptors directly, which protobuf >= 4 refuses to import ("Descriptors cannot
# be created directly"); the toolkit runs on protobuf 3.20 .. 7.x (pyproject.toml), in the same
# process as pycaffe. So the Python module is regenerated here with protoc 3.20/3.21, whose
# "builder" output imports with every runtime from 3.20 to 7.x and has no runtime version check
# (the toolkit's own caffe_pb2.py comes from the same protoc). Only the Python module changes: the
# C++ code of libcaffe stays generated by the system protoc, as it must match the system
# libprotobuf headers it is compiled with; the two never exchange generated code.
# Order: PYCAFFE_PROTOC if set; the system protoc if it is 3.20.x or 3.21.x (Debian 12: 3.21.12);
# else the protoc bundled in the pinned grpcio-tools wheel (pip, into GRPC_TOOLS_DIR).
# pycaffe's schema is package `caffe` (file caffe.proto), the toolkit's package `mcnn.caffe` (file
# mcnn/caffe/proto/caffe.proto): both register in one descriptor pool without a clash.

choose_pycaffe_protoc() {
    local version
    if [[ -n $PYCAFFE_PROTOC ]]; then
        read -ra PROTOC_CMD <<<"$PYCAFFE_PROTOC"
        note "protoc for pycaffe: $PYCAFFE_PROTOC (PYCAFFE_PROTOC)"
        return 0
    fi
    if command -v protoc >/dev/null; then
        version=$(protoc --version 2>/dev/null || true)
        version=${version#libprotoc }
        case $version in
            3.20.* | 3.21.*)
                note "protoc for pycaffe: system protoc $version"
                PROTOC_CMD=(protoc)
                return 0
                ;;
        esac
        note "system protoc ${version:-?} is not 3.20/3.21; using $GRPC_TOOLS_PIN"
    fi
    if [[ ! -d $GRPC_TOOLS_DIR/grpc_tools ]]; then
        # --target keeps the wheel out of the environment, so its protobuf dependency is not
        # installed there (it is not needed to run the compiler).
        run "$PYTHON_EXE" -m pip install --quiet --no-deps --target "$GRPC_TOOLS_DIR" "$GRPC_TOOLS_PIN"
    fi
    PROTOC_CMD=(env "PYTHONPATH=$GRPC_TOOLS_DIR" "$PYTHON_EXE" -c
        'import sys; from grpc_tools import _protoc_compiler as c; sys.exit(c.run_main([a.encode() for a in sys.argv[1:]]))'
        protoc)
}

regenerate_pycaffe_proto() {
    local proto_dir=$CAFFE_SRC/src/caffe/proto out_dir=$PREFIX/python/caffe/proto
    resolve_python
    [[ $DRY_RUN == 1 || -f $proto_dir/caffe.proto ]] || die "$proto_dir/caffe.proto not found"
    choose_pycaffe_protoc
    run mkdir -p "$out_dir"
    run "${PROTOC_CMD[@]}" -I"$proto_dir" --python_out="$out_dir" "$proto_dir/caffe.proto"
    if [[ ! -f $out_dir/__init__.py ]]; then
        run touch "$out_dir/__init__.py"
    fi
    if [[ $DRY_RUN == 0 ]]; then
        grep -q 'import builder' "$out_dir/caffe_pb2.py" ||
            die "$out_dir/caffe_pb2.py is not builder-style code; protobuf >= 4 cannot import it"
        "$PYTHON_EXE" -c 'import sys; sys.path.insert(0, sys.argv[1]); import caffe_pb2; caffe_pb2.NetParameter(name="x").SerializeToString()' "$out_dir" ||
            die "the regenerated caffe_pb2.py does not import with $PYTHON_EXE's protobuf"
        note "pycaffe caffe_pb2.py regenerated and imported"
    fi
}

# ---------------------------------------------------------------------------------------------
# After the install

write_env_file() {
    local env_file=$PREFIX/caffe-env.sh
    printf '+ write %q\n' "$env_file"
    [[ $DRY_RUN == 1 ]] && return 0
    cat >"$env_file" <<EOF
# Written by mcnn's docker/build_caffe.sh: \`. $env_file\` to use this Caffe.
export PATH="$PREFIX/bin:\$PATH"
export LD_LIBRARY_PATH="$PREFIX/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PYTHONPATH="$PREFIX/python\${PYTHONPATH:+:\$PYTHONPATH}"
EOF
}

# The checks that need no GPU. Without a GPU driver (a docker build) a GPU build may fail to load
# CUDA libraries: then the binary and _caffe.so checks only warn.
smoke_test() {
    local soft=0
    is_true "$CPU_ONLY" || soft=1
    if ! run env LD_LIBRARY_PATH="$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PREFIX/bin/caffe" --version; then
        ((soft)) || die "$PREFIX/bin/caffe does not run"
        note "warning: $PREFIX/bin/caffe did not run here (no GPU driver?)"
    fi
    if ! run env LD_LIBRARY_PATH="$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PYTHON_EXE" -c \
        'import sys; sys.path.insert(0, sys.argv[1]); import _caffe; print("pycaffe", _caffe.__version__)' \
        "$PREFIX/python/caffe"; then
        ((soft)) || die "pycaffe's _caffe.so does not import with $PYTHON_EXE"
        note "warning: _caffe.so did not import here (no GPU driver?)"
    fi
}

# ---------------------------------------------------------------------------------------------

main() {
    local arg
    for arg in "$@"; do
        case $arg in
            --dry-run) DRY_RUN=1 ;;
            --install-deps) set_mode install-deps ;;
            --patch-only) set_mode patch-only ;;
            --proto-only) set_mode proto-only ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown option '$arg' (see --help)" ;;
        esac
    done

    case $MODE in
        install-deps)
            install_deps
            ;;
        patch-only)
            [[ -n $CAFFE_SRC ]] || die "--patch-only needs CAFFE_SRC"
            fetch_source
            patch_sources
            ;;
        proto-only)
            [[ -n $CAFFE_SRC ]] || die "--proto-only needs CAFFE_SRC"
            fetch_source
            regenerate_pycaffe_proto
            ;;
        build)
            [[ $DRY_RUN == 1 ]] || preflight
            fetch_source
            patch_sources
            configure
            build_and_install
            regenerate_pycaffe_proto
            write_env_file
            smoke_test
            [[ $DRY_RUN == 1 ]] || note "done: Caffe in $PREFIX (. $PREFIX/caffe-env.sh)"
            ;;
    esac
}

main "$@"
