# Renders the CSV files of the surrogate_curves example (make docs).
#   gnuplot -e "datadir='build/.../surrogate_curves'; outdir='docs/img'" examples/gnuplot/surrogates.gp
# Writes outdir/surrogate_gradients.{svg,png}, outdir/baseline_gradients.{svg,png}
# (DSQ, EWGS and ParetoQ's SEQ grid beside StableQAT) and outdir/classic_fourier_round.{svg,png}.
if (!exists("datadir")) datadir = "."
if (!exists("outdir")) outdir = "."
set datafile separator ","
set grid
set xrange [-1:1]
set xtics 0.5
unset xlabel  # x is in units of the step; the panel titles say so
derivatives = datadir."/surrogate_derivatives.csv"
functions = datadir."/fourier_round.csv"
baselines = datadir."/baseline_derivatives.csv"
levels = datadir."/grid_levels.csv"

do for [format = 1:2] {
  if (format == 1) { set terminal svg size 1100,470 font "sans,12" background "white"; set output outdir."/surrogate_gradients.svg" }
  if (format == 2) { set terminal pngcairo size 1100,470 font "sans,10" background "white"; set output outdir."/surrogate_gradients.png" }
  set multiplot layout 1,2 title "StableQAT surrogate g(x) for d round(x)/dx, x in steps: rotated Fourier series, a_k = A (-1)^k/(2k+1)"
  set yrange [0:1.1]
  set ylabel "g"
  set key below horizontal font ",10" samplen 2
  set title "one harmonic (K = 1), amplitude A"
  plot derivatives using 1:"ste" with lines lw 2 dt 2 lc rgb "#000000" title "STE", \
       "" using 1:"k1_a0.10" with lines lw 2 lc rgb "#9ecae1" title "A = 0.10", \
       "" using 1:"k1_a0.15" with lines lw 2 lc rgb "#4292c6" title "A = 0.15", \
       "" using 1:"k1_a0.21" with lines lw 3 lc rgb "#d62728" title "A = 0.21 (paper)", \
       "" using 1:"k1_a0.224" with lines lw 2 lc rgb "#08306b" title "A = 0.224"
  set title "K harmonics (K = 0 is STE)"
  plot derivatives using 1:"ste" with lines lw 2 dt 2 lc rgb "#000000" title "K = 0", \
       "" using 1:"k1_a0.21" with lines lw 3 lc rgb "#d62728" title "K = 1, A = 0.21", \
       "" using 1:"k2_a0.21" with lines lw 2 lc rgb "#2ca02c" title "K = 2, A = 0.21", \
       "" using 1:"k3_a0.21" with lines lw 2 lc rgb "#1f77b4" title "K = 3, A = 0.21", \
       "" using 1:"k3_a0.24" with lines lw 2 lc rgb "#9467bd" title "K = 3, A = 0.24"
  unset multiplot
  set output
}

do for [format = 1:2] {
  if (format == 1) { set terminal svg size 1100,470 font "sans,12" background "white"; set output outdir."/classic_fourier_round.svg" }
  if (format == 2) { set terminal pngcairo size 1100,470 font "sans,10" background "white"; set output outdir."/classic_fourier_round.png" }
  set multiplot layout 1,2 title "The classic Fourier series of round(x), x in steps, for contrast"
  set key below horizontal font ",10" samplen 2
  set title "round(x) and its truncated series round_K(x)"
  set ylabel "value"
  set yrange [-1.3:1.3]
  plot functions using 1:"round" with lines lw 2 lc rgb "#000000" title "round", \
       "" using 1:"fourier_round_k1" with lines lw 2 lc rgb "#9ecae1" title "K = 1", \
       "" using 1:"fourier_round_k3" with lines lw 2 lc rgb "#4292c6" title "K = 3", \
       "" using 1:"fourier_round_k9" with lines lw 2 lc rgb "#08306b" title "K = 9"
  set title "their derivatives: unbounded in K and negative"
  set ylabel "d round_K / dx"
  set yrange [-2:8]
  set key below horizontal font ",10" samplen 2
  plot derivatives using 1:"round_k1" with lines lw 2 lc rgb "#9ecae1" title "K = 1", \
       "" using 1:"round_k2" with lines lw 2 lc rgb "#4292c6" title "K = 2", \
       "" using 1:"round_k3" with lines lw 2 lc rgb "#08306b" title "K = 3", \
       "" using 1:"k1_a0.21" with lines lw 3 lc rgb "#d62728" title "StableQAT K = 1", \
       "" using 1:"ste" with lines lw 2 dt 2 lc rgb "#000000" title "STE"
  unset multiplot
  set output
}

do for [format = 1:2] {
  if (format == 1) { set terminal svg size 1500,470 font "sans,12" background "white"; set output outdir."/baseline_gradients.svg" }
  if (format == 2) { set terminal pngcairo size 1500,470 font "sans,10" background "white"; set output outdir."/baseline_gradients.png" }
  set multiplot layout 1,3 title "The paper's baselines beside StableQAT: g(x) for d round(x)/dx, x in steps"
  set key below horizontal font ",10" samplen 2
  set ylabel "g"
  set yrange [0:2]
  set title "DSQ: (1/2) scale k sech^2(k d), mean 1 for every alpha"
  plot baselines using 1:"ste" with lines lw 2 dt 2 lc rgb "#000000" title "STE", \
       "" using 1:"k1_a0.21" with lines lw 3 lc rgb "#d62728" title "StableQAT K = 1", \
       "" using 1:"dsq_a0.05" with lines lw 2 lc rgb "#08306b" title "DSQ alpha = 0.05", \
       "" using 1:"dsq_a0.2" with lines lw 2 lc rgb "#4292c6" title "alpha = 0.2", \
       "" using 1:"dsq_a0.5" with lines lw 2 lc rgb "#9ecae1" title "alpha = 0.5"
  set title "EWGS: 1 + delta sign(dy) r, delta = 0.2"
  plot baselines using 1:"ste" with lines lw 2 dt 2 lc rgb "#000000" title "STE (delta = 0)", \
       "" using 1:"k1_a0.21" with lines lw 3 lc rgb "#d62728" title "StableQAT K = 1", \
       "" using 1:"ewgs_pos" with lines lw 2 lc rgb "#2ca02c" title "EWGS dy > 0", \
       "" using 1:"ewgs_neg" with lines lw 2 lc rgb "#9467bd" title "EWGS dy < 0"
  set title "ParetoQ SEQ: levels y/alpha; dx = g dy for |x| <= 0.99 alpha, else 0"
  set xrange [-1.25:1.25]
  set yrange [-1.1:1.1]
  set ylabel "y / alpha"
  plot levels using 1:"int2" with lines lw 2 dt 2 lc rgb "#000000" title "uniform 2-bit, step alpha/2", \
       "" using 1:"seq2" with lines lw 3 lc rgb "#ff7f0e" title "SEQ 2-bit", \
       "" using 1:"seq3" with lines lw 2 lc rgb "#8c564b" title "SEQ ternary"
  set xrange [-1:1]
  unset multiplot
  set output
}
