// Package blobtest starts a real S3-compatible server for tests: Versity's
// gateway (versitygw) on its POSIX backend, on a free loopback port, with a
// fresh bucket. Without the gateway installed a test fails under CI (which
// installs it) and is skipped otherwise.
package blobtest

import (
	"context"
	"steward/internal/testsrv"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The gateway's root credentials in tests.
const (
	AccessKey = "stewardtest"
	SecretKey = "stewardtest-secret-key"
)

// Gateway finds the gateway's binary: on PATH or where go install puts it.
func Gateway(t testing.TB) string {
	t.Helper()
	return testsrv.Binary(t, "versitygw", "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

// S3 starts a gateway for the test and makes a bucket; it returns the
// store URL Steward takes (s3://host:port/bucket?tls=false).
func S3(t testing.TB) string {
	t.Helper()
	bin := Gateway(t)
	var c *minio.Client
	srv := testsrv.Start(t, bin, func(addr string) []string { return []string{"--port", addr, "posix", t.TempDir()} },
		[]string{"ROOT_ACCESS_KEY=" + AccessKey, "ROOT_SECRET_KEY=" + SecretKey},
		func(addr string) (bool, error) {
			if c == nil {
				var err error
				if c, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, "")}); err != nil {
					return false, err
				}
			}
			err := c.MakeBucket(context.Background(), "steward", minio.MakeBucketOptions{})
			return err == nil, err
		})
	return "s3://" + srv.Addr + "/steward?tls=false"
}
