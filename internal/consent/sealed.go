package consent

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"steward/internal/door"
	"steward/internal/store"
)

// fieldConsent is the policy field every personal value of the ledger is:
// the policy puts it in a category (consent-record in the examples), and
// the subject's key for that category seals the records.
const fieldConsent = "consent"

// Kinds of the blind indexes the ledger finds records by.
const (
	purposeIndexKind = "consent purpose"
	scopeIndexKind   = "consent scope"
)

// purposeIndex is the blind index records of a purpose are found by.
func (l *Ledger) purposeIndex(purpose string) []byte {
	return l.d.Door.BlindIndex(purposeIndexKind, purpose)
}

// scopeIndex is the blind index of a list scope; nil for the whole
// purpose.
func (l *Ledger) scopeIndex(scope string) []byte {
	if scope == "" {
		return nil
	}
	idx := l.d.Door.BlindIndex(scopeIndexKind, scope)
	if strings.HasPrefix(scope, clientScopePrefix) {
		// An application's scope is told apart from a list's without
		// opening the record: one byte longer.
		return append([]byte{'c'}, idx...)
	}
	return idx
}

// clientScopePrefix starts the scope of what one application may
// receive.
const clientScopePrefix = "client:"

// clientKey reports whether a history entry's scope key is an
// application's (see scopeIndex).
func clientKey(k string) bool { return len(k) == sha256.Size+1 && k[0] == 'c' }

// scopeKey is a scope as history entries compare it: its blind index.
func (l *Ledger) scopeKey(scope string) string { return string(l.scopeIndex(scope)) }

// insert seals a record and appends it. The record is the person's own
// choice (given through a form, a link, the API, their browser's signal,
// or staff at their request), so it is sealed for the subject's request,
// which the policy allows whatever else the subject's state refuses.
func (l *Ledger) insert(ctx context.Context, q store.Q, rec Record) error {
	v, err := l.d.Door.Subject(ctx, q, door.Subject(), rec.SubjectID)
	if err != nil {
		return err
	}
	var sealed [6]door.Sealed
	for i, plain := range []string{rec.Purpose, rec.Scope, rec.CollectionPoint, rec.Evidence.UserAgentFamily, rec.Evidence.Network, string(rec.Receipt)} {
		if sealed[i], err = v.Seal(ctx, fieldConsent, plain); err != nil {
			return fmt.Errorf("consent: record: %w", err)
		}
	}
	// The plaintext columns of the earlier layout are NOT NULL: they get
	// their empty value.
	_, err = q.ExecContext(ctx, `INSERT INTO consent_records (id, subject_id, purpose, collection_point, receipt, state, method,
		policy_version, policy_hash, notice_hash, actor, created_at,
		purpose_sealed, purpose_index, scope_sealed, scope_index, collection_point_sealed, ua_family_sealed, network_sealed, receipt_sealed)
		VALUES ($1, $2, '', '', '', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		rec.ID, rec.SubjectID, string(rec.State), string(rec.Method),
		rec.PolicyVersion, rec.PolicyHash, rec.NoticeHash, rec.Actor, rec.CreatedAt,
		sealed[0], l.purposeIndex(rec.Purpose), sealed[1], l.scopeIndex(rec.Scope), sealed[2], sealed[3], sealed[4], sealed[5])
	if err != nil {
		return fmt.Errorf("consent: record: %w", err)
	}
	return nil
}

// history returns what deciding the state in force needs of the records
// of one purpose, in time order, found by the purpose's blind index:
// nothing is opened.
func (l *Ledger) history(ctx context.Context, q store.Q, subjectID, purpose string) ([]entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT scope_index, state, method, created_at FROM consent_records
		WHERE subject_id = $1 AND purpose_index = $2 ORDER BY created_at, id`, subjectID, l.purposeIndex(purpose))
	if err != nil {
		return nil, fmt.Errorf("consent: history: %w", err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var scope []byte
		var e entry
		if err := rows.Scan(&scope, &e.state, &e.method, &e.at); err != nil {
			return nil, fmt.Errorf("consent: history: %w", err)
		}
		e.scope, e.at = string(scope), e.at.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// records reads the subject's records (following a merge), oldest first,
// or the one with recordID, and opens them for use. A value whose key was
// destroyed reads as empty.
func (l *Ledger) records(ctx context.Context, q store.Q, use door.Use, subjectID, recordID string) ([]Record, error) {
	sub, err := l.d.Subjects.Get(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	if sub.MergedInto != "" {
		if recordID != "" {
			return nil, nil // a merged id owns no records any more
		}
		return l.records(ctx, q, use, sub.MergedInto, "")
	}
	query := `SELECT id, subject_id, state, method, policy_version, policy_hash, notice_hash, actor, created_at,
		purpose_sealed, scope_sealed, collection_point_sealed, ua_family_sealed, network_sealed, receipt_sealed
		FROM consent_records WHERE subject_id = $1`
	args := []any{sub.ID}
	if recordID != "" {
		query += ` AND id = $2`
		args = append(args, recordID)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("consent: history: %w", err)
	}
	type row struct {
		r      Record
		sealed [6]door.Sealed
	}
	var list []row
	for rows.Next() {
		var w row
		r := &w.r
		if err := rows.Scan(&r.ID, &r.SubjectID, &r.State, &r.Method, &r.PolicyVersion, &r.PolicyHash, &r.NoticeHash, &r.Actor, &r.CreatedAt,
			&w.sealed[0], &w.sealed[1], &w.sealed[2], &w.sealed[3], &w.sealed[4], &w.sealed[5]); err != nil {
			rows.Close()
			return nil, fmt.Errorf("consent: history: %w", err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		list = append(list, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consent: history: %w", err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	v, err := l.d.Door.Subject(ctx, q, use, sub.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(list))
	for _, w := range list {
		r := w.r
		var receipt string
		for i, into := range []*string{&r.Purpose, &r.Scope, &r.CollectionPoint, &r.Evidence.UserAgentFamily, &r.Evidence.Network, &receipt} {
			plain, err := v.Open(ctx, fieldConsent, w.sealed[i])
			if err != nil && !errors.Is(err, door.ErrShredded) {
				return nil, fmt.Errorf("consent: open record %s: %w", r.ID, err)
			}
			*into = plain
		}
		if receipt != "" {
			r.Receipt = json.RawMessage(receipt)
		}
		out = append(out, r)
	}
	return out, nil
}

// resealBatch is how many rows one transaction of Reseal moves.
const resealBatch = 200

// Reseal moves the records an earlier release kept in plaintext (purpose,
// scope, collection point, browser family, network, receipt) into their
// sealed columns, indexes purpose and scope, and empties the plaintext,
// in batches of one transaction each: an interrupted run leaves every row
// done or untouched and the next run carries on. A value whose key was
// destroyed, or when the policy no longer declares the field, is dropped
// (the indexes stay, so the state in force is still decided). It runs at
// start-up and returns the rows it changed.
func (l *Ledger) Reseal(ctx context.Context) (int, error) {
	plain := []string{"purpose", "scope", "collection_point", "ua_family", "network", "receipt"}
	pending := make([]string, len(plain))
	for i, c := range plain {
		pending[i] = c + " <> ''"
	}
	query := `SELECT id, subject_id, ` + strings.Join(plain, ", ") + ` FROM consent_records WHERE ` + strings.Join(pending, " OR ") +
		` ORDER BY id LIMIT $1`
	_, undeclared := l.d.Door.CategoryOf(fieldConsent)
	total := 0
	for {
		n := 0
		err := l.d.DB.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, query, resealBatch)
			if err != nil {
				return err
			}
			type legacy struct {
				id, subject string
				vals        [6]string
			}
			var batch []legacy
			for rows.Next() {
				var r legacy
				if err := rows.Scan(&r.id, &r.subject, &r.vals[0], &r.vals[1], &r.vals[2], &r.vals[3], &r.vals[4], &r.vals[5]); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				var sealed [6]door.Sealed
				if undeclared == nil {
					v, err := l.d.Door.Subject(ctx, tx, door.Storage(), r.subject)
					if err != nil {
						return err
					}
					for i, val := range r.vals {
						if sealed[i], err = v.Seal(ctx, fieldConsent, val); err != nil {
							break
						}
					}
					if errors.Is(err, door.ErrShredded) {
						sealed, err = [6]door.Sealed{}, nil // erased: the plaintext left behind goes too
					}
					if err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, `UPDATE consent_records SET purpose = '', scope = '', collection_point = '', ua_family = '', network = '', receipt = '',
					purpose_sealed = $2, purpose_index = $3, scope_sealed = $4, scope_index = $5, collection_point_sealed = $6,
					ua_family_sealed = $7, network_sealed = $8, receipt_sealed = $9 WHERE id = $1`,
					r.id, sealed[0], l.purposeIndex(r.vals[0]), sealed[1], l.scopeIndex(r.vals[1]), sealed[2], sealed[3], sealed[4], sealed[5]); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("consent: reseal: %w", err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}
