package analytics

import (
	"crypto/rand"
	"encoding/binary"
	"math"
)

// Differential-privacy noise for shared counts: the two-sided geometric
// mechanism (the discrete Laplace distribution). For privacy parameter ε
// and a count whose sensitivity is 1, it adds integer noise X with
//
//	P(X = x) = (1-α)/(1+α) · α^|x|,  α = e^(-ε),
//
// which makes the published count ε-differentially private. X is sampled
// as the difference of two independent geometric variables G1 - G2 with
// P(G = k) = (1-α)·α^k. Mean 0, variance 2α/(1-α)², P(X = 0) = (1-α)/(1+α).
//
// Each geometric variable is drawn by counting Bernoulli(α) successes
// until the first failure, comparing a 53-bit uniform with α: no
// logarithm of a tiny uniform, no floating-point rounding of the output
// (the weakness of textbook Laplace samplers, Mironov 2012); the only
// approximation is α itself, to 2^-53. In production the bits come from
// crypto/rand; tests inject a seeded source and check the distribution.

// Source gives uniformly random 64-bit words.
type Source interface {
	Uint64() uint64
}

// CryptoSource draws from the operating system's CSPRNG.
type CryptoSource struct{}

// Uint64 returns 64 random bits.
func (CryptoSource) Uint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return binary.LittleEndian.Uint64(b[:])
}

// maxGeometric bounds one geometric draw; with ε ≥ minEpsilon the chance
// of reaching it is below 10^-40.
const maxGeometric = 1 << 16

// Epsilon bounds accepted from a policy.
const (
	minEpsilon = 0.01
	maxEpsilon = 10
)

// uniform returns a float64 uniform on [0, 1) with 53 random bits.
func uniform(src Source) float64 {
	return float64(src.Uint64()>>11) / (1 << 53)
}

// geometric returns G ≥ 0 with P(G = k) = (1-α)·α^k.
func geometric(src Source, alpha float64) int64 {
	var k int64
	for k < maxGeometric && uniform(src) < alpha {
		k++
	}
	return k
}

// DiscreteLaplace returns noise of the two-sided geometric mechanism for
// privacy parameter epsilon (sensitivity 1).
func DiscreteLaplace(src Source, epsilon float64) int64 {
	alpha := math.Exp(-epsilon)
	return geometric(src, alpha) - geometric(src, alpha)
}
