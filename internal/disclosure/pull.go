package disclosure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"time"

	"steward/internal/audit"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/store"
)

// maxAckEvents bounds the events one acknowledgement may name.
const maxAckEvents = 500

var eventIDRE = regexp.MustCompile(`^msg_[a-z2-7]{20}$`)

// parseAck reads an acknowledgement body: {"events": ["msg_…", …]}, at
// least one, each an event id, nothing else.
func parseAck(body []byte) (Ack, error) {
	var a Ack
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Ack{}, fault.New(fault.Invalid, "the acknowledgement is not a JSON object {\"events\": [ids]}")
	}
	if dec.More() {
		return Ack{}, fault.New(fault.Invalid, "the acknowledgement has data after its JSON object")
	}
	if len(a.Events) == 0 || len(a.Events) > maxAckEvents {
		return Ack{}, fault.FieldError("events", "name between 1 and %d event ids", maxAckEvents)
	}
	for _, id := range a.Events {
		if !eventIDRE.MatchString(id) {
			return Ack{}, fault.FieldError("events", "%q is not an event id", clip(id, 64))
		}
	}
	return a, nil
}

// pullAuth authenticates a recipient that pulls by its API key.
func (s *Service) pullAuth(ctx context.Context, recipientID, key string) (*recipient, error) {
	rc := s.recipients[recipientID]
	sum := sha256.Sum256([]byte(key))
	if rc == nil || !rc.pulls() || key == "" || subtle.ConstantTimeCompare(sum[:], rc.pullKey) != 1 {
		return nil, s.refuseAck(ctx, recipientID, "bad_pull_key", fault.New(fault.Unauthorized, "a valid API key of the recipient is required"))
	}
	return rc, nil
}

// Event is a delivery as the recipient pulls it: the event id and the
// body a webhook would have carried.
type Event struct {
	ID   string          `json:"id"`
	Body json.RawMessage `json:"body"`
}

// Pull returns up to limit events not yet acknowledged by a recipient
// that pulls, oldest first, and marks them delivered. They are returned
// again, with the same ids, until the recipient acknowledges them
// (AcknowledgeWithKey), which deletes what they carried: at least once. An event whose data was erased
// or whose use was refused since is marked failed and not returned.
func (s *Service) Pull(ctx context.Context, recipientID, key string, limit int) ([]Event, error) {
	rc, err := s.pullAuth(ctx, recipientID, key)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT id FROM disclosure_deliveries WHERE recipient_id = $1 AND status IN ('pending', 'delivered')
		ORDER BY created_at, id LIMIT $2`, rc.ID, limit)
	if err != nil {
		return nil, errorf("pull: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, errorf("pull: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errorf("pull: %w", err)
	}
	out := []Event{}
	for _, id := range ids {
		d, err := s.loadDelivery(ctx, s.d.DB, id)
		if err != nil {
			return nil, err
		}
		body, err := s.open(ctx, d)
		if errors.Is(err, errGone) {
			if err := s.finish(ctx, d, StatusFailed, 0, "not pulled: the data was erased or its use refused before delivery"); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Event{ID: id, Body: body})
	}
	if len(out) == 0 {
		return out, nil
	}
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		now := s.d.Clock.Now().UTC()
		for _, e := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE disclosure_deliveries SET status = 'delivered', delivered_at = COALESCE(delivered_at, $2),
				attempts = attempts + 1 WHERE id = $1 AND status IN ('pending', 'delivered')`, e.ID, now); err != nil {
				return errorf("pull: %w", err)
			}
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "recipient:" + rc.ID, Action: "disclosure.pulled",
			Detail: map[string]string{"events": jsonList(eventIDs(out))}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func eventIDs(es []Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// expirePulls drops the data of the events that waited PullWindow for a
// pulling recipient without an acknowledgement, and marks them failed.
func (s *Service) expirePulls(ctx context.Context, _ jobs.Job) error {
	var ids []string
	for id, rc := range s.recipients {
		if rc.Pull != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	cutoff := s.d.Clock.Now().UTC().Add(-PullWindow)
	res, err := s.d.DB.ExecContext(ctx, `UPDATE disclosure_deliveries SET status = 'failed', body_sealed = NULL,
		last_error = 'not acknowledged within `+strconv.Itoa(int(PullWindow/(24*time.Hour)))+` days: its data was dropped'
		WHERE status IN ('pending', 'delivered') AND created_at < $1 AND recipient_id IN (`+store.Placeholders(len(ids), 2)+`)`,
		append([]any{cutoff}, store.Args(ids)...)...)
	if err != nil {
		return errorf("expire pulls: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.d.Log.Info("disclosure: events never acknowledged by a pulling recipient expired", "events", n)
	}
	return nil
}
