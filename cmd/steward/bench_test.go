package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkServeColdStart measures `steward serve` from an empty data
// directory (SQLite created, every migration applied, development key
// created, policy published) until /readyz answers 200.
func BenchmarkServeColdStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		addr := freeAddr(b)
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- run(ctx, []string{"serve", "--addr", addr, "--data-dir", dir}, noEnv, strings.NewReader(""), out, &syncBuffer{})
		}()
		for {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case err := <-done:
				b.Fatalf("server exited: %v", err)
			default:
			}
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-to-ready")
		cancel()
		<-done
	}
}
