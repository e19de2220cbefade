#!/bin/sh
# What a challenge container runs in /workspace (inputs/ and outputs/ mounted there); here, run in the
# harness's workdir: interact.command='sh /path/to/examples/cvpr25/predict.sh'
exec python "$(dirname "$0")/predict.py"
