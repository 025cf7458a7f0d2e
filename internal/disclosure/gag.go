package disclosure

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"steward/internal/registry"
	"steward/internal/store"
)

// A legal request may come with a gag order: the people it concerns are
// told on a date, or never. Until they are told (notified_at set by the
// notice), nothing they see may reveal it: neither their row of the
// register (legal_requests) nor a disclosure made on the request, in
// their access report, export, cover sheet or "who received my data".
// Staff see everything. The rows are never erased by the subject: the
// register is a record the law obliges us to keep (GDPR Art. 17(3)(b)),
// and once they may be told the erasure says so.

// shownSQL is the condition that disclosure d (aliased d) may be shown to
// the subjects whose ids are the n placeholders from first: it is not on a
// legal request, or one of them was told of the request.
func shownSQL(first, n int) string {
	return `(d.basis <> '` + string(BasisLegalRequest) + `' OR EXISTS (SELECT 1 FROM legal_request_subjects l
		WHERE l.request_id = d.basis_ref AND l.notified_at IS NOT NULL AND l.subject_id IN (` + store.Placeholders(n, first) + `)))`
}

// Shown lists the disclosures of the subjects' data they may see, newest
// first: Received without those on a legal request they have not been
// told of. It is the member's "who received my data" and what the access
// report lists.
func (s *Service) Shown(ctx context.Context, q store.Q, subjectIDs []string) ([]Disclosure, error) {
	if len(subjectIDs) == 0 {
		return []Disclosure{}, nil
	}
	return s.list(ctx, q, `WHERE d.subject_id IN (`+store.Placeholders(len(subjectIDs), 1)+`) AND `+shownSQL(1, len(subjectIDs))+
		` ORDER BY d.disclosed_at DESC, d.id`, store.Args(subjectIDs)...)
}

// registerTables are the register's tables the rights engine hands to the
// Holder, with the alias their conditions use and their key order.
var registerTables = map[string]struct{ alias, order string }{
	"disclosures":            {"d", "d.id"},
	"disclosure_deliveries":  {"x", "x.id"},
	"legal_request_subjects": {"l", "l.request_id, l.subject_id"},
}

// shownWhere is the condition selecting the rows of t the subjects (the n
// placeholders from 1) may see.
func shownWhere(t string, n int) (string, error) {
	in := `(` + store.Placeholders(n, 1) + `)`
	switch t {
	case "disclosures":
		return `d.subject_id IN ` + in + ` AND ` + shownSQL(1, n), nil
	case "disclosure_deliveries":
		return `x.subject_id IN ` + in + ` AND NOT EXISTS (SELECT 1 FROM disclosures d WHERE d.id = x.disclosure_id AND NOT ` +
			shownSQL(1, n) + `)`, nil
	case "legal_request_subjects":
		return `l.subject_id IN ` + in + ` AND l.notified_at IS NOT NULL`, nil
	}
	return "", errorf("holder: %s is not a table of the register", t)
}

// Count counts the rows of t the subjects may see.
func (h *Holder) Count(ctx context.Context, q store.Q, t registry.Table, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	where, err := shownWhere(t.Name, len(ids))
	if err != nil {
		return 0, err
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.Name+` `+registerTables[t.Name].alias+` WHERE `+where,
		store.Args(ids)...).Scan(&n); err != nil {
		return 0, errorf("count %s: %w", t.Name, err)
	}
	return n, nil
}

// Export returns the rows of t the subjects may see, every declared
// column as stored (the rights engine masks and formats them).
func (h *Holder) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	where, err := shownWhere(t.Name, len(ids))
	if err != nil {
		return nil, err
	}
	tab := registerTables[t.Name]
	cols, names := make([]string, len(t.Columns)), make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i], names[i] = tab.alias+"."+c.Name, c.Name
	}
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+t.Name+` `+tab.alias+` WHERE `+where+` ORDER BY `+tab.order,
		store.Args(ids)...)
	if err != nil {
		return nil, errorf("export %s: %w", t.Name, err)
	}
	out, err := store.Maps(rows, names, nil)
	if err != nil {
		return nil, errorf("export %s: %w", t.Name, err)
	}
	return out, nil
}

// Outcome is what an erasure did to one of the register's tables.
type Outcome struct {
	Erased      int64
	Kept        int64
	Why         string // the exemption the kept rows stay under
	Explanation string
}

// keptExplanation says why the legal register outlives an erasure.
const keptExplanation = "The record of the legal requests that asked about you, and of when we told you, is kept: " +
	"the law obliges us to keep it (GDPR Art. 17(3)(b)). It names you only by a pseudonymous id."

// eraseLegal keeps the legal register whatever the scope: an account
// erasure reports the rows the subject was told of as kept, with the
// reason, and says nothing of the others.
func (h *Holder) eraseLegal(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, account bool) (Outcome, error) {
	if !account {
		return Outcome{}, nil
	}
	n, err := h.Count(ctx, tx, t, ids)
	if err != nil || n == 0 {
		return Outcome{}, err
	}
	return Outcome{Kept: int64(n), Why: "legal-obligation", Explanation: keptExplanation}, nil
}

// Unshown returns the ids of the subjects' disclosures they may not be
// shown yet (on a legal request they were not told of).
func (s *Service) Unshown(ctx context.Context, q store.Q, subjectIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(subjectIDs) == 0 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT d.id FROM disclosures d WHERE d.subject_id IN (`+store.Placeholders(len(subjectIDs), 1)+
		`) AND NOT `+shownSQL(1, len(subjectIDs)), store.Args(subjectIDs)...)
	if err != nil {
		return nil, errorf("unshown: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, errorf("unshown: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// Reveals reports whether an audit entry (its action and JSON detail)
// records one of the unshown disclosures: the entry names the authority
// and the legal request's basis, so its subject may not see it yet.
func Reveals(action, detail string, unshown map[string]bool) bool {
	if len(unshown) == 0 || !strings.HasPrefix(action, "disclosure.") {
		return false
	}
	var d map[string]string
	if json.Unmarshal([]byte(detail), &d) != nil {
		return false
	}
	return unshown[d["disclosure"]]
}
