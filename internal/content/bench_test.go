package content_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"steward/internal/content"
	"steward/internal/media/mediatest"
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
