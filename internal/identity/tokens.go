package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/subject"
)

// Mail token purposes.
const (
	purposeVerify      = "verify"
	purposeReset       = "reset"
	purposeEmailChange = "email-change"
)

// tokenBytes is the entropy of session and mail tokens: 256 bits.
const tokenBytes = 32

// newToken returns a fresh bearer token (base64url, 43 characters) and the
// SHA-256 digest that is all the database keeps of it.
func newToken() (string, []byte) {
	var b [tokenBytes]byte
	rand.Read(b[:])
	sum := sha256.Sum256(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]), sum[:]
}

// tokenHash returns the digest of a token given by a client, or false when
// it is not one of ours (so garbage never reaches the database).
func tokenHash(tok string) ([]byte, bool) {
	if len(tok) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != tokenBytes {
		return nil, false
	}
	sum := sha256.Sum256(b)
	return sum[:], true
}

func errBadLink() error {
	return &fault.Error{Code: fault.Invalid, Field: "token", Message: "this link is invalid, was already used or has expired; ask for a new one"}
}

// issueToken stores a mail token for subjectID and returns it: the
// address it goes to sealed for the subject and use, and its blind index.
// Earlier unused tokens of the same purpose stop working: only the latest
// mail's link is valid.
func (s *Service) issueToken(ctx context.Context, q store.Q, use door.Use, subjectID, purpose, email string, ttl time.Duration) (string, error) {
	now := s.clock.Now()
	if _, err := q.ExecContext(ctx, `DELETE FROM email_tokens WHERE subject_id = $1 AND purpose = $2 AND used_at IS NULL`, subjectID, purpose); err != nil {
		return "", fmt.Errorf("identity: issue token: %w", err)
	}
	v, err := s.door.Subject(ctx, q, use, subjectID)
	if err != nil {
		return "", err
	}
	sealed, err := v.Seal(ctx, FieldEmail, email)
	if err != nil {
		return "", fmt.Errorf("identity: issue token: %w", err)
	}
	index, err := subject.EmailIndex(s.door, email)
	if err != nil {
		return "", err
	}
	tok, hash := newToken()
	if _, err := q.ExecContext(ctx, `INSERT INTO email_tokens (id, token_hash, subject_id, purpose, email_sealed, email_index, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, newTokenID(), hash, subjectID, purpose, sealed, index, now, now.Add(ttl)); err != nil {
		return "", fmt.Errorf("identity: issue token: %w", err)
	}
	return tok, nil
}

// newTokenID is a mail token's own id, which the access report shows.
func newTokenID() string {
	var b [12]byte
	rand.Read(b[:])
	return "mt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// mailToken is a spent token: who it was for and the address it went to,
// sealed, with its blind index.
type mailToken struct {
	subjectID, purpose string
	emailIndex         []byte
	email              door.Sealed
}

// address opens the token's address for use.
func (s *Service) address(ctx context.Context, q store.Q, use door.Use, t mailToken) (string, error) {
	v, err := s.door.Subject(ctx, q, use, t.subjectID)
	if err != nil {
		return "", err
	}
	return v.Open(ctx, FieldEmail, t.email)
}

// spendToken marks a token used, once: the conditional update makes two
// concurrent clicks yield one success. It refuses tokens of other purposes
// than want, and expired ones.
func (s *Service) spendToken(ctx context.Context, q store.Q, tok string, want ...string) (mailToken, error) {
	hash, ok := tokenHash(tok)
	if !ok {
		return mailToken{}, errBadLink()
	}
	now := s.clock.Now()
	var t mailToken
	err := q.QueryRowContext(ctx, `SELECT subject_id, purpose, email_index, email_sealed FROM email_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		hash, now).Scan(&t.subjectID, &t.purpose, &t.emailIndex, &t.email)
	if errors.Is(err, sql.ErrNoRows) {
		return mailToken{}, errBadLink()
	}
	if err != nil {
		return mailToken{}, fmt.Errorf("identity: read token: %w", err)
	}
	match := false
	for _, w := range want {
		match = match || t.purpose == w
	}
	if !match {
		return mailToken{}, errBadLink()
	}
	res, err := q.ExecContext(ctx, `UPDATE email_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL`, hash, now)
	if err != nil {
		return mailToken{}, fmt.Errorf("identity: spend token: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return mailToken{}, errBadLink()
	}
	return t, nil
}

// peekToken reads an unspent, unexpired token without spending it (to
// check a new password before the reset link is used up).
func (s *Service) peekToken(ctx context.Context, q store.Q, tok, purpose string) (mailToken, error) {
	hash, ok := tokenHash(tok)
	if !ok {
		return mailToken{}, errBadLink()
	}
	var t mailToken
	err := q.QueryRowContext(ctx, `SELECT subject_id, purpose, email_index, email_sealed FROM email_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`,
		hash, purpose, s.clock.Now()).Scan(&t.subjectID, &t.purpose, &t.emailIndex, &t.email)
	if errors.Is(err, sql.ErrNoRows) {
		return mailToken{}, errBadLink()
	}
	if err != nil {
		return mailToken{}, fmt.Errorf("identity: read token: %w", err)
	}
	return t, nil
}
