package activity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

func loadPolicy(t testing.TB, name string) *policy.Policy {
	t.Helper()
	raw, err := fs.ReadFile(examples.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(name, raw)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return p
}

// policyCollector runs a collector configured from an example policy whose
// demo site also accepts https://example.org, with the policy guard and the
// real subject store deciding about members.
func policyCollector(t *testing.T, db *store.DB, name string) (*Collector, *subject.Store, *clock.Fake) {
	t.Helper()
	return policyCollectorWith(t, db, name, nil)
}

// policyCollectorWith is policyCollector with Deps adjusted by set (when
// not nil).
func policyCollectorWith(t *testing.T, db *store.DB, name string, set func(*Deps)) (*Collector, *subject.Store, *clock.Fake) {
	t.Helper()
	p := loadPolicy(t, name)
	cfg, err := FromPolicy(policy.Published{Policy: p, Version: policy.Version{Number: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Sites {
		cfg.Sites[i].Origins = append(cfg.Sites[i].Origins, "https://example.org")
	}
	clk := clock.NewFake(day1)
	subjects := subject.NewStore(db, clk)
	d := doortest.New(t, db, clk, p, subjects)
	deps := Deps{DB: db, Clock: clk, Log: slog.New(slog.DiscardHandler), Config: cfg, Members: NewPolicyGate(db, d)}
	if set != nil {
		set(&deps)
	}
	c, err := New(deps)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, subjects, clk
}

func policyMods() []store.Migrations {
	return append([]store.Migrations{Migrations()}, doortest.Migrations()...)
}

// everything sends one event of every type with every optional field set.
func everything(t *testing.T, c *Collector, r Request) map[string]error {
	t.Helper()
	d := int64(4200)
	events := map[string]Input{
		TypePageview:   {Site: "demo", Type: TypePageview, URL: "https://example.org/articles/1?q=Privacy&utm_campaign=launch", Referrer: "https://news.example.com/story", Screen: "laptop"},
		TypeEngagement: {Site: "demo", Type: TypeEngagement, URL: "https://example.org/articles/1", DurationMS: &d},
		TypeSearch:     {Site: "demo", Type: TypeSearch, URL: "https://example.org/", Search: "open access"},
		TypeOutbound:   {Site: "demo", Type: TypeOutbound, URL: "https://example.org/", Target: "https://partner.example/x"},
		TypeDownload:   {Site: "demo", Type: TypeDownload, URL: "https://example.org/", Target: "https://example.org/paper.pdf"},
		TypeEvent:      {Site: "demo", Type: TypeEvent, URL: "https://example.org/", Name: "figure-zoom", Props: map[string]json.RawMessage{"figure": []byte(`"2"`)}},
	}
	out := map[string]error{}
	for typ, in := range events {
		out[typ] = c.Collect(context.Background(), in, r)
	}
	return out
}

// storedColumns returns which event columns hold anything, over all rows
// of both event tables.
func storedColumns(t *testing.T, db *store.DB) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, table := range []string{"activity_events", "activity_member_events"} {
		for _, col := range []string{"page", "query", "referrer", "search", "link", "asset", "name", "props", "country", "region", "city", "browser", "os", "screen"} {
			if count(t, db, `SELECT COUNT(*) FROM `+table+` WHERE `+col+` <> ''`) > 0 {
				got[col] = true
			}
		}
		if count(t, db, `SELECT COUNT(*) FROM `+table+` WHERE duration_ms > 0`) > 0 {
			got["duration_ms"] = true
		}
	}
	return got
}

// M4: Mixi records page view times, pages viewed and search terms — and
// nothing else of activity: no referrer, device, exit link, download or
// custom event, even when a page sends them; the tracker it serves does not
// even send them.
func TestPromiseM4_RecordsExactlyPagesViewTimesSearchTerms(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		c, _, _ := policyCollector(t, db, "mixi.yaml")
		errs := everything(t, c, req("81.2.69.142", uaChrome))
		for _, typ := range []string{TypePageview, TypeEngagement, TypeSearch} {
			if errs[typ] != nil {
				t.Errorf("%s refused: %v", typ, errs[typ])
			}
		}
		for _, typ := range []string{TypeOutbound, TypeDownload, TypeEvent} {
			if fault.CodeOf(errs[typ]) != fault.Invalid {
				t.Errorf("%s: err = %v, want refused as undeclared", typ, errs[typ])
			}
		}
		got := storedColumns(t, db)
		want := map[string]bool{"page": true, "query": true, "search": true, "duration_ms": true, "country": true}
		for col := range got {
			if !want[col] {
				t.Errorf("column %s holds data Mixi does not declare", col)
			}
		}
		for col := range want {
			if !got[col] {
				t.Errorf("column %s is empty, but Mixi records it", col)
			}
		}
		js, _ := c.Tracker()
		for _, banned := range []string{`F="pvq"`} {
			if !strings.Contains(string(js), banned) {
				t.Errorf("Mixi's tracker should send only page views, view time and searches (%s): %.200s", banned, js)
			}
		}
	})
}

// J2: JMIR records IP-derived location, browser, pages viewed, referrers
// and exit links, asset interactions and device — and never the IP.
func TestPromiseJ2_RecordsDeclaredActivityWithoutIP(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		c, _, _ := policyCollector(t, db, "jmir.yaml")
		for typ, err := range everything(t, c, req("81.2.69.142", uaChrome)) {
			if err != nil {
				t.Errorf("%s refused: %v", typ, err)
			}
		}
		got := storedColumns(t, db)
		for _, col := range []string{"page", "referrer", "search", "link", "asset", "name", "props", "country", "browser", "os", "screen", "duration_ms"} {
			if !got[col] {
				t.Errorf("JMIR records %s, but the column is empty", col)
			}
		}
		for _, col := range []string{"region", "city"} {
			if got[col] {
				t.Errorf("column %s holds data finer than JMIR's country granularity", col)
			}
		}
		dump := dumpDatabase(t, db)
		for _, ip := range []string{"81.2.69.142", "51024590"} {
			if strings.Contains(dump, ip) {
				t.Errorf("the database holds the IP (%s)", ip)
			}
		}
		if js, _ := c.Tracker(); !strings.Contains(string(js), `F="prsvodeq"`) {
			t.Errorf("JMIR's tracker should send every declared kind: %.300s", js)
		}
	})
}

// M5: location comes only from the IP address (at the country level the
// policy allows); a location the client claims is refused, and no IP means
// no location. The IP itself is not kept.
func TestPromiseM5_LocationOnlyFromIP(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		c, _, _ := policyCollector(t, db, "mixi.yaml")
		for _, body := range []string{
			`{"site":"demo","type":"pageview","url":"https://example.org/","country":"FR"}`,
			`{"site":"demo","type":"pageview","url":"https://example.org/","props":{"lat":48.8}}`,
		} {
			in, err := ParseInput([]byte(body))
			if err == nil {
				err = c.Collect(context.Background(), in, req("81.2.69.142", uaChrome))
			}
			if fault.CodeOf(err) != fault.Invalid {
				t.Errorf("%s: err = %v, want refused", body, err)
			}
		}
		c.clk().Set(day1)
		if err := c.Collect(context.Background(), pageview("https://example.org/gb"), req("81.2.69.142", uaChrome)); err != nil {
			t.Fatal(err)
		}
		noIP := Request{UserAgent: uaChrome}
		if err := c.Collect(context.Background(), pageview("https://example.org/none"), noIP); err != nil {
			t.Fatal(err)
		}
		var gb, none string
		db.QueryRowContext(context.Background(), `SELECT country FROM activity_events WHERE page = '/gb'`).Scan(&gb)
		db.QueryRowContext(context.Background(), `SELECT country FROM activity_events WHERE page = '/none'`).Scan(&none)
		if gb != "GB" || none != "" {
			t.Errorf("countries = %q (IP in GB), %q (no IP); want GB and none", gb, none)
		}
		if strings.Contains(dumpDatabase(t, db), "81.2.69.142") {
			t.Error("the database holds the IP")
		}
	})
}

func (c *Collector) clk() *clock.Fake { return c.clock.(*clock.Fake) }

// Signed-in members: JMIR links their events to the account (personal
// data: exported, erased, merged); GPC keeps them anonymous; an objection
// to every purpose using activity stops recording. Mixi never links.
func TestMemberEventsLinkedOnJMIR(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, subjects, _ := policyCollector(t, db, "jmir.yaml")
		d := c.gate.door
		member, err := subjects.Create(ctx, db, d, door.Subject(), subject.KindMember, "reader@example.org", "signup", 3)
		if err != nil {
			t.Fatal(err)
		}
		r := req("81.2.69.142", uaChrome)
		r.SubjectID = member.ID
		if err := c.Collect(ctx, pageview("https://example.org/linked"), r); err != nil {
			t.Fatal(err)
		}
		gpc := r
		gpc.GPC = true
		if err := c.Collect(ctx, pageview("https://example.org/gpc"), gpc); err != nil {
			t.Fatal(err)
		}
		evs, err := MemberEvents(ctx, db, d, door.Subject(), member.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Page != "/linked" || evs[0].PolicyVersion != 3 || evs[0].Country != "GB" {
			t.Fatalf("member events = %+v, want /linked under version 3", evs)
		}
		// At rest the member's values are sealed: the plaintext columns
		// stay empty and the sealed ones do not hold the value.
		var plain, country string
		var sealed []byte
		if err := db.QueryRowContext(ctx, `SELECT page, country, page_sealed FROM activity_member_events WHERE subject_id = $1`, member.ID).
			Scan(&plain, &country, &sealed); err != nil {
			t.Fatal(err)
		}
		if plain != "" || country != "" || len(sealed) == 0 || bytes.Contains(sealed, []byte("/linked")) {
			t.Errorf("stored member event: page %q, country %q, page_sealed %q; want only ciphertext", plain, country, sealed)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events WHERE page = '/gpc'`); n != 1 {
			t.Errorf("GPC event stored anonymously %d times, want 1", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events WHERE page = '/linked'`); n != 0 {
			t.Errorf("linked event also stored anonymously (%d)", n)
		}
		// Merge, then erasure.
		other, _ := subjects.Create(ctx, db, d, door.Subject(), subject.KindMember, "other@example.org", "signup", 3)
		if err := MergeMember(ctx, db, member.ID, other.ID); err != nil {
			t.Fatal(err)
		}
		if evs, _ := MemberEvents(ctx, db, d, door.Subject(), other.ID); len(evs) != 1 {
			t.Errorf("after merge the member has %d events, want 1", len(evs))
		}
		if n, err := EraseMember(ctx, db, other.ID); err != nil || n != 1 {
			t.Errorf("EraseMember = %d, %v; want 1", n, err)
		}
		// An objection to every purpose that uses activity: not recorded.
		purposes := c.gate.purposes[c.gate.category]
		if len(purposes) < 2 {
			t.Fatalf("purposes using activity = %v", purposes)
		}
		for _, pu := range purposes {
			if err := subjects.SetObjection(ctx, db, member.ID, pu, true); err != nil {
				t.Fatal(err)
			}
		}
		err = c.Collect(ctx, pageview("https://example.org/objected"), r)
		if !errors.Is(err, ErrNotRecorded) {
			t.Errorf("after objections: err = %v, want ErrNotRecorded", err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events WHERE page = '/objected'`) + count(t, db, `SELECT COUNT(*) FROM activity_member_events`); n != 0 {
			t.Errorf("objected event stored %d times", n)
		}
	})
}

func TestMemberEventsNotLinkedOnMixi(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, subjects, _ := policyCollector(t, db, "mixi.yaml")
		d := c.gate.door
		member, _ := subjects.Create(ctx, db, d, door.Subject(), subject.KindMember, "fan@example.org", "signup", 3)
		r := req("81.2.69.142", uaChrome)
		r.SubjectID = member.ID
		if err := c.Collect(ctx, pageview("https://example.org/mixi"), r); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_member_events`); n != 0 {
			t.Errorf("Mixi linked %d events to an account", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events`); n != 1 {
			t.Errorf("Mixi stored %d anonymous events, want 1", n)
		}
	})
}

// Linked events whose rollups a crash lost are opened through the door
// and counted by the next start (SQLite) or the process that adopts them
// (PostgreSQL), once.
func TestLinkedEventsCountedAfterACrash(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		hold := func(d *Deps) { d.RollupInterval = time.Hour }
		c, subjects, _ := policyCollectorWith(t, db, "jmir.yaml", hold)
		member, err := subjects.Create(ctx, db, c.gate.door, door.Subject(), subject.KindMember, "reader@example.org", "signup", 3)
		if err != nil {
			t.Fatal(err)
		}
		r := req("81.2.69.142", uaChrome)
		r.SubjectID = member.ID
		for _, page := range []string{"/m1", "/m2", "/m1"} {
			if err := c.Collect(ctx, pageview("https://example.org"+page), r); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Collect(ctx, pageview("https://example.org/anon"), req("81.2.69.1", uaChrome)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_member_events`); n != 3 {
			t.Fatalf("%d linked events stored, want 3", n)
		}
		c.w.crashed.Store(true)
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		next, _, _ := policyCollectorWith(t, db, "jmir.yaml", hold)
		if err := next.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		day := day1.Format(time.DateOnly)
		if v, u := daily(t, db, DimPage, day, "/m1"); v != 2 || u != 1 {
			t.Errorf("/m1 after the crash = %d views %d visitors, want 2/1", v, u)
		}
		if v, u := daily(t, db, DimTotal, day, ""); v != 4 || u != 2 {
			t.Errorf("total after the crash = %d views %d visitors, want 4/2", v, u)
		}
	})
}

// Member events an earlier release stored in plaintext are sealed at
// start-up: the plaintext columns are emptied in the same statement, the
// member still reads them, and a second run finds nothing to do.
func TestResealMemberEvents(t *testing.T) {
	storetest.Each(t, policyMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, subjects, _ := policyCollector(t, db, "jmir.yaml")
		d := c.gate.door
		member, err := subjects.Create(ctx, db, d, door.Subject(), subject.KindMember, "old@example.org", "signup", 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO activity_member_events (subject_id, policy_version, site, at, type, page, search, country, browser)
VALUES ($1, 2, 'demo', $2, 'pageview', '/legacy-page', 'legacy search', 'GB', 'Firefox')`, member.ID, day1); err != nil {
			t.Fatal(err)
		}
		n, err := Reseal(ctx, db, d)
		if err != nil || n != 1 {
			t.Fatalf("Reseal = %d, %v; want 1 row", n, err)
		}
		if left := count(t, db, `SELECT COUNT(*) FROM activity_member_events WHERE page <> '' OR search <> '' OR country <> '' OR browser <> ''`); left != 0 {
			t.Errorf("%d rows keep plaintext after the reseal", left)
		}
		evs, err := MemberEvents(ctx, db, d, door.Subject(), member.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Page != "/legacy-page" || evs[0].Search != "legacy search" || evs[0].Country != "GB" || evs[0].Browser != "Firefox" {
			t.Errorf("member events after the reseal = %+v", evs)
		}
		if n, err := Reseal(ctx, db, d); err != nil || n != 0 {
			t.Errorf("second Reseal = %d, %v; want 0", n, err)
		}
	})
}
