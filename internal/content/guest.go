package content

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
)

// Guest is a comment left with an email address and a name alone, from
// the operator's site (M1: someone without an account has the same rights
// over it as a member, through the request form).
type Guest struct {
	Site     string `json:"site"`
	Thread   string `json:"thread"`
	ParentID string `json:"parent_id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Body     string `json:"body"`
}

// guestTTL is how long the link that publishes a guest's comment works.
const guestTTL = 7 * 24 * time.Hour

// PostAsGuest stores a guest's comment, waiting for its author to follow
// the link mailed to the address: until then nobody sees it. The address
// becomes (or finds) an email-only subject, whose comment it is.
func (s *Service) PostAsGuest(ctx context.Context, g Guest) error {
	cat, err := s.categoryOf(KindComment)
	if err != nil {
		return err
	}
	if s.d.Policy.Policy.Site(g.Site) == nil {
		return fault.FieldError("site", "unknown site")
	}
	if g.Thread, err = cleanThread(g.Thread); err != nil {
		return err
	}
	if g.Body, err = s.cleanText("body", g.Body); err != nil {
		return err
	}
	g.Name = strings.TrimSpace(g.Name)
	if g.Name == "" || len(g.Name) > 100 || strings.ContainsFunc(g.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fault.FieldError("name", "must be the name to show, at most 100 characters")
	}
	if g.Name, err = s.cleanText("name", g.Name); err != nil {
		return err
	}
	id := store.NewID("i_")
	now := s.now()
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if g.ParentID != "" {
			var site, thread string
			err := tx.QueryRowContext(ctx, `SELECT site, thread FROM content_items WHERE id = $1`, g.ParentID).Scan(&site, &thread)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && (site != g.Site || thread != g.Thread)) {
				return fault.FieldError("parent_id", "no such item in this thread")
			}
			if err != nil {
				return err
			}
		}
		sub, _, err := s.d.Subjects.EnsureByEmail(ctx, tx, s.d.Door, door.Subject(), g.Email, "comment", s.d.Policy.Number())
		if err != nil {
			return err
		}
		if sub.Erased() || sub.MergedInto != "" {
			// The same answer as for any address: whether one was erased
			// is nobody's business. Nothing is stored or sent.
			return nil
		}
		v, err := s.d.Door.Subject(ctx, tx, authorUse(), sub.ID)
		if err != nil {
			return err
		}
		body, err := v.SealItem(ctx, cat, id, []byte(g.Body))
		if err != nil {
			return err
		}
		name, err := v.SealItem(ctx, cat, id, []byte(g.Name))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO content_items (id, subject_id, kind, site, thread, parent_id, body_sealed, author_name_sealed,
visibility, status, policy_version, created_at) VALUES ($1, $2, 'comment', $3, $4, $5, $6, $7, 'public', 'pending', $8, $9)`,
			id, v.ID(), g.Site, g.Thread, g.ParentID, body, name, s.d.Policy.Number(), now); err != nil {
			return err
		}
		// The mail proves the address is the commenter's (security, as for
		// an account's address): nobody publishes under another's address.
		link := strings.TrimRight(s.d.BaseURL, "/") + "/comments/confirm?token=" + s.guestToken(id, now.Add(guestTTL))
		_, err = s.d.Outbox.Enqueue(ctx, tx, mail.Message{SubjectID: v.ID(), To: g.Email, Kind: "comment-confirm", Purpose: policy.Security,
			Subject: "Publish your comment",
			Text: "Hello " + g.Name + ",\n\nyou left a comment on " + g.Thread + ". To publish it under the name you gave, open this link:\n\n" + link +
				"\n\nThe link works for 7 days. If it was not you, ignore this message: the comment stays unpublished and is deleted.\n" +
				"Your address is kept only to answer you and for your privacy requests, which you can make without an account at " +
				strings.TrimRight(s.d.BaseURL, "/") + "/privacy/request\n"})
		return err
	})
	if err != nil {
		return fmt.Errorf("content: guest comment: %w", err)
	}
	return nil
}

// guestToken signs an item id and an expiry.
func (s *Service) guestToken(itemID string, expires time.Time) string {
	msg := binary.BigEndian.AppendUint64([]byte(itemID+"|"), uint64(expires.Unix()))
	m := hmac.New(sha256.New, s.d.LinkKey)
	m.Write(msg)
	return base64.RawURLEncoding.EncodeToString(append(msg, m.Sum(nil)...))
}

// ConfirmGuest publishes the comment a mailed link names. A link is
// refused when forged, expired, or for a comment no longer pending
// (fault.NotFound, the same answer for each).
func (s *Service) ConfirmGuest(ctx context.Context, token string) error {
	bad := fault.New(fault.NotFound, "this link is not valid, or has expired")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < sha256.Size+9 {
		return bad
	}
	msg, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	m := hmac.New(sha256.New, s.d.LinkKey)
	m.Write(msg)
	if !hmac.Equal(sum, m.Sum(nil)) {
		return bad
	}
	itemID, ok := strings.CutSuffix(string(msg[:len(msg)-8]), "|")
	if !ok || strings.Contains(itemID, "|") {
		return bad
	}
	if time.Unix(int64(binary.BigEndian.Uint64(msg[len(msg)-8:])), 0).Before(s.d.Clock.Now()) {
		return bad
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var subjectID string
		err := tx.QueryRowContext(ctx, `UPDATE content_items SET status = 'visible' WHERE id = $1 AND status = 'pending' RETURNING subject_id`, itemID).Scan(&subjectID)
		if errors.Is(err, sql.ErrNoRows) {
			return bad
		}
		if err != nil {
			return fmt.Errorf("content: confirm: %w", err)
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "content.published", Subject: subjectID,
			Detail: map[string]string{"item": itemID, "by": "mailed link"}})
	})
}

// JobPrune is the periodic job that deletes guests' comments whose link
// was never followed.
const JobPrune = "content.prune"

// PruneUnconfirmed deletes the guests' comments still pending once their
// link has expired: nobody asked for them to be kept, so nothing of them
// stays (their rows go and their keys are shredded). It returns how many
// went.
func (s *Service) PruneUnconfirmed(ctx context.Context) (int, error) {
	cutoff := s.d.Clock.Now().Add(-guestTTL)
	n := 0
	var blobs []string
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+itemCols+` FROM content_items WHERE status = 'pending' AND created_at < $1 ORDER BY id LIMIT 500`, cutoff)
		if err != nil {
			return err
		}
		rs, err := scanItems(rows)
		if err != nil {
			return err
		}
		if blobs, err = s.eraseItems(ctx, tx, rs); err != nil {
			return err
		}
		n = len(rs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("content: prune: %w", err)
	}
	return n, s.deleteBlobs(ctx, blobs)
}
