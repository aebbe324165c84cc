"""The deployment kit: manifests (Kustomize), checks, and the local multi-replica proof (local/)."""
