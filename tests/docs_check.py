#!/usr/bin/env python3
"""The documents agree with the repository (run by `make test`):

- every citation of a section in code, tests and documents (`DESIGN "X"`, `DESIGN.md "X"`,
  `README "X"`, `docs/<file>.md "X"`) names a heading of that document (DESIGN is
  docs/design.md);
- every relative markdown link of the repository's .md files points at a file that exists (and,
  with `#anchor` into a .md file, at one of its headings);
- every markdown table's rows have as many cells as its header;
- docs/configuration.md's "Variables" table lists exactly `ALL_VARIABLES` of
  crates/realtime/src/runtime/config.rs;
- every path the README's repository map names exists;
- every document that lists the WebSocket API's routes names all of them, and no other: the
  routes are `$connect`, `$disconnect`, `$default` (crates/realtime/src/connection/lifecycle/
  route.rs) and `MESSAGE_ROUTES` (crates/realtime/src/wire/client.rs), which template.yaml's
  RouteKeys must equal too; the lists are docs/dev-server.md's "Frames are routed by …",
  docs/deploy.md's "The stack: the WebSocket API (…", docs/protocol.md's "API Gateway routes it
  by its `action` …" and its client → server table, and the README's diagram;
- the bootstrap bound is one number: the Makefile's `MAX_BOOTSTRAP_BYTES`, the "Lambda artifact"
  row of docs/design.md "Limits" (in MB, 10^6 bytes) and `BOOTSTRAP_BYTES` of
  crates/bench/src/targets.rs.

One line per failure on stderr, then `docs-check: N passed, M failed`.
Usage: python3 tests/docs_check.py [repository root]
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
SKIP_DIRS = {"node_modules", "target", "dist", ".git", ".aws-sam", ".sam-src", "__pycache__"}
CODE_DIRS = ["crates", "tests", "functions", "clients", "migrations"]
CODE_FILES = ["Makefile", "template.yaml"]
CODE_EXT = (".rs", ".ts", ".mjs", ".js", ".sql", ".sh", ".py", ".md", ".html", ".yaml", ".toml")
DOC_FOR = {"DESIGN": "docs/design.md", "DESIGN.md": "docs/design.md", "README": "README.md", "README.md": "README.md"}

passed = 0
failed = 0


def check(ok, message):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"docs-check: {message}", file=sys.stderr)


def walk(top):
    for base, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        for name in files:
            yield os.path.join(base, name)


def markdown_files():
    listed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        capture_output=True, text=True, check=True).stdout.split("\n")
    return sorted(p for p in set(listed) if p and os.path.exists(os.path.join(ROOT, p))
                  and not (set(p.split("/")) & SKIP_DIRS))


def outside_code(text):
    """The lines of a markdown text outside fenced code blocks, with their numbers."""
    fenced = False
    for number, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


_headings = {}


def headings(path):
    """The heading texts of a markdown file (None if it does not exist)."""
    if path not in _headings:
        full = os.path.join(ROOT, path)
        if not os.path.isfile(full):
            _headings[path] = None
        else:
            text = open(full, encoding="utf-8").read()
            _headings[path] = [m.group(1).strip() for _, line in outside_code(text)
                               for m in [re.match(r"#{1,6}\s+(.*)", line)] if m]
    return _headings[path]


# 1. Citations.
COMMENT = re.compile(r"^\s*(//[!/]?|--|#|\*|/\*\*?|<!--)?\s?")
CITATION = re.compile(
    r"(?<![\w/.])(DESIGN\.md|DESIGN|README\.md|README|docs/[\w./-]+\.md)\s*,?\s*"
    r"((?:\\?\"[A-Z][^\"\\{}()=<>;]{0,79}\\?\"(?:\s*,\s*(?:and\s+)?(?=\\?\"))?)+)")
sources = [p for d in CODE_DIRS for p in walk(os.path.join(ROOT, d))
           if p.endswith(CODE_EXT) and os.path.abspath(p) != os.path.abspath(__file__)]
sources += [os.path.join(ROOT, f) for f in CODE_FILES] + [os.path.join(ROOT, p) for p in markdown_files()]
citations = 0
for path in sorted(set(sources)):
    rel = os.path.relpath(path, ROOT)
    try:
        raw = open(path, encoding="utf-8").read()
    except (UnicodeDecodeError, FileNotFoundError):
        continue
    # Comments continue over lines: join them, markers removed, so a citation broken across
    # two comment lines reads as one.
    joined = " ".join(COMMENT.sub("", line).strip() for line in raw.split("\n"))
    for m in CITATION.finditer(joined):
        doc = DOC_FOR.get(m.group(1), m.group(1))
        names = re.findall(r"\\?\"([^\"\\]+)\\?\"", m.group(2))
        for name in names:
            name = re.sub(r"\s+", " ", name).strip()
            found = headings(doc)
            citations += 1
            if found is None:
                check(False, f"{rel} cites {m.group(1)} \"{name}\": {doc} does not exist")
            else:
                check(name in found, f"{rel} cites {m.group(1)} \"{name}\": no such heading in {doc}")

# 2. Links, 3. tables.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
for rel in markdown_files():
    text = open(os.path.join(ROOT, rel), encoding="utf-8").read()
    lines = list(outside_code(text))
    for number, line in lines:
        for m in LINK.finditer(re.sub(r"`[^`]*`", "``", line)):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(rel), file_part)) if file_part else rel
            exists = os.path.exists(os.path.join(ROOT, dest))
            check(exists, f"{rel}:{number}: link to {target}: {dest} does not exist")
            if exists and anchor and dest.endswith(".md"):
                slugs = [slug(h) for h in headings(dest) or []]
                check(anchor.lower() in slugs, f"{rel}:{number}: link to {target}: no heading #{anchor} in {dest}")
    # Tables: a header row, a separator row, then rows until the first line not starting with |.
    i = 0
    while i < len(lines) - 1:
        number, line = lines[i]
        if line.lstrip().startswith("|") and re.match(r"^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$", lines[i + 1][1]):
            def cells(row):
                row = row.strip()
                return len(re.split(r"(?<!\\)\|", row.strip("|")))
            width = cells(line)
            check(cells(lines[i + 1][1]) == width,
                  f"{rel}:{lines[i + 1][0]}: table separator has {cells(lines[i + 1][1])} cells, header {width}")
            j = i + 2
            bad = []
            while j < len(lines) and lines[j][1].lstrip().startswith("|") and lines[j][0] == lines[j - 1][0] + 1:
                if cells(lines[j][1]) != width:
                    bad.append(f"line {lines[j][0]}: {cells(lines[j][1])}")
                j += 1
            check(not bad, f"{rel}:{number}: table header has {width} cells; rows differ ({', '.join(bad)})")
            i = j
        else:
            i += 1

# 5. The README's repository map names paths that exist: in the code block under "Repository",
# each line's leading names (before the description), nested by two-space indentation.
readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
if "\n## Repository\n" in readme:
    block = readme.split("\n## Repository\n", 1)[1].split("```", 2)[1]
    stack = []
    for line in block.split("\n")[1:]:
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent > 4:
            continue  # a description's continuation
        depth = indent // 2
        head = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        names = [w for w in head.split(" ") if w.endswith("/") or "." in w or "*" in w]
        if not names:
            continue
        stack = stack[:depth]
        parent = "".join(stack)
        for name in names:
            pattern = os.path.join(ROOT, parent + name)
            check(bool(glob.glob(pattern)), f"README.md \"Repository\" names {parent + name}, which does not exist")
        stack.append(names[0])
else:
    check(False, "README.md has no \"Repository\" section")

# 4. configuration.md lists exactly ALL_VARIABLES.
config_rs = open(os.path.join(ROOT, "crates/realtime/src/runtime/config.rs"), encoding="utf-8").read()
values = dict(re.findall(r"pub const (\w+): &str = \"([^\"]+)\";", config_rs))
listed = re.search(r"pub const ALL_VARIABLES: &\[&str\] = &\[(.*?)\];", config_rs, re.S)
check(listed is not None, "crates/realtime/src/runtime/config.rs: no ALL_VARIABLES")
if listed:
    expected = {values.get(name, name) for name in re.findall(r"\w+", listed.group(1))}
    conf_path = os.path.join(ROOT, "docs/configuration.md")
    documented = set()
    if os.path.exists(conf_path):
        conf = open(conf_path, encoding="utf-8").read()
        section = conf.split("\n## Variables\n", 1)[1].split("\n## ", 1)[0] if "\n## Variables\n" in conf else ""
        for row in section.split("\n"):
            if row.startswith("|") and not re.match(r"^\|\s*(variable|-)", row):
                first = re.split(r"(?<!\\)\|", row.strip("|"))[0]
                documented |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    check(documented == expected,
          "docs/configuration.md \"Variables\" and ALL_VARIABLES differ: missing "
          f"{sorted(expected - documented)}, not read {sorted(documented - expected)}")


def read(rel):
    full = os.path.join(ROOT, rel)
    return open(full, encoding="utf-8").read() if os.path.isfile(full) else ""


def backticked(text):
    return set(re.findall(r"`([^`\s]+)`", text))


# 6. The routes, as the code accepts them, against every list of them.
route_rs = read("crates/realtime/src/connection/lifecycle/route.rs")
client_rs = read("crates/realtime/src/wire/client.rs")
special = set(re.findall(r'pub const ROUTE_(?:CONNECT|DISCONNECT|DEFAULT): &str = "([^"]+)";', route_rs))
message_list = re.search(r"pub const MESSAGE_ROUTES: \[&str; \d+\] = \[(.*?)\];", client_rs, re.S)
legacy_list = re.search(r"pub const LEGACY_TYPES: \[&str; \d+\] = \[(.*?)\];", client_rs, re.S)
check(len(special) == 3, "crates/realtime/src/connection/lifecycle/route.rs: no ROUTE_CONNECT, "
      "ROUTE_DISCONNECT and ROUTE_DEFAULT")
check(message_list is not None and legacy_list is not None,
      "crates/realtime/src/wire/client.rs: no MESSAGE_ROUTES or LEGACY_TYPES")
if len(special) == 3 and message_list and legacy_list:
    message_routes = set(re.findall(r'"([^"]+)"', message_list.group(1)))
    legacy = set(re.findall(r'"([^"]+)"', legacy_list.group(1)))
    routes = special | message_routes
    template_routes = set(re.findall(r"^\s+RouteKey:\s*(\S+)\s*$", read("template.yaml"), re.M))
    template_routes = {r for r in template_routes if not r.startswith(("GET", "POST"))}
    check(template_routes == routes, f"template.yaml's WebSocket RouteKeys and the code's routes differ: "
          f"missing {sorted(routes - template_routes)}, extra {sorted(template_routes - routes)}")

    def route_list(rel, where, span, want, also=frozenset()):
        """`span`, the text of `rel` that lists the routes, names every route of `want` and
        nothing else but `also`."""
        if span is None:
            check(False, f"{rel}: no {where} (the list of the routes) found")
            return
        named = backticked(span)
        check(want <= named and named <= want | also,
              f"{rel}: {where} lists the routes {sorted(named & (want | also))}: missing "
              f"{sorted(want - named)}, not routes {sorted(named - want - also)}")

    text = read("docs/dev-server.md")
    m = re.search(r"Frames are routed by `action` like API Gateway \((.*?)\)", text, re.S)
    route_list("docs/dev-server.md", "\"Frames are routed by …\"", m and m.group(1),
               message_routes | {"$default"}, legacy | {"type"})
    text = read("docs/deploy.md")
    m = re.search(r"The stack: the WebSocket API \((.*?);", text, re.S)
    route_list("docs/deploy.md", "\"The stack: the WebSocket API (…\"", m and m.group(1), routes)
    text = read("docs/protocol.md")
    m = re.search(r"API Gateway routes it\s+by\s+its\s+`action`(.*?reaches\s+`\$default`)", text, re.S)
    route_list("docs/protocol.md", "\"API Gateway routes it by its `action` …\"", m and m.group(1),
               message_routes | {"$default"}, legacy | {"type", "action", "$request.body.action"})
    table = re.search(r"\n\| send \| reply \|\n(.*?)\n\n", text, re.S)
    actions = set(re.findall(r'^\| `\{"action":"(\w+)"', table.group(1), re.M)) if table else set()
    check(actions == message_routes, "docs/protocol.md: the client → server table's `action` rows "
          f"and the message routes differ: missing {sorted(message_routes - actions)}, "
          f"extra {sorted(actions - message_routes)}")
    # The README's diagram: on each line, the names between its first │ and the next │, ─, ▶ or
    # run of spaces (split at |) are the routes it draws.
    readme_text = read("README.md")
    diagram = next((b for b in readme_text.split("```")[1::2] if "API Gateway WebSocket API" in b), None)
    drawn = set()
    for line in (diagram or "").split("\n"):
        if "│" in line:
            segment = re.split(r"[│─▶]|\s{2,}", line.split("│", 1)[1].strip(), maxsplit=1)[0]
            drawn |= {w for w in re.split(r"[|\s]+", segment) if re.fullmatch(r"\$?[a-z_]+", w)}
    check(diagram is not None and routes <= drawn and drawn <= routes,
          f"README.md's diagram draws the routes {sorted(drawn)}: missing {sorted(routes - drawn)}, "
          f"not routes {sorted(drawn - routes)}")

# 7. The bootstrap bound: the Makefile, docs/design.md "Limits" and the bench's goal agree.
makefile_bound = re.search(r"^MAX_BOOTSTRAP_BYTES\s*:?=\s*(\d+)\s*$", read("Makefile"), re.M)
design = read("docs/design.md")
limits = design.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0] if "\n## Limits\n" in design else ""
row = next((r for r in limits.split("\n") if r.startswith("| Lambda artifact")), None)
design_mb = re.match(r"\|[^|]*\|\s*([\d.]+) MB", row) if row else None
targets_rs = read("crates/bench/src/targets.rs")
target = re.search(r"pub const BOOTSTRAP_BYTES: u64 = ([\d_]+);", targets_rs)
target_mb = re.search(r"pub const BOOTSTRAP_MB: f64 = ([\d_.]+);", targets_rs)
bounds = {
    "the Makefile's MAX_BOOTSTRAP_BYTES": int(makefile_bound.group(1)) if makefile_bound else None,
    "docs/design.md \"Limits\" (Lambda artifact)": round(float(design_mb.group(1)) * 1e6) if design_mb else None,
    "crates/bench/src/targets.rs BOOTSTRAP_BYTES": (int(target.group(1).replace("_", "")) if target else
        round(float(target_mb.group(1).replace("_", "")) * 1e6) if target_mb else None),
}
for name, value in bounds.items():
    check(value is not None, f"the bootstrap bound: {name} not found")
found_bounds = {v for v in bounds.values() if v is not None}
check(len(found_bounds) <= 1, "the bootstrap bound differs: " + ", ".join(
    f"{name} {value / 1e6:g} MB ({value} bytes)" for name, value in bounds.items() if value is not None))

print(f"docs-check: {citations} citations, {len(markdown_files())} markdown files", file=sys.stderr)
print(f"docs-check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
