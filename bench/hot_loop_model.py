#!/usr/bin/env python3
"""Instruction-level model of the backward hot loops in a benchmark binary.

    bench/hot_loop_model.py BINARY CPU [CPU ...]     e.g. CPU = znver4, znver3, skylake

For every float `backward_row_piece` instantiation of exec::simd in BINARY (the
per-row backward loop that per_tensor and per_channel run; the plain-store
variant), finds its pair loop (the innermost loop holding the two batch stores
of dx, i.e. two batches of elements) and runs llvm-mca on it. Prints, per
surrogate and CPU: instructions per pair, the modelled cycles per pair, and how
many of them keep the multiply/FMA pipes (Zen: FP0 + FP1, averaged) and the
add/logic pipes (FP2 + FP3) busy. The ratio of two surrogates' modelled cycles is
the in-cache ratio the model predicts; the multiply/FMA figure is the floor
that no loop restructuring removes (docs/benchmarks.md, "Instruction-level
floor").

Needs objdump and an llvm-mca that knows the CPU (Debian's llvm-19 has znver4:
`make deps-model`). A model, not a measurement: compare with `make bench`.
"""
import re
import shutil
import subprocess
import sys
import tempfile

KERNEL = "backward_row_piece<false, false, float, float, stableqat::no_offset, stableqat::"
STORE = re.compile(r"vmovup[sd]\s+%[xyz]mm\d+,\s*-?(0x[0-9a-f]+)?\(")
JUMP = re.compile(r"j\w+\s+([0-9a-f]+)")


def find_mca():
    for name in ("llvm-mca-19", "llvm-mca-20", "llvm-mca-18", "llvm-mca-17", "llvm-mca"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("hot_loop_model: no llvm-mca on PATH (make deps-model installs Debian's llvm-19)")


def estimator_of(head):
    """'surrogate' (uniform grid) or 'levels + surrogate' of a backward_row_piece instantiation."""
    rest = head[head.index(KERNEL) + len(KERNEL) - len("stableqat::"):]
    depth, arguments, current = 0, [], []
    for ch in rest:
        if ch == "<":
            depth += 1
        elif ch == ">":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            arguments.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    arguments.append("".join(current).strip())
    levels, surrogate = (a.replace("stableqat::", "") for a in arguments[:2])
    surrogate = {"fourier_surrogate<0>": "ste", "fourier_surrogate<1>": "fourier_surrogate<1> (F1)",
                 "fourier_surrogate<3>": "fourier_surrogate<3> (F3)"}.get(surrogate, surrogate)
    return surrogate if levels.startswith("uniform_levels") else f"{levels.split('<')[0]} + {surrogate}"


def pair_loops(binary):
    """{estimator: [instruction text]} of each kernel's smallest loop with two dx stores."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", binary],
                          capture_output=True, text=True, check=True).stdout
    loops = {}
    for function in re.split(r"\n(?=[0-9a-f]+ <)", text):
        head = function.split("\n", 1)[0]
        if KERNEL not in head:
            continue
        instructions = []
        for line in function.split("\n")[1:]:
            if re.match(r"\s+[0-9a-f]+:\t", line):
                address, body = line.split(":\t", 1)
                instructions.append((int(address, 16), re.sub(r"\s+<.*>", "", body.strip())))
        best = None
        for address, body in instructions:
            jump = JUMP.match(body)
            if not jump or int(jump.group(1), 16) >= address:
                continue
            loop = [b for a, b in instructions if int(jump.group(1), 16) <= a <= address]
            if sum(bool(STORE.match(b)) for b in loop) == 2 and (best is None or len(loop) < len(best)):
                best = loop
        if best:
            name = estimator_of(head)
            if name not in loops or len(best) < len(loops[name]):
                loops[name] = [b for b in best if not re.match(r"(j\w+|cmp)\s", b)]
    return loops


def model(mca, cpu, loop, iterations=400):
    with tempfile.NamedTemporaryFile("w", suffix=".s") as source:
        source.write("\n".join(loop) + "\n")
        source.flush()
        out = subprocess.run([mca, f"-mcpu={cpu}", f"-iterations={iterations}", source.name],
                             capture_output=True, text=True).stdout
    cycles = re.search(r"Total Cycles:\s+(\d+)", out)
    if not cycles:
        return None
    legend = dict(re.findall(r"\[([0-9.]+)\]\s+-\s+(\S+)", out.split("Resource pressure per iteration:")[0]))
    lines = out.split("Resource pressure per iteration:")[1].strip().split("\n")
    columns = re.findall(r"\[([0-9.]+)\]", lines[0])
    values = lines[1].split()
    pressure = {legend[c]: (0.0 if v == "-" else float(v)) for c, v in zip(columns, values)}

    def pipes(*names):
        found = [pressure[n] for n in pressure if any(n.endswith(x) for x in names)]
        return sum(found) / len(found) if found else float("nan")

    # Zen: FP0/FP1 multiply and FMA, FP2/FP3 add; Intel: ports 0/1 FMA, port 5 shuffles and logic.
    if any(n.endswith("FP0") for n in pressure):
        return int(cycles.group(1)) / iterations, pipes("FP0", "FP1"), pipes("FP2", "FP3")
    return int(cycles.group(1)) / iterations, pipes("Port0", "Port1"), pipes("Port5")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mca = find_mca()
    binary, cpus = sys.argv[1], sys.argv[2:]
    loops = pair_loops(binary)
    if not loops:
        sys.exit(f"hot_loop_model: no float backward_row_piece pair loop in {binary}")
    print(f"{binary}: backward_row_piece pair loops (2 batches), {mca}")
    print("Per pair: modelled cycles, then the busy cycles of each multiply/FMA pipe (Zen FP0/FP1, Intel")
    print("ports 0/1) and of each add pipe (Zen FP2/FP3; Intel: port 5).")
    print("| estimator | instructions | " + " | ".join(f"{c}: cycles, FMA pipe, add pipe" for c in cpus) + " |")
    print("|---|---:|" + "---:|" * len(cpus))
    for name in sorted(loops, key=lambda n: len(loops[n])):
        cells = []
        for cpu in cpus:
            result = model(mca, cpu, loops[name])
            cells.append("-" if result is None else "%.1f, %.1f, %.1f" % result)
        print(f"| {name} | {len(loops[name])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
