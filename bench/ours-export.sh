#!/usr/bin/env bash
# bench-NAME as DIR/oci (OCI layout) and DIR/docker-archive.tar.
set -e
rm -rf "$2/oci" "$2/docker-archive.tar"; mkdir -p "$2"
"$KILN" save -o "$2/docker-archive.tar" "$1"
"$KILN" save --format oci-dir -o "$2/oci" "$1"
