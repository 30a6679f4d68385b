#!/usr/bin/env python3
"""The crates' layers (docs/architecture.md): each crate may depend only on crates
in the layers below its own. Cargo already refuses circles; this refuses a crate
reaching up (the gguf reader depending on llama, say), which Cargo would allow.

Reads `cargo metadata` for the workspace; prints each crate reaching up and exits 1."""

import json
import subprocess
import sys

# Bottom to top. Crates in one layer may not depend on each other.
LAYERS = [
    ["switchyard-child-guard"],
    ["switchyard-base"],
    ["switchyard-gguf", "switchyard-net", "switchyard-process"],
    ["switchyard-estimate"],
    ["switchyard-system", "switchyard-models"],
    ["switchyard-binaries"],
    ["switchyard-llama", "switchyard-diffusion"],
    ["switchyard-orchestrator"],
    ["switchyard-engine"],
    ["switchyard-testkit"],
    ["switchyard-cli", "switchyard-desktop", "bench"],
]

LAYER_OF = {name: index for index, layer in enumerate(LAYERS) for name in layer}


def main() -> int:
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    problems = []
    for package in metadata["packages"]:
        name = package["name"]
        if name not in LAYER_OF:
            problems.append(f"{name} has no layer: add it to scripts/check-layers.py")
            continue
        for dependency in package["dependencies"]:
            # Dev-dependencies may reach up: a crate's tests use the test kit.
            if dependency["kind"] == "dev" or dependency["name"] not in LAYER_OF:
                continue
            if LAYER_OF[dependency["name"]] >= LAYER_OF[name]:
                problems.append(f"{name} depends on {dependency['name']}, which is not below it")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(LAYER_OF)} crates, each depending only on the layers below it")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
