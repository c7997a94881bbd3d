#!/bin/sh
# Build the image, share the build cache through the registry, push.
# The CI jobs beside this file (github-actions.yml, gitlab-ci.yml) run it
# as it is; their variables say where to push. A test runs it against a
# local registry (cli/tests/ci_examples.rs).
#
#   REGISTRY           host[:port] to push to (ghcr.io, $CI_REGISTRY)
#   IMAGE              repository path (owner/app)
#   TAG                image tag (default: latest)
#   CONTEXT            build context (default: .)
#   REGISTRY_USER      with REGISTRY_PASSWORD: `kiln login` first
#   KILN               the kiln binary (default: kiln on PATH)
set -eu
: "${REGISTRY:?set REGISTRY (host[:port])}"
: "${IMAGE:?set IMAGE (owner/app)}"
TAG="${TAG:-latest}"
CONTEXT="${CONTEXT:-.}"
KILN="${KILN:-kiln}"
ref="$REGISTRY/$IMAGE"

if [ -n "${REGISTRY_USER:-}" ]; then
  printf '%s' "${REGISTRY_PASSWORD:?set REGISTRY_PASSWORD}" |
    "$KILN" login -u "$REGISTRY_USER" --password-stdin "$REGISTRY"
fi

# The cache lives beside the image (`:buildcache`): every machine's build
# starts from the last one's, and a first build without it just runs.
"$KILN" build --progress=plain \
  --cache-from "type=registry,ref=$ref:buildcache" \
  --cache-to "type=registry,ref=$ref:buildcache,mode=max" \
  --metadata-file metadata.json \
  -t "$ref:$TAG" --push \
  "$CONTEXT"
echo "pushed $ref:$TAG"
cat metadata.json
