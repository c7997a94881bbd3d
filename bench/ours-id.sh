#!/usr/bin/env bash
# Image ID (config digest, hex) of bench-NAME, for ../shared/bench/repro-export.sh.
"$KILN" inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"].split(":")[1])'
