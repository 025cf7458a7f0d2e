package rights_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/mail/mailtest"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestErasureLeavesNoBytes checks erasure on disk. A member has a
// distinctive value in every personal column the registry declares:
// through the API where it reaches, the seeder and a painter for the rest,
// and on SQLite the plaintext columns of an earlier release, which
// re-sealing at start-up moves; a second member has the same. After the
// first member's account erasure and a shutdown, a byte scan of every file
// in the data directory (database, write-ahead log, shared memory, erasure
// ledger, log), of a pg_dump, and on PostgreSQL of the database's files
// and the WAL written since the test began (after a CHECKPOINT) finds none
// of the erased member's values, except one a kept table still holds by a
// stated exemption, where it is live.
//
// The scan proves it reads: before the erasure it must find every value
// that is live in plaintext, a canary row that stays, and a canary row
// just deleted, in the write-ahead log. After the erasure the deleted
// canary must be gone from SQLite's files (secure_delete and the erasure's
// checkpoint, checked while Steward still runs, since closing checkpoints
// too), and the canary that stays must still be found. Values are random
// per run, so other tests writing to the same server cannot be mistaken
// for them.
//
// On PostgreSQL the test reads the server's data directory, so it runs as
// a user who can (root, or the server's owner). When that directory, a
// CHECKPOINT or pg_dump is out of reach it fails under CI=true and skips
// otherwise.
func TestErasureLeavesNoBytes(t *testing.T) {
	for _, pf := range []string{"mixi.yaml", "jmir.yaml"} {
		t.Run(pf, func(t *testing.T) {
			t.Run("sqlite", func(t *testing.T) { erasureScan(t, "sqlite", pf) })
			// JMIR's policy declares every field Mixi's does and more, and
			// a CHECKPOINT and pg_dump take seconds on a busy server.
			if pf == "jmir.yaml" {
				t.Run("postgres", func(t *testing.T) { erasureScan(t, "postgres", pf) })
			}
		})
	}
}

// planted is a member and every distinctive value they were given, each
// with where it went.
type planted struct {
	marker, email, name, password string
	client                        *client
	id                            string
	values                        map[string]string // value -> where it was planted
	legacy                        []string          // values written as an earlier release did
}

func (p *planted) add(value, where string) {
	if _, ok := p.values[value]; !ok {
		p.values[value] = where
	}
}

func (p *planted) needles() []string {
	out := make([]string, 0, len(p.values))
	for v := range p.values {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func erasureScan(t *testing.T, engine, pf string) {
	tok := randomToken(t)
	dir := t.TempDir()
	var dbURL string
	var pg *pgServer
	if engine == "postgres" {
		dbURL = storetest.PostgresURL(t)
		pg = openPGServer(t, dbURL)
	}
	clk := clock.NewFake(t0)
	smtp := mailtest.Start(t)
	w := openScanned(t, dir, dbURL, pf, clk, smtp)

	ann := w.plant("ANN"+tok, engine)
	bob := w.plant("BOB"+tok, engine)
	// A restart, as after an upgrade: re-sealing moves the plaintext of
	// an earlier release.
	w.shutdown()
	w = openScanned(t, dir, dbURL, pf, clk, smtp)
	ann.client.w, bob.client.w = w.web, w.web
	canaryLive, canaryGone := w.canary(tok)
	reason := ann.marker + "-request-reason" // given when filing the erasure
	ann.add(reason, "rights_requests.reason (erasure request)")
	// Ann's data keys as stored, wrapped by the master key: whoever holds
	// a copy of one and the master key can open what it sealed.
	wrapped := map[string]string{}
	categoryOf := map[string]string{} // wrapped key -> its category
	rows, err := w.a.DB.QueryContext(w.ctx, `SELECT category, wrapped FROM data_keys WHERE subject_id = $1 AND wrapped IS NOT NULL`, ann.id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		var k []byte
		rows.Scan(&c, &k)
		wrapped[string(k)] = "ANN wrapped data key (" + c + ")"
		categoryOf[string(k)] = c
	}
	rows.Close()
	needles := append(append(ann.needles(), bob.needles()...), canaryLive, canaryGone)
	where := map[string]string{canaryLive: "canary (kept)", canaryGone: "canary (deleted)"}
	for k, at := range wrapped {
		needles = append(needles, k)
		where[k] = at
	}
	for _, p := range []*planted{ann, bob} {
		for v, at := range p.values {
			where[v] = p.marker[:3] + " " + at
		}
	}

	// Before the erasure the scan finds what is live in plaintext.
	liveBefore := scan(t, w.a.DB, needles)
	before := w.scanAll(tok, needles, pg)
	if _, ok := liveBefore[canaryLive]; !ok {
		t.Fatalf("the canary row is not in the database")
	}
	for n := range liveBefore {
		if n == canaryGone {
			t.Fatalf("the deleted canary row is live")
		}
		if !before.inDatabase(n) {
			t.Errorf("before the erasure the scan does not find %s (live in %v) in the database's files", where[n], liveBefore[n])
		}
		if pg != nil && !before.in(n, "pg_dump") {
			t.Errorf("before the erasure the scan does not find %s (live in %v) in pg_dump", where[n], liveBefore[n])
		}
	}
	if len(wrapped) == 0 {
		t.Fatalf("Ann has no data key")
	}
	for k := range wrapped {
		if !before.inDatabase(k) {
			t.Errorf("before the erasure the scan does not find %s in the database's files", where[k])
		}
	}
	if !before.in(canaryGone, "wal") {
		// On PostgreSQL this shows the scan sees what the server keeps of
		// deleted rows; on SQLite, that it reads the write-ahead log.
		t.Errorf("before the erasure the deleted canary row is not in the write-ahead log: the scan does not read it")
	}
	for _, p := range []*planted{ann, bob} {
		for _, h := range before.hits[p.password] {
			t.Errorf("%s's password is at rest in plaintext: %s", p.marker[:3], h)
		}
		// Re-sealing at start-up left nothing of the earlier release's
		// plaintext, in the live rows or in free space.
		for _, n := range p.legacy {
			for _, h := range before.hits[n] {
				t.Errorf("after re-sealing, %s is still in %s", where[n], h)
			}
		}
	}
	for n, hs := range before.hits {
		for _, h := range hs {
			if h.file == "steward.log" {
				t.Errorf("the log holds %s: %s", where[n], h)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The erasure, filed through the API, re-authenticated.
	smtp.Reset()
	er := ann.client.file(map[string]any{"type": "erasure", "scope": "account", "password": ann.password,
		"reason": reason})
	var final rights.Request
	for range 5 {
		w.run()
		if final, _ = w.a.Rights.Get(w.ctx, er.ID); final.Status.Final() {
			break
		}
		clk.Advance(2 * time.Minute)
	}
	if final.Status != rights.StatusCompleted {
		t.Fatalf("erasure: %s %s", final.Status, final.Result)
	}
	out := outcomeOf(t, final)
	annNeedles := ann.needles()
	liveAfter := scan(t, w.a.DB, append(append([]string{}, annNeedles...), bob.needles()...))
	kept := map[string]map[string]bool{} // needle -> kept tables it is live in
	for _, n := range annNeedles {
		for _, place := range liveAfter[n] {
			table := strings.SplitN(place, ".", 2)[0]
			if !allowedAfterErasure(w.env.reg, table, out.Kept) {
				t.Errorf("after the erasure %s is live in %s", where[n], place)
				continue
			}
			if kept[n] == nil {
				kept[n] = map[string]bool{}
			}
			kept[n][table] = true
		}
	}
	// The other member keeps everything.
	for _, n := range bob.needles() {
		if len(liveBefore[n]) > 0 && !slices.Equal(sorted(liveBefore[n]), sorted(liveAfter[n])) {
			t.Errorf("after Ann's erasure %s is live in %v, was in %v", where[n], liveAfter[n], liveBefore[n])
		}
	}
	var me struct {
		Fields map[string]string `json:"fields"`
	}
	r := bob.client.do("GET", "/api/v1/me", nil)
	want(t, r, 200, "Bob after Ann's erasure")
	r.json(t, &me)
	if me.Fields["name"] != bob.name {
		t.Errorf("Bob's name after Ann's erasure: %q, want %q", me.Fields["name"], bob.name)
	}
	want(t, ann.client.do("GET", "/api/v1/me", nil), 401, "Ann after her erasure")

	check := func(when string, s *scanResult) {
		t.Helper()
		for _, n := range annNeedles {
			var bad, exempt []hit
			for _, h := range s.hits[n] {
				if kept[n] != nil && (h.table == "" || kept[n][h.table]) {
					exempt = append(exempt, h) // live in a kept table, by its stated exemption
					continue
				}
				bad = append(bad, h)
			}
			if len(bad) > 0 {
				t.Errorf("%s %s, %s is in %s", engine, when, where[n], places(bad))
			}
			if len(exempt) > 0 {
				t.Logf("%s %s, %s is kept by an exemption and found in %s", engine, when, where[n], places(exempt))
			}
		}
		for k := range wrapped {
			if !slices.Contains(out.KeysDestroyed, categoryOf[k]) {
				// The erasure keeps the key of what it keeps sealed by a
				// stated exemption (the consent ledger, as proof): it must
				// still be there, live.
				if !s.inDatabase(k) {
					t.Errorf("%s %s, %s is gone, but the erasure kept it", engine, when, where[k])
				}
				continue
			}
			if hs := s.hits[k]; len(hs) > 0 {
				// PostgreSQL keeps the key as it was in the dead tuple and
				// the WAL until VACUUM and recycling: the README states it.
				if engine == "sqlite" {
					t.Errorf("%s %s, %s is in %s", engine, when, where[k], places(hs))
				} else {
					t.Logf("%s %s, %s is in %s", engine, when, where[k], places(hs))
				}
			}
		}
		for _, h := range s.hits[canaryGone] {
			if engine == "sqlite" {
				t.Errorf("%s the deleted canary row is still in %s", when, h)
			}
		}
		if !s.inDatabase(canaryLive) {
			t.Errorf("%s the scan does not find the canary row that stays: it reads nothing", when)
		}
	}
	if engine == "sqlite" {
		// While Steward still runs: the erasure's checkpoint emptied the
		// write-ahead log.
		check("after the erasure", w.scanAll(tok, needles, nil))
	}
	w.shutdown()
	after := w.scanAll(tok, needles, pg)
	check("after the erasure and a shutdown", after)
	if pg != nil && (!after.in(canaryLive, "pg_dump") || !after.in(canaryLive, "database")) {
		t.Errorf("after the erasure the canary row that stays is not in both pg_dump and the database's files")
	}
}

// scanned is a Steward whose files the test scans: the web test harness,
// what shuts it down, and which table owns each SQLite page, as last seen
// while it ran.
type scanned struct {
	*web
	closers []func()
	pages   *sqlitePages
}

// openScanned starts Steward through app.Open on the data directory, with
// its log written there as a file too.
func openScanned(t *testing.T, dir, dbURL, pf string, clk *clock.Fake, smtp *mailtest.Server) *scanned {
	t.Helper()
	ctx := context.Background()
	w := &scanned{web: &web{t: t, ctx: ctx, clock: clk, smtp: smtp}}
	cfg := app.Config{
		DataDir: dir, DatabaseURL: dbURL, PolicyPath: "embedded:" + pf, SMTPURL: smtp.URL(),
		MailFrom: "Steward <steward@example.org>", BaseURL: "http://steward.test", Addr: "127.0.0.1:0",
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	getenv := func(k string) string {
		if k == "STEWARD_MASTER_KEY" {
			return key
		}
		return ""
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "steward.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.Open(ctx, cfg, getenv, log, app.Options{Clock: clk, Identity: func(d *identity.Deps) {
		d.Config.Argon2 = fastArgon2
		d.Config.Limits = roomyLimits
	}})
	if err != nil {
		logFile.Close()
		t.Fatalf("app: %v", err)
	}
	w.a = a
	w.ts = httptest.NewServer(a.Handler)
	w.closers = []func(){w.ts.Close, func() { a.Close() }, func() { logFile.Close() }}
	t.Cleanup(w.shutdown)
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	w.env = &env{t: t, ctx: ctx, db: a.DB, clock: clk, pol: a.Policy.Policy, ver: a.Policy.Version, reg: reg, subjects: a.Subjects,
		door: a.Door, audit: a.Audit, jobs: a.Jobs, outbox: a.Outbox, identity: a.Identity, rights: a.Rights}
	return w
}

// shutdown stops serving and closes Steward, as the binary does on exit.
func (w *scanned) shutdown() {
	if w.closers != nil && w.a.DB.Engine == store.SQLite {
		w.pages = sqlitePageOwners(w.t, w.a.DB)
	}
	for _, c := range w.closers {
		c()
	}
	w.closers = nil
}

// plant signs a member up through the API with every registration field
// the policy asks, adds the self-editable account fields registration does
// not, seeds every personal table the API did not reach, paints every
// personal column of the rows the API wrote, and (on SQLite) writes the
// plaintext columns of an earlier release, as that release would have:
// without secure_delete, and changed once, so an older value lies in free
// space too.
func (w *scanned) plant(marker, engine string) *planted {
	t := w.t
	t.Helper()
	p := &planted{marker: marker, email: strings.ToLower(marker) + "@example.org", name: marker + " Name",
		password: "horse " + marker[3:] + " battery staple " + marker[:1], values: map[string]string{}}
	p.add(p.email, "email")
	p.add(p.name, "name")
	p.add(p.password, "password")
	accounts, _ := w.env.reg.Table("accounts")
	stored := map[string]bool{}
	for _, c := range accounts.Columns {
		if c.Field != "" && w.a.Policy.Policy.CategoryOfField(c.Field) != "" {
			stored[c.Field] = true
		}
	}
	value := func(f string) string {
		switch f {
		case identity.FieldPhone:
			var b [5]byte
			rand.Read(b[:])
			return "+1 " + strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[:4]))%1e9+1e9, 10)
		case identity.FieldDateOfBirth:
			return ""
		}
		return marker + "-account-" + f
	}
	set := map[string]bool{"subjects.email_sealed": true, "accounts.name_sealed": true}
	body := map[string]any{"email": p.email, "name": p.name, "password": p.password, "age_confirmed": true}
	for _, f := range w.a.Policy.Policy.Registration.Fields {
		if _, ok := body[f]; ok || !stored[f] {
			continue
		}
		if v := value(f); v != "" {
			body[f] = v
			p.add(v, "accounts."+f+" (sign-up)")
			set["accounts."+f] = true
			set["accounts."+f+"_sealed"] = true
		}
	}
	c := w.anon()
	want(t, c.do("POST", "/api/v1/accounts", body), 202, "sign up")
	w.run()
	m := w.smtp.WaitFor(t, mailtest.SentTo(p.email), 5*time.Second)
	match := verifyTokenRE.FindStringSubmatch(m.Text)
	if match == nil {
		t.Fatalf("no verification link in %q", m.Text)
	}
	want(t, c.do("POST", "/api/v1/email-verifications/confirm", map[string]string{"token": strings.ReplaceAll(match[1], "%3D", "=")}), 200, "verify")
	p.client = w.anon()
	r := p.client.do("POST", "/api/v1/sessions", map[string]string{"email": p.email, "password": p.password})
	want(t, r, 201, "login")
	var sc struct{ Token string }
	r.json(t, &sc)
	p.client.token = sc.Token
	var me struct {
		ID           string   `json:"id"`
		SelfEditable []string `json:"self_editable"`
	}
	p.client.do("GET", "/api/v1/me", nil).json(t, &me)
	p.id = me.ID
	patch := map[string]string{}
	for _, f := range me.SelfEditable {
		if _, ok := body[f]; ok || !stored[f] {
			continue
		}
		if v := value(f); v != "" {
			patch[f] = v
			p.add(v, "accounts."+f+" (profile)")
			set["accounts."+f] = true
			set["accounts."+f+"_sealed"] = true
		}
	}
	if len(patch) > 0 {
		want(t, p.client.do("PATCH", "/api/v1/me", patch), 200, "profile")
	}
	// A correction asked for and waiting for review: its reason and the
	// corrected value are the member's words.
	if f := rectifiable(w.a.Policy.Policy); f != "" {
		fix, why := marker+"-correction", marker+"-rectification-reason"
		p.client.file(map[string]any{"type": "rectification", "fields": []string{f}, "corrections": map[string]string{f: fix}, "reason": why})
		p.add(fix, "rights_requests.corrections")
		p.add(why, "rights_requests.reason (rectification)")
		set["rights_requests.corrections"], set["rights_requests.reason"] = true, true
	}
	w.run()
	for _, v := range w.env.seed(p.id, marker) {
		p.add(v.Value, v.Table+"."+v.Column+" (seeded)")
	}
	for _, v := range w.env.paint(p.id, marker, set) {
		p.add(v.Value, v.Table+"."+v.Column+" (painted)")
	}
	if engine == "sqlite" {
		for _, v := range w.env.legacy(p.id, marker, map[string]string{"subjects.email": p.email, "accounts.name": p.name}) {
			at := v.Table + "." + v.Column + " (an earlier release)"
			if strings.HasPrefix(v.Value, "changed-") {
				at = v.Table + "." + v.Column + " (an earlier release, before a change)"
			}
			p.add(v.Value, at)
			p.legacy = append(p.legacy, v.Value)
		}
	}
	return p
}

// paint writes a distinctive value into every personal column of the
// subject's existing rows the seeder did not write and the API did not set
// (set lists those as table.column): free text directly, sealed columns
// sealed under the subject's key as the owning package would. Keys,
// references, columns limited to a fixed list, hashes and non-text columns
// keep their values. Rows are told apart by their primary key.
func (e *env) paint(subjectID, marker string, set map[string]bool) []seededValue {
	e.t.Helper()
	var out []seededValue
	view, err := e.door.Subject(e.ctx, e.db, door.Subject(), subjectID)
	if err != nil {
		e.t.Fatalf("paint view %s: %v", subjectID, err)
	}
	for _, t := range e.reg.Personal() {
		cols := seedSchema(e.t, e.db, t.Name)
		var pk []string
		for _, c := range cols {
			if c.pk {
				pk = append(pk, `CAST("`+c.name+`" AS TEXT)`)
			}
		}
		if len(pk) == 0 {
			pk = []string{`CAST("` + t.SubjectColumn + `" AS TEXT)`}
		}
		var keys [][]any
		rows, err := e.db.QueryContext(e.ctx, `SELECT DISTINCT `+strings.Join(pk, ", ")+` FROM "`+t.Name+`" WHERE "`+t.SubjectColumn+`" = $1`, subjectID)
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			k := make([]any, len(pk))
			ptrs := make([]any, len(pk))
			for i := range k {
				ptrs[i] = &k[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			keys = append(keys, k)
		}
		rows.Close()
		where := make([]string, len(pk))
		for i, c := range pk {
			where[i] = fmt.Sprintf("%s = $%d", c, i+2)
		}
		for _, c := range cols {
			decl, _ := t.Column(c.name)
			category := decl.CategoryIn(e.pol.CategoryOfField)
			if category == "" || decl.Hashed || decl.Legacy || c.pk || c.refTable != "" || len(c.choices) > 0 || c.name == t.SubjectColumn ||
				set[t.Name+"."+c.name] || (!decl.Sensitive && typeOf(c.typ) != "text") {
				continue
			}
			for i, k := range keys {
				plain := fmt.Sprintf("%s-%s-%s", marker, t.Name, c.name)
				if i > 0 {
					plain += "-" + strconv.Itoa(i)
				}
				var v any = plain
				if decl.Sensitive {
					if v, err = view.SealCategory(e.ctx, category, []byte(plain)); err != nil {
						e.t.Fatalf("paint seal %s.%s: %v", t.Name, c.name, err)
					}
				}
				if _, err := e.db.ExecContext(e.ctx, `UPDATE "`+t.Name+`" SET "`+c.name+`" = $1 WHERE `+strings.Join(where, " AND "), append([]any{v}, k...)...); err != nil {
					e.t.Fatalf("paint %s.%s: %v", t.Name, c.name, err)
				}
				col := c.name
				if i > 0 {
					col += fmt.Sprintf(" (row %d)", i+1)
				}
				out = append(out, seededValue{t.Name, col, plain})
			}
		}
	}
	return out
}

// legacy writes the plaintext columns an earlier release kept (Legacy in
// the registry) for the subject's rows, as that release did: without
// secure_delete, and changed once, so the first value lies in free space.
// The address and name go in unchanged (same lists them), since
// re-sealing makes them the account's again.
func (e *env) legacy(subjectID, marker string, same map[string]string) []seededValue {
	e.t.Helper()
	conn, err := e.db.Conn(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(e.ctx, `PRAGMA secure_delete = OFF`); err != nil {
		e.t.Fatal(err)
	}
	defer conn.ExecContext(e.ctx, `PRAGMA secure_delete = ON`)
	var out []seededValue
	for _, t := range e.reg.Personal() {
		for _, c := range t.Columns {
			if !c.Legacy || c.Hashed {
				continue
			}
			final := fmt.Sprintf("%s-legacy-%s-%s", marker, t.Name, c.Name)
			if v, ok := same[t.Name+"."+c.Name]; ok {
				final = v
			}
			for _, v := range []string{final + "-earlier", final} {
				if v != final {
					v = "changed-" + v // not to contain final, whose needle is its own
				}
				if _, err := conn.ExecContext(e.ctx, `UPDATE "`+t.Name+`" SET "`+c.Name+`" = $1 WHERE "`+t.SubjectColumn+`" = $2`, v, subjectID); err != nil {
					e.t.Fatalf("legacy %s.%s: %v", t.Name, c.Name, err)
				}
				out = append(out, seededValue{t.Name, c.Name, v})
			}
		}
	}
	return out
}

// canary adds a table of the test's own with a row that stays and a row
// inserted and deleted at once: a scan that reads the files must find the
// first, and on SQLite must not find the second.
func (w *scanned) canary(tok string) (live, gone string) {
	w.t.Helper()
	live, gone = "CANARY"+tok+"-stays", "CANARY"+tok+"-deleted"
	for _, q := range []string{`CREATE TABLE scan_canary (v TEXT NOT NULL)`, `INSERT INTO scan_canary (v) VALUES ('` + live + `'), ('` + gone + `')`,
		`DELETE FROM scan_canary WHERE v = '` + gone + `'`} {
		if _, err := w.a.DB.ExecContext(w.ctx, q); err != nil {
			w.t.Fatal(err)
		}
	}
	return live, gone
}

// hit is one place a value was found: a file (relative to the data
// directory, or pg_dump, base/… and pg_wal/… of the server), the byte
// offset, and the table that owns the page or file when that can be told.
type hit struct {
	file  string
	off   int64
	table string
	kind  string // "database", "wal", "dump", "other"
}

func (h hit) String() string {
	s := fmt.Sprintf("%s at byte %d", h.file, h.off)
	if h.table != "" {
		s += " (" + h.table + ")"
	}
	return s
}

// places lists the files of the hits, each once with its table and how
// many times it was found there.
func places(hs []hit) string {
	count := map[string]int{}
	var order []string
	for _, h := range hs {
		k := h.file
		if h.table != "" {
			k += " (" + h.table + ")"
		}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	for i, k := range order {
		if count[k] > 1 {
			order[i] = fmt.Sprintf("%s ×%d", k, count[k])
		}
	}
	return strings.Join(order, ", ")
}

type scanResult struct {
	hits map[string][]hit
}

// in reports whether the value was found in a file of the kind.
func (s *scanResult) in(needle, kind string) bool {
	for _, h := range s.hits[needle] {
		if h.kind == kind || (kind == "pg_dump" && h.kind == "dump") {
			return true
		}
	}
	return false
}

// inDatabase reports whether the value was found in the database's own
// files (SQLite's file and log, PostgreSQL's relation files and WAL).
func (s *scanResult) inDatabase(needle string) bool {
	return s.in(needle, "database") || s.in(needle, "wal")
}

// scanAll scans every file of the data directory and, on PostgreSQL, the
// server's files of this database, its WAL since the test began (after a
// CHECKPOINT) and a pg_dump of the test's schema.
func (w *scanned) scanAll(tok string, needles []string, pg *pgServer) *scanResult {
	w.t.Helper()
	res := &scanResult{hits: map[string][]hit{}}
	if w.closers != nil && w.a.DB.Engine == store.SQLite {
		w.pages = sqlitePageOwners(w.t, w.a.DB)
	}
	pages := w.pages
	dir := w.a.Config.DataDir
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		kind := "other"
		switch {
		case rel == "steward.db":
			kind = "database"
		case rel == "steward.db-wal":
			kind = "wal"
		}
		scanFile(w.t, path, tok, needles, func(n string, off int64) {
			h := hit{file: rel, off: off, kind: kind}
			if pages != nil {
				h.table = pages.owner(rel, path, off)
			}
			res.hits[n] = append(res.hits[n], h)
		})
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if pg != nil {
		pg.scan(w.t, tok, needles, res)
	}
	return res
}

// scanFile reports every offset of path where a needle starts. Needles
// that hold tok are found from tok's places, the others one by one.
func scanFile(t testing.TB, path, tok string, needles []string, found func(needle string, off int64)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return // removed since it was listed (a WAL segment, a -shm)
		}
		t.Fatal(err)
	}
	anchor := []byte(tok)
	for i := 0; ; {
		j := bytes.Index(b[i:], anchor)
		if j < 0 {
			break
		}
		at := i + j
		for _, n := range needles {
			k := strings.Index(n, tok)
			if k < 0 {
				continue
			}
			if start := at - k; start >= 0 && start+len(n) <= len(b) && string(b[start:start+len(n)]) == n {
				found(n, int64(start))
			}
		}
		i = at + 1
	}
	for _, n := range needles {
		if strings.Contains(n, tok) {
			continue
		}
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(n))
			if j < 0 {
				break
			}
			found(n, int64(i+j))
			i += j + 1
		}
	}
}

// sqlitePages maps SQLite's pages to the table (or the index's table)
// that owns them; pages no table owns are free.
type sqlitePages struct {
	size   int64
	owners map[int64]string
}

func sqlitePageOwners(t testing.TB, db *store.DB) *sqlitePages {
	t.Helper()
	p := &sqlitePages{owners: map[int64]string{}}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&p.size); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT d.pageno, COALESCE(m.tbl_name, d.name) FROM dbstat d LEFT JOIN sqlite_master m ON m.name = d.name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		var name string
		rows.Scan(&n, &name)
		p.owners[n] = name
	}
	return p
}

// owner names the table whose page holds the offset of the database file
// or of a frame of its write-ahead log.
func (p *sqlitePages) owner(rel, path string, off int64) string {
	var page int64
	switch rel {
	case "steward.db":
		page = off/p.size + 1
	case "steward.db-wal":
		const walHeader, frameHeader = 32, 24
		if off < walHeader {
			return ""
		}
		frame := (off - walHeader) / (frameHeader + p.size)
		f, err := os.Open(path)
		if err != nil {
			return ""
		}
		defer f.Close()
		var hdr [4]byte
		if _, err := f.ReadAt(hdr[:], walHeader+frame*(frameHeader+p.size)); err != nil {
			return ""
		}
		page = int64(binary.BigEndian.Uint32(hdr[:]))
	default:
		return ""
	}
	if name, ok := p.owners[page]; ok {
		return name
	}
	return fmt.Sprintf("free page %d", page)
}

// pgServer is what the test reads of the PostgreSQL server: its data
// directory, this database's directory in it, the test's schema, and when
// the test began.
type pgServer struct {
	admin   *sql.DB
	baseURL string
	schema  string
	dataDir string
	dbDir   string
	began   time.Time
}

// unreachable fails under CI and skips elsewhere: reading the server's
// files needs a user who may.
func unreachable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (this part of the test needs to read the PostgreSQL server's files)", args...)
}

func openPGServer(t testing.TB, dbURL string) *pgServer {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// File times have a coarse grain on some file systems.
	s := &pgServer{baseURL: os.Getenv(storetest.EnvURL), schema: u.Query().Get("search_path"), began: time.Now().Add(-2 * time.Second)}
	if s.admin, err = sql.Open("pgx", dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.admin.Close() })
	var oid string
	if err := s.admin.QueryRow(`SELECT current_setting('data_directory'), (SELECT oid::text FROM pg_database WHERE datname = current_database())`).Scan(&s.dataDir, &oid); err != nil {
		unreachable(t, "PostgreSQL: data directory: %v", err)
	}
	s.dbDir = filepath.Join(s.dataDir, "base", oid)
	if _, err := os.ReadDir(s.dbDir); err != nil {
		unreachable(t, "PostgreSQL: %v", err)
	}
	if _, err := os.ReadDir(filepath.Join(s.dataDir, "pg_wal")); err != nil {
		unreachable(t, "PostgreSQL: %v", err)
	}
	if _, err := exec.LookPath("pg_dump"); err != nil {
		unreachable(t, "PostgreSQL: %v", err)
	}
	return s
}

var relFile = regexp.MustCompile(`^(\d+)(_[a-z]+)?(\.\d+)?$`)

// scan checkpoints, then scans the files of this database that can hold
// what the test wrote (the test schema's relations with their TOAST and
// indexes, pg_statistic, which copies column values, and any file no
// relation owns, such as one a rewrite left), the WAL segments written
// since the test began, and a pg_dump of the test schema. Other schemas'
// relations and the rest of the catalog are left out for time: they
// cannot hold values made up by this test.
func (s *pgServer) scan(t testing.TB, tok string, needles []string, res *scanResult) {
	t.Helper()
	// The WAL is read before the CHECKPOINT too, which may remove
	// segments it no longer needs.
	s.scanWAL(t, tok, needles, res)
	if _, err := s.admin.Exec(`CHECKPOINT`); err != nil {
		unreachable(t, "PostgreSQL: CHECKPOINT: %v", err)
	}
	type rel struct {
		oid, toast, indrel uint32
		nsp, name          string
	}
	byOID := map[uint32]*rel{}
	byNode := map[string]*rel{}
	toastOf := map[uint32]uint32{}
	rows, err := s.admin.Query(`SELECT c.oid, COALESCE(pg_relation_filenode(c.oid)::text, ''), c.reltoastrelid, COALESCE(i.indrelid, 0), n.nspname, c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		r := &rel{}
		var node string
		if err := rows.Scan(&r.oid, &node, &r.toast, &r.indrel, &r.nsp, &r.name); err != nil {
			t.Fatal(err)
		}
		byOID[r.oid] = r
		if node != "" {
			byNode[node] = r
		}
		if r.toast != 0 {
			toastOf[r.toast] = r.oid
		}
	}
	rows.Close()
	// owner follows an index to its table and a TOAST table to the table
	// it serves.
	var owner func(r *rel) *rel
	owner = func(r *rel) *rel {
		if r.indrel != 0 && byOID[r.indrel] != nil {
			return owner(byOID[r.indrel])
		}
		if base, ok := toastOf[r.oid]; ok && byOID[base] != nil {
			return byOID[base]
		}
		return r
	}
	entries, err := os.ReadDir(s.dbDir)
	if err != nil {
		unreachable(t, "PostgreSQL: %v", err)
	}
	for _, e := range entries {
		table := ""
		if m := relFile.FindStringSubmatch(e.Name()); m != nil {
			if r := byNode[m[1]]; r != nil {
				o := owner(r)
				switch {
				case o.nsp == s.schema:
					table = o.name
				case o.nsp == "pg_catalog" && o.name == "pg_statistic":
					table = "pg_statistic"
				default:
					continue
				}
			}
		}
		rel := filepath.Join("base", filepath.Base(s.dbDir), e.Name())
		scanFile(t, filepath.Join(s.dbDir, e.Name()), tok, needles, func(n string, off int64) {
			res.hits[n] = append(res.hits[n], hit{file: rel, off: off, table: table, kind: "database"})
		})
	}
	s.scanWAL(t, tok, needles, res)
	dump := filepath.Join(t.TempDir(), "dump.sql")
	cmd := exec.Command("pg_dump", "--dbname="+s.baseURL, "--schema="+s.schema, "--format=plain", "--no-owner", "--file="+dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		unreachable(t, "PostgreSQL: pg_dump: %v: %s", err, out)
	}
	// pg_dump writes bytea in hex.
	inHex := map[string]string{}
	all := slices.Clone(needles)
	for _, n := range needles {
		h := hex.EncodeToString([]byte(n))
		inHex[h] = n
		all = append(all, h)
	}
	scanFile(t, dump, tok, all, func(n string, off int64) {
		if plain, ok := inHex[n]; ok {
			n = plain
		}
		res.hits[n] = append(res.hits[n], hit{file: "pg_dump", off: off, kind: "dump"})
	})
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// scanWAL scans the WAL segments written since the test began, recycled
// ones (renamed for later use, with their old bytes) among them; a hit
// already found is not added again.
func (s *pgServer) scanWAL(t testing.TB, tok string, needles []string, res *scanResult) {
	t.Helper()
	walDir := filepath.Join(s.dataDir, "pg_wal")
	segs, err := os.ReadDir(walDir)
	if err != nil {
		unreachable(t, "PostgreSQL: %v", err)
	}
	for _, e := range segs {
		info, err := e.Info()
		if err != nil || e.IsDir() || info.ModTime().Before(s.began) {
			continue // removed meanwhile, or not written since the test began
		}
		file := "pg_wal/" + e.Name()
		scanFile(t, filepath.Join(walDir, e.Name()), tok, needles, func(n string, off int64) {
			h := hit{file: file, off: off, kind: "wal"}
			if !slices.Contains(res.hits[n], h) {
				res.hits[n] = append(res.hits[n], h)
			}
		})
	}
}

func randomToken(t testing.TB) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
