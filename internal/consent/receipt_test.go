package consent

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func testSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := DeriveSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleReceipt() Receipt {
	return Receipt{
		Version:          ReceiptVersion,
		ConsentTimestamp: 1790000000,
		IssuedAt:         "2026-09-21T10:00:00.000001Z",
		CollectionMethod: "form",
		ConsentReceiptID: "c_abc",
		Language:         "en",
		PIIPrincipalID:   "s_123",
		PIIControllers:   []Controller{{Name: "Example Media", Contact: "privacy@example.org"}},
		PolicyURL:        "https://example.org/privacy/versions/2",
		Services: []Service{{Service: "Example Media", Purposes: []ReceiptPurpose{{
			Purpose: "Partner offers", PurposeID: "partner-marketing", ConsentType: "EXPLICIT",
			PIICategory: []string{"contact"}, PurposeCategory: []string{"third-party-marketing"}, Termination: "withdraw at /account/privacy",
		}}}},
		SPICat:          []string{},
		State:           "given",
		PolicyVersion:   2,
		PolicyHash:      "ab12",
		CollectionPoint: "/account/privacy <é\u2028>",
		Evidence:        Evidence{UserAgentFamily: "Firefox", Network: "203.0.113.0/24"},
	}
}

func TestReceiptSignVerify(t *testing.T) {
	s := testSigner(t)
	signed, err := s.Sign(sampleReceipt())
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyReceipt(s.PublicKey(), signed); err != nil {
		t.Fatalf("fresh receipt: got %v, want it to verify", err)
	}
	// Re-encoding (compact, other member order) keeps it valid.
	var generic map[string]any
	if err := json.Unmarshal(signed, &generic); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(generic)
	if err := VerifyReceipt(s.PublicKey(), compact); err != nil {
		t.Fatalf("re-encoded receipt: got %v, want it to verify", err)
	}
}

// TestReceiptTampered: every kind of change to a signed receipt must make
// verification fail.
func TestReceiptTampered(t *testing.T) {
	s := testSigner(t)
	signed, err := s.Sign(sampleReceipt())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner(bytes.Repeat([]byte{9}, 32))
	otherSigned, _ := other.Sign(sampleReceipt())
	cases := []struct {
		name string
		doc  []byte
		pub  ed25519.PublicKey
	}{
		{"state flipped", bytes.Replace(signed, []byte(`"state": "given"`), []byte(`"state": "withdrawn"`), 1), s.PublicKey()},
		{"purpose changed", bytes.Replace(signed, []byte(`"partner-marketing"`), []byte(`"marketing"`), 1), s.PublicKey()},
		{"timestamp changed", bytes.Replace(signed, []byte(`1790000000`), []byte(`1790000001`), 1), s.PublicKey()},
		{"member added", bytes.Replace(signed, []byte(`"state":`), []byte(`"extra": 1, "state":`), 1), s.PublicKey()},
		{"member removed", bytes.Replace(signed, []byte(`"sensitive": false,`), nil, 1), s.PublicKey()},
		{"duplicate member", bytes.Replace(signed, []byte(`"state": "given"`), []byte(`"state": "given", "state": "withdrawn"`), 1), s.PublicKey()},
		{"signature removed", removeSignature(t, signed), s.PublicKey()},
		{"signature value altered", alterSignature(t, signed), s.PublicKey()},
		{"signed by another key", otherSigned, s.PublicKey()},
		{"verified with another key", signed, other.PublicKey()},
		{"not JSON", []byte("not json"), s.PublicKey()},
		{"trailing data", append(append([]byte{}, signed...), []byte(" {}")...), s.PublicKey()},
		{"array", []byte(`[1,2]`), s.PublicKey()},
		{"short key", signed, ed25519.PublicKey([]byte{1, 2, 3})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if bytes.Equal(c.doc, signed) && bytes.Equal(c.pub, s.PublicKey()) {
				t.Fatal("test case did not change anything")
			}
			err := VerifyReceipt(c.pub, c.doc)
			if err == nil {
				t.Fatal("got nil, want a verification failure")
			}
			if !errors.Is(err, ErrBadReceipt) {
				t.Errorf("got %v, want it to wrap ErrBadReceipt", err)
			}
		})
	}
}

func removeSignature(t *testing.T, doc []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "signature")
	b, _ := json.Marshal(m)
	return b
}

func alterSignature(t *testing.T, doc []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	sig := m["signature"].(map[string]any)
	v := []byte(sig["value"].(string))
	if v[0] == 'A' {
		v[0] = 'B'
	} else {
		v[0] = 'A'
	}
	sig["value"] = string(v)
	b, _ := json.Marshal(m)
	return b
}

func TestParsePublicKey(t *testing.T) {
	s := testSigner(t)
	jwks := `{"keys":[` + string(s.JWK()) + `]}`
	for name, in := range map[string]string{
		"jwk":       string(s.JWK()),
		"jwks":      jwks,
		"pem":       string(s.PEM()),
		"base64url": "  " + strings.TrimRight(jsonField(t, s.JWK(), "x"), "=") + "\n",
		"hex":       hexOf(s.PublicKey()),
	} {
		got, err := ParsePublicKey([]byte(in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !got.Equal(s.PublicKey()) {
			t.Errorf("%s: got another key", name)
		}
	}
	for _, bad := range []string{"", "{}", `{"kty":"RSA"}`, "zz", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"} {
		if _, err := ParsePublicKey([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKey(%q): got nil error, want one", bad)
		}
	}
}

func jsonField(t *testing.T, doc []byte, k string) string {
	var m map[string]string
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m[k]
}

func hexOf(b []byte) string {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&15])
	}
	return string(out)
}

func TestDeriveSignerStable(t *testing.T) {
	a, _ := DeriveSigner(bytes.Repeat([]byte{1}, 32))
	b, _ := DeriveSigner(bytes.Repeat([]byte{1}, 32))
	c, _ := DeriveSigner(bytes.Repeat([]byte{2}, 32))
	if !a.PublicKey().Equal(b.PublicKey()) {
		t.Error("same master key gave different signing keys")
	}
	if a.PublicKey().Equal(c.PublicKey()) {
		t.Error("different master keys gave the same signing key")
	}
	l, _ := DeriveLinks(bytes.Repeat([]byte{1}, 32), nil)
	if bytes.Equal(l.key, a.priv.Seed()) {
		t.Error("link key equals the signing seed: the HKDF info strings must separate them")
	}
	if _, err := DeriveSigner([]byte("short")); err == nil {
		t.Error("short master key: got nil error")
	}
}

// TestCanonicalJSON checks the RFC 8785 examples that matter for receipts.
func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":1,"a":[true,null,"x"]}`, `{"a":[true,null,"x"],"b":1}`},
		{`{ "n": 1.0, "m": 1e3, "s": 0.000001, "t": 1e-7, "u": -0 }`, `{"m":1000,"n":1,"s":0.000001,"t":1e-7,"u":0}`},
		{`{"s":"\u00e9\n\u001f<>&\u2028"}`, "{\"s\":\"é\\n\\u001f<>&\u2028\"}"},
		// UTF-16 order differs from byte order above U+FFFF: U+1F600 sorts before U+FB33.
		{`{"\ufb33":1,"\ud83d\ude00":2,"z":3,"\u20ac":4}`, "{\"z\":3,\"€\":4,\"\U0001F600\":2,\"\ufb33\":1}"},
	}
	for _, c := range cases {
		got, err := canonicalJSON([]byte(c.in))
		if err != nil {
			t.Errorf("canonicalJSON(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("canonicalJSON(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":1} x`, "\xff"} {
		if _, err := canonicalJSON([]byte(bad)); err == nil {
			t.Errorf("canonicalJSON(%q): got nil error", bad)
		}
	}
}
