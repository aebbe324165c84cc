#!/bin/sh
# The GPU image's entrypoint. Takes the repository from $MODEL_DIR (default /models: an emptyDir
# that the pod's init container fills) or, when that holds none, copies it there from
# $MODEL_SOURCE (default: the one the image carries; KServe: /mnt/models, which is read-only).
# Builds the TensorRT plans for this GPU in it (plans that are current are kept: build_plans.sh),
# then runs tritonserver with the flags of the project's launcher (engine/server/launcher.py): strict
# readiness, exit on error, no model control, the admin APIs behind the admin key, and latency
# summaries for p99.
set -eu
MODELS="${MODEL_DIR:-/models}"
if [ ! -f "$MODELS/build_plans.sh" ]; then
  mkdir -p "$MODELS"
  cp -r "${MODEL_SOURCE:-/opt/speech2face/repository}/." "$MODELS/"
fi
PYTHON=python3 sh "$MODELS/build_plans.sh"
# The admin key: $S2F_ADMIN_KEY, or the file $S2F_ADMIN_KEY_FILE (a mounted Secret in Kubernetes).
if [ -z "${S2F_ADMIN_KEY:-}" ] && [ -n "${S2F_ADMIN_KEY_FILE:-}" ]; then
  S2F_ADMIN_KEY="$(cat "$S2F_ADMIN_KEY_FILE")"
fi
: "${S2F_ADMIN_KEY:?set S2F_ADMIN_KEY or S2F_ADMIN_KEY_FILE, the key that opens the admin APIs}"
RULE="shared-memory,model-repository,logging,trace:s2f-admin-key=${S2F_ADMIN_KEY}"
exec tritonserver --model-repository="$MODELS" \
  --http-port="${HTTP_PORT:-8000}" --grpc-port="${GRPC_PORT:-8001}" --metrics-port="${METRICS_PORT:-8002}" \
  --strict-readiness=true --exit-on-error=true --model-control-mode=none \
  --http-restricted-api="$RULE" --grpc-restricted-protocol="$RULE" \
  --metrics-config=summary_latencies=true \
  --backend-config=python,shm-default-byte-size=16777216 \
  "$@"
