#!/usr/bin/env python3
"""Fails when a function body in the given C++ files is longer than LIMIT lines (the style rule
for ui/: a window that only wires, views of small functions). Braces are matched per file, with
string literals and // comments removed and namespace braces not counted.
Usage: check_function_length.py LIMIT FILE..."""
import re
import sys


def long_functions(path, limit):
    lines = open(path, encoding="utf-8").read().split("\n")
    depth = base = 0
    start = None
    for i, line in enumerate(lines):
        code = re.sub(r'"(\\.|[^"\\])*"', '""', line)
        code = re.sub(r"//.*", "", code)
        if re.match(r"\s*namespace\b.*\{", code):
            base += 1
            depth += 1
            continue
        if re.match(r"\}\s*//\s*namespace", line.strip()):
            base -= 1
            depth -= 1
            continue
        before = depth
        depth += code.count("{") - code.count("}")
        if before == base and depth > base and not re.match(r"\s*(struct|class|enum)\b", code):
            start = i
        if before > base and depth == base and start is not None:
            if i - start + 1 > limit:
                yield start + 1, i - start + 1, lines[start].strip()[:80]
            start = None


def main():
    limit = int(sys.argv[1])
    bad = [(f, *x) for f in sys.argv[2:] for x in long_functions(f, limit)]
    for f, line, n, text in bad:
        print(f"{f}:{line}: {n} lines (limit {limit}): {text}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
