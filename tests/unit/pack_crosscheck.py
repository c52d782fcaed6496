#!/usr/bin/env python3
"""Cross-check sockmsg's pack module against CPython's struct module.

Run by tests/unit/test_pack_python.c (see the comment there for the protocol):

    pack_crosscheck.py C2PY_FILE PY2C_FILE SEED

C2PY_FILE holds cases packed by C, one per line, tab-separated:
    format, input value tokens ("-" for an unpack-only case of random bytes),
    packed bytes in hex (or ERR:range / ERR:format when C refused the case),
    value tokens C unpacked from those bytes.
This script packs the inputs with struct.pack and compares the bytes, unpacks
C's bytes with struct.unpack and compares the values, and checks that struct
refuses what C refused. Then it writes PY2C_FILE: NCASES + NUNPACK cases of
its own, from its own generator seeded with SEED, in the same format, for C
to check.

Tokens: i:<decimal> (integer codes), c:<2 hex> (c), ?:<int> (?), d:<16 hex>
(e f d: the binary64 bits, so floats compare exactly; d:nan and d:-nan for
NaNs, whose payloads are not compared), b:<hex> (s p).
Exit status 0 when everything matched; mismatches are printed with the seed.
Standard library only.
"""

import math
import random
import re
import struct
import sys

NCASES = 300  # pack cases
NUNPACK = 100  # unpack-only cases
CODES = "xcbB?hHiIlLqQefdsp"
ITEM = re.compile(r"(\d*)([" + re.escape(CODES) + r"])")


def value_codes(fmt):
    """The code of each value fmt takes, in order (fmt is well-formed)."""
    body = fmt[1:] if fmt[:1] in ("@", "=", "<", ">", "!") else fmt
    codes = []
    for count, code in ITEM.findall(body.replace(" ", "")):
        n = int(count) if count else 1
        if code in "sp":
            codes.append(code)
        elif code != "x":
            codes.extend(code * n)
    return codes


def decode(tok):
    tag, _, val = tok.partition(":")
    if tag in ("i", "?"):
        return int(val)
    if tag == "c":
        return bytes.fromhex(val)
    if tag == "d":
        return struct.unpack(">d", bytes.fromhex(val))[0]
    if tag == "b":
        return bytes.fromhex(val)
    raise ValueError("bad token %r" % tok)


def encode(code, v):
    if code in "bhilqBHILQ":
        return "i:%d" % v
    if code == "c":
        return "c:" + v.hex()
    if code == "?":
        return "?:%d" % int(v)
    if code in "efd" and v != v:
        return "d:-nan" if math.copysign(1.0, v) < 0 else "d:nan"
    if code in "efd":
        return "d:" + struct.pack(">d", v).hex()
    return "b:" + bytes(v).hex()


def encode_all(fmt, values):
    return " ".join(encode(c, v) for c, v in zip(value_codes(fmt), values))


def check_c_cases(path, seed):
    failures = refused = n = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fmt, vals, hexs, couts = line.rstrip("\n").split("\t")
            values = [] if vals == "-" else [decode(t) for t in vals.split()]
            where = "seed %d C case %d fmt %r" % (seed, n, fmt)
            if hexs.startswith("ERR:"):
                refused += 1
                try:
                    got = struct.pack(fmt, *values)
                except (struct.error, OverflowError):
                    continue
                print("%s: C refused it (%s), struct.pack gave %s" % (where, hexs, got.hex()))
                failures += 1
                continue
            cbytes = bytes.fromhex(hexs)
            if vals == "-":  # unpack only
                pouts = encode_all(fmt, struct.unpack(fmt, cbytes))
                if pouts != couts:
                    print("%s: unpacked values differ\n  bytes  %s\n  c      %s\n  python %s"
                          % (where, hexs, couts, pouts))
                    failures += 1
                continue
            try:
                pbytes = struct.pack(fmt, *values)
                size = struct.calcsize(fmt)
                pouts = encode_all(fmt, struct.unpack(fmt, cbytes))
            except (struct.error, OverflowError) as e:
                print("%s: struct raised %r\n  values %s" % (where, e, vals))
                failures += 1
                continue
            if pbytes != cbytes or size != len(cbytes):
                print("%s: bytes differ\n  values %s\n  c      %s\n  python %s"
                      % (where, vals, hexs, pbytes.hex()))
                failures += 1
            if pouts != couts:
                print("%s: unpacked values differ\n  bytes  %s\n  c      %s\n  python %s"
                      % (where, hexs, couts, pouts))
                failures += 1
    return n, refused, failures


def round_value(rng, prec, emin, emax):
    """A double a field with prec fraction bits and exponent >= emin must round:
    from below its subnormals up to emax, half the time exactly halfway."""
    e = rng.randint(emin - prec - 1, emax)
    tie = 52 - prec + max(0, emin - e) - 1  # the half-ulp bit
    frac = rng.getrandbits(52)
    if rng.random() < 0.5:
        frac &= ~((1 << (tie + 1)) - 1)
        if tie < 52:
            frac |= 1 << tie
    bits = (rng.getrandbits(1) << 63) | ((e + 1023) << 52) | frac
    return struct.unpack("<d", bits.to_bytes(8, "little"))[0]


def gen_value(rng, code, native):
    if code in "bhilqBHILQ":
        size = struct.calcsize(("@" if native else "<") + code)
        if code.islower():
            lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
        else:
            lo, hi = 0, (1 << (8 * size)) - 1
        return rng.choice([lo, hi, 0, hi // 2, rng.randint(lo, hi), rng.randint(lo, hi)])
    if code == "c":
        return bytes([rng.randrange(256)])
    if code == "?":
        return rng.choice([0, 1, 2, -5, True, False])
    if code in "ef" and rng.random() < 0.33:
        return round_value(rng, *{"e": (10, -14, 14), "f": (23, -126, 126)}[code])
    fmt, nbits = {"e": ("<e", 16), "f": ("<f", 32), "d": ("<d", 64)}[code]
    while True:
        v = struct.unpack(fmt, rng.getrandbits(nbits).to_bytes(nbits // 8, "little"))[0]
        if v == v:  # not NaN: NaN payloads are not part of the contract
            return v


def gen_case(rng):
    order = rng.choice(["", "@", "=", "<", ">", "!"])
    native = order in ("", "@")
    items, values = [], []
    for _ in range(rng.randint(1, 6)):
        code = rng.choice(CODES)
        if code in "sp":
            lo = 1 if code == "p" else 0  # CPython 3.11 cannot unpack "0p"
            count = rng.randint(250, 300) if rng.random() < 0.1 else rng.randint(lo, 12)
            items.append("%d%s" % (count, code))
            near = rng.randint(max(0, count - 4), count + 3)  # where truncation meets padding
            values.append(rng.randbytes(rng.choice([near, rng.randint(0, count + 3)])))
            continue
        count = rng.choice([None, None, 0, 1, 2, 3, 4])
        items.append(("" if count is None else str(count)) + code)
        if code != "x":
            values.extend(gen_value(rng, code, native) for _ in range(1 if count is None else count))
    fmt = order + rng.choice(["", "", " "]).join(items)

    # A few cases C must refuse: a bad format, a value out of range.
    err = None
    r = rng.random()
    if r < 0.03:
        fmt += rng.choice(["z", "9", "!", "<"])
        err = "format"
    elif r < 0.09 and values:
        k = rng.randrange(len(values))
        code = value_codes(fmt)[k]
        size = struct.calcsize(("@" if native else "<") + code) if code in "bhilBHIL" else 0
        if code in "bhil" and size < 8:
            values[k] = rng.choice([-(1 << (8 * size - 1)) - 1, 1 << (8 * size - 1)])
            err = "range"
        elif code in "BHIL" and size < 8:
            values[k] = 1 << (8 * size)
            err = "range"
        elif code == "e":
            values[k] = rng.choice([65520.0, -1e10])
            err = "range"
        elif code == "f" and not native:  # native f silently gives inf in CPython
            values[k] = rng.choice([3.4028235677973366e38, -1e300])
            err = "range"
    return fmt, values, err


def write_py_cases(path, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(NCASES):
            fmt, values, err = gen_case(rng)
            good = fmt[:-1] if err == "format" else fmt
            tokens = encode_all(good, values)
            if err:
                try:
                    struct.pack(fmt, *values)
                except (struct.error, OverflowError):
                    f.write("%s\t%s\tERR:%s\t\n" % (fmt, tokens, err))
                    continue
                raise AssertionError("generator: %r %r should fail" % (fmt, values))
            packed = struct.pack(fmt, *values)
            outs = encode_all(fmt, struct.unpack(fmt, packed))
            f.write("%s\t%s\t%s\t%s\n" % (fmt, tokens, packed.hex(), outs))
        # Unpack-only: random bytes (? other than 0/1, p lengths over the
        # field, NaNs, subnormals).
        for _ in range(NUNPACK):
            fmt, _, err = gen_case(rng)
            while err:
                fmt, _, err = gen_case(rng)
            raw = rng.randbytes(struct.calcsize(fmt))
            outs = encode_all(fmt, struct.unpack(fmt, raw))
            f.write("%s\t-\t%s\t%s\n" % (fmt, raw.hex(), outs))
    return NCASES + NUNPACK


def main():
    if len(sys.argv) != 4:
        print("usage: pack_crosscheck.py C2PY_FILE PY2C_FILE SEED", file=sys.stderr)
        return 2
    c2py, py2c, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    n, refused, failures = check_c_cases(c2py, seed)
    written = write_py_cases(py2c, seed)
    print("pack_crosscheck.py (Python %s): %d C cases checked (%d refused by both), "
          "%d failures; wrote %d Python cases"
          % (sys.version.split()[0], n, refused, failures, written))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
