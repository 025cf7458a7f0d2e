package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"go.yaml.in/yaml/v3"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// mockProvider is an OpenID provider run in the test (mockoidc), with a
// hook that rewrites the ID token its token endpoint returns.
type mockProvider struct {
	m *mockoidc.MockOIDC

	mu        sync.Mutex
	rewrite   func(claims map[string]any) string
	authorize url.Values // the last authorization request
	userinfo  int        // answers of the userinfo endpoint
}

// startProvider runs a provider whose clock follows the test's fake clock
// (now), so the tokens it issues are fresh by the service's clock.
func startProvider(t testing.TB, now time.Time) *mockProvider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	mp := &mockProvider{m: m}
	if err := m.AddMiddleware(mp.middleware); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	m.FastForward(now.Sub(time.Now()))
	return mp
}

func (mp *mockProvider) setRewrite(f func(claims map[string]any) string) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	mp.rewrite = f
}

func (mp *mockProvider) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case mockoidc.AuthorizationEndpoint:
			mp.mu.Lock()
			mp.authorize = r.URL.Query()
			mp.mu.Unlock()
		case mockoidc.UserinfoEndpoint:
			mp.mu.Lock()
			mp.userinfo++
			mp.mu.Unlock()
		case mockoidc.TokenEndpoint:
			mp.mu.Lock()
			rewrite := mp.rewrite
			mp.mu.Unlock()
			if rewrite == nil {
				break
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil {
				if raw, ok := body["id_token"].(string); ok {
					body["id_token"] = rewrite(payloadOf(raw))
				}
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			json.NewEncoder(w).Encode(body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// payloadOf decodes the claims of a compact JWT.
func payloadOf(raw string) map[string]any {
	parts := strings.Split(raw, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(b, &claims)
	return claims
}

// sign signs claims as a JWT with key under kid.
func sign(t testing.TB, claims map[string]any, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signHS256 signs claims with a shared secret: the algorithm-confusion
// attack, with the provider's public key as the "secret".
func signHS256(t testing.TB, claims map[string]any, secret []byte) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// unsigned is claims as a JWT with "alg": "none".
func unsigned(claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(claims)
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// claimsUser is a person at the provider whose ID token carries claims
// beside the protocol's, and whose userinfo answer carries info.
type claimsUser struct {
	sub    string
	claims map[string]any
	info   map[string]any
}

func (u claimsUser) ID() string { return u.sub }

func (u claimsUser) Userinfo([]string) ([]byte, error) {
	m := maps.Clone(u.info)
	if m == nil {
		m = map[string]any{}
	}
	m["sub"] = u.sub
	return json.Marshal(m)
}

func (u claimsUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c := jwt.MapClaims{}
	maps.Copy(c, u.claims)
	rc := base.RegisteredClaims
	c["iss"], c["sub"], c["aud"], c["jti"] = rc.Issuer, rc.Subject, []string(rc.Audience), rc.ID
	c["exp"], c["iat"], c["nbf"] = rc.ExpiresAt.Unix(), rc.IssuedAt.Unix(), rc.NotBefore.Unix()
	c["nonce"] = base.Nonce
	return c, nil
}

// newSocialEnv is an env under jmir.yaml whose ORCID sign-in goes to a
// provider run in the test; claims, when given, replace the ones the
// policy lets ORCID import.
func newSocialEnv(t testing.TB, db *store.DB, claims ...string) (*env, *mockProvider) {
	t.Helper()
	mp := startProvider(t, start)
	cfg := mp.m.Config()
	p := variant(t, "jmir.yaml", func(root *yaml.Node) {
		orcid := child(root, "identity_providers", yaml.SequenceNode).Content[0]
		setScalar(orcid, "issuer", cfg.Issuer)
		setScalar(orcid, "client_id", cfg.ClientID)
		if len(claims) > 0 {
			list := child(orcid, "claims", yaml.SequenceNode)
			list.Content = nil
			for _, c := range claims {
				appendSeq(list, c)
			}
		}
	})
	e := newEnv(t, db, p)
	e.getenv = func(name string) string {
		if name == "STEWARD_OIDC_ORCID_SECRET" {
			return cfg.ClientSecret
		}
		return ""
	}
	e.svc = e.newService()
	return e, mp
}

// noRedirect is a browser that stops at the first redirect.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// socialSignIn signs in with the provider as a browser would: BeginSocial,
// the provider's redirect back with code and state, FinishSocial; edit may
// change the callback first. user is the person at the provider (nil: the
// mock's default).
func (e *env) socialSignIn(mp *mockProvider, user mockoidc.User, ageConfirmed bool, edit func(*identity.SocialCallback)) (identity.SocialOutcome, error) {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.svc.BeginSocial(ctx, "orcid", ageConfirmed, meta)
	if err != nil {
		e.t.Fatalf("begin: %v", err)
	}
	if user != nil {
		mp.m.QueueUser(user)
	}
	cb := mp.callback(e.t, st)
	if edit != nil {
		edit(&cb)
	}
	return e.svc.FinishSocial(ctx, "orcid", cb, meta)
}

// callback follows a sign-in to the provider and returns what its
// redirect brings back.
func (mp *mockProvider) callback(t testing.TB, st identity.SocialStart) identity.SocialCallback {
	t.Helper()
	resp, err := noRedirect.Get(st.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("the provider answered %s without a redirect", resp.Status)
	}
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, "https://steward.example.org/login/orcid/callback"; got != want {
		t.Fatalf("the provider sent the browser to %s, want %s", got, want)
	}
	return identity.SocialCallback{State: loc.Query().Get("state"), BrowserState: st.State, Code: loc.Query().Get("code")}
}

// storedBytes returns every byte of every row of every table.
func storedBytes(t testing.TB, db *store.DB) []byte {
	t.Helper()
	cols, err := db.Columns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, c := range cols {
		if !slices.Contains(tables, c.Table) {
			tables = append(tables, c.Table)
		}
	}
	var out []byte
	for _, name := range tables {
		out = append(out, storetest.RowBytes(t, db, `SELECT * FROM `+name)...)
	}
	return out
}

// tenClaims offers ten claims about a person, three of them (name, email,
// picture) the ones jmir.yaml lets ORCID import.
func tenClaims(sub string) claimsUser {
	return claimsUser{sub: sub, claims: map[string]any{
		"name":               "Ada Plantedname",
		"email":              "ada.planted@example.org",
		"email_verified":     true,
		"picture":            "https://img.example.net/planted-ada.png",
		"given_name":         "PlantedGiven",
		"family_name":        "PlantedFamily",
		"phone_number":       "+44 20 7946 0321",
		"address":            map[string]any{"formatted": "12 PlantedStreet, London"},
		"birthdate":          "1815-12-10",
		"gender":             "PlantedGender",
		"preferred_username": "planted_handle",
	}}
}

// The promise: a provider that offers ten claims leaves only the ones
// the policy declares in storage (sealed), and none of the others
// anywhere in any table, nor its id for the person. jmir.yaml declares
// three (picture, name, email); a narrower declaration keeps less of the
// same ten.
func TestPromiseJ5_SocialLoginImportsOnlyDeclaredClaims(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name              string
		claims            []string // nil: jmir.yaml's own
		wantName, wantPic string   // what the profile shows
		scopes            []string
		filledColumns     string // the account's sealed columns that hold a value
	}{
		{"jmir.yaml", nil, "Ada Plantedname", "https://img.example.net/planted-ada.png", []string{"openid", "profile", "email"},
			"name_sealed IS NOT NULL AND picture_sealed IS NOT NULL"},
		{"email alone", []string{"email"}, "", "", []string{"openid", "email"},
			"name_sealed IS NULL AND picture_sealed IS NULL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
				e, mp := newSocialEnv(t, db, c.claims...)
				ctx := context.Background()
				user := tenClaims("PlantedSubject-0000-0002-1825-0097")
				out, err := e.socialSignIn(mp, user, true, nil)
				if err != nil {
					t.Fatalf("sign in: %v", err)
				}
				if !out.Created || out.Token == "" || out.LinkToken != "" {
					t.Fatalf("outcome = %+v, want a new account signed in", out)
				}
				// The request asked PKCE with S256, a nonce, and only the
				// scopes the declared claims need.
				got := mp.authorize
				if got.Get("code_challenge_method") != "S256" || len(got.Get("code_challenge")) < 43 || got.Get("nonce") == "" || got.Get("state") == "" {
					t.Errorf("authorization request = %v, want S256 PKCE, a nonce and a state", got)
				}
				if scopes := strings.Fields(got.Get("scope")); !slices.Equal(scopes, c.scopes) {
					t.Errorf("scopes = %v, want %v", scopes, c.scopes)
				}
				p, err := e.svc.Authenticate(ctx, out.Token)
				if err != nil {
					t.Fatal(err)
				}
				pr, err := e.svc.Profile(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if pr.Fields["name"] != c.wantName || pr.Email != "ada.planted@example.org" || pr.Picture != c.wantPic {
					t.Errorf("profile = name %q, email %q, picture %q; want %q, the address, %q", pr.Fields["name"], pr.Email, pr.Picture, c.wantName, c.wantPic)
				}
				if !pr.Account.EmailVerified {
					t.Error("the provider verified the address; the account should count it verified")
				}
				// The seven claims no policy declares, the provider's id
				// for the person (only its blind index is kept), and the
				// declared ones, which are sealed.
				raw := storedBytes(t, db)
				for _, planted := range []string{"PlantedGiven", "PlantedFamily", "7946 0321", "PlantedStreet", "1815-12-10", "PlantedGender", "planted_handle",
					"PlantedSubject", "Ada Plantedname", "ada.planted@example.org", "planted-ada.png",
				} {
					if bytes.Contains(raw, []byte(planted)) {
						t.Errorf("%q is stored in plaintext somewhere", planted)
					}
				}
				// Nothing else of the account was filled, sealed or not.
				var filled int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE subject_id = $1 AND password_sealed IS NULL AND phone IS NULL
					AND company_sealed IS NULL AND organisation_sealed IS NULL AND billing_address IS NULL AND location_sealed IS NULL AND date_of_birth IS NULL
					AND `+c.filledColumns, p.Account.SubjectID).Scan(&filled); err != nil {
					t.Fatal(err)
				}
				if filled != 1 {
					t.Errorf("the account's sealed columns are not just those of the declared claims (%s)", c.filledColumns)
				}
				// J6: the source of the account and its subject is the
				// provider.
				var accSource, subSource string
				if err := db.QueryRowContext(ctx, `SELECT a.source, s.source FROM accounts a JOIN subjects s ON s.id = a.subject_id WHERE a.subject_id = $1`,
					p.Account.SubjectID).Scan(&accSource, &subSource); err != nil {
					t.Fatal(err)
				}
				if accSource != "third-party:orcid" || subSource != "third-party:orcid" {
					t.Errorf("sources = %q, %q; want third-party:orcid", accSource, subSource)
				}
				if n := len(e.mails("ada.planted@example.org")); n != 0 {
					t.Errorf("%d mails to a provider-verified address, want none", n)
				}
				if got := e.actions(p.Account.SubjectID); !slices.Equal(got, []string{"account.signup", "session.login"}) {
					t.Errorf("audit = %v", got)
				}
				if mp.userinfo != 0 {
					t.Error("userinfo asked although the ID token had every declared claim")
				}
				// The second sign-in finds the account by its link.
				again, err := e.socialSignIn(mp, user, false, nil)
				if err != nil || again.Created || again.Session.SubjectID != p.Account.SubjectID {
					t.Fatalf("second sign-in = %+v, %v; want the same account", again, err)
				}
			})
		})
	}
}

// Providers that keep profile claims for the userinfo answer: the
// declared ones are taken from it, the rest dropped alike.
func TestSocialClaimsFromUserinfo(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e, mp := newSocialEnv(t, db)
		ctx := context.Background()
		user := claimsUser{sub: "sub-userinfo-1",
			claims: map[string]any{"email": "grace.info@example.org", "email_verified": true, "locale": "PlantedLocale"},
			info:   map[string]any{"name": "Grace Infoname", "picture": "https://img.example.net/grace.png", "phone_number": "+1 202 555 0199", "nickname": "PlantedNick"},
		}
		out, err := e.socialSignIn(mp, user, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mp.userinfo != 1 {
			t.Errorf("userinfo asked %d times, want 1", mp.userinfo)
		}
		p, _ := e.svc.Authenticate(ctx, out.Token)
		pr, err := e.svc.Profile(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Fields["name"] != "Grace Infoname" || pr.Picture != "https://img.example.net/grace.png" || pr.Email != "grace.info@example.org" {
			t.Errorf("profile = %q %q %q", pr.Fields["name"], pr.Picture, pr.Email)
		}
		raw := storedBytes(t, db)
		for _, planted := range []string{"PlantedLocale", "PlantedNick", "555 0199"} {
			if bytes.Contains(raw, []byte(planted)) {
				t.Errorf("%q is stored", planted)
			}
		}
	})
}

// An address the provider has not verified is kept unverified, and our
// own link is mailed to it.
func TestSocialUnverifiedEmail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e, mp := newSocialEnv(t, db)
		ctx := context.Background()
		user := tenClaims("sub-unverified")
		user.claims["email_verified"] = false
		out, err := e.socialSignIn(mp, user, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := e.svc.Authenticate(ctx, out.Token)
		if p.Account.EmailVerified {
			t.Fatal("an address the provider did not verify counts as verified")
		}
		m := e.lastMail("ada.planted@example.org", identity.MailVerification)
		if err := e.svc.VerifyEmail(ctx, tokenIn(t, m)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := e.svc.EmailVerified(ctx, p.Account.SubjectID); !ok {
			t.Error("the link did not verify the address")
		}
	})
}

// An address that already has an account is never linked silently,
// verified by the provider or not: a pending link waits for the
// account's password; a wrong one is refused and audited; the right one
// links once, and the link then signs in. Nothing of the provider's
// claims reaches the existing account.
func TestSocialLinkToExistingAccountNeedsPassword(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e, mp := newSocialEnv(t, db)
		ctx := context.Background()
		owner := e.signUp(e.minimalFields("ada.planted@example.org"), true)
		for _, verified := range []bool{false, true} {
			user := tenClaims("sub-takeover")
			user.claims["email_verified"] = verified
			out, err := e.socialSignIn(mp, user, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if out.LinkToken == "" || out.Token != "" || out.Created {
				t.Fatalf("email_verified %v: outcome %+v, want a pending link and no session", verified, out)
			}
			if n := e.count("social_links"); n != 0 {
				t.Fatalf("%d links before the password", n)
			}
			if n := e.count("sessions"); n != 0 {
				t.Fatalf("%d sessions before the password", n)
			}
		}
		// Only the newest pending link works.
		user := tenClaims("sub-takeover")
		out, err := e.socialSignIn(mp, user, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := e.count("social_pending"); n != 1 {
			t.Errorf("%d pending links, want the newest alone", n)
		}
		if info, err := e.svc.PendingLink(ctx, out.LinkToken); err != nil || info.Name != "ORCID" {
			t.Fatalf("PendingLink = %+v, %v", info, err)
		}
		_, _, err = e.svc.LinkWithPassword(ctx, out.LinkToken, "not the password at all", meta)
		if fault.CodeOf(err) != fault.Unauthorized {
			t.Fatalf("wrong password: %v, want unauthorized", err)
		}
		if n := e.count("social_links"); n != 0 {
			t.Fatal("a wrong password linked the account")
		}
		if !slices.Contains(e.actions(owner), "social.link_failed") {
			t.Errorf("the wrong password was not audited: %v", e.actions(owner))
		}
		sess, tok, err := e.svc.LinkWithPassword(ctx, out.LinkToken, goodPassword, meta)
		if err != nil || tok == "" || sess.SubjectID != owner {
			t.Fatalf("right password: %+v, %v", sess, err)
		}
		if _, _, err := e.svc.LinkWithPassword(ctx, out.LinkToken, goodPassword, meta); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("second use of a pending link: %v, want invalid", err)
		}
		for _, a := range []string{"social.link_pending", "social.linked"} {
			if !slices.Contains(e.actions(owner), a) {
				t.Errorf("audit of the owner lacks %s: %v", a, e.actions(owner))
			}
		}
		// The provider now signs the owner in; the account keeps its name.
		again, err := e.socialSignIn(mp, user, false, nil)
		if err != nil || again.Session.SubjectID != owner {
			t.Fatalf("sign-in after linking = %+v, %v", again, err)
		}
		p, _ := e.svc.Authenticate(ctx, again.Token)
		pr, _ := e.svc.Profile(ctx, p)
		if pr.Fields["name"] != "Grace Hopper" || pr.Picture != "" {
			t.Errorf("linking imported claims: name %q, picture %q", pr.Fields["name"], pr.Picture)
		}
		linked, err := e.svc.LinkedProviders(ctx, owner)
		if err != nil || len(linked) != 1 || linked[0].Name != "ORCID" {
			t.Fatalf("linked = %+v, %v", linked, err)
		}
		// Unlinking: the member removes it; the provider then leads to a
		// pending link again, never into the account.
		if err := e.svc.Unlink(ctx, p, "orcid"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Unlink(ctx, p, "orcid"); fault.CodeOf(err) != fault.NotFound {
			t.Errorf("second unlink: %v, want not found", err)
		}
		if out, err := e.socialSignIn(mp, user, false, nil); err != nil || out.LinkToken == "" {
			t.Errorf("sign-in after unlinking = %+v, %v; want a pending link", out, err)
		}
	})
}

// An account made by a provider has no password: its last link stays
// until the member sets one.
func TestSocialUnlinkKeepsTheLastWayIn(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t, mods())
	e, mp := newSocialEnv(t, db)
	ctx := context.Background()
	out, err := e.socialSignIn(mp, tenClaims("sub-only-way"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.svc.Authenticate(ctx, out.Token)
	if err := e.svc.Unlink(ctx, p, "orcid"); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("unlinking the only way in: %v, want conflict", err)
	}
	if n := e.count("social_links"); n != 1 {
		t.Fatal("the link went anyway")
	}
}

// Bad input: each refused with a clear error, audited with its reason,
// and nothing stored (the sign-in's state is spent).
func TestSocialSignInRefusesBadInput(t *testing.T) {
	t.Parallel()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e, mp := newSocialEnv(t, db)
		kid, _ := mp.m.Keypair.KeyID()
		key := mp.m.Keypair.PrivateKey
		resign := func(edit func(c map[string]any)) func(map[string]any) string {
			return func(c map[string]any) string { edit(c); return sign(t, c, key, kid) }
		}
		cases := []struct {
			name    string
			age     bool
			edit    func(cb *identity.SocialCallback)
			rewrite func(c map[string]any) string
			code    fault.Code
			reason  string
			says    string
		}{
			{name: "state from another browser", edit: func(cb *identity.SocialCallback) { cb.BrowserState = strings.Repeat("A", 43) },
				code: fault.Forbidden, reason: "state_mismatch", says: "not started in this browser"},
			{name: "no state in the browser", edit: func(cb *identity.SocialCallback) { cb.BrowserState = "" },
				code: fault.Forbidden, reason: "state_mismatch", says: "not started in this browser"},
			{name: "no state", edit: func(cb *identity.SocialCallback) { cb.State = "" },
				code: fault.Invalid, reason: "state_missing", says: "without a valid state"},
			{name: "unknown state", edit: func(cb *identity.SocialCallback) {
				cb.State, cb.BrowserState = strings.Repeat("B", 43), strings.Repeat("B", 43)
			},
				code: fault.Invalid, reason: "state_unknown", says: "already used or is unknown"},
			{name: "state expired", edit: func(*identity.SocialCallback) {
				// The provider's clock moves with ours, for the cases after.
				e.clock.Advance(11 * time.Minute)
				mp.m.FastForward(11 * time.Minute)
			},
				code: fault.Invalid, reason: "state_expired", says: "took too long"},
			{name: "provider error", edit: func(cb *identity.SocialCallback) { cb.Code, cb.Error = "", "access_denied" },
				code: fault.Forbidden, reason: "provider_error", says: "ORCID did not sign you in (access_denied)"},
			{name: "forged code", edit: func(cb *identity.SocialCallback) { cb.Code = "forged-code" },
				code: fault.Forbidden, reason: "code_refused", says: "did not accept"},
			{name: "wrong nonce", rewrite: resign(func(c map[string]any) { c["nonce"] = "not-this-sign-in" }),
				code: fault.Forbidden, reason: "id_token_nonce", says: "belongs to another sign-in"},
			{name: "wrong audience", rewrite: resign(func(c map[string]any) { c["aud"] = "another-application" }),
				code: fault.Forbidden, reason: "id_token_audience", says: "issued to another application"},
			{name: "two audiences and no authorised party", rewrite: resign(func(c map[string]any) {
				if aud, ok := c["aud"].([]any); ok {
					c["aud"] = append(aud, "another-application")
				} else {
					c["aud"] = []any{c["aud"], "another-application"}
				}
			}),
				code: fault.Forbidden, reason: "id_token_azp", says: "issued for another application"},
			{name: "authorised party another application", rewrite: resign(func(c map[string]any) { c["azp"] = "another-application" }),
				code: fault.Forbidden, reason: "id_token_azp", says: "issued for another application"},
			{name: "at_hash of another access token", rewrite: resign(func(c map[string]any) { c["at_hash"] = "bm90LXRoaXMtdG9rZW4" }),
				code: fault.Forbidden, reason: "id_token_at_hash", says: "does not match the access token"},
			{name: "wrong issuer", rewrite: resign(func(c map[string]any) { c["iss"] = "https://issuer.example.net" }),
				code: fault.Forbidden, reason: "id_token_issuer", says: "did not come from ORCID"},
			{name: "expired", rewrite: resign(func(c map[string]any) {
				c["iat"], c["nbf"], c["exp"] = start.Add(-2*time.Hour).Unix(), start.Add(-2*time.Hour).Unix(), start.Add(-time.Hour).Unix()
			}), code: fault.Forbidden, reason: "id_token_expired", says: "has expired"},
			{name: "signed by an unknown key under the provider's kid", rewrite: func(c map[string]any) string { return sign(t, c, otherKey, kid) },
				code: fault.Forbidden, reason: "id_token_signature", says: "not signed by a key of ORCID"},
			{name: "signed by an unknown key", rewrite: func(c map[string]any) string { return sign(t, c, otherKey, "unknown-kid") },
				code: fault.Forbidden, reason: "id_token_signature", says: "not signed by a key of ORCID"},
			{name: "alg none", rewrite: unsigned,
				code: fault.Forbidden, reason: "id_token_malformed", says: "not signed with an algorithm it announces"},
			{name: "HS256 keyed with the public key", rewrite: func(c map[string]any) string {
				pub, _ := json.Marshal(key.PublicKey)
				return signHS256(t, c, pub)
			}, code: fault.Forbidden, reason: "id_token_malformed", says: "not signed with an algorithm it announces"},
			{name: "age not confirmed for a new account", age: false, edit: nil,
				code: fault.Forbidden, reason: "age_unconfirmed", says: "at least 18 years old"},
		}
		for _, c := range cases {
			age := c.age || c.reason != "age_unconfirmed"
			mp.setRewrite(c.rewrite)
			_, err := e.socialSignIn(mp, tenClaims("sub-bad-input"), age, c.edit)
			mp.setRewrite(nil)
			if fault.CodeOf(err) != c.code || !strings.Contains(fault.MessageOf(err), c.says) {
				t.Errorf("%s: %v, want %s saying %q", c.name, err, c.code, c.says)
			}
			entries, err := e.audit.List(context.Background(), 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Action != "social.login_failed" || entries[0].Detail["reason"] != c.reason || entries[0].Detail["provider"] != "orcid" {
				t.Errorf("%s: last audit entry %+v, want social.login_failed for %s", c.name, entries, c.reason)
			}
			for _, table := range []string{"subjects", "accounts", "social_links", "social_pending", "sessions", "email_tokens"} {
				if n := e.count(table); n != 0 {
					t.Errorf("%s: %d rows in %s", c.name, n, table)
				}
			}
			// The state the callback named is spent; a callback naming
			// none (or another) leaves the browser's sign-in to expire.
			if n, want := e.count("social_flows"), 0; c.reason == "state_missing" || c.reason == "state_unknown" {
				if n != 1 {
					t.Errorf("%s: %d sign-ins under way, want the browser's own", c.name, n)
				}
				if _, err := db.ExecContext(context.Background(), `DELETE FROM social_flows`); err != nil {
					t.Fatal(err)
				}
			} else if n != want {
				t.Errorf("%s: %d sign-ins under way, want the one named spent", c.name, n)
			}
		}
		// A replayed callback: the first signs in, the second is refused
		// and changes nothing.
		var cb identity.SocialCallback
		if _, err := e.socialSignIn(mp, tenClaims("sub-replay"), true, func(c *identity.SocialCallback) { cb = *c }); err != nil {
			t.Fatal(err)
		}
		before := storedCounts(e)
		_, err := e.svc.FinishSocial(context.Background(), "orcid", cb, meta)
		if fault.CodeOf(err) != fault.Invalid || !strings.Contains(fault.MessageOf(err), "already used") {
			t.Errorf("replayed callback: %v, want invalid saying already used", err)
		}
		if after := storedCounts(e); after != before {
			t.Errorf("the replay changed the rows: %v → %v", before, after)
		}
		// An undeclared provider is unknown.
		if _, err := e.svc.BeginSocial(context.Background(), "evil", true, meta); fault.CodeOf(err) != fault.NotFound {
			t.Errorf("undeclared provider: %v, want not found", err)
		}
	})
}

func storedCounts(e *env) [4]int {
	return [4]int{e.count("accounts"), e.count("social_links"), e.count("sessions"), e.count("subjects")}
}

// Spent and stale sign-ins and pending links are pruned.
func TestSocialPrune(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t, mods())
	e, _ := newSocialEnv(t, db)
	ctx := context.Background()
	if _, err := e.svc.BeginSocial(ctx, "orcid", false, meta); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(11 * time.Minute)
	if _, err := e.svc.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count("social_flows"); n != 0 {
		t.Errorf("%d stale sign-ins left", n)
	}
}

// A provider whose secret is not in the environment is not offered.
func TestSocialProviderWithoutSecretIsOff(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t, mods())
	e, _ := newSocialEnv(t, db)
	if got := e.svc.Providers(); len(got) != 1 || got[0].Name != "ORCID" || !slices.Equal(got[0].Claims, []string{"picture", "name", "email"}) {
		t.Errorf("providers = %+v, want ORCID with its three claims", got)
	}
	e.getenv = nil
	svc := e.newService()
	if got := svc.Providers(); len(got) != 0 {
		t.Errorf("providers without a secret = %+v, want none", got)
	}
	if _, err := svc.BeginSocial(context.Background(), "orcid", true, meta); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("begin without a secret: %v, want not found", err)
	}
}
