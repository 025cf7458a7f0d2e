package web

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"steward/internal/blob/blobtest"
	"steward/internal/mail"
	"steward/internal/media/mediatest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// The content issue's end-to-end test, with mixi.yaml on both engines: a
// member posts a comment with a photo carrying GPS and camera Exif and a
// movie carrying a location atom; the stored files, decrypted, hold no
// location or device tag for an independent reader (exiftool); the
// public sees the comment with the author's name and photo only; the
// portability ZIP carries the files; an erasure of scope content leaves no
// row and no blob.
func TestPromiseM2_M9_ContentEndToEnd(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) { contentEndToEnd(t, db, "") })
	// Several processes keep their files in an S3 bucket: the same, there.
	t.Run("s3", func(t *testing.T) { contentEndToEnd(t, storetest.SQLite(t, modules()), blobtest.S3(t)) })
}

func contentEndToEnd(t *testing.T, db *store.DB, blobURL string) {
	e := newEnv(t, db, envOptions{blobURL: blobURL})
	ctx := context.Background()
	ann, _ := e.member("ann@example.org", "Ann Example")
	r := e.do(ann, "POST", "/api/v1/me/content", map[string]any{"kind": "comment", "site": "demo", "thread": "/trip", "body": "Our trip"})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("post: %d %s", r.StatusCode, r.body)
	}
	var item struct{ ID string }
	r.json(t, &item)

	uploads := []struct {
		name, ext string
		data      []byte
	}{
		{"beach.jpg", ".jpg", mediatest.JPEGWithGPS(t)},
		{"surf.mp4", ".mp4", mediatest.MovieWithLocation(t)},
	}
	var fileIDs []string
	for _, u := range uploads {
		before := mediatest.ExifTool(t, u.data, u.ext)
		if !mediatest.HasLocationOrDevice(before) {
			t.Fatalf("%s: the fixture carries no location or device tag: %v", u.name, before)
		}
		r := e.do(ann, "POST", "/api/v1/me/content/"+item.ID+"/files?name="+u.name, u.data, "Content-Type", "application/octet-stream")
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s: %d %s", u.name, r.StatusCode, r.body)
		}
		var f struct{ ID string }
		r.json(t, &f)
		fileIDs = append(fileIDs, f.ID)
		// What is stored is ciphertext; decrypted, it holds no tag.
		keys, err := e.svc.Blobs.List(ctx, "content/")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			rc, err := e.svc.Blobs.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(rc)
			rc.Close()
			if strings.Contains(string(raw), mediatest.PlantedMake) {
				t.Errorf("blob %s holds the camera make in the clear", k)
			}
		}
		rc, _, err := e.svc.Content.OpenFile(ctx, annID(t, e, ann), f.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := io.ReadAll(rc)
		rc.Close()
		if after := mediatest.ExifTool(t, stored, u.ext); mediatest.HasLocationOrDevice(after) {
			t.Errorf("%s: the stored file still carries %v", u.name, after)
		}
	}

	// The public view: the text, the author's name, the files.
	r = e.do(nil, "GET", "/api/v1/threads/demo?thread=/trip", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), `"author":"Ann Example"`) || !strings.Contains(string(r.body), fileIDs[0]) {
		t.Fatalf("public thread: %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(string(r.body), "ann@example.org") || strings.Contains(string(r.body), annID(t, e, ann)) {
		t.Errorf("the public thread shows more of the author: %s", r.body)
	}

	// Portability: the files are in the ZIP.
	var port requestView
	e.do(ann, "POST", "/api/v1/me/requests", map[string]any{"type": "portability", "password": testPassword}).json(t, &port)
	e.runJobs(t)
	e.do(ann, "GET", "/api/v1/me/requests/"+port.ID, nil).json(t, &port)
	if port.Status != "completed" || port.Download == "" {
		t.Fatalf("portability: %+v", port)
	}
	r = e.do(ann, "GET", port.Download, nil)
	z := unzipBytes(t, r.body)
	found := 0
	for name := range z {
		if strings.HasPrefix(name, "files/") && (strings.HasSuffix(name, "beach.jpg") || strings.HasSuffix(name, "surf.mp4")) {
			found++
		}
	}
	if found != 2 {
		t.Errorf("the ZIP holds %d of the 2 files: %v", found, mapKeys(z))
	}

	// Erasure of scope content: no row, no blob.
	var er requestView
	e.do(ann, "POST", "/api/v1/me/requests", map[string]any{"type": "erasure", "scope": "content", "password": testPassword}).json(t, &er)
	e.runJobs(t)
	e.do(ann, "GET", "/api/v1/me/requests/"+er.ID, nil).json(t, &er)
	if er.Status != "completed" {
		t.Fatalf("erasure: %+v", er)
	}
	for _, table := range []string{"content_items", "content_files", "content_actions"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s holds %d rows after the erasure (%v)", table, n, err)
		}
	}
	if keys, err := e.svc.Blobs.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Errorf("blob storage after the erasure: %v, %v", keys, err)
	}
}

// requestView is what the member's request routes answer.
type requestView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Download string `json:"download"`
}

// runJobs runs the jobs that are due, a few rounds (a request's job queues
// its mail).
func (e *env) runJobs(t *testing.T) {
	t.Helper()
	for range 3 {
		if _, err := e.runner.RunDue(context.Background()); err != nil {
			t.Fatalf("run jobs: %v", err)
		}
	}
}

// annID is the subject id of the member a client is signed in as.
func annID(t *testing.T, e *env, c *http.Client) string {
	t.Helper()
	var me struct{ ID string }
	e.do(c, "GET", "/api/v1/me", nil).json(t, &me)
	return me.ID
}

func unzipBytes(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a ZIP (%d bytes): %v", len(b), err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

func mapKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPromiseM1_GuestCommenterHasTheSameRights: someone who commented with
// an address alone asks, by that address, for their data: the access ZIP
// holds their comment; an erasure by email takes it from the thread and
// the database.
func TestPromiseM1_GuestCommenterHasTheSameRights(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	r := e.do(nil, "POST", "/api/v1/threads/demo/comments", map[string]string{"thread": "/p", "name": "Gwen Guest",
		"email": "gwen@example.org", "body": "Planted guest words"})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("guest comment: %d %s", r.StatusCode, r.body)
	}
	tok := e.mailedToken("gwen@example.org", "/comments/confirm")
	r = e.do(nil, "POST", "/comments/confirm", url.Values{"token": {tok}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.body)
	}
	code := func() string {
		list, err := e.outbox.List(context.Background(), mail.AsRecipient, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list {
			if i := strings.Index(m.Text, "enter this code: "); m.To == "gwen@example.org" && i >= 0 {
				return m.Text[i+len("enter this code: ") : i+len("enter this code: ")+8]
			}
		}
		t.Fatal("no code mailed")
		return ""
	}
	var filed struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	e.do(nil, "POST", "/api/v1/requests", map[string]any{"email": "gwen@example.org", "type": "access"}).json(t, &filed)
	r = e.do(nil, "POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": code()})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("verify: %d %s", r.StatusCode, r.body)
	}
	r.json(t, &filed)
	e.runJobs(t)
	r = e.do(nil, "GET", "/api/v1/requests/"+filed.ID+"/download", nil, "Authorization", "Bearer "+filed.Token)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %s", r.StatusCode, r.body)
	}
	if z := unzipBytes(t, r.body); !strings.Contains(string(z["access.json"]), "Planted guest words") {
		t.Errorf("the guest's comment is not in their access ZIP")
	}
	var er struct{ ID string }
	e.do(nil, "POST", "/api/v1/requests", map[string]any{"email": "gwen@example.org", "type": "erasure"}).json(t, &er)
	if r := e.do(nil, "POST", "/api/v1/requests/"+er.ID+"/verify", map[string]string{"code": code()}); r.StatusCode != http.StatusOK {
		t.Fatalf("verify erasure: %d %s", r.StatusCode, r.body)
	}
	e.runJobs(t)
	r = e.do(nil, "GET", "/api/v1/threads/demo?thread=/p", nil)
	if strings.Contains(string(r.body), "Planted guest words") {
		t.Errorf("the erased guest's comment still shows: %s", r.body)
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM content_items`).Scan(&n)
	if n != 0 {
		t.Errorf("%d items left after the guest's erasure", n)
	}
}
