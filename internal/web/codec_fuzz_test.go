package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"steward/internal/fault"
)

// fuzzBody has the shapes request bodies use: strings, numbers, booleans,
// a nested object, an array and an optional value.
type fuzzBody struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Ratio float64  `json:"ratio"`
	On    bool     `json:"on"`
	Tags  []string `json:"tags"`
	Inner struct {
		Flag bool   `json:"flag"`
		Note string `json:"note"`
	} `json:"inner"`
	Opt *string `json:"opt"`
}

// fuzzLimit is the body limit of the fuzzed requests: small, so that the
// fuzzer reaches it.
const fuzzLimit = 512

func fuzzRequest(ctype string, body []byte) *http.Request {
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, fuzzLimit)
	return r
}

// FuzzDecode: decode never panics; what it refuses it refuses with a
// client error carrying a code and a message; what it accepts is valid
// UTF-8 that encoding/json did not alter, and encoding it and decoding
// that again gives the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []struct{ ctype, body string }{
		{"application/json", `{"name":"a","count":2,"inner":{"flag":true},"tags":["x"],"opt":null}`},
		{"application/json; charset=utf-8", `{"name":"\u00e9\ud83d\ude00","ratio":1e3}`},
		{"application/merge-patch+json", `{"opt":"x"}`},
		{"application/json", `{"name":5}`},
		{"application/json", `{"inner":{"flag":"yes"}}`},
		{"application/json", `{"admin":true}`},
		{"application/json", `{"name":"a"} x`},
		{"application/json", "{\"name\":\"\xff\"}"},
		{"application/json", `{"name":"\ud800"}`},
		{"application/json", `[1]`},
		{"text/plain", `{}`},
		{"application/json; charset=latin1", `{}`},
		{"application/json", `{"name":"` + strings.Repeat("a", fuzzLimit) + `"}`},
	} {
		f.Add(s.ctype, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		var st fuzzBody
		checkDecode(t, ctype, body, &st, func() any { return new(fuzzBody) })
		var m map[string]json.RawMessage
		checkDecode(t, ctype, body, &m, func() any { return new(map[string]json.RawMessage) })
	})
}

func checkDecode(t *testing.T, ctype string, body []byte, v any, fresh func() any) {
	t.Helper()
	err := decode(fuzzRequest(ctype, body), v)
	if err != nil {
		p := problemOf(err)
		code := strings.TrimPrefix(p.Type, problemTypeBase)
		switch {
		case p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge && p.Status != http.StatusUnsupportedMediaType:
			t.Fatalf("decode(%q, %q): status %d (%v), want 400, 413 or 415", ctype, body, p.Status, err)
		case code != string(fault.Invalid) && code != string(fault.TooLarge) && code != string(fault.Unsupported):
			t.Fatalf("decode(%q, %q): code %q, want invalid, too_large or unsupported", ctype, body, code)
		case p.Title == "" || p.Detail == "" || !utf8.ValidString(p.Detail) || !utf8.ValidString(p.Field):
			t.Fatalf("decode(%q, %q): problem %+v lacks a title or a valid detail", ctype, body, p)
		case p.Status == http.StatusRequestEntityTooLarge && len(body) <= fuzzLimit:
			t.Fatalf("decode(%q, %q): 413 for %d bytes, under the limit", ctype, body, len(body))
		}
		return
	}
	if !utf8.Valid(body) {
		t.Fatalf("decode(%q, %q) accepted invalid UTF-8", ctype, body)
	}
	// Fewer may be decoded (a member given twice keeps the last), never
	// more.
	if decoded, written := replacementsIn(v), replacementsWritten(body); decoded > written {
		t.Fatalf("decode(%q, %q): %d U+FFFD decoded but %d written: encoding/json replaced something", ctype, body, decoded, written)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decode(%q, %q) gave %#v, which does not encode: %v", ctype, body, v, err)
	}
	again := fresh()
	if err := decode(fuzzRequest("application/json", enc), again); err != nil {
		// A re-encoding may outgrow the limit (escapes, zero values).
		if fault.CodeOf(err) == fault.TooLarge || problemOf(err).Status == http.StatusRequestEntityTooLarge {
			return
		}
		t.Fatalf("decode(%q, %q) gave %s, which decode refuses: %v", ctype, body, enc, err)
	}
	if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
		t.Fatalf("decode(%q, %q): encoded %s, then %s", ctype, body, enc, enc2)
	}
}

// replacementsIn counts U+FFFD in the strings and map keys of a decoded
// body, by way of its encoding: encoding/json writes U+FFFD as it is.
func replacementsIn(v any) int {
	b, _ := json.Marshal(v)
	return bytes.Count(b, []byte("\uFFFD")) + countEscapedFFFD(b)
}

// replacementsWritten counts U+FFFD a body writes, as the character or as
// a \ufffd escape.
func replacementsWritten(body []byte) int {
	return bytes.Count(body, []byte("\uFFFD")) + countEscapedFFFD(body)
}

func countEscapedFFFD(b []byte) int {
	n := 0
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && strings.EqualFold(string(b[i+2:i+6]), "fffd") {
			n++
		}
		i++
	}
	return n
}

// TestDecodeLoneSurrogate: encoding/json decodes "\ud800" to U+FFFD; decode
// refuses it as it refuses invalid UTF-8, and still takes a pair.
func TestDecodeLoneSurrogate(t *testing.T) {
	t.Parallel()
	for body, ok := range map[string]bool{
		`{"name":"\ud800"}`:               false,
		`{"name":"\uDC00"}`:               false,
		`{"name":"\ud83d\u0041"}`:         false,
		`{"name":"a\ud83d"}`:              false,
		`{"tags":["x","\udfff"]}`:         false,
		`{"name":"\ud83d\ude00"}`:         true,
		`{"name":"\\ud800"}`:              true, // a backslash, then text
		`{"name":"\\\ud83d\ude00"}`:       true,
		`{"name":"\ufffd \u00e9 \u0000"}`: true,
	} {
		var v fuzzBody
		err := decode(fuzzRequest("application/json", []byte(body)), &v)
		if ok && err != nil {
			t.Errorf("decode(%s): %v, want it accepted", body, err)
		}
		if !ok && (err == nil || problemOf(err).Status != http.StatusBadRequest) {
			t.Errorf("decode(%s) = %v, want a 400", body, err)
		}
	}
}
