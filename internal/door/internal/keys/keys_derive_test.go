package keys

import (
	"bytes"
	"testing"
)

func TestDerive(t *testing.T) {
	a, _ := NewMaster(bytes.Repeat([]byte{1}, KeySize))
	b, _ := NewMaster(bytes.Repeat([]byte{2}, KeySize))
	x1, x2 := a.Derive("x", 32), a.Derive("x", 32)
	if !bytes.Equal(x1, x2) {
		t.Fatal("Derive is not deterministic")
	}
	if bytes.Equal(x1, a.Derive("y", 32)) {
		t.Fatal("different labels gave the same key")
	}
	if bytes.Equal(x1, b.Derive("x", 32)) {
		t.Fatal("different masters gave the same key")
	}
}
