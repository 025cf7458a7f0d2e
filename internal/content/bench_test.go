package content_test

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"steward/internal/content"
	"steward/internal/mail"
	"steward/internal/media/mediatest"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store/storetest"
)

// BenchmarkThread500 reads a public thread of 500 comments by 50 authors:
// one query for the items, one door batch for the authors' states and
// keys, one query for their names, 500 items opened.
func BenchmarkThread500(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b, schema.Migrations()), "mixi.yaml")
	var authors []string
	for i := range 50 {
		authors = append(authors, e.member(fmt.Sprintf("author%d@example.org", i), fmt.Sprintf("Author %d", i)))
	}
	for i := range 500 {
		e.post(authors[i%50], "/big", fmt.Sprintf("Comment number %d, with a few words in it.", i), content.Public)
	}
	b.ReportAllocs()
	for b.Loop() {
		items, err := e.c.Thread(e.ctx, "demo", "/big")
		if err != nil || len(items) != 500 {
			b.Fatalf("thread: %d items, %v", len(items), err)
		}
	}
}

// BenchmarkAttachVideo uploads a 64 MiB MP4 through the whole path —
// spooled encrypted, cleaned, sealed, stored in the directory store — and,
// in the same run, writes the same bytes to a file of the same directory
// and syncs it (the disk's rate: the sub-benchmark "disk").
func BenchmarkAttachVideo(b *testing.B) {
	movie := mediatest.Movie(64 << 20)
	b.Run("disk", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(int64(len(movie)))
		for b.Loop() {
			f, err := os.CreateTemp(dir, "raw")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, bytes.NewReader(movie)); err != nil {
				b.Fatal(err)
			}
			f.Sync()
			f.Close()
			os.Remove(f.Name())
		}
	})
	b.Run("attach", func(b *testing.B) {
		e := newEnv(b, storetest.SQLite(b, schema.Migrations()), "mixi.yaml")
		ann := e.member("ann@example.org", "Ann")
		it := e.post(ann, "/v", "a video", content.Public)
		b.SetBytes(int64(len(movie)))
		for b.Loop() {
			f, err := e.c.Attach(e.ctx, ann, it.ID, "surf.mp4", bytes.NewReader(movie))
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := e.c.Delete(e.ctx, ann, it.ID); err != nil {
				b.Fatal(err)
			}
			it = e.post(ann, "/v", "a video", content.Public)
			_ = f
			b.StartTimer()
		}
	})
}

// BenchmarkConcurrentUploads streams ten movies at once through the whole
// upload path (each of STEWARD_BENCH_UPLOAD_MB megabytes, 64 by default;
// the figure is 1024) and reports the process's peak resident
// memory while they run, sampled every 20 ms: it must stay flat whatever
// the size, since no upload is ever held whole.
func BenchmarkConcurrentUploads(b *testing.B) {
	mb := int64(64)
	if v := os.Getenv("STEWARD_BENCH_UPLOAD_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		mb = n
	}
	e := newEnv(b, storetest.SQLite(b, schema.Migrations()), "mixi.yaml")
	ann := e.member("ann@example.org", "Ann")
	it := e.post(ann, "/v", "videos", content.Public)
	// Uploads may be as large as the test's.
	e.c = e.c.WithLimits(content.Limits{MaxVideo: (mb + 1) << 20})
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if r := rssKB(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	b.SetBytes(10 * mb << 20)
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				head, body := mediatest.MovieStream(mb << 20)
				_, err := e.c.Attach(e.ctx, ann, it.ID, "movie.mp4", io.MultiReader(bytes.NewReader(head), body))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := e.c.Delete(e.ctx, ann, it.ID); err != nil {
			b.Fatal(err)
		}
		it = e.post(ann, "/v", "videos", content.Public)
		b.StartTimer()
	}
	close(stop)
	b.ReportMetric(float64(peak.Load())/1024, "peak-RSS-MB")
}

// rssKB is the process's resident memory now, in kB (Linux).
func rssKB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// verified signs a member up and confirms their address (a rights request
// needs it), reading the link from the outbox.
func (e *env) verified(email, name string) string {
	e.t.Helper()
	id := e.member(email, name)
	list, err := e.svc.Outbox.List(e.ctx, mail.AsRecipient, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range list {
		if i := strings.Index(m.Text, "/verify-email?token="); m.To == email && i >= 0 {
			tok, _ := url.QueryUnescape(strings.Fields(m.Text[i+len("/verify-email?token="):])[0])
			if err := e.svc.Identity.VerifyEmail(e.ctx, tok); err != nil {
				e.t.Fatal(err)
			}
			return id
		}
	}
	e.t.Fatalf("no verification mail to %s", email)
	return ""
}

// BenchmarkExport1000Photos is a portability request of a member with
// 1,000 photos: the job that builds the ZIP (every photo opened through
// the door from blob storage and copied in), sealed and stored.
func BenchmarkExport1000Photos(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b, schema.Migrations()), "mixi.yaml")
	ann := e.verified("ann@example.org", "Ann")
	photo := pngFile(b)
	for i := range 1000 {
		it := e.post(ann, "/album", fmt.Sprintf("photo %d", i), content.Private)
		if _, err := e.c.Attach(e.ctx, ann, it.ID, fmt.Sprintf("p%d.png", i), bytes.NewReader(photo)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		r, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann, Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Portability})
		if err != nil {
			b.Fatal(err)
		}
		for range 5 {
			if _, err := e.svc.Jobs.RunDue(e.ctx); err != nil {
				b.Fatal(err)
			}
		}
		if r, err = e.svc.Rights.Get(e.ctx, r.ID); err != nil || r.Status != rights.StatusCompleted {
			b.Fatalf("request %s: %v", r.Status, err)
		}
	}
}
