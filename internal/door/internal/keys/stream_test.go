package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func testKey(t testing.TB, subject, category string) *Key {
	t.Helper()
	raw := make([]byte, KeySize)
	rand.Read(raw)
	block, err := aes.NewCipher(raw)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{subject: subject, category: category, aead: a}
}

func sealStream(t testing.TB, k *Key, plain []byte, writes int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := k.NewSealWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	step := max(1, len(plain)/max(1, writes))
	for p := plain; len(p) > 0; {
		c := min(step, len(p))
		if _, err := w.Write(p[:c]); err != nil {
			t.Fatal(err)
		}
		p = p[c:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func openStream(k *Key, sealed []byte) ([]byte, error) {
	r, err := k.NewOpenReader(bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestStreamRoundTrip(t *testing.T) {
	k := testKey(t, "s_1", "content/photo1")
	for _, n := range []int{0, 1, StreamChunk - 1, StreamChunk, StreamChunk + 1, 3*StreamChunk + 17} {
		plain := make([]byte, n)
		rand.Read(plain)
		for _, writes := range []int{1, 7} {
			sealed := sealStream(t, k, plain, writes)
			if int64(len(sealed)) != int64(n)+StreamOverhead(int64(n)) {
				t.Errorf("%d bytes sealed to %d, want %d", n, len(sealed), int64(n)+StreamOverhead(int64(n)))
			}
			if n > 16 && bytes.Contains(sealed, plain[:16]) {
				t.Errorf("%d bytes: the plaintext shows in the sealed stream", n)
			}
			got, err := openStream(k, sealed)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%d bytes in %d writes: opened %d bytes, %v", n, writes, len(got), err)
			}
		}
	}
}

// Every way of cutting, altering, reordering or extending a sealed stream
// fails to open; so does another item's key.
func TestStreamTampering(t *testing.T) {
	k := testKey(t, "s_1", "content/photo1")
	plain := make([]byte, 3*StreamChunk+100)
	rand.Read(plain)
	sealed := sealStream(t, k, plain, 1)
	full := StreamChunk + tagSize
	body := sealed[streamHeader:]
	chunk := func(i int) []byte { return body[i*full : min(len(body), (i+1)*full)] }
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	header := sealed[:streamHeader]
	flipped := bytes.Clone(sealed)
	flipped[streamHeader+10] ^= 1
	cases := map[string][]byte{
		"cut at a chunk boundary": join(header, chunk(0), chunk(1)),
		"cut inside a chunk":      sealed[:len(sealed)-50],
		"last chunk only cut":     sealed[:len(sealed)-len(chunk(3))],
		"header only":             header,
		"a byte changed":          flipped,
		"two chunks swapped":      join(header, chunk(1), chunk(0), chunk(2), chunk(3)),
		"a chunk repeated":        join(header, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3)),
		"bytes appended":          join(sealed, []byte("more")),
		"short header":            sealed[:3],
	}
	for name, b := range cases {
		got, err := openStream(k, b)
		if err == nil {
			t.Errorf("%s: opened %d bytes without an error", name, len(got))
		} else if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrTruncated or ErrCorrupt", name, err)
		}
	}
	if _, err := openStream(k, join(header, chunk(0), chunk(1))); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut at a chunk boundary: %v, want ErrTruncated", err)
	}
	other := testKey(t, "s_1", "content/photo2")
	if _, err := openStream(other, sealed); !errors.Is(err, ErrCorrupt) {
		t.Errorf("another item's key: %v, want ErrCorrupt", err)
	}
	gone := &Key{subject: "s_1", category: "content/photo1", destroyed: true}
	if _, err := gone.NewOpenReader(bytes.NewReader(sealed)); !errors.Is(err, ErrShredded) {
		t.Errorf("destroyed key: %v, want ErrShredded", err)
	}
}

func BenchmarkStreamSeal(b *testing.B) {
	k := testKey(b, "s_1", "content/video")
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		w, _ := k.NewSealWriter(io.Discard)
		w.Write(buf)
		w.Close()
	}
}
