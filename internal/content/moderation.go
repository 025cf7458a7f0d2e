package content

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// Staff is a staff member acting in a role.
type Staff struct{ ID, Role string }

func (st Staff) use() door.Use { return door.Staff(st.ID, st.Role, PurposeModeration) }

// Report records that someone reported an item, with a fixed reason.
// Nothing of the reporter is kept. A private or unknown item answers
// NotFound, as it does to the public.
func (s *Service) Report(ctx context.Context, itemID, reason string) error {
	if !slices.Contains(Reasons, reason) {
		return fault.FieldError("reason", "must be one of spam, abuse, illegal, privacy, other")
	}
	var visibility, status string
	err := s.d.DB.QueryRowContext(ctx, `SELECT visibility, status FROM content_items WHERE id = $1`, itemID).Scan(&visibility, &status)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (visibility != Public || status == StatusPending)) {
		return fault.New(fault.NotFound, "no such item")
	}
	if err != nil {
		return fmt.Errorf("content: report: %w", err)
	}
	if _, err := s.d.DB.ExecContext(ctx, `INSERT INTO content_reports (id, item_id, reason, created_at) VALUES ($1, $2, $3, $4)`,
		store.NewID("r_"), itemID, reason, s.now()); err != nil {
		return fmt.Errorf("content: report: %w", err)
	}
	return nil
}

// Reported is an item in the moderation queue.
type Reported struct {
	Item
	Reports  int       `json:"reports"`
	Reasons  []string  `json:"reasons"`
	Reported time.Time `json:"first_reported"`
}

// Queue lists the items with open reports, oldest report first, opened
// for moderation: the staff role must hold the moderation purpose, and an
// author whose state forbids it (restriction) is refused and audited.
func (s *Service) Queue(ctx context.Context, st Staff) ([]Reported, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT i.id, i.subject_id, i.kind, i.site, i.thread, i.parent_id, i.body_sealed, i.visibility,
i.status, i.created_at, i.edited_at, i.author_name_sealed, r.reason, r.created_at
FROM content_reports r JOIN content_items i ON i.id = r.item_id WHERE r.resolved_at IS NULL AND i.status <> 'pending' ORDER BY r.created_at, r.id`)
	if err != nil {
		return nil, fmt.Errorf("content: queue: %w", err)
	}
	defer rows.Close()
	var order []string
	byID := map[string]*Reported{}
	raw := map[string]itemRow{}
	for rows.Next() {
		var r itemRow
		var reason string
		var at time.Time
		if err := rows.Scan(&r.id, &r.subject, &r.kind, &r.site, &r.thread, &r.parent, &r.body, &r.visibility, &r.status,
			&r.created, &r.edited, &r.guestName, &reason, &at); err != nil {
			return nil, fmt.Errorf("content: queue: %w", err)
		}
		q := byID[r.id]
		if q == nil {
			q = &Reported{Reported: at.UTC()}
			byID[r.id], raw[r.id] = q, r
			order = append(order, r.id)
		}
		q.Reports++
		if !slices.Contains(q.Reasons, reason) {
			q.Reasons = append(q.Reasons, reason)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("content: queue: %w", err)
	}
	rows.Close()
	if len(order) == 0 {
		return []Reported{}, nil
	}
	var authors []string
	for _, id := range order {
		if a := raw[id].subject; !slices.Contains(authors, a) {
			authors = append(authors, a)
		}
	}
	b, err := s.d.Door.Subjects(ctx, s.d.DB, st.use(), authors)
	if err != nil {
		return nil, fmt.Errorf("content: queue: %w", err)
	}
	out := []Reported{}
	for _, id := range order {
		r := raw[id]
		v, err := b.View(r.subject)
		if err != nil {
			continue
		}
		it, err := s.open(ctx, v, r)
		if d, denied := door.IsDenied(err); (denied && d.Reason != policy.ReasonRoleLacksPurpose) || errors.Is(err, door.ErrShredded) {
			continue // refused (and audited) for this author, or erased: the rest of the queue stands
		}
		if err != nil {
			return nil, fmt.Errorf("content: queue: %w", err)
		}
		q := byID[id]
		q.Item = it
		out = append(out, *q)
	}
	return out, nil
}

// Moderation actions.
const (
	ActionHide    = "hide"
	ActionRestore = "restore"
	ActionRemove  = "remove"
)

// Moderate hides, restores or removes an item, with a fixed reason and a
// note for its author (sealed under the item's key, in their access
// report). Every action is audited; the item's open reports are resolved.
// A hidden or removed item stays in its author's access report and
// export; removal also deletes its files.
func (s *Service) Moderate(ctx context.Context, st Staff, itemID, action, reason, note string) error {
	status := map[string]string{ActionHide: StatusHidden, ActionRestore: StatusVisible, ActionRemove: StatusRemoved}[action]
	if status == "" {
		return fault.FieldError("action", "must be hide, restore or remove")
	}
	if !slices.Contains(Reasons, reason) {
		return fault.FieldError("reason", "must be one of spam, abuse, illegal, privacy, other")
	}
	var err error
	if note != "" {
		if note, err = s.cleanText("note", note); err != nil {
			return err
		}
	}
	var blobs []string
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+itemCols+` FROM content_items WHERE id = $1`, itemID)
		if err != nil {
			return err
		}
		rs, err := scanItems(rows)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fault.New(fault.NotFound, "no such item")
		}
		r := rs[0]
		if r.status == StatusPending {
			// Only its author's mailed link publishes it; unconfirmed, it
			// is deleted when the link expires.
			return fault.New(fault.Conflict, "this comment waits for its author to confirm it")
		}
		cat, err := s.categoryOf(r.kind)
		if err != nil {
			return err
		}
		v, err := s.d.Door.Subject(ctx, tx, st.use(), r.subject)
		if err != nil {
			return err
		}
		if err := v.AllowedCategory(ctx, cat); err != nil {
			return err
		}
		var sealed []byte
		if note != "" {
			if sealed, err = v.SealItem(ctx, cat, r.id, []byte(note)); err != nil {
				return err
			}
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO content_actions (id, item_id, subject_id, staff_id, action, reason, note_sealed, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, store.NewID("m_"), r.id, r.subject, st.ID, action, reason, sealed, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE content_items SET status = $1 WHERE id = $2`, status, r.id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE content_reports SET resolved_at = $1 WHERE item_id = $2 AND resolved_at IS NULL`, now, r.id); err != nil {
			return err
		}
		if action == ActionRemove {
			files, err := s.filesOf(ctx, tx, []string{r.id})
			if err != nil {
				return err
			}
			for _, f := range files {
				if err := s.shredFile(ctx, tx, f); err != nil {
					return err
				}
				blobs = append(blobs, f.blob, f.thumb)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM content_files WHERE item_id = $1`, r.id); err != nil {
				return err
			}
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "staff:" + st.ID, Action: "content.moderated", Subject: r.subject,
			Detail: map[string]string{"item": r.id, "action": action, "reason": reason, "role": st.Role}})
	})
	if err != nil {
		return fmt.Errorf("content: moderate: %w", err)
	}
	return s.deleteBlobs(ctx, slices.DeleteFunc(blobs, func(k string) bool { return k == "" }))
}

// Decision is a moderation action on one of the author's items, as the
// author is told.
type Decision struct {
	ItemID string    `json:"item_id"`
	Action string    `json:"action"`
	Reason string    `json:"reason"`
	Note   string    `json:"note,omitempty"`
	At     time.Time `json:"at"`
}

// Decisions lists the moderation decisions on the author's items.
func (s *Service) Decisions(ctx context.Context, authorID string) ([]Decision, error) {
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.Subject(), authorID)
	if err != nil {
		return nil, err
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT a.item_id, i.kind, a.action, a.reason, a.note_sealed, a.created_at
FROM content_actions a JOIN content_items i ON i.id = a.item_id WHERE a.subject_id = $1 ORDER BY a.created_at, a.id`, v.ID())
	if err != nil {
		return nil, fmt.Errorf("content: decisions: %w", err)
	}
	defer rows.Close()
	out := []Decision{}
	for rows.Next() {
		var d Decision
		var kind string
		var note []byte
		if err := rows.Scan(&d.ItemID, &kind, &d.Action, &d.Reason, &note, &d.At); err != nil {
			return nil, fmt.Errorf("content: decisions: %w", err)
		}
		if note != nil {
			cat, err := s.categoryOf(kind)
			if err != nil {
				return nil, err
			}
			b, err := v.OpenItem(ctx, cat, d.ItemID, note)
			if err != nil {
				return nil, fmt.Errorf("content: decisions: %w", err)
			}
			d.Note = string(b)
		}
		d.At = d.At.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
