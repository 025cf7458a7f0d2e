package newsletter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"steward/internal/app/services"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/newsletter"
	"steward/internal/policy"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

// rowsHold reports which columns of table's rows of the subject hold
// needle, as stored: every value read back as bytes.
func rowsHold(t testing.TB, db *store.DB, table, subjectID, needle string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM `+table+` WHERE subject_id = $1`, subjectID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	n := 0
	for rows.Next() {
		n++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var b []byte
			switch x := v.(type) {
			case []byte:
				b = x
			case string:
				b = []byte(x)
			default:
				b = fmt.Append(nil, x)
			}
			if bytes.Contains(b, []byte(needle)) {
				out = append(out, cols[i])
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s holds no row of %s", table, subjectID)
	}
	return out
}

// reportedValues returns the values the subject's access report shows for
// a column of a dataset, one per row.
func reportedValues(t testing.TB, rs *rights.Service, subjectID, dataset, column string) []any {
	t.Helper()
	var buf bytes.Buffer
	if err := rs.AccessReport(context.Background(), subjectID, &buf); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Datasets []struct {
			Name string
			Rows []struct{ Fields map[string]any }
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, d := range rep.Datasets {
		if d.Name == dataset {
			for _, r := range d.Rows {
				out = append(out, r.Fields[column])
			}
		}
	}
	return out
}

// TestSubscriptionPageSealed: the page a subscription form was on is free
// text the person gave, so it is stored only sealed: a planted value is in
// no column of the row, by either way of subscribing (a member at once, an
// address by the confirmation link); the member still sees it in their
// subscriptions and in their access report, and the consent record of a
// confirmation by link names it as where consent was collected.
func TestSubscriptionPageSealed(t *testing.T) {
	storetest.Each(t, allMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "mixi.yaml", false, nil)
		rs := e.rightsOn(t, e.outbox)
		const memberPage, linkPage = "/blog/planted-member-page-5d1e", "/blog/planted-link-page-a07c"
		member := e.member(t, "member@example.org")
		if _, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", SubjectID: member, Verified: true,
			SourcePage: memberPage, Method: consent.MethodForm, Evidence: ev}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "reader@example.org",
			SourcePage: linkPage, Method: consent.MethodForm, Evidence: ev}); err != nil {
			t.Fatal(err)
		}
		// The link of the confirmation mail, as its recipient follows it.
		reader := e.subsOf(t, "reader@example.org")[0].SubjectID
		var nonce string
		if err := db.QueryRowContext(ctx, `SELECT confirm_nonce FROM newsletter_subscriptions WHERE subject_id = $1`, reader).Scan(&nonce); err != nil {
			t.Fatal(err)
		}
		tok, err := e.links.Sign(consent.Claims{Scope: consent.ScopeConfirm, List: "updates", Subject: reader, Ref: nonce, Expires: e.clock.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Confirm(ctx, tok, ev); err != nil {
			t.Fatal(err)
		}

		for id, page := range map[string]string{member: memberPage, reader: linkPage} {
			if cols := rowsHold(t, db, "newsletter_subscriptions", id, page); len(cols) > 0 {
				t.Errorf("the source page %q is stored in plaintext in %v", page, cols)
			}
			subs, err := e.svc.Subscriptions(ctx, id)
			if err != nil || len(subs) != 1 || subs[0].SourcePage != page || subs[0].Status != newsletter.Confirmed {
				t.Errorf("the subscriber's own subscriptions: %d, %v; want one, confirmed, from %q", len(subs), err, page)
				if len(subs) > 0 {
					t.Errorf("got %s from %q", subs[0].Status, subs[0].SourcePage)
				}
			}
			if got := reportedValues(t, rs, id, "newsletter_subscriptions", "source_page"); fmt.Sprint(got) != fmt.Sprint([]any{page}) {
				t.Errorf("the access report shows the source page as %v, want %q", got, page)
			}
		}
		hist, err := e.ledger.History(ctx, reader)
		if err != nil || len(hist) == 0 || hist[len(hist)-1].CollectionPoint != linkPage {
			t.Errorf("consent collected by the confirmation link: %d records, %v; want the last collected at %q", len(hist), err, linkPage)
			if len(hist) > 0 {
				t.Errorf("got %q", hist[len(hist)-1].CollectionPoint)
			}
		}
	})
}

// TestTrackedClickSealed: under JMIR (tracking allowed, the link followed is
// activity data the list's purpose uses) a click is recorded with its link
// sealed: the planted link is in no column of the event, the access report
// shows it; once the subscriber objects to direct marketing, their clicks
// are recorded nowhere, although the redirect still works.
func TestTrackedClickSealed(t *testing.T) {
	storetest.Each(t, allMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml", false, nil)
		rs := e.rightsOn(t, e.outbox)
		id := e.member(t, "clicker@example.org")
		if _, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "newsletter", SubjectID: id, Verified: true, Tracking: true,
			Method: consent.MethodForm, Evidence: ev}); err != nil {
			t.Fatal(err)
		}
		const target = "https://example.org/planted-article-3b9f"
		camp, err := e.svc.CreateCampaign(ctx, "s_staff", "newsletter", newsletter.CampaignInput{Subject: "T", Text: "x",
			HTML: `<p><a href="` + target + `">read</a></p>`})
		if err != nil {
			t.Fatal(err)
		}
		e.run(t)
		var body string
		msgs, err := e.outbox.ForSubject(ctx, db, id, 100) // the outbox keeps it sealed
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.CampaignID == camp.ID {
				body = m.HTML
			}
		}
		m := regexpFind(`/newsletters/t/click\?token=([^&"]+)&amp;url=([^"]+)`, body)
		if m == nil {
			t.Fatalf("no click link in the campaign:\n%s", body)
		}
		tok, _ := url.QueryUnescape(m[1])
		click := func() {
			t.Helper()
			if got, err := e.svc.Track(ctx, tok, target); err != nil || got != target {
				t.Fatalf("Track(click) = %q, %v; want a redirect to %s", got, err, target)
			}
		}
		click()
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM newsletter_events WHERE subject_id = $1 AND kind = 'click' AND url_sealed IS NOT NULL`, id).Scan(&n)
		if n != 1 {
			t.Fatalf("sealed click events: %d, want 1", n)
		}
		if cols := rowsHold(t, db, "newsletter_events", id, target); len(cols) > 0 {
			t.Errorf("the clicked link is stored in plaintext in %v", cols)
		}
		if got := reportedValues(t, rs, id, "newsletter_tracking", "url"); fmt.Sprint(got) != fmt.Sprint([]any{target}) {
			t.Errorf("the access report shows the clicked link as %v, want %q", got, target)
		}

		objectToDirectMarketing(t, rs, id)
		click()
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM newsletter_events WHERE subject_id = $1`, id).Scan(&n)
		if n != 1 {
			t.Errorf("events after an objection to direct marketing: %d, want still 1", n)
		}
	})
}

// TestRecordReasonsAreFixed: why a campaign mail was not sent and how a
// subscription ended stay plaintext because only code chooses them, and
// the CHECK lists hold them to that: every reason the guard can give (at
// batch time or at delivery) and every reason of the campaign and the
// outbox is accepted, and any other text, such as a planted personal
// value, is refused.
func TestRecordReasonsAreFixed(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "mixi.yaml", false, nil)
		camp, err := e.svc.CreateCampaign(ctx, "s_staff", "updates", newsletter.CampaignInput{Subject: "T", Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		reasons := []string{"", "unknown subject", "no address", "address not usable", "at delivery: unknown subject", "at delivery: unsubscribed"}
		for r := policy.Reason(1); ; r++ {
			reasons = append(reasons, r.String(), "at delivery: "+r.String())
			if r.String() == "unknown reason" {
				break
			}
		}
		for i, reason := range reasons {
			if _, err := db.ExecContext(ctx, `INSERT INTO newsletter_sends (campaign_id, subject_id, status, reason, created_at) VALUES ($1, $2, 'skipped', $3, $4)`,
				camp.ID, fmt.Sprintf("s_reason%d", i), reason, e.clock.Now()); err != nil {
				t.Errorf("the reason %q is refused: %v", reason, err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO newsletter_sends (campaign_id, subject_id, status, reason, created_at) VALUES ($1, 's_planted', 'skipped', 'planted-reason-e41b', $2)`,
			camp.ID, e.clock.Now()); err == nil {
			t.Error("newsletter_sends accepts free text as a reason")
		}

		id := e.confirmDirect(t, "updates", "leaver@example.org")
		for _, m := range []consent.Method{consent.MethodForm, consent.MethodAPI, consent.MethodEmailLink, consent.MethodGPC, consent.MethodStaff, ""} {
			if _, err := db.ExecContext(ctx, `UPDATE newsletter_subscriptions SET unsubscribe_method = $2 WHERE subject_id = $1`, id, string(m)); err != nil {
				t.Errorf("the unsubscribe method %q is refused: %v", m, err)
			}
		}
		if _, err := db.ExecContext(ctx, `UPDATE newsletter_subscriptions SET unsubscribe_method = 'planted-method-9c2d' WHERE subject_id = $1`, id); err == nil {
			t.Error("newsletter_subscriptions accepts free text as an unsubscribe method")
		}
	})
}

// TestResealMovesPlaintext: a subscription page and a clicked link written
// by the release before sealing are sealed by Reseal and the plaintext
// columns emptied; the subscriber still sees their page and the link opens
// for them; a second run finds nothing; a value whose key was destroyed,
// or of a subject that is gone, is dropped, not sealed again.
func TestResealMovesPlaintext(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml", false, nil)
		id := e.confirmDirect(t, "newsletter", "legacy@example.org")
		now := e.clock.Now()
		// Put the rows back the way the earlier release stored them.
		if _, err := db.ExecContext(ctx, `UPDATE newsletter_subscriptions SET source_page = '/old/page', source_page_sealed = NULL WHERE subject_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO newsletter_events (id, campaign_id, subject_id, kind, url, created_at) VALUES
			('ne_old', 'nc_old', $1, 'click', 'https://old.example/article', $2),
			('ne_gone', 'nc_old', 's_gone', 'click', 'https://old.example/gone', $2)`, id, now); err != nil {
			t.Fatal(err)
		}
		n, err := e.svc.Reseal(ctx)
		if err != nil || n != 3 {
			t.Fatalf("reseal = %d, %v; want the subscription and two events", n, err)
		}
		var left int
		db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM newsletter_subscriptions WHERE source_page <> '')
			+ (SELECT COUNT(*) FROM newsletter_events WHERE url <> '')`).Scan(&left)
		if left != 0 {
			t.Errorf("%d plaintext values left", left)
		}
		if subs, err := e.svc.Subscriptions(ctx, id); err != nil || len(subs) != 1 || subs[0].SourcePage != "/old/page" {
			t.Errorf("subscriptions after reseal: %d, %v; want one from /old/page", len(subs), err)
			if len(subs) > 0 {
				t.Errorf("got one from %q", subs[0].SourcePage)
			}
		}
		var sealed door.Sealed
		if err := db.QueryRowContext(ctx, `SELECT url_sealed FROM newsletter_events WHERE id = 'ne_old'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		v, err := e.door.Subject(ctx, db, door.Subject(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := v.Open(ctx, "outbound_link", sealed); err != nil || got != "https://old.example/article" {
			t.Errorf("re-sealed link opens to %q, %v", got, err)
		}
		var gone door.Sealed
		db.QueryRowContext(ctx, `SELECT url_sealed FROM newsletter_events WHERE id = 'ne_gone'`).Scan(&gone)
		if !gone.IsZero() {
			t.Error("the link of a subject that is gone was sealed, not dropped")
		}
		if n, err := e.svc.Reseal(ctx); err != nil || n != 0 {
			t.Errorf("second reseal = %d, %v", n, err)
		}
		// Erased, then an old copy of the plaintext comes back (a restore):
		// it is dropped, and the sealed value is not replaced.
		if _, err := e.door.ShredAll(ctx, db, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE newsletter_subscriptions SET source_page = '/old/page' WHERE subject_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.Reseal(ctx); err != nil || n != 1 {
			t.Errorf("reseal after erasure = %d, %v", n, err)
		}
		if cols := rowsHold(t, db, "newsletter_subscriptions", id, "/old/page"); len(cols) > 0 {
			t.Errorf("the plaintext page survived in %v", cols)
		}
	})
}

// firstMigrations is m as it stood at its version 1: the schema of a
// database made by the release before sealing.
func firstMigrations(t testing.TB, m store.Migrations) store.Migrations {
	t.Helper()
	entries, err := fs.ReadDir(m.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "0001_") {
			b, err := fs.ReadFile(m.FS, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			old[e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return store.Migrations{Module: m.Module, FS: old}
}

// TestMigrationKeepsRecords: migrating a database of the release before
// (SQLite rebuilds two tables to add the CHECK lists) keeps every
// subscription and send record as it was, turns a value outside the lists
// into the empty method or "unknown reason", and leaves the plaintext page
// and link for Reseal.
func TestMigrationKeepsRecords(t *testing.T) {
	var before []store.Migrations
	for _, m := range mods() {
		if m.Module == "newsletter" {
			m = firstMigrations(t, m)
		}
		before = append(before, m)
	}
	storetest.Each(t, before, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC)
		for _, q := range []string{
			`INSERT INTO newsletter_lists (id, name, purpose, double_opt_in, source, created_at, updated_at) VALUES ('updates', 'U', 'marketing', TRUE, 'policy', $1, $1)`,
			`INSERT INTO newsletter_subscriptions (id, list_id, subject_id, status, source, source_page, policy_version, tracking, created_at, unsubscribed_at, unsubscribe_method, updated_at)
				VALUES ('ns_a', 'updates', 's_a', 'unsubscribed', 'form', '/old/a', 1, TRUE, $1, $1, 'email_link', $1),
				('ns_b', 'updates', 's_b', 'unsubscribed', 'form', '', 1, FALSE, $1, $1, 'by a planted method', $1)`,
			`INSERT INTO newsletter_campaigns (id, list_id, subject_line, body_text, created_by, status, created_at) VALUES ('nc_a', 'updates', 'S', 'T', 's_staff', 'sent', $1)`,
			`INSERT INTO newsletter_sends (campaign_id, subject_id, status, reason, outbox_id, created_at) VALUES
				('nc_a', 's_a', 'queued', '', 'ob_1', $1), ('nc_a', 's_b', 'skipped', 'objection in force', '', $1), ('nc_a', 's_c', 'skipped', 'a planted reason', '', $1)`,
			`INSERT INTO newsletter_events (id, campaign_id, subject_id, kind, url, created_at) VALUES ('ne_a', 'nc_a', 's_a', 'click', 'https://old.example/', $1)`,
		} {
			if _, err := db.ExecContext(ctx, q, at); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Migrate(ctx, mods()); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckSchema(ctx, mods()); err != nil {
			t.Fatal(err)
		}
		var got []string
		rows, err := db.QueryContext(ctx, `SELECT id || ' ' || subject_id || ' ' || status || ' ' || source_page || ' ' || unsubscribe_method FROM newsletter_subscriptions ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			got = append(got, s)
		}
		rows.Close()
		rows, err = db.QueryContext(ctx, `SELECT subject_id || ' ' || status || ' ' || reason || ' ' || outbox_id FROM newsletter_sends ORDER BY subject_id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			got = append(got, s)
		}
		rows.Close()
		want := []string{"ns_a s_a unsubscribed /old/a email_link", "ns_b s_b unsubscribed  ",
			"s_a queued  ob_1", "s_b skipped objection in force ", "s_c skipped unknown reason "}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("after migrating:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var url string
		if err := db.QueryRowContext(ctx, `SELECT url FROM newsletter_events WHERE id = 'ne_a'`).Scan(&url); err != nil || url != "https://old.example/" {
			t.Errorf("event link before Reseal: %q, %v", url, err)
		}
	})
}

// TestStartReseals: Steward's start-up (services.Build) re-seals what an
// earlier release of this package kept in plaintext.
func TestStartReseals(t *testing.T) {
	storetest.Each(t, allMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mk, err := door.NewMaster(bytes.Repeat([]byte{5}, 32))
		if err != nil {
			t.Fatal(err)
		}
		clk := clock.NewFake(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
		build := func() *services.Services {
			t.Helper()
			svc, err := services.Build(ctx, db, loadPolicy(t, "mixi.yaml"), mk, clk, slog.New(slog.DiscardHandler),
				services.Config{BaseURL: "https://steward.example.org", MailFrom: "Steward <steward@example.org>"}, services.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { svc.Close(context.Background()) })
			return svc
		}
		first := build()
		sub, err := first.Subjects.Create(ctx, db, first.Door, door.Subject(), subject.KindMember, "old@example.org", "signup", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.Newsletters.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", SubjectID: sub.ID, Verified: true, Method: consent.MethodForm}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE newsletter_subscriptions SET source_page = '/old/start' WHERE subject_id = $1`, sub.ID); err != nil {
			t.Fatal(err)
		}
		second := build()
		if cols := rowsHold(t, db, "newsletter_subscriptions", sub.ID, "/old/start"); len(cols) > 0 {
			t.Errorf("after start-up the plaintext page is still in %v", cols)
		}
		if subs, err := second.Newsletters.Subscriptions(ctx, sub.ID); err != nil || len(subs) != 1 || subs[0].SourcePage != "/old/start" {
			t.Errorf("subscriptions after start-up: %d, %v; want one from /old/start", len(subs), err)
		}
	})
}
