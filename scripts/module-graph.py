#!/usr/bin/env python3
"""Circles between files, counted from `use` lines (and other `crate::`/`super::`
paths in code, comments left out), in each crate of the workspace.

A circle is a group of files that import each other round (a strongly connected
component of more than one file). An import of a parent module by its child is not
counted: the child is part of the parent. Test modules (after `#[cfg(test)]`) are
left out. Crates import each other only down their layers: Cargo refuses circles
between crates and scripts/check-layers.py refuses a crate reaching up.

    python3 scripts/module-graph.py            # every crate under crates/
    python3 scripts/module-graph.py crates/llama/src"""

import os
import re
import sys
from collections import defaultdict

USE = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"use\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)
COMMENT = re.compile(r"//[^\n]*")


def modules(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                files["::".join(parts)] = path
    return files


def resolve(files, current, path):
    segments = path.split("::")
    if segments[0] == "crate":
        base, segments = [], segments[1:]
    else:
        base = current.split("::") if current else []
        while segments and segments[0] in ("super", "self"):
            if segments[0] == "super":
                base = base[:-1]
            segments = segments[1:]
    full = base + segments
    for end in range(len(full), -1, -1):
        candidate = "::".join(full[:end])
        if candidate in files:
            return candidate
    return None


def edges_of(files):
    edges = defaultdict(set)
    for module, path in files.items():
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        cut = text.find("#[cfg(test)]")
        text = COMMENT.sub("", text if cut < 0 else text[:cut])
        targets = set(USE.findall(text))
        for prefix, inner in GROUP.findall(text):
            for item in re.split(r",\s*", inner):
                item = item.strip().split(" as ")[0].split("::{")[0].strip()
                if item:
                    targets.add(f"{prefix}::{item}")
        for target in targets:
            found = resolve(files, module, target)
            if found and found != module and not module.startswith(found + "::"):
                edges[module].add(found)
    return edges


def circles(files, edges):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                on.discard(other)
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in files:
        if node not in index:
            visit(node)
    return found


def main():
    roots = sys.argv[1:] or sorted(
        os.path.join("crates", name, "src")
        for name in os.listdir("crates")
        if os.path.isdir(os.path.join("crates", name, "src"))
    )
    total = 0
    for root in roots:
        files = modules(root)
        edges = edges_of(files)
        found = circles(files, edges)
        total += len(found)
        print(f"{root}: {len(files)} files, {sum(map(len, edges.values()))} imports, {len(found)} circles")
        for group in found:
            print("    " + " <-> ".join(group))
    print(f"circles in all: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
