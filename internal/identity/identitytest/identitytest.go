// Package identitytest helps tests of other packages sign staff in the way
// the real flows do: with the second factor their role requires.
package identitytest

import (
	"context"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"steward/internal/identity"
)

// Code is the authenticator code of a TOTP key at a time.
func Code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PassSecondFactor settles what the session of token owes: it enrols an
// authenticator for an account that has none (returning its key) and
// gives the code, so the session reaches what the account's role allows.
// now is the identity service's clock.
func PassSecondFactor(t testing.TB, svc *identity.Service, token string, now time.Time) string {
	t.Helper()
	ctx := context.Background()
	p, err := svc.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	switch p.SecondFactor {
	case "":
		return ""
	case identity.SecondFactorEnrol:
		e, err := svc.BeginTOTP(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ConfirmTOTP(ctx, p, e.ID, Code(t, e.Secret, now), identity.Meta{}); err != nil {
			t.Fatal(err)
		}
		return e.Secret
	}
	t.Fatalf("the session owes its existing second factor; give it with VerifySecondFactor")
	return ""
}
