#!/usr/bin/env bash
# plot.sh - PNG plots of a bench run (gnuplot): readings/s over time for the
# daemon runs, the alert latency distribution, and the FSRI cell-5 curve with
# the moment each alert event fired. Reads what bench.sh left in DIR.
#   plot.sh [DIR]        (default build/bench-run; writes DIR/*.png)
set -euo pipefail
DIR=${1:-build/bench-run}
command -v gnuplot >/dev/null || { echo "plot: gnuplot not installed" >&2; exit 1; }
cd "$DIR"

# Rows committed sampled every 0.5 s -> readings/s per interval.
rate() { awk 'NR > 1 && $1 > t { printf "%.2f %.0f\n", $1 / 1000, ($2 - r) * 1000 / ($1 - t) } { t = $1; r = $2 }' "$1"; }
series=""
for tag in live1 batched1 drain1; do
  [ -s "samples.$tag" ] || continue
  rate "samples.$tag" >"rate.$tag.dat"
  series="$series${series:+, }'rate.$tag.dat' using 1:2 with steps lw 2 title '$tag'"
done
if [ -n "$series" ]; then
  gnuplot <<GP
set terminal pngcairo size 900,500 noenhanced
set output 'readings-per-s.png'
set title 'chargewatchd: rows committed per second (sampled every 0.5 s), run 1'
set xlabel "seconds since the replay started (drain: since the daemon started)"
set ylabel 'readings/s'
set grid
set key top right
plot $series
GP
fi

# Alert latency: cumulative distribution of the probes, idle and loaded.
lat=""
for f in $(ls lat-*.dat 2>/dev/null | sed 's/\.dat$//'); do
  [ -s "$f.dat" ] || continue
  n=$(wc -l <"$f.dat")
  awk -v n="$n" '{ printf "%s %.4f\n", $1, NR / n }' "$f.dat" >"$f.cdf"
  lat="$lat${lat:+, }'$f.cdf' using 1:2 with lines lw 2 title '$f ($n probes)'"
done
if [ -n "$lat" ]; then
  gnuplot <<GP
set terminal pngcairo size 900,500 noenhanced
set output 'alert-latency.png'
set title 'alert latency: publish of a 95 C reading -> alert received over MQTT'
set xlabel 'latency (ms, log scale)'
set ylabel 'fraction of probes'
set logscale x
set grid
set key bottom right
set yrange [0:1.02]
plot $lat
GP
fi

# FSRI: cell 5 temperature, the experimenters' runaway flag, and each alert event.
if [ -s fsri-curve.dat ] && [ -s fsri-events.txt ]; then
  tr_flag=$(sed -n 's/.*tr_flag_s=\([0-9-]*\).*/\1/p' fsri-events.txt)
  arrows=$(awk '$1 == "event" { printf "set arrow from %s, graph 0 to %s, graph 1 nohead lw 2 dt 2 lc rgb \"%s\"\n", $2, $2, ($4 == "critical" ? "red" : "orange");
    printf "set label \"%s %s %s at %s s\" at %s, graph %.2f offset 0.5,0 font \",9\"\n", $3, $4, $5, $2, $2, 0.95 - 0.07 * (++n) }' fsri-events.txt)
  gnuplot <<GP
set terminal pngcairo size 1000,550 noenhanced
set output 'fsri-alerts.png'
set title 'UL FSRI 18650 cell test (cell 5), detection engine with default thresholds at 1 s sampling'
set xlabel 'experiment time (s)'
set ylabel 'cell 5 surface temperature (C)'
set grid
set key top right
$arrows
set arrow from $tr_flag, graph 0 to $tr_flag, graph 1 nohead lw 2 lc rgb 'black'
set label 'runaway flagged by the experimenters at $tr_flag s' at $tr_flag, graph 0.35 offset 0.5,0 font ',9'
plot 'fsri-curve.dat' using 1:2 with lines lw 2 lc rgb 'blue' title 'cell 5 temperature'
GP
fi
ls -1 *.png 2>/dev/null | sed 's/^/plot: /' >&2
