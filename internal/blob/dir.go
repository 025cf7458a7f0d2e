package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"steward/internal/fault"
)

// Dir keeps files in a directory: each key is a file below it, written
// to a temporary name, synced, and renamed into place.
type Dir struct {
	root string
}

// tmpDir holds files being written, beside the tree of keys ("k").
const tmpDir = ".incoming"

// NewDir returns the store in root, creating it (0700).
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	// Anything left in the incoming directory is a write a crash cut off.
	if ents, err := os.ReadDir(filepath.Join(root, tmpDir)); err == nil {
		for _, e := range ents {
			os.Remove(filepath.Join(root, tmpDir, e.Name()))
		}
	}
	return &Dir{root: root}, nil
}

func (d *Dir) path(key string) string {
	return filepath.Join(d.root, "k", filepath.FromSlash(key))
}

// Put implements Store.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(d.root, tmpDir, hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err = io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return n, err
	}
	if err = f.Sync(); err != nil {
		return n, fmt.Errorf("blob: %w", err)
	}
	if err = f.Close(); err != nil {
		return n, fmt.Errorf("blob: %w", err)
	}
	dst := d.path(key)
	if err = os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return n, fmt.Errorf("blob: %w", err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return n, fmt.Errorf("blob: %w", err)
	}
	syncDir(filepath.Dir(dst))
	return n, nil
}

// syncDir makes a rename durable.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// Get implements Store.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fault.New(fault.NotFound, "blob: no file %s", key)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return f, nil
}

// Delete implements Store.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	err := os.Remove(d.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: %w", err)
	}
	if err == nil {
		syncDir(filepath.Dir(d.path(key)))
	}
	return nil
}

// List implements Store.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	base := filepath.Join(d.root, "k")
	var out []string
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			return ctx.Err()
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blob: list: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
