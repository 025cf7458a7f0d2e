package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func mods() []store.Migrations { return []store.Migrations{audit.Migrations()} }

func TestTables(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		reg, err := registry.New(audit.Tables())
		if err != nil {
			t.Fatal(err)
		}
		cols, err := db.Columns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var live []registry.LiveColumn
		for _, c := range cols {
			live = append(live, registry.LiveColumn{Table: c.Table, Name: c.Name})
		}
		if p := reg.Undeclared(live, "schema_migrations"); len(p) > 0 {
			t.Fatalf("registry and schema disagree:\n%s", strings.Join(p, "\n"))
		}
		if tb, _ := reg.Table("audit_log"); tb.KeptBecause != "legal-obligation" || tb.SubjectColumn != "subject_id" {
			t.Errorf("audit_log declared as %+v, want kept for legal-obligation with subject column subject_id", tb)
		}
	})
}

func TestEventValidation(t *testing.T) {
	ok := audit.Event{Actor: "s_abc", Action: "account.signup", Subject: "s_abc", Detail: map[string]string{"source": "signup"}}
	with := func(f func(e *audit.Event)) audit.Event {
		e := ok
		e.Detail = map[string]string{}
		for k, v := range ok.Detail {
			e.Detail[k] = v
		}
		f(&e)
		return e
	}
	tests := []struct {
		name  string
		e     audit.Event
		field string // "" means accepted
	}{
		{"ordinary", ok, ""},
		{"system actor, no subject, no detail", audit.Event{Actor: "system", Action: "policy.published"}, ""},
		{"staff actor", with(func(e *audit.Event) { e.Actor = "staff:s_xyz"; e.Action = "staff.read" }), ""},
		{"version-like detail with three parts", with(func(e *audit.Event) { e.Detail["version"] = "1.2.3" }), ""},
		{"a time in detail", with(func(e *audit.Event) { e.Detail["window"] = "12:30:45" }), ""},
		{"a handle in detail", with(func(e *audit.Event) { e.Detail["mention"] = "@steward" }), ""},
		{"email in detail", with(func(e *audit.Event) { e.Detail["note"] = "sent to alice@example.org" }), "detail.note"},
		{"bare email in detail", with(func(e *audit.Event) { e.Detail["who"] = "a@b" }), "detail.who"},
		{"IPv4 in detail", with(func(e *audit.Event) { e.Detail["from"] = "client 192.0.2.44 failed" }), "detail.from"},
		{"IPv4 in a URL", with(func(e *audit.Event) { e.Detail["url"] = "http://10.1.2.3:8080/x" }), "detail.url"},
		{"IPv6 in detail", with(func(e *audit.Event) { e.Detail["from"] = "2001:db8::1" }), "detail.from"},
		{"IPv6 loopback", with(func(e *audit.Event) { e.Detail["from"] = "[::1]" }), "detail.from"},
		{"IPv6 with a port", with(func(e *audit.Event) { e.Detail["from"] = "[2001:db8::7]:443" }), "detail.from"},
		{"IPv4-mapped IPv6", with(func(e *audit.Event) { e.Detail["from"] = "::ffff:198.51.100.7" }), "detail.from"},
		{"password key", with(func(e *audit.Event) { e.Detail["password"] = "hunter2" }), "detail.password"},
		{"token key", with(func(e *audit.Event) { e.Detail["session_token"] = "abc" }), "detail.session_token"},
		{"email key", with(func(e *audit.Event) { e.Detail["email"] = "redacted" }), "detail.email"},
		{"CR/LF in detail", with(func(e *audit.Event) { e.Detail["note"] = "a\r\nb" }), "detail.note"},
		{"long detail", with(func(e *audit.Event) { e.Detail["note"] = strings.Repeat("x", 513) }), "detail.note"},
		{"bad detail key", with(func(e *audit.Event) { e.Detail["Bad Key"] = "x" }), "detail"},
		{"email as actor", with(func(e *audit.Event) { e.Actor = "alice@example.org" }), "actor"},
		{"IP as actor", with(func(e *audit.Event) { e.Actor = "fe80::1" }), "actor"},
		{"empty actor", with(func(e *audit.Event) { e.Actor = "" }), "actor"},
		{"undotted action", with(func(e *audit.Event) { e.Action = "signup" }), "action"},
		{"upper-case action", with(func(e *audit.Event) { e.Action = "Account.Signup" }), "action"},
		{"email as subject", with(func(e *audit.Event) { e.Subject = "alice@example.org" }), "subject"},
	}
	// Validation happens before any I/O, so a nil database is enough.
	l := audit.New(nil, clock.NewFake(t0))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != tt.field {
				t.Fatalf("error = %v, want invalid on field %s", err, tt.field)
			}
			if rerr := l.Record(context.Background(), nil, tt.e); fault.CodeOf(rerr) != fault.Invalid {
				t.Fatalf("Record accepted what Validate refuses: %v", rerr)
			}
		})
	}
}

// fill records n events one second apart and returns the log.
func fill(t *testing.T, db *store.DB, n int) (*audit.Log, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	l := audit.New(db, clk)
	for i := 1; i <= n; i++ {
		e := audit.Event{Actor: "system", Action: "test.event", Subject: fmt.Sprintf("s_%d", i%3), Detail: map[string]string{"n": fmt.Sprint(i)}}
		if err := l.Record(context.Background(), db, e); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	return l, clk
}

// dropGuards removes the append-only triggers, as someone with write
// access to the database could.
func dropGuards(t *testing.T, db *store.DB) {
	t.Helper()
	stmts := []string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}
	if db.Engine == store.Postgres {
		stmts = []string{`DROP TRIGGER audit_log_no_change ON audit_log`, `DROP TRIGGER audit_log_no_truncate ON audit_log`}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func exec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestRecordAndVerify(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, clk := fill(t, db, 10)
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Entries != 10 || rep.HeadSeq != 10 || len(rep.HeadHash) != 64 {
			t.Fatalf("Verify = %+v, want OK with 10 entries", rep)
		}

		t.Run("entries chain and read back", func(t *testing.T) {
			all, err := l.List(ctx, 0, 100)
			if err != nil || len(all) != 10 {
				t.Fatalf("List = %d entries, %v", len(all), err)
			}
			first := all[9]
			if first.Seq != 1 || first.PrevHash != audit.GenesisHash || !first.At.Equal(t0) {
				t.Errorf("first entry = %+v", first)
			}
			for i := 0; i < 9; i++ {
				if all[i].PrevHash != all[i+1].Hash {
					t.Errorf("entry %d prev_hash does not link to entry %d", all[i].Seq, all[i+1].Seq)
				}
				if all[i].Hash != audit.Hash(all[i].PrevHash, all[i].Seq, all[i].At, all[i].Event) {
					t.Errorf("entry %d hash is not Hash(...)", all[i].Seq)
				}
			}
			if all[0].Detail["n"] != "10" || all[0].Actor != "system" || all[0].Action != "test.event" {
				t.Errorf("newest entry = %+v", all[0])
			}
		})

		t.Run("List pages newest first", func(t *testing.T) {
			page, _ := l.List(ctx, 0, 3)
			if seqs(page) != "10,9,8" {
				t.Errorf("first page = %s, want 10,9,8", seqs(page))
			}
			page, _ = l.List(ctx, 8, 3)
			if seqs(page) != "7,6,5" {
				t.Errorf("page before 8 = %s, want 7,6,5", seqs(page))
			}
			page, _ = l.List(ctx, 2, 50)
			if seqs(page) != "1" {
				t.Errorf("page before 2 = %s, want 1", seqs(page))
			}
		})

		t.Run("ForSubject finds entries about and by the subject", func(t *testing.T) {
			l.Record(ctx, db, audit.Event{Actor: "staff:s_1", Action: "staff.read", Subject: "s_2"})
			l.Record(ctx, db, audit.Event{Actor: "s_1", Action: "session.revoke"})
			got, err := l.ForSubject(ctx, db, "s_1")
			if err != nil {
				t.Fatal(err)
			}
			if seqs(got) != "12,11,10,7,4,1" {
				t.Errorf("ForSubject(s_1) = %s, want 12,11,10,7,4,1", seqs(got))
			}
		})

		t.Run("a rolled-back transaction leaves no entry", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if err := l.Record(ctx, tx, audit.Event{Actor: "system", Action: "test.rolled_back"}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				return l.Record(ctx, tx, audit.Event{Actor: "system", Action: "test.committed"})
			})
			if err != nil {
				t.Fatal(err)
			}
			rep, _ := l.Verify(ctx)
			if !rep.OK || rep.Entries != 13 {
				t.Errorf("after a rollback and a commit Verify = %+v, want OK with 13", rep)
			}
		})

		t.Run("the time never goes back", func(t *testing.T) {
			clk.Set(t0.Add(-time.Hour))
			if err := l.Record(ctx, db, audit.Event{Actor: "system", Action: "test.skew"}); err != nil {
				t.Fatal(err)
			}
			rep, _ := l.Verify(ctx)
			if !rep.OK {
				t.Errorf("a clock that went back broke the log: %v", rep.Problems)
			}
		})

		t.Run("updates and deletes are refused", func(t *testing.T) {
			if _, err := db.ExecContext(ctx, `UPDATE audit_log SET action = 'x.y' WHERE seq = 1`); err == nil {
				t.Error("UPDATE of an audit entry succeeded")
			}
			if _, err := db.ExecContext(ctx, `DELETE FROM audit_log WHERE seq = 1`); err == nil {
				t.Error("DELETE of an audit entry succeeded")
			}
			if db.Engine == store.Postgres {
				if _, err := db.ExecContext(ctx, `TRUNCATE audit_log`); err == nil {
					t.Error("TRUNCATE of the audit log succeeded")
				}
			}
		})
	})
}

func TestRecordDenial(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.NewFake(t0))
		var rec policy.DenialRecorder = l
		d := policy.Denial{SubjectID: "s_abc", Purpose: "marketing", Category: "contact"}
		if err := rec.RecordDenial(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, err := l.ForSubject(ctx, db, "s_abc")
		if err != nil || len(got) != 1 {
			t.Fatalf("ForSubject = %v, %v", got, err)
		}
		e := got[0]
		if e.Action != "guard.denied" || e.Actor != "system" || e.Detail["purpose"] != "marketing" ||
			e.Detail["category"] != "contact" || e.Detail["reason"] != d.Reason.String() {
			t.Errorf("denial entry = %+v", e)
		}
	})
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *store.DB)
		want   []string
	}{
		{"an edited detail", func(t *testing.T, db *store.DB) {
			exec(t, db, `UPDATE audit_log SET detail = '{"n":"40"}' WHERE seq = 4`)
		}, []string{"entry 4: hash mismatch (edited)"}},
		{"an edited actor", func(t *testing.T, db *store.DB) {
			exec(t, db, `UPDATE audit_log SET actor = 's_someone_else' WHERE seq = 2`)
		}, []string{"entry 2: hash mismatch (edited)"}},
		{"a deleted middle row", func(t *testing.T, db *store.DB) {
			exec(t, db, `DELETE FROM audit_log WHERE seq = 5`)
		}, []string{"gap between 4 and 6 (deleted)"}},
		{"a deleted first row", func(t *testing.T, db *store.DB) {
			exec(t, db, `DELETE FROM audit_log WHERE seq = 1`)
		}, []string{"entries before 2 are missing"}},
		{"two rows' contents swapped", func(t *testing.T, db *store.DB) {
			swap(t, db, 3, 7)
		}, []string{"entry 3: hash mismatch (edited)", "entry 7: hash mismatch (edited)", "entry 4: prev_hash does not match entry 3", "out of order"}},
		{"a changed time", func(t *testing.T, db *store.DB) {
			exec(t, db, `UPDATE audit_log SET at = $1 WHERE seq = 6`, t0.Add(time.Second))
		}, []string{"entry 6: hash mismatch (edited)", "entry 6 out of order"}},
		{"an edit with its hash recomputed", func(t *testing.T, db *store.DB) {
			var prev string
			var at time.Time
			db.QueryRowContext(context.Background(), `SELECT prev_hash, at FROM audit_log WHERE seq = 4`).Scan(&prev, &at)
			e := audit.Event{Actor: "system", Action: "test.event", Subject: "s_1", Detail: map[string]string{"n": "forged"}}
			exec(t, db, `UPDATE audit_log SET detail = '{"n":"forged"}', hash = $1 WHERE seq = 4`, audit.Hash(prev, 4, at, e))
		}, []string{"entry 5: prev_hash does not match entry 4"}},
		{"a truncated tail", func(t *testing.T, db *store.DB) {
			exec(t, db, `DELETE FROM audit_log WHERE seq >= 9`)
		}, []string{"the log ends at entry 8 but the anchor records entry 10 (tail truncated)"}},
		{"a deleted anchor", func(t *testing.T, db *store.DB) {
			exec(t, db, `DELETE FROM audit_anchor`)
		}, []string{"the anchor is missing"}},
		{"a row inserted behind the log's back", func(t *testing.T, db *store.DB) {
			var prev string
			db.QueryRowContext(context.Background(), `SELECT hash FROM audit_log WHERE seq = 10`).Scan(&prev)
			at := t0.Add(time.Hour)
			e := audit.Event{Actor: "system", Action: "test.forged"}
			exec(t, db, `INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash) VALUES (11, $1, 'system', 'test.forged', '{}', $2, $3)`,
				at, prev, audit.Hash(prev, 11, at, e))
		}, []string{"entries after 10 were not written through the log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
				l, _ := fill(t, db, 10)
				dropGuards(t, db)
				tt.tamper(t, db)
				rep, err := l.Verify(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK {
					t.Fatalf("Verify says OK after %s", tt.name)
				}
				all := strings.Join(rep.Problems, "\n")
				for _, w := range tt.want {
					if !strings.Contains(all, w) {
						t.Errorf("problems do not mention %q:\n%s", w, all)
					}
				}
			})
		})
	}
}

// TestVerifyLimit shows what the package doc says no self-contained check
// can catch: a log rewritten consistently from an edit onwards, anchor
// included, verifies; only a head kept elsewhere exposes it.
func TestVerifyLimit(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, _ := fill(t, db, 5)
		before, _ := l.Verify(ctx)
		dropGuards(t, db)
		entries, _ := l.List(ctx, 0, 100)
		prev := ""
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if e.Seq == 3 {
				e.Detail = map[string]string{"n": "rewritten"}
			}
			if e.Seq >= 3 {
				e.PrevHash = prev
				e.Hash = audit.Hash(prev, e.Seq, e.At, e.Event)
				exec(t, db, `UPDATE audit_log SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4`, fmt.Sprintf(`{"n":%q}`, e.Detail["n"]), e.PrevHash, e.Hash, e.Seq)
				exec(t, db, `UPDATE audit_anchor SET hash = $1 WHERE seq = $2`, e.Hash, e.Seq)
			}
			prev = e.Hash
		}
		after, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !after.OK {
			t.Fatalf("a consistent rewrite was expected to verify (the documented limit), got %v", after.Problems)
		}
		if after.HeadSeq != before.HeadSeq || after.HeadHash == before.HeadHash {
			t.Fatalf("the head kept from before (%d %s) does not expose the rewrite (%d %s)", before.HeadSeq, before.HeadHash, after.HeadSeq, after.HeadHash)
		}
	})
}

func swap(t *testing.T, db *store.DB, a, b int64) {
	t.Helper()
	ctx := context.Background()
	type row struct {
		at                                    time.Time
		actor, action, detail, prevHash, hash string
		subject                               sql.NullString
	}
	read := func(seq int64) row {
		var r row
		if err := db.QueryRowContext(ctx, `SELECT at, actor, action, subject_id, detail, prev_hash, hash FROM audit_log WHERE seq = $1`, seq).
			Scan(&r.at, &r.actor, &r.action, &r.subject, &r.detail, &r.prevHash, &r.hash); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra, rb := read(a), read(b)
	write := func(seq int64, r row) {
		exec(t, db, `UPDATE audit_log SET at = $1, actor = $2, action = $3, subject_id = $4, detail = $5, prev_hash = $6, hash = $7 WHERE seq = $8`,
			r.at, r.actor, r.action, r.subject, r.detail, r.prevHash, r.hash, seq)
	}
	write(a, rb)
	write(b, ra)
}

func seqs(es []audit.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprint(e.Seq))
	}
	return strings.Join(s, ",")
}

func TestConcurrentRecord(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := audit.New(db, clock.Real{})
		// A second Log on its own connection pool stands in for another
		// process writing to the same database (on PostgreSQL every pooled
		// connection is already a separate session).
		otherDB := db
		if db.Engine == store.SQLite {
			var err error
			if otherDB, err = store.Open(ctx, db.Location, ""); err != nil {
				t.Fatal(err)
			}
			defer otherDB.Close()
		}
		other := audit.New(otherDB, clock.Real{})
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				log, q := l, db
				if w%2 == 1 {
					log, q = other, otherDB
				}
				for i := range each {
					e := audit.Event{Actor: fmt.Sprintf("s_w%d", w), Action: "test.concurrent", Detail: map[string]string{"i": fmt.Sprint(i)}}
					var err error
					if i%2 == 0 {
						err = log.Record(ctx, q, e)
					} else {
						err = q.InTx(ctx, func(tx *sql.Tx) error { return log.Record(ctx, tx, e) })
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		// Verify while the writers run: it must see one consistent
		// snapshot, never a half-written head.
		done := make(chan struct{})
		verified := make(chan []string, 1)
		go func() {
			var bad []string
			defer func() { verified <- bad }()
			for {
				select {
				case <-done:
					return
				default:
				}
				rep, err := l.Verify(ctx)
				if err != nil {
					bad = append(bad, err.Error())
					return
				}
				if !rep.OK {
					bad = append(bad, rep.Problems...)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		wg.Wait()
		close(done)
		if bad := <-verified; len(bad) > 0 {
			t.Errorf("Verify during concurrent writes reported: %v", bad)
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Entries != writers*each || rep.HeadSeq != writers*each {
			t.Fatalf("after concurrent writes Verify = %+v, want OK with %d entries", rep, writers*each)
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	db := storetest.SQLite(b, mods())
	ctx := context.Background()
	l := audit.New(db, clock.Real{})
	e := audit.Event{Actor: "s_abcdefghijklmnopqrst", Action: "session.login", Subject: "s_abcdefghijklmnopqrst", Detail: map[string]string{"method": "password"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Record(ctx, db, e); err != nil {
			b.Fatal(err)
		}
	}
}
