package rights

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"steward/examples"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

// fuzzExport is a rights service on SQLite whose one data table is
// exported by fuzzRows, with the uploads of fuzzFiles: each fuzz input
// sets the dataset's name, its row and the files, and builds the ZIPs.
type fuzzExport struct {
	s       *Service
	subject string
	table   *liveTable
	row     map[string]any
	files   []File
}

func (f *fuzzExport) Export(ctx context.Context, q store.Q, t registry.Table, subjects []string) ([]map[string]any, error) {
	// A second row of NULLs: every column also exports "nothing".
	return []map[string]any{f.row, {"id": "r2", "subject_id": f.subject}}, nil
}

func (f *fuzzExport) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, subjects []string, sc Scope) (TableOutcome, error) {
	return TableOutcome{}, nil
}

func (f *fuzzExport) Left(ctx context.Context, q store.Q, t registry.Table, subjects []string, sc Scope) (int, error) {
	return 0, nil
}

func (f *fuzzExport) Files(ctx context.Context, subjectID string) ([]File, error) {
	return f.files, nil
}

func newFuzzExport(t testing.TB) *fuzzExport {
	ctx := context.Background()
	table := store.Migrations{Module: "fuzzexport", FS: fstest.MapFS{"0001_rows.sql": {Data: []byte(`
CREATE TABLE fuzz_rows (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	body TEXT,
	n INTEGER,
	score REAL,
	flag BOOLEAN,
	created_at TIMESTAMP
);`)}}}
	db := storetest.SQLite(t, append(doortest.Migrations(), jobs.Migrations(), mail.Migrations(), identity.Migrations(), Migrations(), table))
	clk := clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	data, err := examples.FS.ReadFile("jmir.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("jmir.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	ver, _, err := policy.Publish(ctx, db, pol, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(Tables(), []registry.Table{{Name: "fuzz_rows", Owner: "fuzzexport", Dataset: "fuzz", SubjectColumn: "subject_id",
		Origin: registry.Provided, Source: "subject", Description: "Rows the fuzzer writes.",
		Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "body", Field: "comment"}, {Name: "n", Field: "comment"},
			{Name: "score", Field: "comment"}, {Name: "flag", Field: "comment"}, {Name: "created_at"}}}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	subjects := subject.NewStore(db, clk)
	d := doortest.New(t, db, clk, pol, subjects)
	al := audit.New(db, clk)
	runner := jobs.NewRunner(db, clk, log)
	outbox, err := mail.NewOutbox(db, clk, runner, d, mail.Config{From: "Steward <steward@example.org>"}, log)
	if err != nil {
		t.Fatal(err)
	}
	pub := policy.Published{Policy: pol, Version: ver}
	accounts, err := identity.New(identity.Deps{DB: db, Clock: clk, Log: log, Subjects: subjects, Door: d, Audit: al, Outbox: outbox,
		Jobs: runner, Policy: pub, BaseURL: "http://steward.test", Config: identity.Config{Argon2: identity.Argon2{Memory: 64, Time: 1, Threads: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Deps{DB: db, Clock: clk, Log: log, Policy: pub, Registry: reg, Subjects: subjects, Door: d,
		Audit: al, Outbox: outbox, Jobs: runner, Accounts: fuzzAccounts{accounts}, BaseURL: "http://steward.test"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subjects.Create(ctx, db, d, door.Subject(), subject.KindMember, "ann@example.org", "signup", ver.Number)
	if err != nil {
		t.Fatal(err)
	}
	// One stored row, so the inventory counts the dataset as held; the
	// exporter supplies what is exported.
	if _, err := db.Exec(`INSERT INTO fuzz_rows (id, subject_id) VALUES ('r1', $1)`, sub.ID); err != nil {
		t.Fatal(err)
	}
	f := &fuzzExport{s: s, subject: sub.ID}
	s.Register("fuzz_rows", f)
	s.AddFiles(f)
	sc, err := s.loadedSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.table = sc.byName["fuzz_rows"]
	return f
}

// FuzzExportZIP: whatever a dataset is called (within what the registry
// accepts), whatever its values and whatever the uploads are named, the access and portability exports are
// ZIPs that open, whose entries stay inside the archive, whose JSON holds
// the values as they were (invalid UTF-8 aside, which JSON cannot carry)
// and whose CSV reads back.
func FuzzExportZIP(f *testing.F) {
	f.Add("comments", "Hello, world", int64(42), 1.5, true, "holiday.jpg", "../../etc/passwd", []byte("JPEG"))
	f.Add("../../evil", "=HYPERLINK(\"x\")\r\n\"quoted\"", int64(-1), -0.0, false, `..\..\win.ini`, "CON.txt", []byte{})
	f.Add("a/b", "\xff\xfe<script>", int64(math.MinInt64), 1e308, true, "a.\x00b", "a."+strings.Repeat("b", 150), []byte{0, 1})
	f.Add("", "", int64(0), math.Inf(1), false, "", "", []byte("x"))
	f.Add("données", "naïve café 日本語 \U0001F600", int64(7), math.NaN(), true, "x.pdf", "X.PDF", []byte("PDF"))
	fx := newFuzzExport(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, dataset, text string, n int64, score float64, flag bool, file1, file2 string, content []byte) {
		// A name the registry refuses never reaches an export.
		if _, err := registry.New([]registry.Table{{Name: "t", Owner: "o", Dataset: dataset, SubjectColumn: "s", Origin: registry.Provided,
			Source: "subject", Columns: []registry.Column{{Name: "s"}}}}); err != nil {
			dataset = "fuzz"
		}
		fx.table.Dataset = dataset
		at := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
		fx.row = map[string]any{"id": "r1", "subject_id": fx.subject, "body": text, "n": n, "score": score, "flag": flag, "created_at": at}
		fx.files = []File{fuzzFile(file1, append([]byte("1"), content...)), fuzzFile(file2, append([]byte("2"), content...))}
		for _, typ := range []Type{Access, Portability} {
			data, _, err := fx.s.buildExport(ctx, Request{ID: "r_fuzz", Type: typ, SubjectID: fx.subject}, func(int) {})
			if err != nil {
				t.Fatalf("%s export (dataset %q, score %v): %v", typ, dataset, score, err)
			}
			checkExportZIP(t, fx, typ, data, text, n, score, flag)
		}
	})
}

func fuzzFile(name string, content []byte) File {
	return File{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }}
}

func checkExportZIP(t *testing.T, fx *fuzzExport, typ Type, data []byte, text string, n int64, score float64, flag bool) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("%s export: the ZIP does not open: %v", typ, err)
	}
	entries := map[string][]byte{}
	for _, zf := range zr.File {
		name := zf.Name
		if !utf8.ValidString(name) || name == "" || strings.ContainsAny(name, "\\\x00:") || path.IsAbs(name) ||
			path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
			t.Fatalf("%s export: unsafe entry name %q", typ, name)
		}
		if _, dup := entries[name]; dup {
			t.Fatalf("%s export: entry %q twice", typ, name)
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatalf("%s export: open %q: %v", typ, name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s export: read %q: %v", typ, name, err)
		}
		entries[name] = b
	}
	main := "access.json"
	if typ == Portability {
		main = "data.json"
		var schema any
		if err := json.Unmarshal(entries["data.schema.json"], &schema); err != nil {
			t.Fatalf("portability export: data.schema.json: %v", err)
		}
	}
	if !utf8.Valid(entries["index.html"]) {
		t.Fatalf("%s export: index.html is not valid UTF-8", typ)
	}

	// The JSON holds the row's values.
	var doc struct {
		Datasets json.RawMessage `json:"datasets"`
	}
	dec := json.NewDecoder(bytes.NewReader(entries[main]))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s export: %s: %v", typ, main, err)
	}
	type set struct {
		Name string `json:"name"`
		Rows []struct {
			Fields map[string]any `json:"fields"`
		} `json:"rows"`
	}
	var got set
	if typ == Access {
		var sets []set
		if err := unmarshalNumbers(doc.Datasets, &sets); err != nil || len(sets) != 1 {
			t.Fatalf("access export: datasets %s: %v", doc.Datasets, err)
		}
		got = sets[0]
		if got.Name != validJSONText(fx.table.Dataset) {
			t.Fatalf("access export: dataset named %q, want %q", got.Name, fx.table.Dataset)
		}
	} else {
		var sets map[string]set
		if err := unmarshalNumbers(doc.Datasets, &sets); err != nil || len(sets) != 1 {
			t.Fatalf("portability export: datasets %s: %v", doc.Datasets, err)
		}
		for name, s := range sets {
			if name != validJSONText(fx.table.Dataset) {
				t.Fatalf("portability export: dataset named %q, want %q", name, fx.table.Dataset)
			}
			got = s
		}
	}
	if len(got.Rows) != 2 {
		t.Fatalf("%s export: %d rows, want 2", typ, len(got.Rows))
	}
	want := map[string]any{"body": validJSONText(text), "n": json.Number(strconv.FormatInt(n, 10)), "flag": flag}
	for col, w := range want {
		if g := got.Rows[0].Fields[col]; g != w {
			t.Fatalf("%s export: %s is %#v, want %#v", typ, col, g, w)
		}
		if g, ok := got.Rows[1].Fields[col]; !ok || g != nil {
			t.Fatalf("%s export: the NULL %s is %#v", typ, col, g)
		}
	}
	if num, ok := got.Rows[0].Fields["score"].(json.Number); !ok {
		if !math.IsNaN(score) && !math.IsInf(score, 0) {
			t.Fatalf("%s export: score is %#v, want %v", typ, got.Rows[0].Fields["score"], score)
		}
	} else if f, err := num.Float64(); err != nil || f != score {
		t.Fatalf("%s export: score is %s, want %v", typ, num, score)
	}

	// The CSV reads back, one record per row.
	var csvName string
	for name := range entries {
		if strings.HasSuffix(name, ".csv") {
			if csvName != "" {
				t.Fatalf("%s export: two CSV files, %s and %s", typ, csvName, name)
			}
			csvName = name
		}
	}
	recs, err := csv.NewReader(bytes.NewReader(entries[csvName])).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("%s export: %s: %d records, %v", typ, csvName, len(recs), err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	if g, w := lineEnds(recs[1][col["body"]]), lineEnds(csvValue(text)); g != w {
		t.Fatalf("%s export: CSV body %q, want %q", typ, g, w)
	}

	// Every upload is in files/, with what it held.
	if typ == Portability {
		for i := range fx.files {
			w := []byte(strconv.Itoa(i + 1))
			found := 0
			for name, b := range entries {
				if strings.HasPrefix(name, "files/") && bytes.HasPrefix(b, w) {
					found++
				}
			}
			if found != 1 {
				t.Fatalf("portability export: upload %d (%q) is in %d entries, want 1: %v", i+1, fx.files[i].Name, found, entryNames(entries))
			}
		}
	}
}

func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// validJSONText is s as JSON carries it: each byte of invalid UTF-8
// becomes U+FFFD.
func validJSONText(s string) string { return string([]rune(s)) }

// lineEnds folds the line ends CSV readers rewrite.
func lineEnds(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func entryNames(m map[string][]byte) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	return fmt.Sprint(names)
}

// fuzzAccounts tells the engine about accounts, from identity, as the app's
// adapter does.
type fuzzAccounts struct{ identity *identity.Service }

func (f fuzzAccounts) AccountOf(ctx context.Context, subjectID string) (Account, error) {
	a, err := f.identity.AccountOf(ctx, subjectID)
	if err != nil {
		return Account{}, err
	}
	return Account{Staff: a.Staff()}, nil
}
