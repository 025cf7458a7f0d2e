package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"steward/internal/content"
	"strings"
	"testing"
)

// pngBytes is a small real PNG.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := 0; x < 40; x++ {
		img.Set(x, x%30, color.RGBA{200, 10, 10, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The content API end to end: a member posts and attaches a photo; the
// public thread shows the text, the author's display name and the file,
// and nothing else of the author; a report reaches a moderator, whose
// decision hides the item; bad uploads are refused with a problem.
func TestContentAPI(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	ann, _ := e.member("ann@example.org", "Ann Example")
	r := e.do(ann, "POST", "/api/v1/me/content", map[string]any{"kind": "comment", "site": "demo", "thread": "/articles/1",
		"body": "Hello <b>world</b>"})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("post: %d %s", r.StatusCode, r.body)
	}
	var item struct{ ID string }
	r.json(t, &item)
	r = e.do(ann, "POST", "/api/v1/me/content/"+item.ID+"/files?name=holiday.png", pngBytes(t), "Content-Type", "application/octet-stream")
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.StatusCode, r.body)
	}
	var file struct {
		ID, Mime string
		Width    int
	}
	r.json(t, &file)
	if file.Mime != "image/png" || file.Width != 40 {
		t.Errorf("uploaded file = %+v", file)
	}
	// A default of private applies to what the member posts without
	// saying, not to what is already posted.
	r = e.do(ann, "PUT", "/api/v1/me/content-settings", map[string]string{"default_visibility": "private"})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("settings: %d %s", r.StatusCode, r.body)
	}
	r = e.do(ann, "POST", "/api/v1/me/content", map[string]any{"kind": "comment", "site": "demo", "thread": "/articles/1", "body": "only for me"})
	if r.StatusCode != http.StatusCreated || !strings.Contains(string(r.body), `"visibility":"private"`) {
		t.Errorf("a post after a private default: %d %s", r.StatusCode, r.body)
	}
	r = e.do(ann, "PUT", "/api/v1/me/content-settings", map[string]string{"default_visibility": "friends"})
	assertProblem(t, r, http.StatusUnprocessableEntity, "invalid")
	// The public thread, as anyone sees it.
	r = e.do(nil, "GET", "/api/v1/threads/demo?thread=/articles/1", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Ann Example") || !strings.Contains(string(r.body), file.ID) ||
		strings.Contains(string(r.body), "only for me") {
		t.Fatalf("thread: %d %s", r.StatusCode, r.body)
	}
	for _, leak := range []string{"ann@example.org", "example.org"} {
		if strings.Contains(string(r.body), leak) {
			t.Errorf("the public thread shows %q: %s", leak, r.body)
		}
	}
	r = e.do(nil, "GET", "/api/v1/files/"+file.ID, nil)
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/png" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("public file: %d %v", r.StatusCode, r.Header)
	}
	if _, err := png.Decode(bytes.NewReader(r.body)); err != nil {
		t.Errorf("the served file is not a PNG: %v", err)
	}
	// A file that is no photo or video, whatever it says it is.
	r = e.do(ann, "POST", "/api/v1/me/content/"+item.ID+"/files?name=cat.png", []byte("<html><script>alert(1)</script></html>"),
		"Content-Type", "image/png")
	assertProblem(t, r, http.StatusUnsupportedMediaType, "unsupported")
	// Someone else's item.
	bob, _ := e.member("bob@example.org", "Bob")
	r = e.do(bob, "POST", "/api/v1/me/content/"+item.ID+"/files?name=x.png", pngBytes(t), "Content-Type", "application/octet-stream")
	assertProblem(t, r, http.StatusNotFound, "not_found")
	// Report, moderate.
	r = e.do(nil, "POST", "/api/v1/content/"+item.ID+"/reports", map[string]string{"reason": "spam"})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("report: %d %s", r.StatusCode, r.body)
	}
	mod, _ := e.staff("mod@example.org", "moderator")
	// The pages: the author's list and the moderators' queue, the text
	// escaped in both.
	for _, pg := range []struct {
		c    *http.Client
		path string
	}{{ann, "/account/content"}, {mod, "/admin/moderation"}} {
		r = e.do(pg.c, "GET", pg.path, nil)
		if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Hello &lt;b&gt;world&lt;/b&gt;") || strings.Contains(string(r.body), "<b>world") {
			t.Errorf("%s: %d, the text not shown escaped:\n%s", pg.path, r.StatusCode, r.body)
		}
	}
	r = e.do(mod, "GET", "/api/v1/admin/moderation", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Hello") {
		t.Fatalf("queue: %d %s", r.StatusCode, r.body)
	}
	r = e.do(bob, "GET", "/api/v1/admin/moderation", nil)
	assertProblem(t, r, http.StatusForbidden, "forbidden")
	r = e.do(mod, "POST", "/api/v1/admin/moderation/"+item.ID, map[string]string{"action": "hide", "reason": "spam", "note": "No ads, please."})
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("moderate: %d %s", r.StatusCode, r.body)
	}
	r = e.do(nil, "GET", "/api/v1/threads/demo?thread=/articles/1", nil)
	if strings.Contains(string(r.body), "Hello") {
		t.Errorf("a hidden item is public: %s", r.body)
	}
	r = e.do(nil, "GET", "/api/v1/files/"+file.ID, nil)
	assertProblem(t, r, http.StatusNotFound, "not_found")
	r = e.do(ann, "GET", "/api/v1/me/content", nil)
	if !strings.Contains(string(r.body), "No ads, please.") || !strings.Contains(string(r.body), `"hidden"`) {
		t.Errorf("the author is not told: %s", r.body)
	}
	// The author still reads their own file.
	r = e.do(ann, "GET", "/api/v1/files/"+file.ID, nil)
	if r.StatusCode != http.StatusOK {
		t.Errorf("the author's own hidden file: %d", r.StatusCode)
	}
	r = e.do(ann, "DELETE", "/api/v1/me/content/"+item.ID, nil)
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.StatusCode, r.body)
	}
	r = e.do(ann, "GET", "/api/v1/files/"+file.ID, nil)
	assertProblem(t, r, http.StatusNotFound, "not_found")
}

// An upload larger than the site takes is refused: at once when its length
// is announced (nothing is read), and while it streams when it is sent
// chunked; nothing is stored either way.
func TestUploadLimits(t *testing.T) {
	e := sqliteEnv(t, envOptions{uploads: content.Limits{MaxPhoto: 64 << 10, MaxVideo: 256 << 10}})
	ann, tok := e.member("ann@example.org", "Ann")
	r := e.do(ann, "POST", "/api/v1/me/content", map[string]any{"kind": "comment", "site": "demo", "thread": "/p", "body": "x"})
	var item struct{ ID string }
	r.json(t, &item)
	url := e.ts.URL + "/api/v1/me/content/" + item.ID + "/files?name=big.mp4"
	// Announced: 10 GB, over a raw connection (a client refuses to send
	// less than it announced); the answer comes before the body.
	u, _ := neturl.Parse(url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		u.RequestURI(), u.Host, tok, int64(10<<30))
	conn.Write(make([]byte, 4096))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("an announced 10 GB upload: %d, want 413", res.StatusCode)
	}
	// Chunked, without a length: cut off once past the limit.
	req, _ := http.NewRequest("POST", url, io.LimitReader(zeros{}, 8<<20))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err = http.DefaultClient.Do(req)
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a chunked 8 MB upload: %d %s, want 413", res.StatusCode, b)
		}
	}
	// A photo over the photo limit but under the video limit.
	big := make([]byte, 100<<10)
	copy(big, pngBytes(t))
	r = e.do(ann, "POST", "/api/v1/me/content/"+item.ID+"/files?name=big.png", big, "Content-Type", "application/octet-stream")
	assertProblem(t, r, http.StatusRequestEntityTooLarge, "too_large")
	keys, _ := e.svc.Blobs.List(context.Background(), "")
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM content_files`).Scan(&n)
	if len(keys) != 0 || n != 0 {
		t.Errorf("refused uploads left %d blobs and %d rows", len(keys), n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A guest's comment from an origin the policy does not declare for the
// site is refused, and stores nothing; a hostile file name is kept only
// as text, sealed, and never used as a path.
func TestGuestCommentOriginAndHostileNames(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	r := e.do(nil, "POST", "/api/v1/threads/demo/comments", map[string]string{"thread": "/p", "name": "Eve", "email": "eve@example.org",
		"body": "spam"}, "Origin", "https://evil.example")
	assertProblem(t, r, http.StatusForbidden, "forbidden")
	r = e.do(nil, "OPTIONS", "/api/v1/threads/demo/comments", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from an undeclared origin: %d %v", r.StatusCode, r.Header)
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM content_items`).Scan(&n)
	if n != 0 {
		t.Errorf("%d items stored from an undeclared origin", n)
	}
	ann, _ := e.member("ann@example.org", "Ann")
	r = e.do(ann, "POST", "/api/v1/me/content", map[string]any{"kind": "comment", "site": "demo", "thread": "/p", "body": "x"})
	var item struct{ ID string }
	r.json(t, &item)
	for _, name := range []string{"../../etc/passwd", "a\x00b.png", strings.Repeat("n", 5000) + ".png", "CON.png"} {
		r = e.do(ann, "POST", "/api/v1/me/content/"+item.ID+"/files?name="+neturl.QueryEscape(name), pngBytes(t), "Content-Type", "application/octet-stream")
		if r.StatusCode != http.StatusCreated {
			t.Errorf("upload named %.20q: %d %s", name, r.StatusCode, r.body)
		}
	}
	keys, _ := e.svc.Blobs.List(context.Background(), "")
	for _, k := range keys {
		if strings.Contains(k, "..") || strings.Contains(k, "passwd") || strings.Contains(k, "nnnn") {
			t.Errorf("a file name reached a storage key: %s", k)
		}
	}
}

// BenchmarkThreadJSON500 serves a public thread of 500 comments by 50
// members over HTTP: the handler's whole work, JSON included.
func BenchmarkThreadJSON500(b *testing.B) {
	e := sqliteEnv(b, envOptions{})
	for i := range 50 {
		c, _ := e.member(fmt.Sprintf("m%d@example.org", i), fmt.Sprintf("Member %d", i))
		for j := range 10 {
			r := e.do(c, "POST", "/api/v1/me/content", map[string]any{"kind": "comment", "site": "demo", "thread": "/big",
				"body": fmt.Sprintf("Comment %d of member %d, with a few words in it.", j, i)})
			if r.StatusCode != http.StatusCreated {
				b.Fatalf("post: %d %s", r.StatusCode, r.body)
			}
		}
	}
	client := e.client()
	b.ResetTimer()
	for b.Loop() {
		res, err := client.Get(e.ts.URL + "/api/v1/threads/demo?thread=/big")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || n < 500*40 {
			b.Fatalf("thread: %d, %d bytes", res.StatusCode, n)
		}
	}
}
