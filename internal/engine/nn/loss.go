package nn

import "math"

// CrossEntropy computes softmax cross-entropy over rows of logits [m, v]
// against targets (a negative target is ignored). It writes into dlogits
// (which may alias logits) the gradient of gradScale × the summed loss
// (zero rows for ignored targets) unless dlogits is nil, and returns the
// summed loss and the number of counted rows. Rows run in parallel; the sum
// is taken in row order.
func CrossEntropy[T Float](rt *Runtime, logits []T, m, v int, targets []int32, dlogits []T, gradScale T, rowLoss []float64) (float64, int) {
	rt.Parallel(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := logits[i*v : (i+1)*v]
			tgt := targets[i]
			if tgt < 0 {
				rowLoss[i] = 0
				if dlogits != nil {
					zero(dlogits[i*v : (i+1)*v])
				}
				continue
			}
			mx := row[0]
			for _, x := range row[1:] {
				if x > mx {
					mx = x
				}
			}
			xt := row[tgt]
			var sum T
			if dlogits == nil {
				for _, x := range row {
					sum += expT(x - mx)
				}
				rowLoss[i] = float64(mx) + math.Log(float64(sum)) - float64(xt)
				continue
			}
			d := dlogits[i*v : (i+1)*v]
			for j, x := range row {
				d[j] = x - mx
			}
			expInPlace(d)
			for _, e := range d {
				sum += e
			}
			rowLoss[i] = float64(mx) + math.Log(float64(sum)) - float64(xt)
			inv := gradScale / sum
			for j := range d {
				d[j] *= inv
			}
			d[tgt] -= gradScale
		}
	})
	var total float64
	n := 0
	for i := 0; i < m; i++ {
		if targets[i] >= 0 {
			total += rowLoss[i]
			n++
		}
	}
	return total, n
}
