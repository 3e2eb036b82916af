#!/usr/bin/env bash
# Summary table of a bench_fake_quantize run (Google Benchmark JSON output).
#
#   bench/summarize.sh results.json              # markdown tables on stdout
#   bench/summarize.sh --cpu-time results.json   # the same from CPU time (the benchmark thread's;
#                                                # for par the main thread's) instead of wall-clock:
#                                                # far less distorted on a loaded machine
#
# For every direction, layout, size and policy: the streaming-copy bandwidth
# over the same bytes (one thread for seq/simd, all threads for par), each
# kernel's bandwidth and its fraction of that copy, and the StableQAT / STE
# time ratios; for a bench_estimators run, every estimator's forward + backward
# time over the STE's. Uses the median aggregate of each benchmark when the run had
# --benchmark_repetitions, the single measurement otherwise. bash + awk only.
set -euo pipefail

clock=real_time
if [ "${1:-}" = "--cpu-time" ]; then
  clock=cpu_time
  shift
fi
if [ $# -ne 1 ] || [ ! -r "$1" ]; then
  echo "usage: $0 [--cpu-time] results.json" >&2
  exit 2
fi

awk '
function value(line) {  # the JSON value after the colon, unquoted, without trailing comma
  sub(/^[^:]*:[ ]*/, "", line); sub(/,[ ]*$/, "", line); gsub(/"/, "", line)
  return line
}
function ns(t, unit) {
  if (unit == "us") return t * 1e3
  if (unit == "ms") return t * 1e6
  if (unit == "s") return t * 1e9
  return t
}
function gbs(x) { return (x > 0) ? sprintf(x >= 1e8 ? "%.1f" : "%.3g", x / 1e9) : "-" }
function frac(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-" }
function ratio(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-" }

/"date":/        { date = value($0) }
/"host_name":/   { host = value($0) }
/"num_cpus":/    { cpus = value($0) }
/"mhz_per_cpu":/ { mhz = value($0) }
/"load_avg":/    { load = value($0); gsub(/[\[\]]/, "", load); gsub(/,/, " ", load) }
/"par_threads":/ { par_threads = value($0) }
/"simd_arch":/   { arch = value($0) }
/"cpu":/         { cpu = value($0) }

/"run_name":/       { name = value($0); sub(/\/real_time$/, "", name) }
/"run_type":/       { type = value($0) }
/"aggregate_name":/ { aggregate = value($0) }
$0 ~ "\"" clock "\":" { real = value($0) }
/"time_unit":/      { unit = value($0) }
/"bytes_per_second":/ { bytes = value($0) }
/"items_per_second":/ { items = value($0) }
/^    }/ {
  if (name != "" && (type == "iteration" && !(name in have_median) || aggregate == "median")) {
    if (aggregate == "median") have_median[name] = 1
    t[name] = ns(real + 0, unit); b[name] = bytes + 0; it[name] = items + 0
    split(name, part, "/")
    key = part[1] SUBSEP part[3] SUBSEP part[5]
    if (part[3] != "-" && !(key in seen)) { seen[key] = 1 }
    if (!(part[5] in have_size)) { have_size[part[5]] = 1; sizes[++nsizes] = part[5] + 0 }
  }
  name = ""; type = ""; aggregate = ""; real = ""; unit = "ns"; bytes = 0; items = 0
}

# The estimator table (bench_estimators: fwdbwd/<estimator>/<layout>/<policy>/<floats>):
# forward + backward time of each estimator over the STE time of the same run.
function efficiency_table(   nest, est, label, lay, layout, g, n, p, pol, ste, row, e, lo, hi, r, other, printed) {
  nest = split("ste_again fourier1 fourier3 dsq paretoq ewgs", est, " ")
  split("STE again|StableQAT K=1|StableQAT K=3|DSQ|ParetoQ (SEQ+STE)|EWGS", label, "|")
  lo = 0; hi = 0
  for (other in t) {  # noise gauge: the STE registered twice, identical code
    if (other !~ /^fwdbwd\/ste_again\//) continue
    ste = other; sub(/ste_again/, "ste", ste)
    if (!(ste in t) || t[ste] <= 0) continue
    r = t[other] / t[ste]
    if (lo == 0 || r < lo) lo = r
    if (r > hi) hi = r
  }
  printed = 0
  for (lay = 1; lay <= 2; ++lay) {
    layout = lay == 1 ? "per_tensor" : "per_channel"
    for (g = 1; g <= nsizes; ++g) {
      n = sizes[g]
      for (p = 1; p <= 2; ++p) {
        pol = p == 1 ? "simd" : "par"
        ste = "fwdbwd/ste/" layout "/" pol "/" n
        if (!(ste in t)) continue
        if (!printed) {
          printf "\nEstimators: forward + backward time / STE time (fwdbwd, bench_estimators; STE column in us)\n"
          if (hi > 0) printf "Noise gauge: the same STE kernel run twice (STE again / STE) ranges %.2f .. %.2f in this run.\n", lo, hi
          printf "\n| floats | layout | policy | STE us |"
          for (e = 1; e <= nest; ++e) printf " %s |", label[e]
          printf "\n|---:|---|---|---:|"
          for (e = 1; e <= nest; ++e) printf "---:|"
          printf "\n"
          printed = 1
        }
        row = sprintf("| %s | %s | %s | %.2f |", n, layout, pol, t[ste] / 1e3)
        for (e = 1; e <= nest; ++e) row = row " " ratio(t["fwdbwd/" est[e] "/" layout "/" pol "/" n], t[ste]) " |"
        print row
      }
    }
  }
}

END {
  printf "Run: %s on %s (%s CPUs, %s MHz nominal), load average %s; simd = %s, par = %s threads.\n", \
         date, host, cpus, mhz, load, arch, par_threads
  if (cpu != "") printf "CPU: %s.\n", cpu
  if (clock == "cpu_time") printf "Times and ratios from CPU time (--cpu-time), not wall-clock; GB/s columns are wall-clock.\n"
  for (key in seen) { split(key, kp, SUBSEP); if (kp[1] == "fwd" || kp[1] == "bwd") have_directions = 1 }
  if (have_directions) {
  printf "GB/s (1e9 B/s) over the bytes each kernel must move (fwd 8, bwd 12 per float); x copy = fraction of the\n"
  printf "streaming copy"
  printf " of the same bytes (1 thread for seq/simd, all threads for par); F1 = fourier_surrogate<1> (A = 0.21),\n"
  printf "F3 = fourier_surrogate<3>; ratios are time / STE time. Medians of the repetitions.\n"
  }
  # Noise gauge: the forward pass ignores the surrogate, so forward STE, F1 and
  # F3 run the very same code; their spread is the run-to-run noise of the machine.
  lo = 0; hi = 0
  for (name in t) {
    if (name !~ /^fwd\/fourier[13]\//) continue
    other = name; sub(/fourier[13]/, "ste", other)
    if (!(other in t) || t[other] <= 0) continue
    r = t[name] / t[other]
    if (lo == 0 || r < lo) lo = r
    if (r > hi) hi = r
  }
  if (hi > 0) printf "Noise gauge: forward F1/STE and F3/STE (identical code) range %.2f .. %.2f in this run.\n", lo, hi
  for (i = 2; i <= nsizes; ++i) {  # sizes in increasing order (random interleaving mixes the JSON order)
    v = sizes[i]
    for (j = i - 1; j >= 1 && sizes[j] > v; --j) sizes[j + 1] = sizes[j]
    sizes[j + 1] = v
  }
  efficiency_table()
  ndir = split("fwd bwd", dirs, " "); npol = split("seq simd par", pols, " ")
  for (d = 1; d <= ndir; ++d) {
    for (lay = 1; lay <= 2; ++lay) {
      layout = lay == 1 ? "per_tensor" : "per_channel"
      printed = 0
      for (g = 1; g <= nsizes; ++g) {
        n = sizes[g]
        if (!((dirs[d] SUBSEP layout SUBSEP n) in seen)) continue
        if (!printed) {
          printf "\n%s, %s\n\n", dirs[d], layout
          printf "| floats | policy | stream copy GB/s | memcpy GB/s | STE GB/s (x copy) | F1 GB/s (x copy) | F3 GB/s (x copy) | F1/STE | F3/STE | F1 Gfloat/s |\n"
          printf "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
          printed = 1
        }
        for (p = 1; p <= npol; ++p) {
          pol = pols[p]; base = pol == "par" ? "par" : "1t"
          copy = b[dirs[d] "/stream_copy/-/" base "/" n]; mem = b[dirs[d] "/memcpy/-/" base "/" n]
          ste = dirs[d] "/ste/" layout "/" pol "/" n
          f1 = dirs[d] "/fourier1/" layout "/" pol "/" n
          f3 = dirs[d] "/fourier3/" layout "/" pol "/" n
          if (!(ste in t) && !(f1 in t) && !(f3 in t)) continue
          printf "| %s | %s | %s | %s | %s (%s) | %s (%s) | %s (%s) | %s | %s | %s |\n", n, pol, \
                 gbs(copy), gbs(mem), \
                 gbs(b[ste]), frac(b[ste], copy), gbs(b[f1]), frac(b[f1], copy), gbs(b[f3]), frac(b[f3], copy), \
                 ratio(t[f1], t[ste]), ratio(t[f3], t[ste]), (it[f1] > 0 ? sprintf("%.2f", it[f1] / 1e9) : "-")
        }
      }
    }
  }
}
' clock="$clock" "$1"
