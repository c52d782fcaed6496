#!/usr/bin/env python3
"""The half of the reference gate that doxygen does not do itself.

Doxygen (1.9) warns about an undocumented function, parameter, type, field or
macro, but not about an undocumented value of a documented enum. This reads
doxygen's XML output and fails, naming each, when an enum value has no
description.

Usage: scripts/docs-check.py XML_DIR   (build/docs/xml after `make docs`)
"""
import pathlib
import sys
import xml.etree.ElementTree as ET


def described(node):
    """True when the node's brief or detailed description has any text."""
    for tag in ("briefdescription", "detaileddescription"):
        d = node.find(tag)
        if d is not None and "".join(d.itertext()).strip():
            return True
    return False


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    xml_dir = pathlib.Path(argv[1])
    files = sorted(xml_dir.glob("*_8h.xml"))
    if not files:
        print(f"docs-check: no header XML in {xml_dir}", file=sys.stderr)
        return 2
    missing = []
    for f in files:
        for enum in ET.parse(f).iter("memberdef"):
            if enum.get("kind") != "enum":
                continue
            loc = enum.find("location")
            where = f"{loc.get('file')}:{loc.get('line')}" if loc is not None else f.name
            for v in enum.findall("enumvalue"):
                if not described(v):
                    missing.append(f"{where}: error: enum value {v.findtext('name')} of "
                                   f"{enum.findtext('name')} is not documented.")
    for m in missing:
        print(m, file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
