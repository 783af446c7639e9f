# Grouped bars of ops/s per smallfiles.py phase, one bar per filesystem, log y.
# gnuplot -e "datafile='F'; outfile='O'; ncols=N; plottitle='T'; colors='#rgb ...'" chart.gp
# datafile: a header line "phase fs1 fs2 ...", then one line per phase.
set terminal pngcairo size 1400,700 font "DejaVu Sans,11" noenhanced
set output outfile
set title plottitle
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border rgb "#333333"
set boxwidth 0.9
set logscale y 10
set ytics format "%.0s%c"
set ylabel "ops/s (log scale, higher is better)"
set grid ytics mytics lc rgb "#dddddd"
set mytics 10
set key outside bottom center horizontal autotitle columnhead
set yrange [10:*]
set xtics nomirror
plot for [i=2:ncols+1] datafile using i:xtic(1) title columnheader(i) lc rgb word(colors, i-1)
