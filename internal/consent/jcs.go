package consent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// canonicalJSON returns the RFC 8785 (JSON Canonicalization Scheme) form of
// a JSON document: object members sorted by the UTF-16 code units of their
// names, no insignificant white space, strings escaped minimally, numbers in
// their shortest ECMAScript form. A receipt's signature covers these bytes,
// so a person who reformats or re-indents their receipt keeps a valid one,
// and a verifier in another language can recompute them.
//
// Duplicate member names are refused: two parsers could pick different
// values, and a signature must mean one thing.
func canonicalJSON(doc []byte) ([]byte, error) {
	v, err := decodeDocument(doc)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeDocument reads a whole JSON document for canonicalisation. It
// refuses what encoding/json would quietly turn into U+FFFD, invalid UTF-8
// and a lone surrogate escape ("\ud800"): the canonical form would then
// hold a character the document does not, and a signed U+FFFD would also
// vouch for a receipt where it was swapped for either.
func decodeDocument(doc []byte) (any, error) {
	if !utf8.Valid(doc) {
		return nil, errors.New("consent: receipt is not valid UTF-8")
	}
	if !json.Valid(doc) {
		return nil, errors.New("consent: receipt is not valid JSON")
	}
	if loneSurrogate(doc) {
		return nil, errors.New("consent: receipt escapes half of a UTF-16 surrogate pair")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("consent: trailing data after the receipt")
	}
	return v, nil
}

// loneSurrogate reports whether doc, valid JSON, holds a \u escape of a
// UTF-16 surrogate that is not a high one followed by a low one. In valid
// JSON a backslash only starts an escape inside a string, so no string
// tracking is needed.
func loneSurrogate(doc []byte) bool {
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		i++
		if doc[i] != 'u' {
			continue
		}
		r := hex4(doc[i+1:])
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			if i+6 >= len(doc) || doc[i+1] != '\\' || doc[i+2] != 'u' {
				return true
			}
			if lo := hex4(doc[i+3:]); lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 reads the four hexadecimal digits of a \u escape.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

type member struct {
	name  string
	value any
}

// decodeValue reads one JSON value keeping object members as an ordered
// list, so duplicates can be detected (map decoding would hide them).
func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("consent: receipt is not valid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var members []member
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("consent: receipt is not valid JSON: %w", err)
				}
				name, ok := kt.(string)
				if !ok {
					return nil, errors.New("consent: receipt is not valid JSON: object key is not a string")
				}
				if seen[name] {
					return nil, fmt.Errorf("consent: receipt has the member %q twice", name)
				}
				seen[name] = true
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				members = append(members, member{name, val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("consent: receipt is not valid JSON: %w", err)
			}
			return members, nil
		case '[':
			arr := []any{}
			for dec.More() {
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("consent: receipt is not valid JSON: %w", err)
			}
			return arr, nil
		}
		return nil, errors.New("consent: receipt is not valid JSON")
	default:
		return tok, nil // string, json.Number, bool, nil
	}
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case string:
		writeCanonicalString(buf, t)
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("consent: receipt number %s is out of range", t)
		}
		buf.WriteString(formatES6(f))
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case []member:
		sorted := append([]member(nil), t...)
		sort.Slice(sorted, func(i, j int) bool { return lessUTF16(sorted[i].name, sorted[j].name) })
		buf.WriteByte('{')
		for i, m := range sorted {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeCanonicalString(buf, m.name)
			buf.WriteByte(':')
			if err := writeCanonical(buf, m.value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("consent: unexpected JSON value %T", v)
	}
	return nil
}

// lessUTF16 orders strings by their UTF-16 code units, as RFC 8785 §3.2.3
// requires (this differs from byte order only above U+FFFF).
func lessUTF16(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

func writeCanonicalString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\b':
			buf.WriteString(`\b`)
		case '\f':
			buf.WriteString(`\f`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			if r < 0x20 {
				buf.WriteString(`\u00`)
				buf.WriteByte(hex[r>>4])
				buf.WriteByte(hex[r&0xF])
			} else {
				buf.WriteRune(r)
			}
		}
	}
	buf.WriteByte('"')
}

// formatES6 formats a number the way ECMAScript's Number.prototype.toString
// does, which RFC 8785 adopts.
func formatES6(f float64) string {
	if f == 0 {
		return "0" // also for -0
	}
	abs := math.Abs(f)
	if abs >= 1e21 || abs < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+21 / e-07; ECMAScript writes e+21 / e-7.
		mant, exp, _ := cutByte(s, 'e')
		sign := exp[0]
		digits := exp[1:]
		for len(digits) > 1 && digits[0] == '0' {
			digits = digits[1:]
		}
		return mant + "e" + string(sign) + digits
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func cutByte(s string, c byte) (string, string, bool) {
	if i := bytes.IndexByte([]byte(s), c); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
