package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"steward/internal/fault"
)

// Argon2 holds argon2id parameters. Memory is in KiB.
type Argon2 struct {
	Memory  uint32
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2 is the OWASP minimum for argon2id (19 MiB, 2 passes, 1
// lane), which the foundation issue sets as the floor.
var DefaultArgon2 = Argon2{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Password length rules (NIST SP 800-63B rev. 4): counted in characters
// after NFC normalisation, at least 15 when the password is the only
// factor, and long passphrases accepted. The cap only keeps hashing and
// screening cheap; it is far above what anyone types.
const (
	MinPasswordLen = 15
	MaxPasswordLen = 256
	// maxPasswordBytes refuses absurd inputs before any per-character work:
	// 256 characters of 4-byte UTF-8 is 1024 bytes.
	maxPasswordBytes = 4 * MaxPasswordLen
	// screenLen bounds the zxcvbn input: its matching cost grows with the
	// square of the length, and a weak prefix is what an attacker guesses
	// first anyway.
	screenLen = 72
	// MinGuessBits is the screening threshold: a password whose cheapest
	// decomposition into dictionary words, common passwords, keyboard walks,
	// repeats, sequences and dates costs fewer than 2^30 guesses (about a
	// billion; a day of work for a modest GPU rig against argon2id at the
	// floor parameters) is refused. "passwordpassword" scores 0 bits,
	// "123456789012345" 9, "qwertyuiopasdfgh" 17; random or passphrase
	// passwords of 15 characters score 50 bits and more.
	MinGuessBits = 30
)

// phcPrefix is the fixed head of the hashes this package writes.
const phcPrefix = "$argon2id$v=19$"

// hashPassword returns the PHC string of password under params.
func hashPassword(password string, p Argon2) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("identity: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params    Argon2
	salt, key []byte
}

var errBadHash = errors.New("identity: stored password hash is not an argon2id PHC string")

func parsePHC(s string) (phc, error) {
	// $argon2id$v=19$m=19456,t=2,p=1$salt$hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return phc{}, errBadHash
	}
	var out phc
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return phc{}, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, errBadHash
		}
		switch k {
		case "m":
			out.params.Memory = uint32(n)
		case "t":
			out.params.Time = uint32(n)
		case "p":
			if n > 255 {
				return phc{}, errBadHash
			}
			out.params.Threads = uint8(n)
		default:
			return phc{}, errBadHash
		}
	}
	var err error
	b64 := base64.RawStdEncoding
	if out.salt, err = b64.DecodeString(parts[4]); err != nil {
		return phc{}, errBadHash
	}
	if out.key, err = b64.DecodeString(parts[5]); err != nil {
		return phc{}, errBadHash
	}
	if out.params.Memory == 0 || out.params.Time == 0 || out.params.Threads == 0 || len(out.key) == 0 || len(out.salt) == 0 {
		return phc{}, errBadHash
	}
	out.params.SaltLen, out.params.KeyLen = uint32(len(out.salt)), uint32(len(out.key))
	return out, nil
}

// verifyPassword reports whether password matches the PHC string, and
// whether the hash was made with parameters weaker than current (so the
// caller rehashes it while it holds the plaintext).
func verifyPassword(password, encoded string, current Argon2) (ok, weaker bool, err error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	ok = subtle.ConstantTimeCompare(key, h.key) == 1
	weaker = h.params.Memory < current.Memory || h.params.Time < current.Time ||
		h.params.Threads < current.Threads || uint32(len(h.key)) < current.KeyLen || uint32(len(h.salt)) < current.SaltLen
	return ok, weaker, nil
}

// normalizePassword bounds and normalises a password before anything else
// touches it: a 10 MB body is refused on its byte length without reading
// it, invalid UTF-8 is refused, and the result is NFC so the same
// passphrase typed on two keyboards hashes the same.
func normalizePassword(field, pw string) (string, error) {
	if len(pw) > maxPasswordBytes {
		return "", &fault.Error{Code: fault.TooLarge, Field: field, Message: fmt.Sprintf("the password may have at most %d characters", MaxPasswordLen)}
	}
	if !utf8.ValidString(pw) {
		return "", fault.FieldError(field, "the password is not valid UTF-8")
	}
	pw = norm.NFC.String(pw)
	if n := utf8.RuneCountInString(pw); n > MaxPasswordLen {
		return "", &fault.Error{Code: fault.TooLarge, Field: field, Message: fmt.Sprintf("the password may have at most %d characters", MaxPasswordLen)}
	}
	return pw, nil
}

// checkNewPassword applies the rules for a password being set: length,
// no control characters, not built from the person's own name or address,
// and not guessable from zxcvbn's dictionaries of common passwords, words,
// names and keyboard patterns. There are no composition rules (NIST SP
// 800-63B rev. 4, 3.1.1.2). pw must come from normalizePassword.
func checkNewPassword(field, pw string, personal []string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen {
		return fault.FieldError(field, "the password must have at least %d characters; a few unrelated words make a good one", MinPasswordLen)
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return fault.FieldError(field, "the password may not contain control characters")
		}
	}
	lower := strings.ToLower(pw)
	var inputs []string
	for _, p := range personal {
		p = strings.ToLower(strings.TrimSpace(p))
		if utf8.RuneCountInString(p) < 3 {
			continue
		}
		inputs = append(inputs, p)
		if strings.Contains(lower, p) {
			return fault.FieldError(field, "the password may not contain your name or email address")
		}
	}
	screened := pw
	if n > screenLen {
		screened = string([]rune(pw)[:screenLen])
	}
	if res := zxcvbn.PasswordStrength(screened, inputs); res.Entropy < MinGuessBits {
		return fault.FieldError(field, "this password is too common or too easy to guess; choose a longer phrase of unrelated words")
	}
	return nil
}

// personalInputs returns the parts of a person's name and email address
// that a password may not contain: the email's local part, the whole name
// and each word of the name of four letters or more (shorter words would
// refuse too much: "Li" is in many good passphrases).
func personalInputs(name, email string) []string {
	var out []string
	if local, _, ok := strings.Cut(email, "@"); ok {
		out = append(out, local)
	}
	if name = strings.TrimSpace(name); name != "" {
		out = append(out, name)
		for _, w := range strings.FieldsFunc(name, func(r rune) bool { return r == ' ' || r == '-' || r == '.' || r == '\'' }) {
			if utf8.RuneCountInString(w) >= 4 {
				out = append(out, w)
			}
		}
	}
	return out
}
