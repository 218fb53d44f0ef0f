# A quantile of the observations between two Prometheus text dumps of one histogram, like
# histogram_quantile(): cumulative bucket counts subtracted, then linear inside the bucket.
#   awk -v m=NAME_bucket -v q=0.99 -f benches/histogram_quantile.awk before.prom after.prom
# Prints milliseconds, ">N" past the last finite bucket, or "-" with no observations.
FNR == 1 { f++ }
index($0, m "{") == 1 {
  le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le)
  if (f == 1) before[le] = $NF; else { after[le] = $NF; order[++n] = le }
}
END {
  if (n == 0) { print "-"; exit }
  total = after["+Inf"] - before["+Inf"]
  if (total <= 0) { print "-"; exit }
  want = q * total; prev_le = 0; prev_c = 0
  for (i = 1; i <= n; i++) {
    le = order[i]; c = after[le] - before[le]
    if (c >= want) {
      if (le == "+Inf") { printf ">%g\n", prev_le * 1000; exit }
      printf "%.3f\n", 1000 * (prev_le + (le - prev_le) * (want - prev_c) / (c - prev_c)); exit
    }
    prev_le = le; prev_c = c
  }
}
