package subject

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"steward/internal/policy"
	"steward/internal/store"
)

// batchChunk bounds the ids of one IN list: a campaign batch (500 by
// default) is one query, and no statement nears an engine's parameter
// limit.
const batchChunk = 500

// idsIn returns the condition "column is one of ids" with its arguments:
// on PostgreSQL one array parameter (one statement text however many ids,
// planned as an index scan), on SQLite a list of plain "?" (SQLite looks
// "$N" names up by a linear search while parsing, which makes a list of
// 500 cost more to parse than to run).
func (s *Store) idsIn(column string, ids []string) (string, []any) {
	if s.db != nil && s.db.Engine == store.Postgres {
		return column + ` = ANY($1::text[])`, []any{ids}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	if s.db != nil && s.db.Engine == store.SQLite {
		return column + ` IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + `)`, args
	}
	marks := make([]string, len(ids))
	for i := range ids {
		marks[i] = "$" + strconv.Itoa(i+1)
	}
	return column + ` IN (` + strings.Join(marks, ", ") + `)`, args
}

// uniqueIDs drops duplicates, keeping the first occurrence's order.
func uniqueIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// statesQuery is stateQuery for a set of subjects: the subject's own
// columns come first so rows can be grouped (all of them when the caller
// wants the subject rows too, else the id, merged_into and
// policy_version).
const statesQuery = ` ` + acceptedColumn + `,
	st.restricted, st.restricted_categories, st.marketing_suppressed, st.legal_hold,
	p.purpose, p.consent, p.objection
FROM subjects s
LEFT JOIN subject_state st ON st.subject_id = s.id
LEFT JOIN subject_purpose_state p ON p.subject_id = s.id
WHERE `

// States is State for many subjects at once, in one query per 500 ids
// (and one more per merge hop), so a campaign can ask the guard about every
// recipient of a batch without one query per person. The map is keyed by
// the ids asked for; an id merged into another answers with the survivor's
// state (SubjectID names the survivor; ids merged into the same subject
// share one *State, which callers must not modify). Unknown ids are absent
// from the map: a caller treats absence as "not a subject", exactly where
// State would answer fault.NotFound. An erased subject has an empty state.
func (s *Store) States(ctx context.Context, q store.Q, ids []string) (map[string]*policy.State, error) {
	return s.states(ctx, q, ids, nil)
}

// StatesAndSubjects is States and Subjects in one: the same query reads
// each subject's row with its state, which saves a campaign batch one
// query of 500 ids and a second visit to every subject row.
func (s *Store) StatesAndSubjects(ctx context.Context, q store.Q, ids []string) (map[string]*policy.State, map[string]Subject, error) {
	subs := make(map[string]Subject, len(ids))
	states, err := s.states(ctx, q, ids, subs)
	if err != nil {
		return nil, nil, err
	}
	return states, subs, nil
}

// states loads the states of ids, following merges, and when subs is not
// nil the subject row of each id asked for.
func (s *Store) states(ctx context.Context, q store.Q, ids []string, subs map[string]Subject) (map[string]*policy.State, error) {
	out := make(map[string]*policy.State, len(ids))
	// want maps each id to load to the ids asked for that resolve to it.
	want := make(map[string][]string, len(ids))
	order := uniqueIDs(ids)
	for _, id := range order {
		want[id] = []string{id}
	}
	for hop := 0; len(order) > 0; hop++ {
		if hop == maxMergeHops {
			return nil, fmt.Errorf("subject: states: a merge chain is longer than %d", maxMergeHops)
		}
		loaded, merged, err := s.loadStates(ctx, q, order, subs)
		if err != nil {
			return nil, err
		}
		subs = nil // the rows of the ids asked for are in; survivors' are not wanted
		next := map[string][]string{}
		var nextOrder []string
		for _, id := range order {
			if into, ok := merged[id]; ok {
				if st, ok := loaded[into]; ok {
					// The survivor was in this round already.
					for _, asked := range want[id] {
						out[asked] = st
					}
					continue
				}
				if _, seen := next[into]; !seen {
					nextOrder = append(nextOrder, into)
				}
				next[into] = append(next[into], want[id]...)
				continue
			}
			if st, ok := loaded[id]; ok {
				for _, asked := range want[id] {
					out[asked] = st
				}
			}
		}
		want, order = next, nextOrder
	}
	return out, nil
}

// loadStates reads the state of ids (none merged-followed): the states of
// live or erased subjects, where each merged one points, and, into subs
// when it is not nil, every subject row.
func (s *Store) loadStates(ctx context.Context, q store.Q, ids []string, subs map[string]Subject) (map[string]*policy.State, map[string]string, error) {
	states := make(map[string]*policy.State, len(ids))
	merged := map[string]string{}
	head := `SELECT s.id, s.merged_into, s.policy_version,`
	if subs != nil {
		head = `SELECT s.id, s.kind, s.email_sealed, s.email_index, s.source, s.policy_version, s.created_at, s.merged_into, s.erased_at,`
	}
	for start := 0; start < len(ids); start += batchChunk {
		cond, args := s.idsIn("s.id", ids[start:min(start+batchChunk, len(ids))])
		if err := s.scanStates(ctx, q, head+statesQuery+cond, args, states, merged, subs); err != nil {
			return nil, nil, err
		}
	}
	return states, merged, nil
}

func (s *Store) scanStates(ctx context.Context, q store.Q, query string, args []any, states map[string]*policy.State, merged map[string]string, subs map[string]Subject) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("subject: states: %w", err)
	}
	defer rows.Close()
	var sub subjectRow
	var id string
	var recorded int
	var accepted sql.NullInt64
	var into, cats, purpose sql.NullString
	var restricted, suppressed, hold, consent, objection sql.NullBool
	dest := []any{&id, &into, &recorded}
	if subs != nil {
		dest = sub.dest()
	}
	dest = append(dest, &accepted, &restricted, &cats, &suppressed, &hold, &purpose, &consent, &objection)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("subject: states: %w", err)
		}
		if subs != nil {
			v := sub.subject()
			id, into, recorded = v.ID, sub.merged, v.PolicyVersion
			if _, seen := subs[id]; !seen {
				subs[id] = v
			}
		}
		if into.Valid && into.String != "" {
			merged[id] = into.String
			continue
		}
		st, ok := states[id]
		if !ok {
			st = &policy.State{SubjectID: id, Consents: map[string]bool{}, Objections: map[string]bool{},
				Restricted: restricted.Bool, MarketingSuppressed: suppressed.Bool, LegalHold: hold.Bool,
				BoundVersion: max(recorded, int(accepted.Int64))}
			if st.Restricted {
				st.RestrictedCategories = splitCategories(cats.String)
			}
			states[id] = st
		}
		if purpose.Valid {
			// As in State: only what is in force is set, so a missing key
			// and a false value never mean different things.
			if consent.Bool {
				st.Consents[purpose.String] = true
			}
			if objection.Bool {
				st.Objections[purpose.String] = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("subject: states: %w", err)
	}
	return nil
}

// Subjects is Get for many ids at once (one query per 500 ids): the
// subject row of each id that exists, merged and erased ones included,
// keyed by id. Unknown ids are absent.
func (s *Store) Subjects(ctx context.Context, q store.Q, ids []string) (map[string]Subject, error) {
	ids = uniqueIDs(ids)
	out := make(map[string]Subject, len(ids))
	for start := 0; start < len(ids); start += batchChunk {
		cond, args := s.idsIn("id", ids[start:min(start+batchChunk, len(ids))])
		if err := scanSubjects(ctx, q, `SELECT `+subjectColumns+` FROM subjects WHERE `+cond, args, func(sub Subject) {
			out[sub.ID] = sub
		}); err != nil {
			return nil, fmt.Errorf("subject: subjects: %w", err)
		}
	}
	return out, nil
}

func scanSubjects(ctx context.Context, q store.Q, query string, args []any, each func(Subject)) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		sub, err := scanSubject(rows)
		if err != nil {
			return err
		}
		each(sub)
	}
	return rows.Err()
}

// maxListLimit bounds one page of ListWithEmail.
const maxListLimit = 5000

// ListWithEmail returns up to limit subjects that hold an email address
// and are neither merged nor erased, in id order after afterID ("" for the
// first page): the people Steward can write to, for notices sent to
// everyone. It walks the primary key, so paging through every subject
// costs one index range scan per page. limit is capped at 5000.
func (s *Store) ListWithEmail(ctx context.Context, q store.Q, afterID string, limit int) ([]Subject, error) {
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	var out []Subject
	err := scanSubjects(ctx, q, `SELECT `+subjectColumns+` FROM subjects
		WHERE id > $1 AND email_index IS NOT NULL AND merged_into IS NULL AND erased_at IS NULL ORDER BY id LIMIT $2`,
		[]any{afterID, limit}, func(sub Subject) { out = append(out, sub) })
	if err != nil {
		return nil, fmt.Errorf("subject: list: %w", err)
	}
	return out, nil
}
