"""Command line: scan a Runa project, print findings and a unified diff, `--apply` to write."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from kurs_migrate.scan import Finding, Target, scan

SUFFIXES = frozenset(
    {".runa", ".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".conf", ".env", ".properties"}
)
NAMES = frozenset({".env", "Runafile", "runa.config"})
SKIP_DIRS = frozenset({".git", "node_modules", "build", "dist", ".venv", "__pycache__"})
MAX_BYTES = 2 * 1024 * 1024


def project_files(root: Path) -> Iterator[Path]:
    """`*.runa` and configuration files under `root`, in a stable order."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if any(part in SKIP_DIRS for part in path.relative_to(root).parts[:-1]):
            continue
        wanted = path.suffix in SUFFIXES or path.name in NAMES
        if wanted and path.is_file() and path.stat().st_size <= MAX_BYTES:
            yield path


def describe(path: str, finding: Finding) -> str:
    action = f"-> {finding.replacement}" if finding.replacement is not None else "(review by hand)"
    return f"{path}:{finding.line}:{finding.column}: {finding.kind}: {finding.text} {action}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kurs_migrate",
        description="Find a Runa project's calls to external rate APIs and rewrite them to Kurs.",
    )
    parser.add_argument("project", type=Path, help="the Runa project's folder (or one file)")
    parser.add_argument("--kurs-url", default="http://127.0.0.1:8000", help="the Kurs gateway's base URL")
    parser.add_argument(
        "--kurs-key", default=None, help="a Kurs API key to put in place of ExchangeRate-API keys"
    )
    parser.add_argument("--apply", action="store_true", help="write the changes (default: print a diff)")
    args = parser.parse_args(argv)
    if not args.project.exists():
        parser.error(f"{args.project} does not exist")
    target = Target(args.kurs_url.rstrip("/"), args.kurs_key)
    root = args.project if args.project.is_dir() else args.project.parent
    total = changed = 0
    diffs: list[str] = []
    for path in project_files(args.project):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings, rewritten = scan(text, target)
        name = path.relative_to(root).as_posix()
        for finding in findings:
            print(describe(name, finding))
        total += len(findings)
        if rewritten != text:
            changed += 1
            if args.apply:
                path.write_text(rewritten, encoding="utf-8")
            else:
                diffs.extend(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        rewritten.splitlines(keepends=True),
                        f"a/{name}",
                        f"b/{name}",
                    )
                )
    sys.stdout.writelines(diffs)
    verb = "rewrote" if args.apply else "would rewrite"
    print(f"{total} finding(s); {verb} {changed} file(s)", file=sys.stderr)
    return 0
