package notice_test

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestDeliveryReasonsAreFixed: why a notice was not mailed to someone stays
// plaintext because only code chooses it, and the CHECK list holds it to
// that: every reason the guard can give and the notice's and the outbox's
// own are accepted, and any other text, such as a planted personal value,
// is refused.
func TestDeliveryReasonsAreFixed(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC)
		if _, err := db.ExecContext(ctx, `INSERT INTO notices (id, kind, subject_line, body_text, audience, created_by, status, created_at)
			VALUES ('nt_a', 'other', 'S', 'T', 'everyone', 'system', 'sent', $1)`, at); err != nil {
			t.Fatal(err)
		}
		reasons := []string{"", "address not verified", "address not usable"}
		for r := policy.Reason(1); ; r++ {
			reasons = append(reasons, r.String())
			if r.String() == "unknown reason" {
				break
			}
		}
		for i, reason := range reasons {
			if _, err := db.ExecContext(ctx, `INSERT INTO notice_deliveries (notice_id, subject_id, status, reason, created_at) VALUES ('nt_a', $1, 'skipped', $2, $3)`,
				fmt.Sprintf("s_reason%d", i), reason, at); err != nil {
				t.Errorf("the reason %q is refused: %v", reason, err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO notice_deliveries (notice_id, subject_id, status, reason, created_at) VALUES ('nt_a', 's_planted', 'skipped', 'planted-reason-77d0', $1)`,
			at); err == nil {
			t.Error("notice_deliveries accepts free text as a reason")
		}
	})
}

// migrationsBefore is m as it stood before its version v.
func migrationsBefore(t testing.TB, m store.Migrations, v int) store.Migrations {
	t.Helper()
	entries, err := fs.ReadDir(m.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{}
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%04d_", &n); err == nil && n < v {
			b, err := fs.ReadFile(m.FS, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			old[e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return store.Migrations{Module: m.Module, FS: old}
}

// TestDeliveryReasonMigration: migrating a database of the release before
// the CHECK list (SQLite rebuilds the table) keeps every delivery record as
// it was and turns a reason outside the list into "unknown reason".
func TestDeliveryReasonMigration(t *testing.T) {
	var before []store.Migrations
	for _, m := range mods() {
		if m.Module == "notice" {
			m = migrationsBefore(t, m, 3)
		}
		before = append(before, m)
	}
	storetest.Each(t, before, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC)
		for _, q := range []string{
			`INSERT INTO notices (id, kind, subject_line, body_text, audience, created_by, status, created_at) VALUES ('nt_a', 'other', 'S', 'T', 'everyone', 'system', 'sent', $1)`,
			`INSERT INTO notice_deliveries (notice_id, subject_id, status, reason, outbox_id, created_at) VALUES
				('nt_a', 's_a', 'queued', '', 'ob_1', $1), ('nt_a', 's_b', 'skipped', 'address not verified', '', $1), ('nt_a', 's_c', 'skipped', 'a planted reason', '', $1)`,
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
		rows, err := db.QueryContext(ctx, `SELECT subject_id || ' ' || status || ' ' || reason || ' ' || outbox_id FROM notice_deliveries ORDER BY subject_id`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			got = append(got, s)
		}
		rows.Close()
		want := []string{"s_a queued  ob_1", "s_b skipped address not verified ", "s_c skipped unknown reason "}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("after migrating:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
