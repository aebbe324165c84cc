"""`make deploy-check`: render every kustomization and validate it offline.

- Kubernetes schemas: `kubernetes-validate` (its schemas ship with the package), strict, against
  KUBERNETES_VERSION. The custom resources (ServiceMonitor, KServe's InferenceService and
  ServingRuntime) have no schema there; they get a structural check and are listed as such.
- Policies: checkov on the rendered manifests and the Dockerfiles (waivers: deploy/checkov.yaml).
- Prometheus rules: `promtool check rules`.
Runs with the tools venv's Python (.venv-tools: see the Makefile). Exit 1 on any error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.30.0"
KUSTOMIZATIONS = ("cpu", "gpu", "kserve")
CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"),
}


def render(name: str, out_dir: Path) -> Path:
    text = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy" / name)],
                          check=True, capture_output=True, text=True).stdout
    path = out_dir / f"{name}.yaml"
    path.write_text(text)
    return path


def validate(path: Path) -> list[str]:
    """One line per problem; prints one line per resource."""
    errors = []
    for doc in yaml.safe_load_all(path.read_text()):
        key = (doc.get("apiVersion"), doc.get("kind"))
        label = f"{path.name}: {key[1]}/{doc.get('metadata', {}).get('name')}"
        if key in CUSTOM_RESOURCES:
            missing = [f for f in ("metadata", "spec") if not doc.get(f)]
            errors += [f"{label}: no {f}" for f in missing]
            print(f"  {label}: custom resource, structure only (no schema offline)")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            print(f"  {label}: valid against Kubernetes {KUBERNETES_VERSION}")
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{label}: {error.message} at {'/'.join(map(str, error.path))}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{label}: no schema for {key} in Kubernetes {KUBERNETES_VERSION}")
    return errors


def run_tool(cmd: list[str]) -> list[str]:
    result = subprocess.run(cmd, capture_output=True, text=True)
    print(result.stdout.strip())
    return [] if result.returncode == 0 else [f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"]


def main() -> int:
    out_dir = ROOT / "build" / "deploy"
    out_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    rendered = []
    for name in KUSTOMIZATIONS:
        rendered.append(render(name, out_dir))
        print(f"deploy/{name} -> {rendered[-1].relative_to(ROOT)}")
        errors += validate(rendered[-1])
    tools = Path(sys.executable).parent
    checkov = [str(tools / "checkov"), "--config-file", str(ROOT / "deploy" / "checkov.yaml")]
    errors += run_tool([*checkov, "-d", str(out_dir)])
    dockerfiles = [ROOT / "docker" / "Dockerfile.cpu", ROOT / "docker" / "Dockerfile.gpu"]
    errors += run_tool([*checkov, *(arg for path in dockerfiles for arg in ("-f", str(path)))])
    errors += run_tool(["promtool", "check", "rules", str(ROOT / "deploy" / "monitoring" / "recording-rules.yaml")])
    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)
    print(f"deploy-check: {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
