package web_test

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"steward/examples"
	"steward/internal/app"
	"steward/internal/mail"
)

// A visitor of the operator's site — another origin than Steward's — reads
// an article's comments and comments with a name and an address, in a real
// Chromium, through the embedded comments.js; the comment shows only once
// the link mailed to the address is followed, under the name given.
func TestBrowserGuestComment(t *testing.T) {
	var api string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		b, err := fs.ReadFile(examples.Site(), name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(name, ".html") {
			b = bytes.ReplaceAll(b, []byte(`src="/tracker.js"`), []byte(`src="`+api+`/tracker.js"`))
			b = bytes.ReplaceAll(b, []byte(`src="/comments.js"`), []byte(`src="`+api+`/comments.js"`))
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}))
	defer site.Close()
	s := startSteward(t, app.Config{PolicyPath: policyWithOrigins(t, "mixi.yaml", site.URL), Dev: true}, nil)
	api = s.url

	bctx := startBrowser(t, 90*time.Second)
	ctx := context.Background()
	fill := `(function(){var f=document.querySelector('.steward-form');f.elements.name.value='Gwen Guest';
f.elements.email.value='gwen@example.org';f.elements.body.value='Counting without cookies, at last.';
f.querySelector('button').click();return true})()`
	walk(t, bctx,
		browserStep{"open the article", chromedp.Steps(chromedp.Navigate(site.URL+"/article.html"), chromedp.WaitVisible(chromedp.CSS("h1")))},
		browserStep{"the thread loads", waitFor(`!!document.querySelector('.steward-list') && document.querySelector('.steward-list').textContent.includes('No comments yet')`, "the empty thread")},
		browserStep{"comment", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fill)(ctx, tg)
			return err
		})},
		browserStep{"told to check the inbox", waitFor(`document.querySelector('.steward-status').textContent.includes('Check your inbox')`, "the answer")},
	)
	if items, _ := s.app.Content.Thread(ctx, "demo", "/article"); len(items) != 0 {
		t.Fatalf("the comment shows before its link was followed: %+v", items)
	}
	// The mailed link, followed (the page's button posts the token).
	list, err := s.app.Outbox.List(ctx, mail.AsRecipient, 100)
	if err != nil {
		t.Fatal(err)
	}
	token := ""
	for _, m := range list {
		if i := strings.Index(m.Text, "/comments/confirm?token="); m.To == "gwen@example.org" && i >= 0 {
			token = strings.Fields(m.Text[i+len("/comments/confirm?token="):])[0]
		}
	}
	if token == "" {
		t.Fatal("no publishing link was mailed")
	}
	walk(t, bctx,
		browserStep{"open the link", chromedp.Steps(chromedp.Navigate(s.url+"/comments/confirm?token="+token), chromedp.WaitVisible(chromedp.CSS("button")))},
		browserStep{"publish", chromedp.Click(chromedp.CSS("main form button"))},
		browserStep{"published", waitFor(`document.body.textContent.includes('Comment published')`, "the confirmation")},
		browserStep{"back to the article", chromedp.Navigate(site.URL + "/article.html")},
		browserStep{"the comment shows with its name", waitFor(`document.querySelector('.steward-list').textContent.includes('Gwen Guest') && document.querySelector('.steward-list').textContent.includes('Counting without cookies, at last.')`, "the published comment")},
	)
	got, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('[data-steward-comments]').innerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "gwen@example.org") {
		t.Errorf("the page shows the commenter's address: %s", got)
	}
}
