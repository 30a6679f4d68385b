#!/usr/bin/env python3
"""Moves Switchyard's binary pin to new upstream releases and fills in every asset's
SHA-256 and size. The pin is crates/binaries/src/manifest.json (embedded into
the engine at compile time); see docs/binaries.md.

    python3 scripts/pin-binaries.py                     # fill in what is missing
    python3 scripts/pin-binaries.py --llama b11500 --sd master-930-abcdef0
    python3 scripts/pin-binaries.py --download          # hash the files themselves
    python3 scripts/pin-binaries.py --check             # exit 1 if anything is unpinned

Checksums come from GitHub's release API (each asset's `digest`, "sha256:..."); with
--download, or for an asset without a digest, the asset is downloaded and hashed here.
Set GITHUB_TOKEN to raise the API's rate limit. Asset names follow the new tag: the
build number (llama.cpp) or short commit (stable-diffusion.cpp) in each name is
replaced, and a name embedding a macOS version (sd's Darwin builds) is matched by
pattern, since that version follows the upstream build machine.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import urllib.request
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent.parent / "crates/binaries/src/manifest.json"
API = "https://api.github.com/repos/{repo}/releases/tags/{tag}"


def request(url):
    headers = {"User-Agent": "switchyard-pin-binaries"}
    token = os.environ.get("GITHUB_TOKEN")
    if token and url.startswith("https://api.github.com/"):
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)


def release_assets(repo, tag):
    with request(API.format(repo=repo, tag=tag)) as response:
        release = json.load(response)
    return {asset["name"]: asset for asset in release.get("assets", [])}


def sha256_of_url(url):
    digest = hashlib.sha256()
    size = 0
    with request(url) as response:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def renamed(name, old_tag, new_tag):
    """The asset's name in the new release."""
    if old_tag == new_tag:
        return name
    if old_tag.startswith("master-"):
        # stable-diffusion.cpp: tag master-<n>-<short>, names sd-master-<short>-bin-...
        old_short, new_short = old_tag.rsplit("-", 1)[1], new_tag.rsplit("-", 1)[1]
        return name.replace(f"-{old_short}-", f"-{new_short}-")
    return name.replace(old_tag, new_tag)


def find_asset(name, assets):
    if name in assets:
        return name, assets[name]
    placeholder = "\0"
    escaped = re.escape(re.sub(r"macOS-[0-9.]+", placeholder, name))
    pattern = re.compile(escaped.replace(re.escape(placeholder), r"macOS-[0-9.]+") + "$")
    matches = [candidate for candidate in assets if pattern.match(candidate)]
    if len(matches) == 1:
        return matches[0], assets[matches[0]]
    return name, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama", help="new llama.cpp tag, e.g. b11500")
    parser.add_argument("--sd", help="new stable-diffusion.cpp tag, e.g. master-930-abcdef0")
    parser.add_argument("--download", action="store_true", help="hash every asset by downloading it")
    parser.add_argument("--check", action="store_true", help="only report unpinned assets; exit 1 if any")
    args = parser.parse_args()

    manifest = json.loads(MANIFEST.read_text())
    if args.check:
        missing = [
            file["name"]
            for release in manifest["releases"]
            for asset in release["assets"]
            for file in [asset["archive"], *asset.get("dependencies", [])]
            if not file.get("sha256")
        ]
        for name in missing:
            print(f"unpinned: {name}")
        return 1 if missing else 0

    new_tags = {"llama_server": args.llama, "diffusion": args.sd}
    problems = 0
    for release in manifest["releases"]:
        old_tag = release["tag"]
        new_tag = new_tags.get(release["kind"]) or old_tag
        assets = release_assets(release["repo"], new_tag)
        release["tag"] = new_tag
        for asset in release["assets"]:
            for file in [asset["archive"], *asset.get("dependencies", [])]:
                name, found = find_asset(renamed(file["name"], old_tag, new_tag), assets)
                file["name"] = name
                if found is None:
                    print(f"missing in {release['repo']} {new_tag}: {name}", file=sys.stderr)
                    file["sha256"], file["size"] = None, None
                    problems += 1
                    continue
                digest = found.get("digest") or ""
                if digest.startswith("sha256:") and not args.download:
                    file["sha256"], file["size"] = digest.removeprefix("sha256:"), found["size"]
                else:
                    print(f"downloading {name} to hash it", file=sys.stderr)
                    file["sha256"], file["size"] = sha256_of_url(found["browser_download_url"])
                print(f"{name}  {file['sha256']}  {file['size']}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {MANIFEST}; run the engine's tests (cargo nextest run -p switchyard-engine binaries)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
