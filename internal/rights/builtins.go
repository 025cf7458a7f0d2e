package rights

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

// exportKeyCategory is the data key finished exports are sealed with. It
// is not a policy category: it exists so that an erasure can make every
// stored export unreadable at once.
const exportKeyCategory = "rights-export"

// registerBuiltins registers the holders of tables whose erasure is not a
// plain delete: subjects (a tombstone), data keys (destroyed, not
// deleted), this package's own records.
func (s *Service) registerBuiltins() {
	s.holders["subjects"] = subjectsHolder{s}
	s.holders["data_keys"] = keysHolder{}
	s.holders["rights_requests"] = requestsHolder{s}
	s.holders["rights_exports"] = exportsHolder{}
}

// subjectsHolder erases a subject by the subject store's Delete: the
// address goes, the id stays as a tombstone that other rows (and the
// ledger) still name.
type subjectsHolder struct{ s *Service }

func (h subjectsHolder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc Scope) (TableOutcome, error) {
	to := TableOutcome{Dataset: t.Dataset}
	if sc.Kind != policy.ScopeAccount {
		return to, nil
	}
	for _, id := range ids {
		sub, err := h.s.subjects.Get(ctx, tx, id)
		if err != nil {
			return to, err
		}
		if sub.Erased() {
			continue
		}
		if err := h.s.subjects.Delete(ctx, tx, id); err != nil {
			return to, err
		}
		to.Erased++
	}
	to.Cleared = []string{"email"}
	if to.Erased > 0 {
		to.Explanation = "Your address was erased; a random id with nothing else attached stays, so that the erasure can be applied again if a backup is ever restored."
	}
	return to, nil
}

func (h subjectsHolder) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc Scope) (int, error) {
	if sc.Kind != policy.ScopeAccount {
		return 0, nil
	}
	n, err := h.s.subjects.NotErased(ctx, q, ids)
	if err != nil {
		return 0, fmt.Errorf("rights: verify subjects: %w", err)
	}
	return n, nil
}

// keysHolder leaves data_keys rows to the key step (Destroy keeps a
// tombstone row) and exports only what a key row says about the subject:
// which categories have a key and when it was made or destroyed, never
// the wrapped key.
type keysHolder struct{}

func (keysHolder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc Scope) (TableOutcome, error) {
	return TableOutcome{}, nil
}

func (keysHolder) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc Scope) (int, error) {
	return 0, nil
}

func (keysHolder) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	rows, err := q.QueryContext(ctx, `SELECT subject_id, category, created_at, destroyed_at FROM data_keys WHERE subject_id IN (`+
		placeholders(1, len(ids))+`) ORDER BY subject_id, category`, anyArgs(ids)...)
	if err != nil {
		return nil, fmt.Errorf("rights: export data keys: %w", err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var sid, cat string
		var created time.Time
		var destroyed sql.NullTime
		if err := rows.Scan(&sid, &cat, &created, &destroyed); err != nil {
			return nil, fmt.Errorf("rights: export data keys: %w", err)
		}
		m := map[string]any{"subject_id": sid, "category": cat, "created_at": created, "destroyed_at": nil}
		if destroyed.Valid {
			m["destroyed_at"] = destroyed.Time
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// requestsHolder keeps the record of each request (accountability) and
// clears what the subject wrote in it (sealed, and the plaintext an
// earlier release kept), and the hashes of codes and tokens. The erasure
// then destroys the key that sealed the words, since nothing it seals is
// kept.
type requestsHolder struct{ s *Service }

// covered reports whether the scope covers what the subject wrote in
// requests (field support_request, in whatever category the policy puts
// it).
func (h requestsHolder) covered(sc Scope) bool {
	switch sc.Kind {
	case policy.ScopeAccount:
		return true
	case policy.ScopeCategory:
		c := registry.Column{Field: fieldRequest}
		return sc.covers(c, h.s.pol.CategoryOfField(c.Field))
	}
	return false
}

func (h requestsHolder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc Scope) (TableOutcome, error) {
	to := TableOutcome{Dataset: t.Dataset}
	where := `subject_id IN (` + placeholders(1, len(ids)) + `)`
	if h.covered(sc) {
		res, err := tx.ExecContext(ctx, `UPDATE rights_requests SET reason = '', corrections = '{}', reason_sealed = NULL, corrections_sealed = NULL,
			code_hash = NULL, token_hash = NULL WHERE `+where, anyArgs(ids)...)
		if err != nil {
			return to, fmt.Errorf("rights: erase requests: %w", err)
		}
		n, _ := res.RowsAffected()
		to.Erased, to.Cleared = n, []string{"reason", "corrections"}
	}
	if sc.Kind == policy.ScopeAccount {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM rights_requests WHERE `+where, anyArgs(ids)...).Scan(&to.Kept); err != nil {
			return to, fmt.Errorf("rights: erase requests: %w", err)
		}
		to.Why = "legal-obligation"
		to.Explanation = "The record that each of your requests was received and answered is kept (GDPR Art. 5(2)); what you wrote in them was erased."
	}
	return to, nil
}

func (h requestsHolder) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc Scope) (int, error) {
	if !h.covered(sc) {
		return 0, nil
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM rights_requests WHERE subject_id IN (`+placeholders(1, len(ids))+
		`) AND (reason <> '' OR corrections <> '{}' OR reason_sealed IS NOT NULL OR corrections_sealed IS NOT NULL OR code_hash IS NOT NULL OR token_hash IS NOT NULL)`, anyArgs(ids)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rights: verify requests: %w", err)
	}
	return n, nil
}

// exportsHolder deletes finished exports on every erasure, whatever its
// scope: each is a copy of everything. It exports their metadata only.
type exportsHolder struct{}

func (exportsHolder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc Scope) (TableOutcome, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM rights_exports WHERE subject_id IN (`+placeholders(1, len(ids))+`)`, anyArgs(ids)...)
	if err != nil {
		return TableOutcome{}, fmt.Errorf("rights: erase exports: %w", err)
	}
	n, _ := res.RowsAffected()
	return TableOutcome{Dataset: t.Dataset, Erased: n}, nil
}

func (exportsHolder) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc Scope) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM rights_exports WHERE subject_id IN (`+placeholders(1, len(ids))+`)`, anyArgs(ids)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rights: verify exports: %w", err)
	}
	return n, nil
}

func (exportsHolder) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	rows, err := q.QueryContext(ctx, `SELECT request_id, subject_id, format, size, created_at, expires_at FROM rights_exports WHERE subject_id IN (`+
		placeholders(1, len(ids))+`) ORDER BY request_id`, anyArgs(ids)...)
	if err != nil {
		return nil, fmt.Errorf("rights: export exports: %w", err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var id, sid, format string
		var size int64
		var created, expires time.Time
		if err := rows.Scan(&id, &sid, &format, &size, &created, &expires); err != nil {
			return nil, fmt.Errorf("rights: export exports: %w", err)
		}
		out = append(out, map[string]any{"request_id": id, "subject_id": sid, "format": format, "size": size, "created_at": created, "expires_at": expires})
	}
	return out, rows.Err()
}
