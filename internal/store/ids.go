package store

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// NewID returns a new random row id: prefix and 20 lower-case base32
// characters (100 bits). Ids are opaque, never derived from what a row
// holds.
func NewID(prefix string) string {
	var b [13]byte
	rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])[:20])
}

// Placeholders returns "$from, $from+1, …" for n arguments of an IN list.
func Placeholders(n, from int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(ph, ", ")
}

// Args turns strings into query arguments.
func Args(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
