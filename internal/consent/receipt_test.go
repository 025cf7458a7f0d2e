package consent

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
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
		// Other spellings of the same signature bytes.
		{"signature value with a line break", respellSignature(t, signed, func(v string) string { return v[:10] + "\n" + v[10:] }), s.PublicKey()},
		{"signature value with stray low bits", respellSignature(t, signed, func(v string) string {
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, v[len(v)-1])
			return v[:len(v)-1] + string(alphabet[last^1])
		}), s.PublicKey()},
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

func respellSignature(t *testing.T, doc []byte, respell func(string) string) []byte {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	sig := m["signature"].(map[string]any)
	sig["value"] = respell(sig["value"].(string))
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

// signedWithReplacement is a signed receipt holding U+FFFD, the character
// encoding/json puts for what it cannot decode.
func signedWithReplacement(t testing.TB, s *Signer) []byte {
	t.Helper()
	r := sampleReceipt()
	r.CollectionPoint = "/account/privacy \uFFFD"
	signed, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(signed, []byte("\uFFFD")) {
		t.Fatal("the signed receipt does not hold U+FFFD as it is")
	}
	return signed
}

// TestReceiptReplacementCharacter: a signed U+FFFD must not vouch for the
// invalid input the decoder would also turn into U+FFFD.
func TestReceiptReplacementCharacter(t *testing.T) {
	s := testSigner(t)
	signed := signedWithReplacement(t, s)
	swap := func(with string) []byte { return bytes.Replace(signed, []byte("\uFFFD"), []byte(with), 1) }
	for name, doc := range map[string][]byte{
		"raw 0xFF byte":             swap("\xff"),
		"encoded surrogate bytes":   swap("\xed\xa0\x80"),
		`\ud800 escape`:             swap(`\ud800`),
		`\udfff escape`:             swap(`\uDFFF`),
		`high surrogate then a`:     swap(`\ud800\u0061`),
		`high surrogate then high`:  swap(`\ud800\ud800`),
		`high surrogate at the end`: swap(`x\ud83d`),
	} {
		err := VerifyReceipt(s.PublicKey(), doc)
		if err == nil || !errors.Is(err, ErrBadReceipt) {
			t.Errorf("%s: got %v, want ErrBadReceipt", name, err)
		}
	}
	// Spelling the same character differently is re-encoding, not a change.
	for name, doc := range map[string][]byte{
		"as signed":          signed,
		`\ufffd escape`:      swap(`\ufffd`),
		`\uFFFD escape`:      swap(`\uFFFD`),
		"re-indented":        compactJSON(t, signed),
		"escaped solidus":    bytes.Replace(signed, []byte(`https://`), []byte(`https:\/\/`), 1),
		"surrogate pair":     bytes.Replace(signedEmoji(t, s), []byte("\U0001F600"), []byte(`\ud83d\ude00`), 1),
		"surrogate pair raw": signedEmoji(t, s),
	} {
		if err := VerifyReceipt(s.PublicKey(), doc); err != nil {
			t.Errorf("%s: got %v, want it to verify", name, err)
		}
	}
}

func signedEmoji(t testing.TB, s *Signer) []byte {
	t.Helper()
	r := sampleReceipt()
	r.CollectionPoint = "/account/privacy \U0001F600"
	signed, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func compactJSON(t testing.TB, doc []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzVerifyReceipt: whatever a signed receipt is turned into, it verifies
// only if it says exactly what was signed. The check beside the signature
// decodes with encoding/json alone and counts U+FFFD: every one in the
// decoded receipt must be written in it, as the character or \ufffd, not
// made by the decoder from something it could not read.
func FuzzVerifyReceipt(f *testing.F) {
	s := testSigner(f)
	signed := signedWithReplacement(f, s)
	r := sampleReceipt()
	r.CollectionPoint = "/account/privacy \uFFFD"
	body, err := json.Marshal(r)
	if err != nil {
		f.Fatal(err)
	}
	want, err := canonicalJSON(body)
	if err != nil {
		f.Fatal(err)
	}
	if again, err := canonicalJSON(want); err != nil || !bytes.Equal(again, want) {
		f.Fatalf("the canonical form is not its own canonical form: %v\n%s\n%s", err, want, again)
	}
	f.Add(signed)
	f.Add(compactJSON(f, signed))
	f.Add(bytes.Replace(signed, []byte("\uFFFD"), []byte(`\ufffd`), 1))
	f.Add(bytes.Replace(signed, []byte(`"state": "given"`), []byte(`"state": "withdrawn"`), 1))
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := VerifyReceipt(s.PublicKey(), doc)
		if err != nil {
			if !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("got %v, want it to wrap ErrBadReceipt", err)
			}
			return
		}
		if !utf8.Valid(doc) {
			t.Fatalf("verified a receipt that is not valid UTF-8: %q", doc)
		}
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatalf("verified a receipt encoding/json cannot read (%v): %q", err, doc)
		}
		if decoded, written := countReplacements(m), writtenReplacements(doc); decoded != written {
			t.Fatalf("verified a receipt the decoder altered: %d U+FFFD decoded, %d written: %q", decoded, written, doc)
		}
		delete(m, "signature")
		b, _ := json.Marshal(m)
		got, err := canonicalJSON(b)
		if err != nil {
			t.Fatalf("verified a receipt whose content does not canonicalise: %v: %q", err, doc)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("verified a receipt that differs from the signed one:\n got %s\nwant %s", got, want)
		}
	})
}

// countReplacements counts U+FFFD in every key and string of a decoded
// JSON value.
func countReplacements(v any) int {
	n := 0
	switch t := v.(type) {
	case string:
		n = strings.Count(t, "\uFFFD")
	case []any:
		for _, e := range t {
			n += countReplacements(e)
		}
	case map[string]any:
		for k, e := range t {
			n += strings.Count(k, "\uFFFD") + countReplacements(e)
		}
	}
	return n
}

// writtenReplacements counts U+FFFD written in a JSON document, as the
// character or as a \ufffd escape.
func writtenReplacements(doc []byte) int {
	n := bytes.Count(doc, []byte("\uFFFD"))
	for i := 0; i+1 < len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		if doc[i+1] == 'u' && i+6 <= len(doc) && strings.EqualFold(string(doc[i+2:i+6]), "fffd") {
			n++
		}
		i++
	}
	return n
}
