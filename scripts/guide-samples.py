#!/usr/bin/env python3
"""Keep the code samples in the docs identical to the programs they come from.

A sample in a Markdown file is a fenced block right after an include line:

    <!-- include: examples/mysocket.c dial -->
    ```c
    ...
    ```

and its text is the part of that source file between two marker lines:

    /* guide: dial */
    ...
    /* guide: end */

(the markers themselves left out, the common indentation removed). The
programs in examples/ are built and run by the tests, so a sample that matches
its source is code that compiles and runs.

    scripts/guide-samples.py [--update] [--root DIR] FILE.md...

Checks, each failure printed as FILE:LINE: problem, exit status 1:
  - every include names a file and a marker that exist, and is followed by a
    fenced block equal to the marked text;
  - every ```c block in the files is such an included sample (no hand-written
    C that nothing compiles);
  - every marker in the sources is included somewhere (no stale markers).
--update rewrites the included blocks from the sources instead of failing on
a difference (the other checks still apply).
"""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r"^<!-- include: (\S+) ([A-Za-z0-9_-]+) -->\s*$")
BEGIN = re.compile(r"^\s*/\* guide: ([A-Za-z0-9_-]+) \*/\s*$")
END = re.compile(r"^\s*/\* guide: end \*/\s*$")
FENCE = re.compile(r"^```")


def dedent(lines):
    body = [l for l in lines if l.strip()]
    if not body:
        return lines
    cut = min(len(l) - len(l.lstrip(" ")) for l in body)
    return [l[cut:] if l.strip() else "" for l in lines]


def markers(path, errors):
    """name -> (line number of the begin marker, the sample's lines)."""
    found = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    name, start, body = None, 0, []
    for i, line in enumerate(lines, 1):
        m = BEGIN.match(line)
        if m and m.group(1) != "end":
            if name:
                errors.append(f"{path}:{i}: marker '{m.group(1)}' inside '{name}' (line {start})")
            name, start, body = m.group(1), i, []
            if name in found:
                errors.append(f"{path}:{i}: marker '{name}' used twice")
        elif END.match(line):
            if not name:
                errors.append(f"{path}:{i}: 'guide: end' without a marker")
            else:
                found[name] = (start, dedent(body))
            name = None
        elif name:
            body.append(line.rstrip())
    if name:
        errors.append(f"{path}:{start}: marker '{name}' has no 'guide: end'")
    return found


def main():
    ap = argparse.ArgumentParser(description="check (or --update) the docs' code samples")
    ap.add_argument("--update", action="store_true", help="rewrite samples from their sources")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("docs", nargs="+")
    args = ap.parse_args()
    os.chdir(args.root)

    errors = []
    sources = {}  # path -> markers
    used = set()
    checked = 0
    for doc in args.docs:
        with open(doc, encoding="utf-8") as f:
            lines = f.read().split("\n")
        out = []
        i = 0
        pending = None  # (path, name, line) of the include just seen
        while i < len(lines):
            line = lines[i]
            m = INCLUDE.match(line)
            if m:
                pending = (m.group(1), m.group(2), i + 1)
                out.append(line)
                i += 1
                continue
            if FENCE.match(line):  # an opening fence: blocks are consumed whole
                lang = line[3:].strip()
                j = i + 1
                while j < len(lines) and not FENCE.match(lines[j]):
                    j += 1
                if j == len(lines):
                    errors.append(f"{doc}:{i + 1}: unclosed code block")
                    out.extend(lines[i:])
                    break
                block = lines[i + 1 : j]
                if pending:
                    path, name, at = pending
                    if not path.startswith("examples/"):
                        errors.append(f"{doc}:{at}: {path}: samples come from examples/")
                    if path not in sources:
                        if os.path.isfile(path):
                            sources[path] = markers(path, errors)
                        else:
                            sources[path] = None
                    table = sources[path]
                    if table is None:
                        errors.append(f"{doc}:{at}: {path}: no such file")
                    elif name not in table:
                        errors.append(f"{doc}:{at}: {path}: no marker '{name}'")
                    else:
                        used.add((path, name))
                        want = table[name][1]
                        checked += 1
                        if block != want:
                            if args.update:
                                block = want
                            else:
                                k = next(
                                    (k for k in range(max(len(block), len(want)))
                                     if k >= len(block) or k >= len(want) or block[k] != want[k]),
                                    0)
                                errors.append(
                                    f"{doc}:{i + 2 + k}: sample differs from {path} "
                                    f"'{name}' (line {table[name][0] + 1 + k} there): "
                                    f"run scripts/guide-samples.py --update {doc}")
                elif lang == "c":
                    errors.append(f"{doc}:{i + 1}: a C sample without an include line: "
                                  "put the code in a program in examples/ and include it")
                out.append(line)
                out.extend(block)
                out.append(lines[j])
                pending = None
                i = j + 1
                continue
            if pending and line.strip():
                errors.append(f"{doc}:{pending[2]}: include not followed by a code block")
                pending = None
            out.append(line)
            i += 1
        if args.update:
            with open(doc, "w", encoding="utf-8") as f:
                f.write("\n".join(out))

    # Every marker in every example is somebody's sample.
    for root, _, files in os.walk("examples"):
        for fn in sorted(files):
            path = os.path.join(root, fn)
            if not fn.endswith((".c", ".h")):
                continue
            if path not in sources:
                sources[path] = markers(path, errors)
            for name, (at, _) in (sources[path] or {}).items():
                if (path, name) not in used:
                    errors.append(f"{path}:{at}: marker '{name}' is not included by "
                                  f"{', '.join(args.docs)}")

    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        return 1
    print(f"guide-samples: {checked} samples match their sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
