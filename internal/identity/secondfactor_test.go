package identity_test

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

func code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStaffSessionOwesASecondFactor: a staff login without a second factor
// owes one (enrol, then verify at each later login); a code is accepted
// once, never twice within its window; a recovery code works once; wrong
// codes are throttled like passwords and audited; a member owes nothing
// unless they opted in.
func TestStaffSessionOwesASecondFactor(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml")
		if err := e.svc.CreateStaff(ctx, "support@example.org", identity.RoleSupport, goodPassword); err != nil {
			t.Fatal(err)
		}
		_, tok, err := e.svc.Login(ctx, "support@example.org", goodPassword, meta)
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.Authenticate(ctx, tok)
		if err != nil || p.SecondFactor != identity.SecondFactorEnrol {
			t.Fatalf("staff without a factor: %q, %v; want enrol", p.SecondFactor, err)
		}
		en, err := e.svc.BeginTOTP(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ConfirmTOTP(ctx, p, en.ID, "000000", meta); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("a wrong code confirmed the enrolment: %v", err)
		}
		now := e.clock.Now()
		codes, err := e.svc.ConfirmTOTP(ctx, p, en.ID, code(t, en.Secret, now), meta)
		if err != nil || len(codes) != 10 {
			t.Fatalf("confirm: %d codes, %v", len(codes), err)
		}
		if m := e.lastMail("support@example.org", identity.MailFactorAdded); m.SubjectID != p.Account.SubjectID {
			t.Errorf("the factor-added notice went to %s", m.SubjectID)
		}
		if p, _ = e.svc.Authenticate(ctx, tok); p.SecondFactor != "" || p.Session.SecondFactorAt.IsZero() {
			t.Fatalf("after enrolling, the session owes %q", p.SecondFactor)
		}
		// A new login owes the factor; the code just used is refused.
		_, tok2, err := e.svc.Login(ctx, "support@example.org", goodPassword, meta)
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := e.svc.Authenticate(ctx, tok2)
		if p2.SecondFactor != identity.SecondFactorVerify {
			t.Fatalf("a new session owes %q, want verify", p2.SecondFactor)
		}
		if err := e.svc.VerifySecondFactor(ctx, p2, code(t, en.Secret, now), meta); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("a code used already: %v, want refused", err)
		}
		e.clock.Advance(30 * time.Second)
		if err := e.svc.VerifySecondFactor(ctx, p2, code(t, en.Secret, e.clock.Now()), meta); err != nil {
			t.Fatalf("the next code: %v", err)
		}
		if p2, _ = e.svc.Authenticate(ctx, tok2); p2.SecondFactor != "" {
			t.Fatalf("after the code, the session owes %q", p2.SecondFactor)
		}
		// A recovery code works once.
		_, tok3, _ := e.svc.Login(ctx, "support@example.org", goodPassword, meta)
		p3, _ := e.svc.Authenticate(ctx, tok3)
		if err := e.svc.VerifySecondFactor(ctx, p3, codes[0], meta); err != nil {
			t.Fatalf("a recovery code: %v", err)
		}
		_, tok4, _ := e.svc.Login(ctx, "support@example.org", goodPassword, meta)
		p4, _ := e.svc.Authenticate(ctx, tok4)
		if err := e.svc.VerifySecondFactor(ctx, p4, codes[0], meta); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("a recovery code used twice: %v", err)
		}
		// Guessing is throttled: after the account's limit even the right
		// code is turned away until the window passes.
		for i := 0; i < identity.DefaultLimits.LoginAccount; i++ {
			e.svc.VerifySecondFactor(ctx, p4, "123456", meta)
		}
		e.clock.Advance(30 * time.Second)
		if err := e.svc.VerifySecondFactor(ctx, p4, code(t, en.Secret, e.clock.Now()), meta); !fault.Is(err, fault.RateLimited) {
			t.Fatalf("after %d wrong codes: %v, want throttled", identity.DefaultLimits.LoginAccount, err)
		}
		var failed int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = 'session.second_factor_failed'`).Scan(&failed)
		if failed < identity.DefaultLimits.LoginAccount {
			t.Errorf("%d failed attempts audited", failed)
		}
		// Staff cannot remove their only factor.
		p2.Session.AuthAt = e.clock.Now()
		if err := e.svc.RemoveSecondFactor(ctx, p2, en.ID); !fault.Is(err, fault.Conflict) {
			t.Errorf("removing the only factor of staff: %v", err)
		}
		// A session whose password is not recent cannot add a factor (a
		// session left open must not lock its owner out).
		e.clock.Advance(time.Hour)
		if _, err := e.svc.BeginTOTP(ctx, p2); !fault.Is(err, fault.ReauthNeeded) {
			t.Errorf("adding a factor an hour after the password: %v", err)
		}
		// A member owes nothing until they add a factor.
		id := e.signUp(e.minimalFields("member@example.org"), true)
		_, mtok, err := e.svc.Login(ctx, "member@example.org", goodPassword, meta)
		if err != nil {
			t.Fatal(err)
		}
		if mp, _ := e.svc.Authenticate(ctx, mtok); mp.SecondFactor != "" || mp.Account.SubjectID != id {
			t.Errorf("a member owes %q", mp.SecondFactor)
		}
	})
}
