package consent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"steward/internal/clock"
	"steward/internal/fault"
)

// LinkInfo is the HKDF info string that derives the link-signing key from
// the master key.
const LinkInfo = "steward link signing v1"

// Scope says what a signed link may do. A token signed for one scope is
// refused by every other, so a confirmation link cannot unsubscribe and an
// unsubscribe link cannot open the preferences page.
type Scope string

const (
	ScopeUnsubscribe Scope = "unsub"   // one list, one recipient; never expires (RFC 8058 one-click must keep working)
	ScopePreferences Scope = "prefs"   // one recipient's per-list preferences; expires
	ScopeConfirm     Scope = "confirm" // one pending subscription; expires, single use through Ref
	ScopeTrack       Scope = "track"   // an open or click of one campaign by one recipient (only where tracking is allowed)
)

// Claims are what a signed link carries. Nothing in them is personal
// beyond the pseudonymous subject id.
type Claims struct {
	Scope   Scope
	List    string    // the newsletter list, or "" for all of the subject's lists
	Subject string    // the recipient's subject id
	Ref     string    // an extra binding, e.g. the nonce of one pending confirmation
	Expires time.Time // zero: never
}

// Links signs and checks the tokens of mailed links with HMAC-SHA-256
// under a key derived from the master key. Unlike a bare UUID, a token
// cannot be guessed or altered to point at another list or person.
type Links struct {
	key   []byte
	clock clock.Clock
	// macs keeps keyed HMACs for reuse: a campaign signs two links per
	// recipient, and hmac.New hashes the key's pads every time.
	macs sync.Pool
}

// NewLinks returns a signer with this key (at least 32 bytes).
func NewLinks(key []byte, c clock.Clock) (*Links, error) {
	if len(key) < 32 {
		return nil, fault.New(fault.Internal, "link key too short")
	}
	return &Links{key: append([]byte(nil), key...), clock: c}, nil
}

// DeriveLinks derives the link key from the master key (HKDF-SHA-256, info
// LinkInfo).
func DeriveLinks(masterKey []byte, c clock.Clock) (*Links, error) {
	k, err := derive(masterKey, LinkInfo, 32)
	if err != nil {
		return nil, err
	}
	return NewLinks(k, c)
}

const (
	tokenVersion = "1"
	macSize      = 16 // 128-bit tag: unforgeable, and keeps links short
	maxToken     = 512
)

// Sign returns the token for c. Fields may not contain "|" (ids never do).
func (l *Links) Sign(c Claims) (string, error) {
	for _, f := range []string{string(c.Scope), c.List, c.Subject, c.Ref} {
		if strings.ContainsAny(f, "|") {
			return "", fault.New(fault.Internal, "link claim contains a separator")
		}
	}
	exp := "0"
	if !c.Expires.IsZero() {
		exp = strconv.FormatInt(c.Expires.Unix(), 10)
	}
	payload := strings.Join([]string{tokenVersion, string(c.Scope), c.List, c.Subject, c.Ref, exp}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(l.mac([]byte(payload))), nil
}

func (l *Links) mac(payload []byte) []byte {
	m, ok := l.macs.Get().(hash.Hash)
	if ok {
		m.Reset()
	} else {
		m = hmac.New(sha256.New, l.key)
	}
	m.Write(payload)
	sum := m.Sum(nil)[:macSize]
	l.macs.Put(m)
	return sum
}

// ErrBadLink is the one answer for every token that fails: malformed,
// forged, altered, expired or of the wrong scope look the same to the
// caller, so probing teaches nothing.
var ErrBadLink = fault.New(fault.Invalid, "this link is not valid or has expired")

// Verify checks a token and that it was signed for scope.
func (l *Links) Verify(token string, scope Scope) (Claims, error) {
	if token == "" || len(token) > maxToken {
		return Claims{}, ErrBadLink
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, ErrBadLink
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return Claims{}, ErrBadLink
	}
	tag, err := base64.RawURLEncoding.DecodeString(m64)
	if err != nil || !hmac.Equal(tag, l.mac(payload)) {
		return Claims{}, ErrBadLink
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 6 || parts[0] != tokenVersion || Scope(parts[1]) != scope {
		return Claims{}, ErrBadLink
	}
	c := Claims{Scope: Scope(parts[1]), List: parts[2], Subject: parts[3], Ref: parts[4]}
	if parts[5] != "0" {
		sec, err := strconv.ParseInt(parts[5], 10, 64)
		if err != nil {
			return Claims{}, ErrBadLink
		}
		c.Expires = time.Unix(sec, 0).UTC()
		if !l.clock.Now().Before(c.Expires) {
			return Claims{}, ErrBadLink
		}
	}
	if c.Subject == "" {
		return Claims{}, ErrBadLink
	}
	return c, nil
}
