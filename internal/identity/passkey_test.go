package identity_test

import (
	"strings"
	"testing"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/identity/identitytest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

const testOrigin = "https://steward.example.org"

func (e *env) audited(action string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = $1`, action).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestPasskeySecondFactor: a staff account adds a passkey (recovery codes,
// notice by mail, session marked) and later sessions give it; an assertion
// made for another origin, a replayed one and one whose counter went
// backwards are refused and audited, and leave the session owing; a
// session that owes its factor cannot add a passkey.
func TestPasskeySecondFactor(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml")
		if !e.svc.PasskeysEnabled() {
			t.Fatal("passkeys off at an https base URL")
		}
		if err := e.svc.CreateStaff(ctx, "support@example.org", identity.RoleSupport, goodPassword); err != nil {
			t.Fatal(err)
		}
		login := func() (string, identity.Principal) {
			t.Helper()
			_, tok, err := e.svc.Login(ctx, "support@example.org", goodPassword, meta)
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.svc.Authenticate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			return tok, p
		}
		owes := func(tok string) string {
			t.Helper()
			p, err := e.svc.Authenticate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			return p.SecondFactor
		}
		tok, p := login()
		if p.SecondFactor != identity.SecondFactorEnrol {
			t.Fatalf("staff without a factor owes %q, want enrol", p.SecondFactor)
		}
		key := identitytest.NewPasskey(t, "steward.example.org")
		opts, err := e.svc.BeginPasskeyRegistration(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		codes, err := e.svc.FinishPasskeyRegistration(ctx, p, key.Register(opts, testOrigin), meta)
		if err != nil || len(codes) != 10 {
			t.Fatalf("register: %d codes, %v", len(codes), err)
		}
		if owes(tok) != "" {
			t.Fatal("after adding a passkey, the session still owes its factor")
		}
		if m := e.lastMail("support@example.org", identity.MailFactorAdded); !strings.Contains(m.Text, "passkey") {
			t.Errorf("the notice does not say a passkey was added: %q", m.Text)
		}
		fs, err := e.svc.SecondFactors(ctx, p.Account.SubjectID)
		if err != nil || len(fs) != 1 || fs[0].Kind != identity.FactorPasskey {
			t.Fatalf("factors: %+v, %v", fs, err)
		}
		// The registration's challenge was spent.
		if _, err := e.svc.FinishPasskeyRegistration(ctx, p, key.Register(opts, testOrigin), meta); !fault.Is(err, fault.Unauthorized) {
			t.Errorf("a registration answered twice: %v", err)
		}

		// A new session owes the passkey and cannot add one of its own.
		tok2, p2 := login()
		if p2.SecondFactor != identity.SecondFactorVerify {
			t.Fatalf("a new session owes %q, want verify", p2.SecondFactor)
		}
		if _, err := e.svc.BeginPasskeyRegistration(ctx, p2); !fault.Is(err, fault.SecondFactorNeeded) {
			t.Errorf("a session owing its factor began a passkey registration: %v", err)
		}
		if _, err := e.svc.FinishPasskeyRegistration(ctx, p2, identitytest.NewPasskey(t, "steward.example.org").Register(opts, testOrigin), meta); !fault.Is(err, fault.SecondFactorNeeded) {
			t.Errorf("a session owing its factor finished a passkey registration: %v", err)
		}

		// An assertion made for another origin is refused, audited, and
		// leaves the session owing.
		failed := e.audited("session.second_factor_failed")
		opts, err = e.svc.BeginPasskeyLogin(ctx, p2)
		if err != nil {
			t.Fatal(err)
		}
		key.Counter = 5
		if err := e.svc.FinishPasskeyLogin(ctx, p2, key.Assert(opts, "https://steward.example.org.evil.example"), meta); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("an assertion from another origin: %v, want refused", err)
		}
		if got := e.audited("session.second_factor_failed"); got != failed+1 {
			t.Errorf("failed attempts audited: %d, want %d", got, failed+1)
		}
		if owes(tok2) != identity.SecondFactorVerify {
			t.Fatal("an assertion from another origin marked the session")
		}

		// The right one, for a fresh challenge, marks the session.
		opts, err = e.svc.BeginPasskeyLogin(ctx, p2)
		if err != nil {
			t.Fatal(err)
		}
		good := key.Assert(opts, testOrigin)
		if err := e.svc.FinishPasskeyLogin(ctx, p2, good, meta); err != nil {
			t.Fatalf("the passkey: %v", err)
		}
		if owes(tok2) != "" {
			t.Fatal("after the passkey, the session still owes its factor")
		}
		if fs, _ := e.svc.SecondFactors(ctx, p.Account.SubjectID); len(fs) != 1 || fs[0].LastUsedAt.IsZero() {
			t.Errorf("the passkey's last use is not kept: %+v", fs)
		}

		// Replayed: on the same session (its challenge is spent) and on
		// another session that has a challenge of its own.
		if err := e.svc.FinishPasskeyLogin(ctx, p2, good, meta); !fault.Is(err, fault.Unauthorized) {
			t.Errorf("a replayed assertion on its session: %v, want refused", err)
		}
		tok3, p3 := login()
		if _, err := e.svc.BeginPasskeyLogin(ctx, p3); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.FinishPasskeyLogin(ctx, p3, good, meta); !fault.Is(err, fault.Unauthorized) {
			t.Errorf("a replayed assertion on another session: %v, want refused", err)
		}
		if owes(tok3) != identity.SecondFactorVerify {
			t.Fatal("a replayed assertion marked the session")
		}

		// A counter that goes backwards (a cloned authenticator) is
		// refused and audited; the real one, moving forward, still works.
		opts, err = e.svc.BeginPasskeyLogin(ctx, p3)
		if err != nil {
			t.Fatal(err)
		}
		key.Counter = 3
		if err := e.svc.FinishPasskeyLogin(ctx, p3, key.Assert(opts, testOrigin), meta); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("a counter gone backwards: %v, want refused", err)
		}
		if e.audited("account.passkey_clone_warning") != 1 {
			t.Error("the counter gone backwards is not audited")
		}
		if owes(tok3) != identity.SecondFactorVerify {
			t.Fatal("a counter gone backwards marked the session")
		}
		opts, err = e.svc.BeginPasskeyLogin(ctx, p3)
		if err != nil {
			t.Fatal(err)
		}
		key.Counter = 6
		if err := e.svc.FinishPasskeyLogin(ctx, p3, key.Assert(opts, testOrigin), meta); err != nil {
			t.Fatalf("the passkey with its counter moving forward: %v", err)
		}
		if owes(tok3) != "" {
			t.Fatal("after the passkey, the session still owes its factor")
		}
	})
}
