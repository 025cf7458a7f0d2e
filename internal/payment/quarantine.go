package payment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/store"
)

// heldEvent is what a quarantined event holds: the declared fields the
// event carried, nothing else.
type heldEvent struct {
	Type    string   `json:"type"`
	Card    *card    `json:"card,omitempty"`
	Invoice *invoice `json:"invoice,omitempty"`
}

// hold quarantines an event whose customer matches no subject: the
// declared fields, sealed under a key of the held item's own, until the
// customer is linked or QuarantineFor has passed.
func (s *Service) hold(ctx context.Context, tx *sql.Tx, ev event, customerIndex, objectIndex, fields []byte) error {
	id := store.NewID("pq_")
	sealed, err := s.quarantine.Seal(ctx, tx, id, fields)
	if err != nil {
		return fmt.Errorf("payment: quarantine: %w", err)
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO payment_quarantine (id, event_id, event_type, customer_index, object_index, fields_sealed,
reason, received_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		id, ev.ID, ev.Type, customerIndex, objectIndex, sealed, reasonUnknown, now, now.Add(s.d.QuarantineFor)); err != nil {
		return fmt.Errorf("payment: quarantine: %w", err)
	}
	return nil
}

type heldRow struct {
	id, eventType string
	object        []byte
	sealed        []byte
}

// held lists the quarantined events a condition selects, oldest first.
func (s *Service) held(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]heldRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, event_type, object_index, fields_sealed FROM payment_quarantine WHERE `+where+
		` ORDER BY received_at, id LIMIT 500`, args...)
	if err != nil {
		return nil, fmt.Errorf("payment: quarantine: %w", err)
	}
	defer rows.Close()
	var out []heldRow
	for rows.Next() {
		var r heldRow
		if err := rows.Scan(&r.id, &r.eventType, &r.object, &r.sealed); err != nil {
			return nil, fmt.Errorf("payment: quarantine: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// drop destroys a held event's key and deletes its row: what it held can
// never be opened again, in any copy.
func (s *Service) drop(ctx context.Context, tx *sql.Tx, id string) error {
	if err := s.quarantine.Destroy(ctx, tx, id); err != nil {
		return fmt.Errorf("payment: quarantine: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM payment_quarantine WHERE id = $1`, id); err != nil {
		return fmt.Errorf("payment: quarantine: %w", err)
	}
	return nil
}

// dropHeld drops every held event a condition selects and counts them.
func (s *Service) dropHeld(ctx context.Context, tx *sql.Tx, where string, args ...any) (int, error) {
	n := 0
	for {
		rs, err := s.held(ctx, tx, where, args...)
		if err != nil || len(rs) == 0 {
			return n, err
		}
		for _, r := range rs {
			if err := s.drop(ctx, tx, r.id); err != nil {
				return n, err
			}
		}
		n += len(rs)
	}
}

// release applies to the subject, in the order they arrived, the events
// held for a customer now linked to them, and drops them from the
// quarantine. The policy in force decides again what of them is kept.
func (s *Service) release(ctx context.Context, tx *sql.Tx, customerIndex []byte, subjectID string) (int, error) {
	n := 0
	for {
		rs, err := s.held(ctx, tx, `customer_index = $1`, customerIndex)
		if err != nil || len(rs) == 0 {
			return n, err
		}
		for _, r := range rs {
			plain, err := s.quarantine.Open(ctx, tx, r.id, r.sealed)
			if err != nil && !errors.Is(err, door.ErrShredded) {
				return n, fmt.Errorf("payment: release: %w", err)
			}
			var h heldEvent
			if err == nil && json.Unmarshal(plain, &h) == nil {
				switch {
				case h.Card != nil:
					if _, _, _, err := s.storeMethod(ctx, tx, subjectID, r.object, *h.Card, h.Type == typeMethodAttached); err != nil {
						return n, err
					}
				case h.Invoice != nil:
					if _, _, _, err := s.storeInvoice(ctx, tx, subjectID, r.object, *h.Invoice); err != nil {
						return n, err
					}
				}
			}
			if err := s.drop(ctx, tx, r.id); err != nil {
				return n, err
			}
			n++
		}
	}
}

// Prune deletes the quarantined events whose time is up (their keys
// destroyed, their rows deleted) and forgets the ids of events processed
// longer ago than the processor retries. It returns how many held events
// went.
func (s *Service) Prune(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = s.dropHeld(ctx, tx, `expires_at <= $1`, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM payment_events WHERE received_at < $1`, now.Add(-eventsKeptFor)); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "payment.quarantine_expired",
			Detail: map[string]string{"events": strconv.Itoa(n), "reason": reasonUnknown}})
	})
	if err != nil {
		return 0, fmt.Errorf("payment: prune: %w", err)
	}
	return n, nil
}
