"""Regenerates link/startup.ld: the functions gantry runs at start-up and in its signal path, laid out
together at the front of the executable.

Why: the kernel maps file pages in 64 KiB windows around each page a process touches (fault-around).
gantry's start-up runs ~300 KiB of code, but in a default layout it is spread over ~40 such windows
of a multi-megabyte text section, so ~2.6 MiB of the binary becomes resident. Grouping those
functions at the front of `.text` makes them a handful of windows.

How: run a release binary under valgrind's callgrind through the paths an init takes (flags mode
start and exit, forwarding a signal, SIGTERM shutdown, `up` on examples/hello), collect every function
of the executable that ran, and write a linker script that places their `.text.<symbol>` sections
first. Crate disambiguators in the (v0-mangled) names differ between targets and builds, so they are
replaced by wildcards: the same script serves the glibc and the musl build, and a stale entry only
loses locality, never breaks the link. The script's output section is `.text` itself: lld then puts
every other function after the listed ones in that one section (valgrind, for one, reads symbols only
in `.text`). GNU ld, which build.rs avoids where the toolchain has rust-lld, makes a second `.text`.

Usage: python3 link/gen_startup_order.py BINARY [BINARY...]   (needs valgrind)
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "link", "startup.ld")

SCENARIOS = [
    ["--", "/bin/true"],
    # Long enough that gantry, slowed down by valgrind, is idle in the runtime's park before the job
    # ends: an init spends its life there, yet the quick scenarios never reach it.
    ["--", "/bin/sleep", "3"],
    ["--", "/bin/sh", "-c", "sleep 2; kill -USR1 $PPID; kill -HUP $PPID; sleep 1; exit 3"],
    ["--", "/bin/sh", "-c", "kill -TERM $PPID; sleep 5"],
    ["--", "/bin/sh", "-c", "exit 0", "---", "/bin/sh", "-c", "sleep 0.5"],
    ["up", "-c", os.path.join(ROOT, "examples", "hello")],
    # The control API's start-up (its servers, the output tees that keep job lines for it).
    ["up", "-c", os.path.join(ROOT, "examples", "hello"), "--api", "--api-listen-address",
     "unix://" + os.path.join(tempfile.gettempdir(), f"gantry-startup-order-{os.getpid()}.sock")],
    ["check", "-c", os.path.join(ROOT, "examples", "hello")],
]


def functions_run(binary, args):
    """Names of the functions of `binary` that ran, in callgrind's order of first appearance."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        env = dict(os.environ, GANTRY_LOG="error")
        subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
                        binary] + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=300)
        objects, names, current, seen = {}, {}, None, []
        base = os.path.realpath(binary)
        for line in open(out):
            m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    objects[m.group(2)] = os.path.realpath(m.group(3))
                if m.group(1) == "ob":
                    current = objects.get(m.group(2))
                continue
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1) == "fn" and current == base:
                    seen.append(names[m.group(2)])
        return seen


def pattern(symbol):
    """The symbol's section-name glob, with the hashes that differ between builds replaced by `*`.

    With v0 mangling (.cargo/config.toml) a name spells out its path and generic arguments; only the
    crate disambiguators (`Cs<base-62>_` before a crate name) depend on the target and build. Legacy
    names (C code, or a build without v0) end in a hash that also tells generic instances apart, so
    their wildcard matches every instance."""
    s = re.sub(r"\.llvm\.\d+$", "", symbol)
    if s.startswith("_ZN"):
        s = re.sub(r"17h[0-9a-f]{16}E$", "17h*", s)
    elif s.startswith("_R"):
        s = re.sub(r"Cs[0-9A-Za-z]+_(?=[0-9])", "Cs*_", s)
    if not re.fullmatch(r"[A-Za-z0-9_$.*]+", s):
        return None
    return s


def aliases(binary):
    """Every symbol name of the binary mapped to all names at its address. LLVM merges functions
    with identical code into one and keeps the others as aliases; the section is named after only
    one of them, and valgrind may report any."""
    at, where = {}, {}
    nm = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tTwW":
            at.setdefault(fields[0], []).append(fields[2])
            where[fields[2]] = fields[0]
    return {name: at[addr] for name, addr in where.items()}


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit(__doc__)
    order, have = [], set()
    for binary in binaries:
        same = aliases(binary)
        for args in SCENARIOS:
            ran = functions_run(binary, args)
            if len(ran) < 100:
                sys.exit(f"{binary} {' '.join(args)}: only {len(ran)} functions ran; is valgrind working?")
            for sym in (alias for name in ran for alias in same.get(name, [name])):
                p = pattern(sym)
                if p and p not in have:
                    have.add(p)
                    order.append(p)
    with open(OUT + ".tmp", "w") as f:
        f.write("/* Generated by link/gen_startup_order.py: the code gantry runs at start-up and in its\n"
                "   signal path, placed first so that it is resident in a few pages. Do not edit. */\n")
        f.write("SECTIONS\n{\n  .text :\n  {\n")
        for p in order:
            # LTO may rename a local function `NAME.llvm.<number>`, a new number each build, and a
            # `#[cold]` function (such as the first growth of a Vec, which every start-up runs)
            # is in a `.text.unlikely.` section.
            names = " ".join(f"{prefix}{p}{suffix}" for prefix in (".text.", ".text.unlikely.")
                             for suffix in ("", ".llvm.*"))
            f.write(f"    *({names})\n")
        f.write("  }\n}\nINSERT AFTER .eh_frame;\n")
    os.replace(OUT + ".tmp", OUT)
    print(f"{OUT}: {len(order)} functions")


if __name__ == "__main__":
    main()
