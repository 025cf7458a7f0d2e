package rights_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"steward/examples"
	"steward/internal/activity"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/subject"
)

// testModule adds two content tables the product does not have yet, so
// the engine's content, item and archive rules have something to act on:
// comments (field comment) and articles (field post, which JMIR archives).
func testModule() store.Migrations {
	return store.Migrations{Module: "rightstest", FS: fstest.MapFS{
		"0001_content.sql": {Data: []byte(`
CREATE TABLE test_comments (
	id TEXT PRIMARY KEY,
	author_id TEXT NOT NULL,
	thread TEXT NOT NULL,
	body TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX test_comments_author ON test_comments (author_id);
CREATE TABLE test_articles (
	id TEXT PRIMARY KEY,
	author_id TEXT NOT NULL,
	title TEXT NOT NULL,
	body TEXT NOT NULL,
	abstract BYTEA,
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX test_articles_author ON test_articles (author_id);
`)},
	}}
}

// accounts adapts identity to rights.Accounts, as the app does.
type accounts struct{ identity *identity.Service }

func (a accounts) AccountOf(ctx context.Context, subjectID string) (rights.Account, error) {
	acct, err := a.identity.AccountOf(ctx, subjectID)
	if err != nil {
		return rights.Account{}, err
	}
	return rights.Account{Staff: acct.Staff()}, nil
}

func testTables() []registry.Table {
	return []registry.Table{
		{Name: "test_comments", Owner: "rightstest", Dataset: "comments", SubjectColumn: "author_id", Origin: registry.Provided, Source: "subject",
			Description: "Comments.",
			Columns:     []registry.Column{{Name: "id"}, {Name: "author_id"}, {Name: "thread"}, {Name: "body", Field: "comment"}, {Name: "created_at"}}},
		{Name: "test_articles", Owner: "rightstest", Dataset: "articles", SubjectColumn: "author_id", Origin: registry.Provided, Source: "subject",
			PolicyVersionColumn: "policy_version", Description: "Articles.",
			Columns: []registry.Column{{Name: "id"}, {Name: "author_id"}, {Name: "title", Field: "post"}, {Name: "body", Field: "post"},
				{Name: "abstract", Field: "post", Sensitive: true}, {Name: "policy_version"}, {Name: "created_at"}}},
	}
}

// modules is the whole product's schema, activity included even before
// the app wires it, plus the test tables.
func modules() []store.Migrations {
	mods := schema.Migrations()
	have := map[string]bool{}
	for _, m := range mods {
		have[m.Module] = true
	}
	if !have["activity"] {
		mods = append(mods, activity.Migrations())
	}
	return append(mods, testModule())
}

func testRegistry(t testing.TB, extra bool) *registry.Registry {
	t.Helper()
	base, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	tables := append([]registry.Table{}, base.Tables()...)
	if _, ok := base.Table("activity_member_events"); !ok {
		tables = append(tables, activity.Tables()...)
	}
	if extra {
		tables = append(tables, testTables()...)
	}
	reg, err := registry.New(tables)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

var fastArgon2 = identity.Argon2{Memory: 64, Time: 1, Threads: 1}

type env struct {
	t        testing.TB
	ctx      context.Context
	db       *store.DB
	clock    *clock.Fake
	pol      *policy.Policy
	ver      policy.Version
	reg      *registry.Registry
	subjects *subject.Store
	door     *door.Door
	audit    *audit.Log
	jobs     *jobs.Runner
	outbox   *mail.Outbox
	identity *identity.Service
	rights   *rights.Service
	smtp     *mailtest.Server
	ledger   string
}

type envOpts struct {
	smtp  bool
	files rights.FileSource
	tune  func(*rights.Config)
}

func loadPolicy(t testing.TB, name string) *policy.Policy {
	t.Helper()
	data, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEnv(t testing.TB, db *store.DB, policyFile string, o envOpts) *env {
	t.Helper()
	return newEnvWith(t, db, policyFile, o, nil)
}

func loadExampleBytes(name string) ([]byte, error) { return examples.FS.ReadFile(name) }

type sqlTx = sql.Tx

// newEnvWith builds an env; tweak, when set, may change it (its policy)
// before anything is built on it.
func newEnvWith(t testing.TB, db *store.DB, policyFile string, o envOpts, tweak func(*env)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, db: db, clock: clock.NewFake(t0), pol: loadPolicy(t, policyFile)}
	if tweak != nil {
		tweak(e)
	}
	var err error
	if e.ver, _, err = policy.Publish(ctx, db, e.pol, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e.reg = testRegistry(t, true)
	e.subjects = subject.NewStore(db, e.clock)
	e.door = doortest.New(t, db, e.clock, e.pol, e.subjects)
	e.audit = audit.New(db, e.clock)
	e.jobs = jobs.NewRunner(db, e.clock, log)
	mcfg := mail.Config{From: "Steward <steward@example.org>"}
	if o.smtp {
		e.smtp = mailtest.Start(t)
		mcfg.SMTPURL = e.smtp.URL()
	}
	if e.outbox, err = mail.NewOutbox(db, e.clock, e.jobs, e.door, mcfg, log); err != nil {
		t.Fatal(err)
	}
	if e.identity, err = identity.New(identity.Deps{DB: db, Clock: e.clock, Log: log, Subjects: e.subjects, Door: e.door, Audit: e.audit,
		Outbox: e.outbox, Jobs: e.jobs, Policy: policy.Published{Policy: e.pol, Version: e.ver}, BaseURL: "http://steward.test",
		Config: identity.Config{Argon2: fastArgon2}}); err != nil {
		t.Fatal(err)
	}
	e.ledger = t.TempDir() + "/erasure-ledger.jsonl"
	cfg := rights.Config{LedgerPath: e.ledger}
	if o.tune != nil {
		o.tune(&cfg)
	}
	if e.rights, err = rights.New(rights.Deps{DB: db, Clock: e.clock, Log: log, Policy: policy.Published{Policy: e.pol, Version: e.ver}, Registry: e.reg,
		Subjects: e.subjects, Door: e.door, Audit: e.audit, Outbox: e.outbox, Jobs: e.jobs, Accounts: accounts{e.identity},
		BaseURL: "http://steward.test", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if o.files != nil {
		e.rights.AddFiles(o.files)
	}
	return e
}

// run runs every due job, moving the clock past retry backoffs up to
// rounds times while jobs remain.
func (e *env) run() {
	e.t.Helper()
	for range 3 {
		if _, err := e.jobs.RunDue(e.ctx); err != nil {
			e.t.Fatalf("run jobs: %v", err)
		}
	}
}

// member creates a member subject with an account (through the generic
// seeder, which also fills every other personal table).
func (e *env) member(email string) string {
	e.t.Helper()
	sub, err := e.subjects.Create(e.ctx, e.db, e.door, door.Subject(), subject.KindMember, email, "signup", e.ver.Number)
	if err != nil {
		e.t.Fatal(err)
	}
	return sub.ID
}

// mailCount counts the mail to a subject that match, read as the subject
// reads it (the outbox keeps it sealed).
func (e *env) mailCount(subjectID string, match func(mail.Stored) bool) int {
	e.t.Helper()
	msgs, err := e.outbox.ForSubject(e.ctx, e.db, subjectID, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if match(m) {
			n++
		}
	}
	return n
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (e *env) request(id string) rights.Request {
	e.t.Helper()
	r, err := e.rights.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) auditActions(subjectID string) []string {
	e.t.Helper()
	entries, err := e.audit.ForSubject(e.ctx, e.db, subjectID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Action)
	}
	return out
}

func (e *env) auditHas(subjectID, action string) bool {
	for _, a := range e.auditActions(subjectID) {
		if a == action {
			return true
		}
	}
	return false
}

// report reads the subject's access report.
type reportRow struct {
	Item               string         `json:"item"`
	Source             string         `json:"source"`
	PolicyVersion      *int           `json:"policy_version"`
	PolicyVersionBasis string         `json:"policy_version_basis"`
	Fields             map[string]any `json:"fields"`
	Erased             []string       `json:"erased_encrypted_fields"`
}

type reportDataset struct {
	Name    string      `json:"name"`
	Count   int         `json:"count"`
	Kept    string      `json:"kept_after_erasure"`
	Rows    []reportRow `json:"rows"`
	Columns []struct {
		Name string `json:"name"`
	} `json:"columns"`
}

type report struct {
	Format string            `json:"format"`
	Cover  rights.CoverSheet `json:"cover_sheet"`
	Sets   []reportDataset   `json:"datasets"`
}

func (r report) set(name string) *reportDataset {
	for i := range r.Sets {
		if r.Sets[i].Name == name {
			return &r.Sets[i]
		}
	}
	return nil
}

func (e *env) report(subjectID string) report {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.rights.AccessReport(e.ctx, subjectID, &buf); err != nil {
		e.t.Fatalf("access report: %v", err)
	}
	var r report
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		e.t.Fatalf("decode access report: %v\n%s", err, truncate(buf.String(), 2000))
	}
	return r
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// liveTables lists every table of the database.
func liveTables(t testing.TB, db *store.DB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if db.Engine == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

// scan reads every row of every table and reports where each needle
// appears, as "table.column".
func scan(t testing.TB, db *store.DB, needles []string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	for _, table := range liveTables(t, db) {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var s string
				switch x := v.(type) {
				case string:
					s = x
				case []byte:
					s = string(x)
				default:
					continue
				}
				for _, n := range needles {
					if strings.Contains(s, n) {
						found[n] = append(found[n], table+"."+cols[i])
					}
				}
			}
		}
		rows.Close()
	}
	return found
}

// files is a FileSource with the given uploads for every subject.
type files map[string]string

func (f files) Files(ctx context.Context, subjectID string) ([]rights.File, error) {
	var out []rights.File
	for name, body := range f {
		out = append(out, rights.File{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }})
	}
	return out, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
