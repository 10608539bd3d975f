#!/usr/bin/env bash
# Entrypoint of both mcnn images (Dockerfile.caffe: real Caffe; Dockerfile: the PyTorch engine).
#
#   docker run [docker options] IMAGE COMMAND [ARGS...]
#
# COMMAND is a toolkit command from the table below (run as `python $MCNN_HOME/<script> ARGS`),
# `caffe` or one of Caffe's tools (the Caffe image), a program passed through as given (bash, python,
# ...), or help. It is the same file and the same table in both images.
#
# Only bash builtins are used, so tests/docker can run it with nothing but fake programs on PATH.
set -euo pipefail

# The command table: the one list of the toolkit's commands. tests/docker reads it and checks that
# every command docs/docker.md uses is here. Columns: name, script under $MCNN_HOME, summary.
MCNN_COMMANDS='
reproduce       tools/reproduce.py       reproduce a dataset end to end: prepare, train, evaluate
prepare         data_prep/prepare.py     convert a raw dataset to LMDB splits
synthesize      data_prep/synthesize.py  simulate a screen (synthetic images and metadata)
train           tools/train.py           train a solver
evaluate        tools/evaluate.py        evaluate snapshots on a prepared split
predict         tools/predict.py         class probabilities for a prepared set
dose_response   tools/dose_response.py   fit dose-response curves to predictions
demo            tools/demo.py            the small CPU demo
make_net        tools/make_net.py        generate net prototxt
make_solver     tools/make_solver.py     generate solver prototxt
'

# Caffe's own programs: run from PATH in the Caffe image; refused with one line in the engine image.
CAFFE_PROGRAMS='caffe convert_imageset compute_image_mean upgrade_net_proto_text upgrade_net_proto_binary upgrade_solver_proto_text extract_features'
# Programs passed through unchanged.
PASSTHROUGH='bash sh python python3 pip nvidia-smi torchrun'

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
MCNN_HOME=${MCNN_HOME:-$(cd "$script_dir/.." && pwd)}
MCNN_PYTHON=${MCNN_PYTHON:-python}

usage() {
    local name script summary
    printf 'mcnn image (default engine: %s)\n' "${MCNN_ENGINE:-torch}"
    printf 'usage: docker run [docker options] IMAGE COMMAND [ARGS...]\n\n'
    printf 'toolkit commands (each takes --help):\n'
    while read -r name script summary; do
        [[ -n $name ]] && printf '  %-15s %s\n' "$name" "$summary"
    done <<<"$MCNN_COMMANDS"
    printf '\nother commands:\n'
    printf '  %-15s %s\n' 'caffe ARGS' "Caffe's command line: train, test, time, device_query (Caffe image)"
    printf '  %-15s %s\n' "Caffe's tools" "${CAFFE_PROGRAMS#caffe }"
    printf '  %-15s %s\n' 'run as given' "$PASSTHROUGH"
    printf '  %-15s %s\n' 'help' 'this list'
}

# Look up a toolkit command; sets SCRIPT. `dose-response` is accepted for `dose_response`.
lookup() {
    local wanted=${1//-/_} name script summary
    while read -r name script summary; do
        if [[ -n $name && $name == "$wanted" ]]; then
            SCRIPT=$script
            return 0
        fi
    done <<<"$MCNN_COMMANDS"
    return 1
}

in_list() {
    local word
    for word in $2; do
        [[ $word == "$1" ]] && return 0
    done
    return 1
}

# `docker run --user UID:GID` leaves HOME=/ (not writable); matplotlib and friends want a cache.
if [[ -z ${HOME:-} || $HOME == / || ! -w $HOME ]]; then
    export HOME=/tmp
fi

command=${1:-help}
[[ $# -gt 0 ]] && shift

case $command in
    help | -h | --help)
        usage
        exit 0
        ;;
esac

if in_list "$command" "$CAFFE_PROGRAMS"; then
    if ! type -P "$command" >/dev/null; then
        printf "mcnn: this image has no real Caffe ('%s' is not installed): train with the PyTorch engine (train -solver SOLVER), or build Dockerfile.caffe\n" "$command" >&2
        exit 127
    fi
    exec "$command" "$@"
fi

if in_list "$command" "$PASSTHROUGH"; then
    if ! type -P "$command" >/dev/null; then
        printf "mcnn: '%s' is not installed in this image\n" "$command" >&2
        exit 127
    fi
    exec "$command" "$@"
fi

if lookup "$command"; then
    if [[ ! -f $MCNN_HOME/$SCRIPT ]]; then
        printf "mcnn: command '%s' is not in this image (%s is missing)\n" "$command" "$MCNN_HOME/$SCRIPT" >&2
        exit 127
    fi
    exec "$MCNN_PYTHON" "$MCNN_HOME/$SCRIPT" "$@"
fi

printf "mcnn: unknown command '%s'\n\n" "$command" >&2
usage >&2
exit 2
