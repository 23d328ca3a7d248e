#!/usr/bin/env python3
"""Checks the declared MSRV: no package the workspace builds on this platform (dependencies,
build and dev dependencies, resolved as Cargo.lock pins them) declares a `rust-version` newer
than the workspace's own. The machine has one toolchain, so this reads what each package
declares rather than compiling with the older compiler. Exit 1 lists the offenders."""
import json
import subprocess
import sys


def version(text):
    return tuple(int(part) for part in text.split(".")) + (0,) * (3 - len(text.split(".")))


def main():
    host = next(line.split()[1] for line in subprocess.run(
        ["rustc", "-vV"], check=True, capture_output=True, text=True).stdout.splitlines()
        if line.startswith("host:"))
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
        check=True, capture_output=True, text=True).stdout)
    packages = {package["id"]: package for package in metadata["packages"]}
    members = set(metadata["workspace_members"])
    declared = {packages[m]["rust_version"] for m in members if packages[m]["rust_version"]}
    if len(declared) != 1:
        sys.exit(f"msrv: the workspace members declare {sorted(declared) or 'no'} rust-version; expected one")
    msrv = declared.pop()
    built = {node["id"] for node in metadata["resolve"]["nodes"]}
    newer = sorted(
        (packages[i]["name"], packages[i]["version"], packages[i]["rust_version"])
        for i in built
        if i not in members and packages[i]["rust_version"] and version(packages[i]["rust_version"]) > version(msrv))
    if newer:
        for name, ver, rust in newer:
            print(f"msrv: {name} {ver} needs Rust {rust}, newer than the declared {msrv}")
        sys.exit(1)
    print(f"msrv: {len(built) - len(members)} packages, none needs Rust newer than the declared {msrv}")


main()
