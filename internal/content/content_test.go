package content_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"testing"
	"time"

	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/clock"
	"steward/internal/content"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/media/mediatest"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

type env struct {
	t   testing.TB
	ctx context.Context
	db  *store.DB
	svc *services.Services
	c   *content.Service
	dir string
	clk *clock.Fake
}

// newEnv builds every service on db as the app does, with the example
// policy file, and files kept in a directory of the test.
func newEnv(t testing.TB, db *store.DB, policyFile string) *env {
	t.Helper()
	dir := t.TempDir()
	svc, clk := servicestest.Build(t, db, servicestest.Example(t, policyFile), services.Config{BaseURL: "http://steward.test", DataDir: dir}, nil)
	return &env{t: t, ctx: context.Background(), db: db, svc: svc, c: svc.Content, dir: dir, clk: clk}
}

func each(t *testing.T, policyFile string, fn func(t *testing.T, e *env)) {
	storetest.Each(t, schema.Migrations(), func(t *testing.T, db *store.DB) { fn(t, newEnv(t, db, policyFile)) })
}

// member signs a member up and returns their subject id.
func (e *env) member(email, name string) string {
	e.t.Helper()
	return servicestest.UnverifiedMember(e.t, e.svc, email, name)
}

func (e *env) post(author, thread, body string, vis string) content.Item {
	e.t.Helper()
	e.clk.Advance(time.Second)
	it, err := e.c.Post(e.ctx, author, content.Draft{Kind: content.KindComment, Site: "demo", Thread: thread, Body: body, Visibility: vis})
	if err != nil {
		e.t.Fatal(err)
	}
	return it
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestPromiseM11_PublicThreadShowsOnlyTheAuthorsName: a public thread
// shows each comment's text with its author's display name and nothing
// else of the author; private and hidden items and restricted authors are
// withheld; the text is at rest only as ciphertext.
func TestPromiseM11_PublicThreadShowsOnlyTheAuthorsName(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Example")
		bob := e.member("bob@example.org", "Bob Builder")
		first := e.post(ann, "/articles/1", "Planted-comment-41c7 <script>alert(1)</script>", content.Public)
		e.post(bob, "/articles/1", "Bob's private note", content.Private)
		e.clk.Advance(time.Second)
		reply, err := e.c.Post(e.ctx, bob, content.Draft{Kind: content.KindComment, Site: "demo", Thread: "/articles/1",
			ParentID: first.ID, Body: "Bob agrees"})
		if err != nil {
			t.Fatal(err)
		}
		thread, err := e.c.Thread(e.ctx, "demo", "/articles/1")
		if err != nil {
			t.Fatal(err)
		}
		if len(thread) != 2 || thread[0].Author != "Ann Example" || thread[1].Author != "Bob Builder" || thread[1].ParentID != first.ID {
			t.Fatalf("thread = %+v", thread)
		}
		if !strings.Contains(thread[0].Body, "<script>") {
			t.Error("the text is not kept as typed (escaping is the renderer's job)")
		}
		// Nothing else of the author: the whole public value, marshalled.
		for _, p := range thread {
			b := []byte(p.Author + p.Body + p.ID + p.ParentID)
			for _, leak := range []string{"@example.org", ann, bob} {
				if bytes.Contains(b, []byte(leak)) {
					t.Errorf("the public item shows %q", leak)
				}
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM content_items WHERE CAST(body_sealed AS TEXT) LIKE '%Planted-comment%'`); n != 0 {
			t.Error("a comment's text is stored in the clear")
		}
		// A restricted author is withheld from public views, and sees their
		// own items still.
		if err := e.svc.Subjects.SetRestriction(e.ctx, e.db, ann, true, nil); err != nil {
			t.Fatal(err)
		}
		thread, _ = e.c.Thread(e.ctx, "demo", "/articles/1")
		if len(thread) != 1 || thread[0].ID != reply.ID {
			t.Errorf("with Ann restricted the thread shows %+v, want Bob's reply alone", thread)
		}
		mine, err := e.c.Mine(e.ctx, ann)
		if err != nil || len(mine) != 1 || mine[0].Body != first.Body {
			t.Errorf("Ann's own items while restricted: %+v, %v", mine, err)
		}
	})
}

// An author edits and deletes their items; nobody else can; a deleted
// item's key is shredded, so a copy of its row no longer opens.
func TestEditAndDelete(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		bob := e.member("bob@example.org", "Bob")
		it := e.post(ann, "/p", "first words", content.Public)
		if _, err := e.c.Edit(e.ctx, bob, it.ID, "not yours", ""); !fault.Is(err, fault.NotFound) {
			t.Errorf("Bob edited Ann's item: %v", err)
		}
		got, err := e.c.Edit(e.ctx, ann, it.ID, "second words", content.Private)
		if err != nil || got.Body != "second words" || got.Visibility != content.Private || got.EditedAt.IsZero() {
			t.Fatalf("edit = %+v, %v", got, err)
		}
		if th, _ := e.c.Thread(e.ctx, "demo", "/p"); len(th) != 0 {
			t.Errorf("a private item is public: %+v", th)
		}
		if err := e.c.Delete(e.ctx, bob, it.ID); !fault.Is(err, fault.NotFound) {
			t.Errorf("Bob deleted Ann's item: %v", err)
		}
		if err := e.c.Delete(e.ctx, ann, it.ID); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT COUNT(*) FROM content_items`); n != 0 {
			t.Errorf("%d items left", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE item = $1 AND destroyed_at IS NULL`, it.ID); n != 0 {
			t.Error("the deleted item's key is still live")
		}
	})
}

// JMIR keeps published works for the archive: a post cannot be deleted or
// edited by its author, and the refusal says why; comments can.
func TestArchivedPostsStay(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		post, err := e.c.Post(e.ctx, ann, content.Draft{Kind: content.KindPost, Site: "demo", Thread: "/works/1", Body: "A study"})
		if err != nil {
			t.Fatal(err)
		}
		mine, _ := e.c.Mine(e.ctx, ann)
		if len(mine) != 1 || !mine[0].Archived || mine[0].Why == "" {
			t.Errorf("the post is not marked archived: %+v", mine)
		}
		err = e.c.Delete(e.ctx, ann, post.ID)
		if !fault.Is(err, fault.Conflict) || !strings.Contains(err.Error(), "archive") {
			t.Errorf("deleting an archived post: %v, want a conflict that says why", err)
		}
		if _, err := e.c.Edit(e.ctx, ann, post.ID, "changed", ""); !fault.Is(err, fault.Conflict) {
			t.Errorf("editing an archived post: %v", err)
		}
		c := e.post(ann, "/works/1", "a comment", content.Public)
		if err := e.c.Delete(e.ctx, ann, c.ID); err != nil {
			t.Errorf("deleting a comment: %v", err)
		}
	})
}

// Bad drafts are refused with the field named, and store nothing.
func TestBadDrafts(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		for name, d := range map[string]content.Draft{
			"empty":        {Kind: content.KindComment, Site: "demo", Thread: "/p", Body: "   "},
			"kind":         {Kind: "essay", Site: "demo", Thread: "/p", Body: "x"},
			"site":         {Kind: content.KindComment, Site: "nowhere", Thread: "/p", Body: "x"},
			"thread":       {Kind: content.KindComment, Site: "demo", Thread: "https://evil.example/p", Body: "x"},
			"query":        {Kind: content.KindComment, Site: "demo", Thread: "/p?x=1", Body: "x"},
			"visibility":   {Kind: content.KindComment, Site: "demo", Thread: "/p", Body: "x", Visibility: "friends"},
			"parent":       {Kind: content.KindComment, Site: "demo", Thread: "/p", Body: "x", ParentID: "i_nosuch"},
			"nul":          {Kind: content.KindComment, Site: "demo", Thread: "/p", Body: "a\x00b"},
			"invalid utf8": {Kind: content.KindComment, Site: "demo", Thread: "/p", Body: "\xff\xfe"},
			"too long":     {Kind: content.KindComment, Site: "demo", Thread: "/p", Body: strings.Repeat("x", 20001)},
		} {
			if _, err := e.c.Post(e.ctx, ann, d); !fault.Is(err, fault.Invalid) {
				t.Errorf("%s: %v, want Invalid", name, err)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM content_items`); n != 0 {
			t.Errorf("%d items stored from bad drafts", n)
		}
	})
}

// Anyone may report a public item; a moderator sees it in the queue, hides
// it with a reason and a note, and the author is told; the action is
// audited; a role without the moderation purpose is refused.
func TestModeration(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		it := e.post(ann, "/p", "a rude comment", content.Public)
		priv := e.post(ann, "/p", "private", content.Private)
		if err := e.c.Report(e.ctx, it.ID, "abuse"); err != nil {
			t.Fatal(err)
		}
		if err := e.c.Report(e.ctx, it.ID, "nonsense"); !fault.Is(err, fault.Invalid) {
			t.Errorf("an unknown reason: %v", err)
		}
		if err := e.c.Report(e.ctx, priv.ID, "spam"); !fault.Is(err, fault.NotFound) {
			t.Errorf("reporting a private item: %v, want NotFound", err)
		}
		mod := content.Staff{ID: "s_mod", Role: "moderator"}
		q, err := e.c.Queue(e.ctx, mod)
		if err != nil || len(q) != 1 || q[0].Body != "a rude comment" || q[0].Reports != 1 {
			t.Fatalf("queue = %+v, %v", q, err)
		}
		if _, err := e.c.Queue(e.ctx, content.Staff{ID: "s_an", Role: "analyst"}); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("an analyst read the queue: %v", err)
		}
		if err := e.c.Moderate(e.ctx, content.Staff{ID: "s_sup", Role: "support"}, it.ID, content.ActionHide, "abuse", ""); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("support moderated: %v", err)
		}
		if err := e.c.Moderate(e.ctx, mod, it.ID, content.ActionHide, "abuse", "Please keep it civil."); err != nil {
			t.Fatal(err)
		}
		if th, _ := e.c.Thread(e.ctx, "demo", "/p"); len(th) != 0 {
			t.Errorf("a hidden item is public: %+v", th)
		}
		if q, _ := e.c.Queue(e.ctx, mod); len(q) != 0 {
			t.Errorf("the report is still open: %+v", q)
		}
		ds, err := e.c.Decisions(e.ctx, ann)
		if err != nil || len(ds) != 1 || ds[0].Action != content.ActionHide || ds[0].Note != "Please keep it civil." {
			t.Errorf("the author's decisions = %+v, %v", ds, err)
		}
		mine, _ := e.c.Mine(e.ctx, ann)
		if len(mine) != 2 {
			t.Errorf("the hidden item left the author's own list: %+v", mine)
		}
		if n := e.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'content.moderated' AND subject_id = $1`, ann); n != 1 {
			t.Errorf("%d moderation entries in the audit log, want 1", n)
		}
		if err := e.c.Moderate(e.ctx, mod, it.ID, content.ActionRestore, "other", ""); err != nil {
			t.Fatal(err)
		}
		if th, _ := e.c.Thread(e.ctx, "demo", "/p"); len(th) != 1 {
			t.Errorf("a restored item is not public: %+v", th)
		}
	})
}

var _ = io.EOF

// pngFile is a small real PNG.
func pngFile(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 20, 10))
	img.Set(3, 3, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (e *env) table(name string) registry.Table {
	for _, t := range content.Tables() {
		if t.Name == name {
			return t
		}
	}
	e.t.Fatalf("no table %s", name)
	return registry.Table{}
}

// TestPromiseM9_ContentErasureTakesRowsBlobsAndKeys: the holder the rights
// engine calls erases a subject's content — rows, blobs, item keys — and
// nobody else's; its verification lists the blob storage, so a file left
// there counts as not erased.
func TestPromiseM9_ContentErasureTakesRowsBlobsAndKeys(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		bob := e.member("bob@example.org", "Bob")
		var annFile, bobFile content.File
		for _, who := range []string{ann, bob} {
			it := e.post(who, "/p", "words of "+who, content.Public)
			f, err := e.c.Attach(e.ctx, who, it.ID, "photo.png", bytes.NewReader(pngFile(t)))
			if err != nil {
				t.Fatal(err)
			}
			if who == ann {
				annFile = f
			} else {
				bobFile = f
			}
		}
		h := e.c.Holder()
		sc := content.Scope{Kind: policy.ScopeContent}
		items := e.table("content_items")
		if n, err := h.Left(e.ctx, e.db, items, []string{ann}, sc); err != nil || n != 1 {
			t.Fatalf("before: Left = %d, %v; want 1", n, err)
		}
		tx, err := e.db.BeginTx(e.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.Erase(e.ctx, tx, items, []string{ann}, sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if out.Erased != 1 {
			t.Errorf("outcome %+v, want 1 item erased", out)
		}
		if n, err := h.Left(e.ctx, e.db, items, []string{ann}, sc); err != nil || n != 0 {
			t.Errorf("after: Left = %d, %v; want 0", n, err)
		}
		for _, q := range []string{`SELECT COUNT(*) FROM content_items WHERE subject_id = $1`, `SELECT COUNT(*) FROM content_files WHERE subject_id = $1`} {
			if n := e.count(q, ann); n != 0 {
				t.Errorf("%s: %d", q, n)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE subject_id = $1 AND destroyed_at IS NULL`, ann); n != 0 {
			t.Errorf("%d of Ann's item keys still live", n)
		}
		if _, _, err := e.c.OpenFile(e.ctx, ann, annFile.ID, false); !fault.Is(err, fault.NotFound) {
			t.Errorf("Ann's file after the erasure: %v", err)
		}
		keys, _ := e.svc.Blobs.List(e.ctx, "content/")
		if len(keys) != 2 || !strings.Contains(keys[0]+keys[1], bobFile.ID) {
			t.Errorf("blobs after Ann's erasure: %v, want Bob's file and its thumbnail", keys)
		}
		// A file left under Ann's name counts as not erased.
		if _, err := e.svc.Blobs.Put(e.ctx, "content/"+strings.ToLower(ann)+"/f_stray", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if n, _ := h.Left(e.ctx, e.db, items, []string{ann}, sc); n != 1 {
			t.Errorf("a stray blob: Left = %d, want 1", n)
		}
	})
}

// guestLink finds the publishing link mailed to an address.
func (e *env) guestLink(email string) string {
	e.t.Helper()
	list, err := e.svc.Outbox.List(e.ctx, mail.AsRecipient, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range list {
		if m.To == email {
			if i := strings.Index(m.Text, "/comments/confirm?token="); i >= 0 {
				tok := m.Text[i+len("/comments/confirm?token="):]
				return strings.Fields(tok)[0]
			}
		}
	}
	e.t.Fatalf("no publishing link mailed to %s", email)
	return ""
}

// TestPromiseM1_GuestComments: someone without an account comments with a
// name and an email address; nothing shows until they follow the link
// mailed to the address; then the comment shows under the name they gave,
// and nothing else of them. Their comment is theirs under the rights
// engine: in their access report, and erased with them.
func TestPromiseM1_GuestComments(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		g := content.Guest{Site: "demo", Thread: "/guest", Name: "Gwen Guest", Email: "gwen@example.org", Body: "Nice article"}
		if err := e.c.PostAsGuest(e.ctx, g); err != nil {
			t.Fatal(err)
		}
		if th, _ := e.c.Thread(e.ctx, "demo", "/guest"); len(th) != 0 {
			t.Fatalf("a comment shows before its link was followed: %+v", th)
		}
		tok := e.guestLink("gwen@example.org")
		for _, bad := range []string{"", "nonsense", tok[:len(tok)-2] + "AA", strings.ToUpper(tok)} {
			if err := e.c.ConfirmGuest(e.ctx, bad); !fault.Is(err, fault.NotFound) {
				t.Errorf("ConfirmGuest(%q) = %v, want NotFound", bad, err)
			}
		}
		if err := e.c.ConfirmGuest(e.ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := e.c.ConfirmGuest(e.ctx, tok); !fault.Is(err, fault.NotFound) {
			t.Errorf("a link followed twice: %v", err)
		}
		th, err := e.c.Thread(e.ctx, "demo", "/guest")
		if err != nil || len(th) != 1 || th[0].Author != "Gwen Guest" || th[0].Body != "Nice article" {
			t.Fatalf("thread = %+v, %v", th, err)
		}
		sub, err := e.svc.Subjects.FindByEmail(e.ctx, e.db, e.svc.Door, "gwen@example.org")
		if err != nil || sub.Kind != subject.KindEmailOnly {
			t.Fatalf("the guest's subject: %+v, %v", sub, err)
		}
		rows, err := e.c.Holder().Export(e.ctx, e.db, e.table("content_items"), []string{sub.ID})
		if err != nil || len(rows) != 1 || rows[0]["body_sealed"] != "Nice article" || rows[0]["author_name_sealed"] != "Gwen Guest" {
			t.Errorf("the guest's export: %v, %v", rows, err)
		}
		tx, _ := e.db.BeginTx(e.ctx, nil)
		if _, err := e.c.Holder().Erase(e.ctx, tx, e.table("content_items"), []string{sub.ID}, content.Scope{Kind: policy.ScopeAccount}); err != nil {
			t.Fatal(err)
		}
		tx.Commit()
		if th, _ := e.c.Thread(e.ctx, "demo", "/guest"); len(th) != 0 {
			t.Errorf("an erased guest's comment shows: %+v", th)
		}
		// An expired link publishes nothing.
		g.Body = "Second thoughts"
		if err := e.c.PostAsGuest(e.ctx, g); err != nil {
			t.Fatal(err)
		}
		late := e.guestLink("gwen@example.org")
		e.clk.Advance(8 * 24 * time.Hour)
		if err := e.c.ConfirmGuest(e.ctx, late); !fault.Is(err, fault.NotFound) {
			t.Errorf("an expired link: %v", err)
		}
		// An unconfirmed comment does not stay: the hourly prune deletes it
		// and shreds its key.
		if n, err := e.c.PruneUnconfirmed(e.ctx); err != nil || n != 1 {
			t.Errorf("prune = %d, %v; want 1", n, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM content_items`); n != 0 {
			t.Errorf("%d items left after the prune", n)
		}
	})
}

// TestPromiseM11_PictureBesideTheName: a member's profile picture shows
// beside their public comments (its id, for its thumbnail), opens for
// anyone while the service may show it, not once the member restricts
// processing, and goes with the account's erasure.
func TestPromiseM11_PictureBesideTheName(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		pic, err := e.c.SetPicture(e.ctx, ann, bytes.NewReader(mediatest.JPEGWithGPS(t)))
		if err != nil {
			t.Fatal(err)
		}
		e.post(ann, "/p", "hello", content.Public)
		th, _ := e.c.Thread(e.ctx, "demo", "/p")
		if len(th) != 1 || th[0].Picture != pic.ID {
			t.Fatalf("thread = %+v, want the picture %s", th, pic.ID)
		}
		rc, f, err := e.c.OpenFile(e.ctx, "", pic.ID, true)
		if err != nil || f.Mime != "image/jpeg" {
			t.Fatalf("the public thumbnail: %+v, %v", f, err)
		}
		rc.Close()
		// A second picture replaces the first, whose key is shredded.
		pic2, err := e.c.SetPicture(e.ctx, ann, bytes.NewReader(pngFile(t)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.c.OpenFile(e.ctx, ann, pic.ID, false); !fault.Is(err, fault.NotFound) {
			t.Errorf("the replaced picture still opens: %v", err)
		}
		if err := e.svc.Subjects.SetRestriction(e.ctx, e.db, ann, true, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.c.OpenFile(e.ctx, "", pic2.ID, true); !fault.Is(err, fault.NotFound) {
			t.Errorf("the picture of a restricted member opens for the public: %v", err)
		}
		if err := e.svc.Subjects.SetRestriction(e.ctx, e.db, ann, false, nil); err != nil {
			t.Fatal(err)
		}
		tx, _ := e.db.BeginTx(e.ctx, nil)
		files := e.table("content_files")
		if _, err := e.c.Holder().Erase(e.ctx, tx, files, []string{ann}, content.Scope{Kind: policy.ScopeAccount}); err != nil {
			t.Fatal(err)
		}
		tx.Commit()
		if n, err := e.c.Holder().Left(e.ctx, e.db, files, []string{ann}, content.Scope{Kind: policy.ScopeAccount}); err != nil || n != 0 {
			t.Errorf("after the account's erasure: Left = %d, %v", n, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM content_files WHERE kind = 'picture'`); n != 0 {
			t.Errorf("%d pictures left", n)
		}
	})
}

// A guest's comments become the member's when their address is merged
// into the member's account: the member reads them, the thread shows
// them, and deleting one shreds the key it was sealed under.
func TestGuestCommentsFollowAMerge(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		if err := e.c.PostAsGuest(e.ctx, content.Guest{Site: "demo", Thread: "/m", Name: "Gwen", Email: "gwen@example.org", Body: "as a guest"}); err != nil {
			t.Fatal(err)
		}
		if err := e.c.ConfirmGuest(e.ctx, e.guestLink("gwen@example.org")); err != nil {
			t.Fatal(err)
		}
		guest, err := e.svc.Subjects.FindByEmail(e.ctx, e.db, e.svc.Door, "gwen@example.org")
		if err != nil {
			t.Fatal(err)
		}
		member := e.member("gwen.member@example.org", "Gwen Member")
		tx, err := e.db.BeginTx(e.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Subjects.Merge(e.ctx, tx, guest.ID, member); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		mine, err := e.c.Mine(e.ctx, member)
		if err != nil || len(mine) != 1 || mine[0].Body != "as a guest" {
			t.Fatalf("the member's items after the merge: %+v, %v", mine, err)
		}
		if th, _ := e.c.Thread(e.ctx, "demo", "/m"); len(th) != 1 || th[0].Body != "as a guest" || th[0].Author != "Gwen" {
			t.Errorf("thread after the merge: %+v", th)
		}
		// Sealed again after the merge (an edit, a moderator's note): still
		// one key, so the name given as a guest still opens, and nothing
		// else of the member shows.
		if _, err := e.c.Edit(e.ctx, member, mine[0].ID, "edited after the merge", ""); err != nil {
			t.Fatal(err)
		}
		if err := e.c.Moderate(e.ctx, content.Staff{ID: "s_mod", Role: "moderator"}, mine[0].ID, content.ActionRestore, "other", "a note"); err != nil {
			t.Fatal(err)
		}
		th, err := e.c.Thread(e.ctx, "demo", "/m")
		if err != nil || len(th) != 1 || th[0].Author != "Gwen" || th[0].Body != "edited after the merge" {
			t.Errorf("thread after an edit and a note: %+v, %v", th, err)
		}
		if mine, err = e.c.Mine(e.ctx, member); err != nil || len(mine) != 1 {
			t.Fatalf("the member's items after an edit: %+v, %v", mine, err)
		}
		if err := e.c.Delete(e.ctx, member, mine[0].ID); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE item = $1 AND destroyed_at IS NULL`, mine[0].ID); n != 0 {
			t.Error("the merged item's key is still live after its deletion")
		}
	})
}

// Found in review: an erased address gets the same answer as any other; a
// pending guest comment cannot be moderated into view;
// a category erasure of photos takes the photos' rows and blobs.
func TestReviewFindings(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		g := content.Guest{Site: "demo", Thread: "/r", Name: "Gwen", Email: "gwen@example.org", Body: "pending words"}
		if err := e.c.PostAsGuest(e.ctx, g); err != nil {
			t.Fatal(err)
		}
		var pending string
		e.db.QueryRowContext(e.ctx, `SELECT id FROM content_items WHERE status = 'pending'`).Scan(&pending)
		mod := content.Staff{ID: "s_mod", Role: "moderator"}
		for _, action := range []string{content.ActionRestore, content.ActionHide} {
			if err := e.c.Moderate(e.ctx, mod, pending, action, "spam", ""); !fault.Is(err, fault.Conflict) {
				t.Errorf("%s of a pending comment: %v, want a conflict", action, err)
			}
		}
		if err := e.c.Report(e.ctx, pending, "spam"); !fault.Is(err, fault.NotFound) {
			t.Errorf("reporting a pending comment: %v", err)
		}
		sub, _ := e.svc.Subjects.FindByEmail(e.ctx, e.db, e.svc.Door, "gwen@example.org")
		if err := e.svc.Subjects.Delete(e.ctx, e.db, sub.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.c.PostAsGuest(e.ctx, g); err != nil {
			t.Errorf("an erased address: %v, want the same answer as any", err)
		}
		// A category erasure of photos.
		ann := e.member("ann@example.org", "Ann")
		it := e.post(ann, "/r", "with a photo", content.Public)
		if _, err := e.c.Attach(e.ctx, ann, it.ID, "p.png", bytes.NewReader(pngFile(t))); err != nil {
			t.Fatal(err)
		}
		sc := content.Scope{Kind: policy.ScopeCategory, Fields: []string{content.FilePhoto}}
		files := e.table("content_files")
		if n, _ := e.c.Holder().Left(e.ctx, e.db, files, []string{ann}, sc); n != 1 {
			t.Errorf("before: Left = %d, want 1", n)
		}
		tx, _ := e.db.BeginTx(e.ctx, nil)
		if _, err := e.c.Holder().Erase(e.ctx, tx, files, []string{ann}, sc); err != nil {
			t.Fatal(err)
		}
		tx.Commit()
		if n, _ := e.c.Holder().Left(e.ctx, e.db, files, []string{ann}, sc); n != 0 {
			t.Errorf("after: Left = %d, want 0", n)
		}
		if keys, _ := e.svc.Blobs.List(e.ctx, "content/"); len(keys) != 0 {
			t.Errorf("blobs left: %v", keys)
		}
		if mine, _ := e.c.Mine(e.ctx, ann); len(mine) != 1 || mine[0].Body != "with a photo" {
			t.Errorf("the comment itself should stay: %+v", mine)
		}
	})
}
