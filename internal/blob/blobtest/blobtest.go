// Package blobtest starts a real S3-compatible server for tests: Versity's
// gateway (versitygw) on its POSIX backend, on a free loopback port, with a
// fresh bucket. Without the gateway installed a test fails under CI (which
// installs it) and is skipped otherwise.
package blobtest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw"); fileExists(p) {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("versitygw is not installed (.ci/run installs it)")
	}
	t.Skip("versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// S3 starts a gateway for the test and makes a bucket; it returns the
// store URL Steward takes (s3://host:port/bucket?tls=false).
func S3(t testing.TB) string {
	t.Helper()
	bin := Gateway(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--port", addr, "posix", t.TempDir())
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err = c.MakeBucket(context.Background(), "steward", minio.MakeBucketOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not come up: %v\n%s", err, out.String())
		}
	}
	return "s3://" + addr + "/steward?tls=false"
}
