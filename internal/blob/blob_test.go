package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"steward/internal/blob"
	"steward/internal/blob/blobtest"
	"steward/internal/fault"
)

// each runs fn on every implementation: a directory, and a bucket of a
// real S3-compatible server (Versity's gateway on its POSIX backend).
func each(t *testing.T, fn func(t *testing.T, s blob.Store)) {
	t.Run("dir", func(t *testing.T) {
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, d)
	})
	t.Run("s3", func(t *testing.T) { fn(t, s3Store(t)) })
}

// s3Store is a store on a fresh bucket of a gateway started for the test.
func s3Store(t *testing.T) blob.Store {
	t.Helper()
	s, err := blob.Open(context.Background(), blob.Config{URL: blobtest.S3(t), AccessKey: blobtest.AccessKey, SecretKey: blobtest.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, s blob.Store, key string) ([]byte, error) {
	t.Helper()
	r, err := s.Get(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the client went away")
	}
	c := min(len(p), f.n)
	f.n -= c
	return c, nil
}

func TestStore(t *testing.T) {
	each(t, func(t *testing.T, s blob.Store) {
		ctx := context.Background()
		// A file larger than an S3 part, streamed in.
		big := make([]byte, 12<<20+123)
		rand.Read(big)
		n, err := s.Put(ctx, "content/s_ann/photo-1", bytes.NewReader(big))
		if err != nil || n != int64(len(big)) {
			t.Fatalf("Put = %d, %v", n, err)
		}
		if got, err := get(t, s, "content/s_ann/photo-1"); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("Get = %d bytes, %v", len(got), err)
		}
		// Replaced whole.
		if _, err := s.Put(ctx, "content/s_ann/photo-1", strings.NewReader("v2")); err != nil {
			t.Fatal(err)
		}
		if got, _ := get(t, s, "content/s_ann/photo-1"); string(got) != "v2" {
			t.Errorf("after replacing: %q", got)
		}
		// A failed upload leaves the earlier file, and no new one.
		if _, err := s.Put(ctx, "content/s_ann/photo-1", &failingReader{n: 7 << 20}); err == nil {
			t.Error("a failed upload reported success")
		}
		if got, _ := get(t, s, "content/s_ann/photo-1"); string(got) != "v2" {
			t.Errorf("a failed upload changed the file: %d bytes", len(got))
		}
		if _, err := s.Put(ctx, "content/s_ann/cut", &failingReader{n: 1000}); err == nil {
			t.Error("a failed upload reported success")
		}
		if _, err := get(t, s, "content/s_ann/cut"); !fault.Is(err, fault.NotFound) {
			t.Errorf("a failed upload left a file: %v", err)
		}
		for _, k := range []string{"content/s_bob/a", "content/s_ann/photo-2", "support/s_ann/x.ogg"} {
			if _, err := s.Put(ctx, k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := s.List(ctx, "content/s_ann/")
		if err != nil || !slices.Equal(keys, []string{"content/s_ann/photo-1", "content/s_ann/photo-2"}) {
			t.Errorf("List content/s_ann/ = %v, %v", keys, err)
		}
		all, _ := s.List(ctx, "")
		if len(all) != 4 {
			t.Errorf("List all = %v, want 4 keys", all)
		}
		// Delete, twice.
		for range 2 {
			if err := s.Delete(ctx, "content/s_ann/photo-1"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := get(t, s, "content/s_ann/photo-1"); !fault.Is(err, fault.NotFound) {
			t.Errorf("Get after Delete: %v, want NotFound", err)
		}
		if _, err := get(t, s, "never/was"); !fault.Is(err, fault.NotFound) {
			t.Errorf("Get of a missing key: %v, want NotFound", err)
		}
	})
}

// Keys that could leave the store, or hide something, are refused before
// anything is written.
func TestBadKeys(t *testing.T) {
	each(t, func(t *testing.T, s blob.Store) {
		ctx := context.Background()
		for _, k := range []string{"", "../escape", "a/../../b", "/abs", "a//b", "a/./b", "Upper", "nul\x00", "back\\slash",
			"sp ace", strings.Repeat("a", blob.MaxKey+1), "a/"} {
			if _, err := s.Put(ctx, k, strings.NewReader("x")); !fault.Is(err, fault.Invalid) {
				t.Errorf("Put(%q) = %v, want Invalid", k, err)
			}
			if _, err := s.Get(ctx, k); !fault.Is(err, fault.Invalid) {
				t.Errorf("Get(%q) = %v, want Invalid", k, err)
			}
			if err := s.Delete(ctx, k); !fault.Is(err, fault.Invalid) {
				t.Errorf("Delete(%q) = %v, want Invalid", k, err)
			}
		}
		if all, _ := s.List(ctx, ""); len(all) != 0 {
			t.Errorf("refused keys stored %v", all)
		}
		if _, err := s.List(ctx, "../"); !fault.Is(err, fault.Invalid) {
			t.Errorf("List(../) = %v, want Invalid", err)
		}
	})
}

// A write a crash cut off in a directory store leaves nothing once the
// store opens again.
func TestDirDropsCutWrites(t *testing.T) {
	root := t.TempDir()
	if _, err := blob.NewDir(root); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(root, ".incoming", "deadbeef")
	if err := os.WriteFile(stray, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.NewDir(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); err == nil {
		t.Error("a cut write survived the restart")
	}
}

func TestOpenRefusesCredentialsInTheURL(t *testing.T) {
	_, err := blob.Open(context.Background(), blob.Config{URL: "s3://key:secret@127.0.0.1:9000/b"})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open with credentials in the URL = %v", err)
	}
	if _, err := blob.Open(context.Background(), blob.Config{URL: "ftp://x/y"}); err == nil {
		t.Error("an ftp URL was accepted")
	}
	d, err := blob.Open(context.Background(), blob.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*blob.Dir); !ok {
		t.Errorf("the default store is %T, want *blob.Dir", d)
	}
}
