package rights_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"

	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestEveryRegisteredTableIsCovered walks the whole product's registry:
// every personal table must be exported and have an erasure rule (erased,
// or kept for a stated reason); none may be skipped.
func TestEveryRegisteredTableIsCovered(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		cov, err := e.rights.Coverage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]rights.TableCoverage{}
		for _, c := range cov {
			got[c.Table] = c
		}
		for _, tab := range e.reg.Personal() {
			c, ok := got[tab.Name]
			if !ok {
				t.Errorf("personal table %s is not covered at all", tab.Name)
				continue
			}
			if c.Export == "" || c.Export == "skipped" {
				t.Errorf("%s: export %q", tab.Name, c.Export)
			}
			if c.Erasure == "" || c.Erasure == "skipped" {
				t.Errorf("%s: erasure %q", tab.Name, c.Erasure)
			}
			if tab.KeptBecause != "" && !strings.Contains(c.Erasure, tab.KeptBecause) {
				t.Errorf("%s: erasure %q does not state it is kept for %s", tab.Name, c.Erasure, tab.KeptBecause)
			}
		}
		if len(cov) != len(e.reg.Personal()) {
			t.Errorf("coverage lists %d tables, the registry has %d personal ones", len(cov), len(e.reg.Personal()))
		}
	})
}

// TestPromiseJ6_J21_J27_AccessReport: the access report holds the Art. 15
// cover sheet and every datum of every table, each with its source and
// the policy version it was collected under; transfers are shown.
func TestPromiseJ6_J21_J27_AccessReport(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{})
		id := e.member("ann@example.org")
		vals := e.seed(id, "ANN")
		// Another member's data must not appear.
		other := e.member("bob@example.org")
		e.seed(other, "BOB")

		rep := e.report(id)
		if rep.Format != rights.AccessFormat {
			t.Errorf("format = %q", rep.Format)
		}
		// Every seeded table is in the report with its row.
		for _, v := range vals {
			ds := datasetOf(e.reg, v.Table)
			set := rep.set(ds)
			if set == nil {
				t.Errorf("dataset %s (table %s) missing from the access report", ds, v.Table)
				continue
			}
			found := false
			tab, _ := e.reg.Table(v.Table)
			col, _ := tab.Column(v.Column)
			for _, r := range set.Rows {
				if r.Fields[col.Shown()] == v.Value || (v.Column == tab.SourceColumn && r.Source == v.Value) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s.%s = %q not in the report", v.Table, v.Column, v.Value)
			}
		}
		// J6: every row carries its source and a policy version.
		for _, s := range rep.Sets {
			for _, r := range s.Rows {
				if r.Source == "" {
					t.Errorf("%s %s has no source", s.Name, r.Item)
				}
				if r.PolicyVersion == nil || *r.PolicyVersion != e.ver.Number {
					t.Errorf("%s %s: policy version %v (%s), want %d", s.Name, r.Item, r.PolicyVersion, r.PolicyVersionBasis, e.ver.Number)
				}
			}
		}
		if acc := rep.set("account"); acc == nil || acc.Rows[0].Source != "ANN-accounts-source" {
			t.Errorf("account source not taken from its source column: %+v", acc)
		}
		// Nothing of Bob's.
		raw := mustJSON(t, rep)
		if strings.Contains(raw, "BOB-") || strings.Contains(raw, other) {
			t.Errorf("Ann's access report contains Bob's data")
		}
		// Hashes are masked, never shown.
		if strings.Contains(raw, "ANN-accounts-password_hash") {
			t.Errorf("a password hash is in the access report")
		}
		// J21: the cover sheet.
		c := rep.Cover
		if !c.Processing || c.Controller.Name != "JMIR Publications" || c.Complaint.Name == "" || c.AutomatedDecisions == "" {
			t.Errorf("cover sheet incomplete: %+v", c)
		}
		if len(c.Purposes) == 0 || len(c.Categories) == 0 || len(c.Rights) < 6 {
			t.Errorf("cover sheet lacks purposes, categories or rights: %d %d %d", len(c.Purposes), len(c.Categories), len(c.Rights))
		}
		for _, cat := range c.Categories {
			if cat.Retention == "" || cat.Retention == "not stated" {
				t.Errorf("category %s has no retention", cat.ID)
			}
		}
		if len(c.Recipients) == 0 {
			t.Errorf("no recipients")
		}
		for _, r := range c.Recipients {
			if r.Basis != "declared" {
				t.Errorf("recipient %s basis %q, want declared", r.ID, r.Basis)
			}
		}
		// J27: stored in the US and Canada, processed in India and the US.
		got := map[string]string{}
		for _, tr := range c.Transfers {
			got[tr.Country] = tr.Safeguard
		}
		for country, safeguard := range map[string]string{"US": "SCC", "CA": "adequacy", "IN": "SCC"} {
			if got[country] != safeguard {
				t.Errorf("transfer to %s: safeguard %q, want %q", country, got[country], safeguard)
			}
		}
		if len(c.Sources) == 0 {
			t.Errorf("cover sheet lists no sources")
		}
	})
}

func datasetOf(reg *registry.Registry, table string) string {
	t, _ := reg.Table(table)
	return t.Dataset
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSensitiveFieldShowsErasedAfterKeyDestroyed: a sealed field whose key
// is gone shows as erased, never as bytes.
func TestSensitiveFieldShowsErasedAfterKeyDestroyed(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		id := e.member("ann@example.org")
		e.seed(id, "ANN")
		if _, err := e.door.Shred(e.ctx, e.db, id, "identity"); err != nil {
			t.Fatal(err)
		}
		rep := e.report(id)
		acc := rep.set("account")
		if acc == nil {
			t.Fatal("no account dataset")
		}
		r := acc.Rows[0]
		if r.Fields["phone"] != nil || !slices.Contains(r.Erased, "phone") {
			t.Errorf("phone = %v, erased = %v; want null and listed as erased", r.Fields["phone"], r.Erased)
		}
	})
}

// TestOtherSubjectsRequestIsNotFound: a request of another subject is the
// same not found as one that does not exist, and the attempt is audited.
func TestOtherSubjectsRequestIsNotFound(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		ann := e.member("ann@example.org")
		bob := e.member("bob@example.org")
		r, err := e.rights.File(e.ctx, rights.Requester{SubjectID: ann}, rights.Filing{Type: rights.Restriction})
		if err != nil {
			t.Fatal(err)
		}
		_, err1 := e.rights.Mine(e.ctx, bob, r.ID)
		_, err2 := e.rights.Mine(e.ctx, bob, "rq_doesnotexist")
		if fault.CodeOf(err1) != fault.NotFound || fault.CodeOf(err2) != fault.NotFound || fault.MessageOf(err1) != fault.MessageOf(err2) {
			t.Errorf("other's request: %v; unknown: %v; want the same not found", err1, err2)
		}
		if !e.auditHas(bob, "rights.request_denied") {
			t.Errorf("the attempt was not audited: %v", e.auditActions(bob))
		}
	})
}

// A table whose rows name files in blob storage must have a holder that
// erases them: the generic erasure would leave the files behind.
func TestBlobTablesNeedAHolder(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t, modules()), "mixi.yaml", envOpts{})
	var blobTables []string
	for _, tab := range e.reg.Tables() {
		if tab.HasBlobs() {
			blobTables = append(blobTables, tab.Name)
		}
	}
	if len(blobTables) == 0 {
		t.Fatal("no registered table declares a blob column (content_files should)")
	}
	if err := e.rights.CheckBlobHolders(); err == nil || !strings.Contains(err.Error(), blobTables[0]) {
		t.Errorf("without holders: %v, want a refusal naming %s", err, blobTables[0])
	}
	for _, name := range blobTables {
		e.rights.Register(name, noopHolder{})
	}
	if err := e.rights.CheckBlobHolders(); err != nil {
		t.Errorf("with holders: %v", err)
	}
}

type noopHolder struct{}

func (noopHolder) Erase(context.Context, *sql.Tx, registry.Table, []string, rights.Scope) (rights.TableOutcome, error) {
	return rights.TableOutcome{}, nil
}

func (noopHolder) Left(context.Context, store.Q, registry.Table, []string, rights.Scope) (int, error) {
	return 0, nil
}
