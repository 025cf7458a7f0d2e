package identity_test

import (
	"fmt"
	"testing"

	"steward/internal/identity"
	"steward/internal/store/storetest"
)

// The benchmarks run with the default argon2id parameters (19 MiB, t=2,
// p=1) on SQLite: sign-up and login latency is dominated by the hash by
// design. Record results in BENCHMARKS.md with
//
//	go test -run '^$' -bench 'SignUp|Login' -benchmem ./internal/identity/
func defaultParams(c *identity.Config) {
	c.Argon2 = identity.DefaultArgon2
	// Every iteration comes from the same client: lift the limits so the
	// benchmark measures the flow, not the lock.
	c.Limits.SignupIP, c.Limits.LoginIP = 1<<30, 1<<30
}

func BenchmarkSignUp(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml", defaultParams)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		in := identity.SignUpInput{Fields: e.minimalFields(fmt.Sprintf("bench%d@example.org", i)), Password: goodPassword, AgeConfirmed: true}
		if err := e.svc.SignUp(ctx, in, meta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLogin(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml", defaultParams)
	e.signUp(e.minimalFields("grace@example.org"), true)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.svc.Login(ctx, "grace@example.org", goodPassword, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginUnknown is the failed login of an address with no
// account: it should cost what BenchmarkLogin costs (the dummy hash).
func BenchmarkLoginUnknown(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml", func(c *identity.Config) {
		defaultParams(c)
		c.Limits.LoginAccount = 1 << 30
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.svc.Login(ctx, "nobody@example.org", goodPassword, meta); err == nil {
			b.Fatal("login of an unknown address succeeded")
		}
	}
}

// BenchmarkAuthenticate is the per-request cost of a session token.
func BenchmarkAuthenticate(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml")
	e.signUp(e.minimalFields("grace@example.org"), true)
	_, tok, err := e.svc.Login(ctx, "grace@example.org", goodPassword, meta)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfile is a member's own profile read (GET /api/v1/me without
// the HTTP layer): the account, the address and every declared field,
// opened through the door for the member's own request.
func BenchmarkProfile(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml")
	fields := e.minimalFields("grace@example.org")
	fields["phone"], fields["company"] = sampleValue("phone"), sampleValue("company")
	id := e.signUp(fields, true)
	p := identity.Principal{Account: identity.Account{SubjectID: id}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Profile(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
