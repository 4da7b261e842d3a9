#!/usr/bin/env python3
"""No function over 80 lines in the shipped code (crates/*/src, functions/*/src), tests aside.

A long function is read as several steps that were never named; the bound keeps each one a
step. Counted from the line of `fn` to the line of its closing brace, comments and blank lines
included; `#[cfg(test)]` modules and items are skipped. Strings, chars and comments are blanked
before braces are matched, so a brace in a literal does not count. One summary line for make test.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 80


def blank(source: str) -> str:
    """The source with string, char and comment contents replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", source[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', source[i:i + 10]) and not (i and (source[i - 1].isalnum() or source[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', source[i:]).group(1)
            end = '"' + hashes
            j = source.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", source[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", source[i:j + 1]))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x[0-9a-fA-F]{2}'", source[i:i + 12]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x[0-9a-fA-F]{2}'", source[i:i + 12])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def closing(text: str, open_at: int) -> int:
    """The index of the brace that closes the one at `open_at`."""
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text) - 1


def functions(path: str):
    """Each function of `path` outside test code: its name, first line and length in lines."""
    text = blank(open(path, encoding="utf-8").read())
    skip = []  # (start, end) of #[cfg(test)] items
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?(mod|fn|impl)\b[^{;]*\{", text):
        skip.append((m.start(), closing(text, m.end() - 1)))
    for m in re.finditer(r"\bfn\s+(\w+)[^;{]*\{", text):
        if any(a <= m.start() <= b for a, b in skip):
            continue
        end = closing(text, m.end() - 1)
        first = text.count("\n", 0, m.start()) + 1
        last = text.count("\n", 0, end) + 1
        yield m.group(1), first, last - first + 1


def main() -> int:
    files = sorted(
        glob.glob(os.path.join(ROOT, "crates/*/src/**/*.rs"), recursive=True)
        + glob.glob(os.path.join(ROOT, "functions/*/src/**/*.rs"), recursive=True)
    )
    every = [
        (os.path.relpath(path, ROOT), name, line, length)
        for path in files
        for name, line, length in functions(path)
    ]
    found = [f for f in every if f[3] > LIMIT]
    for path, name, line, length in found:
        print(f"fn-length: {path}:{line}: fn {name} is {length} lines (at most {LIMIT})", file=sys.stderr)
    print(f"fn-length: {len(files)} files, {len(every)} functions, none over {LIMIT} lines" if not found
          else f"fn-length: {len(found)} of {len(every)} functions over {LIMIT} lines", file=sys.stderr)
    print(f"fn-length: {0 if found else 1} passed, {len(found)} failed")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
