package identity_test

import (
	"fmt"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// login signs a verified member in and returns their principal.
func (e *env) login(email string) identity.Principal {
	e.t.Helper()
	_, tok, err := e.svc.Login(ctx, email, goodPassword, meta)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.svc.Authenticate(ctx, tok)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) member(email, name string) identity.Principal {
	e.t.Helper()
	f := e.minimalFields(email)
	f["name"] = name
	e.signUp(f, true)
	return e.login(email)
}

// TestPromiseJ15_SharedAccountsWithinTheirGrant: a primary account holder
// reads a sub-account's data within the categories its holder accepted to
// share, and is refused beyond them; a sub-account reads neither its
// primary nor a sibling; an authorised user reads the primary's granted
// data until the primary revokes, which takes effect at once; every read
// and refusal is audited with both accounts; an invitation works only for
// the account of the address it was sent to.
func TestPromiseJ15_SharedAccountsWithinTheirGrant(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml")
		primary := e.member("primary@example.org", "Pat Primary")
		sub := e.member("sub@example.org", "Sam Sub")
		sibling := e.member("sibling@example.org", "Sid Sibling")
		user := e.member("user@example.org", "Uma User")
		other := e.member("other@example.org", "Oscar Other")

		if _, err := e.svc.Invite(ctx, primary, identity.DelegateSubAccount, "sub@example.org", identity.Grant{Categories: []string{"payment"}}); !fault.Is(err, fault.Invalid) {
			t.Fatalf("a grant of payment data: %v, want refused", err)
		}
		invite := func(kind, email string) string {
			t.Helper()
			if _, err := e.svc.Invite(ctx, primary, kind, email, identity.Grant{Categories: []string{"identity"}}); err != nil {
				t.Fatal(err)
			}
			return tokenIn(t, e.lastMail(email, "account-invitation"))
		}
		tok := invite(identity.DelegateSubAccount, "sub@example.org")
		if _, err := e.svc.AcceptInvitation(ctx, other, tok); !fault.Is(err, fault.Forbidden) {
			t.Fatalf("another account accepted the invitation: %v", err)
		}
		// Nothing is shared before the invitation is accepted.
		if _, err := e.svc.ReadShared(ctx, primary, sub.Account.SubjectID, nil); !fault.Is(err, fault.NotFound) {
			t.Fatalf("read before acceptance: %v", err)
		}
		if _, err := e.svc.AcceptInvitation(ctx, sub, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.AcceptInvitation(ctx, sibling, invite(identity.DelegateSubAccount, "sibling@example.org")); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.ReadShared(ctx, primary, sub.Account.SubjectID, []string{"identity"})
		if err != nil || got["name"] != "Sam Sub" || got["email"] != "sub@example.org" {
			t.Fatalf("the primary reads the sub-account: %v, %v", got, err)
		}
		if _, err := e.svc.ReadShared(ctx, primary, sub.Account.SubjectID, []string{"activity"}); !fault.Is(err, fault.Forbidden) {
			t.Errorf("beyond the grant: %v, want refused", err)
		}
		if _, err := e.svc.ReadShared(ctx, sub, primary.Account.SubjectID, nil); !fault.Is(err, fault.NotFound) {
			t.Errorf("a sub-account read its primary: %v", err)
		}
		if _, err := e.svc.ReadShared(ctx, sub, sibling.Account.SubjectID, nil); !fault.Is(err, fault.NotFound) {
			t.Errorf("a sub-account read a sibling: %v", err)
		}
		// An authorised user reads the primary's granted data, until revoked.
		if _, err := e.svc.AcceptInvitation(ctx, user, invite(identity.DelegateAuthorised, "user@example.org")); err != nil {
			t.Fatal(err)
		}
		if got, err := e.svc.ReadShared(ctx, user, primary.Account.SubjectID, nil); err != nil || got["name"] != "Pat Primary" {
			t.Fatalf("the authorised user reads the primary: %v, %v", got, err)
		}
		if _, err := e.svc.ReadShared(ctx, primary, user.Account.SubjectID, nil); !fault.Is(err, fault.NotFound) {
			t.Errorf("the primary read its authorised user: %v", err)
		}
		ds, err := e.svc.Delegations(ctx, primary)
		if err != nil || len(ds) != 3 {
			t.Fatalf("the primary's delegations: %+v, %v", ds, err)
		}
		for _, d := range ds {
			if d.Kind == identity.DelegateAuthorised {
				if err := e.svc.RevokeDelegation(ctx, primary, d.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := e.svc.ReadShared(ctx, user, primary.Account.SubjectID, nil); !fault.Is(err, fault.NotFound) {
			t.Errorf("after the revocation: %v", err)
		}
		acts := fmt.Sprint(e.actions(sub.Account.SubjectID), e.actions(primary.Account.SubjectID))
		for _, want := range []string{"account.shared_read", "account.shared_read_refused", "account.delegation_revoked"} {
			if !containsWord(acts, want) {
				t.Errorf("audit lacks %s: %s", want, acts)
			}
		}
	})
}

func containsWord(s, w string) bool {
	for _, f := range splitFields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func splitFields(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		if r == ' ' || r == '[' || r == ']' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(r)
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// BenchmarkGrantCheck: the read of a sub-account's granted data by a
// primary holder with 100 sub-accounts (the grant check is one indexed
// query; the rest is opening the fields).
func BenchmarkGrantCheck(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml", func(c *identity.Config) {
		c.Limits.SignupIP, c.Limits.LoginIP, c.Limits.SignupAccount = 1000, 1000, 1000
	})
	primary := e.member("primary@example.org", "Pat")
	var last identity.Principal
	for i := range 100 {
		email := fmt.Sprintf("sub%d@example.org", i)
		last = e.member(email, "Sub")
		if _, err := e.svc.Invite(ctx, primary, identity.DelegateSubAccount, email, identity.Grant{Categories: []string{"identity"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.svc.AcceptInvitation(ctx, last, tokenIn(b, e.lastMail(email, "account-invitation"))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.svc.ReadShared(ctx, primary, last.Account.SubjectID, []string{"identity"}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExpiredInvitationsArePruned: an invitation never accepted goes with
// its link's expiry (it holds only the invitee's address, as a blind
// index); an accepted share stays.
func TestExpiredInvitationsArePruned(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml")
		primary := e.member("primary@example.org", "Pat")
		kept := e.member("kept@example.org", "Kim")
		for _, email := range []string{"kept@example.org", "ignored@example.org"} {
			if _, err := e.svc.Invite(ctx, primary, identity.DelegateSubAccount, email, identity.Grant{Categories: []string{"identity"}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.AcceptInvitation(ctx, kept, tokenIn(t, e.lastMail("kept@example.org", "account-invitation"))); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(13 * 24 * time.Hour)
		if _, err := e.svc.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count("delegations"); n != 2 {
			t.Fatalf("%d delegations before the invitation expired, want 2", n)
		}
		e.clock.Advance(2 * 24 * time.Hour)
		if _, err := e.svc.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count("delegations"); n != 1 {
			t.Fatalf("%d delegations after the invitation expired, want the accepted one", n)
		}
	})
}
