#!/usr/bin/env python3
"""Project text speaks of the project alone (run by `make test`).

Every text file git knows (tracked, or new and not ignored; binary files, `*.png`,
`package-lock.json` and `Cargo.lock` skipped; this file skipped, since its self-test holds the
very strings it looks for) is read line by line, and a line fails on:

(a) a tracker reference: `issue 35`, `Issue 35's`, `issues 3 and 4`, `issue #18`, `PR 12`,
    `pull request 12`. A numbered issue of another project, named before it, is a citation, not
    a tracker reference, and passes: `aws-sdk-rust issue #1362` (the word before `issue`, on the
    same line or ending the previous one, is a repository name: it has a `-` or a `/`), as does
    `aws-sdk-rust#1362`. `issue` without a number ("a GitHub issue") passes. Numbered stops
    ("stop 5") are not looked for: the repository uses none as a tracker reference.
(b) a path of the machine the project was built on: `/work/…`, `/root/…`, `/home/…` and
    `/Users/…` wherever they start a path (not inside a longer one or a URL: `$root/var` and
    `example.com/home/` pass); and a checkout under `/tmp/` (`git clone … /tmp/x`, `cd /tmp/x`,
    `git -C /tmp/x`, `git worktree add /tmp/x`). Other `/tmp/` paths pass: the scripts make
    their scratch directories with `mktemp -d /tmp/devhive-….XXXXXX`.
(c) `seed` as the name of the original code base (DevHive's Go services):
    - the possessive `seed's` (`the seed's algorithm`);
    - `seed` before a word naming code: `seed repo`, `seed repository`, `seed code`,
      `seed codebase`, `seed project`, `seed baseline`, `seed algorithm`, `seed implementation`,
      `seed version`, `seed broadcaster`, `seed speed-up`, `seed goal`, also joined by `_` or
      `-` as in an identifier (`seed_baseline`, `SEED_SPEEDUP`);
    - `the seed`, `this seed`, `our seed`, `in seed` as a noun of its own, unless the line speaks
      of random numbers (`random`, `rng`, `generator`, `seeded`, `replay`, `--seed`, `proptest`,
      `shuffle`, `entropy`): "the seed is in the failure message" beside "a seeded generator"
      passes.
    A random-number seed passes everywhere else: `--seed 7`, `let seed = …`, `seeded schedule`,
    `seeding its random generator`, `mutated(seed)`.

The patterns are checked against strings that must and must not match before the files are
read. One line per hit on stderr, `text-check: FILE:LINE: what: the text`, then
`text-check: N passed, M failed` (a file without a hit, or a self-test case, passes; each file
with hits, or self-test case, fails). Usage: python3 tests/text_check.py [repository root]
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
SKIP_NAMES = {"package-lock.json", "Cargo.lock"}
SKIP_EXT = (".png",)

TRACKER = re.compile(r"\b(?:[Ii]ssues?|PR|[Pp]ull [Rr]equests?) #?\d+")
# The word before a numbered issue, when it names another project's repository.
REPOSITORY_BEFORE = re.compile(r"(?:[\w.]+-[\w.-]+|[\w.-]+/[\w.-]+)\s*$")

MACHINE_PATH = re.compile(
    r"(?<![\w.~$}/-])/(?:work|root|home|Users)/"
    r"|(?:\bgit\s+clone\s+(?:-\S+\s+)*\S+\s+|\bcd\s+|\bgit\s+-C\s+|\bworktree\s+add\s+(?:-\S+\s+)*)/tmp/\w")

CODE_WORDS = (r"repo|repository|code|codebase|project|baseline|algorithm|implementation|version"
              r"|broadcaster|speed-?up|goal")
SEED_NAMED = re.compile(rf"\bseed(?:'s|’s)|\bseed[ _-](?:{CODE_WORDS})\b", re.I)
SEED_NOUN = re.compile(r"\b(?:the|this|our|in)\s+seed\b(?![_-])", re.I)
RANDOM_CONTEXT = re.compile(r"random|\brng\b|generator|seeded|replay|--seed|proptest|shuffle|entropy", re.I)


def hits(line, previous=""):
    """What is wrong with `line` (the line before it given for context), as short names."""
    found = []
    for m in TRACKER.finditer(line):
        before = line[:m.start()]
        if not before.strip(" \t/#*!-<>"):  # the reference starts the line: look at the one before
            before = previous
        if not REPOSITORY_BEFORE.search(before.rstrip()):
            found.append(f"tracker reference {m.group(0)!r}")
    for m in MACHINE_PATH.finditer(line):
        found.append(f"a build machine's path {m.group(0).strip()!r}")
    for m in SEED_NAMED.finditer(line):
        found.append(f"'seed' for the original code base {m.group(0)!r}")
    if not RANDOM_CONTEXT.search(line):
        for m in SEED_NOUN.finditer(line):
            if not SEED_NAMED.match(line, m.end() - 4):  # counted once
                found.append(f"'seed' for the original code base {m.group(0)!r}")
    return found


passed = 0
failed = 0


def report(ok, message):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"text-check: {message}", file=sys.stderr)


# Self-test: (text, the line before it, whether it must fail).
CASES = [
    ("the goals of issue 35 with", "", True),
    ("Issue 35's last two candidates", "", True),
    ("### Issue 35: the cost", "", True),
    ("(issue 32, item 4): the one request", "", True),
    ("the contract of issues 3 and 4", "", True),
    ("fixed in PR 12", "", True),
    ("does not: aws-sdk-rust issue #1362, open)", "", False),
    ("/// issue #1362) and its clients", "/// as the AWS CLI reads it (aws-sdk-rust", False),
    ("/// issue #1362) and its clients", "/// as the AWS CLI reads it, see", True),
    ("it itself, aws-sdk-rust#1362, so", "", False),
    ("open a GitHub issue with the log", "", False),
    ("`git clone " + "/work/main /tmp/fb && cd /tmp/fb`", "", True),
    ("in " + "/root/.cargo/bin", "", True),
    ("see " + "/home/dev/devhive", "", True),
    ("`" + "/Users/me/src`", "", True),
    ("cd " + "/tmp/fresh && make test", "", True),
    ("work=$(mktemp -d " + "/tmp/devhive-services.XXXXXX)", "", False),
    ('rm -rf "$root"' + "/var/cache/apt", "", False),
    ("https://example.com" + "/home/index.html", "", False),
    ("the home page, the root of it", "", False),
    ("The " + "seed's algorithm (one GSI page", "", True),
    ("the same, ≥ 100× the " + "seed’s algorithm", "", True),
    ("let speedup = " + "seed_baseline;", "", True),
    ("pub const " + "SEED_SPEEDUP: f64 = 100.0;", "", True),
    ("eprintln!(\"  " + "seed baseline: skipped\")", "", True),
    ("copied from the " + "seed repo", "", True),
    ("(the " + "seed at N = 10,000: 4.1 s)", "", True),
    ("A seeded generator, so a failing run can be replayed (the seed is in the message).", "", False),
    ("run it again with --seed 7", "", False),
    ("    let seed = EpochMs::now().0 as u64;", "", False),
    ("fn mutated(seed: &'static str) -> impl Strategy", "", False),
    ("aws-lc's entropy source seeding its random generator", "", False),
    ("a seeded schedule of faults", "", False),
]
for text, before, bad in CASES:
    got = hits(text, before)
    report(bool(got) == bad, f"self-test: {text!r} should {'fail' if bad else 'pass'}, got {got}")


def files():
    listed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True, text=True, check=True).stdout.split("\0")
    me = os.path.abspath(__file__)
    for rel in sorted(set(p for p in listed if p)):
        full = os.path.join(ROOT, rel)
        if (os.path.basename(rel) in SKIP_NAMES or rel.endswith(SKIP_EXT) or not os.path.isfile(full)
                or os.path.abspath(full) == me):
            continue
        data = open(full, "rb").read()
        if b"\0" in data[:8192]:
            continue
        try:
            yield rel, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


checked = 0
for rel, text in files():
    checked += 1
    bad = 0
    previous = ""
    for number, line in enumerate(text.split("\n"), 1):
        for what in hits(line, previous):
            bad += 1
            print(f"text-check: {rel}:{number}: {what}: {line.strip()[:160]}", file=sys.stderr)
        previous = line
    if bad:
        failed += 1
    else:
        passed += 1

print(f"text-check: {checked} files, {len(CASES)} self-test cases", file=sys.stderr)
print(f"text-check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
