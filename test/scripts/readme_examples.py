#!/usr/bin/env python3
"""The README's SQL examples, run against the demo's data.

Loads scripts/generate.sql with the demo's arguments (3 companies, 5 000 time
records each, seed 42) into this script's database, then runs every ```sql
block of README.md in order, in one session, statement by statement (blocks
whose info string says readme-test:skip are set-up for other servers).  A
statement that errors fails the test; a statement followed by a comment
"-- <output>" must give that output: JSON compared as JSON, anything else as
the text of the first column.
"""
import json
import os
import re
import sys

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from checks import check, finish  # noqa: E402

REPO = os.environ.get("MOMENT_REPO", os.path.dirname(os.path.dirname(HERE)))


def sql_blocks(markdown):
    """(line number, text) of each runnable ```sql block."""
    blocks = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        match = re.match(r"^```sql(.*)$", lines[i])
        if match:
            start = i + 1
            j = start
            while not lines[j].startswith("```"):
                j += 1
            if "readme-test:skip" not in match.group(1):
                blocks.append((start + 1, "\n".join(lines[start:j])))
            i = j
        i += 1
    return blocks


def statements(block):
    """(statement, expected output or None): statements split on top-level
    semicolons (quotes, dollar quotes and comments respected); the output is
    the "-- ..." comment right after a statement, if it looks like one."""
    result = []
    current = []
    i = 0
    text = block
    pending = None
    while i < len(text):
        c = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            comment = text[i + 2:end].strip()
            if not "".join(current).strip() and result and result[-1][1] is None and pending is None \
                    and (comment[:1] in "{[" or re.fullmatch(r"-?\d+(\.\d+)?", comment)):
                result[-1] = (result[-1][0], comment)
            i = end
            continue
        if c == "'":
            end = i + 1
            while True:
                end = text.index("'", end)
                if text.startswith("''", end):
                    end += 2
                    continue
                break
            current.append(text[i:end + 1])
            i = end + 1
            continue
        if c == "$":
            tag = re.match(r"\$[A-Za-z_]*\$", text[i:])
            if tag:
                end = text.index(tag.group(0), i + len(tag.group(0)))
                current.append(text[i:end + len(tag.group(0))])
                i = end + len(tag.group(0))
                continue
        if c == ";":
            statement = "".join(current).strip()
            if statement:
                result.append((statement, None))
            current = []
            i += 1
            continue
        current.append(c)
        i += 1
    if "".join(current).strip():
        result.append(("".join(current).strip(), None))
    return result


def same_output(expected, got):
    if expected[:1] in "{[":
        try:
            return json.loads(expected) == (got if not isinstance(got, str) else json.loads(got))
        except ValueError:
            return False
    return str(got) == expected


def main():
    connection = psycopg2.connect("")
    connection.autocommit = True
    cursor = connection.cursor()
    with open(os.path.join(REPO, "scripts", "generate.sql")) as generator:
        cursor.execute(generator.read())
    cursor.execute("SELECT moment_gen.generate(3, 5000, 42)")
    with open(os.path.join(REPO, "README.md")) as readme:
        blocks = sql_blocks(readme.read())
    check(len(blocks) >= 3, "the README has SQL examples to run (%d blocks)" % len(blocks))
    # roles are cluster-wide: those the examples create must not be left from an earlier run
    roles = set()
    for _, block in blocks:
        roles.update(re.findall(r"CREATE ROLE (\w+)", block))
    for role in sorted(roles):
        cursor.execute("DROP ROLE IF EXISTS %s" % role)
    ran = compared = 0
    for line, block in blocks:
        for statement, expected in statements(block):
            first = statement.split("\n")[0][:90]
            try:
                cursor.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
            except psycopg2.Error as error:
                check(False, "README line %d: %s" % (line, first),
                      "%s %s" % (error.pgcode, error.pgerror))
                continue
            ran += 1
            if expected is not None:
                compared += 1
                got = rows[0][0] if rows else None
                check(same_output(expected, got), "README line %d: %s gives the output shown" % (line, first),
                      got)
    check(ran > 10, "%d statements ran, %d outputs compared" % (ran, compared))
    cursor.execute("RESET ROLE")
    for role in sorted(roles):
        cursor.execute("DROP OWNED BY %s" % role)
        cursor.execute("DROP ROLE %s" % role)
    finish()


if __name__ == "__main__":
    main()
