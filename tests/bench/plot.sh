#!/bin/sh
# plot.sh RESULTS PNG: draws the README's performance figure from benchmark output
# (the text that `meson test -C build --benchmark --verbose` prints, saved to RESULTS):
# left, library enqueue throughput vs producers beside the raw LMDB ceiling; right, ingest
# ack latency percentiles per threading mode. Needs gnuplot (tools/bootstrap installs it).
set -eu
results=$1
png=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "producers events/s x-single raw-rows/s raw-commits/s" rows of bench-store.
awk '/^# library enqueue/ {on=1; next} on && /^[0-9]+ / {print $1, $2, $4} on && /^#/ {on=0}' \
  "$results" >"$tmp/tput.dat"
# "percentile ms" rows per threading mode, from the paced rows of the ingest benchmark
# ("  paced ~1,000/s  events/s  p50  p99  p99.9" under each "pool_threads=" heading).
awk -v dir="$tmp" '/^pool_threads=/ {m++}
     m && /^  paced/ {f = dir "/lat" m ".dat"; print "p50", $(NF-2) > f
                      print "p99", $(NF-1) > f; print "p99.9", $NF > f}' "$results"
for m in 1 2 3; do [ -f "$tmp/lat$m.dat" ] || echo "p50 0" >"$tmp/lat$m.dat"; done
[ -s "$tmp/tput.dat" ] || { echo "plot.sh: no enqueue table in $results" >&2; exit 1; }

gnuplot <<GP
set terminal pngcairo size 1100,420 font ",10" noenhanced
set output "$png"
set multiplot layout 1,2
set title "Library enqueue, full durability (300-byte events)"
set xlabel "producer threads"
set ylabel "events/s"
set logscale x 2
set key left top
set grid
plot "$tmp/tput.dat" using 1:2 with linespoints lw 2 title "outbox (acknowledged)", \
     "$tmp/tput.dat" using 1:3 with linespoints lw 2 dt 2 title "raw LMDB, same batch (ceiling)"
unset logscale x
set title "HTTP ingest ack latency, paced at about 1000 events per second"
set xlabel "percentile"
set ylabel "ms"
set key left top
plot "$tmp/lat1.dat" using 0:2:xtic(1) with linespoints lw 2 title "thread per connection", \
     "$tmp/lat2.dat" using 0:2:xtic(1) with linespoints lw 2 title "epoll pool", \
     "$tmp/lat3.dat" using 0:2:xtic(1) with linespoints lw 2 dt 2 title "pool, deliveries stalled"
unset multiplot
GP
echo "wrote $png"
