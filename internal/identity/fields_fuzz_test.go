package identity

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"steward/internal/fault"
)

// FuzzCleanText: every sign-up field other than the email (which
// subject.NormalizeEmail checks) is refused with a fault naming the field,
// or comes out valid UTF-8, NFC, trimmed, within its length, free of
// control characters and line separators (a multi-line field keeps LF
// only), passing its field's own check, and unchanged by a second
// cleaning.
func FuzzCleanText(f *testing.F) {
	for _, s := range []struct {
		field uint8
		v     string
	}{
		{0, "Grace Hopper"}, {0, "  Mika Häkkinen\u00a0"}, {0, "Grace\r\nBcc: victim@example.org"}, {0, "Gr\xffce"},
		{1, "+358 40 123 4567"}, {1, "call me maybe"}, {1, "+1 (202) 555-0143"},
		{4, "1 Harbour Street\r\nArlington VA"}, {4, "line\r\rbreak"}, {4, "a\u2028b"},
		{6, "1980-12-09"}, {6, "1980-02-30"}, {0, "e\u0301\u0301"}, {0, " \u0301a"},
	} {
		f.Add(s.field, s.v)
	}
	var fields []string
	for _, name := range SupportedFields() {
		if name != FieldEmail {
			fields = append(fields, name)
		}
	}
	f.Fuzz(func(t *testing.T, pick uint8, v string) {
		field := fields[int(pick)%len(fields)]
		spec := supported[field]
		got, err := cleanText(field, v, spec)
		if err != nil {
			if c := fault.CodeOf(err); (c != fault.Invalid && c != fault.TooLarge) || fault.FieldOf(err) != field || fault.MessageOf(err) == "" {
				t.Fatalf("cleanText(%s, %q): %v, want an invalid or too-large fault on %s", field, v, err, field)
			}
			return
		}
		switch {
		case !utf8.ValidString(got) || !norm.NFC.IsNormalString(got):
			t.Fatalf("cleanText(%s, %q) = %q: not valid NFC UTF-8", field, v, got)
		case strings.TrimSpace(got) != got:
			t.Fatalf("cleanText(%s, %q) = %q: not trimmed", field, v, got)
		case utf8.RuneCountInString(got) > spec.maxRunes:
			t.Fatalf("cleanText(%s, %q) = %q: over %d characters", field, v, got, spec.maxRunes)
		case strings.ContainsFunc(got, func(r rune) bool {
			return (unicode.IsControl(r) && !(r == '\n' && spec.multiline)) || r == '\u2028' || r == '\u2029'
		}):
			t.Fatalf("cleanText(%s, %q) = %q holds a control character or line separator", field, v, got)
		}
		if got != "" && spec.check != nil {
			if err := spec.check(got); err != nil {
				t.Fatalf("cleanText(%s, %q) = %q, which its check refuses: %v", field, v, got, err)
			}
		}
		if field == FieldDateOfBirth && got != "" {
			if _, err := time.Parse(dateLayout, got); err != nil {
				t.Fatalf("cleanText(%s, %q) = %q, not a date", field, v, got)
			}
		}
		if again, err := cleanText(field, got, spec); again != got || err != nil {
			t.Fatalf("cleanText(%s, %q) = %q, then %q, %v", field, v, got, again, err)
		}
	})
}

// FuzzPassword: a password is refused with a fault on its field, or comes
// out valid NFC UTF-8 within the length limit and unchanged by a second
// normalisation; the rules for a new password then answer nil or an
// invalid fault, whatever the name and address beside it.
func FuzzPassword(f *testing.F) {
	for _, s := range []struct{ pw, name, email string }{
		{"tangerine orbit lantern", "Grace Hopper", "grace@example.org"},
		{"passwordpassword", "", "a@b.org"},
		{"grace hopper rules 2026", "Grace Hopper", "grace@example.org"},
		{"Ａｍéｌｉｅ\u0301 x\x00y", "Amélie", "amelie@example.org"},
		{strings.Repeat("ü", 300), "", ""},
		{"\xff\xfe", "", ""},
	} {
		f.Add(s.pw, s.name, s.email)
	}
	f.Fuzz(func(t *testing.T, pw, name, email string) {
		got, err := normalizePassword(FieldPassword, pw)
		if err != nil {
			if c := fault.CodeOf(err); (c != fault.Invalid && c != fault.TooLarge) || fault.FieldOf(err) != FieldPassword {
				t.Fatalf("normalizePassword(%q): %v, want an invalid or too-large fault on password", pw, err)
			}
			return
		}
		switch {
		case !utf8.ValidString(got) || !norm.NFC.IsNormalString(got):
			t.Fatalf("normalizePassword(%q) = %q: not valid NFC UTF-8", pw, got)
		case utf8.RuneCountInString(got) > MaxPasswordLen:
			t.Fatalf("normalizePassword(%q) = %q: over %d characters", pw, got, MaxPasswordLen)
		}
		if again, err := normalizePassword(FieldPassword, got); again != got || err != nil {
			t.Fatalf("normalizePassword(%q) = %q, then %q, %v", pw, got, again, err)
		}
		err = checkNewPassword(FieldPassword, got, personalInputs(name, email))
		if err != nil && (fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != FieldPassword) {
			t.Fatalf("checkNewPassword(%q): %v, want nil or an invalid fault on password", got, err)
		}
		if err == nil && strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("checkNewPassword accepted %q, which holds a control character", got)
		}
	})
}
