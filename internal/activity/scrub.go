package activity

import (
	"strings"
	"unicode/utf8"
)

// Scrubbing removes what could identify a person from paths and search
// terms before anything is stored: e-mail addresses, phone-like digit
// runs, UUIDs and long random-looking tokens (session ids, password-reset
// tokens, API keys that sites sometimes put in URLs). Each is replaced by
// a marker, so reports still show that such a value was there.
const (
	markEmail = ":email"
	markPhone = ":phone"
	markToken = ":token"
)

// Scrub returns s with e-mail addresses, phone-like digit runs, UUIDs and
// long tokens replaced by markers. It is hand-written rather than a few
// regular expressions: Go's regexp needed some 50 µs for an ordinary path,
// the largest cost of collection; a path with nothing to scrub now costs
// one pass.
//
// A marker can join what surrounds it into something a pass removes:
// ":phone" glued to "A000000A000" makes a 16-character token. So the passes
// repeat until they change nothing, and scrubbing a scrubbed value gives
// it back unchanged; a search term is stored the same whichever path it
// came through. Every replacement shortens s or removes an '@', so the loop
// ends; only a value that had something removed pays for a second round.
func Scrub(s string) string {
	for s != "" && suspicious(s) {
		t := scrubPhones(scrubTokens(scrubEmails(s)))
		if t == s {
			break
		}
		s = t
	}
	return s
}

// suspicious is the fast path: nothing to scrub without an '@', a run of
// 16 word characters or 7 digits.
func suspicious(s string) bool {
	digits, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '@':
			return true
		case c == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
			return true
		case c >= '0' && c <= '9':
			digits++
			run++
		case isWord(c):
			run++
		default:
			run = 0
		}
		if run >= 16 || digits >= 7 {
			return true
		}
	}
	return false
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isLocal(c byte) bool { return isWord(c) || c == '.' || c == '%' || c == '+' }

func isDomain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// scrubEmails replaces local@domain.tld (also with the @ percent-encoded).
func scrubEmails(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		at := 0
		switch {
		case s[i] == '@':
			at = 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
			at = 3
		default:
			continue
		}
		l := i
		for l > last && isLocal(s[l-1]) {
			l--
		}
		r := i + at
		for r < len(s) && isDomain(s[r]) {
			r++
		}
		for r > i+at && (s[r-1] == '.' || s[r-1] == '-') {
			r--
		}
		dom := s[i+at : r]
		dot := strings.LastIndexByte(dom, '.')
		if l == i || dot <= 0 || len(dom)-dot-1 < 2 || !allLetters(dom[dot+1:]) {
			continue
		}
		b.WriteString(s[last:l])
		b.WriteString(markEmail)
		last = r
		i = r - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) {
			return false
		}
	}
	return true
}

// scrubTokens replaces UUIDs and runs of word characters that look like
// tokens.
func scrubTokens(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isWord(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isWord(s[j]) {
			j++
		}
		run := s[i:j]
		repl := run
		if len(run) >= 16 {
			if looksLikeToken(run) {
				repl = markToken
			} else {
				repl = scrubUUIDs(run)
			}
		}
		if repl != run {
			b.WriteString(s[last:i])
			b.WriteString(repl)
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// scrubUUIDs replaces 8-4-4-4-12 hexadecimal groups inside a run.
func scrubUUIDs(run string) string {
	for i := 0; i+36 <= len(run); i++ {
		if isUUID(run[i : i+36]) {
			return run[:i] + markToken + scrubUUIDs(run[i+36:])
		}
	}
	return run
}

func isUUID(s string) bool {
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// scrubPhones replaces digits written with phone separators ( .-()) when
// there are nine or more, or seven or more with a leading + or spaces and
// brackets. Article numbers, years and dates in paths are shorter or split
// by slashes.
func scrubPhones(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '+' || c == '(') {
			i++
			continue
		}
		j, digits, seps := i, 0, false
		for j < len(s) {
			d := s[j]
			if d >= '0' && d <= '9' {
				digits++
			} else if d == ' ' || d == '.' || d == '-' || d == '(' || d == ')' || (d == '+' && j == i) {
				if d == ' ' || d == '(' || d == ')' {
					seps = true
				}
			} else {
				break
			}
			j++
		}
		for j > i && !(s[j-1] >= '0' && s[j-1] <= '9') {
			j--
		}
		if j <= i {
			i++
			continue
		}
		plus := c == '+'
		if digits >= 9 || (digits >= 7 && (plus || seps)) {
			b.WriteString(s[last:i])
			b.WriteString(markPhone)
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// looksLikeToken judges a run of word characters: a token mixes letters
// and digits in a long stretch without separators, while slugs ("how-to-
// count-visitors-2026") are words joined by hyphens.
func looksLikeToken(run string) bool {
	// Judge each hyphen/underscore separated part: a slug's parts are short
	// words; a token has a long part. Parts are cut by hand: FieldsFunc
	// allocated on every path with a long slug.
	for start, end := 0, 0; start < len(run); start = end + 1 {
		end = start
		for end < len(run) && run[end] != '-' && run[end] != '_' {
			end++
		}
		part := run[start:end]
		if len(part) < 16 {
			continue
		}
		letters, digits, upper, lower := 0, 0, 0, 0
		for i := 0; i < len(part); i++ {
			c := part[i]
			switch {
			case c >= '0' && c <= '9':
				digits++
			case c >= 'A' && c <= 'Z':
				letters++
				upper++
			default:
				letters++
				lower++
			}
		}
		if digits > 0 && letters > 0 {
			return true
		}
		if digits >= 16 {
			return true // a long number: a card, an account, a tracking id
		}
		if upper > 0 && lower > 0 && len(part) >= 20 {
			return true // base64-like mixed case
		}
	}
	// A long run with many separators and no long part (a base64url token
	// split by - and _) is still a token when it has digits and letters in
	// most of its parts.
	if len(run) >= 32 {
		letters, digits := 0, 0
		for i := 0; i < len(run); i++ {
			c := run[i]
			if c >= '0' && c <= '9' {
				digits++
			} else if c != '-' && c != '_' {
				letters++
			}
		}
		return digits >= 4 && letters >= 4 && digits*4 >= len(run)
	}
	return false
}

// clean removes control characters, collapses white space and bounds s to
// max bytes on a rune boundary.
func clean(s string, max int) string {
	if plain(s) {
		return truncate(s, max)
	}
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			r = ' '
		}
		if r == ' ' {
			if space || b.Len() == 0 {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteRune(r)
	}
	out := strings.TrimRight(b.String(), " ")
	return truncate(out, max)
}

// plain reports whether s is printable ASCII without leading, trailing
// or doubled spaces: what clean would return unchanged.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}

// truncate bounds s to max bytes without splitting a rune.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
