package identity_test

import (
	"context"
	"database/sql"
	"testing"

	"steward/internal/identity"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestResealMovesPlaintext: an account and a session written by the
// release before sealing (plaintext name, company, password hash, browser
// and network) are sealed by Reseal, the plaintext columns emptied, the
// member can still sign in and see her profile, a second run finds nothing,
// and a value whose key was destroyed is dropped, not sealed again.
func TestResealMovesPlaintext(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml")
		fields := e.minimalFields("legacy@example.org")
		fields["company"] = "Remington Rand"
		id := e.signUp(fields, true)
		if _, _, err := e.svc.Login(ctx, "legacy@example.org", goodPassword, meta); err != nil {
			t.Fatal(err)
		}
		hash := e.openColumn("password_sealed", identity.FieldPassword, id)
		// Put the row back the way the earlier release stored it.
		if _, err := db.ExecContext(ctx, `UPDATE accounts SET name = 'Old Name', company = 'Old Co', password_hash = $2,
			name_sealed = NULL, company_sealed = NULL, password_sealed = NULL WHERE subject_id = $1`, id, hash); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE sessions SET user_agent_family = 'Firefox', network = '192.0.2.0/24',
			user_agent_sealed = NULL, network_sealed = NULL WHERE subject_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		n, err := e.svc.Reseal(ctx)
		if err != nil || n != 2 {
			t.Fatalf("reseal = %d, %v; want the account and the session", n, err)
		}
		var left int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE name IS NOT NULL OR company IS NOT NULL OR password_hash IS NOT NULL`).Scan(&left)
		var sessLeft int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE user_agent_family <> '' OR network <> ''`).Scan(&sessLeft)
		if left+sessLeft != 0 {
			t.Errorf("plaintext left: %d accounts, %d sessions", left, sessLeft)
		}
		if got := e.openColumn("name_sealed", identity.FieldName, id); got != "Old Name" {
			t.Errorf("sealed name = %q", got)
		}
		if _, _, err := e.svc.Login(ctx, "legacy@example.org", goodPassword, meta); err != nil {
			t.Errorf("login after reseal: %v", err)
		}
		sess, err := e.svc.SessionsOf(ctx, identity.Principal{Account: identity.Account{SubjectID: id}})
		found := false
		for _, s := range sess {
			if s.UserAgentFamily == "Firefox" && s.Network == "192.0.2.0/24" {
				found = true
			}
		}
		if err != nil || !found {
			t.Errorf("the re-sealed session is not shown: %+v %v", sess, err)
		}
		if n, err := e.svc.Reseal(ctx); err != nil || n != 0 {
			t.Errorf("second reseal = %d, %v", n, err)
		}
		// Erased, then an old copy of the plaintext comes back (a restore):
		// it is dropped.
		if _, err := e.door.ShredAll(ctx, db, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE accounts SET name = 'Old Name' WHERE subject_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.Reseal(ctx); err != nil || n != 1 {
			t.Errorf("reseal after erasure = %d, %v", n, err)
		}
		var name sql.NullString
		db.QueryRowContext(ctx, `SELECT name FROM accounts WHERE subject_id = $1`, id).Scan(&name)
		if name.Valid {
			t.Errorf("the plaintext name survived: %q", name.String)
		}
	})
}
