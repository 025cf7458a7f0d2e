// Package blob keeps stored files (uploads, attachments, recordings) by
// key, behind one small interface with two implementations: a directory
// under the data directory (the default, for one process) and an
// S3-compatible bucket (for operators who run several processes).
//
// It is infrastructure, not a feature: it stores opaque bytes and knows no
// person. Every file reaches it already sealed by the door under the key
// of its own item (door.View.SealStream), so what a store holds, and every
// copy or backup of it, opens only while that key lives. The features that
// hold files declare their blob references in the personal-data registry;
// the rights engine and retention reach a subject's files through them.
package blob

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"steward/internal/fault"
)

// Store keeps files by key. Implementations are safe for concurrent use.
type Store interface {
	// Put stores what r yields under key, streaming (never holding the
	// file whole), and returns its size. It replaces a file of the same
	// key only once the new one is complete: a failed or cancelled Put
	// leaves the earlier file, or nothing, never a part.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get opens the file of key; fault.NotFound when there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the file of key; deleting a missing file is no error.
	Delete(ctx context.Context, key string) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// MaxKey is the longest key a store accepts.
const MaxKey = 512

// CheckKey refuses a key that is not a relative path of lower-case
// letters, digits, '-', '_', '.' and '/' (no empty, '.' or '..' segment),
// so a key can never leave the store's directory or bucket prefix.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKey {
		return fault.New(fault.Invalid, "blob: a key must be 1 to %d bytes", MaxKey)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fault.New(fault.Invalid, "blob: key %q has an empty, '.' or '..' segment", key)
		}
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '/':
		default:
			return fault.New(fault.Invalid, "blob: key %q may hold only a-z, 0-9, '-', '_', '.' and '/'", key)
		}
	}
	return nil
}

// checkPrefix accepts "" or a prefix made of key characters.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return CheckKey(strings.TrimSuffix(prefix, "/") + "/x")
}

// Config says where files are kept.
type Config struct {
	// URL is "" (a directory under the data directory), "file:///path",
	// or "s3://host:port/bucket" (https; add ?tls=false for a local
	// gateway, &region=NAME when the bucket needs one). An s3 URL must not
	// carry credentials: they come from AccessKey and SecretKey.
	URL                  string
	DataDir              string
	AccessKey, SecretKey string
}

// Open returns the store a configuration names.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if cfg.URL == "" {
		if cfg.DataDir == "" {
			return nil, fmt.Errorf("blob: no data directory for the file store")
		}
		return NewDir(filepath.Join(cfg.DataDir, "blobs"))
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("blob: store URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		return NewDir(u.Path)
	case "s3":
		if u.User != nil {
			return nil, fmt.Errorf("blob: put the S3 credentials in the environment, not in the store URL")
		}
		bucket := strings.Trim(u.Path, "/")
		q := u.Query()
		return NewS3(ctx, S3Config{Endpoint: u.Host, Bucket: bucket, Region: q.Get("region"), Insecure: q.Get("tls") == "false",
			AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
	default:
		return nil, fmt.Errorf("blob: store URL scheme %q: want file or s3", u.Scheme)
	}
}

// Write stores under key what produce writes (a sealer streaming a cleaned
// file), without holding it whole: produce runs while the store reads. The
// file exists only if both succeeded; produce's error is returned as it
// was, so a refusal reaches the caller unchanged.
func Write(ctx context.Context, st Store, key string, produce func(w io.Writer) error) error {
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	go func() {
		err := produce(pw)
		pw.CloseWithError(err)
		produced <- err
	}()
	_, err := st.Put(ctx, key, pr)
	pr.CloseWithError(errStopped) // unblock the producer on a failed put
	if perr := <-produced; perr != nil {
		st.Delete(context.WithoutCancel(ctx), key) // a store that took a cut stream as whole
		return perr
	}
	if err != nil {
		return fmt.Errorf("blob: store %s: %w", key, err)
	}
	return nil
}

var errStopped = fmt.Errorf("blob: the store stopped reading")
