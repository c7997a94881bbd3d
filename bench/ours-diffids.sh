#!/usr/bin/env bash
# Layer diff_ids of bench-NAME, one a line.
"$KILN" inspect "$1" | python3 -c 'import json,sys; [print(d) for d in json.load(sys.stdin)[0]["RootFS"]["Layers"]]'
