#!/usr/bin/env python3
"""Checks the layering of the Rust code: no import cycle between files, and no import against
the order of the `stepstone` crate's top-level modules.

Every `crate::…`, `super::…` and `self::…` path a file names (in `use` items and in code) is
resolved to the file of the longest module prefix it names; a file importing another is an
edge. A cycle is a strongly connected component of more than one file. The top-level modules
of `src/` stand in the order of `LAYERS`: a module may import from those before it, never from
those after it. Each crate is read on its own (the dataflows crate cannot import the main one).

    python3 scripts/layers.py          # prints the graph's cycles and backward imports; exit 1 if any
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The top-level modules of the stepstone crate, in the order of the data path and then of the
# programs that drive it: each may import only from the modules before it. `generate` stands
# apart (it writes synthetic inputs and imports nothing of the rest).
LAYERS = ["source", "journal", "sink", "engine", "config", "run", "server", "generate", "cli"]

CRATES = {"stepstone": ROOT / "src", "stepstone-dataflows": ROOT / "dataflows" / "src"}

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
USE = re.compile(r"\buse\s+((?:crate|super|self)::[^;]*);", re.S)
COMMENT = re.compile(r"//[^\n]*")


def module_of(src: Path, file: Path) -> tuple:
    """The module path of `file` in the crate rooted at `src`, as a tuple of names."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_use(tree: str) -> list:
    """The paths of a `use` tree such as `crate::a::{b::{C, D}, e}`, each as a list of names."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix: list, text: str):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(text[start:i])
                start = i + 1
        items.append(text[start:])
        for item in items:
            if not item:
                continue
            if "{" in item:
                head, rest = item.split("{", 1)
                walk(prefix + [p for p in head.split("::") if p], rest[: rest.rindex("}")])
            else:
                out.append(prefix + [p for p in item.split(" as ")[0].split("::") if p])

    walk([], tree)
    return out


def resolve(module: tuple, path: list, modules: set) -> tuple:
    """The longest module named by `path` (relative to `module` for super/self), or None."""
    base = () if path[0] == "crate" else module
    rest = path[1:] if path[0] in ("crate", "self") else path
    while rest and rest[0] == "super":
        base, rest = base[:-1], rest[1:]
    best = None
    for n in range(len(rest) + 1):
        candidate = base + tuple(rest[:n])
        if candidate in modules:
            best = candidate
    return best


def graph(src: Path) -> dict:
    """File module → the file modules it imports."""
    files = {module_of(src, f): f for f in sorted(src.rglob("*.rs"))}
    modules = set(files)
    edges = {}
    for module, file in files.items():
        text = COMMENT.sub("", file.read_text())
        paths = []
        for tree in USE.findall(text):
            paths.extend(expand_use(tree))
        stripped = USE.sub("", text)
        for match in PATH.finditer(stripped):
            names = [p for p in match.group(2).split("::") if p and p != "{"]
            paths.append([match.group(1)] + names)
        targets = set()
        for path in paths:
            target = resolve(module, path, modules)
            # A test module's `use super::*` is the file it tests: not an import between files.
            if target is not None and target != module and not (module[-1:] == ("tests",) and target == module[:-1]):
                targets.add(target)
        edges[module] = targets
    return edges


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def name(crate: str, module: tuple) -> str:
    return crate + "::" + "::".join(module) if module else crate


def main() -> int:
    problems = 0
    for crate, src in CRATES.items():
        edges = graph(src)
        for component in cycles(edges):
            problems += 1
            print(f"cycle: {' <-> '.join(name(crate, m) for m in component)}")
        if crate != "stepstone":
            continue
        for module, targets in sorted(edges.items()):
            if not module or module[0] not in LAYERS:
                continue
            for target in sorted(targets):
                if target and target[0] in LAYERS and LAYERS.index(target[0]) > LAYERS.index(module[0]):
                    problems += 1
                    print(f"backward import: {name(crate, module)} -> {name(crate, target)}")
        unknown = sorted({m[0] for m in edges if m and m[0] not in LAYERS})
        for top in unknown:
            problems += 1
            print(f"module {top} is not in LAYERS of scripts/layers.py")
    print(f"{problems} layering problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
