package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"steward/internal/fault"
)

// S3Config says which bucket of which S3-compatible server keeps files.
type S3Config struct {
	Endpoint             string // host:port
	Bucket               string
	Region               string
	Insecure             bool // plain HTTP (a gateway on loopback)
	AccessKey, SecretKey string
}

// S3 keeps files in a bucket of an S3-compatible server.
type S3 struct {
	c      *minio.Client
	bucket string
}

// s3Part is the part size of multipart uploads: the client buffers one
// part per upload, so this bounds an upload's memory (5 MiB is S3's
// smallest part; it allows files up to 50 GB in 10,000 parts).
const s3Part = 5 << 20

// NewS3 connects to the bucket, which must exist.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("blob: an S3 store needs an endpoint and a bucket")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 client: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob: S3 bucket %s: %w", cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("blob: S3 bucket %s does not exist", cfg.Bucket)
	}
	return &S3{c: c, bucket: cfg.Bucket}, nil
}

// Put implements Store. S3 makes an object visible only once its upload
// completes; a failed multipart upload is aborted by the client.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	info, err := s.c.PutObject(ctx, s.bucket, key, r, -1, minio.PutObjectOptions{
		PartSize: s3Part, ContentType: "application/octet-stream",
	})
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	return info.Size, nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		// GetObject is lazy: Stat makes the request and finds a missing key.
		if _, err = obj.Stat(); err != nil {
			obj.Close()
		}
	}
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fault.New(fault.NotFound, "blob: no file %s", key)
		}
		return nil, fmt.Errorf("blob: get %s: %w", key, err)
	}
	return obj, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil &&
		minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var out []string
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("blob: list: %w", obj.Err)
		}
		out = append(out, obj.Key)
	}
	slices.Sort(out)
	return out, nil
}
