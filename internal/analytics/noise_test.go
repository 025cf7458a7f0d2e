package analytics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The distribution of the mechanism, checked deterministically: with a
// seeded source the empirical mean, variance, P(0), P(±1) and the tail
// over N draws must match the theoretical discrete Laplace distribution
// within a few standard errors. A sampler with the wrong α, an off-by-one
// in the geometric loop or a one-sided noise fails it.
func TestDiscreteLaplaceDistribution(t *testing.T) {
	const n = 200000
	for _, eps := range []float64{0.1, 0.5, 1, 2} {
		src := rand.New(rand.NewPCG(42, uint64(eps*1000)))
		alpha := math.Exp(-eps)
		wantVar := 2 * alpha / ((1 - alpha) * (1 - alpha))
		wantP0 := (1 - alpha) / (1 + alpha)
		wantP1 := wantP0 * alpha // P(X = 1) = P(X = -1)

		var sum, sumSq float64
		counts := map[int64]int{}
		for i := 0; i < n; i++ {
			x := DiscreteLaplace(src, eps)
			sum += float64(x)
			sumSq += float64(x) * float64(x)
			if x >= -1 && x <= 1 {
				counts[x]++
			}
		}
		mean := sum / n
		variance := sumSq/n - mean*mean
		// Standard error of the mean is sqrt(var/n); of a proportion
		// sqrt(p(1-p)/n). Five of them: a false alarm is practically
		// impossible and the test is deterministic anyway.
		if se := math.Sqrt(wantVar / n); math.Abs(mean) > 5*se {
			t.Errorf("ε=%g: mean = %.4f, want 0 ± %.4f", eps, mean, 5*se)
		}
		// The variance of the sample variance involves the fourth moment;
		// a 3 % tolerance is well above it at this n.
		if math.Abs(variance-wantVar)/wantVar > 0.03 {
			t.Errorf("ε=%g: variance = %.4f, want %.4f (±3%%)", eps, variance, wantVar)
		}
		for _, c := range []struct {
			x    int64
			want float64
		}{{0, wantP0}, {1, wantP1}, {-1, wantP1}} {
			got := float64(counts[c.x]) / n
			if se := math.Sqrt(c.want * (1 - c.want) / n); math.Abs(got-c.want) > 5*se {
				t.Errorf("ε=%g: P(X=%d) = %.4f, want %.4f ± %.4f", eps, c.x, got, c.want, 5*se)
			}
		}
	}
}

// The source is seeded: the same seed gives the same noise (tests that
// snapshot noisy output rely on it), and crypto noise differs run to run.
func TestNoiseSources(t *testing.T) {
	a := rand.New(rand.NewPCG(1, 2))
	b := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100; i++ {
		if x, y := DiscreteLaplace(a, 1), DiscreteLaplace(b, 1); x != y {
			t.Fatalf("draw %d: %d != %d with the same seed", i, x, y)
		}
	}
	var nonZero bool
	for i := 0; i < 100; i++ {
		if DiscreteLaplace(CryptoSource{}, 1) != 0 {
			nonZero = true
		}
	}
	if !nonZero {
		t.Error("crypto noise was 0 in 100 draws at ε=1 (probability < 1e-33)")
	}
}
