package newsletter_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/mail/mailtest"
	"steward/internal/newsletter"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

func tokenOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	tok := u.Query().Get("token")
	if tok == "" {
		t.Fatalf("no token in %q", link)
	}
	return tok
}

var ev = consent.Evidence{UserAgentFamily: "Firefox", Network: "198.51.100.0/24"}

// TestSubscribeConfirmCampaignUnsubscribe is the end-to-end path
// at the domain level, over a real SMTP server: subscribe → confirmation
// mail → checking the link does not confirm, confirming does → a campaign
// arrives with the RFC 8058 headers → the one-click unsubscribe → the next
// campaign does not reach them.
func TestSubscribeConfirmCampaignUnsubscribe(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "mixi.yaml", true, nil)
		addr := "reader@example.org"
		res, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: addr, SourcePage: "/blog/post-1", Method: consent.MethodForm, Evidence: ev})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != newsletter.Pending {
			t.Fatalf("anonymous subscribe: got %s, want pending", res.Status)
		}
		e.run(t)
		conf := e.smtp.WaitFor(t, mailtest.SentTo(addr), 5*time.Second)
		link := conf.Link("https://steward.example.org/newsletters/confirm")
		if link == "" {
			t.Fatalf("confirmation mail has no confirm link:\n%s", conf.Text)
		}
		tok := tokenOf(t, link)
		// A GET (a scanner following the link) shows the page and changes nothing.
		if _, err := e.svc.CheckConfirmation(ctx, tok); err != nil {
			t.Fatalf("CheckConfirmation: %v", err)
		}
		if subs := e.subsOf(t, addr); subs[0].Status != newsletter.Pending {
			t.Fatalf("after only looking at the link: %s, want pending", subs[0].Status)
		}
		if err := e.svc.Confirm(ctx, tok, ev); err != nil {
			t.Fatalf("Confirm: %v", err)
		}
		subs := e.subsOf(t, addr)
		if subs[0].Status != newsletter.Confirmed || subs[0].ConfirmedAt == nil || subs[0].SourcePage != "/blog/post-1" || subs[0].ConsentRecordID == "" {
			t.Fatalf("after confirming: %+v", subs[0])
		}
		if err := e.svc.Confirm(ctx, tok, ev); err != nil {
			t.Errorf("confirming twice: %v, want nil", err)
		}

		e.smtp.Reset()
		camp, err := e.svc.CreateCampaign(ctx, "s_staff", "updates", newsletter.CampaignInput{Subject: "October news", Text: "Hello readers."})
		if err != nil {
			t.Fatal(err)
		}
		e.run(t)
		m := e.smtp.WaitFor(t, mailtest.SentTo(addr), 5*time.Second)
		lu := m.Header.Get("List-Unsubscribe")
		if !strings.HasPrefix(lu, "<https://steward.example.org/newsletters/unsubscribe?token=") {
			t.Fatalf("List-Unsubscribe: got %q", lu)
		}
		if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Fatalf("List-Unsubscribe-Post: got %q, want List-Unsubscribe=One-Click", got)
		}
		if got := m.Header.Get("List-Id"); !strings.Contains(got, "updates.steward.example.org") {
			t.Errorf("List-Id: got %q", got)
		}
		if !strings.Contains(m.Text, "Unsubscribe (one click, no login): https://steward.example.org/newsletters/unsubscribe?token=") {
			t.Errorf("the text part lacks the unsubscribe link:\n%s", m.Text)
		}
		c, err := e.svc.Campaign(ctx, camp.ID)
		if err != nil || c.Status != "sent" || c.Queued != 1 || c.Skipped != 0 {
			t.Fatalf("campaign progress: %+v, %v", c, err)
		}

		unsub := tokenOf(t, strings.Trim(lu, "<>"))
		if err := e.svc.Unsubscribe(ctx, unsub, ev); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Unsubscribe(ctx, unsub, ev); err != nil {
			t.Errorf("second one-click POST: %v, want nil (idempotent)", err)
		}
		if subs := e.subsOf(t, addr); subs[0].Status != newsletter.Unsubscribed || subs[0].UnsubscribeMethod != "email_link" {
			t.Fatalf("after unsubscribing: %+v", subs[0])
		}
		e.smtp.Reset()
		if _, err := e.svc.CreateCampaign(ctx, "s_staff", "updates", newsletter.CampaignInput{Subject: "November news", Text: "Hello again."}); err != nil {
			t.Fatal(err)
		}
		e.run(t)
		if n := len(e.smtp.Messages()); n != 0 {
			t.Fatalf("after unsubscribing, the next campaign reached %d recipients, want 0", n)
		}
		// The ledger holds the confirmation and the withdrawal, scoped to the list.
		sub, _ := e.subjects.FindByEmail(ctx, db, e.door, addr)
		hist, err := e.ledger.History(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].State != consent.Given || hist[0].Method != consent.MethodEmailLink || hist[1].State != consent.Withdrawn || hist[0].Scope != "list:updates" {
			t.Fatalf("ledger: got %+v", hist)
		}
		// An old confirmation link cannot resubscribe someone who left.
		if err := e.svc.Confirm(ctx, tok, ev); err == nil {
			t.Error("the old confirmation link resubscribed an unsubscribed person")
		}
	})
}

func (e *env) subsOf(t testing.TB, addr string) []newsletter.Subscription {
	t.Helper()
	sub, err := e.subjects.FindByEmail(context.Background(), e.db, e.door, addr)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := e.svc.Subscriptions(context.Background(), sub.ID)
	if err != nil || len(subs) == 0 {
		t.Fatalf("subscriptions of %s: %v, %v", addr, subs, err)
	}
	return subs
}

// confirmDirect subscribes a verified member, which confirms at once.
func (e *env) confirmDirect(t testing.TB, list, addr string) string {
	t.Helper()
	id := e.member(t, addr)
	res, err := e.svc.Subscribe(context.Background(), newsletter.SubscribeInput{List: list, SubjectID: id, Verified: true, Method: consent.MethodForm, SourcePage: "/account/privacy", Evidence: ev})
	if err != nil || res.Status != newsletter.Confirmed {
		t.Fatalf("member subscribe: %+v, %v", res, err)
	}
	return id
}

// TestPromiseJ24_MarketingObjectionStopsCampaignsAtOnce: under JMIR, a
// subscriber who consented and received a campaign objects to direct
// marketing through the rights engine, as a signed-in member does in the
// privacy centre, and gets no campaign from the next one on, although
// their subscription is still confirmed. Marketing suppression alone (as
// the rights engine also sets it) stops campaigns the same way.
func TestPromiseJ24_MarketingObjectionStopsCampaignsAtOnce(t *testing.T) {
	storetest.Each(t, allMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml", true, nil)
		rs := e.rightsOn(t, e.outbox)
		list := e.policy.Newsletters[0].ID
		keep := e.confirmDirect(t, list, "keep@example.org")
		obj := e.confirmDirect(t, list, "object@example.org")
		sup := e.confirmDirect(t, list, "suppress@example.org")
		_ = keep

		// Before the objection, the campaign reaches all three.
		first, err := e.svc.CreateCampaign(ctx, "s_staff", list, newsletter.CampaignInput{Subject: "Welcome", Text: "Hello."})
		if err != nil {
			t.Fatal(err)
		}
		e.run(t)
		for _, addr := range []string{"keep@example.org", "object@example.org", "suppress@example.org"} {
			e.smtp.WaitFor(t, func(m mailtest.Received) bool { return m.Subject == "Welcome" && mailtest.SentTo(addr)(m) }, 5*time.Second)
		}
		if c, _ := e.svc.Campaign(ctx, first.ID); c.Queued != 3 || c.Skipped != 0 {
			t.Fatalf("campaign before the objection: queued %d skipped %d, want 3 and 0", c.Queued, c.Skipped)
		}

		objectToDirectMarketing(t, rs, obj)
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			return e.subjects.SetMarketingSuppressed(ctx, tx, sup, true)
		}); err != nil {
			t.Fatal(err)
		}
		camp, err := e.svc.CreateCampaign(ctx, "s_staff", list, newsletter.CampaignInput{Subject: "Offers", Text: "Read this."})
		if err != nil {
			t.Fatal(err)
		}
		e.run(t)
		e.smtp.WaitFor(t, func(m mailtest.Received) bool { return m.Subject == "Offers" && mailtest.SentTo("keep@example.org")(m) }, 5*time.Second)
		for _, m := range e.smtp.Messages() {
			if m.Subject != "Offers" {
				continue // the first campaign, and the rights engine's own mail
			}
			for _, to := range m.To {
				if to == "object@example.org" || to == "suppress@example.org" {
					t.Errorf("a campaign reached %s after their marketing objection/suppression", to)
				}
			}
		}
		c, _ := e.svc.Campaign(ctx, camp.ID)
		if c.Queued != 1 || c.Skipped != 2 {
			t.Errorf("campaign: queued %d skipped %d, want 1 and 2", c.Queued, c.Skipped)
		}
		for _, who := range []string{obj, sup} {
			var reason string
			if err := db.QueryRowContext(ctx, `SELECT reason FROM newsletter_sends WHERE campaign_id = $1 AND subject_id = $2`, camp.ID, who).Scan(&reason); err != nil {
				t.Fatal(err)
			}
			if reason != "marketing suppressed" {
				t.Errorf("recorded skip reason of %s: %q", who, reason)
			}
		}
		subs, err := e.svc.Subscriptions(ctx, obj)
		if err != nil || len(subs) != 1 || subs[0].Status != newsletter.Confirmed {
			t.Errorf("the objector's subscription: %+v %v, want still confirmed", subs, err)
		}
	})
}

// TestCampaignChecksGuardPerBatch: a withdrawal recorded while a campaign
// is between batches takes effect for the batches still to run.
func TestCampaignChecksGuardPerBatch(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	e := newEnv(t, db, "mixi.yaml", false, func(d *newsletter.Deps) { d.BatchSize = 2; d.BatchInterval = time.Second })
	var ids []string
	for _, a := range []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"} {
		ids = append(ids, e.confirmDirect(t, "updates", a))
	}
	camp, err := e.svc.CreateCampaign(ctx, "s_staff", "updates", newsletter.CampaignInput{Subject: "News", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// Run the first batch only.
	if _, err := e.runner.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	_ = ids
	var sent []string
	rows, _ := db.QueryContext(ctx, `SELECT subject_id FROM newsletter_sends WHERE campaign_id = $1`, camp.ID)
	for rows.Next() {
		var s string
		rows.Scan(&s)
		sent = append(sent, s)
	}
	rows.Close()
	// Withdraw consent for someone not yet reached (purpose-wide, from the privacy centre).
	var later string
	for _, id := range ids {
		if !contains(sent, id) {
			later = id
			break
		}
	}
	if later == "" {
		t.Fatalf("RunDue ran every batch at once (sent %d); the test needs batches", len(sent))
	}
	if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: later, Purpose: "marketing", State: consent.Withdrawn, Method: consent.MethodForm, CollectionPoint: "/account/privacy"}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.clock.Advance(time.Second)
		e.run(t)
	}
	c, _ := e.svc.Campaign(ctx, camp.ID)
	if c.Status != "sent" {
		t.Fatalf("campaign status %s", c.Status)
	}
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE campaign_id = $1 AND subject_id = $2`, camp.ID, later).Scan(&n)
	if n != 0 {
		t.Errorf("the person who withdrew between batches got the campaign")
	}
	if c.Queued+c.Skipped != 4 && c.Queued+c.Skipped != 5 {
		t.Errorf("queued %d + skipped %d", c.Queued, c.Skipped)
	}
	// The withdrawal also ended their subscription (purpose-wide).
	subs, _ := e.svc.Subscriptions(ctx, later)
	if subs[0].Status != newsletter.Unsubscribed {
		t.Errorf("subscription after purpose-wide withdrawal: %s", subs[0].Status)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPromiseM7_StaffUnsubscribeOnRequest: staff can unsubscribe a person
// who asks by mail; the answer is the same for an address that never
// subscribed; everything is audited and recorded in the ledger.
func TestPromiseM7_StaffUnsubscribeOnRequest(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "mixi.yaml", false, nil)
		id := e.confirmDirect(t, "updates", "asker@example.org")
		if err := e.svc.StaffUnsubscribe(ctx, "s_support", "Asker@Example.org ", ""); err != nil {
			t.Fatal(err)
		}
		subs, _ := e.svc.Subscriptions(ctx, id)
		if subs[0].Status != newsletter.Unsubscribed || subs[0].UnsubscribeMethod != "staff" {
			t.Fatalf("after staff unsubscribe: %+v", subs[0])
		}
		hist, _ := e.ledger.History(ctx, id)
		if last := hist[len(hist)-1]; last.Method != consent.MethodStaff || last.Actor != "staff:s_support" || last.State != consent.Withdrawn {
			t.Errorf("ledger: got %+v", last)
		}
		if err := e.svc.StaffUnsubscribe(ctx, "s_support", "never@example.org", ""); err != nil {
			t.Errorf("unknown address: got %v, want the same nil answer", err)
		}
		if err := e.svc.StaffUnsubscribe(ctx, "s_support", "x\r\n@example.org", ""); !fault.Is(err, fault.Invalid) {
			t.Errorf("CR/LF address: got %v, want invalid", err)
		}
		if _, err := e.subjects.FindByEmail(ctx, db, e.door, "never@example.org"); !fault.Is(err, fault.NotFound) {
			t.Error("staff unsubscribe of an unknown address created a subject")
		}
	})
}

// TestTokens: forged, altered, cross-list and wrong-scope tokens are
// refused; an unsubscribe of someone who never subscribed answers like any
// other.
func TestTokens(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	e := newEnv(t, db, "mixi.yaml", false, nil)
	id := e.confirmDirect(t, "updates", "tok@example.org")
	never := e.member(t, "never@example.org")
	good, _ := e.svc.UnsubscribeLink(id, "updates")
	goodTok := tokenOf(t, good)
	other, _ := consent.DeriveLinks(make([]byte, 32), e.clock)
	forged, _ := other.Sign(consent.Claims{Scope: consent.ScopeUnsubscribe, List: "updates", Subject: id})
	cross, _ := e.links.Sign(consent.Claims{Scope: consent.ScopeConfirm, List: "updates", Subject: id, Ref: "x", Expires: e.clock.Now().Add(time.Hour)})
	for name, tok := range map[string]string{
		"forged":        forged,
		"altered":       goodTok[:len(goodTok)-3] + "AAA",
		"confirm scope": cross,
		"garbage":       "not-a-token",
		"empty":         "",
	} {
		if err := e.svc.Unsubscribe(ctx, tok, ev); err != consent.ErrBadLink {
			t.Errorf("%s: got %v, want ErrBadLink", name, err)
		}
	}
	// A valid token for a list the person never joined: same answer as a real one.
	neverTok, _ := e.svc.UnsubscribeLink(never, "updates")
	if err := e.svc.Unsubscribe(ctx, tokenOf(t, neverTok), ev); err != nil {
		t.Errorf("never subscribed: got %v, want nil", err)
	}
	// A token for the list "updates" cannot end a subscription to another list.
	if _, err := e.svc.CreateList(ctx, "s_staff", newsletter.ListInput{ID: "offers", Name: "Offers", Purpose: "marketing"}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Unsubscribe(ctx, goodTok, ev); err != nil {
		t.Fatal(err)
	}
	subs, _ := e.svc.Subscriptions(ctx, id)
	if subs[0].ListID != "updates" || subs[0].Status != newsletter.Unsubscribed {
		t.Fatalf("got %+v", subs)
	}
}

// TestSubscribeBadInput covers the bad-input list for subscribing.
func TestSubscribeBadInput(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	e := newEnv(t, db, "mixi.yaml", false, nil)
	for name, c := range map[string]struct {
		in   newsletter.SubscribeInput
		code fault.Code
	}{
		"CR/LF in address":  {newsletter.SubscribeInput{List: "updates", Email: "a@example.org\r\nBcc: x@example.org"}, fault.Invalid},
		"overlong address":  {newsletter.SubscribeInput{List: "updates", Email: strings.Repeat("a", 300) + "@example.org"}, fault.Invalid},
		"not an address":    {newsletter.SubscribeInput{List: "updates", Email: "nobody"}, fault.Invalid},
		"unknown list":      {newsletter.SubscribeInput{List: "nope", Email: "a@example.org"}, fault.NotFound},
		"hostile list id":   {newsletter.SubscribeInput{List: "../../etc", Email: "a@example.org"}, fault.NotFound},
		"CR/LF source page": {newsletter.SubscribeInput{List: "updates", Email: "a@example.org", SourcePage: "/x\r\ny"}, fault.Invalid},
		"overlong source":   {newsletter.SubscribeInput{List: "updates", Email: "a@example.org", SourcePage: strings.Repeat("p", 600)}, fault.TooLarge},
	} {
		c.in.Evidence = consent.Evidence{Network: "192.0.2." + name}
		if _, err := e.svc.Subscribe(ctx, c.in); fault.CodeOf(err) != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
	for name, in := range map[string]newsletter.CampaignInput{
		"CR/LF subject":    {Subject: "Hi\r\nBcc: all@example.org", Text: "x"},
		"overlong subject": {Subject: strings.Repeat("s", 300), Text: "x"},
		"empty text":       {Subject: "Hi", Text: " "},
	} {
		if _, err := e.svc.CreateCampaign(ctx, "s_staff", "updates", in); err == nil {
			t.Errorf("campaign with %s: got nil error", name)
		}
	}
	if _, err := e.svc.CreateList(ctx, "s_staff", newsletter.ListInput{ID: "x", Name: "Evil\r\nName", Purpose: "marketing"}); !fault.Is(err, fault.Invalid) {
		t.Errorf("list name with CR/LF: got %v", err)
	}
	if _, err := e.svc.CreateList(ctx, "s_staff", newsletter.ListInput{ID: "y", Name: "Y", Purpose: "provide-service"}); !fault.Is(err, fault.Invalid) {
		t.Errorf("list for a contract purpose: got %v", err)
	}
}

// TestSubscriptionFlood: one network is rate limited, and one address gets
// at most one confirmation mail an hour however often it is entered.
func TestSubscriptionFlood(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	e := newEnv(t, db, "mixi.yaml", false, nil)
	limited := 0
	for i := range 20 {
		_, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "victim@example.org", Evidence: consent.Evidence{Network: "203.0.113.0/24"}})
		if fault.Is(err, fault.RateLimited) {
			limited++
		} else if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if limited < 10 {
		t.Errorf("20 requests from one network: %d rate limited, want most", limited)
	}
	// Other networks still get through, but the address is mailed once.
	for i := range 5 {
		if _, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "victim@example.org", Evidence: consent.Evidence{Network: "10." + string(rune('a'+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE kind = 'newsletter-confirm'`).Scan(&n)
	if n != 1 {
		t.Errorf("confirmation mails to one address: %d, want 1", n)
	}
	e.clock.Advance(2 * time.Hour)
	if _, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "victim@example.org", Evidence: consent.Evidence{Network: "10.z"}}); err != nil {
		t.Fatal(err)
	}
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE kind = 'newsletter-confirm'`).Scan(&n)
	if n != 2 {
		t.Errorf("after an hour: %d confirmation mails, want 2", n)
	}
}

// TestPreferences: the preferences link lists the lists, unsubscribes and
// resubscribes without login; an expired link is refused.
func TestPreferences(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	e := newEnv(t, db, "mixi.yaml", false, nil)
	id := e.confirmDirect(t, "updates", "pref@example.org")
	link, _ := e.svc.PreferencesLink(id)
	tok := tokenOf(t, link)
	p, err := e.svc.PreferencesFor(ctx, tok)
	if err != nil || len(p.Items) != 1 || p.Items[0].Status != newsletter.Confirmed {
		t.Fatalf("preferences: %+v, %v", p, err)
	}
	p, err = e.svc.UpdatePreferences(ctx, tok, []newsletter.PreferenceChange{{List: "updates", Subscribed: false}}, ev)
	if err != nil || p.Items[0].Status != newsletter.Unsubscribed {
		t.Fatalf("unsubscribe via preferences: %+v, %v", p, err)
	}
	p, err = e.svc.UpdatePreferences(ctx, tok, []newsletter.PreferenceChange{{List: "updates", Subscribed: true}}, ev)
	if err != nil || p.Items[0].Status != newsletter.Confirmed {
		t.Fatalf("resubscribe via preferences: %+v, %v", p, err)
	}
	e.clock.Advance(91 * 24 * time.Hour)
	if _, err := e.svc.PreferencesFor(ctx, tok); err != consent.ErrBadLink {
		t.Errorf("expired preferences link: got %v", err)
	}
}

// TestTracking: opens and clicks are recorded only where the policy allows
// tracking for the list and the recipient opted in; the click endpoint
// redirects only to the link the token was made for.
func TestTracking(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	p := loadPolicy(t, "mixi.yaml")
	for i := range p.Newsletters {
		p.Newsletters[i].TrackOpens, p.Newsletters[i].TrackClicks = true, true
	}
	et := newEnvPolicy(t, db, p, false, nil)
	yes := et.member(t, "yes@example.org")
	no := et.member(t, "no@example.org")
	for _, c := range []struct {
		id    string
		track bool
	}{{yes, true}, {no, false}} {
		if _, err := et.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", SubjectID: c.id, Verified: true, Tracking: c.track, Method: consent.MethodForm}); err != nil {
			t.Fatal(err)
		}
	}
	camp, err := et.svc.CreateCampaign(ctx, "s_staff", "updates", newsletter.CampaignInput{Subject: "T", Text: "x", HTML: `<p><a href="https://example.org/article?a=1&amp;b=2">read</a></p>`})
	if err != nil {
		t.Fatal(err)
	}
	et.run(t)
	htmlOf := func(id string) string {
		msgs, err := et.outbox.ForSubject(ctx, db, id, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.CampaignID == camp.ID {
				return m.HTML
			}
		}
		t.Fatalf("no campaign mail to %s", id)
		return ""
	}
	if h := htmlOf(no); strings.Contains(h, "/newsletters/t/") {
		t.Errorf("a recipient who did not opt in got tracking links:\n%s", h)
	}
	h := htmlOf(yes)
	if !strings.Contains(h, "/newsletters/t/open?token=") || !strings.Contains(h, "/newsletters/t/click?token=") {
		t.Fatalf("a recipient who opted in got no tracking:\n%s", h)
	}
	m := regexpFind(`/newsletters/t/click\?token=([^&"]+)&amp;url=([^"]+)`, h)
	tok, _ := url.QueryUnescape(m[1])
	target, _ := url.QueryUnescape(strings.ReplaceAll(m[2], "&amp;", "&"))
	got, err := et.svc.Track(ctx, tok, target)
	if err != nil || got != "https://example.org/article?a=1&b=2" {
		t.Fatalf("Track(click): %q, %v", got, err)
	}
	if _, err := et.svc.Track(ctx, tok, "https://evil.example/"); err == nil {
		t.Error("the click token redirected to another target (open redirect)")
	}
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM newsletter_events WHERE subject_id = $1 AND kind = 'click'`, yes).Scan(&n)
	if n != 1 {
		t.Errorf("click events: %d, want 1", n)
	}
	// A valid open token of the recipient who did not opt in records nothing.
	openNo, _ := et.links.Sign(consent.Claims{Scope: consent.ScopeTrack, List: camp.ID, Subject: no, Ref: "open"})
	if _, err := et.svc.Track(ctx, openNo, ""); err != nil {
		t.Fatal(err)
	}
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM newsletter_events WHERE subject_id = $1`, no).Scan(&n)
	if n != 0 {
		t.Errorf("events of a recipient who did not opt in: %d, want 0", n)
	}
}

// TestPruneUnconfirmed: a subscription nobody confirmed is deleted once
// its confirmation link has expired; confirmed ones stay.
func TestPruneUnconfirmed(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "mixi.yaml", false, nil)
		if _, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "never-confirms@example.org", Evidence: ev}); err != nil {
			t.Fatal(err)
		}
		kept := e.confirmDirect(t, "updates", "kept@example.org")
		if n, err := e.svc.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("Prune before expiry: %d, %v", n, err)
		}
		e.clock.Advance(8 * 24 * time.Hour)
		if n, err := e.svc.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("Prune after expiry: %d, %v; want 1", n, err)
		}
		if subs, _ := e.svc.Subscriptions(ctx, kept); len(subs) != 1 {
			t.Errorf("the confirmed subscription was pruned")
		}
	})
}

// TestSubscriptionLimitIsShared: two processes on one database (two
// services here, each with its own clock) share one network's limit: a
// flood spread over both meets the burst once, not once per process, and
// the allowance refills with time for both.
func TestSubscriptionLimitIsShared(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newEnv(t, db, "mixi.yaml", false, nil)
		b := newEnv(t, db, "mixi.yaml", false, nil)
		allowed := func(n int) int {
			ok := 0
			for i := range n {
				e := []*env{a, b}[i%2]
				_, err := e.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: fmt.Sprintf("p%d-%d@example.org", n, i),
					Evidence: consent.Evidence{Network: "198.51.100.0/24"}})
				switch {
				case err == nil:
					ok++
				case !fault.Is(err, fault.RateLimited):
					t.Fatalf("request %d: %v", i, err)
				}
			}
			return ok
		}
		if got := allowed(12); got != 5 {
			t.Fatalf("12 requests spread over two processes: %d allowed, want the burst of 5", got)
		}
		// Six minutes later (on both clocks), one more.
		a.clock.Advance(6 * time.Minute)
		b.clock.Advance(6 * time.Minute)
		if got := allowed(4); got != 1 {
			t.Fatalf("six minutes later: %d allowed, want 1", got)
		}
		// Another network is not touched.
		if _, err := b.svc.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "other@example.org",
			Evidence: consent.Evidence{Network: "192.0.2.0/24"}}); err != nil {
			t.Fatal(err)
		}
		// A refilled network's row is pruned; the digest is all it held.
		a.clock.Advance(time.Hour)
		if _, err := a.svc.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM newsletter_rate`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows left after the prune: %d (%v)", n, err)
		}
	})
}
